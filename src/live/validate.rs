//! `interop-sim validate`: the same scenario in the simulator and live, side by side, and a
//! verdict on how far apart they land. A model is validated only against a run with the same
//! inputs, so the simulated copy gets what live can carry and nothing else: users scaled
//! alike, one device per user, every device online, no replies or read receipts (live's schedule is
//! open-loop), media blobs within live's bound, the same enlistment draws
//! (both build the directory the same way), the rate, window and arrival process of the live
//! run (Poisson in both unless `--arrivals` says otherwise). Each figure (p50, p99, mean
//! latency and delivered messages per second, overall and per path kind) is judged against a
//! tolerance; one outside it fails the run (exit 1).

pub use super::align::aligned;
use super::comparison::{percent, row};
pub use super::comparison::{Comparison, Row, SAMPLES_MIN};
use super::options::LiveOptions;
use super::outcome::LiveOutcome;
use super::probe::{Hop, Hops};
use super::run::run_live;
use super::LiveError;
use crate::metrics::PathKind;
use crate::report::validate_page::LevelView;
use crate::scenario::{Latency, Scenario};
use crate::sim::{run_with, RunOptions, RunResult};
use std::fmt::Write as _;

/// Which network the simulated copy models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// What live has: loopback, each hop the latency measured on this machine, nothing lost.
    MeasuredLoopback,
    /// The scenario's own links (for a deployment's figures, not for loopback's).
    Scenario,
}

/// What the simulated copy models of this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    pub network: Network,
    /// The host's cores too (`--model-host`, see [`super::host_model`]).
    pub host: bool,
}

/// A lognormal hop of the measured median and p99 (the p99 kept above the median).
fn lognormal(h: &Hop) -> Latency {
    Latency::Lognormal {
        median_ns: h.median_ns.max(1),
        p99_ns: h.p99_ns.max(h.median_ns + 1),
    }
}

/// Models this machine in the simulated copy: every link a loopback hop of the measured
/// latency distribution (none lost), and each server node's `per_message` the cost its own
/// logic had in the live run. A message's first hop (device to server) finds the tasks on its
/// path parked when messages come a gap apart, and the hop that hands it to the recipient's
/// device wakes the load generator; the hops between servers follow at once. So the
/// device-facing links take the idle hop and the server-to-server links the warm one.
pub fn calibrate(
    a: &mut Scenario,
    hops: Option<&Hops>,
    costs: &std::collections::BTreeMap<String, super::node::NodeCost>,
    notes: &mut Vec<String>,
) {
    if let Some(h) = hops {
        for class in crate::scenario::HopClass::ALL {
            let l = &mut a.network.links[class.index()];
            l.latency = if class == crate::scenario::HopClass::ClientServer {
                lognormal(&h.idle)
            } else {
                lognormal(&h.warm)
            };
            l.loss = 0.0;
            l.duplicate = 0.0;
            l.reorder = 0.0;
            l.bandwidth_bytes_per_s = None;
        }
        let us = |h: &Hop| {
            format!(
                "{:.1} us (p99 {:.1} us)",
                h.median_ns as f64 / 1e3,
                h.p99_ns as f64 / 1e3
            )
        };
        notes.push(format!(
            "links modeled as this machine's loopback hops, lognormal, no loss: device links {} (probed at the run's message spacing, from the generator's threads to the servers': the tasks on the path parked), server links {} (back to back on the servers' threads); {} round trips each",
            us(&h.idle),
            us(&h.warm),
            h.warm.round_trips
        ));
    } else {
        notes.push("links: the scenario's own (not loopback's): expect latencies far apart".into());
    }
    let per = |prefix: &str| {
        let v: Vec<u64> = costs
            .iter()
            .filter(|(k, _)| k.as_str() == prefix || k.starts_with(&format!("{prefix}.")))
            .filter_map(|(_, c)| c.per_message_ns())
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() / v.len() as u64)
    };
    let mut priced = Vec::new();
    for (key, cap) in [
        ("chat_server", &mut a.capacity.chat_server),
        ("gateway", &mut a.capacity.gateway),
        ("adapter", &mut a.capacity.adapter),
    ] {
        if let Some(ns) = per(key) {
            cap.per_message_ns = ns.max(1);
            priced.push(format!("{key} {:.1} us", ns as f64 / 1e3));
        }
    }
    if !priced.is_empty() {
        notes.push(format!(
            "per message frame, as the live run's nodes spent in their own logic: {}",
            priced.join(", ")
        ));
    }
}

