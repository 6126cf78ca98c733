//! Sending: the user composes a message (1:1, group, or sealed by the driver), the device
//! encrypts it for every recipient device, and the outbox sends it, one message in flight per
//! uplink, until the server acks.

use super::{Cached, CachedExtra, Device, DeviceCtx, Due};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::{
    mls_len, GroupSealed, Room, RoomSend, Runner, Sealed, Sealer, SKDM_PLAINTEXT_LEN,
};
use crate::nodes::{Addr, Effects};
use crate::scenario::ContentKind;
use crate::wire::{
    Ciphertext, Conversation, CopyId, DeviceId, Frame, GroupId, GroupMembers, GroupPayload, MsgId,
    Payload, PerDevice, ProviderId, Submission, UserId, SEQ_VOID,
};

/// Bound on refused sequence numbers a device remembers below a pending one.
const VOID_SEQS_MAX: usize = 64;
use std::sync::Arc;

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
/// members it goes to, in the order of their copies' index ([`CopyId`]).
#[derive(Clone, Debug)]
pub struct GroupSend {
    pub group: GroupId,
    pub epoch: u32,
    /// The group's hub provider (it orders the room under the MIMI design).
    pub hub: ProviderId,
    pub members: Arc<[UserId]>,
}

impl Device {
    /// The user sends a message: it is encrypted for each of the recipient's devices and for
    /// this user's other devices (sync copies, so every device shows the whole chat; a session
    /// set up on first contact), enters the outbox and goes out once the encryption's CPU time
    /// has passed, if the device is online and nothing older waits on the same uplink. The
    /// plaintext stays in a bounded cache for retry receipts. Returns `false` when the outbox is
    /// full (the app refuses to queue more).
    pub fn compose(
        &mut self,
        cx: &mut DeviceCtx,
        msg: MsgId,
        to_user: UserId,
        plaintext: &[u8],
        content: ContentKind,
    ) -> bool {
        let dir = cx.dir;
        if self.outbox.len() >= cx.cfg.outbox_max as usize {
            return false;
        }
        let this_seq = self.take_seq(Conversation::Direct(to_user), to_user);
        let mut cost_ns = 0;
        let mut per_device = PerDevice::with_capacity(dir.device_count(to_user) as usize);
        let mls = cx.keys.is_mls();
        if mls {
            // The 1:1 room's one MLS message (the MIMI design), named for each device.
            let room: Vec<DeviceId> = self.recipient_devices(to_user, dir).collect();
            let mut everyone = room.clone();
            everyone.push(self.id);
            let mut by = self.sealer(cx.now, dir, cx.key_directory);
            let send = RoomSend {
                room: Room::direct(self.user, to_user),
                epoch: 0,
                members: &everyone,
                plaintext_len: plaintext.len(),
                kind: Some(content),
            };
            let user = self.user;
            let r = cx.keys.room_seal(&mut by, send, |d| dir.user_of(d) == user);
            cost_ns += r.ns;
            let ct = shared_ciphertext((None, r.info), plaintext.len(), r.extra_len);
            per_device.extend(room.into_iter().map(|d| (d, ct.clone())));
        }
        for d in self.recipient_devices(to_user, dir).filter(|_| !mls) {
            let (ct, ns) = self.seal(cx, d, plaintext, Some(content));
            cost_ns += ns;
            per_device.push((d, ct));
        }
        let s = Submission {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user,
            seq: this_seq,
            sent_at: self.local_clock(cx.now),
            payload: Payload::Direct(per_device),
        };
        let cached = Cached {
            msg,
            to_user,
            seq: this_seq,
            len: plaintext.len() as u32,
            content,
            has_extra: false,
        };
        self.cache_plaintext(cached, None, plaintext, cx.keys.mode(), cx.cfg);
        self.enqueue_outbox(cx, s, cost_ns);
        true
    }

    /// The user writes to a group: the message is encrypted once with this device's Sender
    /// Key, plus a distribution of that key (over the pairwise session) for each member device
    /// that lacks it, and the server fans the one ciphertext out to every member's devices and
    /// this user's other devices. Returns `false` when the outbox is full.
    pub fn compose_group(
        &mut self,
        cx: &mut DeviceCtx,
        msg: MsgId,
        send: &GroupSend,
        plaintext: &[u8],
        content: ContentKind,
    ) -> bool {
        let (g, epoch) = (send.group, send.epoch);
        let (from, runner, user) = (self.id, self.runner(cx.dir), self.user);
        self.compose_group_with(cx, msg, send, plaintext, content, |cx, targets| {
            let mut by = Sealer {
                now: cx.now,
                from,
                runner,
                directory: cx.key_directory,
            };
            if cx.keys.is_mls() {
                // One MLS message for the room (the MIMI design): no Sender Keys to hand out.
                let mut room = targets.to_vec();
                room.push(from);
                let send = RoomSend {
                    room: Room::Group(g),
                    epoch,
                    members: &room,
                    plaintext_len: plaintext.len(),
                    kind: Some(content),
                };
                let (dir, user) = (cx.dir, user);
                let r = cx.keys.room_seal(&mut by, send, |d| dir.user_of(d) == user);
                return GroupSealed {
                    shared: (None, r.info),
                    distributions: Vec::new(),
                    ns: r.ns,
                    extra_len: r.extra_len,
                };
            }
            cx.keys
                .group_seal(&mut by, g, epoch, targets, plaintext, Some(content))
        })
    }

