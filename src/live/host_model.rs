//! `validate --model-host`: the simulated copy's server nodes on a host of the live servers'
//! threads and its devices on one of the load generator's (`[capacity] host` and
//! `generator`), each frame priced from what those threads spent in the live runs.

use super::align::aligned;
use super::options::LiveOptions;
use super::{LiveError, LiveReport};
use crate::scenario::{HostCapacity, Scenario};

/// Prices the host for `validate --model-host` after its live run (`report`): from the runs
/// in `others` (a ladder's probes, at rates from a few hundred messages a second to the
/// saturation) when there are any, else from a second run at half the rate
/// ([`half_rate_run`]); see [`calibrate_host`].
pub fn model_host(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    a: &mut Scenario,
    report: &LiveReport,
    others: &[HostWork],
    notes: &mut Vec<String>,
) -> Result<(), LiveError> {
    if !others.is_empty() {
        let source = format!(
            "fitted over this run and the ladder's {} probes that kept up (least squares: their threads' time running tasks, socket reads and frames)",
            others.len()
        );
        calibrate_host(a, report, others, &source, notes);
        return Ok(());
    }
    let half = half_rate_run(s, hash, opts, a.run.duration_ns)?;
    let half: Vec<HostWork> = half.as_ref().and_then(host_work).into_iter().collect();
    let source = if half.is_empty() {
        "one mean price per frame from this run (no second rate to tell the reads' share)"
    } else {
        "fitted on this run and one at half the rate (their threads' time running tasks, socket reads and frames: two points, solved exactly)"
    };
    calibrate_host(a, report, &half, source, notes);
    Ok(())
}

/// The second point of the host's prices: the same inputs as `opts` at half its rate, for
/// `duration_ns` or 3 s, whichever is shorter. `None` without a rate, or with the load
/// generator's clients on the servers' threads (nothing to model apart).
pub fn half_rate_run(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    duration_ns: u64,
) -> Result<Option<LiveReport>, LiveError> {
    let (_, o, _) = aligned(s, opts);
    let Some(rate) = o.rate_per_s.filter(|_| o.generator_threads > 0) else {
        return Ok(None);
    };
    let half = LiveOptions {
        rate_per_s: Some(rate / 2.0),
        duration_ns: Some(duration_ns.min(3_000_000_000)),
        ..opts.clone()
    };
    let (ha, ho, _) = aligned(s, &half);
    Ok(Some(super::run::run_live(&ha, hash, &ho)?.report))
}

/// One run's work at a host: its threads, socket reads that found frames, items and time running
/// them.
#[derive(Clone, Copy, Debug)]
struct Work {
    threads: usize,
    reads: f64,
    items: f64,
    busy_s: f64,
}

/// What one live run's two runtimes did: the servers' threads and the load generator's.
#[derive(Clone, Copy, Debug)]
pub struct HostWork {
    servers: Work,
    generator: Work,
}

/// Both runtimes' work in `r`; `None` without the generator on threads of its own.
pub fn host_work(r: &LiveReport) -> Option<HostWork> {
    let (s, g) = (r.servers_runtime?, r.generator_runtime?);
    Some(HostWork {
        servers: Work {
            threads: s.threads,
            // As the generator's below: the servers' loop pays for each socket read, each
            // connection read once a round (`HostCores::read`); parks would
            // undercount a busy loop's rounds.
            reads: r.node_costs.values().map(|c| c.reads as f64).sum(),
            items: r
                .node_costs
                .values()
                .map(|c| (c.message_frames + c.other_frames) as f64)
                .sum(),
            busy_s: s.busy_s,
        },
        generator: Work {
            threads: g.threads,
            // The generator's loop pays for each socket read: a round reads each of its few
            // connections once, however many frames came (the simulated copy's `per_wake` on
            // the generator, see `HostCores::serve_read`). Parks would undercount its rounds:
            // a busy loop goes round without parking.
            reads: r.generator_reads_in as f64,
            // Its items: each frame it read and each message it sent (the simulated copy puts
            // both on the generator's cores; the writes they cause are part of them).
            items: (r.generator_frames_in + r.sent) as f64,
            busy_s: g.busy_s,
        },
    })
}

/// The read and item costs (s) that best explain the runs' busy time (busy = reads x read +
/// items x item, least squares: two runs are solved exactly), and whether they could be told
/// apart; when not (one run, the same mix in all, or a negative solution: two runs at nearby
/// loads whose noise outweighs the difference in their mix), the first run's mean item cost
/// with no read cost, and `false`.
fn fit(runs: &[Work]) -> ((f64, f64), bool) {
    let Some(first) = runs.first() else {
        return ((0.0, 0.0), false);
    };
    let mean = ((0.0, first.busy_s / first.items.max(1.0)), false);
    let (mut ww, mut wi, mut ii, mut wb, mut ib) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for r in runs {
        ww += r.reads * r.reads;
        wi += r.reads * r.items;
        ii += r.items * r.items;
        wb += r.reads * r.busy_s;
        ib += r.items * r.busy_s;
    }
    let det = ww * ii - wi * wi;
    if det.abs() < 1e-9 * (ww * ii).max(1.0) {
        return mean;
    }
    let read = (wb * ii - ib * wi) / det;
    let item = (ib * ww - wb * wi) / det;
    if read < 0.0 || item <= 0.0 {
        return mean;
    }
    ((read, item), true)
}

