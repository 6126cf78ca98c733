//! The `interop-sim` command line: thin; every decision lives in the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use interop_sim::bench::{self as regress, BenchError};
use interop_sim::report::perf::progress::Progress;
use interop_sim::report::perf::{Perf, Stopwatch};
use interop_sim::scenario::{self, Scenario};
use interop_sim::{report, shrink, sim};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc, for every command: a simulated run allocates and frees
/// small envelopes and buffers at millions per second, and glibc's consolidation and chunk
/// unlinking cost about 7 % of a 1 M-user run. Allocation order never reaches the results (no
/// address is observed).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (`mi_option_e` in mimalloc.h; 15 in both the v3 that
/// libmimalloc-sys 0.1 builds by default and v2): how long freed memory stays committed before
/// it goes back to the OS.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory instead of returning it to the OS after a second: a run frees and
/// reallocates hundreds of MB a second, and purged pages come back zeroed by the kernel (sys
/// time of scenarios/media-heavy.toml: 1.2 s -> 0.7 s, user+sys 4 % less; of a 1 M-user, 90 s
/// run: 1.0 s -> 0.6 s). A run needs its memory until it exits anyway; peak RSS grows (by
/// about 3 % at 1 M users, a quarter for media-heavy's 350 MB).
fn tune_allocator() {
    // SAFETY: `mi_option_set` only writes an option word; it is not thread-safe, and this runs
    // first thing in `main`, before any thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

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
    /// Regression benches for CI: deterministic counters and instruction counts against
    /// results/baseline/ (see benches/README.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Measure the crypto cost table on this machine with the real Signal and Noise code
    /// (median of timed batches, about ten seconds) and write it as TOML; a scenario uses it
    /// with `[e2ee] cost_table = "<path relative to the scenario file>"`. Exits 0, or 3 if
    /// the table cannot be written.
    Calibrate {
        /// Where to write the table. Default: results/calibration.toml.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rough figures in well under a second (few, short batches), for tests.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Re-run every CI scenario (scenarios/*.toml but scale-*) and compare its counters with
    /// results/baseline/<scenario>.json; exit 1 naming each differing scenario and counter.
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        dirs: BenchDirs,
    },
    /// Re-run every CI scenario and rewrite its baseline file (review the diff, then commit).
    #[command(after_help = EXIT_CODES)]
    Update {
        #[command(flatten)]
        dirs: BenchDirs,
    },
    /// Count the hot paths' instructions under callgrind (cargo bench --bench instructions,
    /// gungraun) and compare with results/baseline/instructions.json; exit 1 on more than 2 %
    /// extra instructions in any of them.
    #[command(after_help = EXIT_CODES)]
    Instructions {
        /// Rewrite the baseline with the fresh counts instead of gating.
        #[arg(long)]
        update: bool,
        /// Extra cargo features for the counted build (e.g. demo-slow-ratchet).
        #[arg(long)]
        features: Option<String>,
        /// Read gungraun's JSON lines from this file instead of running cargo bench.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Where to write the fresh counts.
        #[arg(long, default_value = "target/instructions.json")]
        out: PathBuf,
        /// Folder of baseline files.
        #[arg(long, default_value = "results/baseline")]
        baseline: PathBuf,
    },
}

#[derive(clap::Args)]
struct BenchDirs {
    /// Folder of scenario files.
    #[arg(long, default_value = "scenarios")]
    scenarios: PathBuf,
    /// Folder of baseline files.
    #[arg(long, default_value = "results/baseline")]
    baseline: PathBuf,
}

