//! What a live run ended with: the shared ledger judged by the simulator's checker and
//! summary (so live and simulated runs are judged alike), the wall-clock report beside it
//! (live.json), and the live lines of the screen summary.

use super::client::ShardReport;
use super::conn::{ConnStats, Inspector};
use super::ledger::{histogram, LedgerSink};
use super::schedule::Load;
use super::threads::RuntimeLoad;
use crate::directory::Directory;
use crate::engine::{SimTime, StopReason};
use crate::metrics::checker;
use crate::metrics::summary::{Latency, RunFacts};
use crate::metrics::Summary;
use crate::scenario::Scenario;
use crate::sim::RunResult;
use crate::wire::UserId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::options::WARMUP_NS;

/// Wall-clock figures of a live run (live.json).
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    /// This load run's id on the wire (see `live::session`), for matching it to a server's log.
    pub run_id: u64,
    pub target_rate_per_s: f64,
    /// Messages scheduled: a group message counts once, as in `sent`.
    pub planned: u64,
    pub sent: u64,
    pub dropped_arrivals: u64,
    pub achieved_rate_per_s: f64,
    pub rate_reached: bool,
    /// Messages shown on every expected device, and recipient devices' first displays of a copy,
    /// by the end of the sending window, and their rates over it (the live run has one device
    /// per user, so the two agree unless a copy is missing).
    pub messages_delivered: u64,
    pub messages_delivered_per_s: f64,
    pub device_deliveries: u64,
    pub device_deliveries_per_s: f64,
    /// Coordinated-omission corrected (from the intended send time), ms.
    pub corrected: Latency,
    /// From the actual send time, ms.
    pub uncorrected: Latency,
    /// How late arrivals went out, ms.
    pub schedule_lag: Latency,
    pub decrypt_failures: u64,
    pub plaintext_verified: u64,
    pub encrypted: u64,
    pub sessions_started: u64,
    pub gateway_plaintext_hits: u64,
    pub gateway_messages_inspected: u64,
    pub gateway_bytes_inspected: u64,
    /// Frames the gateway's per-partner rate limit held back (shaped) and refused: when not
    /// zero, the delivered rate was set by `[capacity.gateway] rate_limit_per_partner`, a
    /// policy, not by the machine.
    pub gateway_shaped: u64,
    pub gateway_rate_limited: u64,
    pub noise_messages: u64,
    pub dropped_queue_full: u64,
    /// Abuse this process's servers met, by kind (only kinds that happened), and frames of
    /// other load runs that reached this run's devices (see `live::session`).
    pub abuse: BTreeMap<&'static str, u64>,
    pub foreign_frames: u64,
    /// The most connections open at once in this process.
    pub connections_peak: u64,
    /// Per server node of this process, what its own logic cost (see `NodeCost`).
    pub node_costs: BTreeMap<String, super::node::NodeCost>,
    pub interrupted: bool,
    pub wall_s: f64,
    /// The sending window, ms.
    pub window_ms: u64,
    /// CPU time of the whole process (servers, gateway, generators: user + system) from the
    /// clock's start to the end of the drain, s; `None` where /proc is not available.
    pub cpu_s: Option<f64>,
    /// `cpu_s` per delivered message, us: what one message costs end to end on this machine.
    pub cpu_us_per_delivered: Option<f64>,
    /// What the servers' runtime did over the same stretch as `cpu_s` (`None`: the servers
    /// ran in other processes): the host a simulated copy of this run models.
    pub servers_runtime: Option<RuntimeLoad>,
    /// The same for the load generator's runtime, when it had one of its own
    /// (`--generator-threads`); otherwise its clients ran on the servers' threads.
    pub generator_runtime: Option<RuntimeLoad>,
    /// Frames the load generator's devices received.
    pub generator_frames_in: u64,
    /// The socket reads those frames came in (each read's frames handled together, one after
    /// the other): frames a read, a batching the simulated copy does not model.
    pub generator_reads_in: u64,
    /// Where the traced messages' latency went, step by step (`live::hops`).
    pub hops: Vec<super::hops::Step>,
}

