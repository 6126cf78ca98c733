//! The live run's ledger: the simulator's [`Ledger`] (same records, same checker), shared by
//! the live tasks behind a mutex, plus what only a live run has: the actual send time of each
//! message beside its intended one (the schedule's), the uncorrected latency histogram, and
//! per-interval histograms for the HdrHistogram interval log.
//!
//! Records are created up front, one per scheduled arrival, with `created` = the intended send
//! time: the ledger's latency is therefore coordinated-omission corrected (as wrk2 measures).

use super::session::RunId;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::ledger::IntervalLatency;
use crate::metrics::{Ledger, LedgerEvent, Sample, TimeSeries};
use crate::wire::MsgId;
use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex, MutexGuard};

/// Marks a message that never left its generator.
pub const NOT_SENT: u64 = u64::MAX;

pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid histogram precision")
}

/// One interval of the run, for timeseries.csv and the .hlog.
pub struct IntervalRow {
    pub start_ns: u64,
    pub end_ns: u64,
    /// Corrected latency (ns) of deliveries in the interval.
    pub hist: Histogram<u64>,
    pub sent: u64,
    /// Messages shown on their last expected device, and recipient devices' first displays.
    pub messages_delivered: u64,
    pub device_deliveries: u64,
    pub in_flight: u64,
}

pub struct LiveLedger {
    pub ledger: Ledger,
    dir: Arc<Directory>,
    /// Per message: when its generator actually sent it (ns), or [`NOT_SENT`].
    pub actual_sent_ns: Vec<u64>,
    /// Latency from the actual send (what a closed-loop tester would report).
    pub uncorrected: Histogram<u64>,
    /// The same per path kind (`PathKind::index`).
    pub uncorrected_path: [Histogram<u64>; 3],
    pub intervals: Vec<IntervalRow>,
    interval_ns: u64,
    current: IntervalRow,
    /// The run whose messages this ledger holds: the servers name them by their wire ids
    /// (tagged with the run), the devices by their ledger ids.
    run: RunId,
}

impl LiveLedger {
    fn roll(&mut self, now: SimTime) {
        while now.as_nanos() >= self.current.end_ns {
            let start = self.current.end_ns;
            let next = IntervalRow {
                start_ns: start,
                end_ns: start + self.interval_ns,
                hist: histogram(),
                sent: 0,
                messages_delivered: 0,
                device_deliveries: 0,
                in_flight: 0,
            };
            let mut done = std::mem::replace(&mut self.current, next);
            done.in_flight = self.ledger.counts.in_flight;
            self.intervals.push(done);
        }
    }

    /// Closes the interval in progress (at the end of the run).
    pub fn finish(&mut self, now: SimTime) {
        self.roll(now);
        let end = now.as_nanos().max(self.current.start_ns + 1);
        self.current.end_ns = end;
        self.roll(SimTime::from_nanos(end));
    }

    pub fn timeseries(&self) -> TimeSeries {
        let mut ts = TimeSeries::new(self.interval_ns as f64 / 1e9);
        ts.rows = self
            .intervals
            .iter()
            .map(|r| Sample {
                t_s: r.end_ns as f64 / 1e9,
                sent: r.sent,
                messages_delivered: r.messages_delivered,
                device_deliveries: r.device_deliveries,
                in_flight: r.in_flight,
                latency: interval_latency(&r.hist),
                ..Sample::default()
            })
            .collect();
        ts
    }
}

/// The corrected latency percentiles of one interval's deliveries (timeseries.csv), so that a
/// transient (the first second's ratchet steps, a fault) shows where it happened.
fn interval_latency(h: &Histogram<u64>) -> IntervalLatency {
    let ms = |ns: u64| ns as f64 / 1e6;
    if h.is_empty() {
        return IntervalLatency::default();
    }
    IntervalLatency {
        p50_ms: Some(ms(h.value_at_quantile(0.50))),
        p99_ms: Some(ms(h.value_at_quantile(0.99))),
        max_ms: Some(ms(h.max())),
    }
}

/// The handle every live task holds.
#[derive(Clone)]
pub struct LedgerSink(Arc<Mutex<LiveLedger>>);

impl LedgerSink {
    /// A ledger whose records are already created (one per scheduled message).
    pub fn new(ledger: Ledger, dir: Arc<Directory>, interval_ns: u64, run: RunId) -> Self {
        let n = ledger.records().len();
        LedgerSink(Arc::new(Mutex::new(LiveLedger {
            ledger,
            dir,
            actual_sent_ns: vec![NOT_SENT; n],
            uncorrected: histogram(),
            uncorrected_path: [histogram(), histogram(), histogram()],
            intervals: Vec::new(),
            interval_ns: interval_ns.max(1),
            current: IntervalRow {
                start_ns: 0,
                end_ns: interval_ns.max(1),
                hist: histogram(),
                sent: 0,
                messages_delivered: 0,
                device_deliveries: 0,
                in_flight: 0,
            },
            run,
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, LiveLedger> {
        // A task that panicked while holding the lock leaves counters, not broken invariants.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A generator sent `msg` at `now`.
    pub fn sent(&self, msgs: &[(MsgId, SimTime)]) {
        let mut l = self.lock();
        for &(msg, now) in msgs {
            l.roll(now);
            l.actual_sent_ns[msg.0 as usize] = now.as_nanos();
            l.current.sent += 1;
        }
    }

    /// Folds node events in (draining `events`).
    pub fn apply(&self, now: SimTime, events: &mut Vec<LedgerEvent>) {
        let mut guard = self.lock();
        let l = &mut *guard;
        l.roll(now);
        for mut e in events.drain(..) {
            let msg = e.msg_mut();
            if RunId::of(*msg) != RunId::default() {
                // A server's event, in wire ids: this run's, or not for this ledger.
                match l.run.untag(*msg) {
                    Some(local) => *msg = local,
                    None => continue,
                }
            }
            if msg.0 as usize >= l.actual_sent_ns.len() {
                continue; // a message this process did not plan (a server-only process)
            }
            let before = l.ledger.deliveries.total;
            let dir = &l.dir;
            l.ledger.apply(now, &e, |d| dir.owner(d));
            let after = l.ledger.deliveries.total;
            l.current.messages_delivered += after.messages - before.messages;
            if after.devices == before.devices {
                continue;
            }
            let LedgerEvent::Shown { msg, .. } = e else {
                continue;
            };
            let i = msg.0 as usize;
            let created = l.ledger.records()[i].created;
            let _ = l.current.hist.record(now.since(created).max(1));
            l.current.device_deliveries += 1;
            let actual = l.actual_sent_ns[i];
            if actual != NOT_SENT {
                let ns = now.as_nanos().saturating_sub(actual).max(1);
                let _ = l.uncorrected.record(ns);
                let path = l.ledger.records()[i].path;
                let _ = l.uncorrected_path[path.index()].record(ns);
            }
        }
    }
}
