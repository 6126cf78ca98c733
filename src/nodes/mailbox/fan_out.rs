//! Accepting a submission once (dedup by sender device and copy) and queueing one copy per
//! recipient device: a 1:1 message's per-device ciphertexts, or a group message's one Sender
//! Key ciphertext for every member device.

use super::{Mailbox, MailboxConfig, MailboxCtx};
use crate::directory::Directory;
use crate::metrics::LedgerEvent;
use crate::wire::{DeviceId, Envelope, MsgId, UserId};

impl Mailbox {
    // ---- inputs

    /// Records a submission; `false` if it was accepted before (a retry whose ack was lost).
    pub fn accept(&mut self, env: &Envelope, cfg: &MailboxConfig) -> bool {
        // A re-encryption (retry receipt) is a new submission of the same message.
        let key = (env.msg.0, env.copy_key());
        self.accepted
            .insert(env.from_device, key, cfg.dedup_window_max)
    }

    /// Accepts a submission and queues one copy per recipient device, each with the ciphertext
    /// the sender made for that device: every device of the recipient, or only the device a
    /// re-encryption is for. Returns `None` for a duplicate submission, else the devices that
    /// were offline with nothing queued (the caller pushes to wake them).
    pub fn fan_out(
        &mut self,
        cx: &mut MailboxCtx,
        mut env: Envelope,
        recipients: impl Iterator<Item = DeviceId>,
    ) -> Option<Vec<DeviceId>> {
        if !self.accept(&env, cx.cfg) {
            return None;
        }
        let per_device = std::mem::take(&mut env.per_device);
        let only = env.to_device;
        // A 1:1 message's shared ciphertext, taken out so that `..env.clone()` below does not
        // copy its bytes only to drop them.
        let shared = match env.group {
            Some(_) => None,
            None => Some(std::mem::take(&mut env.ciphertext)),
        };
        let mut wake = Vec::new();
        for d in recipients.filter(|d| only.is_none_or(|o| o == *d)) {
            let mine = per_device.iter().find(|(t, _)| *t == d);
            let copy = if env.group.is_some() {
                // A group message's re-encryption: the Sender Key ciphertext, with the key's
                // distribution for this device.
                Envelope {
                    to_device: Some(d),
                    per_device: mine.into_iter().cloned().collect(),
                    ..env.clone()
                }
            } else {
                // One ciphertext per device; a driver that sealed once (live) sends it in
                // `ciphertext` for all of them.
                let ciphertext = mine
                    .map(|(_, c)| c.clone())
                    .or_else(|| shared.clone())
                    .unwrap_or_default();
                Envelope {
                    to_device: Some(d),
                    ciphertext,
                    ..env.clone()
                }
            };
            if self.enqueue(cx, copy) == Some(true) {
                wake.push(d);
            }
        }
        Some(wake)
    }

    /// Accepts a submission, 1:1 or group, and queues its copies (see [`Mailbox::fan_out`] and
    /// [`Mailbox::fan_out_group`]); records the message accepted the first time. Returns the
    /// devices to wake, `None` for a duplicate.
    pub fn submit(
        &mut self,
        cx: &mut MailboxCtx,
        env: Envelope,
        dir: &Directory,
    ) -> Option<Vec<DeviceId>> {
        if env.group.is_some() && env.to_device.is_none() {
            let from = env.from_user;
            let reachable = |m: UserId| dir.may_message(from, m);
            return self.fan_out_group(cx, env, dir, reachable);
        }
        let (msg, retry, to_user) = (env.msg, env.retry, env.to_user);
        // The recipient's devices, and the sender's other devices (sync copies).
        let (from_user, from_device) = (env.from_user, env.from_device);
        let own = dir
            .devices_of(from_user)
            .filter(move |&d| d != from_device && from_user != to_user);
        let sync = own.clone().fold(0u8, |m, d| m | 1 << dir.device_slot(d));
        let recipients = dir.devices_of(to_user).chain(own);
        let wake = self.fan_out(cx, env, recipients)?;
        if retry == 0 {
            let devices = (1u8 << dir.device_count(to_user)) - 1;
            cx.fx.record(LedgerEvent::Accepted { msg, devices, sync });
        }
        Some(wake)
    }

    /// Accepts a group submission and queues a copy for every device of every member but the
    /// sending device: member `k` gets message id `msg + k`, the one Sender Key ciphertext,
    /// and the key's distribution if the sender made one for that device. Members that may not
    /// receive (`reachable` is false: third-party chats off) are refused. Returns `None` for a
    /// duplicate submission, else the devices that were offline with nothing queued.
    pub fn fan_out_group(
        &mut self,
        cx: &mut MailboxCtx,
        mut env: Envelope,
        dir: &Directory,
        reachable: impl Fn(UserId) -> bool,
    ) -> Option<Vec<DeviceId>> {
        if !self.accept(&env, cx.cfg) {
            return None;
        }
        let members = env.members.take()?;
        let mut per_device = std::mem::take(&mut env.per_device);
        per_device.sort_by_key(|(d, _)| *d);
        let mut wake = Vec::new();
        for (k, &(member, seq)) in members.iter().enumerate() {
            let msg = MsgId(env.msg.0 + k as u64);
            if !reachable(member) {
                cx.fx.record(LedgerEvent::Refused {
                    msg,
                    to_user: member,
                });
                continue;
            }
            let devices = dir.devices_of(member).filter(|&d| d != env.from_device);
            let mask = devices
                .clone()
                .fold(0u8, |m, d| m | 1 << dir.device_slot(d));
            cx.fx.record(LedgerEvent::Accepted {
                msg,
                devices: mask,
                sync: 0,
            });
            for d in devices {
                let mine = per_device
                    .binary_search_by_key(&d, |(t, _)| *t)
                    .ok()
                    .map(|i| per_device[i].clone());
                let copy = Envelope {
                    msg,
                    seq,
                    to_user: member,
                    to_device: Some(d),
                    per_device: mine.into_iter().collect(),
                    ..env.clone()
                };
                if self.enqueue(cx, copy) == Some(true) {
                    wake.push(d);
                }
            }
        }
        Some(wake)
    }
}
