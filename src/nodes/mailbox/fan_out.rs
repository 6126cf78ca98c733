//! Accepting a submission once (dedup by sender device and copy) and queueing one copy per
//! recipient device: a 1:1 message's per-device ciphertexts, or a group message's one Sender
//! Key ciphertext for every member device.

use super::{Mailbox, MailboxConfig, MailboxCtx};

/// Whether a mailbox that accepts a submission records it in the ledger (the server that
/// accepts the message for the run) or leaves the books to another (a MIMI follower, handed
/// its share of a message its room's hub recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Books {
    Record,
    Leave,
}
use crate::directory::Directory;
use crate::metrics::LedgerEvent;
use crate::wire::{CopyId, Delivery, DeviceId, Payload, Submission, UserId, SEQ_VOID};

impl Mailbox {
    // ---- inputs

    /// Records a submission; `false` if it was accepted before (a retry whose ack was lost).
    pub fn accept(&mut self, s: &Submission, cfg: &MailboxConfig) -> bool {
        // A re-encryption (retry receipt) is a new submission of the same copy.
        self.accepted
            .insert(s.from_device, s.dedup_key(), cfg.dedup_window_max)
    }

    /// Accepts a 1:1 submission or a re-encryption and queues a copy for each device of
    /// `recipients` with the ciphertext the sender made for it: every recipient device, or only
    /// the device a re-encryption is for. Returns `None` for a duplicate submission, else the
    /// devices that were offline with nothing queued (the caller pushes to wake them).
    pub fn fan_out(
        &mut self,
        cx: &mut MailboxCtx,
        s: Submission,
        recipients: impl Iterator<Item = DeviceId>,
    ) -> Option<Vec<DeviceId>> {
        if !self.accept(&s, cx.cfg) {
            return None;
        }
        let copy = s.copy_id();
        let delivery = |to_device, retry, ciphertext| Delivery {
            copy,
            from_user: s.from_user,
            from_device: s.from_device,
            to_user: s.to_user,
            to_device,
            seq: s.seq,
            retry,
            sent_at: s.sent_at,
            ciphertext,
            group: None,
            key_distribution: None,
        };
        let mut wake = Vec::new();
        match s.payload {
            Payload::Direct(mut sealed) => {
                // Under MIMI a provider hosts its own devices only, and a follower is handed the
                // ciphertexts for those: a recipient hosted elsewhere is skipped.
                let mut found = 0;
                for d in recipients {
                    let mine = sealed.iter_mut().find(|(t, _)| *t == d);
                    if self.slot(d).is_none() {
                        found += usize::from(mine.is_some());
                        continue;
                    }
                    let mine = mine.expect("a 1:1 submission has a ciphertext for each recipient");
                    found += 1;
                    let copy = delivery(d, 0, std::mem::take(&mut mine.1));
                    if self.enqueue(cx, copy) == Some(true) {
                        wake.push(d);
                    }
                }
                assert_eq!(found, sealed.len(), "one ciphertext per recipient device");
            }
            Payload::Resend(r) => {
                assert!(
                    r.key_distribution.is_none() || r.group.is_some(),
                    "a key distribution rides with a group copy only"
                );
                let target = r.device;
                let mut pending = Some(*r);
                for d in recipients.filter(|&d| d == target) {
                    let r = pending.take().expect("a device is a recipient once");
                    let copy = Delivery {
                        group: r.group,
                        key_distribution: r.key_distribution,
                        ..delivery(d, r.attempt, r.ciphertext)
                    };
                    if self.enqueue(cx, copy) == Some(true) {
                        wake.push(d);
                    }
                }
                assert!(
                    pending.is_none(),
                    "a re-encryption is for a recipient device"
                );
            }
            Payload::Group(_) => panic!("a group submission fans out by member (fan_out_group)"),
        }
        Some(wake)
    }

    /// Accepts a submission, 1:1 or group, and queues its copies (see [`Mailbox::fan_out`] and
    /// [`Mailbox::fan_out_group`]); records the message accepted the first time. Returns the
    /// devices to wake, `None` for a duplicate.
    pub fn submit(
        &mut self,
        cx: &mut MailboxCtx,
        s: Submission,
        dir: &Directory,
    ) -> Option<Vec<DeviceId>> {
        self.submit_copies(cx, s, dir, Books::Record)
    }

