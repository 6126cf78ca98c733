//! The run's summary: the counters of SCENARIOS.md computed from the ledger after the drain,
//! the latency percentiles per path kind, throughput and utilization, and the verdict of
//! `[expect]`. Everything here is deterministic; wall-clock figures live in perf.json.

use super::checker::{Liveness, Violation};
use super::inbox::InboxSummary;
use super::ledger::{Ledger, PathKind, Records, EXAMPLES_MAX};
use super::media::MediaCounters;
use crate::scenario::{held_per_path_kind, Bound, Expectation};
use crate::wire::MsgId;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Delivery counters, overall or for one path kind.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counters {
    /// Messages the senders created.
    pub sent: u64,
    /// Messages shown on every one of the recipient's devices.
    pub delivered: u64,
    /// Accepted by the sender's server, not delivered to a reachable device by the end, and
    /// nowhere on its way when the drain ended.
    pub lost: u64,
    /// Shown twice on one device.
    pub duplicates: u64,
    /// Shown after a later message of the same sender device.
    pub out_of_order: u64,
    pub decrypt_failures: u64,
    /// Refused: the recipient (or sender) had not enabled third-party chats.
    pub unreachable: u64,
    /// Dropped from an offline queue after the TTL.
    pub expired: u64,
    /// Never accepted by a server by the end (still in the sender's outbox).
    pub unsent: u64,
    /// Not delivered, but a frame of it was still on its way (on a link or in a server's
    /// queue) when the drain ended: late, not lost.
    pub queued_at_end: u64,
    /// What the users lost: every message composed that ended neither delivered, unreachable
    /// by policy nor expired (lost + decrypt_failures + unsent + queued_at_end). The verdict
    /// always holds it to 0 unless `[expect]` names `failed`.
    pub failed: u64,
    /// Delivered share of what could be delivered: delivered / (sent - unreachable).
    pub delivered_ratio: f64,
}

impl Counters {
    /// `failed` from its parts: what the users lost (see the field).
    pub fn failed_sum(&self) -> u64 {
        self.lost + self.decrypt_failures + self.unsent + self.queued_at_end
    }
}

/// Latency percentiles in milliseconds (created -> shown, per device delivery).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub delivered_p50: f64,
    pub delivered_p99: f64,
    pub delivered_p999: f64,
    pub delivered_max: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Latency {
            samples: h.len(),
            delivered_p50: ms(h.value_at_quantile(0.50)),
            delivered_p99: ms(h.value_at_quantile(0.99)),
            delivered_p999: ms(h.value_at_quantile(0.999)),
            delivered_max: ms(h.max()),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct PathSummary {
    #[serde(flatten)]
    pub counters: Counters,
    #[serde(flatten)]
    pub latency: Latency,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Utilization {
    pub utilization_mean: f64,
    pub utilization_peak: f64,
    /// Mean time a message frame admitted after the warm-up waited for a core, µs.
    pub message_wait_mean_us: f64,
    /// The same for control frames (acks, receipts, connects).
    pub control_wait_mean_us: f64,
}

/// One evaluated `[expect]` line.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    pub key: String,
    pub bound: String,
    /// The measured value (latencies in ms); `None` if the key is not measured.
    pub value: Option<f64>,
    pub ok: bool,
    /// Why the verdict has this line.
    pub origin: Origin,
}

/// Where a verdict line comes from: the scenario names the key, or the verdict adds it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Named in `[expect]`.
    Named,
    /// One path kind held to an unprefixed service-level key (`interop.delivered_p99` from
    /// `delivered_p99`); the field is the key as `[expect]` names it.
    PerPathKind { from: String },
    /// Checked although `[expect]` does not name it (liveness and decrypt failures).
    Always,
}

