//! The crypto hot path, measured: these figures calibrate the simulator's `crypto = "modeled"`
//! cost table and guard against regressions (DESIGN.md, CI regression benches). Short
//! measurement times: the machine is two shared cores.

// Benches measure wall-clock time by definition (iter_custom times only the routine).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use interop_sim::e2ee::attachment::{self, MediaKind};
use interop_sim::e2ee::{
    CiphertextMessage, DeviceKeys, IdentityKeyPair, KeyPair, PreKeyStore, SenderKeyRecord,
    SenderKeyState, SessionRecord, SignalMessage,
};
use interop_sim::engine::SimRng;
use rand::SeedableRng;

/// Two devices with an established, acknowledged session (both have sent and received).
struct Pair {
    rng: SimRng,
    keys: [DeviceKeys; 2],
    records: [SessionRecord; 2],
}

impl Pair {
    fn new(pq: bool) -> Pair {
        let mut rng = SimRng::seed_from_u64(1);
        let alice = DeviceKeys::generate(1, 1, &mut rng);
        let mut bob = DeviceKeys::generate(2, 1, &mut rng);
        if pq {
            bob.enable_pqxdh(&mut rng);
        }
        let bundle = bob.bundle(true, &mut rng);
        let mut records = [SessionRecord::new(), SessionRecord::new()];
        records[0]
            .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
            .unwrap();
        let mut pair = Pair {
            rng,
            keys: [alice, bob],
            records,
        };
        let m = pair.records[0].encrypt(b"hello").unwrap();
        pair.deliver(1, &m);
        let m = pair.records[1].encrypt(b"hello").unwrap();
        pair.deliver(0, &m);
        pair
    }

    fn deliver(&mut self, to: usize, m: &CiphertextMessage) -> Vec<u8> {
        match m {
            CiphertextMessage::PreKey(p) => {
                self.records[to]
                    .decrypt_prekey(p, &self.keys[to], &mut self.rng)
                    .unwrap()
                    .plaintext
            }
            CiphertextMessage::Signal(s) => self.records[to].decrypt(s, &mut self.rng).unwrap(),
        }
    }
}

fn primitives(c: &mut Criterion) {
    let mut rng = SimRng::seed_from_u64(2);
    let a = KeyPair::generate(&mut rng);
    let b = KeyPair::generate(&mut rng);
    c.bench_function("x25519/keygen", |bench| {
        bench.iter(|| KeyPair::generate(&mut rng))
    });
    c.bench_function("x25519/dh", |bench| {
        bench.iter(|| a.private.agree(black_box(&b.public)))
    });
    let id = IdentityKeyPair::generate(&mut rng);
    let msg = [7u8; 33];
    let sig = id.sign(&[&msg], &mut rng);
    c.bench_function("xeddsa/sign", |bench| {
        bench.iter(|| id.sign(&[black_box(&msg)], &mut rng))
    });
    c.bench_function("xeddsa/verify", |bench| {
        bench.iter(|| id.public_key().verify(&[&msg], black_box(&sig)))
    });
}

fn handshakes(c: &mut Criterion) {
    for (name, pq) in [("x3dh", false), ("pqxdh", true)] {
        let mut rng = SimRng::seed_from_u64(3);
        let alice = DeviceKeys::generate(1, 1, &mut rng);
        let mut bob = DeviceKeys::generate(2, 1, &mut rng);
        if pq {
            bob.enable_pqxdh(&mut rng);
        }
        let bundle = bob.bundle(true, &mut rng);
        c.bench_function(&format!("{name}/initiate"), |bench| {
            bench.iter(|| {
                let mut record = SessionRecord::new();
                record
                    .process_prekey_bundle(alice.identity(), 1, black_box(&bundle), &mut rng)
                    .unwrap();
                record
            })
        });
        let mut record = SessionRecord::new();
        record
            .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
            .unwrap();
        let Ok(CiphertextMessage::PreKey(first)) = record.encrypt(&[0u8; 100]) else {
            unreachable!()
        };
        c.bench_function(&format!("{name}/respond"), |bench| {
            bench.iter(|| {
                let mut record = SessionRecord::new();
                record
                    .decrypt_prekey(black_box(&first), &bob, &mut rng)
                    .unwrap();
                record
            })
        });
    }
}