    /// [`Mailbox::submit`], queueing copies for the devices this mailbox hosts only, and
    /// recording the message's acceptance in the ledger or not (`books`): a MIMI follower
    /// queues its share of a message its room's hub accepted and recorded, and refuses no
    /// member (the hub refused whom it did, see [`crate::wire::SEQ_VOID`]).
    pub fn submit_copies(
        &mut self,
        cx: &mut MailboxCtx,
        s: Submission,
        dir: &Directory,
        books: Books,
    ) -> Option<Vec<DeviceId>> {
        if let Payload::Group(_) = s.payload {
            let from = s.from_user;
            return match books {
                Books::Record => {
                    let reachable = |m: UserId| dir.may_message(from, m);
                    self.fan_out_group(cx, s, dir, reachable, books)
                }
                Books::Leave => self.fan_out_group(cx, s, dir, |_| true, books),
            };
        }
        let (msg, first, to_user) = (s.msg, matches!(s.payload, Payload::Direct(_)), s.to_user);
        // The recipient's devices, and the sender's other devices (sync copies).
        let (from_user, from_device) = (s.from_user, s.from_device);
        let own = dir
            .devices_of(from_user)
            .filter(move |&d| d != from_device && from_user != to_user);
        let sync = own.clone().fold(0u8, |m, d| m | 1 << dir.device_slot(d));
        let recipients = dir.devices_of(to_user).chain(own);
        let wake = self.fan_out(cx, s, recipients)?;
        if first && books == Books::Record {
            let devices = (1u8 << dir.device_count(to_user)) - 1;
            cx.fx.record(LedgerEvent::Accepted { msg, devices, sync });
        }
        Some(wake)
    }

    /// Accepts a group submission and queues a copy for every device of every member but the
    /// sending device: member `k`'s copy ([`CopyId`]) has the one Sender Key ciphertext, and
    /// the key's distribution if the sender made one for that device. Members that may not
    /// receive (`reachable` is false: third-party chats off) are refused. Returns `None` for a
    /// duplicate submission, else the devices that were offline with nothing queued.
    pub fn fan_out_group(
        &mut self,
        cx: &mut MailboxCtx,
        s: Submission,
        dir: &Directory,
        reachable: impl Fn(UserId) -> bool,
        books: Books,
    ) -> Option<Vec<DeviceId>> {
        let record = books == Books::Record;
        if !self.accept(&s, cx.cfg) {
            return None;
        }
        let Payload::Group(group) = s.payload else {
            panic!("fan_out_group takes a group submission")
        };
        let mut distributions = group.distributions;
        distributions.sort_by_key(|(d, _)| *d);
        assert!(
            distributions.windows(2).all(|w| w[0].0 < w[1].0),
            "a group message distributes its key at most once per device"
        );
        let mut wake = Vec::new();
        for (k, &(member, seq)) in group.members.iter().enumerate() {
            let copy = CopyId {
                msg: s.msg,
                member: k as u32,
            };
            let msg = copy.ledger_id();
            if seq == SEQ_VOID || !reachable(member) {
                if record {
                    cx.fx.record(LedgerEvent::Refused {
                        msg,
                        to_user: member,
                    });
                }
                continue;
            }
            let devices = dir.devices_of(member).filter(|&d| d != s.from_device);
            if record {
                let mask = devices
                    .clone()
                    .fold(0u8, |m, d| m | 1 << dir.device_slot(d));
                cx.fx.record(LedgerEvent::Accepted {
                    msg,
                    devices: mask,
                    sync: 0,
                });
            }
            for d in devices {
                if self.slot(d).is_none() {
                    continue; // hosted by another MIMI provider
                }
                let mine = distributions
                    .binary_search_by_key(&d, |(t, _)| *t)
                    .ok()
                    .map(|i| Box::new(distributions[i].1.clone()));
                let copy = Delivery {
                    copy,
                    from_user: s.from_user,
                    from_device: s.from_device,
                    to_user: member,
                    to_device: d,
                    seq,
                    retry: 0,
                    sent_at: s.sent_at,
                    ciphertext: group.shared.clone(),
                    group: Some(group.group),
                    key_distribution: mine,
                };
                if self.enqueue(cx, copy) == Some(true) {
                    wake.push(d);
                }
            }
        }
        Some(wake)
    }
}
