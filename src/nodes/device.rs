//! A client device: gatekeeper app or partner app. It holds an outbox retried until its server
//! acks, delivers incoming messages to the user in per-sender order (a bounded reorder buffer),
//! suppresses duplicates, and acks what it received.

use super::keyring::{Keyring, Runner, Sealed, SKDM_PLAINTEXT_LEN};
use super::{Addr, Effects, TimerKind};
use crate::collections::vec_map::VecMap;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::ledger::RetryRefusal;
use crate::metrics::LedgerEvent;
use crate::scenario::{ContentKind, CryptoMode};
use crate::wire::{
    Ciphertext, Conversation, DeviceId, Envelope, Frame, GroupId, GroupMembers, MsgId, ProviderId,
    UserId,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

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

/// Messages from one sender device in one conversation, shown in `seq` order.
#[derive(Clone, Debug, Default)]
struct Stream {
    /// The next sequence number to show.
    next_seq: u32,
    /// Held messages, skipped gaps and placeholders; boxed and absent while all are empty
    /// (nearly always: a million devices each hold several streams).
    extra: Option<Box<StreamExtra>>,
}

/// What a stream holds besides its next sequence number: empty unless messages arrived out
/// of order or did not decrypt.
#[derive(Clone, Debug, Default)]
struct StreamExtra {
    /// Arrived ahead of a gap: seq -> (message, held since).
    held: BTreeMap<u32, (Slot, SimTime)>,
    /// Gaps given up on: sequence numbers passed over when held messages were shown anyway.
    /// A message that fills one later still shows (late, out of order) instead of being taken
    /// for a duplicate. Bounded by [`SKIPPED_MAX`].
    skipped: BTreeSet<u32>,
    /// Placeholders shown for messages that did not decrypt, waiting for a re-encryption.
    awaiting: BTreeSet<u32>,
}

/// What a stream without extra state reads as.
static NO_EXTRA: StreamExtra = StreamExtra {
    held: BTreeMap::new(),
    skipped: BTreeSet::new(),
    awaiting: BTreeSet::new(),
};

impl Stream {
    fn ext(&self) -> &StreamExtra {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }
    fn ext_mut(&mut self) -> &mut StreamExtra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// Whether a frame that came from `from` answers a Connect sent to `server`: acks from the
/// hub come back through the adapter or the gateway, so the last hop stands for the server.
fn from_server(server: Addr, from: Addr) -> bool {
    server == from
}

/// Bound on re-encryptions per message and recipient device (WhatsApp's retry receipts).
pub const RETRIES_MAX: u8 = 5;

/// The modeled size of a Signal message with `plaintext_len` bytes of content: AES-CBC padding,
/// the SignalMessage framing and MAC (53 bytes), and a prekey header (about 100 bytes) on a
/// session's first messages. The same formula in real and modeled crypto keeps their runs equal.
pub fn signal_len(plaintext_len: usize, prekey: bool) -> u32 {
    let padded = (plaintext_len as u32 + 16) / 16 * 16;
    padded + 53 + if prekey { 100 } else { 0 }
}

/// The modeled size of a Sender Key message: AES-CBC padding, the header (key id, iteration)
/// and the 64-byte signature.
pub fn sender_key_len(plaintext_len: usize) -> u32 {
    let padded = (plaintext_len as u32 + 16) / 16 * 16;
    padded + 80
}

/// A group message to send: the group, its membership epoch (a change re-keys), and the
/// members it goes to (member `k` gets message id `msg + k`).
#[derive(Clone, Debug)]
pub struct GroupSend {
    pub group: GroupId,
    pub epoch: u32,
    pub members: Arc<[UserId]>,
}

/// Bound on how often one retry receipt is sent (it is resent with the outbox retries).
pub const RETRY_RECEIPT_SENDS_MAX: u8 = 10;

/// A retry receipt waiting for its answer.
#[derive(Clone, Debug)]
struct PendingRetry {
    msg: MsgId,
    sender: DeviceId,
    sender_user: UserId,
    attempt: u8,
    sends: u8,
}

/// A sent message kept for retry receipts. 32 bytes: a million devices keep their last
/// messages; what only group messages and real crypto need is boxed apart.
#[derive(Clone, Debug)]
struct Cached {
    msg: MsgId,
    /// The recipient (for a group message: the routing stand-in, see `compose_group`).
    to_user: UserId,
    seq: u32,
    len: u32,
    content: ContentKind,
    /// The group and the plaintext bytes, when there are any.
    extra: Option<Box<CachedExtra>>,
}

#[derive(Clone, Debug, Default)]
struct CachedExtra {
    /// A group message: its group and its members with their sequence numbers (member `k`
    /// has message id `msg + k`).
    group: Option<(GroupId, GroupMembers)>,
    /// The bytes (real crypto) or nothing (modeled crypto, which needs only `len`).
    plaintext: Box<[u8]>,
}

impl Cached {
    fn group(&self) -> Option<&(GroupId, GroupMembers)> {
        self.extra.as_ref().and_then(|e| e.group.as_ref())
    }
    fn plaintext(&self) -> &[u8] {
        self.extra.as_ref().map_or(&[], |e| &e.plaintext)
    }
}

/// What a stream shows at a sequence number: a decrypted message, or the "waiting for this
/// message" placeholder of one that did not decrypt (yet).
#[derive(Clone, Copy, Debug)]
struct Slot {
    msg: MsgId,
    digest: Option<u64>,
    placeholder: bool,
}

/// A sender device's stream: its device and the conversation.
type StreamKey = (DeviceId, Conversation);

/// Bound on remembered gaps per sender stream.
const SKIPPED_MAX: usize = 1024;

/// A client device's state.
#[derive(Clone, Debug)]
pub struct Device {
    id: DeviceId,
    user: UserId,
    provider: ProviderId,
    online: bool,
    /// Next sequence number per conversation and recipient (in a group, per member).
    next_seq: VecMap<(Conversation, UserId), u32>,
    outbox: VecDeque<Envelope>,
    retry_at: Option<SimTime>,
    retry_ns: u64,
    streams: VecMap<(DeviceId, Conversation), Stream>,
    release_at: Option<SimTime>,
    /// Servers whose ConnectAck has not come yet: the Connect is retried with the outbox.
    connecting: Vec<Addr>,
    /// How far this device's clock is off true time (the `clock_skew` fault), in ns.
    clock_offset_ns: i64,
    /// Retry receipts sent and not yet answered by a decryptable copy.
    retry_receipts: Vec<PendingRetry>,
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
            outbox: VecDeque::new(),
            retry_at: None,
            retry_ns: cfg.retry_initial_ns,
            streams: VecMap::new(),
            release_at: None,
            connecting: Vec::new(),
            clock_offset_ns: 0,
            plaintext_cache: VecDeque::new(),
            retry_receipts: Vec::new(),
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

    /// The user sends a message: it is encrypted for each of the recipient's devices and for
    /// this user's other devices (sync copies, so every device shows the whole chat; a session
    /// set up on first contact), enters the outbox and goes out once the encryption's CPU time
    /// has passed, if the device is online and nothing older waits on the same uplink. The
    /// plaintext stays in a bounded cache for retry receipts. Returns `false` when the outbox is
    /// full (the app refuses to queue more).
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    pub fn compose(
        &mut self,
        now: SimTime,
        msg: MsgId,
        to_user: UserId,
        plaintext: &[u8],
        content: ContentKind,
        cfg: &DeviceConfig,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) -> bool {
        if self.outbox.len() >= cfg.outbox_max as usize {
            return false;
        }
        let this_seq = self.take_seq(Conversation::Direct(to_user), to_user);
        let mut cost_ns = 0;
        let own = dir
            .devices_of(self.user)
            .filter(|&d| d != self.id && to_user != self.user);
        let mut per_device = Vec::with_capacity(dir.device_count(to_user) as usize);
        for d in dir.devices_of(to_user).chain(own) {
            let (ct, ns) = self.seal(now, d, plaintext, Some(content), dir, keys);
            cost_ns += ns;
            per_device.push((d, ct));
        }
        let env = Envelope {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user,
            to_device: None,
            seq: this_seq,
            retry: 0,
            sent_at: self.local_clock(now),
            ciphertext: Ciphertext::default(),
            per_device,
            group: None,
            members: None,
        };
        let cached = Cached {
            msg,
            to_user,
            seq: this_seq,
            len: plaintext.len() as u32,
            content,
            extra: None,
        };
        self.cache_plaintext(cached, plaintext, keys.mode(), cfg);
        self.enqueue_outbox(now, env, cost_ns, dir, fx);
        true
    }

    /// The user writes to a group: the message is encrypted once with this device's Sender
    /// Key, plus a distribution of that key (over the pairwise session) for each member device
    /// that lacks it, and the server fans the one ciphertext out to every member's devices and
    /// this user's other devices. Returns `false` when the outbox is full.
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    pub fn compose_group(
        &mut self,
        now: SimTime,
        msg: MsgId,
        send: &GroupSend,
        plaintext: &[u8],
        content: ContentKind,
        cfg: &DeviceConfig,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) -> bool {
        if self.outbox.len() >= cfg.outbox_max as usize {
            return false;
        }
        let conv = Conversation::Group(send.group);
        let members: GroupMembers = send
            .members
            .iter()
            .map(|&u| (u, self.take_seq(conv, u)))
            .collect();
        let targets: Vec<DeviceId> = send
            .members
            .iter()
            .flat_map(|&u| dir.devices_of(u))
            .filter(|&d| d != self.id)
            .collect();
        let (g, epoch, runner) = (send.group, send.epoch, self.runner(dir));
        let sealed = keys.group_seal(
            now,
            self.id,
            g,
            epoch,
            &targets,
            plaintext,
            Some(content),
            runner,
        );
        let env = Envelope {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user: self.group_route_user(&send.members, dir),
            to_device: None,
            seq: 0, // per member, in `members`
            retry: 0,
            sent_at: self.local_clock(now),
            ciphertext: shared_ciphertext(sealed.shared, plaintext.len()),
            per_device: distributions(sealed.distributions),
            group: Some(g),
            members: Some(members.clone()),
        };
        let cached = Cached {
            msg,
            to_user: env.to_user,
            seq: 0,
            len: plaintext.len() as u32,
            content,
            extra: Some(Box::new(CachedExtra {
                group: Some((g, members)),
                plaintext: Box::default(),
            })),
        };
        self.cache_plaintext(cached, plaintext, keys.mode(), cfg);
        self.enqueue_outbox(now, env, sealed.ns, dir, fx);
        true
    }

    /// The next sequence number of this device in a conversation, for one recipient.
    fn take_seq(&mut self, conv: Conversation, to: UserId) -> u32 {
        let seq = self.next_seq.entry_or_default((conv, to));
        *seq += 1;
        *seq - 1
    }

    /// Whom a group submission is addressed to for routing: a member at another provider (an
    /// enlisted one if there is one) sends it over the interop path to the hub, which fans it
    /// out everywhere; a group inside this device's provider stays on its own server.
    fn group_route_user(&self, members: &[UserId], dir: &Directory) -> UserId {
        let mut across = members
            .iter()
            .copied()
            .filter(|&u| dir.is_interop(self.user, u));
        let first = across.clone().next();
        across
            .find(|&u| dir.is_enlisted(u))
            .or(first)
            .unwrap_or(self.user)
    }

    /// The user sends a message its driver already encrypted (the live load generator does
    /// its Signal work itself): one ciphertext for every recipient device.
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    pub fn compose_sealed(
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
        let this_seq = self.take_seq(Conversation::Direct(to_user), to_user);
        let env = Envelope {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user,
            to_device: None,
            seq: this_seq,
            retry: 0,
            sent_at: self.local_clock(now),
            ciphertext,
            per_device: Vec::new(),
            group: None,
            members: None,
        };
        self.enqueue_outbox(now, env, 0, dir, fx);
        true
    }

    /// Encrypts for one device, with the modeled wire size; `now` for the key directory's rate
    /// limit.
    fn seal(
        &self,
        now: SimTime,
        to: DeviceId,
        plaintext: &[u8],
        content: Option<ContentKind>,
        dir: &Directory,
        keys: &mut Keyring,
    ) -> (Ciphertext, u64) {
        let runner = self.runner(dir);
        let (bytes, seal, ns) = keys.seal(now, self.id, to, plaintext, content, runner);
        let len = signal_len(plaintext.len(), seal.prekey);
        (Ciphertext { len, bytes, seal }, ns)
    }

    fn runner(&self, dir: &Directory) -> Runner {
        if dir.is_gatekeeper(self.provider) {
            Runner::GatekeeperDevice
        } else {
            Runner::PartnerDevice
        }
    }

    /// Keeps a sent message for retry receipts. Modeled crypto needs only the length to
    /// re-encrypt: it keeps no bytes (a million devices with full caches would hold gigabytes).
    fn cache_plaintext(
        &mut self,
        mut cached: Cached,
        plaintext: &[u8],
        mode: CryptoMode,
        cfg: &DeviceConfig,
    ) {
        if cfg.plaintext_cache_max == 0 {
            return;
        }
        if self.plaintext_cache.len() >= cfg.plaintext_cache_max {
            self.plaintext_cache.pop_front();
        }
        if mode == CryptoMode::Real {
            cached.extra.get_or_insert_with(Box::default).plaintext = plaintext.into();
        }
        let (len, cap) = (self.plaintext_cache.len(), self.plaintext_cache.capacity());
        if len == cap {
            // Grow by half, not double: most devices send a few messages.
            self.plaintext_cache.reserve_exact((len / 2).max(2));
        }
        self.plaintext_cache.push_back(cached);
    }

    /// Puts `env` in the outbox and sends it after `delay_ns` if it is first in its uplink.
    fn enqueue_outbox(
        &mut self,
        now: SimTime,
        env: Envelope,
        delay_ns: u64,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let uplink = self.uplink(env.to_user, dir);
        let first_for_uplink = !self
            .outbox
            .iter()
            .any(|e| self.uplink(e.to_user, dir) == uplink);
        if self.online && !self.throttled && first_for_uplink {
            fx.send_after(delay_ns, uplink, Frame::Submit(Box::new(env.clone())));
            self.arm_retry(now, fx);
        }
        if self.outbox.capacity() == 0 {
            // Usually the only message waiting: room for one (see `acked`).
            self.outbox.reserve_exact(1);
        }
        self.outbox.push_back(env);
    }

    /// A recipient device could not decrypt `msg`: encrypt it again for that device on a fresh
    /// session, from the plaintext cache, at most [`RETRIES_MAX`] times.
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    fn answer_retry(
        &mut self,
        now: SimTime,
        msg: MsgId,
        requester: DeviceId,
        attempt: u8,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) {
        let refuse = |reason, fx: &mut Effects| {
            fx.record(LedgerEvent::RetryRefused {
                msg,
                device: requester,
                reason,
            })
        };
        if attempt > RETRIES_MAX {
            return refuse(RetryRefusal::Exhausted, fx);
        }
        let covers = |c: &&Cached| {
            let span = c.group().map_or(1, |(_, m)| m.len() as u64);
            (c.msg.0..c.msg.0 + span).contains(&msg.0)
        };
        let Some(c) = self.plaintext_cache.iter().find(covers).cloned() else {
            return refuse(RetryRefusal::Evicted, fx);
        };
        keys.drop_session(self.id, requester);
        let modeled;
        let plaintext: &[u8] = if c.plaintext().len() as u32 == c.len {
            c.plaintext()
        } else {
            modeled = vec![0u8; c.len as usize];
            &modeled
        };
        let seq = match c.group() {
            Some((_, members)) => members[(msg.0 - c.msg.0) as usize].1,
            None => c.seq,
        };
        let (ciphertext, per_device, ns, group) = match c.group() {
            None => {
                let (ct, ns) = self.seal(now, requester, plaintext, Some(c.content), dir, keys);
                (Ciphertext::default(), vec![(requester, ct)], ns, None)
            }
            Some(&(g, _)) => {
                // The member gets the key again (its copy may be what it lacked) with a new
                // Sender Key encryption of the message, on a fresh pairwise session.
                keys.forget_holder(self.id, g, requester);
                let epoch = keys.sender_key_epoch(self.id, g).unwrap_or(0);
                let (runner, kind) = (self.runner(dir), Some(c.content));
                let sealed = keys.group_seal(
                    now,
                    self.id,
                    g,
                    epoch,
                    &[requester],
                    plaintext,
                    kind,
                    runner,
                );
                let shared = shared_ciphertext(sealed.shared, plaintext.len());
                (
                    shared,
                    distributions(sealed.distributions),
                    sealed.ns,
                    Some(g),
                )
            }
        };
        let env = Envelope {
            msg,
            from_user: self.user,
            from_device: self.id,
            // A 1:1 message stays in its chat (a sync copy too); a group copy goes to its member.
            to_user: if group.is_some() {
                dir.user_of(requester)
            } else {
                c.to_user
            },
            to_device: Some(requester),
            seq,
            retry: attempt,
            sent_at: self.local_clock(now),
            ciphertext,
            per_device,
            group,
            members: None,
        };
        self.enqueue_outbox(now, env, ns, dir, fx);
    }

    /// The device connects: announce itself to its servers and flush the outbox.
    pub fn go_online(
        &mut self,
        now: SimTime,
        cfg: &DeviceConfig,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) {
        if self.online {
            return;
        }
        self.online = true;
        // Online again: top the one-time prekey pool up if it ran low.
        keys.refill(self.id, self.runner(dir));
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
                fx.send(uplink, Frame::Submit(Box::new(env.clone())));
                sent.push(uplink);
            }
        }
    }

    /// Retry receipts still unanswered go out again (receipts can be lost like any frame),
    /// each at most [`RETRY_RECEIPT_SENDS_MAX`] times.
    fn resend_retry_receipts(&mut self, dir: &Directory, fx: &mut Effects) {
        let uplinks: Vec<Addr> = self
            .retry_receipts
            .iter()
            .map(|r| self.uplink(r.sender_user, dir))
            .collect();
        for (r, uplink) in self.retry_receipts.iter_mut().zip(uplinks) {
            r.sends += 1;
            let frame = Frame::RetryReceipt {
                msg: r.msg,
                requester: self.id,
                sender: r.sender,
                sender_user: r.sender_user,
                attempt: r.attempt,
            };
            fx.send(uplink, frame);
        }
        self.retry_receipts
            .retain(|r| r.sends < RETRY_RECEIPT_SENDS_MAX);
    }

    /// Nothing left to retry: the retry timer would only find the device idle, so it goes,
    /// and the next message arms its own (instead of inheriting this one's, which fired
    /// early for it and resent it needlessly). Not while throttled: the timer ends that.
    fn disarm_retry_if_idle(&mut self, fx: &mut Effects) {
        let idle = self.outbox.is_empty()
            && self.connecting.is_empty()
            && self.retry_receipts.is_empty()
            && !self.throttled;
        if idle {
            if let Some(at) = self.retry_at.take() {
                fx.cancel_timer(at, TimerKind::OutboxRetry);
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
                let idle = self.outbox.is_empty()
                    && self.connecting.is_empty()
                    && self.retry_receipts.is_empty();
                if !self.online || idle {
                    return;
                }
                self.resend_retry_receipts(dir, fx);
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
            TimerKind::Redeliver(_) | TimerKind::ExpirySweep | TimerKind::MediaRetry => {}
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
        keys: &mut Keyring,
        fx: &mut Effects,
    ) {
        if !self.online {
            return; // the connection is down: the frame never reaches the app
        }
        match frame {
            Frame::SubmitAck { msg, copy, .. } => self.acked(msg, copy, cfg, dir, fx),
            Frame::ConnectAck { epoch, .. } if epoch == self.epoch => {
                self.connecting.retain(|s| !from_server(*s, from));
                self.disarm_retry_if_idle(fx);
            }
            Frame::ConnectAck { .. } => {} // the ack of an older connection
            Frame::Refused { msg, to_user, .. } => {
                // A refused group message is refused for every member it was for.
                let members = self
                    .outbox
                    .iter()
                    .find(|e| e.msg == msg && e.copy_key() == 0)
                    .and_then(|e| e.members.clone());
                self.acked(msg, 0, cfg, dir, fx);
                match members {
                    Some(members) => {
                        for (k, &(to_user, _)) in members.iter().enumerate() {
                            let msg = MsgId(msg.0 + k as u64);
                            fx.record(LedgerEvent::Refused { msg, to_user });
                        }
                    }
                    None => fx.record(LedgerEvent::Refused { msg, to_user }),
                }
            }
            Frame::Deliver(env) if tampered => {
                fx.record(LedgerEvent::TamperDetected {
                    msg: env.msg,
                    device: self.id,
                });
            }
            Frame::Deliver(env) => self.receive(now, from, *env, cfg, dir, keys, fx),
            Frame::RetryReceipt {
                msg,
                requester,
                attempt,
                ..
            } => self.answer_retry(now, msg, requester, attempt, dir, keys, fx),
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
            // Media transfers are the device's media client's (nodes/media), driven beside it.
            Frame::Media(_) => {}
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
    fn acked(
        &mut self,
        msg: MsgId,
        copy: u32,
        cfg: &DeviceConfig,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let Some(i) = self
            .outbox
            .iter()
            .position(|e| e.msg == msg && e.copy_key() == copy)
        else {
            return;
        };
        let Some(done) = self.outbox.remove(i) else {
            return;
        };
        let uplink = self.uplink(done.to_user, dir);
        if self.outbox.is_empty() {
            self.retry_ns = cfg.retry_initial_ns;
            // An idle device keeps no outbox buffer: a million of them would hold gigabytes.
            self.outbox = VecDeque::new();
            self.disarm_retry_if_idle(fx);
        }
        if self.online && !self.throttled {
            if let Some(next) = self
                .outbox
                .iter()
                .find(|e| self.uplink(e.to_user, dir) == uplink)
            {
                fx.send(uplink, Frame::Submit(Box::new(next.clone())));
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    #[allow(clippy::too_many_arguments)] // sans-IO: every input is explicit
    fn receive(
        &mut self,
        now: SimTime,
        hop: Addr,
        env: Envelope,
        cfg: &DeviceConfig,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) {
        // Ack first, duplicate or not: a lost ack is why duplicates come. The ack goes back the
        // way the copy came (a group's hub may deliver a same-provider member's copy too).
        let ack = Frame::DeliverAck {
            msg: env.msg,
            device: self.id,
            from_user: env.from_user,
            to_user: env.to_user,
        };
        fx.send(hop, ack);
        let (seq, from) = (env.seq, (env.from_device, env.conversation()));
        let stream = self.streams.entry_or_default(from);
        if cfg.bugs.break_dedup {
            // BUGGIFY: show whatever arrives, as it arrives, duplicates included.
            stream.next_seq = stream.next_seq.max(seq + 1);
            let shown = LedgerEvent::Shown {
                msg: env.msg,
                device: self.id,
                from_device: from.0,
                conversation: from.1,
                seq,
                digest: None,
                late: false,
            };
            return fx.record(shown);
        }
        let fills_placeholder = seq < stream.next_seq && stream.ext().awaiting.contains(&seq);
        let fills_gap = seq < stream.next_seq && stream.ext().skipped.contains(&seq);
        if !fills_placeholder
            && !fills_gap
            && (seq < stream.next_seq || stream.ext().held.contains_key(&seq))
        {
            return fx.record(LedgerEvent::DuplicateSuppressed {
                msg: env.msg,
                device: self.id,
            });
        }
        let slot = self.open(now, &env, dir, keys, fx);
        let stream = self.streams.entry_or_default(from);
        if fills_placeholder {
            if !slot.placeholder {
                stream.ext_mut().awaiting.remove(&seq);
                self.retry_receipts.retain(|r| r.msg != env.msg);
                let shown = LedgerEvent::Shown {
                    msg: env.msg,
                    device: self.id,
                    from_device: from.0,
                    conversation: from.1,
                    seq,
                    digest: slot.digest,
                    late: true,
                };
                fx.record(shown);
            }
            return;
        }
        if fills_gap {
            stream.ext_mut().skipped.remove(&seq);
            return self.show(slot, from, seq, fx);
        }
        if seq > stream.next_seq {
            let held = &mut stream.ext_mut().held;
            held.insert(seq, (slot, now));
            if held.len() > cfg.reorder_held_max || cfg.bugs.break_ordering {
                // The bound is reached: show what is held now rather than grow without limit.
                // (BUGGIFY break_ordering: no hold at all; gaps are skipped at once.)
                return self.flush_stream(from, fx);
            }
            let at = now.plus(cfg.reorder_hold_ns);
            if self.release_at.is_none_or(|t| t > at) {
                self.release_at = Some(at);
                fx.timer(at, TimerKind::ReorderRelease);
            }
            return;
        }
        self.show(slot, from, seq, fx);
        self.release_in_order(from, fx);
    }

    /// Decrypts a delivered copy. A failure leaves a placeholder in the conversation and sends
    /// a retry receipt to the sender's device.
    fn open(
        &mut self,
        now: SimTime,
        env: &Envelope,
        dir: &Directory,
        keys: &mut Keyring,
        fx: &mut Effects,
    ) -> Slot {
        let opened = match env.group {
            None => {
                let ct = &env.ciphertext;
                let (from, runner) = (env.from_device, self.runner(dir));
                let (bytes, len) = (ct.bytes.as_deref(), ct.len as u64);
                keys.open(self.id, from, bytes, ct.seal, len, None, runner)
                    .map(|(p, _)| p)
            }
            Some(g) => self.open_group(env, g, dir, keys),
        };
        match opened {
            Ok(plaintext) => {
                if let Some(p) = plaintext.as_deref() {
                    super::media::note_opened(self.id, env.msg, p, fx); // a media pointer
                }
                Slot {
                    msg: env.msg,
                    digest: plaintext.map(|p| digest(&p)),
                    placeholder: false,
                }
            }
            Err(reason) => {
                fx.record(LedgerEvent::DecryptFailed {
                    msg: env.msg,
                    device: self.id,
                    reason,
                });
                let attempt = env.retry + 1;
                let receipt = Frame::RetryReceipt {
                    msg: env.msg,
                    requester: self.id,
                    sender: env.from_device,
                    sender_user: env.from_user,
                    attempt,
                };
                fx.send(self.uplink(env.from_user, dir), receipt);
                self.retry_receipts.retain(|r| r.msg != env.msg);
                let pending = PendingRetry {
                    msg: env.msg,
                    sender: env.from_device,
                    sender_user: env.from_user,
                    attempt,
                    sends: 1,
                };
                self.retry_receipts.push(pending);
                self.arm_retry(now, fx);
                let stream = self
                    .streams
                    .entry_or_default((env.from_device, env.conversation()));
                stream.ext_mut().awaiting.insert(env.seq);
                Slot {
                    msg: env.msg,
                    digest: None,
                    placeholder: true,
                }
            }
        }
    }

    /// Decrypts a group copy: first the Sender Key distribution riding with it, if any (over
    /// the pairwise session), then the one Sender Key ciphertext.
    fn open_group(
        &self,
        env: &Envelope,
        g: GroupId,
        dir: &Directory,
        keys: &mut Keyring,
    ) -> Result<Option<Vec<u8>>, crate::metrics::ledger::DecryptReason> {
        let (from, runner) = (env.from_device, self.runner(dir));
        let shared = &env.ciphertext;
        if let Some((_, d)) = env.per_device.iter().find(|(to, _)| *to == self.id) {
            let (bytes, len) = (d.bytes.as_deref(), d.len as u64);
            let (skdm, _) = keys.open(self.id, from, bytes, d.seal, len, None, runner)?;
            let key_id = shared.seal.target_generation;
            keys.install_sender_key(self.id, from, g, key_id, skdm.as_deref());
        }
        let (bytes, len) = (shared.bytes.as_deref(), shared.len as u64);
        keys.group_open(self.id, from, g, bytes, shared.seal, len, None, runner)
            .map(|(p, _)| p)
    }

    /// Shows a message (or its placeholder) to the user and advances the stream past it.
    fn show(&mut self, slot: Slot, from: StreamKey, seq: u32, fx: &mut Effects) {
        let stream = self.streams.entry_or_default(from);
        stream.next_seq = stream.next_seq.max(seq + 1);
        if !slot.placeholder {
            fx.record(LedgerEvent::Shown {
                msg: slot.msg,
                device: self.id,
                from_device: from.0,
                conversation: from.1,
                seq,
                digest: slot.digest,
                late: false,
            });
        }
    }

    /// Shows held messages that are now next in line.
    fn release_in_order(&mut self, from: StreamKey, fx: &mut Effects) {
        loop {
            let Some(stream) = self.streams.get_mut(&from) else {
                return;
            };
            let next = stream.next_seq;
            let Some((slot, _)) = stream.extra.as_mut().and_then(|e| e.held.remove(&next)) else {
                return;
            };
            self.show(slot, from, next, fx);
        }
    }

    /// Shows everything held for `from`, in order, skipping the gaps.
    fn flush_stream(&mut self, from: StreamKey, fx: &mut Effects) {
        let Some(stream) = self.streams.get_mut(&from) else {
            return;
        };
        let Some(extra) = stream.extra.as_mut() else {
            return;
        };
        let held = std::mem::take(&mut extra.held);
        for (seq, (slot, _)) in held {
            let stream = self.streams.entry_or_default(from);
            for gap in stream.next_seq..seq {
                let skipped = &mut stream.ext_mut().skipped;
                if skipped.len() >= SKIPPED_MAX {
                    skipped.pop_first();
                }
                skipped.insert(gap);
            }
            self.show(slot, from, seq, fx);
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
        for (from, stream) in self.streams.iter() {
            if let Some((_, &(_, since))) = stream.ext().held.iter().next() {
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

/// The Sender Key ciphertext of a group message, with its modeled size.
fn shared_ciphertext((bytes, seal): Sealed, plaintext_len: usize) -> Ciphertext {
    Ciphertext {
        len: sender_key_len(plaintext_len),
        bytes,
        seal,
    }
}

/// Pairwise Sender Key distributions, with their modeled size.
fn distributions(sealed: Vec<(DeviceId, Sealed)>) -> Vec<(DeviceId, Ciphertext)> {
    sealed
        .into_iter()
        .map(|(to, (bytes, seal))| {
            let len = signal_len(SKDM_PLAINTEXT_LEN, seal.prekey);
            (to, Ciphertext { len, bytes, seal })
        })
        .collect()
}

/// A 64-bit digest of a plaintext, so the checker can tell that what a device shows is what its
/// sender wrote (real crypto only).
pub fn digest(bytes: &[u8]) -> u64 {
    let mut f = crate::engine::Fingerprint::new();
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        f.absorb(u64::from_le_bytes(w));
    }
    f.absorb(bytes.len() as u64);
    f.value()
}
