//! `validate --levels`: a load ladder on this machine. It finds the rate at which the live
//! system stops keeping up (its saturation), then validates the simulated copy at each fraction
//! of that rate, so that a planner sees where the model holds and where it stops holding.
//!
//! A probe is a short live run of the validated system (the same aligned scenario, options and
//! arrivals as `validate`); it keeps up when the generator sent what it planned, dropped no
//! arrival for lateness, at least [`KEEP_UP`] of the messages it sent were shown by the end of
//! its sending window, and its p99 latency stayed within [`P99_MAX_SHARE`] of the window (a
//! queue that grows through the window shows as latency growing with it); a probe that failed on
//! its p99 alone runs once more, so that one stall does not pin the edge low. The search doubles
//! (or halves) from the starting rate until a probe on each side of the edge, then bisects
//! (geometric midpoints) [`BISECTIONS`] times; the highest rate that kept up must then keep up
//! [`CONFIRMATIONS`] times more in a row, else the search steps down a bisection step. Every
//! probe is kept in the result.

use super::align::aligned;
use super::host_model::{host_work, HostWork};
use super::options::LiveOptions;
use super::outcome::LiveOutcome;
use super::reach::{reach, Reach};
use super::run::run_live;
use super::validate::{validate, Comparison, Model};
use super::LiveError;
use crate::scenario::Scenario;
use crate::sim::RunResult;
use serde::Serialize;

/// Share of the messages sent that a probe must show within its window to keep up. Not much
/// less: at 95 % of the offered rate, a twentieth of every second's messages could pile up,
/// and the ladder's 0.9 level of a saturation found that way sat past the edge (p50 14 ms
/// against 0.3 ms at 0.6).
pub const KEEP_UP: f64 = 0.99;
/// Bound on a probe's p99 latency (from the actual send), as a share of its window: 30 ms of
/// 3 s. A system that keeps up delivers even its slowest percent in a small part of the window;
/// one whose backlog grows shows latencies that grow with the window, whatever the machine.
pub const P99_MAX_SHARE: f64 = 0.01;
/// Sending window of a probe.
pub const PROBE_NS: u64 = 3_000_000_000;
/// [`P99_MAX_SHARE`] of a probe's window, in milliseconds.
const P99_MAX_MS: f64 = P99_MAX_SHARE * PROBE_NS as f64 / 1e6;
/// Bound on a probe's drain: a saturated probe's backlog is not waited out.
const PROBE_DRAIN_NS: u64 = 3_000_000_000;
/// Bisection steps once the edge is bracketed within a factor 2: then within 2^(1/16), 4.4 %.
pub const BISECTIONS: u32 = 4;
/// Probes more at the rate found, each of which must keep up too. A search keeps the highest
/// rate that kept up once, and live's capacity moves between runs seconds apart: the luckiest
/// probe set the edge (a ladder whose probe kept up at 98,059 msg/s then ran its 90 % level,
/// 88,253 msg/s, three times with p50 2.0, 4.5 and 20 ms and p99 21 to 338 ms, where 60 % had
/// p50 0.64 to 0.74 ms). A rate that fails a confirmation is given up for the one a bisection
/// step below.
pub const CONFIRMATIONS: u32 = 2;
/// Steps down the confirmations may take before the search gives up on a steady edge.
const CONFIRM_STEPS_MAX: u32 = 8;
/// Rates the search stays within (messages per second).
pub const RATE_MIN: f64 = 10.0;
pub const RATE_MAX: f64 = 1.0e6;

#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub rate_per_s: f64,
    pub sent: u64,
    pub dropped_arrivals: u64,
    /// Messages shown by the end of the sending window.
    pub delivered: u64,
    pub delivered_per_s: f64,
    /// From the actual send, ms.
    pub p99_ms: f64,
    pub kept_up: bool,
    /// What its two runtimes did, to price the host from (`--model-host`).
    #[serde(skip)]
    pub work: Option<HostWork>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Saturation {
    /// The highest probed rate that kept up.
    pub rate_per_s: f64,
    pub rule: String,
    pub probes: Vec<Probe>,
}

/// The ladder's result: the saturation found and one comparison per level.
#[derive(Clone, Debug, Serialize)]
pub struct Ladder {
    pub saturation: Saturation,
    /// Per level: its fraction of the saturation, and the comparison at that rate.
    pub levels: Vec<(f64, Comparison)>,
    /// Per figure judged: up to which level the model held, and where it stopped.
    pub reach: Vec<Reach>,
    pub passed: bool,
}

