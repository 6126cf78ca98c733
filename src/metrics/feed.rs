//! The simulation's handle on its [`Ledger`], which lives on a thread of its own.
//!
//! Bookkeeping is a tenth of a large run: the in-order check's table of streams, the latency
//! histograms, and the first touch of hundreds of MB of records. None of it feeds back into the
//! simulation, which only needs a message's sender and recipient while it runs (for replies,
//! reads and media fetches), so the ledger can follow on the other core. What it computes is
//! unchanged: it folds the same operations in the same order, whichever thread does it, and
//! the interval values the timeseries reads mid-run (messages in flight, deliveries, latency
//! percentiles) are taken at a marker in that order and handed back at the end.

use super::deliveries::Deliveries;
use super::ledger::{IntervalLatency, Ledger, LedgerEvent, NewMessage};
use crate::directory::Owners;
use crate::engine::SimTime;
use crate::wire::{MsgId, UserId};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Operations sent to the ledger thread in one go: a few hundred kilobytes.
const BATCH: usize = 4096;
/// Batches in flight at most: the simulation waits for the ledger beyond that.
const BATCHES_IN_FLIGHT: usize = 16;
/// How many operations ahead the ledger thread asks for a record (and a device's map), and
/// for the map's entries: far enough that the loads land before the operation, near enough
/// that what they bring is still in the cache.
const PREFETCH_FAR: usize = 16;
const PREFETCH_NEAR: usize = 8;

/// One thing the ledger is told, in the order the simulation did it.
#[derive(Debug)]
enum Op {
    Create {
        now: SimTime,
        message: NewMessage,
    },
    /// A node's event (the ledger resolves the user and slot of the device it is about).
    Apply {
        now: SimTime,
        event: LedgerEvent,
    },
    TamperDetected,
    /// The end of a timeseries interval.
    Sample,
    /// `[run] warmup`: told before the first message.
    Warmup(SimTime),
}

/// What the ledger knows of one timeseries interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalTake {
    /// Messages in flight at its end.
    pub in_flight: u64,
    pub deliveries: Deliveries,
    pub latency: IntervalLatency,
}

/// What the ledger thread hands back.
pub struct Kept {
    pub ledger: Ledger,
    /// Per timeseries interval, in order.
    pub samples: Vec<IntervalTake>,
    owners: Arc<Owners>,
}

impl Kept {
    fn new(owners: Arc<Owners>, send_window_end: SimTime) -> Self {
        let mut ledger = Ledger::new();
        ledger.deliveries.set_window_end(send_window_end);
        Kept {
            ledger,
            samples: Vec::new(),
            owners,
        }
    }

    /// Cache hints for the operations ahead (`ahead`, the next first): the far stage for the
    /// one [`PREFETCH_FAR`] places on, the near stage for the one [`PREFETCH_NEAR`] on.
    fn prefetch(&self, ahead: &[Op]) {
        for (place, far) in [(PREFETCH_FAR, true), (PREFETCH_NEAR, false)] {
            if let Some(Op::Apply { event, .. }) = ahead.get(place - 1) {
                self.ledger.prefetch(event, far);
            }
        }
    }

    fn take(&mut self, op: Op) {
        match op {
            Op::Create { now, message } => {
                self.ledger.create(now, message);
            }
            Op::Apply { now, event } => {
                let owners = &self.owners;
                self.ledger.apply(now, &event, |d| owners.owner(d))
            }
            Op::TamperDetected => self.ledger.counts.tamper_detected += 1,
            Op::Warmup(end) => self.ledger.set_warmup(end),
            Op::Sample => {
                let take = IntervalTake {
                    in_flight: self.ledger.counts.in_flight,
                    deliveries: self.ledger.deliveries.take_interval(),
                    latency: self.ledger.take_interval_latency(),
                };
                self.samples.push(take);
            }
        }
    }
}

/// The ledger thread's end of the pipe.
struct Worker {
    ops: SyncSender<Vec<Op>>,
    /// Emptied batches coming back, so that the steady state allocates none.
    empties: Receiver<Vec<Op>>,
    thread: JoinHandle<Kept>,
    owners: Arc<Owners>,
}

enum Keeper {
    Thread(Worker),
    /// No thread could be started: the ledger is kept here, and told at once.
    Inline(Box<Kept>),
}

/// The simulation's side of the ledger.
pub struct LedgerFeed {
    /// Sender and recipient by message id (ids are dense, in creation order); `None` when the
    /// run never asks (see [`LedgerFeed::without_parties`]).
    parties: Option<Vec<(UserId, UserId)>>,
    /// Messages created: the next one's id.
    created: u64,
    batch: Vec<Op>,
    keeper: Keeper,
}

