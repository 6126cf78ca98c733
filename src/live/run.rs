//! One live run on loopback: bind every server's listener (ephemeral ports), start the server
//! tasks and the generator shards, run the schedule, drain, shut down (also on Ctrl-C), and
//! judge the ledger with the simulator's checker and summary.

use super::client::{Shard, ShardReport, ShardSpec};
use super::clock::Clock;
use super::conn::{ConnStats, Inspector};
use super::crypto::{Crypto, KeyDirectory};
use super::ledger::{histogram, LedgerSink};
use super::node::{NodeTask, ServerNode, Shared};
use super::schedule::{self, Arrivals, Load};
use super::LiveError;
use crate::directory::Directory;
use crate::directory::PartnerLink;
use crate::e2ee::DeviceKeys;
use crate::engine::{RngTree, SimTime, StopReason};
use crate::metrics::checker;
use crate::metrics::summary::{Latency, RunFacts};
use crate::metrics::Summary;
use crate::net::latency::unit;
use crate::nodes::buggify::Bugs;
use crate::nodes::device::{Device, DeviceConfig};
use crate::scenario::{AdapterMode, Scenario};
use crate::sim::RunResult;
use crate::wire::{DeviceId, UserId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

pub use super::topology::PLAINTEXT_MARKER;
use super::topology::{client_dials, server_addrs, start_servers, Layout, Role, Servers};
/// Time between binding the listeners and the first arrival: every device connects first (a
/// burst of Connect frames that must not delay the first arrivals).
pub const WARMUP_NS: u64 = 1_000_000_000;

/// How to run live, beyond the scenario.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Scale the scenario's users down (or up) to this many in all, providers in proportion.
    pub users: Option<u32>,
    /// Messages per second; default: the scenario's users x messages_per_user_hour.
    pub rate_per_s: Option<f64>,
    /// Sending window; default: the scenario's duration.
    pub duration_ns: Option<u64>,
    pub arrivals: Arrivals,
    pub ramp_ns: u64,
    /// Generator shards (tasks holding client devices).
    pub shards: usize,
    /// An arrival more than this late is dropped and counted.
    pub lag_max_ns: u64,
    /// Bound on the drain after the sending window.
    pub drain_max_ns: u64,
    /// Tokio worker threads.
    pub threads: usize,
    /// The rate counts as reached when at least this share of the planned arrivals went out.
    pub rate_tolerance: f64,
    /// Encrypt every message before the run (senders' Signal work off the measured path;
    /// recipients still decrypt live). Bounded by [`PRECRYPT_MAX`] messages.
    pub precrypt: bool,
    /// Load only (`interop-sim load`): the servers run elsewhere, at this layout, and this
    /// generator is `k` of `n`.
    pub remote: Option<Remote>,
}

/// A load generator against servers in other processes.
#[derive(Clone, Copy, Debug)]
pub struct Remote {
    pub layout: Layout,
    pub k: u32,
    pub n: u32,
}

/// Bound on messages encrypted ahead with `precrypt`.
pub const PRECRYPT_MAX: usize = 5_000_000;

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            users: None,
            rate_per_s: None,
            duration_ns: None,
            arrivals: Arrivals::Constant,
            ramp_ns: 0,
            shards: 1,
            lag_max_ns: 1_000_000_000,
            drain_max_ns: 10_000_000_000,
            threads: 2,
            rate_tolerance: 0.99,
            precrypt: false,
            remote: None,
        }
    }
}

/// Wall-clock figures of a live run (live.json).
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    pub target_rate_per_s: f64,
    pub planned: u64,
    pub sent: u64,
    pub dropped_arrivals: u64,
    pub achieved_rate_per_s: f64,
    pub rate_reached: bool,
    pub delivered: u64,
    pub delivered_per_s: f64,
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
    pub interrupted: bool,
    pub wall_s: f64,
    /// The sending window, ms.
    pub window_ms: u64,
    /// CPU time of the whole process (servers, gateway, generators: user + system) from the
    /// clock's start to the end of the drain, s; `None` where /proc is not available.
    pub cpu_s: Option<f64>,
    /// `cpu_s` per delivered message, us: what one message costs end to end on this machine.
    pub cpu_us_per_delivered: Option<f64>,
}

