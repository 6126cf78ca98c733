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
    /// Run a scenario live on loopback: the servers as tokio tasks behind real TCP (the
    /// gateway's links under Noise), load-generator clients with real Signal encryption, an
    /// open-model schedule; CO-corrected latency. Fails (exit 1) when an expectation fails or
    /// the target rate was not reached.
    #[command(after_help = EXIT_CODES)]
    Live {
        /// Scenario file (TOML). Default: scenarios/baseline.toml.
        file: Option<PathBuf>,
        /// Results folder. Default: results/<scenario name>-live/.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        load: LiveArgs,
    },
    /// Run a scenario in the simulator and live, and write the comparison (p50, p99,
    /// throughput, delivered, with relative errors) to validate.json in the results folder.
    #[command(after_help = EXIT_CODES)]
    Validate {
        file: PathBuf,
        /// Results folder. Default: results/<scenario name>-validate/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Model loopback links in the simulated copy (100 us a hop, no loss) instead of the
        /// scenario's network, so that the two runs see the same network.
        #[arg(long)]
        loopback_network: bool,
        #[command(flatten)]
        load: LiveArgs,
    },
    /// Serve one live server role (or all) on loopback until Ctrl-C, for load generators in
    /// other processes. Ports follow one layout: chat = base, gateway = base+1, partner
    /// server P = base+2P, adapter P = base+2P+1 (`--listen` is the role's own address).
    Serve {
        /// Scenario file (TOML). Default: scenarios/baseline.toml.
        file: Option<PathBuf>,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Partner index (1 = the first partner) for --role adapter|partner.
        #[arg(long, default_value_t = 1)]
        provider: u32,
        /// This role's listen address (loopback only).
        #[arg(long)]
        listen: String,
        /// As for `load`: the users the generators scale the scenario to.
        #[arg(long)]
        users: Option<u32>,
        /// Stop after this many seconds (default: at Ctrl-C).
        #[arg(long = "for")]
        for_s: Option<f64>,
    },
    /// One load generator against servers started with `serve` (the same scenario and
    /// --users): writes its results folder with latency.hlog.
    #[command(after_help = EXIT_CODES)]
    Load {
        file: PathBuf,
        /// The layout's base address (the chat server's), loopback only.
        #[arg(long)]
        target: String,
        /// This generator's slice, K/N (users whose device index is K mod N).
        #[arg(long, default_value = "0/1")]
        slice: String,
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        load: LiveArgs,
    },
    /// Merge load generators' latency.hlog files losslessly and judge [expect] on the result.
    #[command(name = "live-merge", after_help = EXIT_CODES)]
    LiveMerge {
        file: PathBuf,
        /// The .hlog files (or results folders holding latency.hlog).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate a scenario and print it resolved (every default filled in) with its hash.
    #[command(after_help = EXIT_CODES)]
    Check { file: PathBuf },
}