fn ratchet(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratchet_symmetric");
    for size in [100usize, 1024, 64 * 1024] {
        let plaintext = vec![0x42u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        let mut pair = Pair::new(false);
        group.bench_with_input(BenchmarkId::new("encrypt", size), &plaintext, |bench, p| {
            bench.iter(|| pair.records[0].encrypt(black_box(p)).unwrap())
        });
        let mut pair = Pair::new(false);
        group.bench_with_input(BenchmarkId::new("decrypt", size), &plaintext, |bench, p| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let m = pair.records[0].encrypt(p).unwrap();
                    let start = Instant::now();
                    black_box(pair.deliver(1, &m));
                    total += start.elapsed();
                }
                total
            })
        });
        let mut pair = Pair::new(false);
        group.bench_with_input(
            BenchmarkId::new("encrypt+decrypt", size),
            &plaintext,
            |bench, p| {
                bench.iter(|| {
                    let m = pair.records[0].encrypt(black_box(p)).unwrap();
                    pair.deliver(1, &m)
                })
            },
        );
    }
    // As wacore-libsignal's own bench decrypts (issue 23's comparison): the message parsed
    // from its bytes inside the timed part, as a receiver gets it off the wire.
    let plaintext = vec![0x42u8; 100];
    let mut pair = Pair::new(false);
    group.bench_function("decrypt_from_bytes/100", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = pair.records[0].encrypt(&plaintext).unwrap();
                let bytes = m.serialized().to_vec();
                let start = Instant::now();
                let parsed = SignalMessage::deserialize(black_box(&bytes)).unwrap();
                black_box(pair.records[1].decrypt(&parsed, &mut pair.rng).unwrap());
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
    // the X25519 work of a DH ratchet turn alone (one key generation, two agreements), measured
    // next to the turn so that the ratio compares like with like on a shared machine
    let mut rng = SimRng::seed_from_u64(6);
    let their = KeyPair::generate(&mut rng).public;
    let ours = KeyPair::generate(&mut rng);
    c.bench_function("ratchet_dh_turn/x25519_ops_only", |bench| {
        bench.iter(|| {
            let fresh = KeyPair::generate(&mut rng);
            let first = ours.private.agree(black_box(&their));
            let second = fresh.private.agree(black_box(&their));
            (first, second)
        })
    });
    let mut pair = Pair::new(false);
    // the receiver's side of a DH ratchet turn: one keygen and two DH, plus the symmetric work
    c.bench_function("ratchet_dh_turn/decrypt", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = pair.records[0].encrypt(b"ping").unwrap();
                pair.deliver(1, &m);
                let reply = pair.records[1].encrypt(&[0u8; 100]).unwrap();
                let start = Instant::now();
                black_box(pair.deliver(0, &reply));
                total += start.elapsed();
            }
            total
        })
    });
}

/// Times `routine` alone, `setup` producing its input untimed.
fn timed<T, R>(
    iters: u64,
    mut setup: impl FnMut() -> T,
    mut routine: impl FnMut(T) -> R,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        black_box(routine(input));
        total += start.elapsed();
    }
    total
}

fn groups_and_media(c: &mut Criterion) {
    let mut rng = SimRng::seed_from_u64(4);
    let mut sender = SenderKeyState::generate(&mut rng);
    let mut member = SenderKeyRecord::new();
    member.add(SenderKeyState::from_distribution(
        &sender.distribution_message(),
    ));
    let plaintext = [0x42u8; 100];
    c.bench_function("sender_key/encrypt_100B", |bench| {
        bench.iter(|| sender.encrypt(black_box(&plaintext), &mut rng).unwrap())
    });
    let mut sender = SenderKeyState::generate(&mut rng);
    let mut member = SenderKeyRecord::new();
    member.add(SenderKeyState::from_distribution(
        &sender.distribution_message(),
    ));
    c.bench_function("sender_key/decrypt_100B", |bench| {
        bench.iter_custom(|iters| {
            timed(
                iters,
                || sender.encrypt(&plaintext, &mut rng).unwrap(),
                |m| member.decrypt(m.serialized()).unwrap(),
            )
        })
    });
    let file = vec![0x17u8; 1 << 20];
    let key = [9u8; 32];
    let mut group = c.benchmark_group("attachment");
    group.throughput(Throughput::Bytes(file.len() as u64));
    group.bench_function("encrypt_1MiB", |bench| {
        bench.iter(|| attachment::encrypt(&key, MediaKind::Image, black_box(&file)))
    });
    let enc = attachment::encrypt(&key, MediaKind::Image, &file);
    group.bench_function("decrypt_1MiB", |bench| {
        bench.iter(|| {
            attachment::decrypt(
                &key,
                MediaKind::Image,
                &enc.blob,
                &enc.blob_sha256,
                &enc.plaintext_sha256,
            )
            .unwrap()
        })
    });
    group.finish();
    c.bench_function("prekey_bundle/100_one_time", |bench| {
        bench.iter_batched(
            || SimRng::seed_from_u64(5),
            |mut rng| {
                let mut keys = DeviceKeys::generate(1, 1, &mut rng);
                keys.add_one_time_pre_keys(100, &mut rng);
                keys.bundle(false, &mut rng)
            },
            BatchSize::SmallInput,
        )
    });
}

