//! The hot paths whose instruction counts CI gates (`benches/instructions.rs` runs them under
//! callgrind): the engine loop, the Double Ratchet's encrypt and decrypt, X3DH, Sender Keys,
//! and wire decoding. Each is a state built by a setup function (not counted) and a `run` that
//! does a fixed number of operations (counted), small enough that callgrind finishes in
//! seconds. Everything is seeded: the same build gives the same instruction count every run.

use crate::e2ee::{
    CiphertextMessage, DeviceKeys, PreKeyBundle, PreKeySignalMessage, PreKeyStore,
    SenderKeyMessage, SenderKeyRecord, SenderKeyState, SessionRecord, SignalMessage,
};
use crate::engine::{self, EventQueue, Limits, RngTree, Scheduler, SimRng, SimTime, World};
use rand::{Rng, SeedableRng};
use std::hint::black_box;

/// Events the engine loop processes per run.
pub const ENGINE_EVENTS: u64 = 20_000;
/// Events pending in the engine's queue (the hold model keeps it constant).
pub const ENGINE_PENDING: usize = 1_000;
/// Double Ratchet messages (100 bytes) per encrypt or decrypt run.
pub const RATCHET_MESSAGES: usize = 1_000;
/// Handshakes (initiate, first message, respond) per X3DH run.
pub const X3DH_HANDSHAKES: usize = 10;
/// Group messages (100 bytes, signed) per Sender Keys run.
pub const SENDER_KEY_MESSAGES: usize = 100;
/// Messages of each kind (SignalMessage, PreKeySignalMessage) per wire-decoding run.
pub const WIRE_MESSAGES: usize = 1_000;

const PLAINTEXT: [u8; 100] = [0x42; 100];
const DELAYS_LEN: usize = 1 << 12;

/// The names `benches/instructions.rs` reports, in its order.
pub const NAMES: &[&str] = &[
    "engine_loop",
    "ratchet_encrypt",
    "ratchet_decrypt",
    "x3dh",
    "sender_key_encrypt",
    "sender_key_decrypt",
    "sender_key_decrypt_table",
    "wire_decode",
];

/// The engine's hold model: each event reschedules itself after the next delay of a table.
pub struct EngineLoop {
    world: Hold,
    queue: EventQueue<u64>,
}

struct Hold {
    delays_ns: Vec<u64>,
    next: usize,
}

impl World for Hold {
    type Event = u64;
    fn handle(&mut self, _now: SimTime, id: u64, sched: &mut Scheduler<'_, u64>) {
        let delay_ns = self.delays_ns[self.next & (DELAYS_LEN - 1)];
        self.next = self.next.wrapping_add(1);
        sched.after(delay_ns, id);
    }
    fn fingerprint_word(&self, id: &u64) -> u64 {
        *id
    }
}

/// A queue of `ENGINE_PENDING` events, warmed up by as many events again.
pub fn engine_loop() -> EngineLoop {
    let mut rng = RngTree::new(7).stream("bench/hotpaths/delays", 0);
    let delays_ns: Vec<u64> = (0..DELAYS_LEN)
        .map(|_| 1 + (rng.next_u64() % 2_000_000))
        .collect();
    let mut queue = EventQueue::new();
    for (id, &delay_ns) in delays_ns.iter().take(ENGINE_PENDING).enumerate() {
        queue.push(SimTime::from_nanos(delay_ns), id as u64);
    }
    let mut world = Hold {
        delays_ns,
        next: ENGINE_PENDING,
    };
    let warm_up = Limits {
        events_max: 2 * ENGINE_PENDING as u64,
        time_max: SimTime::MAX,
    };
    engine::run(&mut world, &mut queue, warm_up);
    EngineLoop { world, queue }
}

impl EngineLoop {
    pub fn run(&mut self) -> u64 {
        let limits = Limits {
            events_max: ENGINE_EVENTS,
            time_max: SimTime::MAX,
        };
        let out = engine::run(&mut self.world, &mut self.queue, limits);
        assert_eq!(out.events_processed, ENGINE_EVENTS);
        out.end_time.as_nanos()
    }
}

/// Two devices with an acknowledged session (both have sent and received); `calibrate` times
/// the ratchet on one too.
pub struct Pair {
    pub(crate) rng: SimRng,
    keys: [DeviceKeys; 2],
    pub(crate) records: [SessionRecord; 2],
}

impl Pair {
    pub(crate) fn new(seed: u64) -> Pair {
        let mut rng = SimRng::seed_from_u64(seed);
        let alice = DeviceKeys::generate(1, 1, &mut rng);
        let mut bob = DeviceKeys::generate(2, 1, &mut rng);
        let bundle = bob.bundle(true, &mut rng);
        let mut records = [SessionRecord::new(), SessionRecord::new()];
        records[0]
            .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
            .expect("fresh bundle");
        let mut pair = Pair {
            rng,
            keys: [alice, bob],
            records,
        };
        let m = pair.records[0].encrypt(b"hello").expect("session");
        pair.deliver(1, &m);
        let m = pair.records[1].encrypt(b"hello").expect("session");
        pair.deliver(0, &m);
        pair
    }

