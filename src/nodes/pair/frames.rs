//! What the harness shows a test of the frames and events its nodes produced: a frame's kind
//! and fields to match on (`Hop`), one node call's reaction, recorded ledger events.

use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::nodes::{Addr, TimerKind};
use crate::wire::{DeviceId, Frame, MsgId, Payload};

/// A frame's kind, without its fields: what tests match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Submit,
    SubmitAck,
    Refused,
    Deliver,
    DeliverAck,
    Connect,
    ConnectAck,
    Disconnect,
    PushRequest,
    Bounced,
    Throttle,
    Push,
    RetryReceipt,
    Receipt,
    Media,
    Mimi,
}

/// One frame on the fake link (or logged, if it went outside the pair).
#[derive(Clone, Debug)]
pub struct Hop {
    pub from: Addr,
    pub to: Addr,
    pub frame: Frame,
    /// When it was sent, and when it may arrive (after latency and any shaping delay).
    pub sent_at: SimTime,
    pub at: SimTime,
    pub(super) tampered: bool,
    pub(super) id: u64,
}

impl Hop {
    pub fn kind(&self) -> Kind {
        match &self.frame {
            Frame::Submit(_) => Kind::Submit,
            Frame::SubmitAck { .. } => Kind::SubmitAck,
            Frame::Refused { .. } => Kind::Refused,
            Frame::Deliver(_) => Kind::Deliver,
            Frame::DeliverAck { .. } => Kind::DeliverAck,
            Frame::Connect { .. } => Kind::Connect,
            Frame::ConnectAck { .. } => Kind::ConnectAck,
            Frame::Disconnect { .. } => Kind::Disconnect,
            Frame::PushRequest { .. } => Kind::PushRequest,
            Frame::Bounced { .. } => Kind::Bounced,
            Frame::Throttle { .. } => Kind::Throttle,
            Frame::Push { .. } => Kind::Push,
            Frame::RetryReceipt { .. } => Kind::RetryReceipt,
            Frame::Receipt { .. } => Kind::Receipt,
            Frame::Media(_) => Kind::Media,
            Frame::Mimi(_) => Kind::Mimi,
        }
    }
    pub fn is(&self, kind: Kind) -> bool {
        self.kind() == kind
    }
    /// `kind` about `msg`.
    pub fn is_for(&self, kind: Kind, msg: MsgId) -> bool {
        self.is(kind) && self.msg() == Some(msg)
    }
    pub fn msg(&self) -> Option<MsgId> {
        self.frame.msg()
    }
    /// The device the frame is about (a copy's recipient, an ack's sender...).
    pub fn device(&self) -> Option<DeviceId> {
        self.frame.device()
    }
    /// A message's per-stream sequence number (Submit, Deliver).
    pub fn seq(&self) -> Option<u32> {
        match &self.frame {
            Frame::Submit(e) => Some(e.seq),
            Frame::Deliver(e) => Some(e.seq),
            _ => None,
        }
    }
    /// Which re-encryption a message is (0: the original), or a retry receipt's attempt.
    pub fn attempt(&self) -> Option<u8> {
        match &self.frame {
            Frame::Submit(e) => Some(match &e.payload {
                Payload::Resend(r) => r.attempt,
                Payload::Direct(_) | Payload::Group(_) => 0,
            }),
            Frame::Deliver(e) => Some(e.retry),
            Frame::RetryReceipt { attempt, .. } => Some(*attempt),
            _ => None,
        }
    }
    /// The device a submission is for alone (a re-encryption), if any.
    pub fn only_for(&self) -> Option<DeviceId> {
        match &self.frame {
            Frame::Submit(e) => match &e.payload {
                Payload::Resend(r) => Some(r.device),
                Payload::Direct(_) | Payload::Group(_) => None,
            },
            _ => None,
        }
    }
    /// Whether a message's ciphertext for `d` starts a session (carries the prekey header).
    pub fn prekey_for(&self, d: DeviceId) -> Option<bool> {
        match &self.frame {
            Frame::Submit(e) => match &e.payload {
                Payload::Direct(cts) => cts
                    .iter()
                    .find(|(t, _)| *t == d)
                    .map(|(_, c)| c.seal.prekey),
                Payload::Group(g) => g
                    .distributions
                    .iter()
                    .find(|(t, _)| *t == d)
                    .map(|(_, c)| c.seal.prekey),
                Payload::Resend(r) => (r.device == d).then_some(r.ciphertext.seal.prekey),
            },
            Frame::Deliver(e) if e.to_device == d => Some(e.ciphertext.seal.prekey),
            _ => None,
        }
    }
    /// A connection frame's epoch.
    pub fn epoch(&self) -> Option<u32> {
        match &self.frame {
            Frame::Connect { epoch, .. }
            | Frame::ConnectAck { epoch, .. }
            | Frame::Disconnect { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }
    /// Until when a Throttle holds its device off.
    pub fn until(&self) -> Option<SimTime> {
        match &self.frame {
            Frame::Throttle { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// What one node did in one call: frames sent, ledger events, timers armed and cancelled.
#[derive(Debug)]
pub struct Reaction {
    pub node: Addr,
    pub sent: Vec<Hop>,
    pub events: Vec<LedgerEvent>,
    pub armed: Vec<(SimTime, TimerKind)>,
    pub cancelled: Vec<(SimTime, TimerKind)>,
}

impl Reaction {
    pub fn sent(&self, kind: Kind) -> Vec<&Hop> {
        self.sent.iter().filter(|h| h.is(kind)).collect()
    }
    pub fn count(&self, kind: Kind) -> usize {
        self.sent(kind).len()
    }
}

/// A ledger event with where and when it was recorded.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: SimTime,
    pub node: Addr,
    pub event: LedgerEvent,
}

/// A place in the pair's log of frames, to read what was sent after it.
#[derive(Clone, Copy, Debug)]
pub struct Mark(pub(super) usize);

/// The digest a device shows for `plaintext` (real crypto), for tests to compare with.
pub fn digest(plaintext: &[u8]) -> u64 {
    crate::nodes::device::digest(plaintext)
}
