//! Several processes, for several machines: `serve` runs one server role (or all of them) on
//! the agreed port layout; `load` is one load generator (`k` of `n`) against them; each writes
//! its results folder with an HdrHistogram interval log, and `live-merge` adds the logs up
//! losslessly (same precision, counts summed) and judges `[expect]` on the merged figures.

use super::abuse::Limits;
use super::clock::Clock;
use super::conn::ConnStats;
use super::ledger::{histogram, LedgerSink};
use super::node::Shared;
use super::prepare::{directory, live_scenario};
use super::session::RunId;
use super::topology::{start_servers, Layout, Role};
use super::LiveError;
use crate::engine::RngTree;
use crate::metrics::summary::{Latency, RunFacts};
use crate::metrics::{checker, Ledger, Summary};
use crate::scenario::Scenario;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::watch;

/// How a `serve` process runs beyond its role and address.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    pub limits: Limits,
    /// Print, every this often, one line per kind of abuse that happened in the interval.
    pub log_every: Option<std::time::Duration>,
    /// Gives freed memory back to the operating system. The allocator keeps what a closed
    /// connection freed for its next allocation; a server that met a few thousand idle
    /// connections would hold their memory for ever. Called on every worker thread, at most
    /// once a second, after connections closed and while the server is quiet. The binary
    /// passes its allocator's collect; `None` does nothing.
    pub release_memory: Option<fn()>,
}

/// Runs the servers of `role` until Ctrl-C or `for_ns` (blocking). Returns the addresses
/// served.
pub fn serve(
    s: &Scenario,
    users: Option<u32>,
    role: Role,
    listen: SocketAddr,
    for_ns: Option<u64>,
    opts: ServeOptions,
    on_ready: impl FnOnce(&[(String, SocketAddr)]),
) -> Result<(), LiveError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .map_err(LiveError::io("tokio runtime"))?;
    rt.block_on(async {
        let s = &live_scenario(s, users);
        let tree = RngTree::new(s.run.seed);
        let dir = Arc::new(directory(s, &tree));
        let (stop_tx, stop_rx) = watch::channel(false);
        let sh = Shared {
            dir: dir.clone(),
            clock: Clock::start(),
            // Servers keep no verdicts: the generators' ledgers do.
            ledger: LedgerSink::new(Ledger::new(), dir, s.run.interval_ns, RunId::default()),
            stats: Arc::new(ConnStats::with_limits(opts.limits)),
            tree,
            conn_ids: Arc::new(AtomicU64::new(1)),
            arrivals_pending: Arc::new(AtomicU64::new(0)),
            cuts: Arc::new(super::faults::Cuts::default()),
            shutdown: stop_rx,
            run: RunId::default(),
            hops: None,
        };
        let srv = start_servers(s, &sh, role, Some(Layout::around(role, listen))).await?;
        let served: Vec<(String, SocketAddr)> = srv
            .addrs
            .iter()
            .filter(|(a, _)| role == Role::All || role.addr() == Some(**a))
            .map(|(a, at)| (format!("{a:?}"), *at))
            .collect();
        on_ready(&served);
        if let Some(every) = opts.log_every {
            tokio::spawn(log_abuse(sh.stats.clone(), sh.clock, every));
        }
        if let Some(release) = opts.release_memory {
            tokio::spawn(release_after_closes(sh.stats.clone(), release));
        }
        match for_ns {
            Some(ns) => tokio::time::sleep(std::time::Duration::from_nanos(ns)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        let _ = stop_tx.send(true);
        let (mut reinstalls, mut dropped) = (0, 0);
        for h in srv.handles {
            if let Ok(t) = h.await {
                (reinstalls, dropped) = (reinstalls + t.reinstalls, dropped + t.reinstall_dropped);
            }
        }
        let st = &sh.stats;
        println!(
            "serve: done: abuse {}; connections peak {}; devices re-installed by a later load run {reinstalls} ({dropped} copies of earlier runs dropped)",
            st.abuse.snapshot().describe(),
            st.open_peak.load(std::sync::atomic::Ordering::Relaxed),
        );
        Ok(())
    })
}

/// `serve --log`: every `every`, one line per kind of abuse seen in the interval, with its
/// count and the total so far.
async fn log_abuse(stats: Arc<ConnStats>, clock: Clock, every: std::time::Duration) {
    let mut last = stats.abuse.snapshot();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = stats.abuse.snapshot();
        let t = clock.now().as_secs_f64();
        for (kind, n) in now.since(&last).nonzero() {
            let (name, total) = (kind.name(), now.get(kind));
            println!("serve: {t:8.1} s  {name} {n} (total {total})");
        }
        last = now;
    }
}