/// How to drive a live run (`live`).
#[derive(clap::Args, Clone, Debug)]
struct LiveArgs {
    /// Scale the scenario down (or up) to this many users in all.
    #[arg(long)]
    users: Option<u32>,
    /// Target messages per second (default: users x messages_per_user_hour / 3600).
    #[arg(long)]
    rate: Option<f64>,
    /// Sending window in seconds (default: the scenario's duration).
    #[arg(long)]
    duration: Option<f64>,
    /// Arrival process.
    #[arg(long, value_enum, default_value = "constant")]
    arrivals: ArrivalsArg,
    /// Ramp from zero to the target rate over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    ramp: f64,
    /// Load-generator shards (client tasks).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Bound on the drain after the sending window, seconds.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Encrypt every message before the run (senders' Signal work off the measured path;
    /// recipients still decrypt live).
    #[arg(long)]
    precrypt: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    All,
    Chat,
    Gateway,
    Adapter,
    Partner,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ArrivalsArg {
    Constant,
    Poisson,
}

impl LiveArgs {
    fn options(&self) -> Result<interop_sim::live::LiveOptions, String> {
        let secs = |x: f64, what: &str| {
            if (0.0..1e7).contains(&x) {
                Ok((x * 1e9) as u64)
            } else {
                Err(format!("--{what} must be a number of seconds >= 0"))
            }
        };
        Ok(interop_sim::live::LiveOptions {
            users: self.users,
            rate_per_s: self.rate,
            duration_ns: self.duration.map(|d| secs(d, "duration")).transpose()?,
            arrivals: match self.arrivals {
                ArrivalsArg::Constant => interop_sim::live::Arrivals::Constant,
                ArrivalsArg::Poisson => interop_sim::live::Arrivals::Poisson,
            },
            ramp_ns: secs(self.ramp, "ramp")?,
            shards: self.shards.clamp(1, 64),
            threads: self.threads.clamp(1, 64),
            drain_max_ns: secs(self.drain, "drain")?,
            precrypt: self.precrypt,
            ..Default::default()
        })
    }
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
        Command::Live { file, out, load } => live(file.as_deref(), out, &load),
        Command::Serve {
            file,
            role,
            provider,
            listen,
            users,
            for_s,
        } => serve(file.as_deref(), role, provider, &listen, users, for_s),
        Command::Load {
            file,
            target,
            slice,
            out,
            load,
        } => load_gen(&file, &target, &slice, out, &load),
        Command::LiveMerge { file, logs, out } => live_merge(&file, &logs, out),
        Command::Validate {
            file,
            out,
            loopback_network,
            load,
        } => validate(&file, out, loopback_network, &load),
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

fn live(file: Option<&Path>, out: Option<PathBuf>, args: &LiveArgs) -> anyhow::Result<Outcome> {
    let s = match load(file) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim live: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let hash = scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-live", s.run.name)));
    let outcome = match interop_sim::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(interop_sim::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim live: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e).context("live run"),
    };
    interop_sim::live::output::write_live_results(&out, &outcome).context("writing results")?;
    Perf::new(outcome.report.wall_s, 0, outcome.result.summary.end_time_s)
        .write(&out)
        .with_context(|| format!("writing {}", out.join("perf.json").display()))?;
    print!(
        "{}",
        report::screen::render(&outcome.result.summary, &out.display().to_string())
    );
    println!("{}", interop_sim::live::run::render(&outcome.report));
    Ok(if outcome.passed() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn validate(
    file: &Path,
    out: Option<PathBuf>,
    loopback: bool,
    args: &LiveArgs,
) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim validate: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let hash = scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-validate", s.run.name)));
    let (cmp, sim, live) = match interop_sim::live::validate::validate(&s, &hash, &opts, loopback) {
        Ok(r) => r,
        Err(interop_sim::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim validate: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e).context("validate"),
    };
    report::write_results(&out.join("sim"), &sim).context("writing sim results")?;
    interop_sim::live::output::write_live_results(&out.join("live"), &live)
        .context("writing live results")?;
    let json = serde_json::to_string_pretty(&cmp).context("encoding validate.json")?;
    std::fs::write(out.join("validate.json"), json + "\n").context("writing validate.json")?;
    let table = interop_sim::live::validate::render(&cmp);
    std::fs::write(out.join("validate.txt"), &table).context("writing validate.txt")?;
    print!("{table}");
    println!("wrote {}", out.display());
    Ok(Outcome::Passed)
}

fn serve(
    file: Option<&Path>,
    role: RoleArg,
    provider: u32,
    listen: &str,
    users: Option<u32>,
    for_s: Option<f64>,
) -> anyhow::Result<Outcome> {
    use interop_sim::live::topology::Role;
    let s = match load(file) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let listen = match interop_sim::live::loopback_addr(listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim serve: --listen: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let partners = s.providers.len() as u32 - 1;
    if matches!(role, RoleArg::Adapter | RoleArg::Partner) && !(1..=partners).contains(&provider) {
        eprintln!("interop-sim serve: --provider must be 1..={partners}");
        return Ok(Outcome::Invalid);
    }
    let role = match role {
        RoleArg::All => Role::All,
        RoleArg::Chat => Role::Chat,
        RoleArg::Gateway => Role::Gateway,
        RoleArg::Adapter => Role::Adapter(provider),
        RoleArg::Partner => Role::Partner(provider),
    };
    let for_ns = for_s.map(|x| (x.clamp(0.0, 1e7) * 1e9) as u64);
    interop_sim::live::remote::serve(&s, users, role, listen, for_ns, |served| {
        for (name, at) in served {
            println!("serving {name} on {at}");
        }
    })
    .context("serve")?;
    Ok(Outcome::Passed)
}

fn load_gen(
    file: &Path,
    target: &str,
    slice: &str,
    out: Option<PathBuf>,
    args: &LiveArgs,
) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let base = match interop_sim::live::loopback_addr(target) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim load: --target: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let parsed = slice
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .filter(|&(k, n)| n >= 1 && k < n && n <= 1024);
    let Some((k, n)) = parsed else {
        eprintln!("interop-sim load: --slice must be K/N with 0 <= K < N <= 1024, got {slice:?}");
        return Ok(Outcome::Invalid);
    };
    let mut opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim load: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    opts.remote = Some(interop_sim::live::run::Remote {
        layout: interop_sim::live::topology::Layout { base },
        k,
        n,
    });
    let hash = scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-load-{k}", s.run.name)));
    let outcome = match interop_sim::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(interop_sim::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim load: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e).context("load"),
    };
    interop_sim::live::output::write_live_results(&out, &outcome).context("writing results")?;
    Perf::new(outcome.report.wall_s, 0, outcome.result.summary.end_time_s)
        .write(&out)
        .with_context(|| format!("writing {}", out.join("perf.json").display()))?;
    print!(
        "{}",
        report::screen::render(&outcome.result.summary, &out.display().to_string())
    );
    println!("{}", interop_sim::live::run::render(&outcome.report));
    Ok(if outcome.passed() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

fn live_merge(file: &Path, logs: &[PathBuf], out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let mut inputs = Vec::new();
    for p in logs {
        let path = if p.is_dir() {
            p.join("latency.hlog")
        } else {
            p.clone()
        };
        match std::fs::read(&path) {
            Ok(b) => inputs.push((path.display().to_string(), b)),
            Err(e) => {
                eprintln!("interop-sim live-merge: {}: {e}", path.display());
                return Ok(Outcome::Invalid);
            }
        }
    }
    let merged = match interop_sim::live::remote::merge_logs(&inputs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("interop-sim live-merge: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let hash = scenario::hash(&s);
    let summary = interop_sim::live::remote::merged_summary(&s, &hash, &merged);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-merged", s.run.name)));
    interop_sim::live::output::write_merged(&out, &summary, &merged).context("writing results")?;
    println!(
        "merged {} logs ({} intervals): sent {}, delivered {}, lost {}, duplicates {}",
        merged.logs,
        merged.intervals,
        merged.counters.sent,
        merged.counters.delivered,
        merged.counters.lost,
        merged.counters.duplicates
    );
    print!(
        "{}",
        report::screen::render(&summary, &out.display().to_string())
    );
    Ok(if summary.passed {
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
