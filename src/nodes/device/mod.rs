//! A client device: gatekeeper app or partner app. It holds an outbox retried until its server
//! acks, delivers incoming messages to the user in per-sender order (a bounded reorder buffer),
//! suppresses duplicates, and acks what it received.
//!
//! This file holds the device's state, its getters and its connection lifecycle; the rest is
//! split by concern: `send` (compose, seal, the outbox), `receive` (frames in, decrypt,
//! the reorder hold, show) and `retry` (the retry timer, retry receipts, the plaintext cache).

mod receive;
mod retry;
mod send;

pub use receive::digest;
pub use retry::{RETRIES_MAX, RETRY_RECEIPT_SENDS_MAX};
pub use send::{sender_key_len, signal_len, GroupSend};

use super::key_directory::KeyDirectory;
use super::keyring::Keyring;
use super::{Addr, Effects, TimerKind};
use crate::collections::vec_map::VecMap;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::scenario::ContentKind;
use crate::wire::{
    Conversation, CopyId, DeviceId, Frame, GroupId, GroupMembers, MsgId, ProviderId, Submission,
    UserId,
};
use receive::{Stream, StreamExtras};
use retry::PendingRetry;
use std::collections::VecDeque;

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
    /// Bound on sent plaintexts kept for retry receipts (an evicted one cannot be re-sent).
    pub plaintext_cache_max: usize,
    /// Deliberate bugs (test builds only).
    pub bugs: super::buggify::Bugs,
}

/// A sent message kept for retry receipts. 24 bytes: a million devices keep their last
/// messages; what only group messages and real crypto need is kept apart, in
/// [`Rare::cached_extras`].
/// Here with the device's state rather than in `retry`: `send` fills the cache and `retry`
/// reads it, and neither file uses the other.
#[derive(Clone, Debug)]
struct Cached {
    msg: MsgId,
    /// The recipient (for a group message: the routing stand-in, see `compose_group`).
    to_user: UserId,
    seq: u32,
    len: u32,
    content: ContentKind,
    /// Its group and plaintext bytes are in [`Rare::cached_extras`].
    has_extra: bool,
}

#[derive(Clone, Debug, Default)]
struct CachedExtra {
    /// A group message: its group and its members with their sequence numbers, in the order
    /// of their copies' index ([`CopyId`](crate::wire::CopyId)).
    group: Option<(GroupId, GroupMembers)>,
    /// The bytes (real crypto) or nothing (modeled crypto, which needs only `len`).
    plaintext: Box<[u8]>,
}

impl CachedExtra {
    fn group(&self) -> Option<&(GroupId, GroupMembers)> {
        self.group.as_ref()
    }
}

/// An optional instant in 8 bytes instead of `Option<SimTime>`'s 16 (a device has two):
/// `SimTime::MAX` stands for none. An instant is kept at most a nanosecond before it, which
/// only a delay of centuries saturating could reach; the timer is set at the instant kept
/// ([`Due::set`]), so the two always agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Due(SimTime);

impl Due {
    const NONE: Due = Due(SimTime::MAX);

    fn at(t: SimTime) -> Due {
        Due(t.min(SimTime::from_nanos(u64::MAX - 1)))
    }
    /// Keeps `at` and sets a timer of `kind` at the instant kept, so the two always agree.
    fn set(&mut self, at: SimTime, kind: TimerKind, fx: &mut Effects) {
        *self = Due::at(at);
        fx.timer(self.0, kind);
    }
    fn get(self) -> Option<SimTime> {
        (self != Due::NONE).then_some(self.0)
    }
    fn take(&mut self) -> Option<SimTime> {
        std::mem::replace(self, Due::NONE).get()
    }
}

/// What few devices ever hold, boxed apart so that the state of each of a million devices
/// stays small: refused sequence numbers, submissions waiting for a bundle permit, unanswered
/// retry receipts, what a cached plaintext has besides its length (a group's members, real
/// crypto's bytes), and a skewed clock's offset.
#[derive(Clone, Debug, Default)]
struct Rare {
    /// Refused numbers that could not be handed back yet (see `release_seq`).
    void_seqs: Vec<((Conversation, UserId), u32)>,
    /// Submissions that may not leave before an instant: the client waits out the key
    /// directory's Retry-After for a bundle it needed (issue 20). Neither a retry nor the ack
    /// of the message before sends one early.
    held: Vec<(CopyId, u32, SimTime)>,
    /// Retry receipts sent and not yet answered by a decryptable copy.
    retry_receipts: Vec<PendingRetry>,
    /// The extras of the cached plaintexts that have them, in the cache's order.
    cached_extras: VecDeque<(MsgId, CachedExtra)>,
    /// How far this device's clock is off true time (the `clock_skew` fault), in ns.
    clock_offset_ns: i64,
}

