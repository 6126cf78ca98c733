//! Devices' Signal state and the key directory's prekey pools, in one arena the device nodes
//! call into (like a keystore library on a phone): identity keys generated lazily from each
//! device's own seeded stream, one session per (device, peer device), X3DH (or PQXDH) on first
//! contact, the Double Ratchet for every message.
//!
//! Two modes give the same run: `real` performs every operation with the `e2ee` module;
//! `modeled` skips the work. Both decide success and failure from the same model (a session is
//! good while the peer's identity generation is the one it was built for), count the same
//! operations and charge the same cost-table time, so summary.json is identical; in real mode
//! the actual decryption must agree with the model, and a disagreement is a decrypt failure.

use super::key_directory::{KeyDirectory, Requester};
use crate::collections::vec_map::VecMap;
use crate::e2ee::{
    DeviceKeys, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyRecord, SenderKeyState,
    SessionRecord, SignalMessage,
};
use crate::engine::{RngTree, SimRng, SimTime};
use crate::scenario::{BundleFetchLimit, ContentKind, CryptoMode, Protocol};
use crate::wire::{DeviceId, GroupId, SealInfo};
use std::collections::{BTreeMap, BTreeSet};

/// Plaintext bytes of a Sender Key distribution message as it travels inside a pairwise
/// session: the serialized message (about 80 bytes) padded to a fixed size, so that real and
/// modeled crypto charge the same.
pub const SKDM_PLAINTEXT_LEN: usize = 96;

/// Sender Key states a member keeps per (sender, group), as libsignal does.
const PEER_SENDER_KEYS_MAX: usize = 5;

// The cost model's vocabulary lives with the scenario, which names a cost table.
pub use crate::scenario::cost_table::{CostTable, Op};

/// Where an operation ran, for the per-node-kind counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runner {
    GatekeeperDevice,
    PartnerDevice,
    Gateway,
}

impl Runner {
    pub fn key(self) -> &'static str {
        match self {
            Runner::GatekeeperDevice => "gatekeeper_device",
            Runner::PartnerDevice => "partner_device",
            Runner::Gateway => "gateway",
        }
    }
}

impl Runner {
    pub const ALL: [Runner; 3] = [
        Runner::GatekeeperDevice,
        Runner::PartnerDevice,
        Runner::Gateway,
    ];
}

/// Per op: (count, ns charged). Indexed by `op as usize` (`Op::ALL` is in declaration order).
type PerOp = [(u64, u64); Op::ALL.len()];

/// Operation counts and charged time, by node kind and by message kind. Plain arrays: every
/// seal and open adds to them (two string-keyed map lookups each were a few percent of a run);
/// an entry exists once its count is non-zero, as a map entry did once inserted.
#[derive(Clone, Debug, Default)]
pub struct CryptoCounts {
    /// By runner (`Runner::ALL` order), then op.
    node: [PerOp; Runner::ALL.len()],
    /// By content kind (`ContentKind::ALL` order), then "control" (no kind), then op.
    message: [PerOp; ContentKind::ALL.len() + 1],
    pub plaintext_bytes: u64,
    pub bundles_without_one_time: u64,
    pub prekey_refills: u64,
    /// Sender Key distribution messages sealed (one per member device lacking the key).
    pub sender_key_distributions: u64,
    /// New Sender Keys made to replace one (a member left, or a reinstall lost it).
    pub sender_key_rotations: u64,
    /// Bundle fetches the key directory refused (over its rate limit) and nobody retried: the
    /// prekey-drain adversary's.
    pub bundle_fetches_limited: u64,
    /// Honest fetches over the rate limit: counted, served all the same (see `key_directory`).
    pub bundle_fetches_limited_honest: u64,
}

impl CryptoCounts {
    pub fn add(&mut self, runner: Runner, kind: Option<ContentKind>, op: Op, ns: u64) {
        let e = &mut self.node[runner as usize][op as usize];
        e.0 += 1;
        e.1 += ns;
        let k = kind.map_or(ContentKind::ALL.len(), |k| k as usize);
        let e = &mut self.message[k][op as usize];
        e.0 += 1;
        e.1 += ns;
    }

