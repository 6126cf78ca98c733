//! `interop-sim run FILE --seeds A..B`: many seeds of one scenario, the failing ones listed with
//! the commands that replay and shrink each; a seed whose run panicked is a bug (exit 3).

use super::scenario_args::ScenarioArgs;
use super::{load_with, report_bug, Outcome, BASELINE_NAME};
use interop_sim::{shrink, sim};
use std::path::Path;

pub fn run_seeds(file: Option<&Path>, range: &str, args: &ScenarioArgs) -> anyhow::Result<Outcome> {
    let s = match load_with(file, &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let shown = file.map_or(BASELINE_NAME.to_string(), |f| f.display().to_string());
    if let Err(o) = args.within_budget(&s, &shown) {
        return Ok(o);
    }
    let range = match shrink::seeds::parse_range(range) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("interop-sim: --seeds: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (first, last) = (*range.start(), *range.end());
    let results = shrink::seeds::run_seeds(&s, range, threads, sim::RunOptions::default());
    let file_arg = file.map_or(BASELINE_NAME.to_string(), |f| f.display().to_string());
    // The replay runs what ran: the file, and the design when the command line chose it.
    let design_arg = args
        .design
        .map_or(String::new(), |d| format!(" --design {}", d.key()));
    let failing: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for r in &failing {
        if let Some(bug) = &r.bug {
            outln!("seed {} PANICKED: {}", r.seed, bug.message);
            outln!(
                "    replay: interop-sim run {file_arg}{design_arg} --seed {}",
                r.seed
            );
            continue;
        }
        outln!("seed {} FAILED: {}", r.seed, r.failures.join("; "));
        outln!("    {}", r.liveness);
        outln!(
            "    replay: interop-sim run {file_arg}{design_arg} --seed {}",
            r.seed
        );
        match args.design {
            None => outln!(
                "    shrink: interop-sim shrink {file_arg} --seed {}",
                r.seed
            ),
            // `shrink` reads the design from the file.
            Some(d) => outln!(
                "    shrink: write [topology] design = \"{}\" into {file_arg}, then interop-sim shrink {file_arg} --seed {}",
                d.key(),
                r.seed
            ),
        }
    }
    outln!(
        "{} of {} seeds ({first}..{last}) passed",
        results.len() - failing.len(),
        results.len()
    );
    let bugs: Vec<_> = failing.iter().filter_map(|r| r.bug.as_ref()).collect();
    for bug in &bugs {
        report_bug(bug, &file_arg);
    }
    Ok(if !bugs.is_empty() {
        Outcome::Bug
    } else if failing.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