impl LiveReport {
    /// Where the traced messages' latency went, step by step; `None` when none was traced.
    pub fn hops_line(&self) -> Option<String> {
        let samples = self.hops.iter().map(|h| h.samples).max()?;
        let steps: Vec<String> = self.hops.iter().map(|h| h.describe()).collect();
        Some(format!(
            "step by step ({samples} messages, one in {}, from the actual send): {}",
            super::hops::EVERY,
            steps.join("; ")
        ))
    }

    /// How busy the run kept this machine's cores, beside `modeled_ns`, what a simulated copy
    /// charges a message's nodes: the model prices each node's own logic and has no host whose
    /// cores all nodes, the clients and the load generator share, so its latencies hold only
    /// while those cores are mostly idle. Live, the CPU a message costs falls as load rises
    /// (syscalls and wake-ups are shared by more messages): the host can be busy well below
    /// the rate it saturates at.
    pub fn host_load(&self, modeled_ns: u64) -> Option<String> {
        let (cpu_s, per_msg_us) = (self.cpu_s?, self.cpu_us_per_delivered?);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let busy = cpu_s / (self.wall_s.max(1e-9) * cores as f64);
        Some(format!(
            "the host's cores: the live run kept {:.0} % of this machine's {cores} busy ({cpu_s:.2} CPU-s over {:.1} s), {per_msg_us:.0} us of CPU per delivered message (sockets, Noise, wake-ups, the clients' Signal work and the load generator included), where the simulated copy charges {:.1} us of node logic on cores of their own; expect the live latencies above the model's as that share grows",
            busy * 100.0,
            self.wall_s,
            modeled_ns as f64 / 1e3,
        ))
    }

    /// Where the host's time went, by the runtimes' threads: the servers' and, when apart, the
    /// load generator's, each as its time running tasks against the run's wall time. A thread
    /// that waited runnable for a core was preempted or woken late (more threads than cores),
    /// milliseconds at a time; a generator busy nearly all the sending window is saturated
    /// (see [`saturated`]), and its clients' queue is then inside every live latency.
    pub fn threads_load(&self) -> Option<String> {
        let servers = self.servers_runtime?;
        let wall = self.wall_s.max(1e-9);
        let window = self.window_ms as f64 / 1e3;
        let describe = |what: &str, r: &RuntimeLoad, extra: &str| {
            let n = r.threads.max(1);
            let mut line = format!(
                "{what} {n} thread{}: running tasks {:.2} s of the {wall:.1} s run ({:.0} %; {:.0} % of the {window:.1} s sending window), woken {} times",
                if n == 1 { "" } else { "s" },
                r.busy_s,
                100.0 * r.busy_s / (wall * n as f64),
                100.0 * r.busy_s / (window.max(1e-9) * n as f64),
                r.parks,
            );
            if let (Some(w), Some(p)) = (r.runnable_waiting_s, r.preempted) {
                let _ = write!(
                    line,
                    ", runnable and waiting for a core {w:.2} s, preempted {p} times"
                );
            }
            line.push_str(extra);
            if saturated(r, window) {
                line.push_str(": SATURATED");
            }
            line
        };
        let mut line = describe("the servers'", &servers, "");
        match &self.generator_runtime {
            Some(g) => {
                line.push_str("; ");
                let reads = if self.generator_reads_in > 0 {
                    format!(
                        ", its {} frames in {} socket reads ({:.1} a read, handled together)",
                        self.generator_frames_in,
                        self.generator_reads_in,
                        self.generator_frames_in as f64 / self.generator_reads_in as f64
                    )
                } else {
                    String::new()
                };
                line.push_str(&describe("the load generator's", g, &reads));
                if saturated(g, window) {
                    line.push_str(" (its clients' queue is inside every live latency)");
                }
            }
            None => line.push_str("; the load generator's clients ran on those threads too"),
        }
        Some(line)
    }
}

/// Whether a runtime's threads ran tasks 90 % of the sending window (`window_s`): the load
/// is in the window, and the run around it (connecting, the drain) carries little, so against
/// the whole run a generator busy all the window read 82 % (4.94 s of 6.0 at 60,000 msg/s)
/// and went unflagged.
fn saturated(r: &RuntimeLoad, window_s: f64) -> bool {
    r.busy_s >= 0.9 * window_s * r.threads.max(1) as f64
}

