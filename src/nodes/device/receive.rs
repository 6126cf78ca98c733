//! Receiving: frames from the device's servers, decryption of delivered copies (a failure
//! leaves a placeholder and sends a retry receipt), duplicate suppression, and the bounded
//! reorder hold that shows each sender stream in sequence order.

use super::retry::PendingRetry;
use super::{Device, DeviceCtx};
use crate::collections::vec_map::VecMap;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::nodes::keyring::{Keyring, Room};
use crate::nodes::{Addr, Effects, TimerKind};
use crate::wire::{Conversation, CopyId, Delivery, DeviceId, Frame, GroupId, MsgId, Payload};
use std::collections::{BTreeMap, BTreeSet};

/// Messages from one sender device in one conversation, shown in `seq` order.
#[derive(Clone, Debug, Default)]
pub(super) struct Stream {
    /// The next sequence number to show.
    next_seq: u32,
    /// The device's `third_party_on` when this stream last received a message.
    seen_switch_on: u16,
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

/// The held messages, skipped gaps and placeholders of a device's streams that ever had any:
/// apart from the streams themselves, which are then 8 bytes (a million devices each hold
/// several streams, nearly all of which never need more), and absent on most devices.
#[derive(Clone, Debug, Default)]
pub(super) struct StreamExtras(Option<Box<VecMap<StreamKey, StreamExtra>>>);

impl StreamExtras {
    fn get(&self, from: &StreamKey) -> &StreamExtra {
        self.0
            .as_ref()
            .and_then(|m| m.get(from))
            .unwrap_or(&NO_EXTRA)
    }
    fn get_mut(&mut self, from: StreamKey) -> &mut StreamExtra {
        self.0
            .get_or_insert_with(Box::default)
            .entry_or_default(from)
    }
    fn existing_mut(&mut self, from: &StreamKey) -> Option<&mut StreamExtra> {
        self.0.as_mut()?.get_mut(from)
    }
    fn iter(&self) -> impl Iterator<Item = (&StreamKey, &StreamExtra)> {
        self.0.iter().flat_map(|m| m.iter())
    }
}

/// Whether a frame that came from `from` answers a Connect sent to `server`: acks from the
/// hub come back through the adapter or the gateway, so the last hop stands for the server.
fn from_server(server: Addr, from: Addr) -> bool {
    server == from
}

/// What a stream shows at a sequence number: a decrypted message, or the "waiting for this
/// message" placeholder of one that did not decrypt (yet).
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The ledger's id of the copy (what the user sees is recorded under it).
    msg: MsgId,
    digest: Option<u64>,
    placeholder: bool,
}

/// A sender device's stream: its device and the conversation.
type StreamKey = (DeviceId, Conversation);

/// Bound on remembered gaps per sender stream.
const SKIPPED_MAX: usize = 1024;