/// What every device input needs besides the device itself: the time, the run's fixed tables,
/// the key stores (the devices' Signal state, and the gatekeeper's key directory, which serves
/// a new session's bundle and takes prekey refills) and the buffer the outputs go to. Sans-IO:
/// every input is explicit, and one argument carries them.
pub struct DeviceCtx<'a> {
    pub now: SimTime,
    pub cfg: &'a DeviceConfig,
    pub dir: &'a Directory,
    pub keys: &'a mut Keyring,
    pub key_directory: &'a mut KeyDirectory,
    pub fx: &'a mut Effects,
}

/// A client device's state.
#[derive(Clone, Debug)]
pub struct Device {
    id: DeviceId,
    user: UserId,
    provider: ProviderId,
    online: bool,
    /// Next sequence number per conversation and recipient (in a group, per member).
    next_seq: VecMap<(Conversation, UserId), u32>,
    /// Nearly always `None`.
    rare: Option<Box<Rare>>,
    /// Times this user switched third-party chats back on (wrapping): a third-party stream that
    /// has not seen a message since then shows its next one without waiting for a gap.
    third_party_on: u16,
    outbox: VecDeque<Submission>,
    retry_at: Due,
    retry_ns: u64,
    streams: VecMap<(DeviceId, Conversation), Stream>,
    stream_extras: StreamExtras,
    release_at: Due,
    /// Servers whose ConnectAck has not come yet, one bit each in the order of `servers`
    /// (at most two): the Connect is retried with the outbox.
    connecting: u8,
    /// Sent plaintexts, oldest first, for retry receipts.
    plaintext_cache: VecDeque<Cached>,
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
            next_seq: VecMap::new(),
            rare: None,
            third_party_on: 0,
            outbox: VecDeque::new(),
            retry_at: Due::NONE,
            retry_ns: cfg.retry_initial_ns,
            streams: VecMap::new(),
            stream_extras: StreamExtras::default(),
            release_at: Due::NONE,
            connecting: 0,
            plaintext_cache: VecDeque::new(),
            throttled: false,
            epoch: 0,
        }
    }

    // ---- the rare state

    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn has_retry_receipts(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| !r.retry_receipts.is_empty())
    }

    /// A decryptable copy of `copy` came: its retry receipt is answered.
    fn forget_retry_receipt(&mut self, copy: CopyId) {
        if let Some(r) = self.rare.as_deref_mut() {
            r.retry_receipts.retain(|p| p.copy != copy);
        }
    }

    /// The group and plaintext bytes of a cached message, if it has any.
    fn cached_extra(&self, c: &Cached) -> Option<&CachedExtra> {
        if !c.has_extra {
            return None;
        }
        let extras = &self.rare.as_ref()?.cached_extras;
        extras.iter().find(|(m, _)| *m == c.msg).map(|(_, e)| e)
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
    /// When its outbox retry timer is due, if one is armed: a timer of another instant that
    /// fires finds the device stale and does nothing.
    pub fn retry_due(&self) -> Option<SimTime> {
        self.retry_at.get()
    }
    /// A cache hint for [`Device::retry_due`].
    pub fn prefetch_retry_due(&self) {
        crate::engine::prefetch::prefetch(&self.retry_at);
    }

    /// A cache hint for what receiving a message reads besides the device itself: its
    /// streams. Call it once the device is in the cache (see [`crate::engine::prefetch`]).
    pub fn prefetch_for_receive(&self) {
        self.streams.prefetch();
    }

    /// A cache hint for what sending a message reads besides the device itself: its sequence
    /// numbers, its outbox and the tail of its plaintext cache. Call it once the device is in
    /// the cache (see [`crate::engine::prefetch`]).
    pub fn prefetch_for_send(&self) {
        use crate::engine::prefetch::prefetch_slice;
        self.next_seq.prefetch();
        let (head, tail) = self.outbox.as_slices();
        prefetch_slice(head, 128);
        prefetch_slice(tail, 128);
        let (head, tail) = self.plaintext_cache.as_slices();
        let newest = if tail.is_empty() { head } else { tail };
        prefetch_slice(&newest[newest.len().saturating_sub(2)..], 128);
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
        if dir.is_mimi() {
            // Under MIMI a client talks to its own provider only.
            return Addr::PartnerServer(self.provider);
        }
        if !dir.is_interop(self.user, peer) {
            return Addr::PartnerServer(self.provider);
        }
        match dir.partner_link(self.provider) {
            crate::directory::PartnerLink::Proxied => Addr::Adapter(self.provider),
            crate::directory::PartnerLink::Direct => Addr::Gateway,
        }
    }

    /// The servers this device keeps a connection to.
    fn servers(&self, dir: &Directory) -> impl Iterator<Item = Addr> {
        let partner = !dir.is_gatekeeper(self.provider);
        let interop = match dir.partner_link(self.provider) {
            crate::directory::PartnerLink::Proxied => Addr::Adapter(self.provider),
            crate::directory::PartnerLink::Direct => Addr::Gateway,
        };
        let first = if partner {
            Addr::PartnerServer(self.provider)
        } else {
            Addr::ChatServer
        };
        let gateway = partner && !dir.is_mimi();
        std::iter::once(first).chain(gateway.then_some(interop))
    }

    /// The servers whose ConnectAck has not come yet, in the order of `servers`.
    fn connecting_to(&self, dir: &Directory) -> impl Iterator<Item = Addr> + use<'_> {
        let pending = self.connecting;
        (self.servers(dir).enumerate())
            .filter_map(move |(i, s)| (pending >> i & 1 == 1).then_some(s))
    }

    /// The servers for which `acked` holds have acked this connection.
    fn connected(&mut self, dir: &Directory, acked: impl Fn(Addr) -> bool) {
        let done = (self.servers(dir).enumerate())
            .filter(|&(_, s)| acked(s))
            .fold(0u8, |bits, (i, _)| bits | 1 << i);
        self.connecting &= !done;
    }

    // ---- mutators

    /// Sets how far this device's clock is off (it stamps the messages it sends).
    pub fn set_clock_offset(&mut self, offset_ns: i64) {
        if offset_ns != 0 || self.rare.is_some() {
            self.rare_mut().clock_offset_ns = offset_ns;
        }
    }

    /// The device's own idea of the time: true time plus its skew.
    fn local_clock(&self, now: SimTime) -> SimTime {
        let offset_ns = self.rare.as_ref().map_or(0, |r| r.clock_offset_ns);
        SimTime::from_nanos(now.as_nanos().saturating_add_signed(offset_ns))
    }

    /// The device connects: announce itself to its servers and flush the outbox.
    pub fn go_online(&mut self, cx: &mut DeviceCtx) {
        if self.online {
            return;
        }
        self.online = true;
        // Online again: top the one-time prekey pool up if it ran low.
        let runner = self.runner(cx.dir);
        cx.keys.refill(cx.key_directory, self.id, runner);
        self.retry_ns = cx.cfg.retry_initial_ns;
        self.connect(cx.now, cx.dir, cx.fx);
        self.resend_outbox(cx.now, cx.dir, cx.fx);
    }

    /// The device disconnects. What is in flight to it is lost; its servers keep it queued.
    pub fn go_offline(&mut self, cx: &mut DeviceCtx) {
        if !self.online {
            return;
        }
        for server in self.servers(cx.dir) {
            cx.fx.send(
                server,
                Frame::Disconnect {
                    device: self.id,
                    epoch: self.epoch,
                },
            );
        }
        self.online = false;
        self.retry_at = Due::NONE;
        self.connecting = 0;
    }

    /// Connects to every server, retried until each acks.
    fn connect(&mut self, now: SimTime, dir: &Directory, fx: &mut Effects) {
        self.epoch += 1;
        self.connecting = (1u8 << self.servers(dir).count()) - 1;
        for server in self.connecting_to(dir) {
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

    /// The user reads a shown message: a read receipt goes back to its sender (best effort).
    pub fn read(&mut self, cx: &mut DeviceCtx, msg: MsgId, sender: UserId) {
        cx.fx.record(LedgerEvent::Read { msg });
        if self.online {
            let receipt = Frame::Receipt {
                msg,
                kind: crate::wire::ReceiptKind::Read,
                from_user: self.user,
                to_user: sender,
                to_device: None,
            };
            cx.fx.send(self.uplink(sender, cx.dir), receipt);
        }
    }

    /// The user switched third-party chats back on. Copies queued for this device while they
    /// were off were dropped (unreachable, counted so), so a third-party stream may have a gap
    /// that nothing will fill: the next message of each shows without waiting for it.
    pub fn third_party_switched_on(&mut self) {
        self.third_party_on = self.third_party_on.wrapping_add(1);
    }

    /// The server this device talks to restarted: connect again (a real client reconnects
    /// with backoff; the model reconnects at once).
    pub fn reconnect(&mut self, cx: &mut DeviceCtx) {
        if self.online {
            self.connect(cx.now, cx.dir, cx.fx);
            self.resend_outbox(cx.now, cx.dir, cx.fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> (Device, DeviceConfig) {
        use crate::directory::PartnerLink;
        let dir = Directory::new(&[3], vec![PartnerLink::Direct], &[1; 3], vec![true; 3]);
        let cfg = DeviceConfig {
            retry_initial_ns: 1,
            retry_max_ns: 1,
            outbox_max: 8,
            reorder_hold_ns: 1,
            reorder_held_max: 8,
            plaintext_cache_max: 2,
            bugs: super::super::buggify::Bugs::NONE,
        };
        (Device::new(DeviceId(0), &dir, &cfg), cfg)
    }

    fn cached(msg: u64) -> Cached {
        Cached {
            msg: MsgId(msg),
            to_user: UserId(1),
            seq: 0,
            len: 3,
            content: ContentKind::Text,
            has_extra: false,
        }
    }

    /// The extras of cached plaintexts (real crypto's bytes, a group's members) follow the
    /// cache: each entry finds its own, and an evicted entry takes its extras with it.
    #[test]
    fn cached_extras_follow_the_cache_through_eviction() {
        use crate::scenario::CryptoMode;
        let (mut d, cfg) = device();
        let group = |g: u32| CachedExtra {
            group: Some((GroupId(g), GroupMembers::default())),
            plaintext: Box::default(),
        };
        d.cache_plaintext(cached(1), Some(group(7)), b"one", CryptoMode::Modeled, &cfg);
        d.cache_plaintext(cached(2), None, b"two", CryptoMode::Modeled, &cfg);
        d.cache_plaintext(cached(3), Some(group(9)), b"abc", CryptoMode::Real, &cfg);
        let entries: Vec<Cached> = d.plaintext_cache.iter().cloned().collect();
        assert_eq!(entries.iter().map(|c| c.msg.0).collect::<Vec<_>>(), [2, 3]);
        assert!(
            d.cached_extra(&entries[0]).is_none(),
            "a modeled 1:1 message has none"
        );
        let third = d.cached_extra(&entries[1]).expect("its extras");
        assert_eq!(third.group().map(|g| g.0), Some(GroupId(9)));
        assert_eq!(&*third.plaintext, b"abc");
        let extras = &d.rare.as_ref().expect("made for the extras").cached_extras;
        assert_eq!(extras.len(), 1, "message 1's extras went with it");
        d.cache_plaintext(cached(4), None, b"four", CryptoMode::Real, &cfg);
        let extras = &d.rare.as_ref().expect("kept").cached_extras;
        let ids: Vec<u64> = extras.iter().map(|(m, _)| m.0).collect();
        assert_eq!(ids, [3, 4], "real crypto keeps every message's bytes");
    }

    /// A refused number on top of its stream returns at once (no rare part made for it); one
    /// below a pending number waits, and returns with the numbers above it.
    #[test]
    fn refused_numbers_return_from_the_top() {
        let (mut d, _) = device();
        let conv = Conversation::Direct(UserId(1));
        let seqs: Vec<u32> = (0..3).map(|_| d.take_seq(conv, UserId(1))).collect();
        assert_eq!(seqs, [0, 1, 2]);
        d.release_seq(conv, UserId(1), 2);
        assert_eq!(d.next_seq.get(&(conv, UserId(1))), Some(&2));
        assert!(d.rare.is_none(), "nothing kept for a number on top");
        d.release_seq(conv, UserId(1), 0);
        assert_eq!(
            d.next_seq.get(&(conv, UserId(1))),
            Some(&2),
            "1 is still pending"
        );
        d.release_seq(conv, UserId(1), 1);
        assert_eq!(
            d.next_seq.get(&(conv, UserId(1))),
            Some(&0),
            "1 and then 0 return"
        );
        assert!(d.rare.as_ref().is_some_and(|r| r.void_seqs.is_empty()));
    }

    #[test]
    fn a_due_instant_reads_back_and_none_is_none() {
        let mut d = Due::at(SimTime::from_nanos(5));
        assert_eq!(d.get(), Some(SimTime::from_nanos(5)));
        assert_eq!(d.take(), Some(SimTime::from_nanos(5)));
        assert_eq!((d, d.get()), (Due::NONE, None));
        assert_eq!(
            Due::at(SimTime::MAX).get(),
            Some(SimTime::from_nanos(u64::MAX - 1))
        );
        assert_eq!(Due::at(SimTime::ZERO).get(), Some(SimTime::ZERO));
    }

    /// A million devices each keep their state and their last messages: the state stays
    /// small (what few devices use is in `Rare`) and so does a cached message.
    #[test]
    fn device_state_and_cached_messages_stay_small() {
        let (device, cached) = (std::mem::size_of::<Device>(), std::mem::size_of::<Cached>());
        assert!(
            device <= 176 && cached <= 24,
            "Device {device} bytes, Cached {cached} bytes"
        );
    }
}