/// Evidence for a violation: the first few messages concerned.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Evidence {
    pub lost: Vec<u64>,
    pub duplicates: Vec<u64>,
    pub out_of_order: Vec<u64>,
    pub expired: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub scenario_hash: String,
    pub seed: u64,
    pub version: String,
    pub fingerprint: String,
    pub events_processed: u64,
    pub end_time_s: f64,
    #[serde(flatten)]
    pub counters: Counters,
    #[serde(flatten)]
    pub latency: Latency,
    /// `[run] warmup`: messages composed before this are left out of the latency percentiles
    /// (and its sampling intervals out of utilization); every counter still counts them.
    pub warmup_s: f64,
    /// Device deliveries of those messages.
    pub deliveries_in_warmup: u64,
    pub tamper_detected: u64,
    pub replay_rejected: u64,
    pub duplicates_suppressed: u64,
    pub read: u64,
    /// The send window the rates below are taken over (`[run] duration`), seconds.
    pub send_window_s: f64,
    /// Messages delivered per second (a message counts once, when its last expected device
    /// shows it): the mean over the send window, and the peak of the intervals within it.
    pub messages_delivered_per_s_mean: f64,
    pub messages_delivered_per_s_peak: f64,
    /// Device copies shown per second, same windows: a message to three devices counts three.
    /// `[expect]` still accepts this rate's older name, `delivered_per_s_*`.
    pub device_deliveries_per_s_mean: f64,
    pub device_deliveries_per_s_peak: f64,
    /// Media transfers: `media_uploads`, `media_bytes_downloaded`, `media_download_p99`, ...
    #[serde(flatten)]
    pub media: MediaCounters,
    /// The users' inboxes (metrics/inbox.rs); only when the scenario names `separate_inbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxSummary>,
    pub paths: BTreeMap<String, PathSummary>,
    pub nodes: BTreeMap<String, Utilization>,
    /// Deterministic work counters (bytes per hop class, frames, drops by cause, ...).
    pub work: BTreeMap<String, u64>,
    /// Crypto operations by node kind and message kind, with the CPU time charged (ns), and
    /// the E2EE health counters (security codes changed, plaintexts verified).
    pub crypto: BTreeMap<String, u64>,
    pub evidence: Evidence,
    /// Each violated guarantee with its message, conversation, hops and active faults.
    pub violations: Vec<Violation>,
    pub liveness: Liveness,
    pub expect: Vec<Verdict>,
    pub passed: bool,
}

/// Redeliveries per first delivery at a server above which a run is flagged (see
/// [`Summary::redelivery_flags`]).
pub const REDELIVERY_FLAG: f64 = 0.10;

/// Keys every verdict checks at 0 unless `[expect]` names them with another bound.
pub const IMPLICIT_EXPECTATIONS: [&str; 2] = ["failed", "decrypt_failures"];

/// Classifies each message after the drain.
fn classify(records: &Records, path: Option<PathKind>, ev: Option<&mut Evidence>) -> Counters {
    let mut c = Counters::default();
    let mut ev = ev;
    for (i, r) in records.iter().enumerate() {
        if path.is_some_and(|p| p != r.path) {
            continue;
        }
        c.sent += 1;
        c.duplicates += r.duplicates_shown as u64;
        if r.refused() && !r.accepted() {
            c.unreachable += 1;
            continue;
        }
        if !r.accepted() {
            if r.queued_at_end.is_some() {
                c.queued_at_end += 1;
            } else {
                c.unsent += 1;
            }
            continue;
        }
        let expected_mask = r.expected_mask;
        let missing = expected_mask & !(r.shown_mask | r.expired_mask | r.unreachable_mask);
        if r.shown_mask & expected_mask == expected_mask {
            c.delivered += 1;
        } else if missing & r.undecryptable_mask != 0 {
            // Arrived, did not decrypt, and no re-encryption fixed it: "waiting for this message".
            c.decrypt_failures += 1;
        } else if missing != 0 && r.queued_at_end.is_some() {
            c.queued_at_end += 1;
        } else if missing != 0 {
            c.lost += 1;
            push_example(ev.as_deref_mut().map(|e| &mut e.lost), i);
        } else if r.expired_mask != 0 {
            c.expired += 1;
            push_example(ev.as_deref_mut().map(|e| &mut e.expired), i);
        } else {
            c.unreachable += 1;
        }
        if r.duplicates_shown > 0 {
            push_example(ev.as_deref_mut().map(|e| &mut e.duplicates), i);
        }
    }
    c.failed = c.failed_sum();
    let deliverable = c.sent - c.unreachable;
    c.delivered_ratio = if deliverable == 0 {
        1.0
    } else {
        c.delivered as f64 / deliverable as f64
    };
    c
}

fn push_example(list: Option<&mut Vec<u64>>, i: usize) {
    if let Some(l) = list {
        if l.len() < EXAMPLES_MAX {
            l.push(i as u64);
        }
    }
}