impl Device {
    /// A frame arrived. `tampered`: its bytes were flipped in flight, so the MAC check fails and
    /// the frame is refused (not acked: the server will send it again).
    pub fn handle_frame(&mut self, cx: &mut DeviceCtx, from: Addr, frame: Frame, tampered: bool) {
        if !self.online {
            return; // the connection is down: the frame never reaches the app
        }
        match frame {
            Frame::SubmitAck { copy, resend, .. } => self.acked(cx, copy, resend),
            Frame::ConnectAck { epoch, .. } if epoch == self.epoch => {
                self.connected(cx.dir, |server| from_server(server, from));
                self.disarm_retry_if_idle(cx.fx);
            }
            Frame::ConnectAck { .. } => {} // the ack of an older connection
            Frame::Refused { copy, to_user, .. } => {
                // A refused group message is refused for every member it was for. No copy went
                // out, so its sequence numbers are free again.
                let refused = self
                    .outbox
                    .iter()
                    .find(|s| s.copy_id() == copy && s.resend_key() == 0)
                    .and_then(|s| match &s.payload {
                        Payload::Group(g) => {
                            Some((Conversation::Group(g.group), g.members.clone()))
                        }
                        Payload::Direct(_) => {
                            let seq = [(s.to_user, s.seq)];
                            Some((Conversation::Direct(s.to_user), seq.into()))
                        }
                        Payload::Resend(_) => None,
                    });
                self.acked(cx, copy, 0);
                match refused {
                    Some((conv @ Conversation::Group(_), members)) => {
                        for (k, &(to_user, seq)) in members.iter().enumerate() {
                            let member = CopyId {
                                member: k as u32,
                                ..copy
                            };
                            let msg = member.ledger_id();
                            cx.fx.record(LedgerEvent::Refused { msg, to_user });
                            self.release_seq(conv, to_user, seq);
                        }
                    }
                    Some((conv, direct)) => {
                        let msg = copy.ledger_id();
                        cx.fx.record(LedgerEvent::Refused { msg, to_user });
                        self.release_seq(conv, to_user, direct[0].1);
                    }
                    None => {
                        let msg = copy.ledger_id();
                        cx.fx.record(LedgerEvent::Refused { msg, to_user })
                    }
                }
            }
            Frame::Deliver(delivery) if tampered => {
                cx.fx.record(LedgerEvent::TamperDetected {
                    msg: delivery.copy.ledger_id(),
                    device: self.id,
                });
            }
            Frame::Deliver(delivery) => {
                let delivery = cx.fx.boxes().open_delivery(delivery);
                self.receive(cx, from, delivery)
            }
            Frame::RetryReceipt {
                copy,
                requester,
                attempt,
                ..
            } => self.answer_retry(cx, copy, requester, attempt),
            Frame::Receipt { msg, kind, .. } => cx.fx.record(LedgerEvent::ReceiptSeen {
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
            | Frame::Bounced { .. }
            | Frame::Mimi(_) => {}
            // Media transfers are the device's media client's (nodes/media), driven beside it.
            Frame::Media(_) => {}
            Frame::Throttle { until, .. } => {
                // `until` is the gateway's clock; it may have passed while the frame travelled.
                self.throttled = true;
                (self.retry_at).set(until.max(cx.now), TimerKind::OutboxRetry, cx.fx);
            }
        }
    }

    fn receive(&mut self, cx: &mut DeviceCtx, hop: Addr, delivery: Delivery) {
        assert_eq!(
            delivery.to_device, self.id,
            "a delivery reaches the device it is for"
        );
        assert!(
            delivery.key_distribution.is_none() || delivery.group.is_some(),
            "a key distribution rides with a group copy only"
        );
        assert!(
            delivery.group.is_some() || delivery.copy.member == 0,
            "a 1:1 copy is member 0 of its message"
        );
        let (now, cfg, msg) = (cx.now, cx.cfg, delivery.copy.ledger_id());
        // Ack first, duplicate or not: a lost ack is why duplicates come. The ack goes back the
        // way the copy came (a group's hub may deliver a same-provider member's copy too).
        let ack = Frame::DeliverAck {
            copy: delivery.copy,
            device: self.id,
            from_user: delivery.from_user,
            to_user: delivery.to_user,
        };
        cx.fx.send(hop, ack);
        let (seq, from) = (
            delivery.seq,
            (delivery.from_device, delivery.conversation()),
        );
        let switched_on = self.third_party_on;
        let third_party = cx.dir.provider_of_device(from.0) != self.provider;
        let stream = self.streams.entry_or_default(from);
        // The first message of a third-party stream since the user switched third-party chats
        // back on: what was queued for it meanwhile was dropped, so a gap before it is final.
        let gap_is_final = third_party && stream.seen_switch_on != switched_on;
        stream.seen_switch_on = switched_on;
        if cfg.bugs.break_dedup {
            // BUGGIFY: show whatever arrives, as it arrives, duplicates included.
            stream.next_seq = stream.next_seq.max(seq + 1);
            let shown = LedgerEvent::Shown {
                msg,
                device: self.id,
                from_device: from.0,
                conversation: from.1,
                seq,
                digest: None,
                late: false,
            };
            return cx.fx.record(shown);
        }
        let extra = self.stream_extras.get(&from);
        let fills_placeholder = seq < stream.next_seq && extra.awaiting.contains(&seq);
        let fills_gap = seq < stream.next_seq && extra.skipped.contains(&seq);
        // A copy that did not decrypt while held ahead of a gap waits there as a placeholder:
        // its re-encryption takes the held slot (it is not a duplicate of what is held).
        let replaces_held = seq > stream.next_seq
            && extra.awaiting.contains(&seq)
            && extra
                .held
                .get(&seq)
                .is_some_and(|(slot, _)| slot.placeholder);
        if !fills_placeholder
            && !fills_gap
            && !replaces_held
            && (seq < stream.next_seq || extra.held.contains_key(&seq))
        {
            return cx.fx.record(LedgerEvent::DuplicateSuppressed {
                msg,
                device: self.id,
            });
        }
        let slot = self.open(cx, &delivery);
        let stream = self.streams.entry_or_default(from);
        if fills_placeholder {
            if !slot.placeholder {
                self.stream_extras.get_mut(from).awaiting.remove(&seq);
                self.forget_retry_receipt(delivery.copy);
                let shown = LedgerEvent::Shown {
                    msg,
                    device: self.id,
                    from_device: from.0,
                    conversation: from.1,
                    seq,
                    digest: slot.digest,
                    late: true,
                };
                cx.fx.record(shown);
            }
            return;
        }
        if fills_gap {
            self.stream_extras.get_mut(from).skipped.remove(&seq);
            return self.show(slot, from, seq, cx.fx);
        }
        if replaces_held {
            if !slot.placeholder {
                let extra = self.stream_extras.get_mut(from);
                extra.awaiting.remove(&seq);
                if let Some((held, _)) = extra.held.get_mut(&seq) {
                    // Held since the first copy came: the hold's deadline does not move.
                    *held = slot;
                }
                self.forget_retry_receipt(delivery.copy);
            }
            return;
        }
        if seq > stream.next_seq {
            let held = &mut self.stream_extras.get_mut(from).held;
            held.insert(seq, (slot, now));
            if held.len() > cfg.reorder_held_max || cfg.bugs.break_ordering || gap_is_final {
                // The bound is reached: show what is held now rather than grow without limit.
                // (BUGGIFY break_ordering: no hold at all; gaps are skipped at once.)
                return self.flush_stream(from, cx.fx);
            }
            let at = now.plus(cfg.reorder_hold_ns);
            if self.release_at.get().is_none_or(|t| t > at) {
                (self.release_at).set(at, TimerKind::ReorderRelease, cx.fx);
            }
            return;
        }
        self.show(slot, from, seq, cx.fx);
        self.release_in_order(from, cx.fx);
    }

    /// Decrypts a delivered copy. A failure leaves a placeholder in the conversation and sends
    /// a retry receipt to the sender's device.
    fn open(&mut self, cx: &mut DeviceCtx, delivery: &Delivery) -> Slot {
        let msg = delivery.copy.ledger_id();
        let opened = match delivery.group {
            _ if delivery.ciphertext.seal.mls => {
                // A room's MLS message (the MIMI design); modeled MLS refuses nothing.
                let room = match delivery.group {
                    Some(g) => Room::Group(g),
                    None => Room::direct(delivery.from_user, delivery.to_user),
                };
                let (ct, runner) = (&delivery.ciphertext, self.runner(cx.dir));
                cx.keys
                    .room_open(self.id, room, ct.seal, ct.len, None, runner);
                Ok(None)
            }
            None => {
                let (from, runner) = (delivery.from_device, self.runner(cx.dir));
                cx.keys
                    .open(self.id, from, &delivery.ciphertext, None, runner)
                    .map(|(p, _)| p)
            }
            Some(g) => self.open_group(delivery, g, cx.dir, cx.keys),
        };
        match opened {
            Ok(plaintext) => {
                if let Some(p) = plaintext.as_deref() {
                    // A media pointer, for the driver's download.
                    crate::nodes::media::note_opened(self.id, msg, p, cx.fx);
                }
                Slot {
                    msg,
                    digest: plaintext.map(|p| digest(&p)),
                    placeholder: false,
                }
            }
            Err(reason) => {
                cx.fx.record(LedgerEvent::DecryptFailed {
                    msg,
                    device: self.id,
                    reason,
                });
                let attempt = delivery.retry + 1;
                let receipt = Frame::RetryReceipt {
                    copy: delivery.copy,
                    requester: self.id,
                    sender: delivery.from_device,
                    sender_user: delivery.from_user,
                    attempt,
                };
                cx.fx.send(self.uplink(delivery.from_user, cx.dir), receipt);
                self.forget_retry_receipt(delivery.copy);
                let pending = PendingRetry {
                    copy: delivery.copy,
                    sender: delivery.from_device,
                    sender_user: delivery.from_user,
                    attempt,
                    sends: 1,
                };
                self.rare_mut().retry_receipts.push(pending);
                self.arm_retry(cx.now, cx.fx);
                let from = (delivery.from_device, delivery.conversation());
                self.streams.entry_or_default(from);
                self.stream_extras
                    .get_mut(from)
                    .awaiting
                    .insert(delivery.seq);
                Slot {
                    msg,
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
        delivery: &Delivery,
        g: GroupId,
        dir: &Directory,
        keys: &mut Keyring,
    ) -> Result<Option<Vec<u8>>, crate::metrics::ledger::DecryptReason> {
        let (from, runner) = (delivery.from_device, self.runner(dir));
        let shared = &delivery.ciphertext;
        if let Some(d) = delivery.key_distribution.as_deref() {
            let (skdm, _) = keys.open(self.id, from, d, None, runner)?;
            let key_id = shared.seal.target_generation;
            keys.install_sender_key(self.id, from, g, key_id, skdm.as_deref());
        }
        keys.group_open(self.id, from, g, shared, None, runner)
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
            let Some((slot, _)) = self
                .stream_extras
                .existing_mut(&from)
                .and_then(|e| e.held.remove(&next))
            else {
                return;
            };
            self.show(slot, from, next, fx);
        }
    }

    /// Shows everything held for `from`, in order, skipping the gaps.
    fn flush_stream(&mut self, from: StreamKey, fx: &mut Effects) {
        // A stream's extras are made with the stream, and neither is ever dropped: extras
        // found means the stream is there.
        let Some(extra) = self.stream_extras.existing_mut(&from) else {
            return;
        };
        let held = std::mem::take(&mut extra.held);
        for (seq, (slot, _)) in held {
            let stream = self.streams.entry_or_default(from);
            let skipped = &mut self.stream_extras.get_mut(from).skipped;
            for gap in stream.next_seq..seq {
                if skipped.len() >= SKIPPED_MAX {
                    skipped.pop_first();
                }
                skipped.insert(gap);
            }
            self.show(slot, from, seq, fx);
        }
    }

    /// Gaps that outlived the hold bound: give up waiting and show what came after them.
    pub(super) fn release_expired_gaps(&mut self, cx: &mut DeviceCtx) {
        let (now, cfg) = (cx.now, cx.cfg);
        if !self.online {
            // Nothing can fill a gap while offline; the hold restarts when the device is back.
            let at = now.plus(cfg.reorder_hold_ns);
            (self.release_at).set(at, TimerKind::ReorderRelease, cx.fx);
            return;
        }
        let mut due = Vec::new();
        let mut next_release: Option<SimTime> = None;
        for (from, extra) in self.stream_extras.iter() {
            if let Some((_, &(_, since))) = extra.held.iter().next() {
                let deadline = since.plus(cfg.reorder_hold_ns);
                if deadline <= now {
                    due.push(*from);
                } else {
                    next_release = Some(next_release.map_or(deadline, |t| t.min(deadline)));
                }
            }
        }
        for from in due {
            self.flush_stream(from, cx.fx);
        }
        if let Some(at) = next_release {
            (self.release_at).set(at, TimerKind::ReorderRelease, cx.fx);
        }
    }
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
