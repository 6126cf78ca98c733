//! What `calibrate` times: one entry per cost-table operation, each a `prepare` function that
//! builds the state and inputs for `n` operations (untimed) and returns the batch that performs
//! them with the real code (`e2ee`, and snow as `live::noise` drives it), timing only the
//! operations. A new operation is one entry in [`MEASURES`] and one `prepare` function; a test
//! checks that every [`Op`] has exactly one.
//!
//! Each entry does what the simulator charges the operation for: `x3dh_initiate` processes a
//! bundle (signature check and the DH agreements), `x3dh_respond` builds the responder's session
//! from a first message and decrypts it, the ratchet and sender-key entries encrypt or decrypt on
//! an established chain (in order, no DH turn), `noise_handshake` is the gateway's half of the XX
//! handshake (the responder, from building its state to transport mode), and `noise_aead` seals
//! one transport frame. The MLS entries are in `mls_ops`.

use std::hint::black_box;

use rand::SeedableRng;

use super::batch::{text, timed};
use super::mls_ops;
use crate::bench::hotpaths::{sender_and_member, Pair};
use crate::e2ee::attachment::{self, MediaKind};
use crate::e2ee::{CiphertextMessage, DeviceKeys, KeyPair, PreKeyStore, SessionRecord};
use crate::engine::{RngTree, SimRng};
use crate::live::noise::{builder, NoiseKeys, NOISE_MSG_MAX, NOISE_TAG_LEN};
use crate::report::perf::Stopwatch;
use crate::scenario::cost_table::Op;

pub use super::batch::{Batch, Prepare};

/// How one operation is measured.
pub struct Measure {
    pub op: Op,
    /// Whether the cost grows with the payload: then it is measured at two sizes, and the
    /// table gets a fixed part and a part per KiB.
    pub sized: bool,
    pub prepare: Prepare,
}

pub const MEASURES: &[Measure] = &[
    Measure {
        op: Op::KeyGeneration,
        sized: false,
        prepare: key_generation,
    },
    Measure {
        op: Op::X3dhInitiate,
        sized: false,
        prepare: x3dh_initiate,
    },
    Measure {
        op: Op::X3dhRespond,
        sized: false,
        prepare: x3dh_respond,
    },
    Measure {
        op: Op::PqxdhInitiate,
        sized: false,
        prepare: pqxdh_initiate,
    },
    Measure {
        op: Op::PqxdhRespond,
        sized: false,
        prepare: pqxdh_respond,
    },
    Measure {
        op: Op::RatchetEncrypt,
        sized: true,
        prepare: ratchet_encrypt,
    },
    Measure {
        op: Op::RatchetDecrypt,
        sized: true,
        prepare: ratchet_decrypt,
    },
    Measure {
        op: Op::SenderKeyEncrypt,
        sized: true,
        prepare: sender_key_encrypt,
    },
    Measure {
        op: Op::SenderKeyDecrypt,
        sized: true,
        prepare: sender_key_decrypt,
    },
    Measure {
        op: Op::NoiseHandshake,
        sized: false,
        prepare: noise_handshake,
    },
    Measure {
        op: Op::NoiseAead,
        sized: true,
        prepare: noise_aead,
    },
    Measure {
        op: Op::AttachmentEncrypt,
        sized: true,
        prepare: attachment_encrypt,
    },
    Measure {
        op: Op::AttachmentDecrypt,
        sized: true,
        prepare: attachment_decrypt,
    },
    Measure {
        op: Op::MlsKeyPackage,
        sized: false,
        prepare: mls_ops::key_package,
    },
    Measure {
        op: Op::MlsEncrypt,
        sized: true,
        prepare: mls_ops::encrypt,
    },
    Measure {
        op: Op::MlsDecrypt,
        sized: true,
        prepare: mls_ops::decrypt,
    },
    Measure {
        op: Op::MlsCommit,
        sized: false,
        prepare: mls_ops::commit,
    },
    Measure {
        op: Op::MlsProcessCommit,
        sized: false,
        prepare: mls_ops::process_commit,
    },
    Measure {
        op: Op::MlsJoin,
        sized: false,
        prepare: mls_ops::join,
    },
];

/// Largest payload a sized measurement may ask for: one Noise transport message.
pub const PAYLOAD_BYTES_MAX: usize = NOISE_MSG_MAX - NOISE_TAG_LEN;