/// A finished live run.
pub struct LiveOutcome {
    pub result: RunResult,
    pub report: LiveReport,
    /// Corrected latency per interval: (start ns, end ns, histogram), for the .hlog.
    pub intervals: Vec<(u64, u64, hdrhistogram::Histogram<u64>)>,
    /// Latency from the actual send time (ns), and the same per path kind.
    pub uncorrected: hdrhistogram::Histogram<u64>,
    pub uncorrected_path: [hdrhistogram::Histogram<u64>; 3],
}

impl LiveOutcome {
    /// Expectations held and the target rate was reached.
    pub fn passed(&self) -> bool {
        self.result.summary.passed && self.report.rate_reached
    }

    /// The counters a load generator writes into its interval log's header, for `live-merge`:
    /// in ledger records, as the merge counts them (a group message has one per member).
    pub fn log_counters(&self) -> super::remote::LogCounters {
        let c = &self.result.summary.counters;
        super::remote::LogCounters {
            planned: c.sent,
            sent: c.sent.saturating_sub(c.unsent),
            delivered: c.delivered,
            messages_in_window: self.report.messages_delivered,
            device_deliveries_in_window: self.report.device_deliveries,
            lost: c.lost,
            duplicates: c.duplicates,
            dropped_arrivals: self.report.dropped_arrivals,
            unreachable: c.unreachable,
            window_ms: self.report.window_ms,
        }
    }
}

pub(super) struct SummaryInputs<'a> {
    pub(super) s: &'a Scenario,
    pub(super) hash: &'a str,
    pub(super) load: &'a Load,
    /// Arrivals scheduled (a group message is one, however many members it has).
    pub(super) planned: u64,
    pub(super) end: SimTime,
    pub(super) reports: &'a [ShardReport],
    pub(super) inspector: &'a Inspector,
    pub(super) stats: &'a ConnStats,
    pub(super) interrupted: bool,
    pub(super) users: &'a Directory,
    pub(super) rate_tolerance: f64,
    pub(super) cpu_s: Option<f64>,
    /// The servers' runtime (`None`: they run in other processes) and the load generator's,
    /// when it has one of its own.
    pub(super) runtimes: (Option<RuntimeLoad>, Option<RuntimeLoad>),
    /// The gateway's (shaped, rate-limited) frames.
    pub(super) shaping: (u64, u64),
    /// Blob bytes the media proxy relayed.
    pub(super) media_relayed: u64,
    pub(super) run: super::session::RunId,
    pub(super) node_costs: BTreeMap<String, super::node::NodeCost>,
    pub(super) hops: Vec<super::hops::Step>,
}

