//! `interop-sim shrink FILE --seed N`: the smallest scenario that still fails the same way,
//! written to a file with its replay command.

use super::{load_with, Outcome};
use anyhow::Context;
use interop_sim::scenario::LoadOptions;
use interop_sim::{shrink, sim};
use std::path::{Path, PathBuf};

pub fn shrink(file: &Path, seed: u64, out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let mut s = match load_with(Some(file), &LoadOptions::default()) {
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