    /// (runner, op) -> (count, ns charged), for the ops that ran.
    pub fn by_node(&self) -> BTreeMap<(Runner, Op), (u64, u64)> {
        let mut out = BTreeMap::new();
        for (r, per_op) in Runner::ALL.iter().zip(&self.node) {
            for (op, &(n, ns)) in Op::ALL.iter().zip(per_op) {
                if n > 0 {
                    out.insert((*r, *op), (n, ns));
                }
            }
        }
        out
    }

    /// (content kind or "control", op) -> (count, ns charged), for the ops that ran.
    pub fn by_message(&self) -> BTreeMap<(&'static str, Op), (u64, u64)> {
        let kinds = ContentKind::ALL.map(ContentKind::key);
        let keys = kinds.iter().copied().chain(std::iter::once("control"));
        let mut out = BTreeMap::new();
        for (k, per_op) in keys.zip(&self.message) {
            for (op, &(n, ns)) in Op::ALL.iter().zip(per_op) {
                if n > 0 {
                    out.insert((k, *op), (n, ns));
                }
            }
        }
        out
    }

    /// Flat counters for summary.json: `<node>.<op>`, `<node>.<op>_ns`, `by_message.<kind>.<op>`.
    pub fn flatten(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((r, op), (n, ns)) in &self.by_node() {
            out.insert(format!("{}.{}", r.key(), op.key()), *n);
            out.insert(format!("{}.{}_ns", r.key(), op.key()), *ns);
        }
        for ((k, op), (n, ns)) in &self.by_message() {
            out.insert(format!("by_message.{k}.{}", op.key()), *n);
            out.insert(format!("by_message.{k}.{}_ns", op.key()), *ns);
        }
        out.insert("plaintext_bytes".to_string(), self.plaintext_bytes);
        out.insert(
            "bundles_without_one_time".to_string(),
            self.bundles_without_one_time,
        );
        out.insert("prekey_refills".to_string(), self.prekey_refills);
        out.insert(
            "sender_key_distributions".to_string(),
            self.sender_key_distributions,
        );
        out.insert(
            "sender_key_rotations".to_string(),
            self.sender_key_rotations,
        );
        out.insert(
            "bundle_fetches_limited".to_string(),
            self.bundle_fetches_limited,
        );
        out.insert(
            "bundle_fetches_limited_honest".to_string(),
            self.bundle_fetches_limited_honest,
        );
        out
    }
}

/// A session as the model sees it: which identity generation of the peer it was built for.
struct Session {
    peer_generation: u32,
    /// The next message still carries the prekey header (no reply received yet).
    prekey_pending: bool,
    /// A retry receipt asked for a new session: the next message starts one.
    renew: bool,
    /// Boxed: a session record is large and most runs at scale model crypto (`None`).
    real: Option<Box<SessionRecord>>,
}

struct DeviceState {
    /// Bumped by a reinstall: a new identity.
    generation: u32,
    // Boxed: a million devices must not each carry key and stream state inline.
    keys: Option<Box<DeviceKeys>>,
    /// The device's keys were made (its first crypto operation was charged).
    keyed: bool,
    /// Real crypto only: modeled crypto draws nothing, and a ChaCha state per device was
    /// hundreds of bytes at a million devices.
    rng: Option<Box<SimRng>>,
    /// Per peer device (a sorted `Vec`: a device talks to a handful of peers).
    sessions: VecMap<u32, Session>,
    /// Peers whose identity this device has seen, by generation (for "security code changed").
    seen_identity: VecMap<u32, u32>,
    /// Sender Keys, own and received; boxed, absent for devices in no group.
    groups: Option<Box<GroupKeys>>,
}