pub(super) fn finish(ledger: LedgerSink, i: SummaryInputs<'_>) -> LiveOutcome {
    let mut guard = ledger.lock();
    guard.finish(i.end);
    let l = &*guard;
    let mut lag = histogram();
    let (mut sent, mut dropped, mut dfail, mut verified, mut enc, mut sessions) =
        (0, 0, 0, 0, 0, 0);
    let (mut foreign, mut key_missing) = (0, 0);
    let mut media = super::client::MediaReport::default();
    for r in i.reports {
        media.add(&r.media);
        let _ = lag.add(&r.lag);
        sent += r.sent;
        dropped += r.dropped_arrivals;
        dfail += r.decrypt_failures;
        verified += r.plaintext_verified;
        enc += r.encrypted;
        sessions += r.sessions_started;
        foreign += r.foreign_frames;
        key_missing += r.sender_key_missing;
    }
    let planned = i.planned;
    let window_s = i.load.duration_ns as f64 / 1e9;
    let names: Vec<String> = i.s.providers.iter().map(|p| p.name.clone()).collect();
    let dir = i.users;
    let user = |u: UserId| format!("user {} ({})", u.0, names[dir.provider_of_user(u).index()]);
    let end_ns = i.end.as_nanos();
    let (windows, skipped) = super::faults::windows(i.s, WARMUP_NS);
    let ts = l.timeseries();
    // Sends start after the warm-up: the window's rows end by its end on the run's clock.
    let window_end_s = (WARMUP_NS + i.load.duration_ns) as f64 / 1e9;
    let mut work = BTreeMap::new();
    work.insert("dropped_arrivals".to_string(), dropped);
    work.insert("faults_not_played_live".to_string(), skipped as u64);
    work.insert("decrypt_failures_live".to_string(), dfail);
    work.insert("sender_key_missing_live".to_string(), key_missing);
    work.insert(
        "queue_full_drops".to_string(),
        i.stats.dropped_full.load(Ordering::Relaxed),
    );
    let media_verified = media.verified;
    let (media_counters, media_latency) = media.finish(i.media_relayed);
    let facts = RunFacts {
        crypto: Default::default(),
        media: media_counters,
        inbox: None,
        violations: checker::violations(&l.ledger, &windows, &user, end_ns),
        liveness: checker::liveness(&l.ledger, &windows, end_ns),
        scenario: i.s.run.name.clone(),
        scenario_hash: i.hash.to_string(),
        seed: i.s.run.seed,
        fingerprint: "live (wall clock: not reproducible)".to_string(),
        events_processed: 0,
        end_time_s: i.end.as_secs_f64(),
        send_window_s: window_s,
        messages_delivered_per_s_peak: ts.messages_delivered_per_s_peak(window_end_s),
        device_deliveries_per_s_peak: ts.device_deliveries_per_s_peak(window_end_s),
        replay_rejected: 0,
        nodes: BTreeMap::new(),
        work,
    };
    let summary = Summary::build(&l.ledger, facts, &i.s.expect);
    let in_window = l.ledger.deliveries.in_window;
    let delivered = l.ledger.deliveries.total.messages;
    let report = LiveReport {
        run_id: i.run.0,
        target_rate_per_s: i.load.rate_per_s,
        planned,
        sent,
        dropped_arrivals: dropped,
        achieved_rate_per_s: sent as f64 / window_s.max(1e-9),
        rate_reached: !i.interrupted && sent as f64 >= planned as f64 * i.rate_tolerance,
        messages_delivered: in_window.messages,
        messages_delivered_per_s: in_window.messages as f64 / window_s.max(1e-9),
        device_deliveries: in_window.devices,
        device_deliveries_per_s: in_window.devices as f64 / window_s.max(1e-9),
        corrected: Latency::from_histogram(&l.ledger.latency_all),
        uncorrected: Latency::from_histogram(&l.uncorrected),
        schedule_lag: Latency::from_histogram(&lag),
        decrypt_failures: dfail,
        plaintext_verified: verified,
        encrypted: enc,
        sessions_started: sessions,
        gateway_plaintext_hits: i.inspector.hits.load(Ordering::Relaxed),
        gateway_messages_inspected: i.inspector.messages.load(Ordering::Relaxed),
        gateway_bytes_inspected: i.inspector.bytes.load(Ordering::Relaxed),
        gateway_shaped: i.shaping.0,
        gateway_rate_limited: i.shaping.1,
        noise_messages: i.stats.noise_messages.load(Ordering::Relaxed),
        dropped_queue_full: i.stats.dropped_full.load(Ordering::Relaxed),
        abuse: i
            .stats
            .abuse
            .snapshot()
            .nonzero()
            .into_iter()
            .map(|(k, n)| (k.name(), n))
            .collect(),
        foreign_frames: foreign,
        connections_peak: i.stats.open_peak.load(Ordering::Relaxed),
        node_costs: i.node_costs.clone(),
        interrupted: i.interrupted,
        wall_s: i.end.as_secs_f64(),
        window_ms: i.load.duration_ns / 1_000_000,
        cpu_s: i.cpu_s,
        cpu_us_per_delivered: i.cpu_s.map(|c| c * 1e6 / delivered.max(1) as f64),
        servers_runtime: i.runtimes.0,
        generator_runtime: i.runtimes.1,
        generator_frames_in: i.reports.iter().map(|r| r.frames_in).sum(),
        generator_reads_in: i.reports.iter().map(|r| r.reads_in).sum(),
        hops: i.hops.clone(),
    };
    let intervals = l
        .intervals
        .iter()
        .map(|r| (r.start_ns, r.end_ns, r.hist.clone()))
        .collect();
    let uncorrected = l.uncorrected.clone();
    let uncorrected_path = l.uncorrected_path.clone();
    // Taken under the lock: a task may still hold the sink for a moment after shutdown.
    let live_ledger = std::mem::take(&mut guard.ledger);
    drop(guard);

    LiveOutcome {
        result: RunResult {
            summary,
            timeseries: ts,
            ledger: live_ledger,
            stop: StopReason::Drained,
            trace: Vec::new(),
            verified_plaintexts: 0,
            media_verified,
            media_blobs_opened: media_verified,
            media_disagreed: 0,
            media_latency,
            crypto_charged_ns: 0,
            canary: 0,
            tapped: Vec::new(),
            hops: report.hops.clone(),
        },
        report,
        intervals,
        uncorrected,
        uncorrected_path,
    }
}