/// Prints to stdout, ignoring a closed pipe (`interop-sim run | head` must not panic): the
/// results are on disk whatever happens to the screen copy.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;
/// What ended the command, mapped to the documented exit codes.
pub(crate) enum Outcome {
    Passed,
    Failed,
    Invalid,
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Run {
        file: None,
        seed: None,
        out: None,
        trace: None,
        trace_msg: None,
        ledger: false,
        seeds: None,
    }) {
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            seeds: Some(range),
            ledger,
        } => {
            let _ = (seed, out, trace, trace_msg, ledger);
            run_seeds(file.as_deref(), &range)
        }
        Command::Run {
            file,
            seed,
            out,
            trace,
            trace_msg,
            seeds: None,
            ledger,
        } => run(
            file.as_deref(),
            seed,
            out,
            trace.map(|t| (t, trace_msg)),
            report::RunOptions { ledger },
        ),
        Command::Shrink { file, seed, out } => shrink(&file, seed, out),
        Command::Peer => peer(),
        Command::Check { file } => check(&file),
        Command::Sweep {
            file,
            out,
            threads,
            shard,
        } => commands::sweep(&file, out, threads, shard.as_deref()),
        Command::Merge { dirs, out } => commands::merge(&dirs, &out),
        Command::Compare { run_a, run_b, out } => commands::compare(&run_a, &run_b, out),
        Command::Bench(b) => bench(b),
        Command::Calibrate { out, quick } => calibrate(out, quick),
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
    .with_crypto(result.verified_plaintexts, result.crypto_charged_ns)
    .with_media(result.media_verified, result.media_blobs_opened)
    .write(&out)
    .with_context(|| format!("writing {}", out.join("perf.json").display()))?;
    out!(
        "{}",
        report::screen::render(&result.summary, &out.display().to_string())
    );
    if result.verified_plaintexts > 0 {
        let shown: u64 = result.summary.latency.samples;
        outln!("e2ee: {} of {shown} deliveries decrypted to exactly the plaintext sent (real Signal crypto)", result.verified_plaintexts);
    }
    if result.media_verified > 0 {
        let downloads = result.summary.media.media_downloads;
        outln!(
            "media: {} of {downloads} downloads verified and decrypted with the key and digests from their message ({} blobs decrypted, AES-CBC + HMAC)",
            result.media_verified,
            result.media_blobs_opened
        );
    }
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
        outln!("seed {} FAILED: {}", r.seed, r.failures.join("; "));
        outln!("    {}", r.liveness);
        outln!("    replay: interop-sim run {file_arg} --seed {}", r.seed);
        outln!(
            "    shrink: interop-sim shrink {file_arg} --seed {}",
            r.seed
        );
    }
    outln!(
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
    outln!(
        "shrunk in {} runs: {} -> {} faults, {} -> {} users; still fails: {}",
        shrunk.runs,
        shrunk.faults_before,
        shrunk.scenario.faults.len(),
        shrunk.users_before,
        users,
        shrunk.signature.join(", ")
    );
    outln!(
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
    out!("{}", scenario::to_toml(&s));
    outln!("# scenario hash: {}", scenario::hash(&s));
    Ok(Outcome::Passed)
}

fn calibrate(out: Option<PathBuf>, quick: bool) -> anyhow::Result<Outcome> {
    use interop_sim::calibrate::{self as cal, Settings};
    let settings = if quick {
        Settings::QUICK
    } else {
        Settings::FULL
    };
    let out = out.unwrap_or_else(|| PathBuf::from(cal::DEFAULT_OUT));
    let progress = Progress::new("calibrating", Some(cal::ops::MEASURES.len() as u64));
    let measured = cal::calibrate(settings, |_| progress.inc());
    progress.finish();
    let measured = measured?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, measured.file_text())
        .with_context(|| format!("writing {}", out.display()))?;
    out!("{}", measured.screen());
    outln!(
        "wrote {} (use it: [e2ee] cost_table = \"<path from the scenario's folder>\")",
        out.display()
    );
    Ok(Outcome::Passed)
}

fn bench(command: BenchCommand) -> anyhow::Result<Outcome> {
    let result = match command {
        BenchCommand::Check { dirs } => bench_check(&dirs),
        BenchCommand::Update { dirs } => bench_update(&dirs),
        BenchCommand::Instructions {
            update,
            features,
            from,
            out,
            baseline,
        } => bench_instructions(
            update,
            features.as_deref(),
            from.as_deref(),
            &out,
            &baseline,
        ),
    };
    match result {
        Err(e) if e.is_invalid_input() => {
            eprintln!("interop-sim bench: {e}");
            Ok(Outcome::Invalid)
        }
        other => Ok(other?),
    }
}

fn bench_check(dirs: &BenchDirs) -> Result<Outcome, BenchError> {
    let checks = regress::counters::check(&dirs.scenarios, &dirs.baseline)?;
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed()).collect();
    for c in &checks {
        for line in c.report() {
            println!("{line}");
        }
    }
    println!(
        "bench check: {} of {} scenarios match {}",
        checks.len() - failed.len(),
        checks.len(),
        dirs.baseline.display()
    );
    if failed.is_empty() {
        return Ok(Outcome::Passed);
    }
    println!(
        "if the change is intended: interop-sim bench update, then review and commit the diff"
    );
    Ok(Outcome::Failed)
}

fn bench_update(dirs: &BenchDirs) -> Result<Outcome, BenchError> {
    let written = regress::counters::update(&dirs.scenarios, &dirs.baseline)?;
    let changed: Vec<&str> = written
        .iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| n.as_str())
        .collect();
    println!(
        "bench update: {} scenarios, {} baseline files changed{}{}",
        written.len(),
        changed.len(),
        if changed.is_empty() { "" } else { ": " },
        changed.join(", ")
    );
    Ok(Outcome::Passed)
}

fn bench_instructions(
    update: bool,
    features: Option<&str>,
    from: Option<&Path>,
    out: &Path,
    baseline_dir: &Path,
) -> Result<Outcome, BenchError> {
    use regress::instructions as ir;
    let fresh = match from {
        Some(path) => ir::parse_gungraun_json(&std::fs::read_to_string(path).map_err(|e| {
            BenchError::Io {
                path: path.to_path_buf(),
                err: e,
            }
        })?)?,
        None => ir::measure(features)?,
    };
    ir::write(out, &fresh)?;
    let baseline = baseline_dir.join("instructions.json");
    if update {
        let changed = ir::write(&baseline, &fresh)?;
        println!(
            "bench instructions: {} hot paths, {} {}",
            fresh.len(),
            baseline.display(),
            if changed { "rewritten" } else { "unchanged" }
        );
        return Ok(Outcome::Passed);
    }
    let old = ir::read(&baseline)?.unwrap_or_default();
    let lines = ir::gate(&old, &fresh);
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| !l.passed()).count();
    println!(
        "bench instructions: {} of {} hot paths within +{} % of {} (fresh counts: {})",
        lines.len() - failed,
        lines.len(),
        ir::TOLERANCE_PERCENT,
        baseline.display(),
        out.display()
    );
    if failed == 0 {
        return Ok(Outcome::Passed);
    }
    println!("if the change is intended: interop-sim bench instructions --update, then review and commit the diff");
    Ok(Outcome::Failed)
}