    /// [`Device::compose_group`] with the Sender Key work done by `seal` (given the member
    /// devices that may receive, it returns the shared ciphertext, the distributions it made
    /// and their CPU time): the live load generator does its Signal work itself, as for
    /// [`Device::compose_sealed`].
    pub fn compose_group_with(
        &mut self,
        cx: &mut DeviceCtx,
        msg: MsgId,
        send: &GroupSend,
        plaintext: &[u8],
        content: ContentKind,
        seal: impl FnOnce(&mut DeviceCtx, &[DeviceId]) -> GroupSealed,
    ) -> bool {
        let dir = cx.dir;
        if self.outbox.len() >= cx.cfg.outbox_max as usize {
            return false;
        }
        let conv = Conversation::Group(send.group);
        // A member this user cannot reach now (third-party chats off at either end) is
        // refused by the hub: its stream's number is not used up (see `SEQ_VOID`).
        let members: GroupMembers = send
            .members
            .iter()
            .map(|&u| match dir.may_message(self.user, u) {
                true => (u, self.take_seq(conv, u)),
                false => (u, SEQ_VOID),
            })
            .collect();
        let targets = self.group_targets(&send.members, dir);
        debug_assert!(
            targets.iter().all(|t| members
                .iter()
                .any(|&(u, seq)| seq != SEQ_VOID && dir.devices_of(u).any(|d| d == *t))),
            "Sender Keys go only to members with a sequence number"
        );
        let g = send.group;
        let sealed = seal(cx, &targets);
        let s = Submission {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user: self.group_route_user(&send.members, dir),
            seq: 0, // per member, in `members`
            sent_at: self.local_clock(cx.now),
            payload: Payload::Group(Box::new(GroupPayload {
                group: g,
                hub: send.hub,
                shared: shared_ciphertext(sealed.shared, plaintext.len(), sealed.extra_len),
                distributions: distributions(sealed.distributions),
                members: members.clone(),
            })),
        };
        let cached = Cached {
            msg,
            to_user: s.to_user,
            seq: 0,
            len: plaintext.len() as u32,
            content,
            has_extra: false,
        };
        let extra = CachedExtra {
            group: Some((g, members)),
            plaintext: Box::default(),
        };
        self.cache_plaintext(cached, Some(extra), plaintext, cx.keys.mode(), cx.cfg);
        self.enqueue_outbox(cx, s, sealed.ns);
        true
    }

    /// The member devices a group message's Sender Key goes to: every device of every member
    /// this user may message but this one. No key goes to a member out of reach: it would be
    /// refused with the message (its number is `SEQ_VOID`), and the member's next message must
    /// carry it.
    pub fn group_targets(&self, members: &[UserId], dir: &Directory) -> Vec<DeviceId> {
        members
            .iter()
            .filter(|&&u| dir.may_message(self.user, u))
            .flat_map(|&u| dir.devices_of(u))
            .filter(|&d| d != self.id)
            .collect()
    }

    /// The next sequence number of this device in a conversation, for one recipient.
    pub(super) fn take_seq(&mut self, conv: Conversation, to: UserId) -> u32 {
        let seq = self.next_seq.entry_or_default((conv, to));
        *seq += 1;
        *seq - 1
    }

