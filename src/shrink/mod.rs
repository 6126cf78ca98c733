//! Shrinking a failing run: remove faults, users and time while the same violation still
//! occurs, and hand back the smallest scenario found with the command that replays it. A
//! failing seed with 200 faults is evidence; one with two faults and forty users is a bug
//! report.

pub mod seeds;

use crate::faults::swarm::materialize;
use crate::metrics::Summary;
use crate::scenario::{self, Scenario};
use crate::sim::{run_with, RunOptions};

/// What a shrink found.
#[derive(Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    /// The failing expectations (and violation kinds) that were kept failing.
    pub signature: Vec<String>,
    pub runs: u32,
    pub faults_before: usize,
    pub users_before: u64,
    pub duration_before_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("seed {0} passes: there is no failure to shrink")]
    Passes(u64),
}

/// What identifies "the same failure": the failed expectation keys, or the violation kinds when
/// the scenario has no `[expect]` that failed. The first one is the failure a shrink keeps.
fn signature(s: &Summary) -> Vec<String> {
    let mut sig: Vec<String> = s
        .expect
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.key.clone())
        .collect();
    if sig.is_empty() {
        sig = s.violations.iter().map(|v| v.kind.clone()).collect();
        sig.dedup();
    }
    sig
}

struct Shrinker {
    options: RunOptions,
    target: Vec<String>,
    runs: u32,
}

impl Shrinker {
    /// Whether `s` still fails in the same way (one of the original failures recurs).
    fn fails(&mut self, s: &Scenario) -> bool {
        self.runs += 1;
        let r = run_with(s, "shrink", self.options).summary;
        signature(&r).contains(&self.target[0])
    }

    /// Delta debugging over the fault list: drop chunks, halving the chunk size once no chunk
    /// of the current size can go.
    fn faults(&mut self, s: &mut Scenario) {
        let mut chunk = s.faults.len().div_ceil(2);
        while chunk >= 1 && !s.faults.is_empty() {
            let mut i = 0;
            let mut progress = false;
            while i < s.faults.len() {
                let mut candidate = s.clone();
                let end = (i + chunk).min(candidate.faults.len());
                candidate.faults.drain(i..end);
                if self.fails(&candidate) {
                    *s = candidate;
                    progress = true;
                } else {
                    i += chunk;
                }
            }
            if !progress {
                if chunk == 1 {
                    break;
                }
                chunk = chunk.div_ceil(2).min(chunk - 1).max(1);
            }
        }
    }

    /// Halves each provider's users while the failure persists.
    fn users(&mut self, s: &mut Scenario) {
        for p in 0..s.providers.len() {
            while s.providers[p].users > 1 {
                let mut candidate = s.clone();
                candidate.providers[p].users = (candidate.providers[p].users / 2).max(1);
                if !self.fails(&candidate) {
                    break;
                }
                *s = candidate;
            }
        }
    }

    /// Halves the sending window (faults outside it go, windows are clipped) while it fails.
    fn time(&mut self, s: &mut Scenario) {
        while s.run.duration_ns > 10_000_000_000 {
            let mut candidate = s.clone();
            let d = candidate.run.duration_ns / 2;
            candidate.run.duration_ns = d;
            candidate.faults.retain(|f| f.at_ns < d);
            for f in &mut candidate.faults {
                if let Some(len) = f.for_ns {
                    f.for_ns = Some(len.min(d - f.at_ns).max(1));
                }
            }
            if !self.fails(&candidate) {
                break;
            }
            *s = candidate;
        }
    }
}

/// Shrinks `s` at its seed (with `options`, so tests can shrink a run with a bug switch on).
pub fn shrink(s: &Scenario, options: RunOptions) -> Result<Shrunk, ShrinkError> {
    let mut current = materialize(s);
    let first = run_with(&current, "shrink", options).summary;
    let target = signature(&first);
    if target.is_empty() {
        return Err(ShrinkError::Passes(s.run.seed));
    }
    let mut sh = Shrinker {
        options,
        target: target.clone(),
        runs: 1,
    };
    let (faults_before, users_before, duration_before_ns) = (
        current.faults.len(),
        current.providers.iter().map(|p| p.users as u64).sum(),
        current.run.duration_ns,
    );
    loop {
        let before = (
            current.faults.len(),
            current.providers.iter().map(|p| p.users).sum::<u32>(),
            current.run.duration_ns,
        );
        sh.faults(&mut current);
        sh.users(&mut current);
        sh.time(&mut current);
        let after = (
            current.faults.len(),
            current.providers.iter().map(|p| p.users).sum::<u32>(),
            current.run.duration_ns,
        );
        if after == before {
            break;
        }
    }
    current.run.name = format!("{}-shrunk", s.run.name);
    Ok(Shrunk {
        scenario: current,
        signature: target,
        runs: sh.runs,
        faults_before,
        users_before,
        duration_before_ns,
    })
}

/// The shrunk scenario as a file a user can run.
pub fn render(sh: &Shrunk) -> String {
    format!(
        "# Shrunk by `interop-sim shrink` from {} faults, {} users and {} of sending to what still\n\
         # fails ({}). Replay: interop-sim run <this file> --seed {}\n{}",
        sh.faults_before,
        sh.users_before,
        crate::engine::time::format_duration_ns(sh.duration_before_ns),
        sh.signature.join(", "),
        sh.scenario.run.seed,
        scenario::to_toml(&sh.scenario)
    )
}
