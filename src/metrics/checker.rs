//! The checker: reads the ledger after the drain and names every violation with its evidence:
//! the message, its conversation, the hops it took, and the faults active during its life.
//! Safety first (nothing shown twice, nothing out of order), then liveness (VOPR): once the
//! last fault heals, every accepted message must be delivered within the drain.

use super::ledger::{Ledger, MsgRecord, QueuedAt};
use crate::engine::time::format_duration_ns;
use crate::wire::{MsgId, UserId};
use serde::Serialize;
use std::collections::BTreeMap;

/// A fault's window, as the checker reports it.
#[derive(Clone, Debug)]
pub struct FaultWindow {
    pub label: String,
    pub at_ns: u64,
    /// `None`: never heals.
    pub end_ns: Option<u64>,
}

/// One violated guarantee, with the evidence an engineer needs at 3 a.m.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Violation {
    pub kind: String,
    pub msg: u64,
    pub conversation: String,
    pub path: String,
    pub created_s: f64,
    pub hops: String,
    pub faults_active: Vec<String>,
}

/// Whether every accepted message was delivered once the faults healed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Liveness {
    /// When the last fault healed (seconds), if every fault heals.
    pub last_heal_s: Option<f64>,
    /// Accepted messages still undelivered at the end of the drain.
    pub stuck: u64,
    /// Messages that failed their users (see [`is_failed`]).
    pub failed: u64,
    /// Of those, the ones still on their way when the drain ended.
    pub queued_at_end: u64,
    pub verdict: String,
}

/// Bound on violations listed per kind.
pub const VIOLATIONS_PER_KIND_MAX: usize = 10;

fn hops(r: &MsgRecord) -> String {
    let mut h = vec![if r.accepted() {
        "accepted by the sender's server"
    } else {
        "never accepted"
    }
    .to_string()];
    if r.crossed_gateway() {
        h.push("crossed the gateway".to_string());
    }
    if r.stored_offline > 0 {
        h.push(format!("stored offline {}x", r.stored_offline));
    }
    h.push(format!(
        "shown on {} of {} devices",
        r.shown_mask.count_ones(),
        r.expected_devices()
    ));
    if r.expired_mask != 0 {
        h.push(format!(
            "expired on {} devices",
            r.expired_mask.count_ones()
        ));
    }
    if r.duplicates_suppressed > 0 {
        h.push(format!("{} duplicates suppressed", r.duplicates_suppressed));
    }
    if r.undecryptable_mask != 0 {
        let why = match r.retry_refused {
            Some(super::ledger::RetryRefusal::Exhausted) => "retries exhausted",
            Some(super::ledger::RetryRefusal::Evicted) => "the sender's plaintext cache evicted it",
            None => "no re-encryption arrived (sender offline or receipt lost)",
        };
        h.push(format!(
            "undecryptable on {} devices: {why}",
            r.undecryptable_mask.count_ones()
        ));
    }
    h.join(", ")
}

fn active_faults(r: &MsgRecord, faults: &[FaultWindow], end_ns: u64) -> Vec<String> {
    let born = r.created.as_nanos();
    // A message still stuck lived until the end; a delivered one until its last showing.
    let until = if !is_stuck(r) && r.last_shown.as_nanos() > born {
        r.last_shown.as_nanos()
    } else {
        end_ns
    };
    faults
        .iter()
        .filter(|f| f.at_ns <= until && f.end_ns.is_none_or(|e| e >= born))
        .map(|f| f.label.clone())
        .collect()
}

/// The violations in the ledger, at most [`VIOLATIONS_PER_KIND_MAX`] per kind.
pub fn violations(
    ledger: &Ledger,
    faults: &[FaultWindow],
    user: &dyn Fn(UserId) -> String,
    end_ns: u64,
) -> Vec<Violation> {
    let records = ledger.records();
    let mut out = Vec::new();
    let push = |kind: &str, i: usize, out: &mut Vec<Violation>| {
        if out.iter().filter(|v| v.kind == kind).count() >= VIOLATIONS_PER_KIND_MAX {
            return;
        }
        let r = &records[i];
        out.push(Violation {
            kind: kind.to_string(),
            msg: i as u64,
            conversation: format!("{} -> {}", user(r.from_user), user(r.to_user)),
            path: r.path.key().to_string(),
            created_s: r.created.as_secs_f64(),
            hops: hops(r),
            faults_active: active_faults(r, faults, end_ns),
        });
    };
    for (i, r) in records.iter().enumerate() {
        if is_stuck(r) && r.undecryptable_mask == 0 && r.queued_at_end.is_some() {
            push("queued_at_end", i, &mut out);
        } else if is_stuck(r) && r.undecryptable_mask == 0 {
            push("lost", i, &mut out);
        } else if !r.accepted() && !r.refused() {
            push("unsent", i, &mut out);
        } else if is_stuck(r) {
            push("decrypt_failure", i, &mut out);
        }
        if r.duplicates_shown > 0 {
            push("duplicate", i, &mut out);
        }
    }
    for m in &ledger.out_of_order_examples {
        push("out_of_order", m.0 as usize, &mut out);
    }
    out
}