    /// A message was refused by the sender's server before any copy of it went out (third-party
    /// chats off at either end): its number in the stream to `to` is free again, so that the
    /// recipient's device does not hold the next message back waiting for one that will never
    /// come. Numbers return from the top only (a later message may carry the next one already);
    /// a refused number below a pending one waits in `void_seqs` until those above it are
    /// refused too, and is forgotten (a gap the recipient's hold gives up on) past a bound.
    pub(super) fn release_seq(&mut self, conv: Conversation, to: UserId, seq: u32) {
        if seq == SEQ_VOID {
            return;
        }
        let key = (conv, to);
        let top = self
            .next_seq
            .get_mut(&key)
            .filter(|n| seq.checked_add(1) == Some(**n));
        if let (Some(next), None) = (top, &self.rare) {
            // The number on top returns at once, and no refused one waits below it: nothing
            // to keep (what the general case below does, without a list to do it in).
            *next -= 1;
            return;
        }
        let void_seqs = &mut self.rare.get_or_insert_with(Box::default).void_seqs;
        void_seqs.push((key, seq));
        if let Some(next) = self.next_seq.get_mut(&key) {
            while let Some(i) = void_seqs
                .iter()
                .position(|&(k, s)| k == key && s.checked_add(1) == Some(*next))
            {
                void_seqs.swap_remove(i);
                *next -= 1;
            }
        }
        if void_seqs.len() > VOID_SEQS_MAX {
            void_seqs.remove(0);
        }
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

    /// The devices a 1:1 message to `to_user` goes to: the peer's, and this user's other devices
    /// (sync copies, so every device shows the whole chat) unless the user writes to themself.
    fn recipient_devices<'d>(
        &self,
        to_user: UserId,
        dir: &'d Directory,
    ) -> impl Iterator<Item = DeviceId> + 'd {
        let (me, user) = (self.id, self.user);
        let own = dir
            .devices_of(user)
            .filter(move |&d| d != me && to_user != user);
        dir.devices_of(to_user).chain(own)
    }

    /// The user sends a message its driver already encrypted once (the live load generator
    /// does its Signal work itself, for users with one device each): that ciphertext goes to
    /// every recipient device.
    pub fn compose_sealed(
        &mut self,
        cx: &mut DeviceCtx,
        msg: MsgId,
        to_user: UserId,
        ciphertext: Ciphertext,
    ) -> bool {
        if self.outbox.len() >= cx.cfg.outbox_max as usize {
            return false;
        }
        let this_seq = self.take_seq(Conversation::Direct(to_user), to_user);
        let recipients = self.recipient_devices(to_user, cx.dir);
        let per_device = recipients.map(|d| (d, ciphertext.clone())).collect();
        let s = Submission {
            msg,
            from_user: self.user,
            from_device: self.id,
            to_user,
            seq: this_seq,
            sent_at: self.local_clock(cx.now),
            payload: Payload::Direct(per_device),
        };
        self.enqueue_outbox(cx, s, 0);
        true
    }

    /// Encrypts for one device, with the modeled wire size.
    pub(super) fn seal(
        &self,
        cx: &mut DeviceCtx,
        to: DeviceId,
        plaintext: &[u8],
        content: Option<ContentKind>,
    ) -> (Ciphertext, u64) {
        let mut by = self.sealer(cx.now, cx.dir, cx.key_directory);
        let (bytes, seal, ns) = cx.keys.seal(&mut by, to, plaintext, content);
        let len = signal_len(plaintext.len(), seal.prekey);
        (Ciphertext { len, bytes, seal }, ns)
    }

    /// This device as the sealer of a message at `now` (the key directory's rate limit books
    /// the bundle fetch of a new session), its work charged to its node kind.
    pub(super) fn sealer<'k>(
        &self,
        now: SimTime,
        dir: &Directory,
        directory: &'k mut KeyDirectory,
    ) -> Sealer<'k> {
        let (from, runner) = (self.id, self.runner(dir));
        Sealer {
            now,
            from,
            runner,
            directory,
        }
    }

    pub(super) fn runner(&self, dir: &Directory) -> Runner {
        if dir.is_gatekeeper(self.provider) {
            Runner::GatekeeperDevice
        } else {
            Runner::PartnerDevice
        }
    }

    /// Puts `s` in the outbox and sends it after `delay_ns` if it is first in its uplink.
    pub(super) fn enqueue_outbox(&mut self, cx: &mut DeviceCtx, s: Submission, delay_ns: u64) {
        // A compose past the bound was refused before sealing; a re-encryption answers a
        // peer's retry receipt and is not refused.
        assert!(
            matches!(s.payload, Payload::Resend(_))
                || self.outbox.len() < cx.cfg.outbox_max as usize,
            "a new message enters the outbox only below outbox_max"
        );
        let wait_ns = cx.keys.take_wait();
        let delay_ns = delay_ns + wait_ns;
        if wait_ns > 0 {
            // Waiting for a bundle permit: no retry or ack sends it before (see `held`).
            let until = cx.now.plus(delay_ns);
            self.rare_mut()
                .held
                .push((s.copy_id(), s.resend_key(), until));
        }
        let (dir, fx) = (cx.dir, &mut *cx.fx);
        let uplink = self.uplink(s.to_user, dir);
        let first_for_uplink = !self
            .outbox
            .iter()
            .any(|e| self.uplink(e.to_user, dir) == uplink);
        if self.online && !self.throttled && first_for_uplink {
            let frame = Frame::Submit(fx.boxes().submission(&s));
            fx.send_after(delay_ns, uplink, frame);
            self.arm_retry(cx.now, fx);
        }
        if self.outbox.capacity() == 0 {
            // Usually the only message waiting: an emptied outbox's buffer (see `acked`).
            self.outbox = fx.boxes().outbox();
        }
        self.outbox.push_back(s);
    }

    /// Until when `s` is held for a bundle permit (`None`: free to go at `now`).
    fn held_until(&self, s: &Submission, now: SimTime) -> Option<SimTime> {
        let held = &self.rare.as_ref()?.held;
        if held.is_empty() {
            return None;
        }
        let key = (s.copy_id(), s.resend_key());
        held.iter()
            .find(|(c, r, until)| (*c, *r) == key && *until > now)
            .map(|h| h.2)
    }

    /// Sends the oldest unacked message of each uplink. One message in flight per uplink
    /// (stop and wait): the server then receives a device's messages in the order they were
    /// written, so the fan-out is in order too. A phone writes a message every few seconds at
    /// most, far slower than a round trip, so the window costs nothing; and native and
    /// third-party chats have their own uplinks, so a partner outage blocks no native chat.
    /// A message still waiting for its bundle permit stays (its send is scheduled already, or
    /// a later retry sends it), and so do the ones behind it on its uplink.
    pub(super) fn resend_outbox(&self, now: SimTime, dir: &Directory, fx: &mut Effects) {
        // A device has at most two uplinks (its own server, and the interop path).
        let mut sent: Vec<Addr> = Vec::with_capacity(2);
        for s in &self.outbox {
            let uplink = self.uplink(s.to_user, dir);
            if !sent.contains(&uplink) {
                if self.held_until(s, now).is_none() {
                    let frame = Frame::Submit(fx.boxes().submission(s));
                    fx.send(uplink, frame);
                }
                sent.push(uplink);
            }
        }
    }

    /// The server has the submission of `copy` named by `resend` (see
    /// [`Submission::resend_key`]), or refused it for good: the next message of its uplink goes.
    pub(super) fn acked(&mut self, cx: &mut DeviceCtx, copy: CopyId, resend: u32) {
        let (dir, fx) = (cx.dir, &mut *cx.fx);
        let Some(i) = self
            .outbox
            .iter()
            .position(|s| s.copy_id() == copy && s.resend_key() == resend)
        else {
            return;
        };
        let Some(done) = self.outbox.remove(i) else {
            return;
        };
        if let Some(rare) = self.rare.as_deref_mut().filter(|r| !r.held.is_empty()) {
            let (now, key) = (cx.now, (done.copy_id(), done.resend_key()));
            rare.held
                .retain(|(c, r, until)| (*c, *r) != key && *until > now);
        }
        let uplink = self.uplink(done.to_user, dir);
        // Progress: the server answers again, so the backoff starts over (a backlog behind a
        // long outage must not wait out the largest backoff for each frame lost after it).
        self.retry_ns = cx.cfg.retry_initial_ns;
        if self.outbox.is_empty() {
            // An idle device keeps no outbox buffer (a million of them would hold gigabytes):
            // the next device to send takes it, still in the cache.
            fx.boxes().keep_outbox(std::mem::take(&mut self.outbox));
            self.disarm_retry_if_idle(fx);
        }
        if self.online && !self.throttled {
            if let Some(next) = self
                .outbox
                .iter()
                .find(|e| self.uplink(e.to_user, dir) == uplink)
            {
                let frame = Frame::Submit(fx.boxes().submission(next));
                match self.held_until(next, cx.now) {
                    Some(until) => fx.send_after(until.since(cx.now), uplink, frame),
                    None => fx.send(uplink, frame),
                }
                // Retried on the fresh backoff if it is lost (the timer armed on the old one
                // goes stale).
                let due = cx.now.plus(self.retry_ns);
                if self.retry_at.get().is_some_and(|at| at > due) {
                    self.retry_at = Due::NONE;
                    self.arm_retry(cx.now, fx);
                }
            }
        }
    }
}

/// The Sender Key ciphertext of a group message, with its modeled size.
pub(super) fn shared_ciphertext(
    (bytes, seal): Sealed,
    plaintext_len: usize,
    extra_len: u32,
) -> Ciphertext {
    let len = if seal.mls {
        mls_len(plaintext_len).saturating_add(extra_len)
    } else {
        sender_key_len(plaintext_len)
    };
    Ciphertext { len, bytes, seal }
}

/// Pairwise Sender Key distributions, with their modeled size.
pub(super) fn distributions(sealed: Vec<(DeviceId, Sealed)>) -> Vec<(DeviceId, Ciphertext)> {
    sealed
        .into_iter()
        .map(|(to, (bytes, seal))| {
            let len = signal_len(SKDM_PLAINTEXT_LEN, seal.prekey);
            (to, Ciphertext { len, bytes, seal })
        })
        .collect()
}