/// Encrypts `n` files of `bytes` bytes as a sender does before the upload.
fn attachment_encrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let file = vec![0x5a; bytes];
    Ok(Box::new(move || {
        timed(|| {
            for i in 0..n {
                let key = [i as u8; 32];
                black_box(attachment::encrypt(&key, MediaKind::Image, &file));
            }
            Ok(())
        })
    }))
}

/// Verifies and decrypts `n` blobs of `bytes` bytes of file, as a recipient does after the
/// download.
fn attachment_decrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let key = [7u8; 32];
    let enc = attachment::encrypt(&key, MediaKind::Image, &vec![0x5a; bytes]);
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                let file = attachment::decrypt(
                    &key,
                    MediaKind::Image,
                    &enc.blob,
                    &enc.blob_sha256,
                    &enc.plaintext_sha256,
                )
                .map_err(text)?;
                black_box(file);
            }
            Ok(())
        })
    }))
}

fn key_generation(n: usize, _: usize) -> Result<Batch, String> {
    let mut rng = SimRng::seed_from_u64(11);
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                black_box(KeyPair::generate(&mut rng));
            }
            Ok(())
        })
    }))
}

/// An initiator's keys and a responder's, with or without the responder's KEM prekey.
fn two_devices(pq: bool, seed: u64) -> (SimRng, DeviceKeys, DeviceKeys) {
    let mut rng = SimRng::seed_from_u64(seed);
    let alice = DeviceKeys::generate(1, 1, &mut rng);
    let mut bob = DeviceKeys::generate(2, 1, &mut rng);
    if pq {
        bob.enable_pqxdh(&mut rng);
    }
    (rng, alice, bob)
}

fn initiate(n: usize, pq: bool) -> Result<Batch, String> {
    let (mut rng, alice, mut bob) = two_devices(pq, 12);
    let bundle = bob.bundle(true, &mut rng);
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                let mut record = SessionRecord::new();
                record
                    .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
                    .map_err(text)?;
                black_box(record);
            }
            Ok(())
        })
    }))
}

fn respond(n: usize, pq: bool) -> Result<Batch, String> {
    let (mut rng, alice, mut bob) = two_devices(pq, 13);
    let bundle = bob.bundle(true, &mut rng);
    let mut initiator = SessionRecord::new();
    initiator
        .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
        .map_err(text)?;
    let CiphertextMessage::PreKey(first) = initiator.encrypt(&[0x42; 64]).map_err(text)? else {
        return Err("a new session must send a prekey message".to_string());
    };
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                let mut record = SessionRecord::new();
                let out = record
                    .decrypt_prekey(&first, &bob, &mut rng)
                    .map_err(text)?;
                black_box((record, out));
            }
            Ok(())
        })
    }))
}

fn x3dh_initiate(n: usize, _: usize) -> Result<Batch, String> {
    initiate(n, false)
}

fn x3dh_respond(n: usize, _: usize) -> Result<Batch, String> {
    respond(n, false)
}

fn pqxdh_initiate(n: usize, _: usize) -> Result<Batch, String> {
    initiate(n, true)
}

fn pqxdh_respond(n: usize, _: usize) -> Result<Batch, String> {
    respond(n, true)
}

fn ratchet_encrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let mut pair = Pair::new(14);
    let payload = vec![0x42u8; bytes];
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                black_box(pair.records[0].encrypt(&payload).map_err(text)?);
            }
            Ok(())
        })
    }))
}

fn ratchet_decrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let mut pair = Pair::new(15);
    let payload = vec![0x42u8; bytes];
    let mut messages = Vec::with_capacity(n);
    for _ in 0..n {
        match pair.records[0].encrypt(&payload).map_err(text)? {
            CiphertextMessage::Signal(m) => messages.push(m),
            CiphertextMessage::PreKey(_) => {
                return Err("an acknowledged session must send plain messages".to_string())
            }
        }
    }
    Ok(Box::new(move || {
        timed(|| {
            for m in &messages {
                let plaintext = pair.records[1].decrypt(m, &mut pair.rng).map_err(text)?;
                black_box(plaintext);
            }
            Ok(())
        })
    }))
}

fn sender_key_encrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let (mut rng, mut sender, _) = sender_and_member(16);
    let payload = vec![0x42u8; bytes];
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                black_box(sender.encrypt(&payload, &mut rng).map_err(text)?);
            }
            Ok(())
        })
    }))
}

