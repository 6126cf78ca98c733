//! Device connections as the mailbox sees them (connect, disconnect, the gateway's
//! backpressure), and the frames it passes on outside the queues: receipts and control frames.

use super::{Mailbox, MailboxCtx, CONTROL_HELD_MAX};
use crate::engine::SimTime;
use crate::nodes::TimerKind;
use crate::wire::{DeviceId, Frame, MsgId, ReceiptKind, UserId};

impl Mailbox {
    /// Connection `epoch` of `device` is up. A Connect from an older epoch, or from one this
    /// server already saw closed, is a late frame and changes nothing.
    pub fn connect(&mut self, cx: &mut MailboxCtx, device: DeviceId, epoch: u32) {
        let (now, cfg, route) = (cx.now, cx.cfg, cx.route);
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        if epoch < b.epoch || (epoch == b.epoch && b.closed) {
            return;
        }
        cx.fx
            .send(route(device), Frame::ConnectAck { device, epoch });
        if epoch == b.epoch && b.online {
            return; // a retried Connect whose ack was lost: acked again, nothing else
        }
        b.epoch = epoch;
        b.closed = false;
        b.online = true;
        b.redeliver_ns = cfg.redeliver_initial_ns;
        for p in b.queue.iter_mut() {
            p.sent = false;
        }
        self.sends += Self::fill_window(b, device, cx);
        for frame in self.held_control.remove(&device.0).unwrap_or_default() {
            cx.fx.send(route(device), frame);
        }
        let b = &mut self.boxes[i];
        if !b.queue.is_empty() {
            b.redeliver_at = None;
            Self::arm(b, device, now, cx.fx);
        }
    }

    /// Forwards a delivery or read receipt `(msg, kind, from_user, to_user)` to the connected
    /// devices among `devices` (the original sender's): best effort, like WhatsApp's.
    pub fn forward_receipt(
        &self,
        cx: &mut MailboxCtx,
        (msg, kind, from_user, to_user): (MsgId, ReceiptKind, UserId, UserId),
        devices: impl Iterator<Item = DeviceId>,
    ) {
        let route = cx.route;
        for d in devices.filter(|d| self.is_online(*d)) {
            cx.fx.send(
                route(d),
                Frame::Receipt {
                    msg,
                    kind,
                    from_user,
                    to_user,
                    to_device: Some(d),
                },
            );
        }
    }

    /// A control frame for `device`: sent now if it is connected, else held until it connects.
    pub fn deliver_control(&mut self, cx: &mut MailboxCtx, device: DeviceId, frame: Frame) {
        let route = cx.route;
        if self.is_online(device) {
            return cx.fx.send(route(device), frame);
        }
        let held = self.held_control.entry(device.0).or_default();
        if held.len() >= CONTROL_HELD_MAX {
            held.pop_front();
        }
        held.push_back(frame);
    }

    /// Backpressure from the gateway: hold off `device` until `until`, then resend its window
    /// in order (what was sent after the refused copy is sent again, behind it).
    pub fn throttle(&mut self, cx: &mut MailboxCtx, device: DeviceId, until: SimTime) {
        let now = cx.now;
        let until = until.max(now); // it may have passed while the frame travelled
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        b.paused = true;
        for p in b.queue.iter_mut() {
            p.sent = false;
        }
        if b.redeliver_at.is_none_or(|t| t < until) {
            b.redeliver_at = Some(until);
            cx.fx.timer(until, TimerKind::Redeliver(device));
        }
    }

    /// The device went offline. Returns whether copies are still waiting for it (the server
    /// then pushes, so that what was in flight when it left does not wait for its next visit).
    pub fn disconnect(&mut self, device: DeviceId, epoch: u32) -> bool {
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        if epoch < b.epoch {
            return false; // the close of an old connection, overtaken by a newer one
        }
        b.epoch = epoch;
        b.closed = true;
        b.online = false;
        b.redeliver_at = None;
        !b.queue.is_empty()
    }
}