/// A device's Sender Key state across its groups.
#[derive(Default)]
struct GroupKeys {
    /// This device's own key per group.
    own: BTreeMap<u32, OwnSenderKey>,
    /// Keys received per (sender device, group).
    received: BTreeMap<(u32, u32), ReceivedSenderKeys>,
}

/// A device's own Sender Key in one group.
struct OwnSenderKey {
    /// The model's id of the key (run-wide counter); real mode's key carries its own.
    key_id: u32,
    /// The group's membership epoch it was made for: once someone left, it is retired.
    epoch: u32,
    /// Devices it was distributed to.
    holders: BTreeSet<u32>,
    real: Option<Box<SenderKeyState>>,
}

/// What a member holds of one sender's keys in one group: the newest few.
#[derive(Default)]
struct ReceivedSenderKeys {
    /// Model ids, newest first.
    ids: Vec<u32>,
    real: Option<Box<SenderKeyRecord>>,
}

/// A group message as sealed: the Sender Key ciphertext all members get, and a pairwise
/// distribution for each device that lacked the key.
pub struct GroupSealed {
    pub shared: Sealed,
    pub distributions: Vec<(DeviceId, Sealed)>,
    pub ns: u64,
}

/// One encryption's result: the bytes (real crypto) and what the receiver's model needs.
pub type Sealed = (Option<Box<[u8]>>, SealInfo);

/// Why a device could not decrypt (the ledger's reason).
pub use crate::metrics::ledger::DecryptReason as OpenError;

pub struct Keyring {
    /// The driver does the crypto itself (live mode): `open` lets every copy through.
    external: bool,
    mode: CryptoMode,
    protocol: Protocol,
    tree: RngTree,
    devices: Vec<DeviceState>,
    pub costs: CostTable,
    /// `costs` per op (`op as usize`), looked up once: a string-keyed lookup per operation was
    /// a few percent of a run. `costs` is not changed after construction.
    op_costs: [(u64, u64); Op::ALL.len()],
    pub counts: CryptoCounts,
    /// The key directory's one-time prekey pools.
    pub directory: KeyDirectory,
    refill_batch: u32,
    pub security_code_changed: u64,
    /// Next model id for a Sender Key.
    next_sender_key: u32,
}

impl Keyring {
    /// A cache hint for device `d`'s prekey pool in the key directory.
    pub fn prefetch_directory(&self, d: DeviceId) {
        self.directory.prefetch(d);
    }

    /// A cache hint for the fetch limiter's entry of `from` fetching `to`'s bundle.
    pub fn prefetch_fetch(&self, from: DeviceId, to: DeviceId) {
        self.directory.prefetch_fetch(from, to);
    }

    /// A cache hint for device `d`'s sessions and seen identities, the heap half of its key
    /// state; call it once [`Keyring::prefetch`] has brought the state itself.
    pub fn prefetch_sessions(&self, d: DeviceId) {
        if let Some(state) = self.devices.get(d.index()) {
            state.sessions.prefetch();
            state.seen_identity.prefetch();
        }
    }

    /// A cache hint for device `d`'s key state (see [`crate::engine::prefetch`]).
    pub fn prefetch(&self, d: DeviceId) {
        if let Some(state) = self.devices.get(d.index()) {
            crate::engine::prefetch::prefetch(state);
        }
    }

    pub fn new(
        devices: usize,
        mode: CryptoMode,
        protocol: Protocol,
        seed: u64,
        costs: CostTable,
        one_time_prekeys: u32,
        refill_below: u32,
    ) -> Self {
        let states = (0..devices)
            .map(|_| DeviceState {
                generation: 0,
                keys: None,
                keyed: false,
                rng: None,
                sessions: VecMap::new(),
                seen_identity: VecMap::new(),
                groups: None,
            })
            .collect();
        Keyring {
            external: false,
            mode,
            protocol,
            tree: RngTree::new(seed),
            devices: states,
            op_costs: Op::ALL.map(|op| costs.ops.get(op.key()).copied().unwrap_or((0, 0))),
            costs,
            counts: CryptoCounts::default(),
            security_code_changed: 0,
            directory: KeyDirectory::new(devices, one_time_prekeys, refill_below),
            refill_batch: one_time_prekeys,
            next_sender_key: 0,
        }
    }