/// Puts the simulated copy's server nodes on a host of the live servers' threads and its
/// devices on one of the load generator's (`[capacity] host` and `generator`): every frame
/// holds a core for its price, and on a one-core loop the first frame of a round from each
/// connection pays the socket read that brought it (`per_wake`). The two prices come from the
/// live runs' threads: their time running tasks against how many socket reads found frames and
/// how many frames they handled, fitted over this run (`report`) and `others` (without them,
/// one mean price per frame; `source` says which for the note). A live server's work per frame
/// falls as load rises because frames that come together share a read; one run cannot tell
/// the read's share from the frame's.
pub fn calibrate_host(
    a: &mut Scenario,
    report: &LiveReport,
    others: &[HostWork],
    source: &str,
    notes: &mut Vec<String>,
) {
    let Some(this) = host_work(report) else {
        notes.push(
            "the host: not modeled (it needs the load generator on threads of its own, --generator-threads, and the servers in this process)".into(),
        );
        return;
    };
    let logic_s: f64 = report
        .node_costs
        .values()
        .map(|c| c.busy_ns as f64 / 1e9)
        .sum();
    let runs = |f: fn(&HostWork) -> Work| -> Vec<Work> {
        std::iter::once(&this).chain(others).map(f).collect()
    };
    let ((s_read, s_item), s_solved) = fit(&runs(|w| w.servers));
    let ((g_read, g_item), g_solved) = fit(&runs(|w| w.generator));
    let ns = |s: f64| (s * 1e9).round() as u64;
    let host = HostCapacity {
        cores: this.servers.threads.max(1) as u32,
        // The nodes' own logic is priced apart (`per_message`).
        per_frame_ns: ns((s_item - logic_s / this.servers.items.max(1.0)).max(0.0)),
        per_wake_ns: ns(s_read),
    };
    let gen = HostCapacity {
        cores: this.generator.threads.max(1) as u32,
        per_frame_ns: ns(g_item),
        per_wake_ns: ns(g_read),
    };
    a.capacity.host = Some(host);
    a.capacity.generator = Some(gen);
    let us = |ns: u64| ns as f64 / 1e3;
    notes.push(format!(
        "the host: the server nodes on {} core{} (the servers' threads), each frame {:.2} us beside its node's logic and each socket read {:.1} us; the devices on {} core{} (the load generator's), each frame read or message sent {:.2} us and each socket read {:.1} us; {source}",
        host.cores,
        if host.cores == 1 { "" } else { "s" },
        us(host.per_frame_ns),
        us(host.per_wake_ns),
        gen.cores,
        if gen.cores == 1 { "" } else { "s" },
        us(gen.per_frame_ns),
        us(gen.per_wake_ns),
    ));
    let unsolved: Vec<&str> = [("the servers'", s_solved), ("the generator's", g_solved)]
        .into_iter()
        .filter(|(_, solved)| !solved && !others.is_empty())
        .map(|(who, _)| who)
        .collect();
    if !unsolved.is_empty() {
        notes.push(format!(
            "the host: the runs could not tell {} socket read from its frames (their mix too alike for their noise, or a negative read): one mean price per frame from this run, no read price; the model's queueing will not follow live's away from this load (a ladder, --levels, fits over its probes from low load to saturation)",
            unsolved.join(" and ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_separate_the_read_from_the_item_and_one_run_gives_a_mean() {
        // 20 us a read, 2 us an item: a run of few reads per item and one of many.
        let busy = |reads: f64, items: f64| reads * 20e-6 + items * 2e-6;
        let a = Work {
            threads: 1,
            reads: 10_000.0,
            items: 1_000_000.0,
            busy_s: busy(10_000.0, 1_000_000.0),
        };
        let b = Work {
            threads: 1,
            reads: 90_000.0,
            items: 300_000.0,
            busy_s: busy(90_000.0, 300_000.0),
        };
        let ((read, item), solved) = fit(&[a, b]);
        assert!(solved);
        assert!(
            (read - 20e-6).abs() < 1e-12 && (item - 2e-6).abs() < 1e-12,
            "{read} {item}"
        );
        assert_eq!(fit(&[a]), ((0.0, a.busy_s / a.items), false));
        // The same mix twice cannot be told apart; a negative read is refused.
        let twice = Work {
            threads: 1,
            busy_s: a.busy_s * 2.0,
            reads: a.reads * 2.0,
            items: a.items * 2.0,
        };
        assert_eq!(fit(&[a, twice]), ((0.0, a.busy_s / a.items), false));
        let odd = Work { busy_s: 0.01, ..b };
        assert_eq!(fit(&[a, odd]), ((0.0, a.busy_s / a.items), false));
    }

    /// Many runs whose busy time is off the line by noise that cancels: least squares finds
    /// the line; one run far off moves it less than a two-point solve through that run would.
    #[test]
    fn many_runs_fit_the_line_through_their_noise() {
        let run = |reads: f64, items: f64, noise: f64| Work {
            threads: 1,
            reads,
            items,
            busy_s: (reads * 20e-6 + items * 2e-6) * (1.0 + noise),
        };
        let runs = [
            run(90_000.0, 300_000.0, 0.05),
            run(60_000.0, 600_000.0, -0.05),
            run(30_000.0, 900_000.0, 0.05),
            run(10_000.0, 1_200_000.0, -0.05),
            run(50_000.0, 700_000.0, 0.0),
        ];
        let ((read, item), _) = fit(&runs);
        assert!((read - 20e-6).abs() < 2e-6, "read {read}");
        assert!((item - 2e-6).abs() < 0.2e-6, "item {item}");
        // The two-point solve through the first two is further from the line.
        let ((w2, _), _) = fit(&runs[..2]);
        assert!((w2 - 20e-6).abs() > (read - 20e-6).abs(), "{w2} {read}");
    }
}
