//! A partner's server: its users' native chats (store and forward, like the chat server but
//! only among its own users), enlistment, and the push service that wakes its sleeping devices
//! when the gatekeeper's hub has something for them. It also hosts the partner's media store
//! (used once media transfer is modeled).

use super::mailbox::{Mailbox, MailboxConfig, MailboxCtx};
use super::mimi::MimiEndpoint;
use super::{Addr, Effects, TimerKind};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::wire::{DeviceId, Frame, ProviderId, Submission};

#[derive(Clone, Debug)]
pub struct PartnerServer {
    provider: ProviderId,
    mailbox: Mailbox,
    cfg: MailboxConfig,
    pushes_sent: u64,
    /// Under the MIMI design: the partner's endpoint to the other providers.
    mimi: Option<MimiEndpoint>,
}

impl PartnerServer {
    pub fn new(provider: ProviderId, dir: &Directory, cfg: MailboxConfig) -> Self {
        let mailbox = Mailbox::new(dir.devices_of_provider(provider), &cfg);
        let mimi = dir
            .is_mimi()
            .then(|| MimiEndpoint::new(provider, cfg.redeliver_initial_ns, cfg.redeliver_max_ns));
        PartnerServer {
            provider,
            mailbox,
            cfg,
            pushes_sent: 0,
            mimi,
        }
    }

    /// The MIMI endpoint, under that design.
    pub fn mimi(&self) -> Option<&MimiEndpoint> {
        self.mimi.as_ref()
    }

    pub fn provider(&self) -> ProviderId {
        self.provider
    }
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
    pub fn pushes_sent(&self) -> u64 {
        self.pushes_sent
    }

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

    /// Cache hints for `frame`, about to be handled (see [`Mailbox::prefetch_frame`]).
    pub fn prefetch(&self, frame: &Frame, dir: &Directory, deep: bool) {
        self.mailbox.prefetch_frame(frame, dir, deep);
    }

    pub fn handle_frame(&mut self, now: SimTime, frame: Frame, dir: &Directory, fx: &mut Effects) {
        let (route, cfg) = (|d: DeviceId| Addr::Device(d), self.cfg);
        let cx = &mut MailboxCtx {
            now,
            cfg: &cfg,
            route: &route,
            fx,
        };
        if let Some(m) = self.mimi.as_mut() {
            for d in m.handle_frame(&mut self.mailbox, cx, frame, dir) {
                self.pushes_sent += 1;
                cx.fx.send(Addr::Device(d), Frame::Push { device: d });
            }
            return;
        }
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
                    self.pushes_sent += 1;
                    cx.fx.send(Addr::Device(device), Frame::Push { device });
                }
            }
            Frame::PushRequest { device } => {
                self.pushes_sent += 1;
                cx.fx.send(Addr::Device(device), Frame::Push { device });
            }
            Frame::RetryReceipt { sender, .. } => {
                self.mailbox.deliver_control(cx, sender, frame);
            }
            Frame::Receipt {
                msg,
                kind,
                from_user,
                to_user,
                ..
            } => {
                let receipt = (msg, kind, from_user, to_user);
                self.mailbox
                    .forward_receipt(cx, receipt, dir.devices_of(to_user));
            }
            Frame::SubmitAck { .. }
            | Frame::Refused { .. }
            | Frame::Deliver(_)
            | Frame::Bounced { .. }
            | Frame::Push { .. }
            | Frame::Media(_)
            | Frame::Mimi(_)
            | Frame::ConnectAck { .. }
            | Frame::Throttle { .. } => {}
        }
    }

    fn submit(&mut self, cx: &mut MailboxCtx, s: Submission, dir: &Directory) {
        let back = Addr::Device(s.from_device);
        let ack = s.ack();
        if let Some(wake) = self.mailbox.submit(cx, s, dir) {
            for d in wake {
                self.pushes_sent += 1;
                cx.fx.send(Addr::Device(d), Frame::Push { device: d });
            }
        }
        cx.fx.send(back, ack);
    }

    pub fn handle_timer(
        &mut self,
        now: SimTime,
        timer: TimerKind,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let route = |d: DeviceId| Addr::Device(d);
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