    /// A keyring for a driver that encrypts and decrypts itself (the live load generator):
    /// devices pass every copy through and only the prekey pools are kept.
    pub fn external(devices: usize) -> Self {
        let mut k = Keyring::new(
            devices,
            CryptoMode::Modeled,
            Protocol::X3dh,
            0,
            CostTable::default(),
            100,
            10,
        );
        k.external = true;
        k
    }

    /// Rate-limits the key directory's bundle fetches (`None`: unlimited).
    pub fn with_bundle_fetch_limit(mut self, limit: Option<BundleFetchLimit>) -> Self {
        self.directory.set_fetch_limit(limit);
        self
    }

    pub fn mode(&self) -> CryptoMode {
        self.mode
    }

    /// `CostTable::cost_ns` from the cached table.
    fn cost_ns(&self, op: Op, bytes: u64) -> u64 {
        let (fixed, per_kib) = self.op_costs[op as usize];
        fixed + per_kib * bytes / 1024
    }

    fn charge(&mut self, runner: Runner, kind: Option<ContentKind>, op: Op, bytes: u64) -> u64 {
        let ns = self.cost_ns(op, bytes);
        self.counts.add(runner, kind, op, ns);
        ns
    }

    /// Charges a device's media crypto (attachment encrypt or decrypt of `bytes`), returning its
    /// cost: the blob work is the device's, beside its Signal work.
    pub fn charge_device(
        &mut self,
        runner: Runner,
        kind: Option<ContentKind>,
        op: Op,
        bytes: u64,
    ) -> u64 {
        self.charge(runner, kind, op, bytes)
    }

    /// Charges a gateway transport operation (Noise), returning its cost.
    pub fn charge_gateway(&mut self, op: Op, bytes: u64) -> u64 {
        self.charge(Runner::Gateway, None, op, bytes)
    }

    /// Makes sure device `d` has keys (real mode: generated from its own stream on first use).
    fn ensure_keys(&mut self, d: DeviceId, runner: Runner) -> u64 {
        let real = self.mode == CryptoMode::Real;
        let pq = self.protocol == Protocol::Pqxdh;
        let generation = self.devices[d.index()].generation;
        if self.devices[d.index()].keyed {
            return 0;
        }
        self.devices[d.index()].keyed = true;
        if real {
            let mut rng = self
                .tree
                .stream("crypto/device", ((generation as u64) << 32) | d.0 as u64);
            let mut keys = DeviceKeys::generate(d.0 & 0x3fff, 1, &mut rng);
            if pq {
                keys.enable_pqxdh(&mut rng);
            }
            self.devices[d.index()].keys = Some(Box::new(keys));
            self.devices[d.index()].rng = Some(Box::new(rng));
        }
        self.charge(runner, None, Op::KeyGeneration, 0)
    }

    /// The owner of `d` is online: it tops its one-time prekey pool up when it runs low
    /// (Signal's defaults: a batch of 100 when fewer than 10 are left).
    pub fn refill(&mut self, d: DeviceId, runner: Runner) {
        if self.directory.is_low(d) {
            let missing = self.refill_batch.saturating_sub(self.directory.pool_len(d));
            self.directory.upload(d, missing);
            self.counts.prekey_refills += 1;
            let ns = self.cost_ns(Op::KeyGeneration, 0) * missing as u64;
            self.counts.add(runner, None, Op::KeyGeneration, ns);
        }
    }

    /// The adversary of prekey-drain fault `adversary` fetches a bundle of `d` at `now` (the
    /// prekey-drain attack); a fetch over the rate limit is refused and counted.
    pub fn drain_one(&mut self, now: SimTime, adversary: u32, d: DeviceId) {
        let served = self
            .directory
            .fetch_limited(now, Requester::Adversary(adversary), d);
        if served.is_err() {
            self.counts.bundle_fetches_limited += 1;
        }
    }

