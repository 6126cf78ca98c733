//! The ledger: every message's lifecycle in one compact record, plus the delivery-latency
//! histograms. Records are indexed by message id (ids are dense, in creation order).

use super::deliveries::DeliveryCounts;
use super::event::per_device;
pub use super::event::{DecryptReason, LedgerEvent, QueuedAt, RetryRefusal};
use super::order::StreamOrder;
use crate::collections::chunked::Chunked;
use crate::engine::SimTime;
use crate::scenario::ContentKind;
use crate::wire::{Conversation, DeviceId, MsgId, UserId};
use hdrhistogram::Histogram;

/// What the ledger is told about a new message.
#[derive(Clone, Copy, Debug)]
pub struct NewMessage {
    pub from_user: UserId,
    pub from_device: DeviceId,
    pub to_user: UserId,
    pub content: ContentKind,
    pub path: PathKind,
    /// Body and media bytes.
    pub bytes: u32,
    /// Digest of the plaintext written (checked against what devices show).
    pub digest: u64,
}

/// Which kind of chat a message belongs to; latency and delivery are reported per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathKind {
    Native,
    Interop,
    Group,
}

impl PathKind {
    pub const ALL: [PathKind; 3] = [PathKind::Native, PathKind::Interop, PathKind::Group];
    pub fn key(self) -> &'static str {
        match self {
            PathKind::Native => "native",
            PathKind::Interop => "interop",
            PathKind::Group => "group",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One message's lifecycle. Device sets are bitmasks over the recipient's device slots
/// (a user has at most five devices).
#[derive(Clone, Debug)]
pub struct MsgRecord {
    pub created: SimTime,
    pub from_user: UserId,
    pub to_user: UserId,
    pub from_device: DeviceId,
    pub content: ContentKind,
    pub path: PathKind,
    pub bytes: u32,
    /// Accepted, refused, crossed the gateway, read: one bit each (see the getters), so that
    /// a record is 48 bytes; a run keeps one per message.
    flags: u8,
    /// The device slots the message is for (set when accepted).
    pub expected_mask: u8,
    /// The sender's other devices that get a copy of a 1:1 message (sync copies), and those
    /// that showed it. Kept apart from the recipient's: a sync copy is not a delivery.
    pub sync_mask: u8,
    pub synced_mask: u8,
    pub shown_mask: u8,
    pub expired_mask: u8,
    pub unreachable_mask: u8,
    pub stored_offline: u8,
    pub duplicates_shown: u8,
    pub duplicates_suppressed: u16,
    pub last_shown: SimTime,
    /// Devices whose copy failed to decrypt and has not been shown since.
    pub undecryptable_mask: u8,
    pub retry_refused: Option<RetryRefusal>,
    /// A frame of it was still on its way when the drain ended (see [`LedgerEvent::QueuedAtEnd`]).
    pub queued_at_end: Option<QueuedAt>,
}

const ACCEPTED: u8 = 1;
const REFUSED: u8 = 2;
const CROSSED_GATEWAY: u8 = 4;
const READ: u8 = 8;

impl MsgRecord {
    /// A server accepted it (it was queued for its recipients).
    pub fn accepted(&self) -> bool {
        self.flags & ACCEPTED != 0
    }
    /// The sender's server refused it (third-party chats off at either end).
    pub fn refused(&self) -> bool {
        self.flags & REFUSED != 0
    }
    /// A frame of it crossed the interop gateway.
    pub fn crossed_gateway(&self) -> bool {
        self.flags & CROSSED_GATEWAY != 0
    }
    /// The recipient read it.
    pub fn read(&self) -> bool {
        self.flags & READ != 0
    }
    /// How many devices it is for (known once accepted).
    pub fn expected_devices(&self) -> u8 {
        self.expected_mask.count_ones() as u8
    }

    /// Every expected device is accounted for (shown, expired or unreachable).
    pub fn is_done(&self) -> bool {
        self.accepted()
            && (self.shown_mask | self.expired_mask | self.unreachable_mask) & self.expected_mask
                == self.expected_mask
    }

    /// Shown on every expected device: delivered (as `summary` classifies it).
    pub fn is_delivered(&self) -> bool {
        self.accepted() && self.shown_mask & self.expected_mask == self.expected_mask
    }
}

/// Running totals kept as events arrive (the final classification is in `summary`).
#[derive(Clone, Debug, Default)]
pub struct LiveCounts {
    pub created: u64,
    pub accepted: u64,
    pub shown: u64,
    pub in_flight: u64,
    pub out_of_order: u64,
    pub duplicates_shown: u64,
    pub tamper_detected: u64,
    pub replay_injected: u64,
    pub read: u64,
    /// Devices that showed a plaintext other than the one written (a crypto bug).
    pub plaintext_mismatch: u64,
    pub decrypt_failed_events: u64,
    /// Shown with a verified digest (real crypto).
    pub verified: u64,
    /// Deliveries of messages composed in the warm-up: counted, left out of the percentiles.
    pub shown_in_warmup: u64,
}

/// Delivery latency percentiles of one timeseries interval; `None` when nothing was delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IntervalLatency {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The run's message records, by message id.
pub type Records = Chunked<MsgRecord>;

/// The ledger of a run.
pub struct Ledger {
    records: Records,
    /// Digest of the plaintext each message's sender wrote (checked against what devices
    /// show), by message id; only real crypto has them, so it stays empty while every digest
    /// is 0 (a record is 48 bytes instead of 56 without it: 80 MB of ten million records).
    digests: Vec<u64>,
    /// Latency (ns) created -> shown, per device delivery, by path kind and overall.
    pub latency: [Histogram<u64>; 3],
    pub latency_all: Histogram<u64>,
    /// Latency (ns) of the deliveries since the last timeseries row; reset by
    /// [`Ledger::take_interval_latency`].
    interval_latency: Histogram<u64>,
    /// Highest sequence shown per stream, for the ordering check.
    order: StreamOrder,
    /// Messages shown out of order, first few, for the verdict's evidence.
    pub out_of_order_examples: Vec<MsgId>,
    pub counts: LiveCounts,
    /// Messages composed before this instant stay out of `latency` and `latency_all`.
    warmup_end: SimTime,
    /// Messages and device copies delivered, in total, per interval and in the send window.
    pub deliveries: DeliveryCounts,
}

/// The digest of the plaintext `msg`'s sender wrote (0 with modeled crypto: see
/// [`Ledger::create`]).
fn written(digests: &[u64], msg: MsgId) -> u64 {
    digests.get(msg.0 as usize).copied().unwrap_or(0)
}

/// Bound on example message ids kept per violation kind.
pub const EXAMPLES_MAX: usize = 20;

fn histogram() -> Histogram<u64> {
    // 3 significant digits, auto-resizing: any latency up to the offline TTL fits.
    Histogram::new(3).expect("3 significant figures is a valid histogram precision")
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    pub fn new() -> Self {
        Ledger {
            records: Records::default(),
            digests: Vec::new(),
            latency: [histogram(), histogram(), histogram()],
            latency_all: histogram(),
            interval_latency: histogram(),
            order: StreamOrder::default(),
            out_of_order_examples: Vec::new(),
            counts: LiveCounts::default(),
            warmup_end: SimTime::ZERO,
            deliveries: DeliveryCounts::default(),
        }
    }

    /// Leaves the deliveries of messages composed before `end` out of the run's percentiles
    /// (`[run] warmup`); the timeseries rows still show them as they happened.
    pub fn set_warmup(&mut self, end: SimTime) {
        self.warmup_end = end;
    }

    pub fn warmup_end(&self) -> SimTime {
        self.warmup_end
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    /// A message was created; returns its id.
    pub fn create(&mut self, created: SimTime, m: NewMessage) -> MsgId {
        let id = MsgId(self.records.len() as u64);
        self.records.push(MsgRecord {
            created,
            from_user: m.from_user,
            to_user: m.to_user,
            from_device: m.from_device,
            content: m.content,
            path: m.path,
            bytes: m.bytes,
            flags: 0,
            expected_mask: 0,
            sync_mask: 0,
            synced_mask: 0,
            shown_mask: 0,
            expired_mask: 0,
            unreachable_mask: 0,
            stored_offline: 0,
            duplicates_shown: 0,
            duplicates_suppressed: 0,
            last_shown: SimTime::ZERO,
            undecryptable_mask: 0,
            retry_refused: None,
            queued_at_end: None,
        });
        if m.digest != 0 || !self.digests.is_empty() {
            self.digests.resize(id.0 as usize, 0);
            self.digests.push(m.digest);
        }
        self.counts.created += 1;
        id
    }

    pub fn record(&self, msg: MsgId) -> Option<&MsgRecord> {
        self.records.get(msg.0 as usize)
    }

    /// Percentiles of the deliveries since the previous call (one timeseries interval), from the
    /// same `Shown` events as the run's histograms; clears the interval histogram.
    pub fn take_interval_latency(&mut self) -> IntervalLatency {
        let h = &mut self.interval_latency;
        let ms = |ns: u64| ns as f64 / 1e6;
        let l = if h.is_empty() {
            IntervalLatency::default()
        } else {
            IntervalLatency {
                p50_ms: Some(ms(h.value_at_quantile(0.50))),
                p99_ms: Some(ms(h.value_at_quantile(0.99))),
                max_ms: Some(ms(h.max())),
            }
        };
        h.reset();
        l
    }

    /// Cache hints for what applying `event` reads first, asked for a few events ahead (the
    /// ledger thread does, see `feed`): with `far`, the record of the message a device's event
    /// is about and, when the device showed it, the device's place in the in-order check;
    /// without, that place's entries, which by then are one load away. At a hundred thousand
    /// users the record and the binary search's first entry were each a cache miss on most
    /// shown messages. (Other events are about a message created moments before.)
    pub fn prefetch(&self, event: &LedgerEvent, far: bool) {
        let Some((msg, device)) = per_device(event) else {
            return;
        };
        let shown = matches!(event, LedgerEvent::Shown { .. });
        if far {
            if let Some(record) = self.records.get(msg.0 as usize) {
                crate::engine::prefetch::prefetch(record);
            }
            if shown {
                self.order.prefetch_map(device);
            }
        } else if shown {
            self.order.prefetch_marks(device);
        }
    }

    /// Folds one node event in. `owner` gives a device's user and its position among the
    /// user's devices.
    pub fn apply(
        &mut self,
        now: SimTime,
        event: &LedgerEvent,
        owner: impl Fn(DeviceId) -> (UserId, u32),
    ) {
        if let Some((msg, device)) = per_device(event) {
            let r = &mut self.records[msg.0 as usize];
            let (user, slot) = owner(device);
            if user != r.to_user {
                // A sync copy on the sender's other device: shown or not, no delivery.
                if matches!(event, LedgerEvent::Shown { .. }) {
                    r.synced_mask |= 1 << slot;
                    if let LedgerEvent::Shown {
                        digest: Some(d), ..
                    } = event
                    {
                        if *d != written(&self.digests, msg) {
                            self.counts.plaintext_mismatch += 1;
                        }
                    }
                }
                return;
            }
        }
        let slot = |d: DeviceId| owner(d).1;
        match *event {
            LedgerEvent::Accepted { msg, devices, sync } => {
                let r = &mut self.records[msg.0 as usize];
                if !r.accepted() {
                    r.sync_mask = sync;
                    r.flags |= ACCEPTED;
                    r.expected_mask = devices;
                    self.counts.accepted += 1;
                    self.counts.in_flight += 1;
                    // No device expected, or every one showed it before the accept was told.
                    if r.is_delivered() {
                        self.deliveries.message(now);
                    }
                }
            }
            LedgerEvent::Refused { msg, .. } => self.records[msg.0 as usize].flags |= REFUSED,
            LedgerEvent::CrossedGateway { msg } => {
                self.records[msg.0 as usize].flags |= CROSSED_GATEWAY
            }
            LedgerEvent::StoredOffline { msg, .. } => {
                let r = &mut self.records[msg.0 as usize];
                r.stored_offline = r.stored_offline.saturating_add(1);
            }
            LedgerEvent::Shown {
                msg,
                device,
                from_device,
                conversation,
                seq,
                digest,
                late,
            } => {
                let bit = 1u8 << slot(device);
                let r = &mut self.records[msg.0 as usize];
                r.undecryptable_mask &= !bit;
                if let Some(d) = digest {
                    if d == written(&self.digests, msg) {
                        self.counts.verified += 1;
                    } else {
                        self.counts.plaintext_mismatch += 1;
                    }
                }
                let stream = (device, from_device, conversation);
                self.shown(now, msg, stream, seq, slot(device), late)
            }
            LedgerEvent::DecryptFailed { msg, device, .. } => {
                self.counts.decrypt_failed_events += 1;
                let bit = 1u8 << slot(device);
                let r = &mut self.records[msg.0 as usize];
                if r.shown_mask & bit == 0 {
                    r.undecryptable_mask |= bit;
                }
            }
            LedgerEvent::RetryRefused { msg, reason, .. } => {
                self.records[msg.0 as usize].retry_refused = Some(reason);
            }
            LedgerEvent::DuplicateSuppressed { msg, .. } => {
                let r = &mut self.records[msg.0 as usize];
                r.duplicates_suppressed = r.duplicates_suppressed.saturating_add(1);
            }
            LedgerEvent::DeviceUnreachable { msg, device } => {
                let bit = 1u8 << slot(device);
                self.settle(msg, |r| r.unreachable_mask |= bit);
            }
            LedgerEvent::Expired { msg, device } => {
                let bit = 1u8 << slot(device);
                self.settle(msg, |r| r.expired_mask |= bit);
            }
            LedgerEvent::TamperDetected { .. } => self.counts.tamper_detected += 1,
            LedgerEvent::Read { msg } => {
                let r = &mut self.records[msg.0 as usize];
                if !r.read() {
                    r.flags |= READ;
                    self.counts.read += 1;
                }
            }
            LedgerEvent::ReceiptSeen { .. } => {}
            LedgerEvent::QueuedAtEnd { msg, at } => {
                let r = &mut self.records[msg.0 as usize];
                // The first frame named wins: the one furthest upstream, queued at a server.
                r.queued_at_end = Some(r.queued_at_end.map_or(at, |q| q.min(at)));
            }
        }
    }

    /// Applies `change` and closes the in-flight count if it completes the message.
    fn settle(&mut self, msg: MsgId, change: impl FnOnce(&mut MsgRecord)) {
        let r = &mut self.records[msg.0 as usize];
        let was_done = r.is_done();
        change(r);
        if !was_done && r.is_done() {
            self.counts.in_flight -= 1;
        }
    }

    fn shown(
        &mut self,
        now: SimTime,
        msg: MsgId,
        stream: (DeviceId, DeviceId, Conversation),
        seq: u32,
        slot: u32,
        late: bool,
    ) {
        let bit = 1u8 << slot;
        let r = &self.records[msg.0 as usize];
        if r.shown_mask & bit != 0 {
            let r = &mut self.records[msg.0 as usize];
            r.duplicates_shown = r.duplicates_shown.saturating_add(1);
            self.counts.duplicates_shown += 1;
            return;
        }
        let latency_ns = now.since(r.created).max(1);
        let path = r.path;
        let was_delivered = r.is_delivered();
        self.settle(msg, |r| {
            r.shown_mask |= bit;
            r.last_shown = now;
        });
        self.counts.shown += 1;
        self.deliveries.device(now);
        if !was_delivered && self.records[msg.0 as usize].is_delivered() {
            self.deliveries.message(now);
        }
        // Auto-resizing histograms accept any u64; record cannot fail.
        if self.records[msg.0 as usize].created < self.warmup_end {
            self.counts.shown_in_warmup += 1;
        } else {
            let _ = self.latency[path.index()].record(latency_ns);
            let _ = self.latency_all.record(latency_ns);
        }
        let _ = self.interval_latency.record(latency_ns);
        let (device, from_device, conversation) = stream;
        if self
            .order
            .shown(device, from_device, conversation, seq, late)
        {
            self.counts.out_of_order += 1;
            if self.out_of_order_examples.len() < EXAMPLES_MAX {
                self.out_of_order_examples.push(msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records live in chunks: ids run on across chunk boundaries, a record is found and
    /// changed by its id there, and iteration gives them in id order.
    #[test]
    fn records_keep_their_ids_across_chunks() {
        let mut ledger = Ledger::new();
        let n = 2 * (1 << 15) + 5;
        for i in 0..n {
            let m = NewMessage {
                from_user: UserId(i as u32),
                from_device: DeviceId(0),
                to_user: UserId(1),
                content: ContentKind::Text,
                path: PathKind::Native,
                bytes: i as u32,
                digest: 0,
            };
            assert_eq!(ledger.create(SimTime::from_nanos(i), m), MsgId(i));
        }
        let records = ledger.records();
        assert_eq!((records.len(), records.is_empty()), (n as usize, false));
        for i in [0, (1 << 15) - 1, 1 << 15, (1 << 16) + 4] {
            assert_eq!(
                (records[i].bytes, records.get(i).map(|r| r.bytes)),
                (i as u32, Some(i as u32))
            );
        }
        assert!(records.get(n as usize).is_none());
        assert!(records.iter().enumerate().all(|(i, r)| r.bytes == i as u32));
        let refused = LedgerEvent::Refused {
            msg: MsgId(1 << 15),
            to_user: UserId(1),
        };
        ledger.apply(SimTime::from_nanos(n), &refused, |_| (UserId(1), 0));
        assert!(ledger.record(MsgId(1 << 15)).is_some_and(|r| r.refused()));
        assert!(!ledger
            .record(MsgId((1 << 15) - 1))
            .is_some_and(|r| r.refused()));
    }

    /// A run keeps one record per message, ten million at scale: 48 bytes each.
    #[test]
    fn a_message_record_stays_small() {
        let size = std::mem::size_of::<MsgRecord>();
        assert!(size <= 48, "MsgRecord {size} bytes");
    }
}
