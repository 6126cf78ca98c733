//! Devices' Signal state, in one arena the device nodes call into (like a keystore library on a phone): identity keys generated lazily from each
//! device's own seeded stream, one session per (device, peer device), X3DH (or PQXDH) on first
//! contact, the Double Ratchet for every message. The bundles of new sessions come from the
//! gatekeeper's key directory (`nodes::key_directory`), a server the driver keeps apart and
//! passes in where a fetch or a refill happens.
//!
//! Two modes give the same run: `real` performs every operation with the `e2ee` module;
//! `modeled` skips the work. Both decide success and failure from the same model (a session is
//! good while the peer's identity generation is the one it was built for), count the same
//! operations and charge the same cost-table time, so summary.json is identical; in real mode
//! the actual decryption must agree with the model, and a disagreement is a decrypt failure.
//!
//! This file holds the per-device key state and its lifecycle; `pairwise` seals and opens
//! 1:1 Signal messages (sessions, X3DH or PQXDH, the ratchet), `group` does the same with
//! Sender Keys, and `accounting` prices every operation from the cost table and counts it.

mod accounting;
mod group;
mod pairwise;
mod peers;

use peers::{Peers, Session};
mod rooms;

pub use accounting::{CryptoCounts, Runner};
use group::GroupKeys;
pub use group::GroupSealed;
pub use rooms::{commit_len, mls_len, Room, RoomSealed, RoomSend};

use super::key_directory::{KeyDirectory, Requester};
use crate::collections::vec_map::VecMap;
use crate::e2ee::x3dh::SignedPreKeysSeen;
use crate::e2ee::xeddsa::SharedVerifiers;
use crate::e2ee::{DeviceKeys, SessionRecord};
use crate::engine::{RngTree, SimRng, SimTime};
use crate::scenario::{CryptoMode, Protocol};
use crate::wire::{DeviceId, SealInfo};

/// Plaintext bytes of a Sender Key distribution message as it travels inside a pairwise
/// session: the serialized message (about 80 bytes) padded to a fixed size, so that real and
/// modeled crypto charge the same.
pub const SKDM_PLAINTEXT_LEN: usize = 96;

// The cost model's vocabulary lives with the scenario, which names a cost table.
pub use crate::scenario::cost_table::{CostTable, Op};

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
    /// Per peer device: the identity seen last and the session, if one is up (a sorted `Vec`:
    /// a device talks to a handful of peers).
    peers: Peers,
    /// Real crypto only: the Signal session record per peer device that has one (a session
    /// may lack it until its first real message). Boxed, absent with modeled crypto.
    records: Option<Box<VecMap<u32, Box<SessionRecord>>>>,
    /// Sender Keys, own and received; boxed, absent for devices in no group.
    groups: Option<Box<GroupKeys>>,
}

impl DeviceState {
    /// The real record of the session with `peer`, if there is one.
    fn record_mut(&mut self, peer: u32) -> Option<&mut SessionRecord> {
        self.records.as_mut()?.get_mut(&peer).map(|r| &mut **r)
    }

    /// Takes the real record of the session with `peer` out (to archive it in a new one).
    fn take_record(&mut self, peer: u32) -> Option<Box<SessionRecord>> {
        self.records.as_mut()?.remove(&peer)
    }

    /// Sets (or, with `None`, removes) the real record of the session with `peer`.
    fn set_record(&mut self, peer: u32, record: Option<Box<SessionRecord>>) {
        match record {
            Some(r) => {
                self.records
                    .get_or_insert_with(Box::default)
                    .insert(peer, r);
            }
            None => {
                self.take_record(peer);
            }
        }
    }
}

/// Who seals a message, and what a new session's bundle fetch needs: the sending device, the
/// node kind its work is charged to, the time (the key directory's rate limit books the fetch)
/// and the key directory that serves the bundle.
pub struct Sealer<'a> {
    pub now: SimTime,
    pub from: DeviceId,
    pub runner: Runner,
    pub directory: &'a mut KeyDirectory,
}

/// `kind` as [`SealInfo::content`] holds it.
pub(crate) fn content_code(kind: Option<crate::scenario::ContentKind>) -> u8 {
    use crate::scenario::ContentKind;
    kind.and_then(|k| ContentKind::ALL.iter().position(|x| *x == k))
        .map_or(0, |i| i as u8 + 1)
}

