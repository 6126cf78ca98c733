//! Retrying: the outbox retry timer (resending unacked submissions and Connects with
//! backoff), retry receipts (asking a sender to encrypt again, and answering such a request
//! from the plaintext cache), and the bounded plaintext cache itself.

use super::send::{distributions, shared_ciphertext};
use super::{Cached, CachedExtra, Device, DeviceConfig, DeviceCtx, Due};
use crate::collections::growth;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::ledger::RetryRefusal;
use crate::metrics::LedgerEvent;
use crate::nodes::keyring::{Room, RoomSend};
use crate::nodes::{Addr, Effects, TimerKind};
use crate::scenario::CryptoMode;
use crate::wire::{CopyId, DeviceId, Frame, Payload, Resend, Submission, UserId};

/// Bound on re-encryptions per message and recipient device (WhatsApp's retry receipts).
pub const RETRIES_MAX: u8 = 5;

/// Bound on how often one retry receipt is sent (it is resent with the outbox retries).
pub const RETRY_RECEIPT_SENDS_MAX: u8 = 10;

/// A retry receipt waiting for its answer.
#[derive(Clone, Debug)]
pub(super) struct PendingRetry {
    pub(super) copy: CopyId,
    pub(super) sender: DeviceId,
    pub(super) sender_user: UserId,
    pub(super) attempt: u8,
    pub(super) sends: u8,
}

impl Device {
    /// Keeps a sent message for retry receipts. Modeled crypto needs only the length to
    /// re-encrypt: it keeps no bytes (a million devices with full caches would hold gigabytes).
    pub(super) fn cache_plaintext(
        &mut self,
        mut cached: Cached,
        mut extra: Option<CachedExtra>,
        plaintext: &[u8],
        mode: CryptoMode,
        cfg: &DeviceConfig,
    ) {
        if cfg.plaintext_cache_max == 0 {
            return;
        }
        if self.plaintext_cache.len() >= cfg.plaintext_cache_max {
            let evicted = self.plaintext_cache.pop_front();
            if let Some(e) = evicted.filter(|e| e.has_extra) {
                let extras = &mut self.rare_mut().cached_extras;
                let first = extras.pop_front().map(|(m, _)| m);
                assert_eq!(
                    first,
                    Some(e.msg),
                    "the extras of the cached plaintexts follow the cache's order"
                );
            }
        }
        if mode == CryptoMode::Real {
            extra.get_or_insert_with(CachedExtra::default).plaintext = plaintext.into();
        }
        if let Some(extra) = extra {
            cached.has_extra = true;
            self.rare_mut().cached_extras.push_back((cached.msg, extra));
        }
        let (len, cap) = (self.plaintext_cache.len(), self.plaintext_cache.capacity());
        if len == cap {
            self.plaintext_cache.reserve_exact(growth(len));
        }
        self.plaintext_cache.push_back(cached);
        assert!(
            self.plaintext_cache.len() <= cfg.plaintext_cache_max,
            "the plaintext cache stays within plaintext_cache_max"
        );
    }

    /// A recipient device could not decrypt `copy`: encrypt it again for that device on a
    /// fresh session, from the plaintext cache, at most [`RETRIES_MAX`] times.
    pub(super) fn answer_retry(
        &mut self,
        cx: &mut DeviceCtx,
        copy: CopyId,
        requester: DeviceId,
        attempt: u8,
    ) {
        let msg = copy.ledger_id();
        let refuse = |reason, fx: &mut Effects| {
            fx.record(LedgerEvent::RetryRefused {
                msg,
                device: requester,
                reason,
            })
        };
        if attempt > RETRIES_MAX {
            return refuse(RetryRefusal::Exhausted, cx.fx);
        }
        // The same receipt again (the hub resends a receipt it holds): the re-encryption it
        // asked for is still in the outbox and goes in its turn.
        let key = Resend::key(attempt, requester);
        let queued = self
            .outbox
            .iter()
            .any(|s| s.copy_id() == copy && s.resend_key() == key);
        if queued {
            return;
        }
        let covers = |c: &&Cached| {
            c.msg == copy.msg && {
                let group = self.cached_extra(c).and_then(CachedExtra::group);
                (copy.member as usize) < group.map_or(1, |(_, m)| m.len())
            }
        };
        let Some(c) = self.plaintext_cache.iter().find(covers).cloned() else {
            return refuse(RetryRefusal::Evicted, cx.fx);
        };
        let extra = self.cached_extra(&c).cloned().unwrap_or_default();
        cx.keys.renew_for_retry(self.id, requester);
        let modeled;
        let plaintext: &[u8] = if extra.plaintext.len() as u32 == c.len {
            &extra.plaintext
        } else {
            modeled = vec![0u8; c.len as usize];
            &modeled
        };
        let seq = match extra.group() {
            Some((_, members)) => members[copy.member as usize].1,
            None => c.seq,
        };
        let (ciphertext, key_distribution, ns, group) = match extra.group() {
            _ if cx.keys.is_mls() => {
                // An MLS message of the room again, for the one device (the MIMI design).
                let (room, epoch, group) = match extra.group() {
                    Some(&(g, _)) => (Room::Group(g), 0, Some(g)),
                    None => (Room::direct(self.user, c.to_user), 0, None),
                };
                let mut by = self.sealer(cx.now, cx.dir, cx.key_directory);
                let (len, kind) = (plaintext.len(), Some(c.content));
                let members = [requester, self.id];
                let send = RoomSend {
                    room,
                    epoch,
                    members: &members,
                    plaintext_len: len,
                    kind,
                };
                let (dir, user) = (cx.dir, self.user);
                let r = cx.keys.room_seal(&mut by, send, |d| dir.user_of(d) == user);
                let ct = shared_ciphertext((None, r.info), len, r.extra_len);
                (ct, None, r.ns, group)
            }
            None => {
                let (ct, ns) = self.seal(cx, requester, plaintext, Some(c.content));
                (ct, None, ns, None)
            }
            Some(&(g, _)) => {
                // The member gets the key again (its copy may be what it lacked) with a new
                // Sender Key encryption of the message, on a fresh pairwise session.
                cx.keys.forget_holder(self.id, g, requester);
                let epoch = cx.keys.sender_key_epoch(self.id, g).unwrap_or(0);
                let mut by = self.sealer(cx.now, cx.dir, cx.key_directory);
                let kind = Some(c.content);
                let sealed = cx
                    .keys
                    .group_seal(&mut by, g, epoch, &[requester], plaintext, kind);
                let shared = shared_ciphertext(sealed.shared, plaintext.len(), 0);
                let sent = distributions(sealed.distributions);
                assert!(
                    sent.iter().all(|(d, _)| *d == requester) && sent.len() <= 1,
                    "a re-encryption distributes the key to its one device"
                );
                let key = sent.into_iter().next().map(|(_, c)| Box::new(c));
                (shared, key, sealed.ns, Some(g))
            }
        };
        let s = Submission {
            msg: copy.msg,
            from_user: self.user,
            from_device: self.id,
            // A 1:1 message stays in its chat (a sync copy too); a group copy goes to its member.
            to_user: if group.is_some() {
                cx.dir.user_of(requester)
            } else {
                c.to_user
            },
            seq,
            sent_at: self.local_clock(cx.now),
            payload: Payload::Resend(Box::new(Resend {
                attempt,
                member: copy.member,
                device: requester,
                ciphertext,
                group,
                key_distribution,
            })),
        };
        self.enqueue_outbox(cx, s, ns);
    }