    /// A reinstall: a new identity; every session of the device is gone.
    pub fn reset_identity(&mut self, d: DeviceId) {
        let s = &mut self.devices[d.index()];
        s.generation += 1;
        s.keys = None;
        s.keyed = false;
        s.rng = None;
        s.sessions.clear();
        s.groups = None;
    }

    /// Forgets the session with `peer` (a retry receipt said it is broken).
    ///
    /// The next message starts a new session; the old states stay archived in the record (as
    /// libsignal keeps them), so what the peer still sends on them decrypts.
    pub fn drop_session(&mut self, d: DeviceId, peer: DeviceId) {
        if let Some(s) = self.devices[d.index()].sessions.get_mut(&peer.0) {
            s.renew = true;
        }
    }

    /// Encrypts `plaintext` from `from` to `to`, setting up a session on first contact (the
    /// bundle comes from the key directory: `one_time` says whether it had a one-time prekey).
    /// Returns the bytes (real mode), what the receiver's model needs, and the CPU time charged.
    /// `now` books the bundle fetch in the key directory's rate limit.
    pub fn seal(
        &mut self,
        now: SimTime,
        from: DeviceId,
        to: DeviceId,
        plaintext: &[u8],
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> (Option<Box<[u8]>>, SealInfo, u64) {
        let mut ns = self.ensure_keys(from, runner);
        // A stale session (the peer reinstalled) is only found out through a retry receipt.
        let current = self.devices[from.index()].sessions.get(&to.0);
        if current.is_none_or(|s| s.renew) {
            let (served, wait_ns) = self
                .directory
                .fetch_honest(now, Requester::Device(from), to);
            if wait_ns > 0 {
                self.counts.bundle_fetches_limited_honest += 1;
            }
            if served.one_time_prekey.is_none() {
                self.counts.bundles_without_one_time += 1;
            }
            ns += self.start_session(from, to, kind, runner, served.one_time_prekey.is_some());
        }
        self.counts.plaintext_bytes += plaintext.len() as u64;
        ns += self.charge(runner, kind, Op::RatchetEncrypt, plaintext.len() as u64);
        let sender_generation = self.devices[from.index()].generation;
        let Some(session) = self.devices[from.index()].sessions.get_mut(&to.0) else {
            unreachable!("a session was just set up")
        };
        let info = SealInfo {
            prekey: session.prekey_pending,
            sender_key: false,
            sender_generation,
            target_generation: session.peer_generation,
        };
        let bytes = session
            .real
            .as_mut()
            .and_then(|r| r.encrypt(plaintext).ok())
            .map(|m| m.serialized().to_vec().into_boxed_slice());
        (bytes, info, ns)
    }

    fn start_session(
        &mut self,
        from: DeviceId,
        to: DeviceId,
        kind: Option<ContentKind>,
        runner: Runner,
        one_time: bool,
    ) -> u64 {
        let peer_runner = runner; // the responder's keys are made on its own account, below
        let mut ns = self.ensure_keys(to, peer_runner);
        let op = if self.protocol == Protocol::Pqxdh {
            Op::PqxdhInitiate
        } else {
            Op::X3dhInitiate
        };
        ns += self.charge(runner, kind, op, 0);
        let peer_generation = self.devices[to.index()].generation;
        let real = if self.mode == CryptoMode::Real {
            let archived = self.devices[from.index()]
                .sessions
                .remove(&to.0)
                .and_then(|s| s.real);
            self.real_session(from, to, one_time, archived)
        } else {
            None
        };
        let prev = self.devices[from.index()]
            .seen_identity
            .insert(to.0, peer_generation);
        if prev.is_some_and(|g| g != peer_generation) {
            self.security_code_changed += 1;
        }
        self.devices[from.index()].sessions.insert(
            to.0,
            Session {
                peer_generation,
                prekey_pending: true,
                renew: false,
                real,
            },
        );
        ns
    }

    /// Real X3DH/PQXDH with the peer's published bundle.
    fn real_session(
        &mut self,
        from: DeviceId,
        to: DeviceId,
        one_time: bool,
        archived: Option<Box<SessionRecord>>,
    ) -> Option<Box<SessionRecord>> {
        let (lo, hi) = (from.index().min(to.index()), from.index().max(to.index()));
        if lo == hi {
            return None;
        }
        let (left, right) = self.devices.split_at_mut(hi);
        let (a, b) = (&mut left[lo], &mut right[0]);
        let (me, peer) = if from.index() < to.index() {
            (a, b)
        } else {
            (b, a)
        };
        let peer_rng = peer.rng.as_mut()?;
        let bundle = peer.keys.as_mut()?.bundle(one_time, peer_rng);
        let keys = me.keys.as_ref()?;
        let rng = me.rng.as_mut()?;
        let mut record = archived.unwrap_or_default();
        use crate::e2ee::PreKeyStore;
        record
            .process_prekey_bundle(keys.identity(), keys.registration_id(), &bundle, rng)
            .ok()?;
        Some(record)
    }

    /// Decrypts at `to` what `from` sealed. The model decides; real mode must agree.
    #[allow(clippy::too_many_arguments)] // every input is explicit
    pub fn open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        bytes: Option<&[u8]>,
        info: SealInfo,
        plaintext_len: u64,
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> Result<(Option<Vec<u8>>, u64), OpenError> {
        if self.external {
            return Ok((None, 0));
        }
        let mut ns = self.ensure_keys(to, runner);
        let my_generation = self.devices[to.index()].generation;
        if info.target_generation != my_generation {
            return Err(OpenError::StaleSession);
        }
        let has_session = self.devices[to.index()]
            .sessions
            .get(&from.0)
            .is_some_and(|s| s.peer_generation == info.sender_generation);
        if !has_session && !info.prekey {
            return Err(OpenError::NoSession);
        }
        if info.prekey && !has_session {
            let op = if self.protocol == Protocol::Pqxdh {
                Op::PqxdhRespond
            } else {
                Op::X3dhRespond
            };
            ns += self.charge(runner, kind, op, 0);
            let prev = self.devices[to.index()]
                .seen_identity
                .insert(from.0, info.sender_generation);
            if prev.is_some_and(|g| g != info.sender_generation) {
                self.security_code_changed += 1;
            }
            self.devices[to.index()].sessions.insert(
                from.0,
                Session {
                    peer_generation: info.sender_generation,
                    prekey_pending: false,
                    renew: false,
                    // Real crypto only (`real_open` makes it on demand too); a record per
                    // session was gigabytes at a million devices with modeled crypto.
                    real: (self.mode == CryptoMode::Real).then(|| Box::new(SessionRecord::new())),
                },
            );
        }
        ns += self.charge(runner, kind, Op::RatchetDecrypt, plaintext_len);
        let plaintext = match (self.mode, bytes) {
            (CryptoMode::Real, Some(b)) => Some(
                self.real_open(to, from, b, info.prekey)
                    .ok_or(OpenError::Refused)?,
            ),
            (CryptoMode::Real, None) => return Err(OpenError::Refused),
            (CryptoMode::Modeled, _) => None,
        };
        // Having heard from `from`, this device's own messages to it need no prekey header.
        self.confirm(to, from);
        Ok((plaintext, ns))
    }

    fn real_open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        bytes: &[u8],
        prekey: bool,
    ) -> Option<Vec<u8>> {
        let me = &mut self.devices[to.index()];
        let rng = me.rng.as_mut()?;
        let keys = me.keys.as_ref()?;
        let session = me.sessions.get_mut(&from.0)?;
        let record = session
            .real
            .get_or_insert_with(|| Box::new(SessionRecord::new()));
        if prekey {
            let msg = PreKeySignalMessage::deserialize(bytes).ok()?;
            let out = record.decrypt_prekey(&msg, keys.as_ref(), rng).ok()?;
            if let (Some(id), Some(keys)) = (out.used_pre_key, me.keys.as_mut()) {
                keys.remove_pre_key(id);
            }
            Some(out.plaintext)
        } else {
            let msg = SignalMessage::deserialize(bytes).ok()?;
            record.decrypt(&msg, rng).ok()
        }
    }

