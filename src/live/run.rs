//! One live run on loopback: bind every server's listener (ephemeral ports), start the server
//! tasks and the generator shards, run the schedule, drain, shut down (also on Ctrl-C). What
//! is built before the clock starts is in `prepare`; judging the ledger, in `outcome`.

use super::client::{MediaEnds, Shard};
use super::clock::Clock;
use super::conn::{ConnStats, Inspector};
use super::ledger::LedgerSink;
use super::node::{ServerNode, Shared};
use super::options::{LiveOptions, PRECRYPT_MAX, WARMUP_NS};
use super::schedule::{self, Load};
use super::session::RunId;
use super::threads::{RuntimeMeter, WorkerThreads};
use super::LiveError;
use crate::engine::{RngTree, SimTime};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

use super::outcome::{finish, LiveOutcome, SummaryInputs};
use super::prepare::{directory, keys, live_scenario, precrypt, shard_specs, warm_up_sessions};
use super::topology::PLAINTEXT_MARKER;
use super::topology::{client_dials, media_addrs, server_addrs, start_servers, Role, Servers};

/// Runs `s` live on loopback (blocking: builds its own runtime, and one for the generator's
/// clients when [`LiveOptions::generator_threads`] asks for it).
pub fn run_live(s: &Scenario, hash: &str, opts: &LiveOptions) -> Result<LiveOutcome, LiveError> {
    let runtime = |threads: usize, registry: WorkerThreads, cores: Vec<core_affinity::CoreId>| {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads.max(1)).enable_all();
        let next = std::sync::atomic::AtomicUsize::new(0);
        b.on_thread_start(move || {
            registry.register_current();
            // Round the cores: each thread on one of them (a pinned thread's children
            // inherit its core).
            if !cores.is_empty() {
                let i = next.fetch_add(1, Ordering::Relaxed);
                core_affinity::set_for_current(cores[i % cores.len()]);
            }
        });
        b.build().map_err(LiveError::io("tokio runtime"))
    };
    let (server_cores, generator_cores) = pinned_cores(opts);
    // Both runtimes' threads are measured: the hosts a simulated copy of this run models.
    let server_threads = WorkerThreads::default();
    let rt = runtime(opts.threads, server_threads.clone(), server_cores)?;
    let generator_threads = WorkerThreads::default();
    let clients = match opts.generator_threads {
        0 => None,
        n => Some(runtime(n, generator_threads.clone(), generator_cores)?),
    };
    let on = clients.as_ref().map(|c| c.handle().clone());
    let threads = (server_threads, generator_threads);
    let out = rt.block_on(run_async(s, hash, opts, on, threads));
    // Dropped here, outside any runtime's context (dropping a runtime inside one panics).
    drop(clients);
    out
}

/// The cores `--pin` gives the servers' threads and the generator's: the first `threads` of
/// those this process may use, and the next `generator_threads`. Nothing is pinned without
/// `--pin`, with the clients on the servers' threads, or on too few cores for both.
pub(super) fn pinned_cores(
    opts: &LiveOptions,
) -> (Vec<core_affinity::CoreId>, Vec<core_affinity::CoreId>) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let (s, g) = (opts.threads.max(1), opts.generator_threads);
    if !opts.pin || g == 0 || cores.len() < s + g {
        return (Vec::new(), Vec::new());
    }
    (cores[..s].to_vec(), cores[s..s + g].to_vec())
}