/// A finished live run.
pub struct LiveOutcome {
    pub result: RunResult,
    pub report: LiveReport,
    /// Corrected latency per interval: (start ns, end ns, histogram), for the .hlog.
    pub intervals: Vec<(u64, u64, hdrhistogram::Histogram<u64>)>,
    /// Latency from the actual send time (ns).
    pub uncorrected: hdrhistogram::Histogram<u64>,
}

impl LiveOutcome {
    /// Expectations held and the target rate was reached.
    pub fn passed(&self) -> bool {
        self.result.summary.passed && self.report.rate_reached
    }
}

/// The scenario with live's simplifications: one device per user, users scaled.
pub fn live_scenario(s: &Scenario, users: Option<u32>) -> Scenario {
    let mut s = s.clone();
    let total: u64 = s.providers.iter().map(|p| p.users as u64).sum();
    for p in &mut s.providers {
        if let Some(u) = users {
            p.users = ((p.users as u64 * u as u64) / total.max(1)).max(2) as u32;
        }
        p.devices_min = 1;
        p.devices_max = 1;
    }
    s
}

/// The live directory: one device per user, enlistment drawn from the seed.
pub fn directory(s: &Scenario, tree: &RngTree) -> Directory {
    let mut rng = tree.stream("live-directory", 0);
    let users: Vec<u32> = s.providers.iter().map(|p| p.users).collect();
    let links = s
        .providers
        .iter()
        .map(|p| match p.adapter {
            AdapterMode::Direct => PartnerLink::Direct,
            _ => PartnerLink::Proxied,
        })
        .collect();
    let mut enlisted = Vec::new();
    for p in &s.providers {
        for _ in 0..p.users {
            enlisted.push(unit(&mut rng) < p.opt_in);
        }
    }
    let devices = vec![1u8; enlisted.len()];
    Directory::new(&users, links, &devices, enlisted)
}

/// Runs `s` live on loopback (blocking: builds its own runtime).
pub fn run_live(s: &Scenario, hash: &str, opts: &LiveOptions) -> Result<LiveOutcome, LiveError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .enable_all()
        .build()
        .map_err(LiveError::io("tokio runtime"))?;
    rt.block_on(run_async(s, hash, opts))
}

/// Every device's keys and the published key directory.
fn keys(dir: &Directory, tree: &RngTree) -> (Vec<DeviceKeys>, KeyDirectory) {
    let mut rng = tree.stream("live-keys", 0);
    let mut all = Vec::with_capacity(dir.devices());
    let mut bundles = Vec::with_capacity(dir.devices());
    for i in 0..dir.devices() as u32 {
        let mut k = DeviceKeys::generate(i + 1, 1, &mut rng);
        bundles.push(k.bundle(false, &mut rng));
        all.push(k);
    }
    (all, Arc::new(bundles))
}

