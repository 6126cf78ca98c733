//! Store and forward, as every messaging server does it: accept a submission once (dedup by
//! sender device and message id), queue one copy per recipient device, push it while the
//! device is connected, redeliver until the device acks, keep it while the device is offline,
//! and expire it after the TTL. The chat server (the gatekeeper's hub) and each partner server
//! (for its native chats) run one.

use super::{Addr, Effects, TimerKind};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{DeviceId, Envelope, Frame, MsgId, ReceiptKind, UserId};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug)]
pub struct MailboxConfig {
    pub offline_ttl_ns: u64,
    pub redeliver_initial_ns: u64,
    pub redeliver_max_ns: u64,
    /// Bound on remembered message ids per sender device, for dedup of retried submissions.
    pub dedup_window_max: usize,
    /// Bound on copies in flight to one device (sent, not yet acked). Copies go out in queue
    /// order within this window, as over one flow-controlled connection, so a backlog drains
    /// in order instead of racing through a rate limiter.
    pub window_max: usize,
    /// BUGGIFY (test builds only): send the whole window, several copies per sender stream.
    pub break_ordering: bool,
}

#[derive(Clone, Debug)]
struct Pending {
    env: Envelope,
    expires_at: SimTime,
    /// Sent on the current connection (and not yet acked).
    sent: bool,
}

#[derive(Clone, Debug, Default)]
struct DeviceBox {
    queue: VecDeque<Pending>,
    online: bool,
    redeliver_at: Option<SimTime>,
    redeliver_ns: u64,
    /// The gateway asked the hub to hold off this device (its partner's shaper is full):
    /// nothing new goes out until the redelivery timer, which then resends in order.
    paused: bool,
    /// The device's latest connection epoch seen, and whether that connection closed.
    epoch: u32,
    closed: bool,
}

/// Per-device queues for a contiguous range of devices.
#[derive(Clone, Debug)]
pub struct Mailbox {
    first_device: u32,
    boxes: Vec<DeviceBox>,
    /// Per sender device (any device in the run): (message, copy) already accepted, bounded.
    accepted: Accepted,
    queued_total: u64,
    sweep_at: Option<SimTime>,
    /// Control frames (retry receipts) for offline devices, sent when they connect; bounded
    /// per device by [`CONTROL_HELD_MAX`].
    held_control: BTreeMap<u32, VecDeque<Frame>>,
}

/// Bound on control frames held per offline device.
pub const CONTROL_HELD_MAX: usize = 64;

/// How a server reaches a device (directly, or through the gateway).
pub type Route<'a> = &'a dyn Fn(DeviceId) -> Addr;

impl Mailbox {
    pub fn new(devices: std::ops::Range<u32>, all_devices: usize, cfg: &MailboxConfig) -> Self {
        let boxes = (devices.start..devices.end)
            .map(|_| DeviceBox {
                redeliver_ns: cfg.redeliver_initial_ns,
                ..DeviceBox::default()
            })
            .collect();
        Mailbox {
            first_device: devices.start,
            boxes,
            accepted: Accepted::new(all_devices),
            queued_total: 0,
            sweep_at: None,
            held_control: BTreeMap::new(),
        }
    }

    // ---- getters

    /// Copies waiting for an ack, over all devices.
    pub fn queued(&self) -> u64 {
        self.queued_total
    }
    pub fn is_online(&self, d: DeviceId) -> bool {
        self.slot(d).is_some_and(|i| self.boxes[i].online)
    }
    fn slot(&self, d: DeviceId) -> Option<usize> {
        let i = d.0.checked_sub(self.first_device)? as usize;
        (i < self.boxes.len()).then_some(i)
    }

    /// Cache hints for `frame`, about to be handled: a 1:1 submission reads the sender's dedup
    /// window and the box of every device it fans out to, an ack the acking device's box.
    pub fn prefetch_frame(&self, frame: &Frame, dir: &Directory, deep: bool) {
        match frame {
            Frame::Submit(env) if env.group.is_none() => {
                let own = dir.devices_of(env.from_user);
                let recipients = dir.devices_of(env.to_user).chain(own);
                self.prefetch(Some(env.from_device), recipients, deep);
            }
            Frame::DeliverAck { device, .. } => self.prefetch(None, std::iter::once(*device), deep),
            _ => {}
        }
    }