impl LedgerFeed {
    /// A ledger for about `records` messages (room for their parties is reserved up front),
    /// kept on a thread of its own when one can be started; `owners` tells it whose each device
    /// is, `send_window_end` when the senders stop (the mean delivery rates count what was shown
    /// by then).
    pub fn new(records: usize, owners: Arc<Owners>, send_window_end: SimTime) -> Self {
        Self::with_keeper(records, spawn(owners, send_window_end))
    }

    /// A ledger folded on the caller's thread (tests compare the two).
    pub fn inline(records: usize, owners: Arc<Owners>, send_window_end: SimTime) -> Self {
        let kept = Kept::new(owners, send_window_end);
        Self::with_keeper(records, Keeper::Inline(Box::new(kept)))
    }

    fn with_keeper(records: usize, keeper: Keeper) -> Self {
        let mut parties = Vec::new();
        // An optimisation only: on failure the vector grows on demand.
        let _ = parties.try_reserve_exact(records);
        LedgerFeed {
            parties: Some(parties),
            created: 0,
            batch: Vec::new(),
            keeper,
        }
    }

    /// Keeps no sender and recipient per message: for a run that never asks (no reply, no
    /// read, no media), 8 bytes a message less.
    pub fn without_parties(mut self) -> Self {
        self.parties = None;
        self
    }

    /// A message was created; returns its id.
    pub fn create(&mut self, now: SimTime, message: NewMessage) -> MsgId {
        let id = MsgId(self.created);
        self.created += 1;
        if let Some(parties) = &mut self.parties {
            parties.push((message.from_user, message.to_user));
        }
        self.send(Op::Create { now, message });
        id
    }

    /// A node's event.
    pub fn apply(&mut self, now: SimTime, event: LedgerEvent) {
        self.send(Op::Apply { now, event });
    }

    pub fn tamper_detected(&mut self) {
        self.send(Op::TamperDetected);
    }

    /// Leaves messages composed before `end` out of the percentiles (see [`Ledger::set_warmup`]).
    pub fn set_warmup(&mut self, end: SimTime) {
        assert!(self.created == 0, "the warm-up is set before any message");
        self.send(Op::Warmup(end));
    }

    /// Marks the end of a timeseries interval; its values come back with [`Kept::samples`].
    pub fn sample(&mut self) {
        self.send(Op::Sample);
    }

    /// The sender and recipient of message `msg` (`None` for every message of a feed made
    /// [`LedgerFeed::without_parties`]).
    pub fn parties(&self, msg: MsgId) -> Option<(UserId, UserId)> {
        self.parties.as_ref()?.get(msg.0 as usize).copied()
    }

