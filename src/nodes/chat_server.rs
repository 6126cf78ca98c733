//! The gatekeeper's chat server: the hub. It routes every gatekeeper chat and every third-party
//! chat, fans a message out to each of the recipient's devices, holds the offline queue, acks,
//! forwards receipts, and asks partner servers to push to their sleeping devices.

use super::mailbox::{Mailbox, MailboxConfig, MailboxCtx};
use super::mimi::MimiEndpoint;
use super::{Addr, Effects, TimerKind};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{DeviceId, Frame, Payload, ProviderId, Refusal, Submission};

#[derive(Clone, Debug)]
pub struct ChatServer {
    mailbox: Mailbox,
    cfg: MailboxConfig,
    /// Under the MIMI design: the gatekeeper's endpoint, and the mailbox hosts the
    /// gatekeeper's own devices only.
    mimi: Option<MimiEndpoint>,
}

impl ChatServer {
    pub fn new(dir: &Directory, cfg: MailboxConfig) -> Self {
        let all = dir.devices() as u32;
        let (hosted, mimi) = if dir.is_mimi() {
            let gatekeeper = ProviderId(0);
            let endpoint =
                MimiEndpoint::new(gatekeeper, cfg.redeliver_initial_ns, cfg.redeliver_max_ns);
            (dir.devices_of_provider(gatekeeper), Some(endpoint))
        } else {
            (0..all, None)
        };
        ChatServer {
            mailbox: Mailbox::new(hosted, &cfg),
            cfg,
            mimi,
        }
    }

    /// The MIMI endpoint, under that design.
    pub fn mimi(&self) -> Option<&MimiEndpoint> {
        self.mimi.as_ref()
    }

    // ---- getters

