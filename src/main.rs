//! The `interop-sim` command line: its arguments and exit codes; each command is a file of
//! `cli/`, and every decision lives in the library.

use clap::{Parser, Subcommand};
use cli::{help, Outcome};
use interop_sim::report;
use rustfs_mimalloc::MiMalloc;
use rustfs_mimalloc_sys::mi_option_t;
use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

/// mimalloc instead of glibc's malloc, for every command: a simulated run allocates and frees
/// small envelopes and buffers at millions per second, and glibc's consolidation and chunk
/// unlinking cost about 7 % of a 1 M-user run. Allocation order never reaches the results (no
/// address is observed).
#[global_allocator]
static ALLOC: MiMalloc = MiMalloc;

/// Keeps freed memory instead of returning it to the OS after a second: a run frees and
/// reallocates hundreds of MB a second, and purged pages come back zeroed by the kernel (sys
/// time of scenarios/media-heavy.toml: 1.2 s -> 0.7 s, user+sys 4 % less; of a 1 M-user, 90 s
/// run: 1.0 s -> 0.6 s). A run needs its memory until it exits anyway; peak RSS grows (by
/// about 3 % at 1 M users, a quarter for media-heavy's 350 MB). Not for `serve`, which runs for
/// days and must give back what closed connections held.
fn tune_allocator() {
    // SAFETY: mimalloc's option words are not atomic, so an option may be set only while no
    // other thread uses the allocator: this runs in `main` right after parsing the arguments,
    // before any thread exists. The value (never purge) keeps every allocation contract.
    unsafe { MiMalloc::option_set(mi_option_t::mi_option_purge_delay, -1) }
}

/// Gives the memory the allocator holds free back to the operating system at once: `serve`
/// calls it on each worker thread after connections close (it collects the calling thread's
/// heap).
fn release_memory() {
    MiMalloc::collect(true)
}

#[derive(Parser)]
#[command(name = "interop-sim", version, about = "Deterministic simulator and load tester for cross-app E2EE messaging under the EU DMA", after_help = help::TOP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (the built-in baseline if no FILE) and write its results folder.
    #[command(after_help = help::RUN)]
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
        /// Run many seeds (e.g. 1..200, inclusive) and list the failing ones with the command
        /// that replays each; writes no results folder.
        #[arg(long, conflicts_with_all = ["seed", "trace"])]
        seeds: Option<String>,
        #[command(flatten)]
        scenario: cli::scenario_args::ScenarioArgs,
    },
    /// Shrink a failing run: remove faults, users and time while the same expectation still
    /// fails; write the minimal scenario and print its replay command.
    #[command(after_help = help::SHRINK)]
    Shrink {
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the shrunk scenario. Default: results/<name>/shrunk.toml.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the JSON-lines peer protocol of docs/CONFORMANCE.md on stdin/stdout: one Signal device
    /// (libsignal v3 wire format) that any other implementation can hold a conversation with.
    #[command(after_help = help::PEER)]
    Peer,
    #[command(flatten)]
    Live(cli::live::LiveCommand),
    #[command(flatten)]
    Plan(cli::plan::PlanCommand),
    /// Validate a scenario and print it resolved (every default filled in) with its hash.
    #[command(after_help = help::CHECK)]
    Check {
        file: PathBuf,
        #[command(flatten)]
        scenario: cli::scenario_args::ScenarioArgs,
    },
    /// Run every point of a scenario's [sweep] grid (in parallel) and write sweep.csv,
    /// runs.json and a report.html with capacity curves.
    #[command(after_help = help::SWEEP)]
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
        #[command(flatten)]
        scenario: cli::scenario_args::ScenarioArgs,
    },
    /// Combine the shard folders of one sweep into the output of the unsharded sweep.
    #[command(after_help = help::MERGE)]
    Merge {
        /// Shard folders (each with a shard.json), or shard.json files.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Compare two results folders: overlaid latency spectra, a delta table of summary.json, and
    /// the service-level figures printed with the largest change first; exit 1 when one of B's
    /// is worse than A's by more than --tolerance.
    #[command(after_help = help::COMPARE)]
    Compare(cli::compare::CompareArgs),
    /// Regression benches for CI: deterministic counters and instruction counts against
    /// benches/baseline/ (see benches/README.md).
    #[command(subcommand, after_help = help::BENCH)]
    Bench(cli::bench::BenchCommand),
    /// Measure the crypto cost table on this machine with the real Signal and Noise code
    /// (median of timed batches, about ten seconds) and write it as TOML; a scenario uses it
    /// with `[e2ee] cost_table = "<path relative to the scenario file>"`. Exits 0, or 4 if
    /// the table cannot be written.
    #[command(after_help = help::CALIBRATE)]
    Calibrate(cli::calibrate::CalibrateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Live(live)) = &cli.command {
        cli::live::no_huge_pages(live);
    }
    // A long-lived server gives memory back when its connections close; a run keeps it.
    if !matches!(
        cli.command,
        Some(Command::Live(cli::live::LiveCommand::Serve { .. }))
    ) {
        tune_allocator();
    }
    let command = cli.command.unwrap_or(Command::Run {
        file: None,
        seed: None,
        out: None,
        trace: None,
        trace_msg: None,
        ledger: false,
        seeds: None,
        scenario: Default::default(),
    });
    // A panic that no command caught with its seed (outside a run, or in live mode) is a bug
    // all the same.
    match std::panic::catch_unwind(|| dispatch(command)) {
        Ok(Ok(Outcome::Passed)) => ExitCode::from(0),
        Ok(Ok(Outcome::Failed)) => ExitCode::from(1),
        Ok(Ok(Outcome::Invalid)) => ExitCode::from(2),
        Ok(Ok(Outcome::Bug)) => ExitCode::from(3),
        // The machine refused (a port in use, a folder that cannot be written): not a bug.
        Ok(Err(e)) if e.chain().any(|c| c.is::<std::io::Error>()) => {
            eprintln!("interop-sim: {e:#}");
            ExitCode::from(4)
        }
        Ok(Err(e)) => {
            eprintln!("interop-sim: internal error: {e:#}");
            ExitCode::from(3)
        }
        Err(panic) => {
            let message = interop_sim::sim::bug::message(panic.as_ref());
            eprintln!("interop-sim: internal error (a bug): {message}");
            ExitCode::from(3)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Run {
            file,
            seeds: Some(range),
            scenario,
            ..
        } => cli::seeds::run_seeds(file.as_deref(), &range, &scenario),
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            seeds: None,
            ledger,
            scenario,
        } => cli::run::run(
            file.as_deref(),
            seed,
            out,
            trace.map(|t| (t, trace_msg)),
            report::RunOptions { ledger },
            &scenario,
        ),
        Command::Shrink { file, seed, out } => cli::shrink::shrink(&file, seed, out),
        Command::Peer => cli::peer::peer(),
        Command::Check { file, scenario } => cli::check::check(&file, &scenario),
        Command::Sweep {
            file,
            out,
            threads,
            shard,
            scenario,
        } => cli::sweep::sweep(&file, out, threads, shard.as_deref(), &scenario),
        Command::Merge { dirs, out } => cli::merge::merge(&dirs, &out),
        Command::Compare(args) => cli::compare::compare(args),
        Command::Bench(b) => cli::bench::bench(b),
        Command::Calibrate(args) => cli::calibrate::calibrate(args),
        Command::Live(cmd) => cli::live::run(cmd),
        Command::Plan(cmd) => cli::plan::run(cmd),
    }
}
