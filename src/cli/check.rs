//! `interop-sim check FILE`: validates a scenario and prints it resolved, with its hash.

use super::scenario_args::ScenarioArgs;
use super::{load_with, Outcome};
use interop_sim::scenario;
use std::path::Path;

pub fn check(file: &Path, args: &ScenarioArgs) -> anyhow::Result<Outcome> {
    let s = match load_with(Some(file), &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    out!("{}", scenario::to_toml(&s));
    outln!("# scenario hash: {}", scenario::hash(&s));
    Ok(Outcome::Passed)
}