/// The rows of one path (`None`: the whole run). Live latency counts from each message's actual
/// send: the generator's own lateness is the tester's, not the system's, and is reported apart.
fn rows_of(
    path: Option<PathKind>,
    sim: &RunResult,
    live: &LiveOutcome,
    window_s: f64,
    tol: f64,
) -> Vec<Row> {
    let hs = match path {
        Some(p) => &sim.ledger.latency[p.index()],
        None => &sim.ledger.latency_all,
    };
    let hl = match path {
        Some(p) => &live.uncorrected_path[p.index()],
        None => &live.uncorrected,
    };
    let live = &live.result;
    let n = (hs.len(), hl.len());
    let q = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    let name = path.map_or("all", |p| p.key());
    let per_s = |r: &RunResult| {
        let c = match path {
            Some(p) => r
                .summary
                .paths
                .get(p.key())
                .map_or(0, |x| x.counters.delivered),
            None => r.summary.counters.delivered,
        };
        c as f64 / window_s.max(1e-9)
    };
    vec![
        row(name, "p50_ms", (q(hs, 0.5), q(hl, 0.5)), n, tol),
        row(name, "p99_ms", (q(hs, 0.99), q(hl, 0.99)), n, tol),
        row(name, "mean_ms", (hs.mean() / 1e6, hl.mean() / 1e6), n, tol),
        row(name, "messages_per_s", (per_s(sim), per_s(live)), n, tol),
    ]
}

/// The media downloads of both runs, when either fetched a blob: from a message shown to its
/// blob verified and decrypted (p50, p99) and blobs per second.
fn media_rows(sim: &RunResult, live: &LiveOutcome, window_s: f64, tol: f64) -> Vec<Row> {
    let (ms, ml) = (&sim.summary.media, &live.result.summary.media);
    if ms.media_downloads + ml.media_downloads == 0 {
        return Vec::new();
    }
    let n = (ms.media_downloads, ml.media_downloads);
    let per_s = |d: u64| d as f64 / window_s.max(1e-9);
    let p50 = (ms.media_download_p50, ml.media_download_p50);
    let p99 = (ms.media_download_p99, ml.media_download_p99);
    vec![
        row("media", "download_p50_ms", p50, n, tol),
        row("media", "download_p99_ms", p99, n, tol),
        row("media", "downloads_per_s", (per_s(n.0), per_s(n.1)), n, tol),
    ]
}

/// Runs both and compares, judging every figure against `tolerance` (a fraction: 0.1 = 10 %).
/// Live runs first: the simulated copy is priced with what it measured (with `--model-host`,
/// the host's prices fitted over it and `host_runs`, or runs at half and twice the rate when there are
/// none). Returns the comparison, both runs and the scenario they ran (aligned, and priced for
/// this machine).
pub fn validate(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    model: Model,
    tolerance: f64,
    host_runs: &[super::host_model::HostWork],
) -> Result<(Comparison, RunResult, LiveOutcome, Scenario), LiveError> {
    let (mut a, o, mut notes) = aligned(s, opts);
    let hops = match model.network {
        // The idle probe's rounds spaced as the run's messages are (2 ms at most: a second
        // for the probe).
        Network::MeasuredLoopback => Some(Hops::measure(
            o.rate_per_s
                .map_or(0, |r| (1e9 / r.max(1.0)).min(2e6) as u64),
            &o,
        )?),
        Network::Scenario => None,
    };
    let live = run_live(&a, hash, &o)?;
    calibrate(&mut a, hops.as_ref(), &live.report.node_costs, &mut notes);
    if model.host {
        let report = &live.report;
        super::host_model::model_host(s, hash, opts, &mut a, report, host_runs, &mut notes)?;
    }
    let traced = RunOptions {
        hops: true,
        ..RunOptions::default()
    };
    let sim = run_with(&a, hash, traced);
    let window_s = a.run.duration_ns as f64 / 1e9;
    let mut rows = rows_of(None, &sim, &live, window_s, tolerance);
    for p in PathKind::ALL {
        let carried = |r: &RunResult| {
            r.summary
                .paths
                .get(p.key())
                .is_some_and(|x| x.counters.sent > 0)
        };
        if carried(&sim) || carried(&live.result) {
            rows.extend(rows_of(Some(p), &sim, &live, window_s, tolerance));
        }
    }
    rows.extend(media_rows(&sim, &live, window_s, tolerance));
    let lag = &live.report.schedule_lag;
    notes.push(format!(
        "live latency from each message's actual send; the generator's own lateness (p50 {:.3} ms, p99 {:.3} ms) is the tester's and stays out",
        lag.delivered_p50, lag.delivered_p99
    ));
    let c = [
        &a.capacity.chat_server,
        &a.capacity.gateway,
        &a.capacity.adapter,
    ];
    let modeled_ns = c.iter().map(|n| n.per_message_ns).sum();
    // With the host modeled, the process-wide line ("cores of their own") no longer holds.
    let host_load = a
        .capacity
        .host
        .is_none()
        .then(|| live.report.host_load(modeled_ns));
    let unmodeled = [host_load.flatten(), live.report.threads_load()];
    let cmp = Comparison {
        scenario: a.run.name.clone(),
        users: a.providers.iter().map(|p| p.users as u64).sum(),
        rate_per_s: o.rate_per_s.unwrap_or(0.0),
        duration_s: window_s,
        arrivals: format!("{:?}", o.arrivals).to_lowercase(),
        loopback_network: model.network == Network::MeasuredLoopback,
        aligned: notes,
        unmodeled: unmodeled.into_iter().flatten().collect(),
        tolerance,
        passed: rows.iter().all(|r| r.ok != Some(false)),
        rows,
        steps: super::step_pairs::pair(&sim.hops, &live.report.hops),
        runs: 1,
    };
    Ok((cmp, sim, live, a))
}

