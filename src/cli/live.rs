//! `interop-sim live [FILE]` and the arguments of every live subcommand (`live`, `validate`,
//! `serve`, `load`, `live-merge`, each in its own file): the live driver itself is
//! `interop_sim::live`.

use super::live_args::{LiveArgs, RoleArg};
use super::{load, Outcome};
use clap::Subcommand;
use interop_sim::live::validate::{Model, Network};
use std::path::{Path, PathBuf};

/// Transparent huge pages off for the commands that time real sockets (`live`, `validate`,
/// `serve`, `load`): the allocator asks the kernel for 2 MiB pages, and the first touch of each
/// stalls the thread that makes it while the kernel zeroes it (milliseconds on a small VM),
/// which lands in the measured tail. live-bench validated at 38,000 msg/s on a 2-core VM: live
/// p99 2.96, 10.9 and 13.1 ms in three runs with them, 0.35 to 0.73 ms in eight without. The
/// simulator keeps them (`run`, `sweep`, `plan`...): it reads gigabytes of state at random, and
/// 4 KiB pages cost it a TLB miss per read (scale-1m 59 and 61 s without, 48 s with); the
/// simulated copy `validate` runs is small and goes without.
pub fn no_huge_pages(command: &LiveCommand) {
    match command {
        LiveCommand::Live { .. }
        | LiveCommand::Validate { .. }
        | LiveCommand::Serve { .. }
        | LiveCommand::Load { .. } => {}
        // Reads logs and writes a summary: nothing timed.
        LiveCommand::LiveMerge { .. } => return,
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!(
            "interop-sim: transparent huge pages stay on ({e}): live latencies may show page-fault stalls"
        );
    }
}

/// The live subcommands.
#[derive(Subcommand, Debug)]
pub enum LiveCommand {
    /// Run a scenario live on loopback: the servers as tokio tasks behind real TCP (the
    /// gateway's links under Noise), load-generator clients with real Signal encryption, an
    /// open-model schedule; CO-corrected latency. Fails (exit 1) when an expectation fails or
    /// the target rate was not reached.
    #[command(after_help = super::help::LIVE)]
    Live {
        /// Scenario file (TOML). Default: scenarios/baseline.toml.
        file: Option<PathBuf>,
        /// Results folder. Default: results/<scenario name>-live/.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        load: LiveArgs,
    },
    /// Run a scenario in the simulator and live with the same inputs (what live cannot carry
    /// is off in both), compare p50, p99, mean latency and delivered messages per second,
    /// overall and per path kind, and judge each against a tolerance: exit 1 when one is
    /// outside it. Writes validate.json and validate.txt in the results folder.
    #[command(after_help = super::help::VALIDATE)]
    Validate {
        file: PathBuf,
        /// Results folder. Default: results/<scenario name>-validate/.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The default, kept for scripts: the simulated copy models loopback links with the
        /// hop latency measured on this machine, no loss, as live has.
        #[arg(long, conflicts_with = "scenario_network")]
        loopback_network: bool,
        /// Model the scenario's own links in the simulated copy instead (a deployment's
        /// network, not loopback's: the latencies will be far apart).
        #[arg(long)]
        scenario_network: bool,
        /// Model the host too: the simulated copy's server nodes share the cores of the live
        /// servers' threads, its devices those of the load generator's, each frame priced as
        /// those threads spent (fitted on this run and two more at half and twice its rate). Needs
        /// --generator-threads.
        #[arg(long, requires = "generator_threads")]
        model_host: bool,
        /// Largest relative error a figure may have, as a fraction (0.1 = 10 %).
        #[arg(long, default_value_t = 0.1)]
        tolerance: f64,
        /// A load ladder: find the rate at which the live system stops keeping up (short live
        /// probes), then validate at each of these fractions of it, such as 0.3,0.6,0.9
        /// (--rate is where the search starts).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        levels: Vec<f64>,
        /// Validate this many times at each rate (each a live run and a simulated copy priced
        /// from it), and judge over them: a figure holds when it held in every run. The table
        /// gives the medians, the runs' errors and live's own range between runs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        repeat: u32,
        #[command(flatten)]
        load: LiveArgs,
    },
    /// Serve one live server role (or all) on loopback until Ctrl-C, for load generators in
    /// other processes. Ports follow one layout: chat = base, gateway = base+1, partner
    /// server P = base+2P, adapter P = base+2P+1 (`--listen` is the role's own address).
    #[command(after_help = super::help::SERVE)]
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
        /// Open connections per listener; past it a new connection is closed at once.
        #[arg(long, default_value_t = 10_000)]
        max_connections: usize,
        /// Close a connection that sends nothing for this many seconds (peers of this tool
        /// send keepalives at a third of it).
        #[arg(long, default_value_t = 60.0)]
        idle_timeout: f64,
        /// Print every second one line per kind of abuse seen (garbage, timeouts, oversize
        /// frames, refused connections, frames of earlier load runs) with its count.
        #[arg(long)]
        log: bool,
    },
    /// One load generator against servers started with `serve` (the same scenario and
    /// --users): writes its results folder with latency.hlog.
    #[command(after_help = super::help::LOAD)]
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
    #[command(name = "live-merge", after_help = super::help::LIVE_MERGE)]
    LiveMerge {
        file: PathBuf,
        /// The .hlog files (or results folders holding latency.hlog).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs one live subcommand.
pub fn run(cmd: LiveCommand) -> anyhow::Result<Outcome> {
    match cmd {
        LiveCommand::Live {
            file,
            out,
            load: args,
        } => live(file.as_deref(), out, &args),
        LiveCommand::Validate {
            file,
            out,
            loopback_network: _,
            scenario_network,
            model_host,
            tolerance,
            levels,
            repeat,
            load: args,
        } => {
            let network = if scenario_network {
                Network::Scenario
            } else {
                Network::MeasuredLoopback
            };
            let model = Model {
                network,
                host: model_host,
            };
            let ladder = (levels.as_slice(), repeat as usize);
            super::validate::validate(&file, out, model, tolerance, ladder, &args)
        }
        LiveCommand::Serve {
            file,
            role,
            provider,
            listen,
            users,
            for_s,
            max_connections,
            idle_timeout,
            log,
        } => {
            let how = super::serve::How {
                max_connections,
                idle_timeout,
                log,
            };
            super::serve::serve(file.as_deref(), role, provider, &listen, users, for_s, how)
        }
        LiveCommand::Load {
            file,
            target,
            slice,
            out,
            load: args,
        } => super::load::load_gen(&file, &target, &slice, out, &args),
        LiveCommand::LiveMerge { file, logs, out } => {
            super::live_merge::live_merge(&file, &logs, out)
        }
    }
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
    let hash = interop_sim::scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-live", s.run.name)));
    let outcome = match interop_sim::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(interop_sim::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim live: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    let ran = interop_sim::live::prepare::live_scenario(&s, opts.users);
    interop_sim::live::output::write_live_results(&out, &ran, &outcome)?;
    interop_sim::report::perf::Perf::new(
        outcome.report.wall_s,
        0,
        outcome.result.summary.end_time_s,
    )
    .write(&out)?;
    print!(
        "{}",
        interop_sim::report::screen::render(
            &outcome.result.summary,
            &out.display().to_string(),
            &file.map_or(super::BASELINE_NAME.to_string(), |f| f
                .display()
                .to_string()),
        )
    );
    println!("{}", interop_sim::live::outcome::render(&outcome.report));
    Ok(if outcome.passed() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
