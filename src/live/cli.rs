//! The live subcommands (`live`, `validate`, `serve`, `load`, `live-merge`): their arguments
//! and what each does, so that `main.rs` stays a thin dispatcher. Scenario loading stays in
//! `main` (it owns the built-in baseline); errors here are this crate's, mapped to exit codes
//! there.

use super::LiveError;
use crate::report::ReportError;
use crate::scenario::Scenario;
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// What a live subcommand ended with (main maps it to exit codes 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliOutcome {
    Passed,
    Failed,
    Invalid,
}

/// Why a live subcommand could not finish (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Loads a scenario (`None`: the built-in baseline); `None` back: invalid, already reported.
pub type Loader<'a> = &'a dyn Fn(Option<&Path>) -> Option<Scenario>;

/// The live subcommands.
#[derive(Subcommand, Debug)]
pub enum LiveCommand {
    /// Run a scenario live on loopback: the servers as tokio tasks behind real TCP (the
    /// gateway's links under Noise), load-generator clients with real Signal encryption, an
    /// open-model schedule; CO-corrected latency. Fails (exit 1) when an expectation fails or
    /// the target rate was not reached.
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
    #[command(name = "live-merge")]
    LiveMerge {
        file: PathBuf,
        /// The .hlog files (or results folders holding latency.hlog).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// How to drive a live run (`live`).
#[derive(clap::Args, Clone, Debug)]
pub struct LiveArgs {
    /// Scale the scenario down (or up) to this many users in all.
    #[arg(long)]
    pub users: Option<u32>,
    /// Target messages per second (default: users x messages_per_user_hour / 3600).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sending window in seconds (default: the scenario's duration).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Arrival process.
    #[arg(long, value_enum, default_value = "constant")]
    pub arrivals: ArrivalsArg,
    /// Ramp from zero to the target rate over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub ramp: f64,
    /// Load-generator shards (client tasks).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Bound on the drain after the sending window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Encrypt every message before the run (senders' Signal work off the measured path;
    /// recipients still decrypt live).
    #[arg(long)]
    pub precrypt: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RoleArg {
    All,
    Chat,
    Gateway,
    Adapter,
    Partner,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ArrivalsArg {
    Constant,
    Poisson,
}

impl LiveArgs {
    pub fn options(&self) -> Result<crate::live::LiveOptions, String> {
        let secs = |x: f64, what: &str| {
            if (0.0..1e7).contains(&x) {
                Ok((x * 1e9) as u64)
            } else {
                Err(format!("--{what} must be a number of seconds >= 0"))
            }
        };
        Ok(crate::live::LiveOptions {
            users: self.users,
            rate_per_s: self.rate,
            duration_ns: self.duration.map(|d| secs(d, "duration")).transpose()?,
            arrivals: match self.arrivals {
                ArrivalsArg::Constant => crate::live::Arrivals::Constant,
                ArrivalsArg::Poisson => crate::live::Arrivals::Poisson,
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

/// Runs one live subcommand.
pub fn run(cmd: LiveCommand, load: Loader<'_>) -> Result<CliOutcome, CliError> {
    match cmd {
        LiveCommand::Live {
            file,
            out,
            load: args,
        } => live(load, file.as_deref(), out, &args),
        LiveCommand::Validate {
            file,
            out,
            loopback_network,
            load: args,
        } => validate(load, &file, out, loopback_network, &args),
        LiveCommand::Serve {
            file,
            role,
            provider,
            listen,
            users,
            for_s,
        } => serve(load, file.as_deref(), role, provider, &listen, users, for_s),
        LiveCommand::Load {
            file,
            target,
            slice,
            out,
            load: args,
        } => load_gen(load, &file, &target, &slice, out, &args),
        LiveCommand::LiveMerge { file, logs, out } => live_merge(load, &file, &logs, out),
    }
}

fn live(
    load: Loader<'_>,
    file: Option<&Path>,
    out: Option<PathBuf>,
    args: &LiveArgs,
) -> Result<CliOutcome, CliError> {
    let Some(s) = load(file) else {
        return Ok(CliOutcome::Invalid);
    };
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim live: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    let hash = crate::scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-live", s.run.name)));
    let outcome = match crate::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(crate::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim live: {e}");
            return Ok(CliOutcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    crate::live::output::write_live_results(&out, &outcome)?;
    crate::report::perf::Perf::new(outcome.report.wall_s, 0, outcome.result.summary.end_time_s)
        .write(&out)?;
    print!(
        "{}",
        crate::report::screen::render(&outcome.result.summary, &out.display().to_string())
    );
    println!("{}", crate::live::run::render(&outcome.report));
    Ok(if outcome.passed() {
        CliOutcome::Passed
    } else {
        CliOutcome::Failed
    })
}

fn validate(
    load: Loader<'_>,
    file: &Path,
    out: Option<PathBuf>,
    loopback: bool,
    args: &LiveArgs,
) -> Result<CliOutcome, CliError> {
    let Some(s) = load(Some(file)) else {
        return Ok(CliOutcome::Invalid);
    };
    let opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim validate: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    let hash = crate::scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-validate", s.run.name)));
    let (cmp, sim, live) = match crate::live::validate::validate(&s, &hash, &opts, loopback) {
        Ok(r) => r,
        Err(crate::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim validate: {e}");
            return Ok(CliOutcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    crate::report::write_results(&out.join("sim"), &sim)?;
    crate::live::output::write_live_results(&out.join("live"), &live)?;
    let json = serde_json::to_string_pretty(&cmp)?;
    std::fs::write(out.join("validate.json"), json + "\n")?;
    let table = crate::live::validate::render(&cmp);
    std::fs::write(out.join("validate.txt"), &table)?;
    print!("{table}");
    println!("wrote {}", out.display());
    Ok(CliOutcome::Passed)
}

fn serve(
    load: Loader<'_>,
    file: Option<&Path>,
    role: RoleArg,
    provider: u32,
    listen: &str,
    users: Option<u32>,
    for_s: Option<f64>,
) -> Result<CliOutcome, CliError> {
    use crate::live::topology::Role;
    let Some(s) = load(file) else {
        return Ok(CliOutcome::Invalid);
    };
    let listen = match crate::live::loopback_addr(listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim serve: --listen: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    let partners = s.providers.len() as u32 - 1;
    if matches!(role, RoleArg::Adapter | RoleArg::Partner) && !(1..=partners).contains(&provider) {
        eprintln!("interop-sim serve: --provider must be 1..={partners}");
        return Ok(CliOutcome::Invalid);
    }
    let role = match role {
        RoleArg::All => Role::All,
        RoleArg::Chat => Role::Chat,
        RoleArg::Gateway => Role::Gateway,
        RoleArg::Adapter => Role::Adapter(provider),
        RoleArg::Partner => Role::Partner(provider),
    };
    let for_ns = for_s.map(|x| (x.clamp(0.0, 1e7) * 1e9) as u64);
    crate::live::remote::serve(&s, users, role, listen, for_ns, |served| {
        for (name, at) in served {
            println!("serving {name} on {at}");
        }
    })?;
    Ok(CliOutcome::Passed)
}

fn load_gen(
    load: Loader<'_>,
    file: &Path,
    target: &str,
    slice: &str,
    out: Option<PathBuf>,
    args: &LiveArgs,
) -> Result<CliOutcome, CliError> {
    let Some(s) = load(Some(file)) else {
        return Ok(CliOutcome::Invalid);
    };
    let base = match crate::live::loopback_addr(target) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim load: --target: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    let parsed = slice
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .filter(|&(k, n)| n >= 1 && k < n && n <= 1024);
    let Some((k, n)) = parsed else {
        eprintln!("interop-sim load: --slice must be K/N with 0 <= K < N <= 1024, got {slice:?}");
        return Ok(CliOutcome::Invalid);
    };
    let mut opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim load: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    opts.remote = Some(crate::live::run::Remote {
        layout: crate::live::topology::Layout { base },
        k,
        n,
    });
    let hash = crate::scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-load-{k}", s.run.name)));
    let outcome = match crate::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(crate::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim load: {e}");
            return Ok(CliOutcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    crate::live::output::write_live_results(&out, &outcome)?;
    crate::report::perf::Perf::new(outcome.report.wall_s, 0, outcome.result.summary.end_time_s)
        .write(&out)?;
    print!(
        "{}",
        crate::report::screen::render(&outcome.result.summary, &out.display().to_string())
    );
    println!("{}", crate::live::run::render(&outcome.report));
    Ok(if outcome.passed() {
        CliOutcome::Passed
    } else {
        CliOutcome::Failed
    })
}

fn live_merge(
    load: Loader<'_>,
    file: &Path,
    logs: &[PathBuf],
    out: Option<PathBuf>,
) -> Result<CliOutcome, CliError> {
    let Some(s) = load(Some(file)) else {
        return Ok(CliOutcome::Invalid);
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
                return Ok(CliOutcome::Invalid);
            }
        }
    }
    let merged = match crate::live::remote::merge_logs(&inputs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("interop-sim live-merge: {e}");
            return Ok(CliOutcome::Invalid);
        }
    };
    let hash = crate::scenario::hash(&s);
    let summary = crate::live::remote::merged_summary(&s, &hash, &merged);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-merged", s.run.name)));
    crate::live::output::write_merged(&out, &summary, &merged)?;
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
        crate::report::screen::render(&summary, &out.display().to_string())
    );
    Ok(if summary.passed {
        CliOutcome::Passed
    } else {
        CliOutcome::Failed
    })
}
