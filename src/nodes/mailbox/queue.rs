//! Per-device queues: a copy enters the queue, goes out within a bounded window (one copy in
//! flight per sender stream), is redelivered with backoff until the device acks, and expires
//! after the offline TTL.

use super::{DeviceBox, Mailbox, MailboxConfig, MailboxCtx, Pending, Sends};
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::nodes::{Effects, TimerKind};
use crate::wire::{CopyId, Delivery, DeviceId, Frame};
use std::collections::VecDeque;

impl Mailbox {
    /// Queues `delivery` for its device and sends it now if the device is connected. Returns
    /// whether the device was offline (the caller may push to wake it; only when its queue was
    /// empty, so one backlog costs one push); `None` when the device is not this mailbox's.
    pub fn enqueue(&mut self, cx: &mut MailboxCtx, delivery: Delivery) -> Option<bool> {
        let (now, cfg) = (cx.now, cx.cfg);
        let device = delivery.to_device;
        let i = self.slot(device)?;
        let b = &mut self.boxes[i];
        let was_empty = b.queue.is_empty();
        let online = b.online;
        if !online {
            cx.fx.record(LedgerEvent::StoredOffline {
                msg: delivery.copy.ledger_id(),
                device,
            });
        }
        if b.queue.capacity() == 0 {
            // Usually the only copy waiting: an emptied queue's buffer (see `ack`), or room
            // for one.
            b.queue = self.spare_queues.queue();
        }
        b.queue.push_back(Pending {
            delivery,
            expires_at: now.plus(cfg.offline_ttl_ns),
            sent: false,
            ever_sent: false,
        });
        self.queued_total += 1;
        if online {
            self.sends += Self::fill_window(b, device, cx);
            Self::arm(b, device, now, cx.fx);
        }
        self.arm_sweep(now, cfg, cx.fx);
        Some(!online && was_empty)
    }

    /// Sends what has entered the window and was not sent on this connection yet.
    #[must_use = "the sends are counted"]
    pub(super) fn fill_window(b: &mut DeviceBox, device: DeviceId, cx: &mut MailboxCtx) -> Sends {
        let (cfg, route) = (cx.cfg, cx.route);
        let mut sends = Sends::default();
        if b.paused {
            return sends;
        }
        // One copy in flight per sender stream: a later message of the same sender never
        // overtakes an earlier one that was lost or held back on the way.
        for i in 0..b.queue.len().min(cfg.window_max) {
            if !cfg.break_ordering && !leads_stream(&b.queue, i) {
                continue;
            }
            let p = &mut b.queue[i];
            if !p.sent {
                p.sent = true;
                if p.ever_sent {
                    sends.again += 1;
                } else {
                    p.ever_sent = true;
                    sends.first += 1;
                }
                let frame = Frame::Deliver(cx.fx.boxes().delivery(&p.delivery));
                cx.fx.send(route(device), frame);
            }
        }
        sends
    }

    /// Resends the copy in flight of each sender stream (the redelivery timer).
    fn resend_window(b: &mut DeviceBox, device: DeviceId, cx: &mut MailboxCtx) -> Sends {
        let (cfg, route) = (cx.cfg, cx.route);
        let mut sends = Sends::default();
        for i in 0..b.queue.len().min(cfg.window_max) {
            if cfg.break_ordering || leads_stream(&b.queue, i) {
                let p = &mut b.queue[i];
                // In flight now: the next ack's window fill must not send it again (after a
                // throttle every copy was marked unsent).
                p.sent = true;
                if p.ever_sent {
                    sends.again += 1;
                } else {
                    // Held back by backpressure before its first send.
                    p.ever_sent = true;
                    sends.first += 1;
                }
                let frame = Frame::Deliver(cx.fx.boxes().delivery(&p.delivery));
                cx.fx.send(route(device), frame);
            }
        }
        sends
    }

    pub(super) fn arm(b: &mut DeviceBox, device: DeviceId, now: SimTime, fx: &mut Effects) {
        if b.redeliver_at.is_none() {
            let at = now.plus(b.redeliver_ns);
            b.redeliver_at = Some(at);
            fx.timer(at, TimerKind::Redeliver(device));
        }
    }

