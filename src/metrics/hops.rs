//! Where a message's latency goes, step by step, in either driver: for one message in
//! [`EVERY`], the instant each stage of its way saw it, and afterwards each stage-to-stage
//! step's percentiles. The live run measures its steps (`live::hops`); the simulated copy
//! records the same stages (`sim`'s hop marks), so `validate` can say on which step the model
//! and the machine part.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One message in this many is traced (by its index in the run, so every stage picks the same
/// ones).
pub const EVERY: u64 = 64;
/// Only messages below this index are traced: a long run's marks stay bounded (65,536 traced
/// messages, about 13 MB of marks) whatever its length; at 60,000 msg/s that is its first 70 s.
pub const TRACED_BELOW: u64 = 1 << 22;

/// Whether the message of index `index` (its id without a live run's tag) is traced.
pub fn traced(index: u64) -> bool {
    index.is_multiple_of(EVERY) && index < TRACED_BELOW
}

/// One step of the way, over the traced messages that took it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

impl Step {
    pub fn describe(&self) -> String {
        format!(
            "{} -> {} p50 {:.3} ms, p99 {:.3} ms",
            self.from, self.to, self.p50_ms, self.p99_ms
        )
    }
}

/// Each step between consecutive stages of the messages in `marks` (message index, stage, time
/// in ns) that were sent (`send`) at or after `from_ns` and reached `delivered`, in the order
/// of their mean position on the way. A message's first pass through each stage counts (a
/// redelivery adds later marks); `name` names a stage.
pub fn steps<S: Copy + Ord>(
    mut marks: Vec<(u64, S, u64)>,
    from_ns: u64,
    send: S,
    delivered: S,
    name: impl Fn(S) -> String,
) -> Vec<Step> {
    marks.sort_unstable();
    let mut by_step: BTreeMap<(String, String), (Vec<u64>, u64)> = BTreeMap::new();
    let mut firsts: Vec<(u64, S)> = Vec::new();
    for one in marks.chunk_by(|a, b| a.0 == b.0) {
        let sent = one.iter().find(|m| m.1 == send).map(|m| m.2);
        let done = one.iter().any(|m| m.1 == delivered);
        if !done || sent.is_none_or(|t| t < from_ns) {
            continue;
        }
        firsts.clear();
        for &(_, stage, t) in one {
            if !firsts.iter().any(|f| f.1 == stage) {
                firsts.push((t, stage));
            }
        }
        firsts.sort_unstable();
        for (k, w) in firsts.windows(2).enumerate() {
            let e = by_step
                .entry((name(w[0].1), name(w[1].1)))
                .or_insert((Vec::new(), 0));
            e.0.push(w[1].0 - w[0].0);
            e.1 += k as u64;
        }
    }
    let mut steps: Vec<(f64, Step)> = by_step
        .into_iter()
        .map(|((from, to), (mut ns, order))| {
            ns.sort_unstable();
            let q = |p: f64| ns[((ns.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
            let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e6;
            let position = order as f64 / ns.len() as f64;
            let step = Step {
                from,
                to,
                samples: ns.len() as u64,
                p50_ms: q(0.5),
                p99_ms: q(0.99),
                mean_ms: mean,
            };
            (position, step)
        })
        .collect();
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.samples.cmp(&a.1.samples)));
    steps.into_iter().map(|(_, s)| s).collect()
}
