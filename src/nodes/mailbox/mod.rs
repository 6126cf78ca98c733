//! Store and forward, as every messaging server does it: accept a submission once (dedup by
//! sender device and message id), queue one copy per recipient device, push it while the
//! device is connected, redeliver until the device acks, keep it while the device is offline,
//! and expire it after the TTL. The chat server (the gatekeeper's hub) and each partner server
//! (for its native chats) run one.
//!
//! This file holds the mailbox's state, getters and crash behaviour; the rest is split by
//! concern: `fan_out` (accepting a submission and queueing its copies), `dedup` (the bounded
//! memory of accepted submissions), `queue` (per-device queues: send window, acks,
//! redelivery, expiry) and `connection` (device connections, backpressure, receipts and
//! control frames).

mod connection;
mod dedup;
mod fan_out;
mod queue;

use dedup::Accepted;
pub use fan_out::Books;

use super::{Addr, Effects};
use crate::collections::spares::Spares;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::wire::{Delivery, DeviceId, Frame, Payload};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug)]
pub struct MailboxConfig {
    pub offline_ttl_ns: u64,
    pub redeliver_initial_ns: u64,
    pub redeliver_max_ns: u64,
    /// Bound on remembered message ids per sender device, for dedup of retried submissions.
    pub dedup_window_max: usize,
    /// Bound on copies in flight to one device (sent, not yet acked). Copies go out in queue
    /// order within this window, as over one flow-controlled connection, so a backlog drains
    /// in order instead of racing through a rate limiter.
    pub window_max: usize,
    /// BUGGIFY (test builds only): send the whole window, several copies per sender stream.
    pub break_ordering: bool,
}

#[derive(Clone, Debug)]
struct Pending {
    delivery: Delivery,
    expires_at: SimTime,
    /// Sent on the current connection (and not yet acked).
    sent: bool,
    /// Sent at least once, on any connection: a later send is a redelivery.
    ever_sent: bool,
}

/// Deliver frames a mailbox sent: each copy's first, and every send after it (the redelivery
/// timer, a reconnect, backpressure). Redeliveries far above a tenth of first sends mean acks come
/// back later than the redelivery timer: the retries are adding load (a retry storm).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sends {
    pub first: u64,
    pub again: u64,
}

impl std::ops::AddAssign for Sends {
    fn add_assign(&mut self, o: Sends) {
        self.first += o.first;
        self.again += o.again;
    }
}

#[derive(Clone, Debug, Default)]
struct DeviceBox {
    queue: VecDeque<Pending>,
    online: bool,
    redeliver_at: Option<SimTime>,
    redeliver_ns: u64,
    /// The gateway asked the hub to hold off this device (its partner's shaper is full):
    /// nothing new goes out until the redelivery timer, which then resends in order.
    paused: bool,
    /// The device's latest connection epoch seen, and whether that connection closed.
    epoch: u32,
    closed: bool,
}

/// Per-device queues for a contiguous range of devices.
#[derive(Clone, Debug)]
pub struct Mailbox {
    first_device: u32,
    boxes: Vec<DeviceBox>,
    /// Per sender device (any device in the run): (message, copy) already accepted, bounded.
    accepted: Accepted,
    queued_total: u64,
    sends: Sends,
    sweep_at: Option<SimTime>,
    /// Control frames (retry receipts) for offline devices, sent when they connect; bounded
    /// per device by [`CONTROL_HELD_MAX`].
    held_control: BTreeMap<u32, VecDeque<Frame>>,
    /// Emptied queues' buffers, for the next device queued for.
    spare_queues: Spares<VecDeque<Pending>>,
}

/// Bound on control frames held per offline device.
pub const CONTROL_HELD_MAX: usize = 64;

/// How a server reaches a device (directly, or through the gateway).
pub type Route<'a> = &'a dyn Fn(DeviceId) -> Addr;

/// What a mailbox call needs besides the mailbox: the time, the bounds, how the server reaches
/// a device, and the buffer the outputs go to. The server that runs the mailbox makes one per
/// input.
pub struct MailboxCtx<'a> {
    pub now: SimTime,
    pub cfg: &'a MailboxConfig,
    pub route: Route<'a>,
    pub fx: &'a mut Effects,
}

impl Mailbox {
    pub fn new(devices: std::ops::Range<u32>, cfg: &MailboxConfig) -> Self {
        let boxes = (devices.start..devices.end)
            .map(|_| DeviceBox {
                redeliver_ns: cfg.redeliver_initial_ns,
                ..DeviceBox::default()
            })
            .collect();
        Mailbox {
            first_device: devices.start,
            boxes,
            accepted: Accepted::default(),
            queued_total: 0,
            sends: Sends::default(),
            sweep_at: None,
            held_control: BTreeMap::new(),
            spare_queues: Spares::default(),
        }
    }

