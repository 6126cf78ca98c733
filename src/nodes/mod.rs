//! The modeled system's nodes, each a sans-IO state machine (quinn-proto style): no sockets,
//! clocks, threads or RNG inside. Every node sorts its methods the same way:
//!
//! - getters: read state (`is_online`, `queue_len`);
//! - `handle_*`: inputs, each taking `now` and the frame or timer that arrived;
//! - mutators: state changes the driver imposes (`crash`, `go_online`);
//! - outputs: pushed into an [`Effects`] buffer the driver drains after every call (frames to
//!   send, timers to set, ledger events).
//!
//! The deterministic driver (`sim/`) and the live driver (`live/`) both own time and transport
//! and feed the same nodes, through the same routing of a frame or timer to its node
//! ([`dispatch`]).

pub mod adapter;
pub mod buggify;
pub mod chat_server;
pub mod device;
pub mod dispatch;
pub mod frame_boxes;
pub mod gateway;
pub mod key_directory;
pub mod keyring;
pub mod mailbox;
pub mod media;
pub mod mimi;
#[cfg(test)]
mod pair;
#[cfg(test)]
mod pair_tests;
pub mod partner_server;
pub mod stage;

use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{DeviceId, Frame, ProviderId};

/// Where a frame goes: one variant per node kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    Device(DeviceId),
    ChatServer,
    Gateway,
    Adapter(ProviderId),
    PartnerServer(ProviderId),
    /// A provider's media store (blob host), the gatekeeper's included.
    MediaStore(ProviderId),
    /// The gatekeeper's media proxy: the one door for media between providers.
    MediaProxy,
}

impl Addr {
    /// A stable word for the run fingerprint.
    pub fn code(self) -> u64 {
        match self {
            Addr::Device(d) => (1 << 40) | d.0 as u64,
            Addr::ChatServer => 2 << 40,
            Addr::Gateway => 3 << 40,
            Addr::Adapter(p) => (4 << 40) | p.0 as u64,
            Addr::PartnerServer(p) => (5 << 40) | p.0 as u64,
            Addr::MediaStore(p) => (6 << 40) | p.0 as u64,
            Addr::MediaProxy => 7 << 40,
        }
    }
}

/// A node's timers. Nodes keep the instant each one is armed for and ignore a stale firing, so
/// a driver need not drop a cancelled timer ([`Output::CancelTimer`] lets it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// A device's outbox retry.
    OutboxRetry,
    /// A device's reorder buffer: release held messages whose gap outlived the bound.
    ReorderRelease,
    /// A server's retransmission to one device.
    Redeliver(DeviceId),
    /// A server's offline-queue TTL sweep.
    ExpirySweep,
    /// A device's media transfers: retry (with backoff) or give up on failed ones.
    MediaRetry,
    /// A MIMI hub's fan-outs to follower providers not acknowledged in time.
    MimiRetry,
}

impl TimerKind {
    pub fn code(self) -> u64 {
        match self {
            TimerKind::OutboxRetry => 1,
            TimerKind::ReorderRelease => 2,
            TimerKind::Redeliver(d) => (3 << 32) | d.0 as u64,
            TimerKind::ExpirySweep => 4,
            TimerKind::MediaRetry => 5,
            TimerKind::MimiRetry => 6,
        }
    }
}

/// One output of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: Addr,
        frame: Frame,
    },
    /// Send after holding the frame for `delay_ns` (a shaper's queue).
    SendAfter {
        delay_ns: u64,
        to: Addr,
        frame: Frame,
    },
    Timer {
        at: SimTime,
        timer: TimerKind,
    },
    /// The timer armed for `at` is no longer needed. A driver may drop it or let it fire: the
    /// node ignores a timer it no longer has armed (the simulator's retry timers ask the node's
    /// own record before firing, see `sim::timers`).
    CancelTimer {
        at: SimTime,
        timer: TimerKind,
    },
}

/// The buffer a node writes its outputs into; the driver drains it after each call.
#[derive(Debug, Default)]
pub struct Effects {
    pub outputs: Vec<Output>,
    pub ledger: Vec<LedgerEvent>,
    /// Media pointers found in decrypted plaintexts, for the driver's media download.
    pub media: Vec<media::Opened>,
    /// Boxes of frames taken apart, for the next frames built (see [`Effects::boxes`]).
    boxes: Option<Box<frame_boxes::FrameBoxes>>,
}

impl Effects {
    pub fn send(&mut self, to: Addr, frame: Frame) {
        self.outputs.push(Output::Send { to, frame });
    }
    pub fn send_after(&mut self, delay_ns: u64, to: Addr, frame: Frame) {
        if delay_ns == 0 {
            self.send(to, frame);
        } else {
            self.outputs.push(Output::SendAfter {
                delay_ns,
                to,
                frame,
            });
        }
    }
    pub fn timer(&mut self, at: SimTime, timer: TimerKind) {
        self.outputs.push(Output::Timer { at, timer });
    }
    pub fn cancel_timer(&mut self, at: SimTime, timer: TimerKind) {
        self.outputs.push(Output::CancelTimer { at, timer });
    }
    pub fn record(&mut self, event: LedgerEvent) {
        self.ledger.push(event);
    }
    /// The boxes and buffers kept for the next frames. Behind a pointer: a driver moves its
    /// `Effects` in and out of its state at every event, and 72 bytes more made that move a
    /// `memcpy` call (1.8 % of a 1 M-user run).
    pub fn boxes(&mut self) -> &mut frame_boxes::FrameBoxes {
        self.boxes.get_or_insert_with(Box::default)
    }
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty() && self.ledger.is_empty() && self.media.is_empty()
    }
}