    fn deliver(&mut self, to: usize, m: &CiphertextMessage) -> usize {
        let plaintext = match m {
            CiphertextMessage::PreKey(p) => {
                self.records[to]
                    .decrypt_prekey(p, &self.keys[to], &mut self.rng)
                    .expect("genuine prekey message")
                    .plaintext
            }
            CiphertextMessage::Signal(s) => self.records[to]
                .decrypt(s, &mut self.rng)
                .expect("genuine message"),
        };
        plaintext.len()
    }
}

/// Sending on an established session.
pub struct RatchetEncrypt(Pair);

pub fn ratchet_encrypt() -> RatchetEncrypt {
    RatchetEncrypt(Pair::new(1))
}

impl RatchetEncrypt {
    pub fn run(&mut self) -> u64 {
        let mut bytes = 0u64;
        for _ in 0..RATCHET_MESSAGES {
            let m = self.0.records[0]
                .encrypt(black_box(&PLAINTEXT))
                .expect("session");
            bytes += m.serialized().len() as u64;
        }
        bytes
    }
}

/// Receiving, in order, messages encrypted by the setup.
pub struct RatchetDecrypt {
    pair: Pair,
    messages: Vec<SignalMessage>,
}

pub fn ratchet_decrypt() -> RatchetDecrypt {
    let mut pair = Pair::new(2);
    let messages = (0..RATCHET_MESSAGES)
        .map(
            |_| match pair.records[0].encrypt(&PLAINTEXT).expect("session") {
                CiphertextMessage::Signal(s) => s,
                CiphertextMessage::PreKey(_) => unreachable!("the session is acknowledged"),
            },
        )
        .collect();
    RatchetDecrypt { pair, messages }
}

impl RatchetDecrypt {
    pub fn run(&mut self) -> u64 {
        let mut bytes = 0u64;
        for m in &self.messages {
            let plaintext = self.pair.records[1]
                .decrypt(black_box(m), &mut self.pair.rng)
                .expect("genuine message");
            bytes += plaintext.len() as u64;
        }
        bytes
    }
}

/// Session setup both ways: the initiator processes a bundle and encrypts its first message,
/// the responder builds its session from that prekey message and decrypts it.
pub struct X3dh {
    rng: SimRng,
    alice: DeviceKeys,
    bob: DeviceKeys,
    bundle: PreKeyBundle,
}

pub fn x3dh() -> X3dh {
    let mut rng = SimRng::seed_from_u64(3);
    let alice = DeviceKeys::generate(1, 1, &mut rng);
    let mut bob = DeviceKeys::generate(2, 1, &mut rng);
    let bundle = bob.bundle(true, &mut rng);
    X3dh {
        rng,
        alice,
        bob,
        bundle,
    }
}

impl X3dh {
    pub fn run(&mut self) -> u64 {
        let mut bytes = 0u64;
        for _ in 0..X3DH_HANDSHAKES {
            let mut initiator = SessionRecord::new();
            initiator
                .process_prekey_bundle(self.alice.identity(), 1, &self.bundle, &mut self.rng)
                .expect("valid bundle");
            let Ok(CiphertextMessage::PreKey(first)) = initiator.encrypt(&PLAINTEXT) else {
                unreachable!("a new session sends a prekey message")
            };
            let mut responder = SessionRecord::new();
            let got = responder
                .decrypt_prekey(&first, &self.bob, &mut self.rng)
                .expect("genuine prekey message");
            bytes += got.plaintext.len() as u64;
        }
        bytes
    }
}

/// A group sender's state and a member's record of it.
pub(crate) fn sender_and_member(seed: u64) -> (SimRng, SenderKeyState, SenderKeyRecord) {
    let mut rng = SimRng::seed_from_u64(seed);
    let sender = SenderKeyState::generate(&mut rng);
    let mut member = SenderKeyRecord::new();
    member.add(SenderKeyState::from_distribution(
        &sender.distribution_message(),
    ));
    (rng, sender, member)
}

/// Encrypting and signing group messages.
pub struct SenderKeyEncrypt {
    rng: SimRng,
    sender: SenderKeyState,
}

pub fn sender_key_encrypt() -> SenderKeyEncrypt {
    let (rng, sender, _) = sender_and_member(4);
    SenderKeyEncrypt { rng, sender }
}

impl SenderKeyEncrypt {
    pub fn run(&mut self) -> u64 {
        let mut bytes = 0u64;
        for _ in 0..SENDER_KEY_MESSAGES {
            let m = self
                .sender
                .encrypt(black_box(&PLAINTEXT), &mut self.rng)
                .expect("sender key");
            bytes += m.serialized().len() as u64;
        }
        bytes
    }
}