    /// The sender heard back from `peer` on this session: later messages carry no prekey header.
    pub fn confirm(&mut self, d: DeviceId, peer: DeviceId) {
        if let Some(s) = self.devices[d.index()].sessions.get_mut(&peer.0) {
            s.prekey_pending = false;
        }
    }
    /// Encrypts a group message from `from` to group `g` (membership `epoch`) once, with the
    /// sender's Sender Key, made on first use and made anew when the membership moved on (a
    /// member left). Each device of `targets` that lacks the key first gets its distribution
    /// message over the pairwise session (set up on first contact, as for a 1:1 message).
    #[allow(clippy::too_many_arguments)] // every input is explicit
    pub fn group_seal(
        &mut self,
        now: SimTime,
        from: DeviceId,
        g: GroupId,
        epoch: u32,
        targets: &[DeviceId],
        plaintext: &[u8],
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> GroupSealed {
        let mut ns = self.ensure_keys(from, runner);
        let real = self.mode == CryptoMode::Real;
        let current = self.devices[from.index()]
            .groups
            .as_ref()
            .and_then(|k| k.own.get(&g.0))
            .map(|k| k.epoch);
        if current != Some(epoch) {
            if current.is_some() {
                self.counts.sender_key_rotations += 1;
            }
            ns += self.charge(runner, kind, Op::KeyGeneration, 0);
            let key_id = self.next_sender_key;
            self.next_sender_key += 1;
            let state = &mut self.devices[from.index()];
            let fresh = match (real, state.rng.as_mut()) {
                (true, Some(rng)) => Some(Box::new(SenderKeyState::generate(rng.as_mut()))),
                _ => None,
            };
            let own = OwnSenderKey {
                key_id,
                epoch,
                holders: BTreeSet::new(),
                real: fresh,
            };
            state
                .groups
                .get_or_insert_with(Box::default)
                .own
                .insert(g.0, own);
        }
        let lacking: Vec<DeviceId> = {
            let own = self.own_key(from, g);
            targets
                .iter()
                .copied()
                .filter(|d| *d != from && !own.is_some_and(|k| k.holders.contains(&d.0)))
                .collect()
        };
        let skdm = self.distribution_plaintext(from, g);
        let mut distributions = Vec::with_capacity(lacking.len());
        for d in lacking {
            let (bytes, info, n) = self.seal(now, from, d, &skdm, kind, runner);
            ns += n;
            distributions.push((d, (bytes, info)));
            self.counts.sender_key_distributions += 1;
        }
        self.counts.plaintext_bytes += plaintext.len() as u64;
        ns += self.charge(runner, kind, Op::SenderKeyEncrypt, plaintext.len() as u64);
        let state = &mut self.devices[from.index()];
        let generation = state.generation;
        let rng = state.rng.as_mut();
        let Some(own) = state.groups.as_mut().and_then(|k| k.own.get_mut(&g.0)) else {
            unreachable!("the sender key was just made")
        };
        own.holders.extend(distributions.iter().map(|(d, _)| d.0));
        let bytes = match (own.real.as_mut(), rng) {
            (Some(key), Some(rng)) => key
                .encrypt(plaintext, rng.as_mut())
                .ok()
                .map(|m| m.serialized().to_vec().into_boxed_slice()),
            _ => None,
        };
        let info = SealInfo {
            prekey: false,
            sender_key: true,
            sender_generation: generation,
            target_generation: own.key_id,
        };
        GroupSealed {
            shared: (bytes, info),
            distributions,
            ns,
        }
    }

    /// The membership epoch `d`'s current Sender Key in `g` was made for.
    pub fn sender_key_epoch(&self, d: DeviceId, g: GroupId) -> Option<u32> {
        self.own_key(d, g).map(|k| k.epoch)
    }

    fn own_key(&self, d: DeviceId, g: GroupId) -> Option<&OwnSenderKey> {
        self.devices[d.index()].groups.as_ref()?.own.get(&g.0)
    }

    /// The distribution message of `from`'s key in `g`, padded to [`SKDM_PLAINTEXT_LEN`]
    /// (zeros in modeled crypto).
    fn distribution_plaintext(&self, from: DeviceId, g: GroupId) -> Vec<u8> {
        let mut out = vec![0u8; SKDM_PLAINTEXT_LEN];
        if let Some(real) = self.own_key(from, g).and_then(|k| k.real.as_ref()) {
            let m = real.distribution_message();
            let bytes = m.serialized();
            if bytes.len() < SKDM_PLAINTEXT_LEN {
                out[0] = bytes.len() as u8;
                out[1..=bytes.len()].copy_from_slice(bytes);
            }
        }
        out
    }

    /// A member asked `from` to send `msg` again (it could not decrypt): the member gets the
    /// key's distribution again with the re-encryption.
    pub fn forget_holder(&mut self, from: DeviceId, g: GroupId, member: DeviceId) {
        let own = self.devices[from.index()]
            .groups
            .as_mut()
            .and_then(|k| k.own.get_mut(&g.0));
        if let Some(own) = own {
            own.holders.remove(&member.0);
        }
    }

    /// Takes in a Sender Key distribution that arrived (and decrypted) at `to`: the key of
    /// `from` in `g` with the model id `key_id`; `plaintext` is the decrypted distribution in
    /// real crypto.
    pub fn install_sender_key(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        g: GroupId,
        key_id: u32,
        plaintext: Option<&[u8]>,
    ) {
        let keys = self.devices[to.index()]
            .groups
            .get_or_insert_with(Box::default);
        let held = keys.received.entry((from.0, g.0)).or_default();
        held.ids.retain(|&k| k != key_id);
        held.ids.insert(0, key_id);
        held.ids.truncate(PEER_SENDER_KEYS_MAX);
        let parsed = plaintext
            .and_then(|p| p.split_first())
            .and_then(|(&n, rest)| rest.get(..n as usize))
            .and_then(|b| SenderKeyDistributionMessage::deserialize(b).ok());
        if let Some(m) = parsed {
            held.real
                .get_or_insert_with(Box::default)
                .add(SenderKeyState::from_distribution(&m));
        }
    }

    /// Decrypts at `to` the Sender Key ciphertext `from` sent to `g`. The model decides (does
    /// `to` hold the key it names?); real mode must agree.
    #[allow(clippy::too_many_arguments)] // every input is explicit
    pub fn group_open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        g: GroupId,
        bytes: Option<&[u8]>,
        info: SealInfo,
        len: u64,
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> Result<(Option<Vec<u8>>, u64), OpenError> {
        if self.external {
            return Ok((None, 0));
        }
        let mut ns = self.ensure_keys(to, runner);
        let held = self.devices[to.index()]
            .groups
            .as_mut()
            .and_then(|k| k.received.get_mut(&(from.0, g.0)));
        let Some(held) = held.filter(|h| h.ids.contains(&info.target_generation)) else {
            return Err(OpenError::NoSenderKey);
        };
        let plaintext = match (self.mode, bytes, held.real.as_mut()) {
            (CryptoMode::Real, Some(b), Some(record)) => {
                Some(record.decrypt(b).map_err(|_| OpenError::Refused)?)
            }
            (CryptoMode::Real, _, _) => return Err(OpenError::Refused),
            (CryptoMode::Modeled, _, _) => None,
        };
        ns += self.charge(runner, kind, Op::SenderKeyDecrypt, len);
        Ok((plaintext, ns))
    }
}
