//! The workload's side of a run: messages composed at the Poisson arrivals, group messages,
//! replies and reads (the users' reactions to what they see), devices coming and going
//! (churn), and the drain that ends the send window. What composing keeps between messages is
//! this file's part, [`Traffic`].

use super::inboxes::InboxWorld;
use super::{Event, Sim};
use crate::collections::spares::Spares;
use crate::engine::prefetch::prefetch;
use crate::engine::{Scheduler, SimRng, SimTime};
use crate::metrics::ledger::NewMessage;
use crate::metrics::{LedgerEvent, PathKind};
use crate::net::latency::exponential_ns;
use crate::nodes::device::GroupSend;
use crate::nodes::stage::Stage;
use crate::nodes::Addr;
use crate::scenario::{ContentKind, CryptoMode};
use crate::sim::media::MediaDraft;
use crate::wire::{DeviceId, GroupId, MsgId, UserId};
use crate::workload::{Draft, Workload};
use std::collections::BTreeMap;

/// Largest plaintext buffer kept for the next message (a text's largest body is 64 KiB).
const SPARE_PLAINTEXT_MAX: usize = 128 * 1024;

/// The workload and what composing messages keeps from one to the next.
pub(super) struct Traffic {
    pub(super) workload: Workload,
    pub(super) churn_rng: SimRng,
    /// Mean online and offline spell lengths, ns.
    pub(super) churn_means: (f64, f64),
    /// The end of the send window: nothing new is written after it.
    pub(super) send_end: SimTime,
    /// The send window closed: every device is online for the drain.
    pub(super) drained: bool,
    /// A random word every plaintext carries (metadata-isolation tests look for it).
    pub(super) canary: u64,
    pub(super) plaintexts_made: u64,
    /// Sealed plaintexts' buffers, for the next ones: a plaintext lives only until it is
    /// sealed (a media message's until its blob is stored), and at ten million messages its
    /// allocation showed.
    pub(super) spare_plaintexts: Spares<Vec<u8>>,
    /// The sender and recipient the next workload arrival is expected to pick (a cache hint).
    pub(super) next_pair: Option<(UserId, UserId)>,
    /// Group messages by first message id: their group and member count (member `k` of a
    /// group message has id `first + k`).
    pub(super) group_sends: BTreeMap<u64, (GroupId, u32)>,
    /// The users' inboxes, when the scenario tracks them (`separate_inbox`).
    pub(super) inbox: Option<InboxWorld>,
}

impl Traffic {
    /// A message body as an app would serialize it: its content type, the run's canary (so a
    /// test can prove no plaintext leaks into the gateway, adapters or partner servers), a
    /// counter that makes every plaintext unique, and filler up to the drawn size.
    pub(super) fn plaintext(&mut self, content: ContentKind, body_bytes: u32) -> Vec<u8> {
        self.plaintexts_made += 1;
        let mut p = self.spare_plaintexts.take().unwrap_or_default();
        p.clear();
        p.reserve(body_bytes as usize + 32);
        p.push(content as u8);
        p.extend_from_slice(content.key().as_bytes());
        p.extend_from_slice(&self.canary.to_le_bytes());
        p.extend_from_slice(&self.plaintexts_made.to_le_bytes());
        p.resize(p.len().max(body_bytes as usize), b'.');
        p
    }

    /// Keeps a sealed plaintext's buffer for the next message (not a huge one).
    pub(super) fn keep_spare(&mut self, plaintext: Vec<u8>) {
        if plaintext.capacity() <= SPARE_PLAINTEXT_MAX {
            self.spare_plaintexts.keep(plaintext);
        }
    }

    /// The group a message was written to, if any, and its number of recipients.
    fn group_of(&self, msg: MsgId) -> Option<(GroupId, u32)> {
        let (&first, &(group, members)) = self.group_sends.range(..=msg.0).next_back()?;
        (msg.0 < first + members as u64).then_some((group, members))
    }
}

