//! The `interop-sim` command line: thin; every decision lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use interop_sim::report::perf::{Perf, Stopwatch};
use interop_sim::scenario::{self, Scenario};
use interop_sim::{report, shrink, sim};
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
        /// Run many seeds (e.g. 1..200, inclusive) and list the failing ones with the command
        /// that replays each; writes no results folder.
        #[arg(long, conflicts_with_all = ["seed", "trace"])]
        seeds: Option<String>,
    },
    /// Shrink a failing run: remove faults, users and time while the same expectation still
    /// fails; write the minimal scenario and print its replay command.
    #[command(after_help = EXIT_CODES)]
    Shrink {
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the shrunk scenario. Default: results/<name>/shrunk.toml.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve CONFORMANCE.md's JSON-lines peer protocol on stdin/stdout: one Signal device
    /// (libsignal v3 wire format) that any other implementation can hold a conversation with.
    Peer,
    #[command(flatten)]
    Live(interop_sim::live::cli::LiveCommand),
    /// Validate a scenario and print it resolved (every default filled in) with its hash.
    #[command(after_help = EXIT_CODES)]
    Check { file: PathBuf },
}

/// What ended the command, mapped to the documented exit codes.
enum Outcome {
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
        seeds: None,
    }) {
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            seeds: Some(range),
        } => {
            let _ = (seed, out, trace, trace_msg);
            run_seeds(file.as_deref(), &range)
        }
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            seeds: None,
        } => run(file.as_deref(), seed, out, trace.map(|t| (t, trace_msg))),
        Command::Shrink { file, seed, out } => shrink(&file, seed, out),
        Command::Peer => peer(),
        Command::Check { file } => check(&file),
        Command::Live(cmd) => live(cmd),
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

fn load(file: Option<&Path>) -> Result<Scenario, Outcome> {
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
    let wall_s = watch.elapsed_s();
    report::write_results(&out, &result).context("writing results")?;
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

fn run_seeds(file: Option<&Path>, range: &str) -> anyhow::Result<Outcome> {
    let s = match load(file) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
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
    let failing: Vec<_> = results.iter().filter(|r| !r.passed).collect();
    for r in &failing {
        println!("seed {} FAILED: {}", r.seed, r.failures.join("; "));
        println!("    {}", r.liveness);
        println!("    replay: interop-sim run {file_arg} --seed {}", r.seed);
        println!(
            "    shrink: interop-sim shrink {file_arg} --seed {}",
            r.seed
        );
    }
    println!(
        "{} of {} seeds ({first}..{last}) passed",
        results.len() - failing.len(),
        results.len()
    );
    Ok(if failing.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn shrink(file: &Path, seed: u64, out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let mut s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    s.run.seed = seed;
    let shrunk = match shrink::shrink(&s, sim::RunOptions::default()) {
        Ok(sh) => sh,
        Err(e) => {
            eprintln!("interop-sim shrink: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let out = out.unwrap_or_else(|| Path::new("results").join(&s.run.name).join("shrunk.toml"));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, shrink::render(&shrunk))
        .with_context(|| format!("writing {}", out.display()))?;
    let users: u64 = shrunk
        .scenario
        .providers
        .iter()
        .map(|p| p.users as u64)
        .sum();
    println!(
        "shrunk in {} runs: {} -> {} faults, {} -> {} users; still fails: {}",
        shrunk.runs,
        shrunk.faults_before,
        shrunk.scenario.faults.len(),
        shrunk.users_before,
        users,
        shrunk.signature.join(", ")
    );
    println!(
        "wrote {}
replay: interop-sim run {} --seed {seed}",
        out.display(),
        out.display()
    );
    Ok(Outcome::Failed)
}

fn peer() -> anyhow::Result<Outcome> {
    let stdin = std::io::stdin();
    interop_sim::e2ee::peer::serve(stdin.lock(), std::io::stdout().lock())
        .context("peer: stdin/stdout")?;
    Ok(Outcome::Passed)
}

fn live(cmd: interop_sim::live::cli::LiveCommand) -> anyhow::Result<Outcome> {
    use interop_sim::live::cli::CliOutcome;
    Ok(
        match interop_sim::live::cli::run(cmd, &|file| load(file).ok())? {
            CliOutcome::Passed => Outcome::Passed,
            CliOutcome::Failed => Outcome::Failed,
            CliOutcome::Invalid => Outcome::Invalid,
        },
    )
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
