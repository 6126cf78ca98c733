//! A provider's MIMI endpoint, under the `mimi` design (draft-ietf-mimi-protocol): every chat
//! is a room whose hub provider (its creator's) orders it. A provider's server takes its own
//! devices' submissions and relays those of rooms hubbed elsewhere to the hub (the device's
//! retry covers a loss, as through the hub design's gateway), relaying the hub's answer back.
//! The hub accepts a message once, queues the copies for its own devices and hands each
//! follower provider with members the ciphertexts for its devices, retried until acknowledged;
//! the follower queues them for its devices as any server does, offline ones included.
//! Receipts and retry receipts go straight to the provider of the device they are for.
//!
//! Each provider's server (the gatekeeper's chat server, a partner's server) runs one beside
//! its mailbox, which under this design hosts the provider's own devices only.

use super::mailbox::{Books, Mailbox, MailboxCtx};
use super::{Addr, TimerKind};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{
    CopyId, DeviceId, Frame, GroupMembers, MimiFrame, MsgId, Payload, PerDevice, ProviderId,
    Refusal, Submission, SEQ_VOID,
};
use std::collections::BTreeMap;

/// Fan-outs resent to one follower per retry firing at most: a backlog after a long outage
/// goes out in bursts a retry interval apart, as a server's send window paces its queues.
const RESEND_BURST_MAX: usize = 256;

/// The server of provider `p`: its MIMI endpoint.
pub fn server_of(p: ProviderId) -> Addr {
    if p.0 == 0 {
        Addr::ChatServer
    } else {
        Addr::PartnerServer(p)
    }
}

/// The hub of the room `s` belongs to: a group's is its founder's provider; a 1:1 room's the
/// provider of the pair's user with the lower id (the model's stand-in for who wrote first);
/// a re-encryption for one device goes straight to that device's provider, as a receipt does.
pub fn hub_of(s: &Submission, dir: &Directory) -> ProviderId {
    match &s.payload {
        Payload::Group(g) => g.hub,
        Payload::Direct(_) => dir.provider_of_user(s.from_user.min(s.to_user)),
        Payload::Resend(r) => dir.provider_of_device(r.device),
    }
}

/// A fan-out the hub sent and its follower has not acknowledged yet.
#[derive(Clone, Debug)]
struct Pending {
    to: ProviderId,
    submission: Submission,
    next_at: SimTime,
    backoff_ns: u64,
    /// After the offline TTL the hub gives up, as a server's queue drops a copy no device
    /// fetched: the follower's copies expire.
    expires_at: SimTime,
}

/// Fan-outs sent, first and again, for the summary's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FanoutSends {
    pub first: u64,
    pub again: u64,
}

/// One provider's MIMI endpoint: its hub-side fan-outs awaiting acknowledgement.
#[derive(Clone, Debug)]
pub struct MimiEndpoint {
    provider: ProviderId,
    pending: BTreeMap<u64, Pending>,
    next_id: u64,
    /// The retry timer's instant, when armed.
    retry_at: Option<SimTime>,
    retry_initial_ns: u64,
    retry_max_ns: u64,
    sends: FanoutSends,
    relayed: u64,
}

impl MimiEndpoint {
    pub fn new(provider: ProviderId, retry_initial_ns: u64, retry_max_ns: u64) -> Self {
        MimiEndpoint {
            provider,
            pending: BTreeMap::new(),
            next_id: 0,
            retry_at: None,
            retry_initial_ns,
            retry_max_ns,
            sends: FanoutSends::default(),
            relayed: 0,
        }
    }

    // ---- getters