/// The content kind a [`SealInfo::content`] names (`None`: control).
pub(crate) fn content_of(code: u8) -> Option<crate::scenario::ContentKind> {
    crate::scenario::ContentKind::ALL
        .get((code as usize).checked_sub(1)?)
        .copied()
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
    /// The longest permit wait (ns) of the seals since the device last took it (see
    /// [`Self::take_wait`]).
    pending_wait_ns: u64,
    pub security_code_changed: u64,
    /// Next model id for a Sender Key.
    next_sender_key: u32,
    /// Sessions exist before the clock starts (`[e2ee] sessions = "established"`).
    established: bool,
    /// MLS rooms, under the MIMI design (see `rooms`); `None` under the hub's Signal.
    rooms: Option<Box<rooms::Rooms>>,
    /// Sender-key signing keys prepared once for all their holders (real crypto).
    verifiers: SharedVerifiers,
    /// Signed prekeys already checked by some device of the run (real crypto).
    prekeys_seen: SignedPreKeysSeen,
}

impl Keyring {
    /// A cache hint for device `d`'s sessions and seen identities, the heap half of its key
    /// state; call it once [`Keyring::prefetch`] has brought the state itself.
    pub fn prefetch_sessions(&self, d: DeviceId) {
        if let Some(state) = self.devices.get(d.index()) {
            state.peers.prefetch();
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
    ) -> Self {
        let states = (0..devices)
            .map(|_| DeviceState {
                generation: 0,
                keys: None,
                keyed: false,
                rng: None,
                peers: Peers::default(),
                records: None,
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
            pending_wait_ns: 0,
            security_code_changed: 0,
            next_sender_key: 0,
            established: false,
            rooms: None,
            verifiers: SharedVerifiers::default(),
            prekeys_seen: SignedPreKeysSeen::default(),
        }
    }

    /// Sessions set up before the clock starts, off the books (see
    /// [`crate::scenario::SessionSetup::Established`]).
    pub fn with_established_sessions(mut self, established: bool) -> Self {
        self.established = established;
        self
    }

    /// A keyring for a driver that encrypts and decrypts itself (the live load generator):
    /// devices pass every copy through.
    pub fn external(devices: usize) -> Self {
        let (mode, protocol) = (CryptoMode::Modeled, Protocol::X3dh);
        let mut k = Keyring::new(devices, mode, protocol, 0, CostTable::default());
        k.external = true;
        k
    }

    pub fn mode(&self) -> CryptoMode {
        self.mode
    }

    /// The longest permit wait of the seals since the last call: the device that sealed holds
    /// its message that long past their CPU time (a message's seals fetch side by side).
    pub fn take_wait(&mut self) -> u64 {
        std::mem::take(&mut self.pending_wait_ns)
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

    /// The owner of `d` is online: it tops its one-time prekey pool in `directory` up when it
    /// runs low (see [`KeyDirectory::refill`]), and pays for the keys it makes.
    /// Under MIMI the pool holds MLS key packages, and a refill makes key packages.
    pub fn refill(&mut self, directory: &mut KeyDirectory, d: DeviceId, runner: Runner) {
        if let Some(missing) = directory.refill(d) {
            self.counts.prekey_refills += 1;
            let op = if self.is_mls() {
                Op::MlsKeyPackage
            } else {
                Op::KeyGeneration
            };
            let ns = self.cost_ns(op, 0) * missing as u64;
            self.counts.add(runner, None, op, ns);
        }
    }

    /// The adversary of prekey-drain fault `adversary` fetches a bundle of `d` at `now` (the
    /// prekey-drain attack); a fetch over the rate limit is refused and counted.
    pub fn drain_one(
        &mut self,
        directory: &mut KeyDirectory,
        now: SimTime,
        adversary: u32,
        d: DeviceId,
    ) {
        let served = directory.fetch_limited(now, Requester::Adversary(adversary), d);
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
        s.peers.drop_sessions();
        s.records = None;
        s.groups = None;
        self.leave_rooms(d);
    }

    /// A retry receipt from `peer`: renews the session unless it is already a new one for the
    /// peer's current identity that the peer has not answered yet (the receipt carries the
    /// peer's registration; the copy it asks about went out on the session before). A client
    /// fetches a bundle once per new identity, not once per receipt: a burst of receipts from
    /// one reinstalled device would otherwise use up the key directory's permits for that pair
    /// and wait out its limit for each.
    pub fn renew_for_retry(&mut self, d: DeviceId, peer: DeviceId) {
        let peer_generation = self.devices[peer.index()].generation;
        let fresh = self.devices[d.index()]
            .peers
            .session(peer.0)
            .is_some_and(|s| s.prekey_pending && !s.renew && s.peer_generation == peer_generation);
        if !fresh {
            self.drop_session(d, peer);
        }
    }

    /// Forgets the session with `peer` (a retry receipt said it is broken).
    ///
    /// The next message starts a new session; the old states stay archived in the record (as
    /// libsignal keeps them), so what the peer still sends on them decrypts.
    pub fn drop_session(&mut self, d: DeviceId, peer: DeviceId) {
        self.devices[d.index()].peers.renew(peer.0);
    }
}

#[cfg(test)]
mod tests;