async fn run_async(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    clients_on: Option<tokio::runtime::Handle>,
    (server_threads, generator_threads): (WorkerThreads, WorkerThreads),
) -> Result<LiveOutcome, LiveError> {
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
    if plan.ledger.records().len() as u64 >= 1 << super::session::MSG_INDEX_BITS {
        return Err(LiveError::Invalid(format!(
            "a live load run numbers at most {} messages on the wire; this load plans {}: \
             shorten the run or lower the rate, or split it with `load --slice K/N`",
            (1u64 << super::session::MSG_INDEX_BITS) - 1,
            plan.ledger.records().len()
        )));
    }
    let (all_keys, directory) = keys(&dir, &tree);
    let mut specs = shard_specs(s, opts, &dir, &tree, all_keys, directory, &plan);
    if opts.warm_sessions {
        warm_up_sessions(&mut specs, &dir, opts.shards.max(1), opts.remote);
    }
    if opts.precrypt {
        precrypt(&mut specs, &dir);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let clock = Clock::start();
    let cpu_start_s = crate::report::perf::process_cpu_s();
    let servers_meter = RuntimeMeter::start(server_threads, tokio::runtime::Handle::current());
    let generator_meter = (clients_on.clone()).map(|h| RuntimeMeter::start(generator_threads, h));
    // The mean delivery rates count what was shown by the end of the sending window.
    let window_end = SimTime::from_nanos(WARMUP_NS.saturating_add(duration_ns));
    plan.ledger.deliveries.set_window_end(window_end);
    let run = RunId::fresh();
    let ledger = LedgerSink::new(plan.ledger, dir.clone(), s.run.interval_ns, run);
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
        run,
        hops: Some(Default::default()),
    };
    let srv = match opts.remote {
        None => start_servers(s, &sh, Role::All, None).await?,
        Some(r) => Servers {
            handles: Vec::new(),
            addrs: (server_addrs(&dir).into_iter())
                .chain(media_addrs(&dir))
                .map(|a| (a, r.layout.addr_of(a)))
                .collect(),
            media_stores: BTreeMap::new(),
            media_relayed: Default::default(),
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
        spec.media = Some(media_ends(&srv.addrs));
        let shard = Shard::new(spec, sh.clone()).run();
        handles.push(match &clients_on {
            Some(rt) => rt.spawn(shard),
            None => tokio::spawn(shard),
        });
    }
    let interrupted = wait_for_end(&sh, WARMUP_NS + duration_ns, opts.drain_max_ns).await;
    let end = clock.now();
    let cpu_s = crate::report::perf::process_cpu_s()
        .zip(cpu_start_s)
        .map(|(b, a)| b - a);
    // A `load` against servers in another process runs only its clients here.
    let servers_load = opts.remote.is_none().then(|| servers_meter.load());
    let generator_load = generator_meter.map(|m| m.load());
    let _ = stop_tx.send(true);
    let mut reports = Vec::new();
    for h in handles {
        if let Ok(r) = h.await {
            reports.push(r);
        }
    }
    let mut shaping = (0, 0);
    let mut node_costs = BTreeMap::new();
    for h in srv.handles {
        let Ok(task) = h.await else { continue };
        node_costs.insert(super::hops::node_name(task.me), task.cost);
        if let ServerNode::Gateway(g) = &task.node {
            shaping = (g.shaped, g.rate_limited);
        }
    }
    let stats = sh.stats.clone();
    let hops = (sh.hops.as_ref()).map_or(Vec::new(), |h| h.take_steps(WARMUP_NS));
    drop(sh);
    let summary_in = SummaryInputs {
        s,
        hash,
        load: &load,
        planned: messages as u64,
        end,
        reports: &reports,
        inspector: &srv.inspector,
        stats: &stats,
        interrupted,
        users: &dir,
        rate_tolerance: opts.rate_tolerance,
        cpu_s,
        runtimes: (servers_load, generator_load),
        shaping,
        media_relayed: srv.media_relayed.load(std::sync::atomic::Ordering::Relaxed),
        run,
        node_costs,
        hops,
    };
    Ok(finish(ledger, summary_in))
}

/// Where the media services listen, from every server's address.
fn media_ends(addrs: &BTreeMap<crate::nodes::Addr, std::net::SocketAddr>) -> MediaEnds {
    use crate::nodes::Addr;
    MediaEnds {
        stores: (addrs.iter())
            .filter_map(|(a, at)| match a {
                Addr::MediaStore(p) => Some((p.0, *at)),
                _ => None,
            })
            .collect(),
        proxy: addrs[&Addr::MediaProxy],
    }
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
            sent == super::ledger::NOT_SENT || r.is_done() || (r.refused() && !r.accepted())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_gives_the_servers_and_the_generator_cores_apart_and_only_when_asked() {
        let opts = |pin: bool, generator_threads: usize| LiveOptions {
            threads: 1,
            generator_threads,
            pin,
            ..LiveOptions::default()
        };
        assert_eq!(pinned_cores(&opts(false, 1)), (Vec::new(), Vec::new()));
        assert_eq!(pinned_cores(&opts(true, 0)), (Vec::new(), Vec::new()));
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let (servers, generator) = pinned_cores(&opts(true, 1));
        if cores.len() >= 2 {
            assert_eq!((servers.len(), generator.len()), (1, 1));
            assert_ne!(servers[0], generator[0]);
        } else {
            assert!(servers.is_empty() && generator.is_empty(), "too few cores");
        }
    }
}