fn sender_key_decrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let (mut rng, mut sender, mut member) = sender_and_member(17);
    let payload = vec![0x42u8; bytes];
    let messages = (0..n)
        .map(|_| sender.encrypt(&payload, &mut rng).map_err(text))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Box::new(move || {
        timed(|| {
            for m in &messages {
                black_box(member.decrypt(m.serialized()).map_err(text)?);
            }
            Ok(())
        })
    }))
}

/// The two ends' Noise keys, from a fixed seed (as the live driver derives them from its run's).
fn noise_keys() -> (NoiseKeys, NoiseKeys) {
    let tree = RngTree::new(18);
    (
        NoiseKeys::derive(&tree, "calibrate-client", 0),
        NoiseKeys::derive(&tree, "calibrate-gateway", 0),
    )
}

/// The gateway's half of `n` XX handshakes: the client's first messages are made beforehand,
/// and only the responder's steps are timed.
fn noise_handshake(n: usize, _: usize) -> Result<Batch, String> {
    let (client, gateway) = noise_keys();
    let mut buf = vec![0u8; NOISE_MSG_MAX];
    let mut starts = Vec::with_capacity(n);
    for _ in 0..n {
        let mut hs = builder(&client)
            .map_err(text)?
            .build_initiator()
            .map_err(text)?;
        let len = hs.write_message(&[], &mut buf).map_err(text)?;
        starts.push((hs, buf[..len].to_vec()));
    }
    Ok(Box::new(move || {
        let mut payload = vec![0u8; NOISE_MSG_MAX];
        let mut out = vec![0u8; NOISE_MSG_MAX];
        let mut total_ns = 0;
        for (mut initiator, first) in starts {
            let watch = Stopwatch::start();
            let mut responder = builder(&gateway)
                .map_err(text)?
                .build_responder()
                .map_err(text)?;
            responder.read_message(&first, &mut payload).map_err(text)?;
            let second = responder.write_message(&[], &mut out).map_err(text)?;
            total_ns += watch.elapsed_ns();
            initiator
                .read_message(&out[..second], &mut payload)
                .map_err(text)?;
            let third = initiator.write_message(&[], &mut out).map_err(text)?;
            let watch = Stopwatch::start();
            responder
                .read_message(&out[..third], &mut payload)
                .map_err(text)?;
            black_box(responder.into_stateless_transport_mode().map_err(text)?);
            total_ns += watch.elapsed_ns();
        }
        Ok(total_ns)
    }))
}

/// `n` transport frames of `bytes` sealed by the gateway after a completed handshake.
fn noise_aead(n: usize, bytes: usize) -> Result<Batch, String> {
    let (client, gateway) = noise_keys();
    let mut initiator = builder(&client)
        .map_err(text)?
        .build_initiator()
        .map_err(text)?;
    let mut responder = builder(&gateway)
        .map_err(text)?
        .build_responder()
        .map_err(text)?;
    let (mut msg, mut payload) = (vec![0u8; NOISE_MSG_MAX], vec![0u8; NOISE_MSG_MAX]);
    for step in 0..3 {
        let (from, to) = if step % 2 == 0 {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let len = from.write_message(&[], &mut msg).map_err(text)?;
        to.read_message(&msg[..len], &mut payload).map_err(text)?;
    }
    let transport = responder.into_stateless_transport_mode().map_err(text)?;
    let frame = vec![0x42u8; bytes.min(PAYLOAD_BYTES_MAX)];
    Ok(Box::new(move || {
        timed(|| {
            for nonce in 0..n as u64 {
                let len = transport
                    .write_message(nonce, &frame, &mut msg)
                    .map_err(text)?;
                black_box(&msg[..len]);
            }
            Ok(())
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_measured_exactly_once() {
        for op in Op::ALL {
            let count = MEASURES.iter().filter(|m| m.op == op).count();
            assert_eq!(count, 1, "{} has {count} entries in MEASURES", op.key());
        }
        assert_eq!(MEASURES.len(), Op::ALL.len());
    }

    #[test]
    fn every_measure_runs_its_operations() {
        for m in MEASURES {
            for bytes in [0, 1000] {
                let batch = (m.prepare)(3, bytes)
                    .unwrap_or_else(|e| panic!("{}: prepare: {e}", m.op.key()));
                let result = batch();
                assert!(result.is_ok(), "{}: {result:?}", m.op.key());
            }
        }
    }
}