/// Accepted, and some expected device neither showed it nor gave it up (expired, unreachable).
pub fn is_stuck(r: &MsgRecord) -> bool {
    if !r.accepted() {
        return false;
    }
    // (Undecryptable copies are decrypt failures, reported as such, not lost.)
    let expected = r.expected_mask;
    expected & !(r.shown_mask | r.expired_mask | r.unreachable_mask) != 0
}

/// Whether a message failed its user: composed and never accepted (not refused by policy), or
/// accepted and some expected device neither showed it nor gave it up.
pub fn is_failed(r: &MsgRecord) -> bool {
    (!r.accepted() && !r.refused()) || is_stuck(r)
}

/// Liveness from the users' side: every message composed ends delivered, unreachable by
/// policy or expired; anything else failed, whether lost, undecryptable, still in an outbox,
/// or still queued behind a node when the drain ended (reported apart: late, not lost).
pub fn liveness(ledger: &Ledger, faults: &[FaultWindow], end_ns: u64) -> Liveness {
    let records = ledger.records();
    let failed: Vec<MsgId> = (0..records.len())
        .filter(|&i| is_failed(&records[i]))
        .map(|i| MsgId(i as u64))
        .collect();
    let stuck = failed
        .iter()
        .filter(|m| is_stuck(&records[m.0 as usize]))
        .count() as u64;
    // Where the messages still on their way at the end were, the most common place first.
    let mut queued: BTreeMap<QueuedAt, u64> = BTreeMap::new();
    for m in &failed {
        if let Some(at) = records[m.0 as usize].queued_at_end {
            *queued.entry(at).or_default() += 1;
        }
    }
    let queued_total: u64 = queued.values().sum();
    let unsent = failed
        .iter()
        .filter(|m| {
            let r = &records[m.0 as usize];
            !r.accepted() && r.queued_at_end.is_none()
        })
        .count() as u64;
    let heals: Option<Vec<u64>> = faults.iter().map(|f| f.end_ns).collect();
    let last_heal = heals.map(|h| h.into_iter().max().unwrap_or(0));
    let first = failed
        .iter()
        .take(5)
        .map(|m| m.0.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let n = failed.len();
    let mut verdict = match (faults.is_empty(), last_heal, n) {
        (_, _, 0) => {
            "ok: every message composed was delivered, unreachable by policy or expired".to_string()
        }
        (true, _, n) => format!(
            "FAILED: {n} messages not delivered when the drain ended, with no fault injected (first: {first})"
        ),
        (false, None, n) => format!(
            "FAILED: {n} messages not delivered; a fault never heals (name `failed` in [expect] to allow it) (first: {first})"
        ),
        (false, Some(t), n) => format!(
            "FAILED: {n} messages not delivered {} after the last fault healed (first: {first})",
            format_duration_ns(end_ns.saturating_sub(t)),
        ),
    };
    if queued_total > 0 {
        let (at, _) = queued
            .iter()
            .max_by_key(|(at, c)| (**c, std::cmp::Reverse(**at)))
            .expect("queued_total > 0");
        verdict.push_str(&format!(
            "; queued at end: {queued_total}, {}'s queue was still draining",
            at.label()
        ));
    }
    if unsent > 0 {
        verdict.push_str(&format!(
            "; never accepted by the sender's server: {unsent} (still in an outbox)"
        ));
    }
    Liveness {
        last_heal_s: last_heal
            .filter(|_| !faults.is_empty())
            .map(|t| t as f64 / 1e9),
        stuck,
        failed: n as u64,
        queued_at_end: queued_total,
        verdict,
    }
}