/// One level of `validate.html`: the table of `c` and the spectra of both runs (overall, and
/// per path kind when the runs carried more than one).
pub fn level_view(
    c: &Comparison,
    sim: &RunResult,
    live: &LiveOutcome,
    name: &str,
    heading: &str,
    folder: &str,
) -> LevelView {
    use crate::report::plots::spectrum::series;
    let mut spectrum = vec![
        series("simulated", 0, &sim.ledger.latency_all),
        series("live", 1, &live.uncorrected),
    ];
    let carried: Vec<PathKind> = PathKind::ALL
        .into_iter()
        .filter(|p| !live.uncorrected_path[p.index()].is_empty())
        .collect();
    if carried.len() > 1 {
        for (i, p) in carried.iter().enumerate() {
            let mut s = series(
                &format!("simulated {}", p.key()),
                2 * i + 2,
                &sim.ledger.latency[p.index()],
            );
            s.width = 2;
            spectrum.push(s);
            let mut l = series(
                &format!("live {}", p.key()),
                2 * i + 3,
                &live.uncorrected_path[p.index()],
            );
            l.width = 2;
            spectrum.push(l);
        }
    }
    let steps = super::step_pairs::cells(&c.steps);
    let mut view = LevelView {
        steps,
        name: name.to_string(),
        heading: heading.to_string(),
        aligned: c.aligned.clone(),
        unmodeled: c.unmodeled.clone(),
        rows: Vec::new(),
        spread: Vec::new(),
        spectrum,
        folders: vec![folder.to_string()],
    };
    set_rows(&mut view, c);
    view
}

/// The table of `view` from `c` (a run, or repeated runs combined).
pub fn set_rows(view: &mut LevelView, c: &Comparison) {
    view.rows = (c.rows.iter())
        .map(|r| {
            let e = r
                .relative_error
                .map_or("n/a".to_string(), |e| format!("{:+.1} %", e * 100.0));
            (
                [
                    r.path.clone(),
                    r.metric.clone(),
                    format!("{:.3}", r.sim),
                    format!("{:.3}", r.live),
                    e,
                ],
                r.ok,
            )
        })
        .collect();
    view.spread = (c.rows.iter()).filter_map(super::repeats::cell).collect();
}

/// Another run at the level of `view` (`validate --repeat`): its spectra beside the first
/// run's, and its folder.
pub fn add_run(
    view: &mut LevelView,
    run: usize,
    sim: &RunResult,
    live: &LiveOutcome,
    folder: &str,
) {
    use crate::report::plots::spectrum::series;
    if run == 1 {
        for s in view.spectrum.iter_mut().take(2) {
            s.label = s.label.replacen(" (", ", run 1 (", 1);
        }
    }
    for (i, (who, h)) in [
        ("simulated", &sim.ledger.latency_all),
        ("live", &live.uncorrected),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = series(&format!("{who}, run {}", run + 1), 2 * run + i, h);
        s.width = 1;
        view.spectrum.push(s);
    }
    view.folders.push(folder.to_string());
}

/// The verdict line of a set of comparisons (one, or a ladder's levels): how many judged
/// figures fell outside the tolerance and the largest error; the tables (and a ladder's
/// "where the model holds") say which.
pub fn verdict(levels: &[&Comparison]) -> String {
    let judged: usize = levels
        .iter()
        .map(|c| c.rows.iter().filter(|r| r.ok.is_some()).count())
        .sum();
    let failed: Vec<(f64, &Row)> = levels
        .iter()
        .flat_map(|c| c.failures().into_iter().map(|r| (c.rate_per_s, r)))
        .collect();
    let worst = (failed.iter()).max_by(|a, b| a.1.error_size().total_cmp(&b.1.error_size()));
    let tol = levels.first().map_or(0.0, |c| c.tolerance * 100.0);
    match worst {
        None => format!("every judged figure ({judged}) within +-{tol:.0} %"),
        Some((rate, r)) => format!(
            "{} of {judged} judged figures outside +-{tol:.0} % (largest: {rate:.0} msg/s {} {} {})",
            failed.len(),
            r.path,
            r.metric,
            r.relative_error
                .map_or("n/a".to_string(), |e| format!("{:+.1} %", e * 100.0))
        ),
    }
}