    pub fn sends(&self) -> FanoutSends {
        self.sends
    }
    /// Submissions relayed to another provider's hub.
    pub fn relayed(&self) -> u64 {
        self.relayed
    }
    /// Fan-outs not yet acknowledged by their follower.
    pub fn unacked(&self) -> usize {
        self.pending.len()
    }
    /// The submissions of the fan-outs not yet acknowledged: at the run's end, their copies
    /// are still on their way (late, not lost).
    pub fn unacked_submissions(&self) -> impl Iterator<Item = &Submission> + '_ {
        self.pending.values().map(|p| &p.submission)
    }

    // ---- mutators

    /// The server crashed: without durable storage its unacknowledged fan-outs are gone;
    /// with it they stay and are retried once it is back (the driver fires the retry timer at
    /// the restart, or the next frame it handles re-arms it: the timer that fired while it was
    /// down is gone).
    pub fn crash(&mut self, durable: bool) {
        if !durable {
            self.pending.clear();
        }
        self.retry_at = None;
    }

    // ---- inputs

    /// `frame` reached this provider's server. Returns the own devices to wake (push).
    pub fn handle_frame(
        &mut self,
        mb: &mut Mailbox,
        cx: &mut MailboxCtx,
        frame: Frame,
        dir: &Directory,
    ) -> Vec<DeviceId> {
        if self.retry_at.is_none() && !self.pending.is_empty() {
            self.arm(cx);
        }
        let own = |d: DeviceId| dir.provider_of_device(d) == self.provider;
        match frame {
            Frame::Submit(s) => {
                let hub = hub_of(&s, dir);
                if hub == self.provider {
                    return self.accept(mb, cx, *s, dir);
                }
                if own(s.from_device) {
                    self.relayed += 1;
                    cx.fx.send(server_of(hub), Frame::Submit(s));
                }
                // A submission for a room hubbed elsewhere from another provider: not ours
                // to relay (a MIMI server talks to hubs for its own users only).
            }
            Frame::SubmitAck { device, .. } | Frame::Refused { device, .. } if own(device) => {
                cx.fx.send(Addr::Device(device), frame);
            }
            Frame::Mimi(MimiFrame::Fanout {
                id,
                hub,
                submission,
            }) => {
                let wake = mb.submit_copies(cx, *submission, dir, Books::Leave);
                let follower = self.provider;
                let ack = MimiFrame::FanoutAck { id, follower };
                cx.fx.send(server_of(hub), Frame::Mimi(ack));
                return wake.unwrap_or_default();
            }
            Frame::Mimi(MimiFrame::FanoutAck { id, .. }) => {
                self.pending.remove(&id);
            }
            Frame::DeliverAck { copy, device, .. } if own(device) => {
                mb.ack(cx, device, copy);
            }
            Frame::Connect { device, epoch } if own(device) => mb.connect(cx, device, epoch),
            Frame::Disconnect { device, epoch } if own(device) => {
                if mb.disconnect(device, epoch) {
                    return vec![device];
                }
            }
            Frame::RetryReceipt { sender, .. } => {
                if own(sender) {
                    mb.deliver_control(cx, sender, frame);
                } else if own_user_sent(&frame, dir, self.provider) {
                    cx.fx.send(server_of(dir.provider_of_device(sender)), frame);
                }
            }
            Frame::Receipt {
                msg,
                kind,
                from_user,
                to_user,
                ..
            } => {
                if dir.provider_of_user(to_user) == self.provider {
                    let receipt = (msg, kind, from_user, to_user);
                    mb.forward_receipt(cx, receipt, dir.devices_of(to_user));
                } else if dir.provider_of_user(from_user) == self.provider {
                    cx.fx.send(server_of(dir.provider_of_user(to_user)), frame);
                }
            }
            // The hub design's frames, and frames about another provider's devices.
            Frame::SubmitAck { .. }
            | Frame::Refused { .. }
            | Frame::DeliverAck { .. }
            | Frame::Connect { .. }
            | Frame::Disconnect { .. }
            | Frame::Deliver(_)
            | Frame::PushRequest { .. }
            | Frame::Bounced { .. }
            | Frame::Throttle { .. }
            | Frame::Push { .. }
            | Frame::ConnectAck { .. }
            | Frame::Media(_) => {}
        }
        Vec::new()
    }

    /// As the room's hub: refuses a 1:1 message between users who may not message, else
    /// accepts the submission once (its copies for this provider's devices queued and the
    /// message recorded), hands each follower its share, and answers the sender through its
    /// provider. Returns the own devices to wake.
    fn accept(
        &mut self,
        mb: &mut Mailbox,
        cx: &mut MailboxCtx,
        s: Submission,
        dir: &Directory,
    ) -> Vec<DeviceId> {
        let origin = dir.provider_of_device(s.from_device);
        let back = if origin == self.provider {
            Addr::Device(s.from_device)
        } else {
            server_of(origin)
        };
        let (copy, device, ack) = (s.copy_id(), s.from_device, s.ack());
        let group = matches!(s.payload, Payload::Group(_));
        if !group && !dir.may_message(s.from_user, s.to_user) {
            let to_user = s.to_user;
            let reason = Refusal::Unreachable;
            let refused = Frame::Refused {
                copy,
                device,
                to_user,
                reason,
            };
            cx.fx.send(back, refused);
            return Vec::new();
        }
        let shares = self.shares(&s, dir);
        let wake = mb.submit_copies(cx, s, dir, Books::Record);
        if wake.is_some() {
            for (to, share) in shares {
                self.fan_out(cx, to, share);
            }
        }
        cx.fx.send(back, ack);
        wake.unwrap_or_default()
    }

    /// Each follower provider's share of `s`: the ciphertexts for its devices, and for a group
    /// message the members this hub refuses marked void (the follower refuses no one itself).
    fn shares(&self, s: &Submission, dir: &Directory) -> Vec<(ProviderId, Submission)> {
        let mut shares: BTreeMap<ProviderId, Submission> = BTreeMap::new();
        match &s.payload {
            Payload::Direct(sealed) => {
                for (d, ct) in sealed {
                    let p = dir.provider_of_device(*d);
                    if p == self.provider {
                        continue;
                    }
                    let share = shares
                        .entry(p)
                        .or_insert_with(|| s.with_payload(Payload::Direct(PerDevice::new())));
                    if let Payload::Direct(mine) = &mut share.payload {
                        mine.push((*d, ct.clone()));
                    }
                }
            }
            Payload::Group(g) => {
                let members: GroupMembers = g
                    .members
                    .iter()
                    .map(|&(m, seq)| {
                        let refused = seq == SEQ_VOID || !dir.may_message(s.from_user, m);
                        (m, if refused { SEQ_VOID } else { seq })
                    })
                    .collect();
                for &(m, seq) in members.iter() {
                    let p = dir.provider_of_user(m);
                    let any = dir.devices_of(m).any(|d| d != s.from_device);
                    if seq == SEQ_VOID || p == self.provider || !any || shares.contains_key(&p) {
                        continue;
                    }
                    let mut share = g.as_ref().clone();
                    share
                        .distributions
                        .retain(|(d, _)| dir.provider_of_device(*d) == p);
                    share.members = members.clone();
                    shares.insert(p, s.with_payload(Payload::Group(Box::new(share))));
                }
            }
            // Routed to the one device's provider, which is this hub.
            Payload::Resend(_) => {}
        }
        shares.into_iter().collect()
    }

    fn fan_out(&mut self, cx: &mut MailboxCtx, to: ProviderId, submission: Submission) {
        let id = self.next_id;
        self.next_id += 1;
        let hub = self.provider;
        let frame = MimiFrame::Fanout {
            id,
            hub,
            submission: Box::new(submission.clone()),
        };
        cx.fx.send(server_of(to), Frame::Mimi(frame));
        self.sends.first += 1;
        let backoff_ns = self.retry_initial_ns;
        let next_at = cx.now.plus(backoff_ns);
        let expires_at = cx.now.plus(cx.cfg.offline_ttl_ns);
        self.pending.insert(
            id,
            Pending {
                to,
                submission,
                next_at,
                backoff_ns,
                expires_at,
            },
        );
        if self.retry_at.is_none_or(|at| next_at < at) {
            self.retry_at = Some(next_at);
            cx.fx.timer(next_at, TimerKind::MimiRetry);
        }
    }

    /// Arms the retry timer for the earliest unacknowledged fan-out (none: disarmed).
    fn arm(&mut self, cx: &mut MailboxCtx) {
        let next = self.pending.values().map(|p| p.next_at).min();
        self.retry_at = next.map(|at| at.max(cx.now));
        if let Some(at) = self.retry_at {
            cx.fx.timer(at, TimerKind::MimiRetry);
        }
    }

    /// The retry timer: sends again every fan-out whose follower has not acknowledged it in
    /// time, each with its own doubling backoff (a follower cut off gets them all once the
    /// way is open again), and gives up on those older than the offline TTL, whose copies for
    /// the follower's devices expire. Fired at the armed instant, or at a restart after a
    /// crash (nothing armed then).
    pub fn handle_timer(&mut self, cx: &mut MailboxCtx, timer: TimerKind, dir: &Directory) {
        if timer != TimerKind::MimiRetry || self.retry_at.is_some_and(|at| at != cx.now) {
            return; // stale: re-armed since
        }
        let (now, max) = (cx.now, self.retry_max_ns);
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.expires_at <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                for (msg, device) in share_copies(&p.submission, p.to, dir) {
                    cx.fx.record(LedgerEvent::Expired { msg, device });
                }
            }
        }
        let (hub, pace_ns) = (self.provider, self.retry_initial_ns);
        let mut burst: BTreeMap<ProviderId, usize> = BTreeMap::new();
        for (&id, p) in self.pending.iter_mut().filter(|(_, p)| p.next_at <= now) {
            let sent = burst.entry(p.to).or_insert(0);
            if *sent >= RESEND_BURST_MAX {
                // After a long outage, the backlog goes back out a burst at a time.
                p.next_at = now.plus(pace_ns);
                continue;
            }
            *sent += 1;
            let frame = MimiFrame::Fanout {
                id,
                hub,
                submission: Box::new(p.submission.clone()),
            };
            cx.fx.send(server_of(p.to), Frame::Mimi(frame));
            self.sends.again += 1;
            p.backoff_ns = (p.backoff_ns * 2).min(max);
            p.next_at = now.plus(p.backoff_ns);
        }
        self.arm(cx);
    }
}