    /// Copies its mailbox still holds (see [`Mailbox::queued_copies`]).
    pub fn queued_copies(&self) -> impl Iterator<Item = crate::wire::CopyId> + '_ {
        self.mailbox.queued_copies()
    }
    pub fn queued(&self) -> u64 {
        self.mailbox.queued()
    }
    /// When the redelivery timer of `device` is due (see [`Mailbox::redeliver_due`]).
    pub fn redeliver_due(&self, device: DeviceId) -> Option<SimTime> {
        self.mailbox.redeliver_due(device)
    }
    pub fn prefetch_redeliver_due(&self, device: DeviceId) {
        self.mailbox.prefetch_redeliver_due(device)
    }
    /// Deliver frames its mailbox sent, first and again.
    pub fn sends(&self) -> super::mailbox::Sends {
        self.mailbox.sends()
    }

    /// How the hub reaches a device: gatekeeper devices directly, partner devices through the
    /// interop gateway.
    pub fn route(dir: &Directory, d: DeviceId) -> Addr {
        if dir.is_gatekeeper(dir.provider_of_device(d)) {
            Addr::Device(d)
        } else {
            Addr::Gateway
        }
    }

    /// Cache hints for `frame`, about to be handled (see [`Mailbox::prefetch_frame`]).
    pub fn prefetch(&self, frame: &Frame, dir: &Directory, deep: bool) {
        self.mailbox.prefetch_frame(frame, dir, deep);
    }

    // ---- mutators

    /// A new install of `device` (see [`super::mailbox::Mailbox::reinstall`]): copies dropped.
    pub fn reinstall(&mut self, device: crate::wire::DeviceId) -> u64 {
        self.mailbox.reinstall(device)
    }

    pub fn crash(&mut self, durable: bool) {
        if let Some(m) = self.mimi.as_mut() {
            m.crash(durable);
        }
        if durable {
            self.mailbox.lose_connections();
        } else {
            self.mailbox.lose_volatile_state();
        }
    }

    // ---- inputs

    pub fn handle_frame(&mut self, now: SimTime, frame: Frame, dir: &Directory, fx: &mut Effects) {
        if let Some(m) = self.mimi.as_mut() {
            let (route, cfg) = (|d: DeviceId| Addr::Device(d), self.cfg);
            let cx = &mut MailboxCtx {
                now,
                cfg: &cfg,
                route: &route,
                fx,
            };
            for d in m.handle_frame(&mut self.mailbox, cx, frame, dir) {
                cx.fx.send(Addr::Device(d), Frame::Push { device: d });
            }
            return;
        }
        let (route, cfg) = (|d: DeviceId| Self::route(dir, d), self.cfg);
        let cx = &mut MailboxCtx {
            now,
            cfg: &cfg,
            route: &route,
            fx,
        };
        match frame {
            Frame::Submit(s) => {
                let s = cx.fx.boxes().open_submission(s);
                self.submit(cx, s, dir)
            }
            Frame::DeliverAck { copy, device, .. } => {
                self.mailbox.ack(cx, device, copy);
            }
            Frame::Connect { device, epoch } => self.mailbox.connect(cx, device, epoch),
            Frame::Disconnect { device, epoch } => {
                if self.mailbox.disconnect(device, epoch) {
                    self.push(device, dir, cx.fx);
                }
            }
            Frame::Throttle { device, until } => self.mailbox.throttle(cx, device, until),
            Frame::Bounced { copy, device } => {
                if self.mailbox.drop_copy(cx, device, copy) {
                    let msg = copy.ledger_id();
                    cx.fx.record(LedgerEvent::DeviceUnreachable { msg, device });
                }
            }
            Frame::RetryReceipt { sender, .. } => {
                // Held for the sender's device until it connects, like any receipt.
                self.mailbox.deliver_control(cx, sender, frame);
            }
            Frame::Receipt {
                msg,
                kind,
                from_user,
                to_user,
                ..
            } => {
                // Best effort, to the connected devices of the original sender (`to_user`).
                let receipt = (msg, kind, from_user, to_user);
                self.mailbox
                    .forward_receipt(cx, receipt, dir.devices_of(to_user));
            }
            Frame::SubmitAck { .. }
            | Frame::Refused { .. }
            | Frame::Deliver(_)
            | Frame::PushRequest { .. }
            | Frame::Push { .. }
            | Frame::Media(_)
            | Frame::Mimi(_)
            | Frame::ConnectAck { .. } => {}
        }
    }

    fn submit(&mut self, cx: &mut MailboxCtx, s: Submission, dir: &Directory) {
        let back = Self::route(dir, s.from_device);
        // A group message is checked member by member in the fan-out.
        let group = matches!(s.payload, Payload::Group(_));
        if !group && !dir.may_message(s.from_user, s.to_user) {
            cx.fx.send(
                back,
                Frame::Refused {
                    copy: s.copy_id(),
                    device: s.from_device,
                    to_user: s.to_user,
                    reason: Refusal::Unreachable,
                },
            );
            return;
        }
        let ack = s.ack();
        if let Some(wake) = self.mailbox.submit(cx, s, dir) {
            for d in wake {
                self.push(d, dir, cx.fx);
            }
        }
        cx.fx.send(back, ack);
    }

    /// Wakes an offline device: gatekeeper devices through the gatekeeper's own push, partner
    /// devices through their partner server (over the gateway).
    fn push(&self, d: DeviceId, dir: &Directory, fx: &mut Effects) {
        if dir.is_gatekeeper(dir.provider_of_device(d)) {
            fx.send(Addr::Device(d), Frame::Push { device: d });
        } else {
            fx.send(Addr::Gateway, Frame::PushRequest { device: d });
        }
    }

    pub fn handle_timer(
        &mut self,
        now: SimTime,
        timer: TimerKind,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let mimi = self.mimi.is_some();
        let route = |d: DeviceId| {
            if mimi {
                Addr::Device(d)
            } else {
                Self::route(dir, d)
            }
        };
        let cx = &mut MailboxCtx {
            now,
            cfg: &self.cfg,
            route: &route,
            fx,
        };
        match timer {
            TimerKind::Redeliver(d) => self.mailbox.handle_redeliver(cx, d),
            TimerKind::ExpirySweep => self.mailbox.handle_sweep(cx),
            TimerKind::MimiRetry => {
                if let Some(m) = self.mimi.as_mut() {
                    m.handle_timer(cx, timer, dir);
                }
            }
            TimerKind::OutboxRetry | TimerKind::ReorderRelease | TimerKind::MediaRetry => {}
        }
    }
}