/// The comparison as a table, with the verdict last.
pub fn render(c: &Comparison) -> String {
    let mut s =
        format!(
        "validate {}: {} users, {:.1} msg/s ({} arrivals) for {:.1} s (sim: {}; live: loopback)\n",
        c.scenario, c.users, c.rate_per_s, c.arrivals, c.duration_s,
        if c.loopback_network { "loopback links modeled" } else { "the scenario's network" },
    );
    if c.runs > 1 {
        let _ = writeln!(
            s,
            "  {} runs at this rate, each live run and a simulated copy priced from it: the medians of the figures and of the runs' errors; a figure holds when it held in every run",
            c.runs
        );
    }
    for n in &c.aligned {
        let _ = writeln!(s, "  aligned: {n}");
    }
    for n in &c.unmodeled {
        let _ = writeln!(s, "  not modeled: {n}");
    }
    let _ = writeln!(
        s,
        "{:<8} {:<16} {:>12} {:>12} {:>10}  verdict (tolerance {:.0} %)",
        "path",
        "metric",
        "sim",
        "live",
        "error",
        c.tolerance * 100.0
    );
    for r in &c.rows {
        let e = percent(r.relative_error);
        let verdict = super::repeats::cell(r).unwrap_or_else(|| {
            match r.ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "not judged (too few deliveries)",
            }
            .to_string()
        });
        let _ = writeln!(
            s,
            "{:<8} {:<16} {:>12.3} {:>12.3} {:>10}  {verdict}",
            r.path, r.metric, r.sim, r.live, e
        );
    }
    if !c.steps.is_empty() {
        let _ = writeln!(
            s,
            "step by step (one message in {}, from its send; sim / live):",
            crate::metrics::hops::EVERY
        );
        for line in super::step_pairs::lines(&c.steps) {
            let _ = writeln!(s, "  {line}");
        }
    }
    let failures = c.failures();
    match failures.first() {
        None => s.push_str("validate: PASSED: every judged figure within the tolerance\n"),
        Some(worst) => {
            let _ = writeln!(
                s,
                "validate: FAILED: {} of {} judged figures outside +-{:.0} % (largest: {} {} {})",
                failures.len(),
                c.rows.iter().filter(|r| r.ok.is_some()).count(),
                c.tolerance * 100.0,
                worst.path,
                worst.metric,
                percent(worst.relative_error),
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_is_judged_against_the_tolerance_only_over_enough_deliveries() {
        let ok = row("all", "p50_ms", (10.0, 10.9), (500, 500), 0.1);
        assert_eq!(ok.ok, Some(true));
        let off = row("all", "p50_ms", (10.0, 11.2), (500, 500), 0.1);
        assert_eq!(off.ok, Some(false));
        let few = row(
            "interop",
            "p99_ms",
            (10.0, 50.0),
            (500, SAMPLES_MIN - 1),
            0.1,
        );
        assert_eq!(few.ok, None, "too few deliveries on a side: not judged");
        let zero = row("all", "p50_ms", (0.0, 1.0), (500, 500), 0.1);
        assert_eq!(
            zero.ok,
            Some(false),
            "a model that says 0 against 1 ms is not within 10 %"
        );
        let c = Comparison {
            scenario: "x".into(),
            users: 1,
            rate_per_s: 1.0,
            duration_s: 1.0,
            arrivals: "poisson".into(),
            loopback_network: false,
            aligned: Vec::new(),
            unmodeled: vec!["the host".into()],
            tolerance: 0.1,
            passed: false,
            rows: vec![ok, off, few, zero],
            steps: Vec::new(),
            runs: 1,
        };
        let worst: Vec<&str> = c.failures().iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(worst.len(), 2);
        let text = render(&c);
        assert!(text.contains("\n  not modeled: the host\n"), "{text}");
        assert!(
            text.contains("validate: FAILED: 2 of 3 judged figures"),
            "{text}"
        );
        assert!(text.contains("not judged (too few deliveries)"));
        assert_eq!(
            verdict(&[&c]),
            "2 of 3 judged figures outside +-10 % (largest: 1 msg/s all p50_ms n/a)",
            "the model's 0 is the largest error there is"
        );
    }
}
