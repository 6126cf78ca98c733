//! The `interop-sim` command line: thin; every decision lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use interop_sim::report::perf::progress::Progress;
use interop_sim::report::perf::{Perf, Stopwatch};
use interop_sim::scenario::{self, Scenario};
use interop_sim::{report, sim};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The baseline scenario, built in so that `interop-sim run` works from any directory.
const BASELINE: &str = include_str!("../scenarios/baseline.toml");
const BASELINE_NAME: &str = "scenarios/baseline.toml";

const EXIT_CODES: &str = "Exit codes:\n  0  every expectation held\n  1  an expectation failed\n  2  invalid scenario or arguments\n  3  internal error (a bug: please report it with the seed)";

#[derive(Parser)]
#[command(name = "interop-sim", version, about = "Deterministic simulator and load tester for cross-app E2EE messaging under the EU DMA", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (the built-in baseline if no FILE) and write its results folder.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// Scenario file (TOML). Default: scenarios/baseline.toml.
        file: Option<PathBuf>,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Results folder. Default: results/<scenario name>/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the event trace (JSON lines) to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// With --trace: only the frames of this message id.
        #[arg(long, requires = "trace")]
        trace_msg: Option<u64>,
        /// Also write messages.csv: one row per message from the ledger.
        #[arg(long)]
        ledger: bool,
    },
    /// Validate a scenario and print it resolved (every default filled in) with its hash.
    #[command(after_help = EXIT_CODES)]
    Check { file: PathBuf },
    /// Run every point of a scenario's [sweep] grid (in parallel) and write sweep.csv,
    /// runs.json and a report.html with capacity curves.
    #[command(after_help = EXIT_CODES)]
    Sweep {
        file: PathBuf,
        /// Output folder. Default: results/<name>-sweep/ (with --shard: its shard-K-of-N/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads. Default: the number of cores. The output does not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Run only slice K of N (0 <= K < N) and write shard.json, for `merge`.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
    },
    /// Combine the shard folders of one sweep into the output of the unsharded sweep.
    #[command(after_help = EXIT_CODES)]
    Merge {
        /// Shard folders (each with a shard.json), or shard.json files.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare two results folders: overlaid latency spectra and a delta table of summary.json.
    #[command(after_help = EXIT_CODES)]
    Compare {
        run_a: PathBuf,
        run_b: PathBuf,
        /// Output folder. Default: results/compare/.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

mod commands;

/// What ended the command, mapped to the documented exit codes.
pub(crate) enum Outcome {
    Passed,
    Failed,
    Invalid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run {
        file: None,
        seed: None,
        out: None,
        trace: None,
        trace_msg: None,
        ledger: false,
    }) {
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            ledger,
        } => run(
            file.as_deref(),
            seed,
            out,
            trace.map(|t| (t, trace_msg)),
            report::RunOptions { ledger },
        ),
        Command::Check { file } => check(&file),
        Command::Sweep {
            file,
            out,
            threads,
            shard,
        } => commands::sweep(&file, out, threads, shard.as_deref()),
        Command::Merge { dirs, out } => commands::merge(&dirs, &out),
        Command::Compare { run_a, run_b, out } => commands::compare(&run_a, &run_b, out),
    };
    match result {
        Ok(Outcome::Passed) => ExitCode::from(0),
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Invalid) => ExitCode::from(2),
        Err(e) => {
            eprintln!("interop-sim: internal error: {e:#}");
            ExitCode::from(3)
        }
    }
}

pub(crate) fn load(file: Option<&Path>) -> Result<Scenario, Outcome> {
    let loaded = match file {
        Some(path) => scenario::load(path),
        None => scenario::parse(BASELINE, BASELINE_NAME),
    };
    loaded.map_err(|errors| {
        eprintln!("{errors}");
        Outcome::Invalid
    })
}

fn run(
    file: Option<&Path>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    trace: Option<(PathBuf, Option<u64>)>,
    opts: report::RunOptions,
) -> anyhow::Result<Outcome> {
    let mut s = match load(file) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    if let Some(seed) = seed {
        s.run.seed = seed;
    }
    let hash = scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(&s.run.name));
    let watch = Stopwatch::start();
    let progress = Progress::new(&format!("simulating {}", s.run.name), None);
    let filter = trace.as_ref().map(|(_, m)| {
        m.map_or(sim::TraceFilter::All, |m| {
            sim::TraceFilter::Msg(interop_sim::wire::MsgId(m))
        })
    });
    let result = sim::run_traced(&s, &hash, filter);
    if let Some((path, _)) = &trace {
        let mut text = result.trace.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing trace {}", path.display()))?;
    }
    progress.finish();
    let wall_s = watch.elapsed_s();
    report::write_run(&out, &s, &result, opts).context("writing results")?;
    Perf::new(
        wall_s,
        result.summary.events_processed,
        result.summary.end_time_s,
    )
    .write(&out)
    .with_context(|| format!("writing {}", out.join("perf.json").display()))?;
    print!(
        "{}",
        report::screen::render(&result.summary, &out.display().to_string())
    );
    Ok(if result.summary.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn check(file: &Path) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    print!("{}", scenario::to_toml(&s));
    println!("# scenario hash: {}", scenario::hash(&s));
    Ok(Outcome::Passed)
}
