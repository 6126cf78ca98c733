//! What strangers do to a live server's ports, counted by kind, and the bounds that contain
//! it. A live server faces real sockets: garbage, stalled handshakes, slow or idle
//! connections, oversize frames and replays each cost it a bounded amount and leave a count
//! that the live summary and `serve --log` show, so that an operator sees the abuse and
//! the load run's figures are not silently shaped by it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One kind of abuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbuseKind {
    /// A connection accepted past the listener's limit, closed at once.
    RefusedConnection,
    /// A Noise handshake that failed (bad bytes or a peer that closed).
    HandshakeFailed,
    /// A Noise handshake not finished within the handshake bound.
    HandshakeTimeout,
    /// A transport message longer than the link allows.
    OversizeFrame,
    /// Bytes that do not decode, or a Noise message that does not open.
    Garbage,
    /// A connection that sent nothing for the idle bound.
    IdleTimeout,
    /// A transport message begun and not finished within the frame bound (slowloris).
    StalledFrame,
    /// A device frame of an earlier load run, or whose message id names another run than its
    /// connection: a late frame of a finished run, or a replay.
    StaleRunFrame,
}

impl AbuseKind {
    pub const ALL: [AbuseKind; 8] = [
        AbuseKind::RefusedConnection,
        AbuseKind::HandshakeFailed,
        AbuseKind::HandshakeTimeout,
        AbuseKind::OversizeFrame,
        AbuseKind::Garbage,
        AbuseKind::IdleTimeout,
        AbuseKind::StalledFrame,
        AbuseKind::StaleRunFrame,
    ];

    /// The name in logs, the summary and summary.json.
    pub fn name(self) -> &'static str {
        match self {
            AbuseKind::RefusedConnection => "refused_connections",
            AbuseKind::HandshakeFailed => "handshakes_failed",
            AbuseKind::HandshakeTimeout => "handshake_timeouts",
            AbuseKind::OversizeFrame => "oversize_frames",
            AbuseKind::Garbage => "garbage",
            AbuseKind::IdleTimeout => "idle_timeouts",
            AbuseKind::StalledFrame => "stalled_frames",
            AbuseKind::StaleRunFrame => "stale_run_frames",
        }
    }
}

/// The counters, shared by every task of a process.
#[derive(Debug, Default)]
pub struct Abuse {
    counts: [AtomicU64; 8],
}

impl Abuse {
    pub fn count(&self, k: AbuseKind) {
        self.counts[k as usize].fetch_add(1, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> AbuseCounts {
        AbuseCounts(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::Relaxed)
        }))
    }
}

/// The counters at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbuseCounts(pub [u64; 8]);

impl AbuseCounts {
    pub fn get(&self, k: AbuseKind) -> u64 {
        self.0[k as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// What happened since `earlier`.
    pub fn since(&self, earlier: &AbuseCounts) -> AbuseCounts {
        AbuseCounts(std::array::from_fn(|i| {
            self.0[i].saturating_sub(earlier.0[i])
        }))
    }
    /// The kinds with a count, and their counts.
    pub fn nonzero(&self) -> Vec<(AbuseKind, u64)> {
        AbuseKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
    /// One line for a summary: "none", or each kind with its count.
    pub fn describe(&self) -> String {
        let kinds = self.nonzero();
        if kinds.is_empty() {
            return "none".to_string();
        }
        let parts: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        parts.join(", ")
    }
}

/// The bounds every live listener and connection keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections per listener; past it a new connection is closed at once.
    pub connections_max: usize,
    /// A connection that receives nothing for this long is closed (peers send keepalives at a
    /// third of it).
    pub idle: Duration,
    /// A Noise handshake must finish within this.
    pub handshake: Duration,
    /// A transport message, once begun, must arrive whole within this.
    pub frame: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections_max: 10_000,
            idle: Duration::from_secs(60),
            handshake: Duration::from_secs(5),
            frame: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_since_an_earlier_snapshot() {
        let a = Abuse::default();
        a.count(AbuseKind::Garbage);
        let first = a.snapshot();
        a.count(AbuseKind::Garbage);
        a.count(AbuseKind::StaleRunFrame);
        let now = a.snapshot();
        assert_eq!(now.get(AbuseKind::Garbage), 2);
        assert_eq!(now.total(), 3);
        let d = now.since(&first);
        assert_eq!(
            d.nonzero(),
            vec![(AbuseKind::Garbage, 1), (AbuseKind::StaleRunFrame, 1)]
        );
        assert_eq!(AbuseCounts::default().describe(), "none");
        assert_eq!(d.describe(), "garbage 1, stale_run_frames 1");
        let names: std::collections::BTreeSet<_> =
            AbuseKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), AbuseKind::ALL.len(), "names are distinct");
        for (i, k) in AbuseKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "ALL is in declaration order");
        }
    }
}
