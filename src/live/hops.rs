//! Where a live message's latency goes, hop by hop: for one message in [`EVERY`], the instant
//! each stage saw it (the generator's send, its frame handed to the connection, each server
//! node's task taking it from its inbox, the recipient's read), and afterwards each stage-to-
//! stage step's percentiles ([`crate::metrics::hops`]). The simulated copy records the same
//! stages, and `validate` sets the two side by side (`live::step_pairs`): when live and model
//! disagree, this says on which step.
//!
//! Marks go under one lock from every runtime's threads; at one message in 64 that is a few
//! thousand a second, each a push.

pub use crate::metrics::hops::{traced, Step, EVERY, TRACED_BELOW};
pub use crate::nodes::stage::{node_name, Stage};
use std::sync::{Mutex, PoisonError};

/// The marks of a run's traced messages.
#[derive(Debug, Default)]
pub struct HopTrace {
    marks: Mutex<Vec<(u64, Stage, u64)>>,
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
    /// `from_ns` (the sending window), in the order of their mean position on the way
    /// ([`crate::metrics::hops::steps`]). Takes the marks: a run asks once, at its end.
    pub fn take_steps(&self, from_ns: u64) -> Vec<Step> {
        let marks = std::mem::take(&mut *self.marks.lock().unwrap_or_else(PoisonError::into_inner));
        crate::metrics::hops::steps(marks, from_ns, Stage::Send, Stage::Delivered, Stage::name)
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