/// The serving runtime's worker threads.
const WORKERS: usize = 2;

/// Below this many bytes written in a second, a server is quiet: keepalives between servers
/// and from idle peers are a few hundred bytes each every 2 s; a load run of a few hundred
/// messages a second writes more.
const QUIET_BYTES_PER_S: u64 = 64 * 1024;

/// Once a second: when connections closed since an earlier look, gives the memory they held
/// back, on every worker thread, at the first two seconds the server is quiet. Two, because a
/// connection is counted closed when its reader ends, and its writer, its queue and the
/// node's record of it are freed a moment later, on whichever worker runs them: under load
/// that moment can straddle the first release (CI saw 4,000 closed connections give back only
/// 68 % of what they held), and nothing would owe another.
async fn release_after_closes(stats: Arc<ConnStats>, release: fn()) {
    use std::sync::atomic::Ordering::Relaxed;
    /// Releases owed after the last connection closed.
    const RELEASES_AFTER_CLOSE: u8 = 2;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let (mut last_closed, mut last_out, mut owed) = (0, 0, 0u8);
    loop {
        tick.tick().await;
        let (closed, out) = (stats.closed.load(Relaxed), stats.bytes_out.load(Relaxed));
        if closed > last_closed {
            owed = RELEASES_AFTER_CLOSE;
        }
        // Only on a quiet server (keepalives aside): the release holds every worker a moment,
        // which must not land in the latency of a load run still going.
        if owed > 0 && out.saturating_sub(last_out) < QUIET_BYTES_PER_S {
            release_on_every_worker(release).await;
            owed -= 1;
        }
        (last_closed, last_out) = (closed, out);
    }
}

