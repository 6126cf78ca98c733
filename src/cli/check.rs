//! `interop-sim check FILE`: validates a scenario and prints it resolved, with its hash.

use super::{load, Outcome};
use interop_sim::scenario;
use std::path::Path;

pub fn check(file: &Path) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    out!("{}", scenario::to_toml(&s));
    outln!("# scenario hash: {}", scenario::hash(&s));
    Ok(Outcome::Passed)
}