async fn run_async(s: &Scenario, hash: &str, opts: &LiveOptions) -> Result<LiveOutcome, LiveError> {
    let s = &live_scenario(s, opts.users);
    let tree = RngTree::new(s.run.seed);
    let dir = Arc::new(directory(s, &tree));
    let users: u64 = dir.users() as u64;
    let rate = opts
        .rate_per_s
        .unwrap_or(users as f64 * s.workload.messages_per_user_hour / 3600.0);
    let duration_ns = opts.duration_ns.unwrap_or(s.run.duration_ns);
    let load = Load {
        rate_per_s: rate,
        duration_ns,
        arrivals: opts.arrivals,
        ramp_ns: opts.ramp_ns,
        start_ns: WARMUP_NS,
    };
    let mut plan = schedule::plan(s, &dir, &tree, &load)?;
    if let Some(r) = opts.remote {
        plan = schedule::slice(&plan, &dir, r.k, r.n);
    }
    if opts.precrypt && plan.arrivals.len() > PRECRYPT_MAX {
        return Err(LiveError::Invalid(format!(
            "--precrypt holds every ciphertext in memory: at most {PRECRYPT_MAX} messages, this load plans {}",
            plan.arrivals.len()
        )));
    }
    let messages = plan.arrivals.len();
    let (all_keys, directory) = keys(&dir, &tree);
    let mut specs = shard_specs(s, opts, &dir, &tree, all_keys, directory, &plan.arrivals);
    warm_up_sessions(&mut specs, &dir, opts.shards.max(1), opts.remote);
    if opts.precrypt {
        precrypt(&mut specs, &dir);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let clock = Clock::start();
    let cpu_start_s = crate::report::perf::process_cpu_s();
    let ledger = LedgerSink::new(plan.ledger, dir.clone(), s.run.interval_ns);
    let sh = Shared {
        dir: dir.clone(),
        clock,
        ledger: ledger.clone(),
        stats: Arc::new(ConnStats::default()),
        tree,
        conn_ids: Arc::new(AtomicU64::new(1)),
        arrivals_pending: Arc::new(AtomicU64::new(messages as u64)),
        cuts: Arc::new(super::faults::Cuts::default()),
        shutdown: stop_rx,
    };
    let srv = match opts.remote {
        None => start_servers(s, &sh, Role::All, None).await?,
        Some(r) => Servers {
            handles: Vec::new(),
            addrs: server_addrs(&dir)
                .into_iter()
                .map(|a| (a, r.layout.addr_of(a)))
                .collect(),
            inspector: Arc::new(Inspector::new(PLAINTEXT_MARKER)),
            controls: BTreeMap::new(),
        },
    };
    super::faults::spawn_controller(
        s.faults.clone(),
        WARMUP_NS,
        clock,
        sh.cuts.clone(),
        srv.controls.clone(),
        dir.clone(),
    );
    let mut handles = Vec::new();
    for mut spec in specs {
        spec.dials = client_dials(&srv.addrs, &dir);
        handles.push(tokio::spawn(Shard::new(spec, sh.clone()).run()));
    }
    let interrupted = wait_for_end(&sh, WARMUP_NS + duration_ns, opts.drain_max_ns).await;
    let end = clock.now();
    let cpu_s = crate::report::perf::process_cpu_s()
        .zip(cpu_start_s)
        .map(|(b, a)| b - a);
    let _ = stop_tx.send(true);
    let mut reports = Vec::new();
    for h in handles {
        if let Ok(r) = h.await {
            reports.push(r);
        }
    }
    let mut shaping = (0, 0);
    for h in srv.handles {
        if let Ok(NodeTask {
            node: ServerNode::Gateway(g),
            ..
        }) = h.await
        {
            shaping = (g.shaped, g.rate_limited);
        }
    }
    let stats = sh.stats.clone();
    drop(sh);
    let summary_in = SummaryInputs {
        s,
        hash,
        load: &load,
        end,
        reports: &reports,
        inspector: &srv.inspector,
        stats: &stats,
        interrupted,
        users: &dir,
        rate_tolerance: opts.rate_tolerance,
        cpu_s,
        shaping,
    };
    Ok(finish(ledger, summary_in))
}

/// The generator shards: devices, keys and arrivals split by device (dials come later).
fn shard_specs(
    s: &Scenario,
    opts: &LiveOptions,
    dir: &Directory,
    tree: &RngTree,
    all_keys: Vec<DeviceKeys>,
    directory: KeyDirectory,
    arrivals: &[schedule::Arrival],
) -> Vec<ShardSpec> {
    let shards = opts.shards.max(1);
    let cfg = DeviceConfig {
        retry_initial_ns: s.devices.retry_initial_ns,
        retry_max_ns: s.devices.retry_max_ns,
        outbox_max: s.devices.outbox_max,
        reorder_hold_ns: (2 * s.devices.retry_max_ns).max(30_000_000_000),
        // The live generator keeps its plaintexts itself (it does its own Signal work).
        plaintext_cache_max: 0,
        reorder_held_max: 256,
        bugs: Bugs::NONE,
    };
    let mut keys_by_shard: Vec<Vec<Option<DeviceKeys>>> = (0..shards)
        .map(|_| (0..dir.devices()).map(|_| None).collect())
        .collect();
    // Which shard holds device d: a load generator k of n holds only the devices = k mod n.
    let (k, n) = opts
        .remote
        .map_or((0, 1), |r| (r.k as usize, r.n.max(1) as usize));
    let owner = |d: usize| (d % n == k).then_some((d / n) % shards);
    for (i, key) in all_keys.into_iter().enumerate() {
        if let Some(j) = owner(i) {
            keys_by_shard[j][i] = Some(key);
        }
    }
    let mine = |j: usize, d: DeviceId| owner(d.index()) == Some(j);
    keys_by_shard
        .into_iter()
        .enumerate()
        .map(|(j, keys)| ShardSpec {
            me: j,
            devices: (0..dir.devices() as u32)
                .map(|i| mine(j, DeviceId(i)).then(|| Device::new(DeviceId(i), dir, &cfg)))
                .collect(),
            cfg,
            crypto: Crypto::new(
                keys,
                directory.clone(),
                tree.stream("live-ratchet", j as u64),
            ),
            arrivals: arrivals
                .iter()
                .filter(|a| mine(j, dir.primary_device(a.from)))
                .copied()
                .collect(),
            lag_max_ns: opts.lag_max_ns,
            marker: PLAINTEXT_MARKER.to_vec(),
            messages: arrivals.len(),
            dials: Vec::new(),
            precrypted: Vec::new(),
            remote: opts.remote.is_some(),
        })
        .collect()
}

/// Establishes a Signal session for every conversation in the schedule before the clock
/// starts, as between contacts who have talked before: one message each way, encrypted and
/// decrypted for real, the last one in the direction of the conversation's first scheduled
/// message (the sender spoke last). The live run then measures steady-state messaging, not a
/// burst of X3DH handshakes in its first seconds, nor every conversation turning at once: a
/// recipient does its Double Ratchet DH step (three X25519 operations) when the conversation
/// turns, and ending the warm-up the other way round would put one such turn per
/// conversation in the first milliseconds of the run (3,110 of them in live-bench).
fn warm_up_sessions(
    specs: &mut [ShardSpec],
    dir: &Directory,
    shards: usize,
    remote: Option<Remote>,
) {
    let (k, n) = remote.map_or((0, 1), |r| (r.k as usize, r.n.max(1) as usize));
    let shard_of = |d: DeviceId| (d.index() % n == k).then_some((d.index() / n) % shards);
    // Per conversation, its first scheduled message: (time, from, to).
    let mut first = BTreeMap::new();
    for spec in specs.iter() {
        for a in &spec.arrivals {
            let (x, y) = (dir.primary_device(a.from), dir.primary_device(a.to));
            let e = first.entry((x.min(y), x.max(y))).or_insert((a.at, x, y));
            if a.at < e.0 {
                *e = (a.at, x, y);
            }
        }
    }
    for (_, from, to) in first.into_values() {
        let (Some(i), Some(j)) = (shard_of(from), shard_of(to)) else {
            continue;
        };
        for (a, b, sa, sb) in [(to, from, j, i), (from, to, i, j)] {
            let Ok(ct) = specs[sa].crypto.encrypt(a, b, b"hello") else {
                continue;
            };
            let _ = specs[sb].crypto.decrypt(b, a, &ct);
        }
    }
}

/// Encrypts every shard's messages before the clock starts (one thread per shard), so that
/// the senders' Signal work is off the measured path; recipients still decrypt live.
fn precrypt(specs: &mut [ShardSpec], dir: &Directory) {
    std::thread::scope(|scope| {
        for spec in specs.iter_mut() {
            scope.spawn(move || {
                let mut plain = Vec::new();
                spec.precrypted = spec
                    .arrivals
                    .iter()
                    .map(|a| {
                        let (own, peer) = (dir.primary_device(a.from), dir.primary_device(a.to));
                        super::crypto::plaintext(&spec.marker, a.msg, a.body_bytes, &mut plain);
                        spec.crypto.encrypt(own, peer, &plain).ok()
                    })
                    .collect();
            });
        }
    });
}

/// Waits out the sending window, then drains until every sent message is settled or the drain
/// bound passes; Ctrl-C ends it early. Returns whether it was interrupted.
async fn wait_for_end(sh: &Shared, send_end_ns: u64, drain_max_ns: u64) -> bool {
    let (clock, ledger) = (&sh.clock, &sh.ledger);
    let send_end = SimTime::from_nanos(send_end_ns);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    tokio::select! {
        _ = tokio::time::sleep_until(clock.instant(send_end)) => {}
        _ = &mut ctrl_c => return true,
    }
    let deadline = send_end.plus(drain_max_ns);
    loop {
        let taken = sh.arrivals_pending.load(Ordering::SeqCst) == 0;
        if clock.now() >= deadline || (taken && settled(ledger)) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            _ = &mut ctrl_c => return true,
        }
    }
}