/// Verifying and decrypting group messages encrypted by the setup, in order.
pub struct SenderKeyDecrypt {
    member: SenderKeyRecord,
    messages: Vec<SenderKeyMessage>,
}

pub fn sender_key_decrypt() -> SenderKeyDecrypt {
    sender_key_decrypt_after(5, 0)
}

/// The same once the sender's key has verified enough signatures to have its table (see
/// `e2ee::xeddsa`): how a member of a large group decrypts on a CPU without AVX-512 IFMA, such
/// as the one valgrind presents. The setup decrypts the messages that build it.
pub fn sender_key_decrypt_table() -> SenderKeyDecrypt {
    sender_key_decrypt_after(6, crate::e2ee::xeddsa::TABLE_AFTER + 1)
}

/// The decrypt bench's setup (`seed`), once the member has decrypted `decrypted` messages.
fn sender_key_decrypt_after(seed: u64, decrypted: u32) -> SenderKeyDecrypt {
    let (mut rng, mut sender, mut member) = sender_and_member(seed);
    for _ in 0..decrypted {
        let m = sender.encrypt(&PLAINTEXT, &mut rng).expect("sender key");
        member
            .decrypt(m.serialized())
            .expect("genuine group message");
    }
    let messages = (0..SENDER_KEY_MESSAGES)
        .map(|_| sender.encrypt(&PLAINTEXT, &mut rng).expect("sender key"))
        .collect();
    SenderKeyDecrypt { member, messages }
}

impl SenderKeyDecrypt {
    pub fn run(&mut self) -> u64 {
        let mut bytes = 0u64;
        for m in &self.messages {
            let plaintext = self
                .member
                .decrypt(black_box(m.serialized()))
                .expect("genuine group message");
            bytes += plaintext.len() as u64;
        }
        bytes
    }
}

/// Parsing libsignal v3 wire messages (no crypto): `SignalMessage` and `PreKeySignalMessage`.
pub struct WireDecode {
    signal: Vec<Vec<u8>>,
    prekey: Vec<Vec<u8>>,
}

pub fn wire_decode() -> WireDecode {
    let mut pair = Pair::new(6);
    let signal = (0..WIRE_MESSAGES)
        .map(|_| {
            pair.records[0]
                .encrypt(&PLAINTEXT)
                .expect("session")
                .serialized()
                .to_vec()
        })
        .collect();
    let mut rng = SimRng::seed_from_u64(7);
    let alice = DeviceKeys::generate(1, 1, &mut rng);
    let mut bob = DeviceKeys::generate(2, 1, &mut rng);
    let bundle = bob.bundle(true, &mut rng);
    let mut record = SessionRecord::new();
    record
        .process_prekey_bundle(alice.identity(), 1, &bundle, &mut rng)
        .expect("valid bundle");
    let prekey = (0..WIRE_MESSAGES)
        .map(|_| {
            let m = record.encrypt(&PLAINTEXT).expect("session");
            assert!(
                m.is_prekey(),
                "unacknowledged sessions send prekey messages"
            );
            m.serialized().to_vec()
        })
        .collect();
    WireDecode { signal, prekey }
}

impl WireDecode {
    pub fn run(&mut self) -> u64 {
        let mut counters = 0u64;
        for bytes in &self.signal {
            let m = SignalMessage::deserialize(black_box(bytes)).expect("valid wire bytes");
            counters += black_box(&m).serialized().len() as u64;
        }
        for bytes in &self.prekey {
            let m = PreKeySignalMessage::deserialize(black_box(bytes)).expect("valid wire bytes");
            counters += black_box(&m).serialized().len() as u64;
        }
        counters
    }
}

/// Runs one hot path by name (setup, then one run); for tests and for timing by hand.
pub fn run_by_name(name: &str) -> Option<u64> {
    Some(match name {
        "engine_loop" => engine_loop().run(),
        "ratchet_encrypt" => ratchet_encrypt().run(),
        "ratchet_decrypt" => ratchet_decrypt().run(),
        "x3dh" => x3dh().run(),
        "sender_key_encrypt" => sender_key_encrypt().run(),
        "sender_key_decrypt" => sender_key_decrypt().run(),
        "sender_key_decrypt_table" => sender_key_decrypt_table().run(),
        "wire_decode" => wire_decode().run(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hot path runs, and gives the same result twice (nothing depends on the machine).
    #[test]
    fn every_hot_path_runs_deterministically() {
        for name in NAMES {
            let first = run_by_name(name).expect("known name");
            assert_eq!(run_by_name(name), Some(first), "{name}");
            assert!(first > 0, "{name}");
        }
        assert_eq!(run_by_name("nope"), None);
    }
}
