//! What crosses between two providers under the MIMI design (draft-ietf-mimi-protocol): a
//! room's hub hands each follower provider the room's message for the follower's own devices,
//! and the follower acknowledges it. A submission a member's provider relays to the hub, and
//! the hub's answer to it, travel as the [`Frame::Submit`](super::Frame::Submit) and
//! [`Frame::SubmitAck`](super::Frame::SubmitAck) they are.

use super::{ProviderId, Submission};

/// One frame between two MIMI providers' servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MimiFrame {
    /// Hub -> follower: a message of a room the hub orders, with the ciphertexts for the
    /// follower's devices only; retried until acknowledged. `id` is the hub's, for the ack.
    Fanout {
        id: u64,
        hub: ProviderId,
        submission: Box<Submission>,
    },
    /// Follower -> hub: fan-out `id` is in the follower's queues (or was already).
    FanoutAck { id: u64, follower: ProviderId },
}

impl MimiFrame {
    /// Ciphertext bytes it carries.
    pub fn payload_len(&self) -> Option<u32> {
        match self {
            MimiFrame::Fanout { submission, .. } => Some(submission.payload_len()),
            MimiFrame::FanoutAck { .. } => None,
        }
    }
}