/// Every message that went out is delivered, refused or given up.
fn settled(ledger: &LedgerSink) -> bool {
    let l = ledger.lock();
    l.ledger
        .records()
        .iter()
        .zip(&l.actual_sent_ns)
        .all(|(r, &sent)| {
            sent == super::ledger::NOT_SENT || r.is_done() || (r.refused && !r.accepted)
        })
}

struct SummaryInputs<'a> {
    s: &'a Scenario,
    hash: &'a str,
    load: &'a Load,
    end: SimTime,
    reports: &'a [ShardReport],
    inspector: &'a Inspector,
    stats: &'a ConnStats,
    interrupted: bool,
    users: &'a Directory,
    rate_tolerance: f64,
    cpu_s: Option<f64>,
    /// The gateway's (shaped, rate-limited) frames.
    shaping: (u64, u64),
}

fn finish(ledger: LedgerSink, i: SummaryInputs<'_>) -> LiveOutcome {
    let mut guard = ledger.lock();
    guard.finish(i.end);
    let l = &*guard;
    let mut lag = histogram();
    let (mut sent, mut dropped, mut dfail, mut verified, mut enc, mut sessions) =
        (0, 0, 0, 0, 0, 0);
    for r in i.reports {
        let _ = lag.add(&r.lag);
        sent += r.sent;
        dropped += r.dropped_arrivals;
        dfail += r.decrypt_failures;
        verified += r.plaintext_verified;
        enc += r.encrypted;
        sessions += r.sessions_started;
    }
    let planned = l.ledger.records().len() as u64;
    let window_s = i.load.duration_ns as f64 / 1e9;
    let names: Vec<String> = i.s.providers.iter().map(|p| p.name.clone()).collect();
    let dir = i.users;
    let user = |u: UserId| format!("user {} ({})", u.0, names[dir.provider_of_user(u).index()]);
    let end_ns = i.end.as_nanos();
    let (windows, skipped) = super::faults::windows(i.s, WARMUP_NS);
    let ts = l.timeseries();
    let mut work = BTreeMap::new();
    work.insert("dropped_arrivals".to_string(), dropped);
    work.insert("faults_not_played_live".to_string(), skipped as u64);
    work.insert("decrypt_failures_live".to_string(), dfail);
    work.insert(
        "queue_full_drops".to_string(),
        i.stats.dropped_full.load(Ordering::Relaxed),
    );
    let facts = RunFacts {
        crypto: Default::default(),
        media: Default::default(),
        violations: checker::violations(&l.ledger, &windows, &user, end_ns),
        liveness: checker::liveness(&l.ledger, &windows, end_ns),
        scenario: i.s.run.name.clone(),
        scenario_hash: i.hash.to_string(),
        seed: i.s.run.seed,
        fingerprint: "live (wall clock: not reproducible)".to_string(),
        events_processed: 0,
        end_time_s: i.end.as_secs_f64(),
        send_window_s: window_s,
        delivered_per_s_peak: ts.delivered_per_s_peak(),
        replay_rejected: 0,
        nodes: BTreeMap::new(),
        work,
    };
    let summary = Summary::build(&l.ledger, facts, &i.s.expect);
    let delivered = l.ledger.counts.shown;
    let report = LiveReport {
        target_rate_per_s: i.load.rate_per_s,
        planned,
        sent,
        dropped_arrivals: dropped,
        achieved_rate_per_s: sent as f64 / window_s.max(1e-9),
        rate_reached: !i.interrupted && sent as f64 >= planned as f64 * i.rate_tolerance,
        delivered,
        delivered_per_s: delivered as f64 / window_s.max(1e-9),
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
        interrupted: i.interrupted,
        wall_s: i.end.as_secs_f64(),
        window_ms: i.load.duration_ns / 1_000_000,
        cpu_s: i.cpu_s,
        cpu_us_per_delivered: i.cpu_s.map(|c| c * 1e6 / delivered.max(1) as f64),
    };
    let intervals = l
        .intervals
        .iter()
        .map(|r| (r.start_ns, r.end_ns, r.hist.clone()))
        .collect();
    let uncorrected = l.uncorrected.clone();
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
            media_verified: 0,
            media_blobs_opened: 0,
            media_disagreed: 0,
            crypto_charged_ns: 0,
            canary: 0,
            tapped: Vec::new(),
        },
        report,
        intervals,
        uncorrected,
    }
}

