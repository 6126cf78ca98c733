//! Where a live message's latency goes, hop by hop: for one message in [`EVERY`], the instant
//! each stage saw it (the generator's send, its frame handed to the connection, each server
//! node's task taking it from its inbox, the recipient's read), and afterwards each stage-to-
//! stage step's percentiles. The simulated copy models each step as a link and a queue; when
//! live and model disagree, this says on which step.
//!
//! Marks go under one lock from every runtime's threads; at one message in 64 that is a few
//! thousand a second, each a push.

use crate::nodes::Addr;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// One message in this many is traced (by its index in the run, so every stage picks the same
/// ones).
pub const EVERY: u64 = 64;
/// Only messages below this index are traced: a long run's marks stay bounded (65,536 traced
/// messages, about 13 MB of marks) whatever its length; at 60,000 msg/s that is its first 70 s.
pub const TRACED_BELOW: u64 = 1 << 22;

/// A stage of a message's way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The generator took the arrival (before encrypting it).
    Send,
    /// Its frame went to the sender's connection (encrypted, composed).
    Queued,
    /// A server node's task took the frame from its inbox.
    Node(Addr),
    /// The recipient's frames came in one socket read of the generator.
    Delivered,
}

impl Stage {
    fn name(self) -> String {
        match self {
            Stage::Send => "send".into(),
            Stage::Queued => "queued".into(),
            Stage::Node(a) => node_name(a),
            Stage::Delivered => "delivered".into(),
        }
    }
}

/// A server node's name in live.json (its node costs and its steps here): the summary's node
/// keys, with the partner's index.
pub fn node_name(a: Addr) -> String {
    match a {
        Addr::ChatServer => "chat_server".into(),
        Addr::Gateway => "gateway".into(),
        Addr::Adapter(p) => format!("adapter.{}", p.0),
        Addr::PartnerServer(p) => format!("partner_server.{}", p.0),
        other => format!("{other:?}"),
    }
}

/// The marks of a run's traced messages.
#[derive(Debug, Default)]
pub struct HopTrace {
    marks: Mutex<Vec<(u64, Stage, u64)>>,
}

/// Whether the message of index `index` (its id without the run's tag) is traced.
pub fn traced(index: u64) -> bool {
    index.is_multiple_of(EVERY) && index < TRACED_BELOW
}

impl HopTrace {
    /// `stage` saw message `index` at `at_ns` on the run's clock (a message not traced is
    /// ignored).
    pub fn mark(&self, index: u64, stage: Stage, at_ns: u64) {
        if traced(index) {
            let mut m = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
            m.push((index, stage, at_ns));
        }
    }

    /// Each step between consecutive stages of the messages that were sent and delivered after
    /// `from_ns` (the sending window), in the order of their mean position on the way. Takes
    /// the marks: a run asks once, at its end.
    pub fn take_steps(&self, from_ns: u64) -> Vec<Step> {
        let mut marks =
            std::mem::take(&mut *self.marks.lock().unwrap_or_else(PoisonError::into_inner));
        marks.sort_unstable();
        let mut by_step: BTreeMap<(String, String), (Vec<u64>, u64)> = BTreeMap::new();
        for one in marks.chunk_by(|a, b| a.0 == b.0) {
            let sent = one.iter().find(|m| m.1 == Stage::Send).map(|m| m.2);
            let done = one.iter().any(|m| m.1 == Stage::Delivered);
            if !done || sent.is_none_or(|t| t < from_ns) {
                continue;
            }
            // A message's first copy through each stage (a redelivery adds later marks).
            let mut firsts: Vec<(u64, Stage)> = Vec::new();
            for &(_, stage, t) in one {
                if !firsts.iter().any(|f| f.1 == stage) {
                    firsts.push((t, stage));
                }
            }
            firsts.sort_by_key(|f| (f.0, f.1));
            for (k, w) in firsts.windows(2).enumerate() {
                let e = by_step
                    .entry((w[0].1.name(), w[1].1.name()))
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
}

/// One step of the way, over the traced messages that took it.
#[derive(Clone, Debug, PartialEq, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::Addr;

    /// Messages sent in the window and delivered give their steps in the order of the way; a
    /// message not traced, one sent before the window and one never delivered give none, and
    /// a redelivery's later marks do not count twice.
    #[test]
    fn steps_follow_each_traced_message_through_its_stages() {
        let t = HopTrace::default();
        let (chat, gw) = (Addr::ChatServer, Addr::Gateway);
        for (i, base) in [(0u64, 1_000u64), (64, 2_000), (128, 3_000)] {
            t.mark(i, Stage::Send, base);
            t.mark(i, Stage::Queued, base + 10);
            t.mark(i, Stage::Node(chat), base + 100 + i);
            t.mark(i, Stage::Node(gw), base + 300 + i);
            t.mark(i, Stage::Delivered, base + 600 + i);
        }
        t.mark(64, Stage::Node(gw), 9_000); // a redelivery
        t.mark(1, Stage::Send, 1_500); // not traced
        t.mark(192, Stage::Send, 500); // before the window
        t.mark(192, Stage::Delivered, 900);
        t.mark(256, Stage::Send, 4_000); // never delivered
        t.mark(TRACED_BELOW, Stage::Send, 5_000); // past the traced ones
        t.mark(TRACED_BELOW, Stage::Delivered, 5_100);
        let steps = t.take_steps(1_000);
        let names: Vec<(String, String)> = steps
            .iter()
            .map(|s| (s.from.clone(), s.to.clone()))
            .collect();
        assert_eq!(
            names,
            [
                ("send".to_string(), "queued".to_string()),
                ("queued".to_string(), "chat_server".to_string()),
                ("chat_server".to_string(), "gateway".to_string()),
                ("gateway".to_string(), "delivered".to_string()),
            ]
        );
        assert!(steps.iter().all(|s| s.samples == 3), "{steps:?}");
        assert_eq!(steps[1].p50_ms, (90.0 + 64.0) / 1e6);
        assert_eq!(steps[2].p99_ms, 200.0 / 1e6);
    }
}