/// What the simulator measured besides the ledger.
pub struct RunFacts {
    pub scenario: String,
    pub scenario_hash: String,
    pub seed: u64,
    pub fingerprint: String,
    pub events_processed: u64,
    pub end_time_s: f64,
    pub send_window_s: f64,
    /// Peak rates of the timeseries rows within the send window.
    pub messages_delivered_per_s_peak: f64,
    pub device_deliveries_per_s_peak: f64,
    pub replay_rejected: u64,
    pub nodes: BTreeMap<String, Utilization>,
    pub work: BTreeMap<String, u64>,
    pub violations: Vec<Violation>,
    pub liveness: Liveness,
    pub crypto: BTreeMap<String, u64>,
    pub media: MediaCounters,
    pub inbox: Option<InboxSummary>,
}

impl Summary {
    pub fn build(ledger: &Ledger, facts: RunFacts, expect: &[Expectation]) -> Summary {
        let mut evidence = Evidence::default();
        let mut counters = classify(ledger.records(), None, Some(&mut evidence));
        counters.out_of_order = ledger.counts.out_of_order;
        // A device that showed another plaintext than the one written decrypted wrongly.
        counters.decrypt_failures += ledger.counts.plaintext_mismatch;
        counters.failed += ledger.counts.plaintext_mismatch;
        evidence.out_of_order = ledger
            .out_of_order_examples
            .iter()
            .map(|m: &MsgId| m.0)
            .collect();
        let mut paths = BTreeMap::new();
        for p in PathKind::ALL {
            let mut c = classify(ledger.records(), Some(p), None);
            c.out_of_order = 0; // ordering is tracked per stream, not per path kind
            paths.insert(
                p.key().to_string(),
                PathSummary {
                    counters: c,
                    latency: Latency::from_histogram(&ledger.latency[p.index()]),
                },
            );
        }
        let duplicates_suppressed = ledger
            .records()
            .iter()
            .map(|r| r.duplicates_suppressed as u64)
            .sum();
        let in_window = ledger.deliveries.in_window;
        let window_s = facts.send_window_s.max(1e-9);
        let mut s = Summary {
            scenario: facts.scenario,
            scenario_hash: facts.scenario_hash,
            seed: facts.seed,
            version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint: facts.fingerprint,
            events_processed: facts.events_processed,
            end_time_s: facts.end_time_s,
            counters,
            latency: Latency::from_histogram(&ledger.latency_all),
            warmup_s: ledger.warmup_end().as_secs_f64(),
            deliveries_in_warmup: ledger.counts.shown_in_warmup,
            tamper_detected: ledger.counts.tamper_detected,
            replay_rejected: facts.replay_rejected,
            duplicates_suppressed,
            read: ledger.counts.read,
            send_window_s: facts.send_window_s,
            messages_delivered_per_s_mean: in_window.messages as f64 / window_s,
            messages_delivered_per_s_peak: facts.messages_delivered_per_s_peak,
            device_deliveries_per_s_mean: in_window.devices as f64 / window_s,
            device_deliveries_per_s_peak: facts.device_deliveries_per_s_peak,
            media: facts.media,
            inbox: facts.inbox,
            paths,
            nodes: facts.nodes,
            work: facts.work,
            crypto: facts.crypto,
            evidence,
            violations: facts.violations,
            liveness: facts.liveness,
            expect: Vec::new(),
            passed: true,
        };
        s.judge(expect);
        s
    }

    /// Fills in the verdict: each `[expect]` line, followed by one line per path kind that
    /// carried messages when the key is an unprefixed service-level key, then the lines every
    /// verdict has. `passed` is whether all hold.
    pub fn judge(&mut self, expect: &[Expectation]) {
        let mut lines = Vec::new();
        for e in expect {
            lines.push(self.evaluate(e));
            if !held_per_path_kind(&e.key) {
                continue;
            }
            for p in PathKind::ALL {
                let key = format!("{}.{}", p.key(), e.key);
                let named = expect.iter().any(|n| n.key == key);
                let carried = self.paths.get(p.key()).is_some_and(|s| {
                    if e.key == "delivered_ratio" {
                        s.counters.sent > s.counters.unreachable
                    } else {
                        s.latency.samples > 0
                    }
                });
                if named || !carried {
                    continue;
                }
                let mut v = self.evaluate(&Expectation {
                    key,
                    bound: e.bound,
                });
                v.origin = Origin::PerPathKind {
                    from: e.key.clone(),
                };
                lines.push(v);
            }
        }
        // Liveness and decrypt failures are always part of the verdict: `[expect]` may loosen
        // them by naming the key, never by leaving it out.
        for key in IMPLICIT_EXPECTATIONS {
            if !expect.iter().any(|e| e.key == key) {
                let e = Expectation {
                    key: key.to_string(),
                    bound: Bound::AtMost(0.0),
                };
                let mut v = self.evaluate(&e);
                v.origin = Origin::Always;
                lines.push(v);
            }
        }
        self.passed = lines.iter().all(|v| v.ok);
        self.expect = lines;
    }