/// One short live run at `rate`, run again once if only its p99 failed (see the module doc).
pub fn probe(s: &Scenario, hash: &str, opts: &LiveOptions, rate: f64) -> Result<Probe, LiveError> {
    let (first, judged) = probe_once(s, hash, opts, rate)?;
    if judged != Judged::OnlySlow {
        return Ok(first);
    }
    Ok(probe_once(s, hash, opts, rate)?.0)
}

/// One short live run at `rate`, and how it was judged.
fn probe_once(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    rate: f64,
) -> Result<(Probe, Judged), LiveError> {
    let o = LiveOptions {
        rate_per_s: Some(rate),
        duration_ns: Some(PROBE_NS),
        drain_max_ns: PROBE_DRAIN_NS,
        ..opts.clone()
    };
    let (a, o, _) = aligned(s, &o);
    let r = run_live(&a, hash, &o)?.report;
    let mut p = Probe {
        rate_per_s: rate,
        sent: r.sent,
        dropped_arrivals: r.dropped_arrivals,
        delivered: r.messages_delivered,
        delivered_per_s: r.messages_delivered_per_s,
        p99_ms: r.uncorrected.delivered_p99,
        kept_up: false,
        work: host_work(&r),
    };
    let judged = judge(&p, r.rate_reached);
    p.kept_up = judged == Judged::KeptUp;
    Ok((p, judged))
}

/// How a probe did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judged {
    KeptUp,
    /// Kept up in every respect but its p99.
    OnlySlow,
    /// Fell behind: the generator lagged or dropped arrivals, or the run showed too little.
    Behind,
}

/// A probe kept up when the generator sent all it planned (`rate_reached`) and dropped no
/// arrival, the run showed [`KEEP_UP`] of what was sent by the end of its window, and its p99
/// stayed within [`P99_MAX_SHARE`] of the window. Against what was sent, not the nominal rate:
/// Poisson arrivals put a 3 s window's count a few tenths of a percent either side of it.
fn judge(p: &Probe, rate_reached: bool) -> Judged {
    let kept_pace =
        rate_reached && p.dropped_arrivals == 0 && p.delivered as f64 >= KEEP_UP * p.sent as f64;
    match (kept_pace, p.p99_ms <= P99_MAX_MS) {
        (false, _) => Judged::Behind,
        (true, false) => Judged::OnlySlow,
        (true, true) => Judged::KeptUp,
    }
}

/// Finds the live saturation from `start` messages per second (see the module doc), calling
/// `progress` after each probe.
pub fn saturation(
    start: f64,
    mut probe: impl FnMut(f64) -> Result<Probe, LiveError>,
    mut progress: impl FnMut(&Probe),
) -> Result<Saturation, LiveError> {
    let mut probes = Vec::new();
    let mut run = |rate: f64, probes: &mut Vec<Probe>| -> Result<bool, LiveError> {
        let p = probe(rate)?;
        progress(&p);
        let ok = p.kept_up;
        probes.push(p);
        Ok(ok)
    };
    let start = start.clamp(RATE_MIN, RATE_MAX);
    let (mut lo, mut hi) = if run(start, &mut probes)? {
        let mut lo = start;
        loop {
            let next = lo * 2.0;
            if next > RATE_MAX {
                return Err(LiveError::NoSaturation(format!(
                    "the live system kept up at {lo:.0} msg/s and the search stops there: no saturation found below {RATE_MAX:.0} msg/s"
                )));
            }
            if !run(next, &mut probes)? {
                break (lo, next);
            }
            lo = next;
        }
    } else {
        let mut hi = start;
        loop {
            let next = hi / 2.0;
            if next < RATE_MIN {
                return Err(LiveError::NoSaturation(format!(
                    "the live system did not keep up even at {hi:.0} msg/s (each probe must show {:.0} % of the messages it sent within its {} s window, with a p99 within {:.0} ms): nothing to validate a ladder against",
                    KEEP_UP * 100.0,
                    PROBE_NS / 1_000_000_000,
                    P99_MAX_MS,
                )));
            }
            if run(next, &mut probes)? {
                break (next, hi);
            }
            hi = next;
        }
    };
    for _ in 0..BISECTIONS {
        let mid = (lo * hi).sqrt();
        if run(mid, &mut probes)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // The edge found must hold again, CONFIRMATIONS times; else one step down, and again.
    let (step, edge) = ((hi / lo).max(1.0 + 1e-9), lo);
    let mut steps = 0;
    'confirm: loop {
        for _ in 0..CONFIRMATIONS {
            if !run(lo, &mut probes)? {
                steps += 1;
                if steps > CONFIRM_STEPS_MAX || lo / step < RATE_MIN {
                    return Err(LiveError::NoSaturation(format!(
                        "the live system did not keep up in {CONFIRMATIONS} probes in a row at the edge the search found ({edge:.0} msg/s) nor at {} rates below it (down to {lo:.0} msg/s): its capacity moves too much between runs to validate a ladder against",
                        steps - 1
                    )));
                }
                lo /= step;
                continue 'confirm;
            }
        }
        break;
    }
    Ok(Saturation {
        rate_per_s: lo,
        rule: format!(
            "the highest rate at which a {} s live probe sent all it planned, dropped no arrival, showed at least {:.0} % of the messages it sent by the end of its window and kept its p99 within {:.0} ms (doubling to bracket the edge, then {BISECTIONS} geometric bisections), and then kept up in {CONFIRMATIONS} more probes in a row (a bisection step down when one did not)",
            PROBE_NS / 1_000_000_000,
            KEEP_UP * 100.0,
            P99_MAX_MS,
        ),
        probes,
    })
}