impl Sim {
    /// The workload's reactions to what users see: replies and reads on the primary device.
    pub(super) fn react(
        &mut self,
        now: SimTime,
        ev: &LedgerEvent,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let LedgerEvent::Shown { msg, device, .. } = *ev else {
            return;
        };
        let t = &mut self.traffic;
        if !t.workload.reacts() || self.dir.device_slot(device) != 0 {
            return;
        }
        let Some((from, to)) = self.ledger.parties(msg) else {
            return;
        };
        if from == to || self.dir.user_of(device) != to {
            return; // a copy on the sender's own other device
        }
        // Which inbox it lands in, and how much later the user opens it (inboxes.rs).
        let group = match t.inbox {
            Some(_) => t.group_of(msg).map(|(g, _)| g),
            None => None,
        };
        let filed = t.inbox.as_mut().map(|world| {
            let members = group.map(|g| t.workload.groups.get(g).members.as_slice());
            world.file(from, to, members, &self.dir)
        });
        let opened_after = filed.map_or(0, |(_, ns)| ns);
        let read = t.workload.read_after_ns();
        if let Some(delay) = read {
            sched.at(now.plus(delay + opened_after), Event::Read { msg, device });
        }
        if let (Some(world), Some((inbox, _))) = (t.inbox.as_mut(), filed) {
            world.inboxes.shown(now, msg, to, inbox, read.is_some());
        }
        let (answer, reply) = match t.group_of(msg) {
            Some((group, recipients)) => (
                t.workload.group_reply_after_ns(recipients),
                Event::GroupReply { from: to, group },
            ),
            None => (
                t.workload.reply_after_ns(),
                Event::Reply { from: to, to: from },
            ),
        };
        if let Some(delay) = answer.map(|d| d + opened_after) {
            if now.plus(delay) < t.send_end {
                sched.at(now.plus(delay), reply);
            }
        }
    }

    /// The next Poisson arrival: a message to one user or to a group; then the arrival after
    /// it is scheduled (faster during a surge).
    pub(super) fn arrival(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        let d = self.traffic.workload.draft(&self.dir);
        match (d.group, self.servers.generator.as_mut()) {
            (Some(g), _) => self.compose_group(now, d, g, sched),
            (None, None) => self.compose(now, d.from, d.to, sched),
            // The load generator takes the arrival when its core comes to it: the message is
            // sent then (a live run's latency counts from there; the wait is the generator's
            // lateness), and its frame is written after that work (see `write_item`).
            (None, Some(cores)) => {
                let (taken, _) = cores.take(now);
                let (from, to) = (d.from, d.to);
                if taken > now {
                    sched.at(taken, Event::Send { from, to });
                } else {
                    self.send_taken(now, from, to, sched);
                }
            }
        }
        // The next arrival's pair, guessed now: its state comes into the cache while
        // the events before it run (see `prefetch`).
        self.traffic.next_pair = self.traffic.workload.peek_pair();
        if let Some((from, to)) = self.traffic.next_pair {
            self.prefetch_conversation(from, to);
        }
        // Two arrivals further, the users' device ranges, which the conversation hint
        // above reads first.
        if let Some((from, to)) = self.traffic.workload.peek_pair_at(2) {
            self.dir.prefetch_user(from);
            self.dir.prefetch_user(to);
        }
        let surge: f64 = self.faults.surge_factor();
        if let Some(gap) = self.traffic.workload.next_gap_ns(surge) {
            if now.plus(gap) < self.traffic.send_end {
                sched.at(now.plus(gap), Event::Compose);
            }
        }
    }

    /// A 1:1 message the load generator takes now: composed, its frame written at the end of
    /// the generator's round (see `Servers::release`).
    pub(super) fn send_taken(
        &mut self,
        now: SimTime,
        from: UserId,
        to: UserId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        self.servers.composing = true;
        self.compose(now, from, to, sched);
        self.servers.composing = false;
    }

    /// A member answers in a group, unless they left it since.
    pub(super) fn group_reply(
        &mut self,
        now: SimTime,
        from: UserId,
        group: GroupId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let workload = &mut self.traffic.workload;
        if workload.groups.get(group).members.contains(&from) {
            let d = workload.draft_group(from, group, &self.dir);
            self.compose_group(now, d, group, sched);
        }
    }