/// The live-only lines of the screen summary; loud when the target rate was not reached.
pub fn render(r: &LiveReport) -> String {
    let mut s = format!(
        "live: target {:.0}/s, sent {} of {} planned ({:.0}/s), delivered {} ({:.0}/s)\n\
         live: latency CO-corrected p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms; uncorrected p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms\n\
         live: schedule lag p99 {:.3} ms, max {:.3} ms; dropped arrivals {}; queue-full drops {}; decrypt failures {}; gateway plaintext hits {} in {} messages inspected{}",
        r.target_rate_per_s, r.sent, r.planned, r.achieved_rate_per_s, r.delivered, r.delivered_per_s,
        r.corrected.delivered_p50, r.corrected.delivered_p99, r.corrected.delivered_p999,
        r.uncorrected.delivered_p50, r.uncorrected.delivered_p99, r.uncorrected.delivered_p999,
        r.schedule_lag.delivered_p99, r.schedule_lag.delivered_max, r.dropped_arrivals,
        r.dropped_queue_full, r.decrypt_failures, r.gateway_plaintext_hits, r.gateway_messages_inspected,
        match (r.cpu_s, r.cpu_us_per_delivered) {
            (Some(c), Some(u)) => format!("\nlive: process CPU {c:.2} s over the run ({u:.1} us per delivered message)"),
            _ => String::new(),
        },
    );
    if r.gateway_shaped + r.gateway_rate_limited > 0 {
        s.push_str(&format!(
            "\nlive: the gateway's per-partner rate limit held back {} frames and refused {}: \
             the delivered rate and latency reflect [capacity.gateway] rate_limit_per_partner, \
             not the machine's capacity",
            r.gateway_shaped, r.gateway_rate_limited
        ));
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
