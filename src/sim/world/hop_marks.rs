//! The simulated copy's step-by-step latency (`RunOptions::hops`): the same stages the live run
//! marks (`live::hops`), recorded for the same one message in [`EVERY`], so that `validate`
//! can set each live step beside the model's.

use super::Sim;
use crate::engine::SimTime;
use crate::metrics::hops::{self, Step};
use crate::nodes::stage::Stage;
use crate::nodes::Addr;
use crate::wire::{Frame, MsgId};

#[cfg(doc)]
use crate::metrics::hops::EVERY;

/// The traced messages' marks (message index, stage, ns).
#[derive(Debug, Default)]
pub(super) struct HopMarks(Vec<(u64, Stage, u64)>);

impl Sim {
    /// `stage` saw message `msg` at `at`, when the run traces steps and the message is traced.
    pub(super) fn mark_hop(&mut self, msg: MsgId, stage: Stage, at: SimTime) {
        if let Some(m) = &mut self.hop_marks {
            if hops::traced(msg.0) {
                m.0.push((msg.0, stage, at.as_nanos()));
            }
        }
    }

    /// The frame in `slot` taken by its node at `taken` (its core free and awake, as a live
    /// node's task takes a frame from its inbox): a message frame marks the server node, a
    /// delivery the recipient's read.
    pub(super) fn mark_taken(&mut self, slot: u32, taken: SimTime) {
        let Some(marks) = &mut self.hop_marks else {
            return;
        };
        let Some(f) = self.net.frames.get(slot).filter(|f| f.frame.is_message()) else {
            return;
        };
        let stage = match (f.to, &f.frame) {
            (Addr::Device(_), Frame::Deliver(_)) => Stage::Delivered,
            (Addr::Device(_), _) => return,
            (server, _) => Stage::Node(server),
        };
        if let Some(msg) = f.frame.msg().filter(|m| hops::traced(m.0)) {
            marks.0.push((msg.0, stage, taken.as_nanos()));
        }
    }

    /// The load generator composed a submission it took at `now`: the frame goes to its
    /// connection when the generator's work on it is done (it is written later, at the end of
    /// the generator's round: `Servers::release`).
    pub(super) fn mark_composed(&mut self, now: SimTime, frame: &Frame) {
        let per_frame = self
            .servers
            .generator
            .as_ref()
            .map_or(0, |g| g.per_frame_ns);
        if let Frame::Submit(s) = frame {
            self.mark_hop(s.copy_id().ledger_id(), Stage::Queued, now.plus(per_frame));
        }
    }

    /// The steps of the messages sent after the warm-up and delivered; none when the run did
    /// not trace them.
    pub(super) fn hop_steps(&mut self) -> Vec<Step> {
        let Some(HopMarks(marks)) = self.hop_marks.take() else {
            return Vec::new();
        };
        let from_ns = self.s.run.warmup_ns;
        hops::steps(marks, from_ns, Stage::Send, Stage::Delivered, Stage::name)
    }
}
