//! The commands behind the command line, one file each: they turn parsed arguments into calls
//! of the library and its results into screen output and an [`Outcome`]; `main.rs` holds the
//! argument definitions and maps outcomes to exit codes. Every decision about a run lives in
//! the library, so these files stay thin.

use interop_sim::scenario::{self, LoadOptions, Scenario};
use interop_sim::sim::bug::Bug;
use std::path::Path;

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

pub mod bench;
pub mod calibrate;
pub mod check;
pub mod compare;
pub mod help;
pub mod live;
pub mod live_args;
pub mod live_merge;
pub mod load;
pub mod merge;
pub mod peer;
pub mod plan;
pub mod run;
pub mod scenario_args;
pub mod seeds;
pub mod serve;
pub mod shrink;
pub mod sweep;
pub mod validate;

/// The baseline scenario, built in so that `interop-sim run` works from any directory.
const BASELINE: &str = include_str!("../../scenarios/baseline.toml");
/// The name the built-in baseline goes by in messages and replay commands.
pub const BASELINE_NAME: &str = "scenarios/baseline.toml";

/// What ended the command, mapped to the documented exit codes.
pub enum Outcome {
    Passed,
    Failed,
    Invalid,
    /// A run panicked (a failed assertion); already reported with its replay command.
    Bug,
}

/// Reports a run that panicked, with the command that replays it (`interop-sim run FILE
/// --seed N`).
pub fn report_bug(bug: &Bug, replay_file: &str) -> Outcome {
    eprintln!(
        "interop-sim: internal error (a bug): {} — replay with `interop-sim run {replay_file} --seed {}`",
        bug.message, bug.seed
    );
    Outcome::Bug
}

/// Loads a scenario for live mode (`None`: the built-in baseline); a bad one is reported here,
/// on stderr. Live mode runs the hub design only: a MIMI scenario is refused.
pub fn load(file: Option<&Path>) -> Result<Scenario, Outcome> {
    let s = load_with(file, &LoadOptions::default())?;
    if s.topology.design != interop_sim::scenario::Design::Hub {
        let shown = file.map_or(BASELINE_NAME.to_string(), |f| f.display().to_string());
        eprintln!(
            "interop-sim: {shown}: [topology] design = \"{}\" runs in the simulator only; live mode (serve, load, live, validate) runs the hub design",
            s.topology.design.key()
        );
        return Err(Outcome::Invalid);
    }
    Ok(s)
}

/// [`load`] with what the command line adds (`--cost-table`).
pub fn load_with(file: Option<&Path>, opts: &LoadOptions) -> Result<Scenario, Outcome> {
    let loaded = match file {
        Some(path) => scenario::load_with(path, opts),
        None => scenario::parse_with(BASELINE, BASELINE_NAME, opts),
    };
    loaded.map_err(|errors| {
        eprintln!("{errors}");
        Outcome::Invalid
    })
}
