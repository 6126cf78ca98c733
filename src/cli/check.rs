//! `interop-sim check FILE`: validates a scenario and prints it resolved, with its hash.

use super::scenario_args::ScenarioArgs;
use super::{load_with, Outcome};
use interop_sim::scenario::{self, budget};
use std::path::Path;

pub fn check(file: &Path, args: &ScenarioArgs) -> anyhow::Result<Outcome> {
    let s = match load_with(Some(file), &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let est = match args.within_budget(&s, &file.display().to_string()) {
        Ok(est) => est,
        Err(o) => return Ok(o),
    };
    out!("{}", scenario::to_toml(&s));
    outln!("# scenario hash: {}", scenario::hash(&s));
    let largest = est.largest().map_or("", |t| t.key.as_str());
    outln!(
        "# estimate: peak memory about {} (budget {}, --memory-max), about {} events; largest term: {largest}",
        budget::show_bytes(est.memory_bytes),
        budget::show_bytes(args.memory_max()),
        est.events
    );
    Ok(Outcome::Passed)
}