    /// Cache hints (see [`crate::engine::prefetch`]) in two levels: `deep` false asks for the
    /// sender's dedup slot and the devices' boxes, `deep` true (once those are in the cache)
    /// for what they point to, the dedup window's newest entries and the boxes' queues.
    fn prefetch(
        &self,
        from: Option<DeviceId>,
        devices: impl Iterator<Item = DeviceId>,
        deep: bool,
    ) {
        use crate::engine::prefetch::{prefetch, prefetch_slice};
        if let Some(slot) = from.and_then(|d| self.accepted.index.get(d.index())) {
            match (deep, *slot as usize) {
                (false, _) => prefetch(slot),
                (true, 0) => {}
                (true, i) => {
                    if let Some(w) = self.accepted.windows.get(i - 1) {
                        let (head, tail) = w.as_slices();
                        let newest = if tail.is_empty() { head } else { tail };
                        prefetch_slice(&newest[newest.len().saturating_sub(1)..], 64);
                    }
                }
            }
        }
        for b in devices.filter_map(|d| self.slot(d)).map(|i| &self.boxes[i]) {
            if deep {
                prefetch_slice(b.queue.as_slices().0, 256);
            } else {
                prefetch(b);
            }
        }
    }

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
        now: SimTime,
        mut env: Envelope,
        recipients: impl Iterator<Item = DeviceId>,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> Option<Vec<DeviceId>> {
        if !self.accept(&env, cfg) {
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
            if self.enqueue(now, copy, cfg, route, fx) == Some(true) {
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
        now: SimTime,
        env: Envelope,
        dir: &Directory,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> Option<Vec<DeviceId>> {
        if env.group.is_some() && env.to_device.is_none() {
            let from = env.from_user;
            let reachable = |m: UserId| dir.may_message(from, m);
            return self.fan_out_group(now, env, dir, reachable, cfg, route, fx);
        }
        let (msg, retry, to_user) = (env.msg, env.retry, env.to_user);
        // The recipient's devices, and the sender's other devices (sync copies).
        let (from_user, from_device) = (env.from_user, env.from_device);
        let own = dir
            .devices_of(from_user)
            .filter(move |&d| d != from_device && from_user != to_user);
        let sync = own.clone().fold(0u8, |m, d| m | 1 << dir.device_slot(d));
        let recipients = dir.devices_of(to_user).chain(own);
        let wake = self.fan_out(now, env, recipients, cfg, route, fx)?;
        if retry == 0 {
            let devices = (1u8 << dir.device_count(to_user)) - 1;
            fx.record(LedgerEvent::Accepted { msg, devices, sync });
        }
        Some(wake)
    }

    /// Accepts a group submission and queues a copy for every device of every member but the
    /// sending device: member `k` gets message id `msg + k`, the one Sender Key ciphertext,
    /// and the key's distribution if the sender made one for that device. Members that may not
    /// receive (`reachable` is false: third-party chats off) are refused. Returns `None` for a
    /// duplicate submission, else the devices that were offline with nothing queued.
    #[allow(clippy::too_many_arguments)] // every input is explicit
    pub fn fan_out_group(
        &mut self,
        now: SimTime,
        mut env: Envelope,
        dir: &Directory,
        reachable: impl Fn(UserId) -> bool,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> Option<Vec<DeviceId>> {
        if !self.accept(&env, cfg) {
            return None;
        }
        let members = env.members.take()?;
        let mut per_device = std::mem::take(&mut env.per_device);
        per_device.sort_by_key(|(d, _)| *d);
        let mut wake = Vec::new();
        for (k, &(member, seq)) in members.iter().enumerate() {
            let msg = MsgId(env.msg.0 + k as u64);
            if !reachable(member) {
                fx.record(LedgerEvent::Refused {
                    msg,
                    to_user: member,
                });
                continue;
            }
            let devices = dir.devices_of(member).filter(|&d| d != env.from_device);
            let mask = devices
                .clone()
                .fold(0u8, |m, d| m | 1 << dir.device_slot(d));
            fx.record(LedgerEvent::Accepted {
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
                if self.enqueue(now, copy, cfg, route, fx) == Some(true) {
                    wake.push(d);
                }
            }
        }
        Some(wake)
    }

    /// Queues `env` for `device` and sends it now if the device is connected. Returns whether
    /// the device was offline (the caller may push to wake it; only when its queue was empty,
    /// so one backlog costs one push).
    pub fn enqueue(
        &mut self,
        now: SimTime,
        env: Envelope,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> Option<bool> {
        let device = env.to_device?;
        let i = self.slot(device)?;
        let b = &mut self.boxes[i];
        let was_empty = b.queue.is_empty();
        let online = b.online;
        if !online {
            fx.record(LedgerEvent::StoredOffline {
                msg: env.msg,
                device,
            });
        }
        if b.queue.capacity() == 0 {
            // Usually the only copy waiting: room for one (a small block, which the event
            // loop's allocator cache hands out warm; see `ack`).
            b.queue.reserve_exact(1);
        }
        b.queue.push_back(Pending {
            env,
            expires_at: now.plus(cfg.offline_ttl_ns),
            sent: false,
        });
        self.queued_total += 1;
        if online {
            Self::fill_window(b, device, cfg, route, fx);
            Self::arm(b, device, now, fx);
        }
        self.arm_sweep(now, cfg, fx);
        Some(!online && was_empty)
    }

    /// Sends what has entered the window and was not sent on this connection yet.
    fn fill_window(
        b: &mut DeviceBox,
        device: DeviceId,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) {
        if b.paused {
            return;
        }
        // One copy in flight per sender stream: a later message of the same sender never
        // overtakes an earlier one that was lost or held back on the way.
        let mut streams: Vec<DeviceId> = Vec::new();
        for p in b.queue.iter_mut().take(cfg.window_max) {
            if streams.contains(&p.env.from_device) && !cfg.break_ordering {
                continue;
            }
            streams.push(p.env.from_device);
            if !p.sent {
                p.sent = true;
                fx.send(route(device), Frame::Deliver(Box::new(p.env.clone())));
            }
        }
    }

    /// Resends the copy in flight of each sender stream (the redelivery timer).
    fn resend_window(
        b: &DeviceBox,
        device: DeviceId,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) {
        let mut streams: Vec<DeviceId> = Vec::new();
        for p in b.queue.iter().take(cfg.window_max) {
            if !streams.contains(&p.env.from_device) || cfg.break_ordering {
                streams.push(p.env.from_device);
                fx.send(route(device), Frame::Deliver(Box::new(p.env.clone())));
            }
        }
    }

    fn arm(b: &mut DeviceBox, device: DeviceId, now: SimTime, fx: &mut Effects) {
        if b.redeliver_at.is_none() {
            let at = now.plus(b.redeliver_ns);
            b.redeliver_at = Some(at);
            fx.timer(at, TimerKind::Redeliver(device));
        }
    }

    fn arm_sweep(&mut self, now: SimTime, cfg: &MailboxConfig, fx: &mut Effects) {
        if self.sweep_at.is_none() {
            let at = now.plus(sweep_period_ns(cfg));
            self.sweep_at = Some(at);
            fx.timer(at, TimerKind::ExpirySweep);
        }
    }

    /// The device acked `msg`: drop its copy. Returns whether a copy was queued.
    pub fn ack(
        &mut self,
        device: DeviceId,
        msg: MsgId,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> bool {
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        let Some(pos) = b.queue.iter().position(|p| p.env.msg == msg) else {
            return false;
        };
        b.queue.remove(pos);
        if b.queue.is_empty() {
            // An idle device keeps no queue buffer (a million of them would hold gigabytes).
            b.queue = VecDeque::new();
            // Nothing left to redeliver: the timer goes (the next copy arms its own). Not
            // while paused: the timer ends the pause.
            if !b.paused {
                if let Some(at) = b.redeliver_at.take() {
                    fx.cancel_timer(at, TimerKind::Redeliver(device));
                }
            }
        }
        self.queued_total -= 1;
        b.redeliver_ns = cfg.redeliver_initial_ns;
        if b.online {
            Self::fill_window(b, device, cfg, route, fx);
        }
        true
    }

    /// Connection `epoch` of `device` is up. A Connect from an older epoch, or from one this
    /// server already saw closed, is a late frame and changes nothing.
    pub fn connect(
        &mut self,
        now: SimTime,
        device: DeviceId,
        epoch: u32,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) {
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        if epoch < b.epoch || (epoch == b.epoch && b.closed) {
            return;
        }
        fx.send(route(device), Frame::ConnectAck { device, epoch });
        if epoch == b.epoch && b.online {
            return; // a retried Connect whose ack was lost: acked again, nothing else
        }
        b.epoch = epoch;
        b.closed = false;
        b.online = true;
        b.redeliver_ns = cfg.redeliver_initial_ns;
        for p in b.queue.iter_mut() {
            p.sent = false;
        }
        Self::fill_window(b, device, cfg, route, fx);
        for frame in self.held_control.remove(&device.0).unwrap_or_default() {
            fx.send(route(device), frame);
        }
        let b = &mut self.boxes[i];
        if !b.queue.is_empty() {
            b.redeliver_at = None;
            Self::arm(b, device, now, fx);
        }
    }

    /// Forwards a delivery or read receipt `(msg, kind, from_user, to_user)` to the connected
    /// devices among `devices` (the original sender's): best effort, like WhatsApp's.
    pub fn forward_receipt(
        &self,
        (msg, kind, from_user, to_user): (MsgId, ReceiptKind, UserId, UserId),
        devices: impl Iterator<Item = DeviceId>,
        route: Route,
        fx: &mut Effects,
    ) {
        for d in devices.filter(|d| self.is_online(*d)) {
            fx.send(
                route(d),
                Frame::Receipt {
                    msg,
                    kind,
                    from_user,
                    to_user,
                    to_device: Some(d),
                },
            );
        }
    }

    /// A control frame for `device`: sent now if it is connected, else held until it connects.
    pub fn deliver_control(
        &mut self,
        device: DeviceId,
        frame: Frame,
        route: Route,
        fx: &mut Effects,
    ) {
        if self.is_online(device) {
            return fx.send(route(device), frame);
        }
        let held = self.held_control.entry(device.0).or_default();
        if held.len() >= CONTROL_HELD_MAX {
            held.pop_front();
        }
        held.push_back(frame);
    }

    /// Backpressure from the gateway: hold off `device` until `until`, then resend its window
    /// in order (what was sent after the refused copy is sent again, behind it).
    pub fn throttle(&mut self, now: SimTime, device: DeviceId, until: SimTime, fx: &mut Effects) {
        let until = until.max(now); // it may have passed while the frame travelled
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        b.paused = true;
        for p in b.queue.iter_mut() {
            p.sent = false;
        }
        if b.redeliver_at.is_none_or(|t| t < until) {
            b.redeliver_at = Some(until);
            fx.timer(until, TimerKind::Redeliver(device));
        }
    }

    /// The device went offline. Returns whether copies are still waiting for it (the server
    /// then pushes, so that what was in flight when it left does not wait for its next visit).
    pub fn disconnect(&mut self, device: DeviceId, epoch: u32) -> bool {
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        if epoch < b.epoch {
            return false; // the close of an old connection, overtaken by a newer one
        }
        b.epoch = epoch;
        b.closed = true;
        b.online = false;
        b.redeliver_at = None;
        !b.queue.is_empty()
    }

    /// Redelivery timer: resend what is still unacked, backing off.
    pub fn handle_redeliver(
        &mut self,
        now: SimTime,
        device: DeviceId,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) {
        let Some(i) = self.slot(device) else { return };
        let b = &mut self.boxes[i];
        if b.redeliver_at != Some(now) {
            return; // stale
        }
        b.redeliver_at = None;
        b.paused = false;
        if !b.online || b.queue.is_empty() {
            return;
        }
        Self::resend_window(b, device, cfg, route, fx);
        b.redeliver_ns = (b.redeliver_ns * 2).min(cfg.redeliver_max_ns);
        Self::arm(b, device, now, fx);
    }

    /// Drops the copies of `msg` queued for `device` for good (it can no longer be delivered).
    pub fn drop_copy(
        &mut self,
        device: DeviceId,
        msg: MsgId,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) -> bool {
        let Some(i) = self.slot(device) else {
            return false;
        };
        let b = &mut self.boxes[i];
        let before = b.queue.len();
        b.queue.retain(|p| p.env.msg != msg);
        let dropped = (before - b.queue.len()) as u64;
        self.queued_total -= dropped;
        if b.online {
            Self::fill_window(b, device, cfg, route, fx);
        }
        dropped > 0
    }

    /// TTL sweep: expire what waited longer than the offline TTL.
    pub fn handle_sweep(
        &mut self,
        now: SimTime,
        cfg: &MailboxConfig,
        route: Route,
        fx: &mut Effects,
    ) {
        if self.sweep_at != Some(now) {
            return;
        }
        self.sweep_at = None;
        let first = self.first_device;
        for (i, b) in self.boxes.iter_mut().enumerate() {
            while b.queue.front().is_some_and(|p| p.expires_at <= now) {
                if let Some(p) = b.queue.pop_front() {
                    fx.record(LedgerEvent::Expired {
                        msg: p.env.msg,
                        device: DeviceId(first + i as u32),
                    });
                    self.queued_total -= 1;
                }
            }
            if b.online {
                Self::fill_window(b, DeviceId(first + i as u32), cfg, route, fx);
            }
        }
        if self.queued_total > 0 {
            self.arm_sweep(now, cfg, fx);
        }
    }

    /// Crash without durable storage: queues and dedup memory are gone; connections too.
    pub fn lose_volatile_state(&mut self) {
        for b in &mut self.boxes {
            b.queue.clear();
            b.online = false;
            b.redeliver_at = None;
        }
        self.accepted.clear();
        self.queued_total = 0;
        self.sweep_at = None;
    }

    /// Crash with durable storage: queues survive, connections and timers do not.
    pub fn lose_connections(&mut self) {
        for b in &mut self.boxes {
            b.online = false;
            b.redeliver_at = None;
        }
        self.sweep_at = None;
    }
}

/// The dedup memory of a mailbox: per sender device, the (message, copy) pairs accepted, in
/// order, at most `dedup_window_max` (the smallest goes first, as a `BTreeSet`'s `pop_first`).
/// Most devices of a large run never send through a given server: a `u32` each, and a window
/// only for those that do.
#[derive(Clone, Debug)]
struct Accepted {
    /// Per device: 0, or 1 + its index in `windows`.
    index: Vec<u32>,
    windows: Vec<VecDeque<(u64, u32)>>,
}

impl Accepted {
    fn new(devices: usize) -> Self {
        Accepted {
            index: vec![0; devices],
            windows: Vec::new(),
        }
    }

    /// Records `key` for `device`; `false` if it was there already.
    fn insert(&mut self, device: DeviceId, key: (u64, u32), max: usize) -> bool {
        let slot = &mut self.index[device.index()];
        if *slot == 0 {
            self.windows.push(VecDeque::new());
            *slot = self.windows.len() as u32;
        }
        let seen = &mut self.windows[*slot as usize - 1];
        // A sender's message ids mostly grow: past the newest, no search (a binary search over
        // a full window touches a dozen cache lines of a window that is cold by now).
        let at = match seen.back() {
            Some(&newest) if newest < key => seen.len(),
            None => 0,
            Some(_) => match seen.binary_search(&key) {
                Ok(_) => return false,
                Err(at) => at,
            },
        };
        if seen.len() == seen.capacity() {
            seen.reserve_exact((seen.len() / 2).max(2)); // many small windows: grow by half
        }
        seen.insert(at, key);
        if seen.len() > max {
            seen.pop_front();
        }
        true
    }

    fn clear(&mut self) {
        for w in &mut self.windows {
            w.clear();
        }
    }
}

/// How often the TTL sweep runs: a quarter of the TTL, between one second and one hour.
fn sweep_period_ns(cfg: &MailboxConfig) -> u64 {
    (cfg.offline_ttl_ns / 4).clamp(1_000_000_000, 3_600_000_000_000)
}