    fn arm_sweep(&mut self, now: SimTime, cfg: &MailboxConfig, fx: &mut Effects) {
        if self.sweep_at.is_none() {
            let at = now.plus(sweep_period_ns(cfg));
            self.sweep_at = Some(at);
            fx.timer(at, TimerKind::ExpirySweep);
        }
    }

    /// The device acked `copy`: drop it. Returns whether it was queued.
    pub fn ack(&mut self, cx: &mut MailboxCtx, device: DeviceId, copy: CopyId) -> bool {
        let cfg = cx.cfg;
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        let Some(pos) = b.queue.iter().position(|p| p.delivery.copy == copy) else {
            return false;
        };
        b.queue.remove(pos);
        if b.queue.is_empty() {
            // An idle device keeps no queue buffer (a million of them would hold gigabytes):
            // the next device queued for takes it, still in the cache.
            self.spare_queues.keep_queue(std::mem::take(&mut b.queue));
            // Nothing left to redeliver: the timer goes (the next copy arms its own). Not
            // while paused: the timer ends the pause.
            if !b.paused {
                if let Some(at) = b.redeliver_at.take() {
                    cx.fx.cancel_timer(at, TimerKind::Redeliver(device));
                }
            }
        }
        self.queued_total -= 1;
        b.redeliver_ns = cfg.redeliver_initial_ns;
        if b.online {
            self.sends += Self::fill_window(b, device, cx);
        }
        true
    }

    /// Redelivery timer: resend what is still unacked, backing off.
    pub fn handle_redeliver(&mut self, cx: &mut MailboxCtx, device: DeviceId) {
        let (now, cfg) = (cx.now, cx.cfg);
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        if b.redeliver_at != Some(now) {
            return; // stale
        }
        b.redeliver_at = None;
        b.paused = false;
        if !b.online || b.queue.is_empty() {
            return;
        }
        self.sends += Self::resend_window(b, device, cx);
        b.redeliver_ns = (b.redeliver_ns * 2).min(cfg.redeliver_max_ns);
        Self::arm(b, device, now, cx.fx);
    }

    /// Drops `copy` queued for `device` for good (it can no longer be delivered).
    pub fn drop_copy(&mut self, cx: &mut MailboxCtx, device: DeviceId, copy: CopyId) -> bool {
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        let before = b.queue.len();
        b.queue.retain(|p| p.delivery.copy != copy);
        let dropped = (before - b.queue.len()) as u64;
        self.queued_total -= dropped;
        if b.online {
            self.sends += Self::fill_window(b, device, cx);
        }
        dropped > 0
    }

    /// TTL sweep: expire what waited longer than the offline TTL.
    pub fn handle_sweep(&mut self, cx: &mut MailboxCtx) {
        let (now, cfg) = (cx.now, cx.cfg);
        if self.sweep_at != Some(now) {
            return;
        }
        self.sweep_at = None;
        let first = self.first_device;
        for (i, b) in self.boxes.iter_mut().enumerate() {
            while b.queue.front().is_some_and(|p| p.expires_at <= now) {
                if let Some(p) = b.queue.pop_front() {
                    cx.fx.record(LedgerEvent::Expired {
                        msg: p.delivery.copy.ledger_id(),
                        device: DeviceId(first + i as u32),
                    });
                    self.queued_total -= 1;
                }
            }
            if b.online {
                self.sends += Self::fill_window(b, DeviceId(first + i as u32), cx);
            }
        }
        if self.queued_total > 0 {
            self.arm_sweep(now, cfg, cx.fx);
        }
    }
}

/// How often the TTL sweep runs: a quarter of the TTL, between one second and one hour.
fn sweep_period_ns(cfg: &MailboxConfig) -> u64 {
    (cfg.offline_ttl_ns / 4).clamp(1_000_000_000, 3_600_000_000_000)
}

/// Whether the copy at `i` is the first of its sender device's stream in the queue (the one a
/// window may have in flight). Scans the copies before it, as a list of the streams seen
/// would, without allocating one per window fill.
fn leads_stream(queue: &VecDeque<Pending>, i: usize) -> bool {
    let from = queue[i].delivery.from_device;
    !queue.range(..i).any(|q| q.delivery.from_device == from)
}