/// The live-only lines of the screen summary; loud when the target rate was not reached.
pub fn render(r: &LiveReport) -> String {
    let mut s = format!(
        "live: target {:.0}/s, sent {} of {} planned ({:.0}/s), in the sending window {} messages delivered ({:.0}/s), {} device deliveries ({:.0}/s)\n\
         live: latency CO-corrected p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms; uncorrected p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms\n\
         live: schedule lag p99 {:.3} ms, max {:.3} ms; dropped arrivals {}; queue-full drops {}; decrypt failures {}; gateway plaintext hits {} in {} messages inspected{}",
        r.target_rate_per_s, r.sent, r.planned, r.achieved_rate_per_s, r.messages_delivered, r.messages_delivered_per_s, r.device_deliveries, r.device_deliveries_per_s,
        r.corrected.delivered_p50, r.corrected.delivered_p99, r.corrected.delivered_p999,
        r.uncorrected.delivered_p50, r.uncorrected.delivered_p99, r.uncorrected.delivered_p999,
        r.schedule_lag.delivered_p99, r.schedule_lag.delivered_max, r.dropped_arrivals,
        r.dropped_queue_full, r.decrypt_failures, r.gateway_plaintext_hits, r.gateway_messages_inspected,
        match (r.cpu_s, r.cpu_us_per_delivered) {
            (Some(c), Some(u)) => format!("\nlive: process CPU {c:.2} s over the run ({u:.1} us per delivered message)"),
            _ => String::new(),
        },
    );
    if !r.abuse.is_empty() || r.foreign_frames > 0 {
        let kinds: Vec<String> = r.abuse.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!(
            "\nlive: abuse at this process's servers: {}; frames of other load runs at its devices: {}",
            if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") },
            r.foreign_frames
        ));
    }
    if r.gateway_shaped + r.gateway_rate_limited > 0 {
        s.push_str(&format!(
            "\nlive: the gateway's per-partner rate limit held back {} frames and refused {}: \
             the delivered rate and latency reflect [capacity.gateway] rate_limit_per_partner, \
             not the machine's capacity",
            r.gateway_shaped, r.gateway_rate_limited
        ));
    }
    if let Some(line) = r.hops_line() {
        s.push_str(&format!("\nlive: {line}"));
    }
    if !r.rate_reached {
        s.push_str(&format!(
            "\nlive: FAILED: the target rate was NOT reached ({:.0}/s of {:.0}/s, {} arrivals dropped{})",
            r.achieved_rate_per_s,
            r.target_rate_per_s,
            r.dropped_arrivals,
            if r.interrupted { ", interrupted" } else { "" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Judged against the sending window, not the whole run: 4.94 s busy in a 5 s window of a
    /// 6 s run is saturated; 4 s is not; two threads need twice the time.
    #[test]
    fn a_runtime_busy_nearly_all_the_window_is_saturated() {
        let load = |threads: usize, busy_s: f64| RuntimeLoad {
            threads,
            busy_s,
            ..RuntimeLoad::default()
        };
        assert!(saturated(&load(1, 4.94), 5.0));
        assert!(!saturated(&load(1, 4.0), 5.0));
        assert!(!saturated(&load(2, 4.94), 5.0));
        assert!(saturated(&load(2, 9.5), 5.0));
    }
}
