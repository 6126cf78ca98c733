//! A shard's sending side: an arrival becomes a sealed message in its device's outbox (1:1 or
//! group), and a remote server's ack stands for its accept.

use super::Shard;
use crate::engine::SimTime;
use crate::live::crypto;
use crate::live::hops::Stage;
use crate::live::schedule::Arrival;
use crate::metrics::LedgerEvent;
use crate::nodes::keyring::GroupSealed;
use crate::nodes::media::pointer::{self, Pointer, POINTER_LEN};
use crate::wire::{Ciphertext, CopyId, DeviceId, MsgId, SealInfo};

impl Shard {
    /// `ahead`: `Some` when the message was encrypted before the run (`None` inside: that
    /// encryption failed). Group and media messages are always encrypted at send time; a
    /// media message goes once its blob is stored ([`Shard::upload_then_send`]).
    pub(super) fn send_arrival(
        &mut self,
        now: SimTime,
        a: Arrival,
        ahead: Option<Option<Box<[u8]>>>,
    ) {
        let lag = now.since(a.at);
        if lag > self.lag_max_ns {
            self.report.dropped_arrivals += 1;
            return;
        }
        let _ = self.report.lag.record(lag.max(1));
        if a.media_bytes > 0 && self.upload_then_send(a) {
            return;
        }
        self.send_message(now, a, ahead, None);
    }

    /// The plaintext of arrival `a`: the marker, its id, padding to its body size, and the
    /// media pointer last when it carries one.
    fn message_plaintext(&mut self, a: &Arrival, pointer: Option<&Pointer>) {
        let body = match pointer {
            Some(_) => a.body_bytes.saturating_sub(POINTER_LEN as u32),
            None => a.body_bytes,
        };
        crypto::plaintext(&self.marker, a.msg, body, &mut self.plain);
        if let Some(p) = pointer {
            pointer::embed(&mut self.plain, p);
        }
    }

    /// Seals arrival `a` and hands it to its device (1:1 or group), with `pointer` inside.
    pub(super) fn send_message(
        &mut self,
        now: SimTime,
        a: Arrival,
        ahead: Option<Option<Box<[u8]>>>,
        pointer: Option<&Pointer>,
    ) {
        if let Some(i) = a.group {
            return self.send_group(now, a, i, pointer);
        }
        let dir = &self.sh.dir;
        let (own, peer) = (dir.primary_device(a.from), dir.primary_device(a.to));
        let bytes = match ahead {
            Some(b) => b.ok_or(crate::e2ee::E2eeError::NoSession),
            None => {
                self.message_plaintext(&a, pointer);
                self.crypto.encrypt(own, peer, &self.plain)
            }
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(_) => {
                self.report.decrypt_failures += 1;
                return;
            }
        };
        let ct = Ciphertext {
            len: bytes.len() as u32,
            bytes: Some(bytes),
            seal: SealInfo::default(),
        };
        let Some((dev, mut cx)) = self.device_cx(own, now) else {
            return;
        };
        if !dev.compose_sealed(&mut cx, a.msg, a.to, ct) {
            self.report.outbox_full += 1;
        }
        self.report.sent += 1;
        // Before the frame leaves: its delivery must find the actual send time recorded.
        self.sh.ledger.sent(&[(a.msg, now)]);
        self.apply_effects(now, own);
        if let (Some(hops), true) = (&self.sh.hops, crate::live::hops::traced(a.msg.0)) {
            hops.mark(a.msg.0, Stage::Send, now.as_nanos());
            hops.mark(a.msg.0, Stage::Queued, self.clock().now().as_nanos());
        }
    }

    /// A group message: encrypted once with the sender's Sender Key (distributed pairwise to
    /// the member devices that lack it), submitted once, fanned out by the server.
    pub(super) fn send_group(
        &mut self,
        now: SimTime,
        a: Arrival,
        i: u32,
        pointer: Option<&Pointer>,
    ) {
        let Some(send) = self.groups.get(i as usize).cloned() else {
            return;
        };
        let own = self.sh.dir.primary_device(a.from);
        let Some(dev) = self.devices.get(own.index()).and_then(|d| d.as_ref()) else {
            return;
        };
        let targets = dev.group_targets(&send.members, &self.sh.dir);
        self.message_plaintext(&a, pointer);
        let sealed =
            match self
                .crypto
                .group_encrypt(own, send.group, send.epoch, &targets, &self.plain)
            {
                Ok(s) => s,
                Err(_) => {
                    self.report.decrypt_failures += 1;
                    return;
                }
            };
        let distributed: Vec<DeviceId> = sealed.distributions.iter().map(|(d, _)| *d).collect();
        let sealed = GroupSealed {
            shared: (Some(sealed.shared), SealInfo::default()),
            distributions: (sealed.distributions.into_iter())
                .map(|(d, b)| (d, (Some(b), SealInfo::default())))
                .collect(),
            ns: 0,
            extra_len: 0,
        };
        let plain = std::mem::take(&mut self.plain);
        let Some((dev, mut cx)) = self.device_cx(own, now) else {
            self.plain = plain;
            return;
        };
        let content = a.content;
        let accepted = dev.compose_group_with(&mut cx, a.msg, &send, &plain, content, |_, t| {
            debug_assert_eq!(t, targets.as_slice(), "the targets sealed for");
            sealed
        });
        self.plain = plain;
        if !accepted {
            // Refused before it left: its distributions went nowhere, so the next message
            // must carry them.
            self.crypto.undistribute(own, send.group, &distributed);
            self.report.outbox_full += 1;
        }
        self.report.sent += 1;
        if self.remote {
            self.groups_unacked.insert(a.msg.0, i);
        }
        let ids: Vec<(MsgId, SimTime)> = (0..send.members.len() as u64)
            .map(|k| (MsgId(a.msg.0 + k), now))
            .collect();
        self.sh.ledger.sent(&ids);
        self.apply_effects(now, own);
    }

    /// Remote servers write their ledger events where this process never sees them: the
    /// server's ack of a submission stands for its `Accepted` (one device per user in live
    /// runs), and for a group message, member by member, as the hub judged them (a member out
    /// of the sender's reach is refused).
    pub(super) fn accepted_remotely(&mut self, copy: CopyId, from: DeviceId) {
        let Some(i) = self.groups_unacked.remove(&copy.msg.0) else {
            self.fx.record(LedgerEvent::Accepted {
                msg: copy.ledger_id(),
                devices: 1,
                sync: 0,
            });
            return;
        };
        let (Some(send), dir) = (self.groups.get(i as usize), &self.sh.dir) else {
            return;
        };
        let from_user = dir.user_of(from);
        for (k, &member) in send.members.iter().enumerate() {
            let msg = MsgId(copy.msg.0 + k as u64);
            self.fx.record(if dir.may_message(from_user, member) {
                LedgerEvent::Accepted {
                    msg,
                    devices: 1,
                    sync: 0,
                }
            } else {
                LedgerEvent::Refused {
                    msg,
                    to_user: member,
                }
            });
        }
    }
}