    // ---- getters

    /// Every copy waiting for an ack (queued, or sent and unacked), device by device: what
    /// the run's end reports as still on its way.
    pub fn queued_copies(&self) -> impl Iterator<Item = crate::wire::CopyId> + '_ {
        self.boxes
            .iter()
            .flat_map(|b| b.queue.iter().map(|p| p.delivery.copy))
    }

    /// Copies waiting for an ack, over all devices.
    pub fn queued(&self) -> u64 {
        self.queued_total
    }
    pub fn sends(&self) -> Sends {
        self.sends
    }
    pub fn is_online(&self, d: DeviceId) -> bool {
        self.slot(d).is_some_and(|i| self.boxes[i].online)
    }
    /// When the redelivery timer of `device`'s box is due, if one is armed (a timer of another
    /// instant finds the box stale and does nothing).
    pub fn redeliver_due(&self, device: DeviceId) -> Option<SimTime> {
        self.boxes[self.slot(device)?].redeliver_at
    }
    /// A cache hint for [`Mailbox::redeliver_due`].
    pub fn prefetch_redeliver_due(&self, device: DeviceId) {
        if let Some(i) = self.slot(device) {
            crate::engine::prefetch::prefetch(&self.boxes[i].redeliver_at);
        }
    }

    fn slot(&self, d: DeviceId) -> Option<usize> {
        let i = d.0.checked_sub(self.first_device)? as usize;
        (i < self.boxes.len()).then_some(i)
    }

    /// Cache hints for `frame`, about to be handled: a 1:1 submission reads the sender's dedup
    /// window and the box of every device it fans out to, an ack the acking device's box.
    pub fn prefetch_frame(&self, frame: &Frame, dir: &Directory, deep: bool) {
        match frame {
            Frame::Submit(s) if !matches!(s.payload, Payload::Group(_)) => {
                let own = dir.devices_of(s.from_user);
                let recipients = dir.devices_of(s.to_user).chain(own);
                self.prefetch(Some(s.from_device), recipients, deep);
            }
            Frame::DeliverAck { device, .. } => self.prefetch(None, std::iter::once(*device), deep),
            _ => {}
        }
    }

    /// Cache hints (see [`crate::engine::prefetch`]) in two levels: `deep` false asks for the
    /// sender's dedup window and the devices' boxes, `deep` true (once those are in the cache)
    /// for what they point to, the dedup window's newest entries and the boxes' queues.
    fn prefetch(
        &self,
        from: Option<DeviceId>,
        devices: impl Iterator<Item = DeviceId>,
        deep: bool,
    ) {
        use crate::engine::prefetch::{prefetch, prefetch_slice};
        if let Some(w) = from.and_then(|d| self.accepted.window(d)) {
            if deep {
                let (head, tail) = w.as_slices();
                let newest = if tail.is_empty() { head } else { tail };
                prefetch_slice(&newest[newest.len().saturating_sub(1)..], 64);
            } else {
                prefetch(w);
            }
        }
        for b in devices.filter_map(|d| self.slot(d)).map(|i| &self.boxes[i]) {
            if deep {
                prefetch_slice(b.queue.as_slices().0, 256);
            } else {
                prefetch(b);
            }
        }
    }

    /// Crash without durable storage: queues and dedup memory are gone; connections too.
    pub fn lose_volatile_state(&mut self) {
        for b in &mut self.boxes {
            b.queue.clear();
            b.online = false;
            b.redeliver_at = None;
        }
        self.accepted.clear();
        self.queued_total = 0;
        self.sweep_at = None;
    }

    /// `device` is a new install of the same account (a live load run that follows another):
    /// what the server kept for the old install goes (its queued copies, held control frames,
    /// connection epoch and the dedup memory of what it sent). Returns the copies dropped.
    pub fn reinstall(&mut self, device: DeviceId) -> u64 {
        self.accepted.forget(device);
        self.held_control.remove(&device.0);
        let Some(i) = self.slot(device) else { return 0 };
        let b = &mut self.boxes[i];
        let dropped = b.queue.len() as u64;
        self.queued_total -= dropped;
        *b = DeviceBox {
            redeliver_ns: b.redeliver_ns,
            ..DeviceBox::default()
        };
        dropped
    }

    /// Crash with durable storage: queues survive, connections and timers do not.
    pub fn lose_connections(&mut self) {
        for b in &mut self.boxes {
            b.online = false;
            b.redeliver_at = None;
        }
        self.sweep_at = None;
    }
}
