//! `interop-sim validate`: the same scenario in the simulator and live, side by side, with the
//! relative error of each figure (p50, p99, messages and device copies delivered per second over
//! the sending window, delivered). The live run has one device per user, every device online and
//! no replies (its schedule is open-loop), so the simulated copy is given the same: users scaled
//! alike, `online_share = 1`, `reply_probability = 0`, the rate and window of the live run.

use super::options::LiveOptions;
use super::outcome::LiveOutcome;
use super::prepare::live_scenario;
use super::run::run_live;
use super::LiveError;
use crate::scenario::{Latency, Scenario};

/// One loopback hop between two live tasks (socket, wake-up, decode), as `--loopback-network`
/// models it.
pub const LOOPBACK_HOP_NS: u64 = 100_000;
use crate::sim::{run_scenario, RunResult};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub metric: String,
    pub sim: f64,
    pub live: f64,
    /// (live - sim) / sim; `None` when the simulated value is 0.
    pub relative_error: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub users: u64,
    pub rate_per_s: f64,
    pub duration_s: f64,
    /// The simulated copy modeled loopback links instead of the scenario's network.
    pub loopback_network: bool,
    pub rows: Vec<Row>,
}

/// The scenario both runs use, and the live options that match it.
pub fn aligned(s: &Scenario, opts: &LiveOptions, loopback: bool) -> (Scenario, LiveOptions) {
    let mut a = live_scenario(s, opts.users);
    if loopback {
        // Model the network live actually has: loopback, about 100 us a hop, nothing lost.
        for l in &mut a.network.links {
            l.latency = Latency::Constant {
                value_ns: LOOPBACK_HOP_NS,
            };
            l.loss = 0.0;
            l.duplicate = 0.0;
            l.reorder = 0.0;
            l.bandwidth_bytes_per_s = None;
        }
    }
    let users: u64 = a.providers.iter().map(|p| p.users as u64).sum();
    if let Some(rate) = opts.rate_per_s {
        a.workload.messages_per_user_hour = rate * 3600.0 / users.max(1) as f64;
    }
    if let Some(d) = opts.duration_ns {
        a.run.duration_ns = d;
    }
    a.devices.online_share = 1.0;
    a.workload.reply_probability = 0.0;
    let o = LiveOptions {
        users: None, // already scaled
        rate_per_s: Some(users as f64 * a.workload.messages_per_user_hour / 3600.0),
        duration_ns: Some(a.run.duration_ns),
        ..opts.clone()
    };
    (a, o)
}

fn row(metric: &str, sim: f64, live: f64) -> Row {
    Row {
        metric: metric.to_string(),
        sim,
        live,
        relative_error: (sim != 0.0).then(|| (live - sim) / sim),
    }
}

/// Runs both and compares.
pub fn validate(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    loopback: bool,
) -> Result<(Comparison, RunResult, LiveOutcome), LiveError> {
    let (a, o) = aligned(s, opts, loopback);
    let sim = run_scenario(&a, hash);
    let live = run_live(&a, hash, &o)?;
    let (ss, ls) = (&sim.summary, &live.result.summary);
    let rows = vec![
        row("p50_ms", ss.latency.delivered_p50, ls.latency.delivered_p50),
        row("p99_ms", ss.latency.delivered_p99, ls.latency.delivered_p99),
        row(
            "messages_per_s",
            ss.messages_delivered_per_s_mean,
            ls.messages_delivered_per_s_mean,
        ),
        row(
            "device_copies_per_s",
            ss.device_deliveries_per_s_mean,
            ls.device_deliveries_per_s_mean,
        ),
        row(
            "delivered",
            ss.counters.delivered as f64,
            ls.counters.delivered as f64,
        ),
    ];
    let cmp = Comparison {
        scenario: a.run.name.clone(),
        users: a.providers.iter().map(|p| p.users as u64).sum(),
        rate_per_s: o.rate_per_s.unwrap_or(0.0),
        duration_s: a.run.duration_ns as f64 / 1e9,
        loopback_network: loopback,
        rows,
    };
    Ok((cmp, sim, live))
}

/// The comparison as a table.
pub fn render(c: &Comparison) -> String {
    let mut s = format!(
        "validate {}: {} users, {:.1} msg/s for {:.1}s (sim: {}; live: loopback)\n{:<18} {:>14} {:>14} {:>12}\n",
        c.scenario, c.users, c.rate_per_s, c.duration_s,
        if c.loopback_network { "loopback links modeled" } else { "the scenario's network" },
        "metric", "sim", "live", "rel. error"
    );
    for r in &c.rows {
        let e = r
            .relative_error
            .map_or("n/a".to_string(), |e| format!("{:+.1}%", e * 100.0));
        let _ = writeln!(
            s,
            "{:<18} {:>14.3} {:>14.3} {:>12}",
            r.metric, r.sim, r.live, e
        );
    }
    s
}
