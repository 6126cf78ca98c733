//! `interop-sim plan FILE`: the smallest capacity that meets the scenario's `[plan]` service
//! levels (the solver is `interop_sim::planner`), written to plan.json, plan.csv and plan.html.

use super::scenario_args::ScenarioArgs;
use super::{load_with, report_bug, Outcome};
use anyhow::Context;
use clap::Subcommand;
use interop_sim::planner::store::{RunStore, StoreError};
use interop_sim::planner::{self, output, PlanError};
use interop_sim::report::perf::progress::Progress;
use interop_sim::report::perf::Stopwatch;
use interop_sim::sim::bug::Bug;
use interop_sim::sweep::plan::Shard;
use std::path::{Path, PathBuf};

/// The plan subcommand (an enum of one, so that main.rs stays the command list).
#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Find the smallest capacity (cores, queue bounds, rate limits) that meets the
    /// scenario's [plan] service levels with the stated confidence, at the stated load;
    /// write plan.json, plan.csv and plan.html. Exit 1 when even the ranges' maximum fails.
    #[command(after_help = super::help::PLAN)]
    Plan {
        file: PathBuf,
        /// Output folder. Default: results/<name>-plan/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads for a point's seeds. Default: the number of cores. The answer does
        /// not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Run 1/N of the population against 1/N of the capacity and answer for the whole
        /// (overrides [plan] slice).
        #[arg(long, value_name = "1/N")]
        slice: Option<String>,
        /// A folder for finished runs: each run is recorded there as it ends, and a run
        /// recorded there is read instead of run, so a plan that stopped picks up where it
        /// was. Shards share it.
        #[arg(long, value_name = "DIR")]
        runs: Option<PathBuf>,
        /// One of N processes (0 <= K < N, on any machines) solving this plan together over
        /// the --runs folder, which they must all see: each takes its share of every point's
        /// runs (and any no other has taken), and each writes the whole plan, the same as one
        /// process would.
        #[arg(long, value_name = "K/N", requires = "runs")]
        shard: Option<String>,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
}

/// `1/N` with N from 1 to a million.
fn parse_slice(given: &str) -> Option<u32> {
    let n: u64 = given.strip_prefix("1/")?.parse().ok()?;
    (1..=interop_sim::scenario::SLICE_MAX)
        .contains(&n)
        .then_some(n as u32)
}

pub fn run(cmd: PlanCommand) -> anyhow::Result<Outcome> {
    let PlanCommand::Plan {
        file,
        out,
        threads,
        slice,
        runs,
        shard,
        scenario,
    } = cmd;
    let shared = Shared {
        runs,
        shard: shard.as_deref(),
    };
    plan(&file, out, threads, slice.as_deref(), shared, &scenario)
}

/// What a plan shares with other processes: the folder of finished runs and its shard.
struct Shared<'a> {
    runs: Option<PathBuf>,
    shard: Option<&'a str>,
}

fn plan(
    file: &Path,
    out: Option<PathBuf>,
    threads: Option<usize>,
    slice: Option<&str>,
    shared: Shared<'_>,
    args: &ScenarioArgs,
) -> anyhow::Result<Outcome> {
    let shard = match shared.shard.map(str::parse::<Shard>).transpose() {
        Ok(sh) => sh.map_or((0, 1), |sh| (sh.index, sh.count)),
        Err(e) => {
            eprintln!("interop-sim: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let mut s = match load_with(Some(file), &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let Some(p) = s.plan.as_mut() else {
        eprintln!("interop-sim: {}: {}", file.display(), PlanError::NoPlan);
        return Ok(Outcome::Invalid);
    };
    if let Some(given) = slice {
        let Some(n) = parse_slice(given) else {
            eprintln!(
                "interop-sim: --slice {given}: expected 1/N with N from 1 to 1000000, like 1/1000"
            );
            return Ok(Outcome::Invalid);
        };
        p.slice = n;
    }
    let p = s.plan.as_ref().expect("checked above");
    // The largest point (every knob at its maximum, at the plan's load) within the budget.
    let most: Vec<f64> = p.solve.iter().map(|k| k.max).collect();
    let label = format!("{} (the plan's largest point)", file.display());
    if let Err(o) = args.within_budget(&planner::scenario_at(&s, p, &most), &label) {
        return Ok(o);
    }
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let store = match shared.runs.as_deref().map(RunStore::open).transpose() {
        Ok(store) => store,
        Err(e @ StoreError::Io { .. }) => {
            return Err(anyhow::Error::new(e).context("--runs: cannot make the folder"))
        }
        Err(e) => {
            eprintln!("interop-sim: --runs: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let workers = planner::Workers {
        threads,
        store: store.as_ref(),
        shard,
        wait_note: &|note| eprintln!("plan: {note}"),
    };
    let watch = Stopwatch::start();
    let total = planner::estimated_runs(p);
    let progress = Progress::new(&format!("plan {} (about)", s.run.name), Some(total));
    let result = planner::solve_with(&s, workers, &|n| {
        for _ in 0..n {
            progress.inc();
        }
    });
    progress.finish();
    let r = match result {
        Ok(r) => r,
        Err(PlanError::Bug { seed, message }) => {
            return Ok(report_bug(
                &Bug { seed, message },
                &file.display().to_string(),
            ))
        }
        Err(PlanError::Store(e)) => {
            return match e {
                // The folder itself failed (full, gone, no permission): exit 4.
                StoreError::Io { .. } => Err(anyhow::Error::new(e).context(
                    "the runs folder (the runs recorded so far are kept: once it works again, run the same command to go on)",
                )),
                // A record that is not one: bad input, named.
                _ => {
                    eprintln!("interop-sim: {e}");
                    eprintln!("interop-sim: the other runs recorded so far are kept: once it is removed, run the same command to go on");
                    Ok(Outcome::Invalid)
                }
            };
        }
        Err(e @ PlanError::NoPlan) => return Err(e.into()),
    };
    let dir = out.unwrap_or_else(|| Path::new("results").join(format!("{}-plan", s.run.name)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    output::write(&dir, &r, p, &s.run.name).context("writing the plan")?;
    println!("{}", output::sentence(&r, p));
    for n in &r.notes {
        println!("note: {n}");
    }
    let read = match (&store, shared.runs.as_deref()) {
        (Some(store), Some(d)) => format!(
            " ({} read from {}{}{})",
            store.read_count(),
            d.display(),
            match store.other_build_count() {
                0 => String::new(),
                n => format!(", {n} recorded by another build run again"),
            },
            shared
                .shard
                .map_or(String::new(), |sh| format!(", shard {sh}"))
        ),
        _ => String::new(),
    };
    println!(
        "{} runs{read} in {:.1}s on {threads} threads\nresults in {}",
        r.runs,
        watch.elapsed_s(),
        dir.display()
    );
    Ok(if r.met {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