/// A room of `n` MLS clients (src/mls/, the `mimi` design's crypto): the creator and one
/// member that joined through the Welcome, and the key packages' owners.
fn mls_room(n: usize) -> (interop_sim::mls::Room, interop_sim::mls::Room) {
    use interop_sim::engine::{RngTree, SimTime};
    use interop_sim::mls::Client;
    let tree = RngTree::new(9);
    let client = |i: usize| Client::new(format!("d{i}").as_bytes(), tree.stream("mls", i as u64));
    let now = SimTime::ZERO;
    let creator = client(0).unwrap();
    let others: Vec<Client> = (1..n).map(|i| client(i).unwrap()).collect();
    let kps: Vec<Vec<u8>> = others.iter().map(|c| c.key_package(now).unwrap()).collect();
    let mut room = creator.create_room(b"bench", now).unwrap();
    let welcome = room.add(&kps, now).unwrap().welcome.unwrap();
    let member = others[0].join(&welcome, now).unwrap();
    (room, member)
}

/// MLS with the simulator's provider: an application message encrypted and read in a
/// 128-member room (as mls-rs's own `group_application` bench: encrypt, then the receiver
/// processes it), and a room of 1,024 made in one commit (issue 22's budget: 2 s).
fn mls(c: &mut Criterion) {
    let (mut room, mut member) = mls_room(128);
    let plaintext = [0x42u8; 100];
    c.bench_function("mls/encrypt+decrypt_100B_128_members", |bench| {
        bench.iter(|| {
            let m = room.encrypt(black_box(&plaintext)).unwrap();
            member
                .receive(&m, interop_sim::engine::SimTime::ZERO)
                .unwrap()
        })
    });
    // As mls-rs's own bench does it: each sample from a copy of the two states (copy untimed).
    c.bench_function(
        "mls/encrypt+decrypt_100B_128_members_from_copies",
        |bench| {
            bench.iter_batched_ref(
                || (room.clone(), member.clone()),
                |(room, member)| {
                    let m = room.encrypt(black_box(&plaintext)).unwrap();
                    member
                        .receive(&m, interop_sim::engine::SimTime::ZERO)
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        },
    );
    let mut group = c.benchmark_group("mls_add_all");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("1024_members", |bench| {
        use interop_sim::engine::{RngTree, SimTime};
        use interop_sim::mls::Client;
        let tree = RngTree::new(10);
        let others: Vec<Client> = (1..1024)
            .map(|i| Client::new(format!("d{i}").as_bytes(), tree.stream("mls", i)).unwrap())
            .collect();
        bench.iter_custom(|iters| {
            timed(
                iters,
                || {
                    let creator = Client::new(b"d0", tree.stream("mls", 0)).unwrap();
                    let kps: Vec<Vec<u8>> = others
                        .iter()
                        .map(|c| c.key_package(SimTime::ZERO).unwrap())
                        .collect();
                    (creator.create_room(b"big", SimTime::ZERO).unwrap(), kps)
                },
                |(mut room, kps)| room.add(&kps, SimTime::ZERO).unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    targets = primitives, handshakes, ratchet, groups_and_media, mls
}
criterion_main!(benches);