/// Finds the saturation, then validates `repeat` times at each of `fractions` of it and
/// combines each level's runs ([`super::repeats::combine`]); `level` gets each run's
/// comparison and both runs as they finish, with the run's index (to write them out: its
/// error, such as a folder that cannot be written, ends the ladder).
#[allow(clippy::too_many_arguments)]
pub fn ladder<E: From<LiveError>>(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    model: Model,
    tolerance: f64,
    (fractions, repeat): (&[f64], usize),
    mut progress: impl FnMut(&Probe),
    mut level: impl FnMut(f64, usize, &Comparison, &RunResult, &LiveOutcome, &Scenario) -> Result<(), E>,
) -> Result<Ladder, E> {
    let (_, start, _) = aligned(s, opts);
    let start = start.rate_per_s.unwrap_or(1_000.0);
    let sat = saturation(start, |r| probe(s, hash, opts, r), &mut progress)?;
    // The probes that kept up span the rates below the saturation: one fit over all of them
    // prices the host for every level (`--model-host`).
    let probed: Vec<HostWork> = (sat.probes.iter())
        .filter(|p| p.kept_up)
        .filter_map(|p| p.work)
        .collect();
    let mut levels = Vec::new();
    for &f in fractions {
        let o = LiveOptions {
            rate_per_s: Some(f * sat.rate_per_s),
            ..opts.clone()
        };
        let mut runs = Vec::new();
        for run in 0..repeat.max(1) {
            let (cmp, sim, live, ran) = validate(s, hash, &o, model, tolerance, &probed)?;
            level(f, run, &cmp, &sim, &live, &ran)?;
            runs.push(cmp);
        }
        let cmp = match runs.len() {
            1 => runs.remove(0),
            _ => super::repeats::combine(&runs),
        };
        levels.push((f, cmp));
    }
    Ok(Ladder {
        passed: levels.iter().all(|(_, c)| c.passed),
        saturation: sat,
        reach: reach(&levels),
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system that keeps up below `edge` msg/s.
    fn fake(edge: f64) -> impl FnMut(f64) -> Result<Probe, LiveError> {
        move |rate| {
            Ok(Probe {
                rate_per_s: rate,
                sent: rate as u64 * 3,
                dropped_arrivals: 0,
                delivered: (rate.min(edge) * 3.0) as u64,
                delivered_per_s: rate.min(edge),
                p99_ms: 1.0,
                kept_up: rate <= edge,
                work: None,
            })
        }
    }

    #[test]
    fn the_search_brackets_the_edge_from_either_side_and_lands_within_5_percent_below_it() {
        for (start, edge) in [(1_000.0, 7_300.0), (1_000.0, 140.0), (500.0, 500.0)] {
            let mut seen = 0;
            let s = saturation(start, fake(edge), |_| seen += 1).expect("found");
            assert!(
                s.rate_per_s <= edge && s.rate_per_s >= edge * 0.95,
                "start {start}, edge {edge}: found {}",
                s.rate_per_s
            );
            assert_eq!(seen, s.probes.len());
            assert!(s.probes.iter().any(|p| !p.kept_up), "the edge was crossed");
        }
    }

    /// The ladder's 0.9 level is only an operating point if the saturation is one: a probe
    /// that delivers 96 % of what it sent, or all of it with a p99 that grew to a fifteenth of
    /// the window, is past the edge (the latter is probed again: a stall or a backlog?).
    #[test]
    fn a_probe_keeps_up_only_with_no_backlog_building() {
        // 300,300 sent in the 3 s window: Poisson arrivals above the nominal 100,000/s.
        let p = |delivered_per_s: f64, p99_ms: f64, dropped_arrivals: u64| Probe {
            rate_per_s: 100_000.0,
            sent: 300_300,
            dropped_arrivals,
            delivered: (delivered_per_s * 3.0) as u64,
            delivered_per_s,
            p99_ms,
            kept_up: false,
            work: None,
        };
        use Judged::*;
        let cases = [
            (100_050.0, 1.8, 0, true, KeptUp, "a steady system"),
            (99_100.0, 29.9, 0, true, KeptUp, "within both bounds"),
            (
                99_050.0,
                1.8,
                0,
                true,
                Behind,
                "above the nominal rate's 99 %, below 99 % of what was sent",
            ),
            (96_000.0, 1.8, 0, true, Behind, "4 % piles up"),
            (100_050.0, 200.0, 0, true, OnlySlow, "latency grew"),
            (96_000.0, 200.0, 0, true, Behind, "both"),
            (100_050.0, 1.8, 1, true, Behind, "an arrival dropped"),
            (100_050.0, 1.8, 0, false, Behind, "the generator lagged"),
        ];
        for (delivered_per_s, p99_ms, dropped, rate_reached, judged, why) in cases {
            let probe = p(delivered_per_s, p99_ms, dropped);
            assert_eq!(judge(&probe, rate_reached), judged, "{why}");
        }
    }

    /// A system whose capacity moves between runs: each rate up to 8,000 msg/s keeps up the
    /// first time it is probed (a lucky run), and after that only up to 7,000. The search
    /// alone would keep its luckiest probe; the confirmations step down to a rate that holds.
    #[test]
    fn the_edge_found_must_hold_again_or_the_search_steps_down() {
        let mut seen: Vec<f64> = Vec::new();
        let lucky = |rate: f64| {
            let first = !seen.iter().any(|r| (r - rate).abs() < 1e-6);
            seen.push(rate);
            let kept_up = rate <= 7_000.0 || (first && rate <= 8_000.0);
            let mut p = fake(f64::INFINITY)(rate)?;
            p.kept_up = kept_up;
            Ok(p)
        };
        let s = saturation(1_000.0, lucky, |_| {}).expect("found");
        assert!(
            s.rate_per_s <= 7_000.0 && s.rate_per_s >= 7_000.0 / 1.1,
            "found {}",
            s.rate_per_s
        );
        let at = |r: f64| {
            s.probes
                .iter()
                .filter(|p| (p.rate_per_s - r).abs() < 1e-6)
                .count()
        };
        assert!(at(s.rate_per_s) >= CONFIRMATIONS as usize, "{:?}", s.probes);
        assert!(
            at(8_000.0) >= 2,
            "the lucky edge was probed again: {:?}",
            s.probes
        );
        // A steady system: the edge is confirmed at once, where the search put it.
        let steady = saturation(1_000.0, fake(7_300.0), |_| {}).expect("found");
        assert!(steady.rate_per_s <= 7_300.0 && steady.rate_per_s >= 7_300.0 * 0.95);
        // One that never holds twice is an error, not a number.
        let mut flip = false;
        let never_twice = |rate: f64| {
            flip = !flip;
            let mut p = fake(f64::INFINITY)(rate)?;
            p.kept_up = flip;
            Ok(p)
        };
        let err = saturation(1_000.0, never_twice, |_| {}).unwrap_err();
        assert!(err.to_string().contains("moves too much"), "{err}");
    }

    #[test]
    fn a_system_that_never_keeps_up_or_never_saturates_is_an_error_not_a_number() {
        let never = saturation(1_000.0, fake(1.0), |_| {}).unwrap_err();
        assert!(
            never.to_string().contains("did not keep up even at"),
            "{never}"
        );
        let always = saturation(1_000.0, fake(f64::INFINITY), |_| {}).unwrap_err();
        assert!(
            always.to_string().contains("no saturation found"),
            "{always}"
        );
    }
}