    /// A user reads a message on `device`: its sender gets a read receipt.
    pub(super) fn read(
        &mut self,
        now: SimTime,
        msg: MsgId,
        device: DeviceId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let Some(sender) = self.ledger.parties(msg).map(|(from, _)| from) else {
            return;
        };
        if let Some(world) = self.traffic.inbox.as_mut() {
            world.inboxes.read(now, msg);
        }
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            let (dev, mut cx) = sim.device_cx(device, now, fx);
            dev.read(&mut cx, msg, sender)
        });
    }

    pub(super) fn compose(
        &mut self,
        now: SimTime,
        from: UserId,
        to: UserId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        if self.traffic.next_pair != Some((from, to)) {
            // Not guessed at the previous arrival (a reply, or a wrong guess): ask now.
            self.prefetch_conversation(from, to);
        }
        let draft = self.traffic.workload.draft_to(from, to);
        let path = if self.dir.is_interop(from, to) {
            PathKind::Interop
        } else {
            PathKind::Native
        };
        let device = self.device_in_hand(now, from, sched);
        let bytes = draft
            .body_bytes
            .saturating_add(draft.media_bytes.min(u32::MAX as u64) as u32);
        let attached = self.attach(device, &draft);
        let plaintext = self.plaintext_with(draft.content, draft.body_bytes, attached.as_ref());
        let digest = self.digest(&plaintext);
        let msg = self.ledger.create(
            now,
            NewMessage {
                from_user: from,
                from_device: device,
                to_user: to,
                content: draft.content,
                path,
                bytes,
                digest,
            },
        );
        self.obs.interval_sent += 1;
        self.mark_hop(msg, Stage::Send, now);
        if let Some((pointer, encrypt_ns)) = attached {
            let draft = MediaDraft {
                msg,
                device,
                to_user: to,
                body: plaintext,
                pointer,
                encrypt_ns,
                group: None,
            };
            return self.upload_then_send(now, draft, sched);
        }
        let mut accepted = true;
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            let (dev, mut cx) = sim.device_cx(device, now, fx);
            accepted = dev.compose(&mut cx, msg, to, &plaintext, draft.content);
        });
        if !accepted {
            self.obs.count("outbox_full", 1);
        }
        self.traffic.keep_spare(plaintext);
    }

    /// Asks for the state a message from `from` to `to` reads (both users' devices and keys,
    /// the recipients' prekey pools, the sender's uplink) all at once: at a million devices
    /// these are cache misses, and one after the other they made up much of a message's cost.
    pub(super) fn prefetch_conversation(&self, from: UserId, to: UserId) {
        for d in self.dir.devices_of(from) {
            if let Some(device) = self.nodes.devices.get(d.index()) {
                prefetch(device);
            }
            self.keys.prefetch(d);
            self.net.links.prefetch_device(d);
        }
        for d in self.dir.devices_of(to) {
            self.keys.prefetch(d);
            self.key_directory.prefetch(d);
        }
    }

    /// The second level of sealing a message on `device` for `to`: the device's sequence
    /// numbers, outbox and sessions, and the fetch limiter's entries for a new session with
    /// each of `to`'s devices. Call it once the first level ([`Sim::prefetch_conversation`])
    /// is in the cache.
    pub(super) fn prefetch_seal(&self, device: DeviceId, to: UserId) {
        if let Some(d) = self.nodes.devices.get(device.index()) {
            d.prefetch_for_send();
        }
        self.keys.prefetch_sessions(device);
        for peer in self.dir.devices_of(to) {
            self.key_directory.prefetch_fetch(device, peer);
        }
    }

    /// The device in the user's hand: the first one online, else the phone. Writing a message
    /// means the app is open: an offline phone connects first.
    fn device_in_hand(
        &mut self,
        now: SimTime,
        user: UserId,
        sched: &mut Scheduler<'_, Event>,
    ) -> DeviceId {
        let device = self
            .dir
            .devices_of(user)
            .find(|d| self.nodes.devices[d.index()].is_online())
            .unwrap_or(self.dir.primary_device(user));
        if !self.nodes.devices[device.index()].is_online() {
            self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
                let (dev, mut cx) = sim.device_cx(device, now, fx);
                dev.go_online(&mut cx)
            });
        }
        device
    }

    /// A member writes to a group: one ledger record per recipient member (ids in a row), the
    /// sender's other devices counting as one more recipient, since they get the message too.
    fn compose_group(
        &mut self,
        now: SimTime,
        draft: Draft,
        g: GroupId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let from = draft.from;
        let group = self.traffic.workload.groups.get(g);
        let (epoch, hub) = (group.epoch, group.hub);
        let mut members: Vec<UserId> = group
            .members
            .iter()
            .copied()
            .filter(|&u| u != from)
            .collect();
        if self.dir.device_count(from) > 1 {
            members.push(from);
        }
        if members.is_empty() {
            return;
        }
        let device = self.device_in_hand(now, from, sched);
        let bytes = draft
            .body_bytes
            .saturating_add(draft.media_bytes.min(u32::MAX as u64) as u32);
        let attached = self.attach(device, &draft);
        let plaintext = self.plaintext_with(draft.content, draft.body_bytes, attached.as_ref());
        let digest = self.digest(&plaintext);
        let (content, path) = (draft.content, PathKind::Group);
        let first = members
            .iter()
            .map(|&to_user| {
                let message = NewMessage {
                    from_user: from,
                    from_device: device,
                    to_user,
                    content,
                    path,
                    bytes,
                    digest,
                };
                self.ledger.create(now, message)
            })
            .min()
            .unwrap_or(MsgId(0));
        self.traffic
            .group_sends
            .insert(first.0, (g, members.len() as u32));
        self.obs.interval_sent += members.len() as u64;
        self.obs.count("group_sends", 1);
        let send = GroupSend {
            group: g,
            epoch,
            hub,
            members: members.into(),
        };
        if let Some((pointer, encrypt_ns)) = attached {
            // Uploaded once, to the sender's own provider's store; the pointer (key and digest
            // included) travels inside the Sender Key message once the blob is stored.
            let draft = MediaDraft {
                msg: first,
                device,
                to_user: from,
                body: plaintext,
                pointer,
                encrypt_ns,
                group: Some(send),
            };
            return self.upload_then_send(now, draft, sched);
        }
        let mut accepted = true;
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            let (dev, mut cx) = sim.device_cx(device, now, fx);
            accepted = dev.compose_group(&mut cx, first, &send, &plaintext, content);
        });
        if !accepted {
            self.obs.count("outbox_full", 1);
        }
        self.traffic.keep_spare(plaintext);
    }

    /// The digest the ledger checks a shown plaintext against. Only real crypto shows one
    /// (modeled decryption yields no bytes to compare), so modeled runs skip the hash: at a
    /// million users it was a sixth of a message's compose cost.
    fn digest(&self, plaintext: &[u8]) -> u64 {
        match self.keys.mode() {
            CryptoMode::Real => crate::nodes::device::digest(plaintext),
            CryptoMode::Modeled => 0,
        }
    }

    pub(super) fn churn(&mut self, now: SimTime, d: DeviceId, sched: &mut Scheduler<'_, Event>) {
        if self.traffic.drained {
            return;
        }
        let online = self.nodes.devices[d.index()].is_online();
        self.with_fx(now, Addr::Device(d), sched, |sim, fx| {
            let (dev, mut cx) = sim.device_cx(d, now, fx);
            if online {
                dev.go_offline(&mut cx);
            } else {
                dev.go_online(&mut cx);
            }
        });
        let t = &mut self.traffic;
        if !online && t.churn_means.1 <= 0.0 {
            // Never offline (online_share = 1): connected in the ramp, and stays.
            return;
        }
        let mean = if online {
            t.churn_means.1
        } else {
            t.churn_means.0
        };
        let at = now.plus(exponential_ns(&mut t.churn_rng, mean).max(1));
        if at < t.send_end {
            sched.at(at, Event::Churn(d));
        }
    }

    pub(super) fn drain_start(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        self.traffic.drained = true;
        for i in 0..self.nodes.devices.len() {
            if !self.nodes.devices[i].is_online() {
                let d = DeviceId(i as u32);
                self.with_fx(now, Addr::Device(d), sched, |sim, fx| {
                    let (dev, mut cx) = sim.device_cx(d, now, fx);
                    dev.go_online(&mut cx)
                });
            }
        }
    }
}
