//! A client device: gatekeeper app or partner app. It holds an outbox retried until its server
//! acks, delivers incoming messages to the user in per-sender order (a bounded reorder buffer),
//! suppresses duplicates, and acks what it received.

use super::{Addr, Directory, Effects, TimerKind};
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{Ciphertext, DeviceId, Envelope, Frame, MsgId, ProviderId, UserId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Bounds and timings of the delivery machinery on a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceConfig {
    pub retry_initial_ns: u64,
    pub retry_max_ns: u64,
    /// Bound on unacked messages; a compose past it is refused locally.
    pub outbox_max: u32,
    /// How long a gap in a sender's sequence holds later messages back before they show anyway.
    pub reorder_hold_ns: u64,
    /// Bound on held messages per sender stream.
    pub reorder_held_max: usize,
    /// Deliberate bugs (test builds only).
    pub bugs: super::buggify::Bugs,
}

/// Messages from one sender device to this device's user, shown in `seq` order.
#[derive(Clone, Debug, Default)]
struct Stream {
    /// The next sequence number to show.
    next_seq: u32,
    /// Arrived ahead of a gap: seq -> (message, held since).
    held: BTreeMap<u32, (MsgId, SimTime)>,
    /// Gaps given up on: sequence numbers passed over when held messages were shown anyway.
    /// A message that fills one later still shows (late, out of order) instead of being taken
    /// for a duplicate. Bounded by [`SKIPPED_MAX`].
    skipped: BTreeSet<u32>,
}

/// Whether a frame that came from `from` answers a Connect sent to `server`: acks from the
/// hub come back through the adapter or the gateway, so the last hop stands for the server.
fn from_server(server: Addr, from: Addr) -> bool {
    server == from
}

/// Bound on remembered gaps per sender stream.
const SKIPPED_MAX: usize = 1024;

/// A client device's state.
#[derive(Clone, Debug)]
pub struct Device {
    id: DeviceId,
    user: UserId,
    provider: ProviderId,
    online: bool,
    /// Next sequence number per recipient user.
    next_seq: BTreeMap<UserId, u32>,
    outbox: VecDeque<Envelope>,
    retry_at: Option<SimTime>,
    retry_ns: u64,
    streams: BTreeMap<DeviceId, Stream>,
    release_at: Option<SimTime>,
    /// Servers whose ConnectAck has not come yet: the Connect is retried with the outbox.
    connecting: Vec<Addr>,
    /// How far this device's clock is off true time (the `clock_skew` fault), in ns.
    clock_offset_ns: i64,
    /// Counts this device's connections; tags Connect and Disconnect.
    epoch: u32,
    /// The gateway pushed back: new messages wait in the outbox until the retry timer, which
    /// resends the outbox in order (so none overtakes a refused one).
    throttled: bool,
}

impl Device {
    pub fn new(id: DeviceId, dir: &Directory, cfg: &DeviceConfig) -> Self {
        let user = dir.user_of(id);
        Device {
            id,
            user,
            provider: dir.provider_of_user(user),
            online: false,
            next_seq: BTreeMap::new(),
            outbox: VecDeque::new(),
            retry_at: None,
            retry_ns: cfg.retry_initial_ns,
            streams: BTreeMap::new(),
            release_at: None,
            connecting: Vec::new(),
            clock_offset_ns: 0,
            throttled: false,
            epoch: 0,
        }
    }

    // ---- getters

    pub fn id(&self) -> DeviceId {
        self.id
    }
    pub fn user(&self) -> UserId {
        self.user
    }
    pub fn is_online(&self) -> bool {
        self.online
    }
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// The first hop for traffic about `peer`: the provider's own server for native chats,
    /// and for third-party chats the gatekeeper's chat server (the hub), reached through the
    /// adapter or directly through the gateway.
    pub fn uplink(&self, peer: UserId, dir: &Directory) -> Addr {
        if dir.is_gatekeeper(self.provider) {
            return Addr::ChatServer;
        }
        if !dir.is_interop(self.user, peer) {
            return Addr::PartnerServer(self.provider);
        }
        match dir.partner_link(self.provider) {
            super::directory::PartnerLink::Proxied => Addr::Adapter(self.provider),
            super::directory::PartnerLink::Direct => Addr::Gateway,
        }
    }

    /// The servers this device keeps a connection to.
    fn servers(&self, dir: &Directory) -> impl Iterator<Item = Addr> {
        let partner = !dir.is_gatekeeper(self.provider);
        let interop = match dir.partner_link(self.provider) {
            super::directory::PartnerLink::Proxied => Addr::Adapter(self.provider),
            super::directory::PartnerLink::Direct => Addr::Gateway,
        };
        let first = if partner {
            Addr::PartnerServer(self.provider)
        } else {
            Addr::ChatServer
        };
        std::iter::once(first).chain(partner.then_some(interop))
    }

    // ---- mutators

    /// Sets how far this device's clock is off (it stamps the messages it sends).
    pub fn set_clock_offset(&mut self, offset_ns: i64) {
        self.clock_offset_ns = offset_ns;
    }

    /// The device's own idea of the time: true time plus its skew.
    fn local_clock(&self, now: SimTime) -> SimTime {
        SimTime::from_nanos(now.as_nanos().saturating_add_signed(self.clock_offset_ns))
    }

    /// The user sends a message: it enters the outbox and goes out now if online.
    /// Returns `false` when the outbox is full (the app refuses to queue more).
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    pub fn compose(
        &mut self,
        now: SimTime,
        msg: MsgId,
        to_user: UserId,
        ciphertext: Ciphertext,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) -> bool {
        if self.outbox.len() >= cfg.outbox_max as usize {
            return false;
        }
        let seq = self.next_seq.entry(to_user).or_insert(0);
        let env = Envelope {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user,
            to_device: None,
            seq: *seq,
            sent_at: SimTime::ZERO,
            ciphertext,
        };
        *seq += 1;
        let env = Envelope {
            sent_at: self.local_clock(now),
            ..env
        };
        let uplink = self.uplink(to_user, dir);
        let first_for_uplink = !self
            .outbox
            .iter()
            .any(|e| self.uplink(e.to_user, dir) == uplink);
        if self.online && !self.throttled && first_for_uplink {
            fx.send(uplink, Frame::Submit(env.clone()));
            self.arm_retry(now, fx);
        }
        self.outbox.push_back(env);
        true
    }

    /// The device connects: announce itself to its servers and flush the outbox.
    pub fn go_online(
        &mut self,
        now: SimTime,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        if self.online {
            return;
        }
        self.online = true;
        self.retry_ns = cfg.retry_initial_ns;
        self.connect(now, dir, fx);
        self.resend_outbox(dir, fx);
    }

    /// The device disconnects. What is in flight to it is lost; its servers keep it queued.
    pub fn go_offline(&mut self, dir: &Directory, fx: &mut Effects) {
        if !self.online {
            return;
        }
        for server in self.servers(dir) {
            fx.send(
                server,
                Frame::Disconnect {
                    device: self.id,
                    epoch: self.epoch,
                },
            );
        }
        self.online = false;
        self.retry_at = None;
        self.connecting.clear();
    }

    /// Connects to every server, retried until each acks.
    fn connect(&mut self, now: SimTime, dir: &Directory, fx: &mut Effects) {
        self.epoch += 1;
        self.connecting = self.servers(dir).collect();
        for &server in &self.connecting {
            fx.send(
                server,
                Frame::Connect {
                    device: self.id,
                    epoch: self.epoch,
                },
            );
        }
        self.arm_retry(now, fx);
    }

    /// Sends the oldest unacked message of each uplink. One message in flight per uplink
    /// (stop and wait): the server then receives a device's messages in the order they were
    /// written, so the fan-out is in order too. A phone writes a message every few seconds at
    /// most, far slower than a round trip, so the window costs nothing; and native and
    /// third-party chats have their own uplinks, so a partner outage blocks no native chat.
    fn resend_outbox(&self, dir: &Directory, fx: &mut Effects) {
        // A device has at most two uplinks (its own server, and the interop path).
        let mut sent: Vec<Addr> = Vec::with_capacity(2);
        for env in &self.outbox {
            let uplink = self.uplink(env.to_user, dir);
            if !sent.contains(&uplink) {
                fx.send(uplink, Frame::Submit(env.clone()));
                sent.push(uplink);
            }
        }
    }

    fn arm_retry(&mut self, now: SimTime, fx: &mut Effects) {
        if self.retry_at.is_none() {
            let at = now.plus(self.retry_ns);
            self.retry_at = Some(at);
            fx.timer(at, TimerKind::OutboxRetry);
        }
    }

    /// The user reads a shown message: a read receipt goes back to its sender (best effort).
    pub fn read(&mut self, msg: MsgId, sender: UserId, dir: &Directory, fx: &mut Effects) {
        fx.record(LedgerEvent::Read { msg });
        if self.online {
            let receipt = Frame::Receipt {
                msg,
                kind: crate::wire::ReceiptKind::Read,
                from_user: self.user,
                to_user: sender,
                to_device: None,
            };
            fx.send(self.uplink(sender, dir), receipt);
        }
    }

    /// The server this device talks to restarted: connect again (a real client reconnects
    /// with backoff; the model reconnects at once).
    pub fn reconnect(&mut self, now: SimTime, dir: &Directory, fx: &mut Effects) {
        if self.online {
            self.connect(now, dir, fx);
            self.resend_outbox(dir, fx);
        }
    }

    // ---- inputs

    pub fn handle_timer(
        &mut self,
        now: SimTime,
        timer: TimerKind,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        match timer {
            TimerKind::OutboxRetry => {
                if self.retry_at != Some(now) {
                    return; // stale: re-armed or went offline since
                }
                self.retry_at = None;
                self.throttled = false;
                if !self.online || (self.outbox.is_empty() && self.connecting.is_empty()) {
                    return;
                }
                for &server in &self.connecting {
                    fx.send(
                        server,
                        Frame::Connect {
                            device: self.id,
                            epoch: self.epoch,
                        },
                    );
                }
                self.resend_outbox(dir, fx);
                self.retry_ns = (self.retry_ns * 2).min(cfg.retry_max_ns);
                self.arm_retry(now, fx);
            }
            TimerKind::ReorderRelease => {
                if self.release_at != Some(now) {
                    return;
                }
                self.release_at = None;
                self.release_expired_gaps(now, cfg, fx);
            }
            TimerKind::Redeliver(_) | TimerKind::ExpirySweep => {}
        }
    }

    /// A frame arrived. `tampered`: its bytes were flipped in flight, so the MAC check fails and
    /// the frame is refused (not acked: the server will send it again).
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    pub fn handle_frame(
        &mut self,
        now: SimTime,
        from: Addr,
        frame: Frame,
        tampered: bool,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        if !self.online {
            return; // the connection is down: the frame never reaches the app
        }
        match frame {
            Frame::SubmitAck { msg, .. } => self.acked(msg, cfg, dir, fx),
            Frame::ConnectAck { epoch, .. } if epoch == self.epoch => {
                self.connecting.retain(|s| !from_server(*s, from))
            }
            Frame::ConnectAck { .. } => {} // the ack of an older connection
            Frame::Refused { msg, to_user, .. } => {
                self.acked(msg, cfg, dir, fx);
                fx.record(LedgerEvent::Refused { msg, to_user });
            }
            Frame::Deliver(env) if tampered => {
                fx.record(LedgerEvent::TamperDetected {
                    msg: env.msg,
                    device: self.id,
                });
            }
            Frame::Deliver(env) => self.receive(now, env, cfg, dir, fx),
            Frame::Receipt { msg, kind, .. } => fx.record(LedgerEvent::ReceiptSeen {
                msg,
                kind,
                device: self.id,
            }),
            // Server-bound frames never reach a device.
            Frame::Push { .. } => {} // handled by the driver, which wakes the device
            Frame::Submit(_)
            | Frame::DeliverAck { .. }
            | Frame::Connect { .. }
            | Frame::Disconnect { .. }
            | Frame::PushRequest { .. }
            | Frame::Bounced { .. } => {}
            Frame::Throttle { until, .. } => {
                // `until` is the gateway's clock; it may have passed while the frame travelled.
                let until = until.max(now);
                self.throttled = true;
                self.retry_at = Some(until);
                fx.timer(until, TimerKind::OutboxRetry);
            }
        }
    }

    /// The server has `msg` (or refused it for good): the next message of its uplink goes.
    fn acked(&mut self, msg: MsgId, cfg: &DeviceConfig, dir: &Directory, fx: &mut Effects) {
        let Some(i) = self.outbox.iter().position(|e| e.msg == msg) else {
            return;
        };
        let Some(done) = self.outbox.remove(i) else {
            return;
        };
        let uplink = self.uplink(done.to_user, dir);
        if self.outbox.is_empty() {
            self.retry_ns = cfg.retry_initial_ns;
        }
        if self.online && !self.throttled {
            if let Some(next) = self
                .outbox
                .iter()
                .find(|e| self.uplink(e.to_user, dir) == uplink)
            {
                fx.send(uplink, Frame::Submit(next.clone()));
            }
        }
    }

    fn receive(
        &mut self,
        now: SimTime,
        env: Envelope,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        // Ack first, duplicate or not: a lost ack is why duplicates come.
        fx.send(
            self.uplink(env.from_user, dir),
            Frame::DeliverAck {
                msg: env.msg,
                device: self.id,
                from_user: env.from_user,
                to_user: env.to_user,
            },
        );
        let stream = self.streams.entry(env.from_device).or_default();
        if cfg.bugs.break_dedup {
            // BUGGIFY: show whatever arrives, as it arrives, duplicates included.
            fx.record(LedgerEvent::Shown {
                msg: env.msg,
                device: self.id,
                from_device: env.from_device,
                seq: env.seq,
            });
            stream.next_seq = stream.next_seq.max(env.seq + 1);
            return;
        }
        if env.seq < stream.next_seq && stream.skipped.remove(&env.seq) {
            self.show(env.msg, env.from_device, env.seq, fx);
            return;
        }
        if env.seq < stream.next_seq || stream.held.contains_key(&env.seq) {
            fx.record(LedgerEvent::DuplicateSuppressed {
                msg: env.msg,
                device: self.id,
            });
            return;
        }
        if env.seq > stream.next_seq {
            if stream.held.len() >= cfg.reorder_held_max || cfg.bugs.break_ordering {
                // (BUGGIFY break_ordering: no hold at all; gaps are skipped at once.)
                // The bound is reached: show what is held now rather than grow without limit.
                stream.held.insert(env.seq, (env.msg, now));
                self.flush_stream(env.from_device, fx);
                return;
            }
            stream.held.insert(env.seq, (env.msg, now));
            let at = now.plus(cfg.reorder_hold_ns);
            if self.release_at.is_none_or(|t| t > at) {
                self.release_at = Some(at);
                fx.timer(at, TimerKind::ReorderRelease);
            }
            return;
        }
        self.show(env.msg, env.from_device, env.seq, fx);
        self.release_in_order(env.from_device, fx);
    }

    /// Shows a message to the user and advances the stream past it.
    fn show(&mut self, msg: MsgId, from: DeviceId, seq: u32, fx: &mut Effects) {
        let stream = self.streams.entry(from).or_default();
        stream.next_seq = stream.next_seq.max(seq + 1);
        fx.record(LedgerEvent::Shown {
            msg,
            device: self.id,
            from_device: from,
            seq,
        });
    }

    /// Shows held messages that are now next in line.
    fn release_in_order(&mut self, from: DeviceId, fx: &mut Effects) {
        loop {
            let Some(stream) = self.streams.get_mut(&from) else {
                return;
            };
            let next = stream.next_seq;
            let Some((msg, _)) = stream.held.remove(&next) else {
                return;
            };
            self.show(msg, from, next, fx);
        }
    }

    /// Shows everything held for `from`, in order, skipping the gaps.
    fn flush_stream(&mut self, from: DeviceId, fx: &mut Effects) {
        let Some(stream) = self.streams.get_mut(&from) else {
            return;
        };
        let held = std::mem::take(&mut stream.held);
        for (seq, (msg, _)) in held {
            let stream = self.streams.entry(from).or_default();
            for gap in stream.next_seq..seq {
                if stream.skipped.len() >= SKIPPED_MAX {
                    stream.skipped.pop_first();
                }
                stream.skipped.insert(gap);
            }
            self.show(msg, from, seq, fx);
        }
    }

    /// Gaps that outlived the hold bound: give up waiting and show what came after them.
    fn release_expired_gaps(&mut self, now: SimTime, cfg: &DeviceConfig, fx: &mut Effects) {
        if !self.online {
            // Nothing can fill a gap while offline; the hold restarts when the device is back.
            let at = now.plus(cfg.reorder_hold_ns);
            self.release_at = Some(at);
            fx.timer(at, TimerKind::ReorderRelease);
            return;
        }
        let mut due = Vec::new();
        let mut next_release: Option<SimTime> = None;
        for (from, stream) in &self.streams {
            if let Some((_, &(_, since))) = stream.held.iter().next() {
                let deadline = since.plus(cfg.reorder_hold_ns);
                if deadline <= now {
                    due.push(*from);
                } else {
                    next_release = Some(next_release.map_or(deadline, |t| t.min(deadline)));
                }
            }
        }
        for from in due {
            self.flush_stream(from, fx);
        }
        if let Some(at) = next_release {
            self.release_at = Some(at);
            fx.timer(at, TimerKind::ReorderRelease);
        }
    }
}
