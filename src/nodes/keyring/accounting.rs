//! Crypto accounting: every operation a device or the gateway runs is priced from the
//! scenario's cost table and counted per node kind and per message kind, the same in real and
//! modeled crypto, so that both give the same summary.

use super::{Keyring, Op};
use crate::scenario::ContentKind;
use std::collections::BTreeMap;

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
    /// Honest fetches over the rate limit: the client waited for the permit, then fetched.
    pub bundle_fetches_limited_honest: u64,
    /// How long those clients waited in all, ns (their messages left that much later).
    pub bundle_fetch_wait_ns: u64,
    /// MLS commits the hub refused because another member committed the same epoch first
    /// (the MIMI design; the loser processes the winner's commit and sends again).
    pub mls_commit_conflicts: u64,
    /// MLS commits of a membership change (a member left and a newcomer joined), the room's
    /// creation aside: MIMI's re-keying, against the hub design's `sender_key_rotations`.
    pub mls_membership_commits: u64,
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
        if self.mls_membership_commits > 0 {
            out.insert(
                "mls_membership_commits".to_string(),
                self.mls_membership_commits,
            );
        }
        if self.mls_commit_conflicts > 0 {
            out.insert(
                "mls_commit_conflicts".to_string(),
                self.mls_commit_conflicts,
            );
        }
        // Only when a client waited: the runs before this counter keep their files.
        if self.bundle_fetch_wait_ns > 0 {
            out.insert(
                "bundle_fetch_wait_ns".to_string(),
                self.bundle_fetch_wait_ns,
            );
        }
        out
    }
}

impl Keyring {
    /// `CostTable::cost_ns` from the cached table.
    pub(super) fn cost_ns(&self, op: Op, bytes: u64) -> u64 {
        let (fixed, per_kib) = self.op_costs[op as usize];
        fixed + per_kib * bytes / 1024
    }

    pub(super) fn charge(
        &mut self,
        runner: Runner,
        kind: Option<ContentKind>,
        op: Op,
        bytes: u64,
    ) -> u64 {
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
}
