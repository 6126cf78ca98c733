//! `validate --model-host`: the simulated copy's server nodes on a host of the live servers'
//! threads and its devices on one of the load generator's (`[capacity] host` and
//! `generator`), each frame priced from what those threads spent in the live runs.

use super::align::aligned;
use super::options::LiveOptions;
use super::{LiveError, LiveReport};
use crate::scenario::{HostCapacity, Scenario};

/// Prices the host for `validate --model-host` after its live run (`report`): from the runs
/// in `others` (a ladder's probes, at rates from a few hundred messages a second to the
/// saturation) when there are any, else from two more runs, at half and twice the rate
/// ([`rate_run`]); see [`calibrate_host`].
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
    // Two runs at nearby loads (this one and one at half its rate) read and handle frames in
    // so alike a mix that their noise could outweigh it (two of three single-rate validates at
    // 20,000 msg/s fitted a negative read); twice the rate batches far more frames a read,
    // even past the saturation (the fit needs only what the threads did, not a steady run).
    let mut more = Vec::new();
    for factor in [0.5, 2.0] {
        let run = rate_run(s, hash, opts, factor, a.run.duration_ns)?;
        more.extend(run.as_ref().and_then(host_work));
    }
    let source = if more.is_empty() {
        "one mean price per frame from this run (no second rate to tell the reads' share)"
    } else {
        "fitted on this run and two at half and twice its rate (least squares over their threads' time running tasks, socket reads and frames)"
    };
    calibrate_host(a, report, &more, source, notes);
    Ok(())
}

/// Another point of the host's prices: the same inputs as `opts` at `factor` times its rate,
/// for `duration_ns` or 3 s, whichever is shorter, its drain bounded to as long. `None`
/// without a rate, or with the load generator's clients on the servers' threads (nothing to
/// model apart).
pub fn rate_run(
    s: &Scenario,
    hash: &str,
    opts: &LiveOptions,
    factor: f64,
    duration_ns: u64,
) -> Result<Option<LiveReport>, LiveError> {
    let (_, o, _) = aligned(s, opts);
    let Some(rate) = o.rate_per_s.filter(|_| o.generator_threads > 0) else {
        return Ok(None);
    };
    let window_ns = duration_ns.min(3_000_000_000);
    let other = LiveOptions {
        rate_per_s: Some(rate * factor),
        duration_ns: Some(window_ns),
        drain_max_ns: opts.drain_max_ns.min(window_ns),
        ..opts.clone()
    };
    let (ra, ro, _) = aligned(s, &other);
    Ok(Some(super::run::run_live(&ra, hash, &ro)?.report))
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
    let ((s_read, s_item), s_solved) = match fit(&runs(|w| w.servers)) {
        (_, false) if !others.is_empty() => (logic_and_reads(&this.servers, logic_s), false),
        solved => solved,
    };
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
    let unsolved = |who: &str, how: &str| {
        format!("the host: the runs could not tell the {who} socket read from its frames (their mix too alike for their noise, or a negative read): {how}; a ladder (--levels) fits over its probes from low load to saturation")
    };
    if !s_solved && !others.is_empty() {
        notes.push(unsolved(
            "servers'",
            "their frames priced at their nodes' own logic (measured) and the rest of the threads' time in this run spread over its socket reads",
        ));
    }
    if !g_solved && !others.is_empty() {
        notes.push(unsolved(
            "generator's",
            "one mean price per frame from this run, no read price: the model's queueing will not follow live's away from this load",
        ));
    }
}

/// The servers' prices when the runs cannot be fitted: a frame costs its node's logic alone
/// (each node measures it), and the rest of this run's busy time goes to its socket reads:
/// (read, item) in seconds. Better than one mean price per frame, which charges every frame
/// the reads that batching spares it (at 20,000 msg/s that model's p99 read 64 to 116 ms
/// against live's 1.0 to 1.4).
fn logic_and_reads(run: &Work, logic_s: f64) -> (f64, f64) {
    let item = logic_s / run.items.max(1.0);
    let read = (run.busy_s - logic_s).max(0.0) / run.reads.max(1.0);
    (read, item)
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

    /// Runs that cannot be told apart still price the servers' reads: the frames at their
    /// logic, the rest of the busy time on the reads.
    #[test]
    fn unfitted_servers_put_what_their_logic_leaves_on_the_reads() {
        let run = Work {
            threads: 1,
            reads: 10_000.0,
            items: 100_000.0,
            busy_s: 0.25,
        };
        // Logic 1 us a frame (0.1 s): the other 0.15 s over 10,000 reads, 15 us each.
        let (read, item) = logic_and_reads(&run, 0.1);
        assert!(
            (read - 15e-6).abs() < 1e-12 && (item - 1e-6).abs() < 1e-12,
            "{read} {item}"
        );
        // Logic measured above the busy time (clocks apart): no negative read.
        assert_eq!(logic_and_reads(&run, 0.3).0, 0.0);
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