/// The copies a follower's share carries, by the ledger's id, with the device each is for.
fn share_copies(s: &Submission, follower: ProviderId, dir: &Directory) -> Vec<(MsgId, DeviceId)> {
    let on_follower = |d: &DeviceId| dir.provider_of_device(*d) == follower;
    match &s.payload {
        Payload::Direct(sealed) => {
            let msg = s.copy_id().ledger_id();
            sealed
                .iter()
                .map(|(d, _)| *d)
                .filter(on_follower)
                .map(|d| (msg, d))
                .collect()
        }
        Payload::Group(g) => g
            .members
            .iter()
            .enumerate()
            .filter(|(_, (_, seq))| *seq != SEQ_VOID)
            .flat_map(|(k, &(member, _))| {
                let copy = CopyId {
                    msg: s.msg,
                    member: k as u32,
                };
                dir.devices_of(member)
                    .filter(|d| *d != s.from_device)
                    .filter(on_follower)
                    .map(move |d| (copy.ledger_id(), d))
            })
            .collect(),
        Payload::Resend(_) => Vec::new(),
    }
}

/// Whether a retry receipt was sent by one of `provider`'s users (the requester's provider
/// relays it to the sender's).
fn own_user_sent(frame: &Frame, dir: &Directory, provider: ProviderId) -> bool {
    match frame {
        Frame::RetryReceipt { requester, .. } => dir.provider_of_device(*requester) == provider,
        _ => false,
    }
}