    /// The value of a summary key as `[expect]` names it (latencies in ms).
    pub fn metric(&self, key: &str) -> Option<f64> {
        if let Some((prefix, rest)) = key.split_once('.') {
            if prefix == "overall" && !rest.contains('.') {
                // Whole-run keys: the rates and media counters as well as the counters.
                return self.metric(rest);
            }
            if prefix == "group" && rest.starts_with("media_") {
                return self.media.group_metric(rest);
            }
            if prefix == "inbox" {
                return self.inbox.as_ref()?.metric(rest);
            }
            if let Some(p) = self.paths.get(prefix) {
                return counter_or_latency(&p.counters, &p.latency, rest);
            }
            let u = self.nodes.get(prefix)?;
            return match rest {
                "utilization_mean" => Some(u.utilization_mean),
                "utilization_peak" => Some(u.utilization_peak),
                _ => None,
            };
        }
        match key {
            "tamper_detected" => Some(self.tamper_detected as f64),
            "replay_rejected" => Some(self.replay_rejected as f64),
            "messages_delivered_per_s_mean" => Some(self.messages_delivered_per_s_mean),
            "messages_delivered_per_s_peak" => Some(self.messages_delivered_per_s_peak),
            "device_deliveries_per_s_mean" => Some(self.device_deliveries_per_s_mean),
            "device_deliveries_per_s_peak" => Some(self.device_deliveries_per_s_peak),
            _ if key.starts_with("media_") => self.media.metric(key),
            _ => counter_or_latency(&self.counters, &self.latency, key),
        }
    }

    /// One expectation against this summary (public for `live-merge`, which evaluates `[expect]`
    /// on merged load-generator logs).
    pub fn evaluate(&self, e: &Expectation) -> Verdict {
        let latency = e.key.contains("delivered_p")
            || e.key.ends_with("delivered_max")
            || super::media::LATENCY_KEYS
                .iter()
                .any(|k| e.key.strip_prefix("group.").unwrap_or(&e.key) == *k)
            || (e.key.starts_with("inbox.") && e.key.contains(".first_read_"));
        let value = self.metric(&e.key);
        let show = |x: f64| {
            if latency {
                format!("{}ms", trim(x / 1e6))
            } else {
                trim(x)
            }
        };
        let (bound, ok) = match e.bound {
            Bound::AtMost(x) => (
                format!("<= {}", show(x)),
                value.is_some_and(|v| v <= if latency { x / 1e6 } else { x }),
            ),
            Bound::AtLeast(x) => (
                format!(">= {}", show(x)),
                value.is_some_and(|v| v >= if latency { x / 1e6 } else { x }),
            ),
        };
        Verdict {
            key: e.key.clone(),
            bound,
            value,
            ok,
            origin: Origin::Named,
        }
    }
}

/// A counter, or a delivery latency: not measured (`None`) when nothing was delivered, since
/// the 0 it would read passes any bound and a dead path must fail its latency line.
fn counter_or_latency(c: &Counters, l: &Latency, key: &str) -> Option<f64> {
    let latency = key.starts_with("delivered_p") || key == "delivered_max";
    if latency && l.samples == 0 {
        return None;
    }
    Some(match key {
        "sent" => c.sent as f64,
        "delivered" => c.delivered as f64,
        "lost" => c.lost as f64,
        "duplicates" => c.duplicates as f64,
        "out_of_order" => c.out_of_order as f64,
        "decrypt_failures" => c.decrypt_failures as f64,
        "unreachable" => c.unreachable as f64,
        "expired" => c.expired as f64,
        "unsent" => c.unsent as f64,
        "queued_at_end" => c.queued_at_end as f64,
        "failed" => c.failed as f64,
        "delivered_ratio" => c.delivered_ratio,
        "delivered_p50" => l.delivered_p50,
        "delivered_p99" => l.delivered_p99,
        "delivered_p999" => l.delivered_p999,
        "delivered_max" => l.delivered_max,
        _ => return None,
    })
}

/// Formats a number without a trailing ".0" for whole values.
pub fn trim(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
pub(crate) mod tests;