    /// Retry receipts still unanswered go out again (receipts can be lost like any frame),
    /// each at most [`RETRY_RECEIPT_SENDS_MAX`] times.
    fn resend_retry_receipts(&mut self, dir: &Directory, fx: &mut Effects) {
        if !self.has_retry_receipts() {
            return;
        }
        let uplinks: Vec<Addr> = (self.rare.iter())
            .flat_map(|rare| &rare.retry_receipts)
            .map(|r| self.uplink(r.sender_user, dir))
            .collect();
        let id = self.id;
        let rare = self.rare_mut();
        for (r, uplink) in rare.retry_receipts.iter_mut().zip(uplinks) {
            r.sends += 1;
            let frame = Frame::RetryReceipt {
                copy: r.copy,
                requester: id,
                sender: r.sender,
                sender_user: r.sender_user,
                attempt: r.attempt,
            };
            fx.send(uplink, frame);
        }
        rare.retry_receipts
            .retain(|r| r.sends < RETRY_RECEIPT_SENDS_MAX);
    }

    /// Nothing left to retry: the retry timer would only find the device idle, so it goes,
    /// and the next message arms its own (instead of inheriting this one's, which fired
    /// early for it and resent it needlessly). Not while throttled: the timer ends that.
    pub(super) fn disarm_retry_if_idle(&mut self, fx: &mut Effects) {
        let idle = self.outbox.is_empty()
            && self.connecting == 0
            && !self.has_retry_receipts()
            && !self.throttled;
        if idle {
            if let Some(at) = self.retry_at.take() {
                fx.cancel_timer(at, TimerKind::OutboxRetry);
            }
        }
    }

    pub(super) fn arm_retry(&mut self, now: SimTime, fx: &mut Effects) {
        if self.retry_at.get().is_none() {
            (self.retry_at).set(now.plus(self.retry_ns), TimerKind::OutboxRetry, fx);
        }
    }

    // ---- inputs

    pub fn handle_timer(&mut self, cx: &mut DeviceCtx, timer: TimerKind) {
        let now = cx.now;
        match timer {
            TimerKind::OutboxRetry => {
                if self.retry_at.get() != Some(now) {
                    return; // stale: re-armed or went offline since
                }
                self.retry_at = Due::NONE;
                self.throttled = false;
                let idle =
                    self.outbox.is_empty() && self.connecting == 0 && !self.has_retry_receipts();
                if !self.online || idle {
                    return;
                }
                self.resend_retry_receipts(cx.dir, cx.fx);
                for server in self.connecting_to(cx.dir) {
                    cx.fx.send(
                        server,
                        Frame::Connect {
                            device: self.id,
                            epoch: self.epoch,
                        },
                    );
                }
                self.resend_outbox(now, cx.dir, cx.fx);
                self.retry_ns = (self.retry_ns * 2).min(cx.cfg.retry_max_ns);
                self.arm_retry(now, cx.fx);
            }
            TimerKind::ReorderRelease => {
                if self.release_at.get() != Some(now) {
                    return;
                }
                self.release_at = Due::NONE;
                self.release_expired_gaps(cx);
            }
            TimerKind::Redeliver(_)
            | TimerKind::ExpirySweep
            | TimerKind::MediaRetry
            | TimerKind::MimiRetry => {}
        }
    }
}