    /// Waits for the ledger to take everything told so far, and returns it (the feed is left
    /// with an empty ledger of its own).
    pub fn finish(&mut self) -> Kept {
        self.flush();
        let owners = match &self.keeper {
            Keeper::Inline(kept) => Arc::clone(&kept.owners),
            Keeper::Thread(w) => Arc::clone(&w.owners),
        };
        let keeper = std::mem::replace(
            &mut self.keeper,
            Keeper::Inline(Box::new(Kept::new(owners, SimTime::MAX))),
        );
        match keeper {
            Keeper::Inline(kept) => *kept,
            Keeper::Thread(w) => {
                drop(w.ops);
                match w.thread.join() {
                    Ok(kept) => kept,
                    // A bug in the ledger: carry its panic over to the caller's thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }

    fn send(&mut self, op: Op) {
        match &mut self.keeper {
            Keeper::Inline(kept) => kept.take(op),
            Keeper::Thread(_) => {
                if self.batch.capacity() == 0 {
                    self.batch.reserve_exact(BATCH);
                }
                self.batch.push(op);
                if self.batch.len() >= BATCH {
                    self.flush();
                }
            }
        }
    }

    fn flush(&mut self) {
        let Keeper::Thread(w) = &mut self.keeper else {
            return;
        };
        if self.batch.is_empty() {
            return;
        }
        let next = w.empties.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, next);
        if let Err(mpsc::SendError(full)) = w.ops.send(full) {
            // The ledger thread is gone (it panicked): `finish` reports why. Keep the batch so
            // that nothing is silently dropped before then.
            self.batch = full;
        }
    }
}

/// Starts the ledger thread, or keeps the ledger inline when no thread can be started. The
/// thread makes the ledger and writes its records, so they are first touched on its own core.
fn spawn(owners: Arc<Owners>, send_window_end: SimTime) -> Keeper {
    let (ops, inbox) = mpsc::sync_channel::<Vec<Op>>(BATCHES_IN_FLIGHT);
    let (give_back, empties) = mpsc::sync_channel::<Vec<Op>>(BATCHES_IN_FLIGHT);
    let theirs = Arc::clone(&owners);
    let started = std::thread::Builder::new()
        .name("ledger".into())
        .spawn(move || {
            let mut kept = Kept::new(theirs, send_window_end);
            for mut batch in inbox {
                let mut ops = batch.drain(..);
                while let Some(op) = ops.next() {
                    kept.prefetch(ops.as_slice());
                    kept.take(op);
                }
                drop(ops);
                let _ = give_back.try_send(batch);
            }
            kept
        });
    match started {
        Ok(thread) => Keeper::Thread(Worker {
            ops,
            empties,
            thread,
            owners,
        }),
        Err(_) => Keeper::Inline(Box::new(Kept::new(owners, send_window_end))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PathKind;
    use crate::scenario::ContentKind;
    use crate::wire::{Conversation, DeviceId};

    /// A text from user 0's first device.
    fn text(to: UserId) -> NewMessage {
        NewMessage {
            from_user: UserId(0),
            from_device: DeviceId(0),
            to_user: to,
            content: ContentKind::Text,
            path: PathKind::Native,
            bytes: 100,
            digest: 7,
        }
    }

    /// Three users of two devices each: user `u` has devices `2u` and `2u + 1`.
    fn owners() -> Arc<Owners> {
        use crate::directory::{Directory, PartnerLink};
        Directory::new(&[3], vec![PartnerLink::Direct], &[2; 3], vec![true; 3]).owners()
    }

    /// Tells `feed` a small run: messages to two-device users, shown out of order once and
    /// twice on one device, with interval markers.
    fn tell(feed: &mut LedgerFeed) {
        let t = SimTime::from_nanos;
        for m in 0..3u32 {
            let to = UserId(1 + m % 2);
            let msg = feed.create(t(u64::from(m)), text(to));
            assert_eq!(msg, MsgId(u64::from(m)));
            let accepted = LedgerEvent::Accepted {
                msg,
                devices: 0b11,
                sync: 0,
            };
            feed.apply(t(10), accepted);
        }
        feed.sample();
        for (msg, device, seq) in [
            (1, 4, 0),
            (0, 2, 0),
            (2, 2, 1),
            (2, 2, 1),
            (2, 3, 1),
            (0, 3, 0),
        ] {
            let shown = LedgerEvent::Shown {
                msg: MsgId(msg),
                device: DeviceId(device),
                from_device: DeviceId(0),
                conversation: Conversation::Direct(UserId(0)),
                seq,
                digest: None,
                late: false,
            };
            feed.apply(t(1_000_000 * (msg + 1)), shown);
        }
        feed.tamper_detected();
        feed.sample();
    }

    #[test]
    fn the_ledger_thread_keeps_what_an_inline_ledger_keeps() {
        let mut threaded = LedgerFeed::new(16, owners(), SimTime::MAX);
        assert!(matches!(threaded.keeper, Keeper::Thread(_)));
        let mut inline = LedgerFeed::inline(16, owners(), SimTime::MAX);
        tell(&mut threaded);
        tell(&mut inline);
        assert_eq!(threaded.parties(MsgId(1)), Some((UserId(0), UserId(2))));
        assert_eq!(threaded.parties(MsgId(3)), None);
        let mut bare = LedgerFeed::inline(16, owners(), SimTime::MAX).without_parties();
        for i in 0..3 {
            let id = bare.create(SimTime::ZERO, text(UserId(1)));
            assert_eq!((id, bare.parties(id)), (MsgId(i), None));
        }
        let (a, b) = (threaded.finish(), inline.finish());
        assert_eq!(a.ledger.records().len(), 3);
        assert_eq!(
            format!("{:?}", a.ledger.records()),
            format!("{:?}", b.ledger.records())
        );
        assert_eq!(
            format!("{:?}", a.ledger.counts),
            format!("{:?}", b.ledger.counts)
        );
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.samples.len(), 2);
        assert_eq!(
            a.samples[0].in_flight, 3,
            "three accepted, none shown at the first marker"
        );
        let second = a.samples[1].deliveries;
        assert_eq!((second.messages, second.devices), (2, 5));
        assert_eq!(a.ledger.counts.duplicates_shown, 1);
        assert_eq!(a.ledger.counts.tamper_detected, 1);
        assert_eq!(
            a.ledger.counts.out_of_order, 1,
            "message 0 after 2 on device 3"
        );
        assert_eq!(a.ledger.latency_all.len(), 5);
    }

    #[test]
    fn more_operations_than_a_batch_all_arrive_in_order() {
        let mut feed = LedgerFeed::new(0, owners(), SimTime::MAX);
        let n = 3 * BATCH + 5;
        for i in 0..n {
            feed.create(SimTime::from_nanos(i as u64), text(UserId(1)));
            if i % 1000 == 0 {
                feed.sample();
            }
        }
        let kept = feed.finish();
        assert_eq!(kept.ledger.records().len(), n);
        let records = kept.ledger.records();
        assert!(records
            .iter()
            .zip(records.iter().skip(1))
            .all(|(a, b)| a.created < b.created));
        assert_eq!(kept.samples.len(), n.div_ceil(1000));
    }
}