/// Calls `release` once on each worker thread. Each thread's allocator heap holds what that
/// thread freed until the thread itself collects it, and a worker parked with nothing to do
/// would hold it for ever: so tasks are spawned two at a time, each holding its worker a
/// moment, which wakes a parked worker to steal the other, until every worker has run one (at
/// most 50 rounds, a few ms each; only on an idle server, see [`release_after_closes`]).
async fn release_on_every_worker(release: fn()) {
    use std::sync::{Mutex, PoisonError};
    let released = Arc::new(Mutex::new(Vec::with_capacity(WORKERS)));
    for _ in 0..50 {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|_| {
                let released = released.clone();
                tokio::spawn(async move {
                    let me = std::thread::current().id();
                    let first_here = {
                        let mut done = released.lock().unwrap_or_else(PoisonError::into_inner);
                        let first = !done.contains(&me);
                        if first {
                            done.push(me);
                        }
                        first
                    };
                    if first_here {
                        release();
                    }
                    // Blocking on purpose: this worker stays busy so that another takes the
                    // other task.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        if released
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            >= WORKERS
        {
            return;
        }
    }
}

/// Counters a generator writes into its log's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// Ledger records planned and sent (a group message has one per member recipient).
    pub planned: u64,
    pub sent: u64,
    pub delivered: u64,
    /// Messages delivered and device deliveries by the end of the sending window, for the mean
    /// rates (0 in logs written before they were kept: see [`merged_summary`]).
    pub messages_in_window: u64,
    pub device_deliveries_in_window: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub dropped_arrivals: u64,
    pub unreachable: u64,
    /// The sending window, ms (merged: the longest).
    pub window_ms: u64,
}

impl LogCounters {
    /// The header line's text (after "#").
    pub fn comment(&self) -> String {
        format!(
            "interop-sim counters: planned={} sent={} delivered={} messages_in_window={} device_deliveries_in_window={} lost={} duplicates={} dropped_arrivals={} unreachable={} window_ms={}",
            self.planned, self.sent, self.delivered, self.messages_in_window,
            self.device_deliveries_in_window, self.lost, self.duplicates, self.dropped_arrivals,
            self.unreachable, self.window_ms
        )
    }
    fn parse(line: &str) -> Option<Self> {
        let rest = line
            .trim_start_matches('#')
            .trim()
            .strip_prefix("interop-sim counters:")?;
        let mut c = LogCounters::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match k {
                "planned" => c.planned = v,
                "sent" => c.sent = v,
                "delivered" => c.delivered = v,
                "messages_in_window" => c.messages_in_window = v,
                "device_deliveries_in_window" => c.device_deliveries_in_window = v,
                "lost" => c.lost = v,
                "duplicates" => c.duplicates = v,
                "dropped_arrivals" => c.dropped_arrivals = v,
                "unreachable" => c.unreachable = v,
                "window_ms" => c.window_ms = v,
                _ => {}
            }
        }
        Some(c)
    }
    fn add(&mut self, o: &LogCounters) {
        self.planned += o.planned;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.messages_in_window += o.messages_in_window;
        self.device_deliveries_in_window += o.device_deliveries_in_window;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.dropped_arrivals += o.dropped_arrivals;
        self.unreachable += o.unreachable;
        self.window_ms = self.window_ms.max(o.window_ms);
    }
}

/// Merged logs.
pub struct Merged {
    pub latency: Histogram<u64>,
    pub counters: LogCounters,
    /// Seconds covered by the logs' intervals (the longest log).
    pub span_s: f64,
    pub logs: usize,
    pub intervals: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: {message}")]
    Bad { path: String, message: String },
}

/// Adds up interval logs: every interval histogram of every log into one.
pub fn merge_logs(logs: &[(String, Vec<u8>)]) -> Result<Merged, MergeError> {
    let mut latency = histogram();
    let mut counters = LogCounters::default();
    let (mut span_s, mut intervals) = (0f64, 0usize);
    for (path, bytes) in logs {
        let bad = |message: String| MergeError::Bad {
            path: path.clone(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        let c = text.lines().find_map(LogCounters::parse).ok_or_else(|| {
            bad("no interop-sim counters line: not a load generator's log".into())
        })?;
        counters.add(&c);
        let mut de = Deserializer::new();
        for entry in IntervalLogIterator::new(bytes) {
            let entry = entry.map_err(|e| bad(format!("{e:?}")))?;
            let LogEntry::Interval(iv) = entry else {
                continue;
            };
            let raw = base64_decode(iv.encoded_histogram()).map_err(bad)?;
            let h: Histogram<u64> = de
                .deserialize(&mut &raw[..])
                .map_err(|e| bad(format!("{e:?}")))?;
            latency.add(&h).map_err(|e| bad(format!("{e:?}")))?;
            span_s = span_s.max((iv.start_timestamp() + iv.duration()).as_secs_f64());
            intervals += 1;
        }
    }
    Ok(Merged {
        latency,
        counters,
        span_s,
        logs: logs.len(),
        intervals,
    })
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())
}

/// The merged figures as a summary, `[expect]` judged on them (overall latency and counters;
/// per-path figures are not in the logs).
pub fn merged_summary(s: &Scenario, hash: &str, m: &Merged) -> Summary {
    let window_s = (m.counters.window_ms as f64 / 1e3).max(1e-3);
    let mut ledger = Ledger::new();
    ledger.latency_all = m.latency.clone();
    let liveness = checker::liveness(&ledger, &[], 0);
    let facts = RunFacts {
        crypto: Default::default(),
        media: Default::default(),
        inbox: None,
        violations: Vec::new(),
        liveness,
        scenario: s.run.name.clone(),
        scenario_hash: hash.to_string(),
        seed: s.run.seed,
        fingerprint: format!("live-merge of {} logs", m.logs),
        events_processed: 0,
        end_time_s: m.span_s,
        send_window_s: window_s,
        // Per-interval counts are not in the logs: no peaks.
        messages_delivered_per_s_peak: 0.0,
        device_deliveries_per_s_peak: 0.0,
        replay_rejected: 0,
        nodes: BTreeMap::new(),
        work: BTreeMap::new(),
    };
    let mut sum = Summary::build(&ledger, facts, &[]);
    let c = &m.counters;
    sum.counters.sent = c.sent;
    sum.counters.delivered = c.delivered;
    sum.counters.lost = c.lost;
    sum.counters.duplicates = c.duplicates;
    sum.counters.unreachable = c.unreachable;
    sum.counters.unsent = c.planned.saturating_sub(c.sent);
    let deliverable = c.sent.saturating_sub(c.unreachable);
    sum.counters.delivered_ratio = if deliverable == 0 {
        1.0
    } else {
        c.delivered as f64 / deliverable as f64
    };
    sum.latency = Latency::from_histogram(&m.latency);
    // A log from before the window counts were kept: every delivery, drain included, as then
    // (a live run has one device per user, so each message is one device copy).
    let (messages, devices) = if c.messages_in_window + c.device_deliveries_in_window == 0 {
        (c.delivered, c.delivered)
    } else {
        (c.messages_in_window, c.device_deliveries_in_window)
    };
    sum.messages_delivered_per_s_mean = messages as f64 / window_s.max(1e-9);
    sum.device_deliveries_per_s_mean = devices as f64 / window_s.max(1e-9);
    sum.counters.failed = sum.counters.failed_sum();
    sum.judge(&s.expect);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::output::hlog;

    static RELEASED_ON: std::sync::Mutex<Vec<std::thread::ThreadId>> =
        std::sync::Mutex::new(Vec::new());

    fn note_release() {
        RELEASED_ON
            .lock()
            .unwrap()
            .push(std::thread::current().id());
    }

    /// The memory a closed connection held may sit in either worker's heap, and a parked
    /// worker runs nothing: the release must reach both, every time, idle or not.
    #[test]
    fn a_release_runs_once_on_every_worker_even_when_they_are_parked() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .enable_all()
            .build()
            .unwrap();
        for round in 0..20 {
            RELEASED_ON.lock().unwrap().clear();
            // Both workers idle (parked) before each round.
            std::thread::sleep(std::time::Duration::from_millis(5));
            rt.block_on(async {
                tokio::spawn(release_on_every_worker(note_release))
                    .await
                    .unwrap()
            });
            let on = RELEASED_ON.lock().unwrap().clone();
            let mut distinct = Vec::new();
            for id in &on {
                if !distinct.contains(id) {
                    distinct.push(*id);
                }
            }
            assert_eq!(
                (on.len(), distinct.len()),
                (WORKERS, WORKERS),
                "round {round}: one release on each worker"
            );
        }
    }

    #[test]
    fn merging_two_logs_adds_every_count() {
        let mut a = histogram();
        let mut b = histogram();
        for v in 1..=1000u64 {
            a.record(v * 1_000).unwrap();
            b.record(v * 7_000).unwrap();
        }
        let ca = LogCounters {
            sent: 10,
            delivered: 9,
            ..LogCounters::default()
        };
        let cb = LogCounters {
            sent: 5,
            delivered: 5,
            messages_in_window: 4,
            device_deliveries_in_window: 4,
            lost: 1,
            ..LogCounters::default()
        };
        let la = hlog(&[(0, 1_000_000_000, a.clone())], &ca.comment());
        let lb = hlog(&[(0, 1_000_000_000, b.clone())], &cb.comment());
        let m = merge_logs(&[("a".into(), la), ("b".into(), lb)]).unwrap();
        let mut both = a;
        both.add(&b).unwrap();
        assert_eq!(m.latency, both, "lossless: the merged histogram is the sum");
        assert_eq!(m.counters.sent, 15);
        assert_eq!(m.counters.delivered, 14);
        assert_eq!(m.counters.lost, 1);
        assert_eq!(
            m.counters.messages_in_window, 4,
            "the window counts survive the header"
        );
        assert!(merge_logs(&[("x".into(), b"not a log".to_vec())]).is_err());
    }
}
