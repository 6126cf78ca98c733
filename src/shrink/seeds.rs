//! Many seeds of one scenario (`run FILE --seeds 1..200`): each a different fault mix (with a
//! `[swarm]`) and workload draw; the failing ones are listed with the command that replays each.
//! A seed whose run panics is caught and reported as a bug, and the other seeds still run.

use crate::scenario::Scenario;
use crate::sim::bug::{self, Bug};
use crate::sim::{run_with, RunOptions};

/// One seed's outcome.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    pub seed: u64,
    pub passed: bool,
    pub fingerprint: String,
    /// The failed expectations, `key = value (expected ...)`.
    pub failures: Vec<String>,
    pub liveness: String,
    /// The run panicked: a bug, not a failed expectation (the fields above are empty).
    pub bug: Option<Bug>,
}

/// Parses `A..B` (inclusive, as people say "seeds 1 to 200") or a single seed.
pub fn parse_range(text: &str) -> Result<std::ops::RangeInclusive<u64>, String> {
    let bad = || format!("expected a seed range like 1..200, found '{text}'");
    let (a, b) = match text.split_once("..") {
        Some((a, b)) => (a, b.strip_prefix('=').unwrap_or(b)),
        None => (text, text),
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(format!("the seed range {text} is empty (start after end)"));
    }
    if b - a >= 1_000_000 {
        return Err(format!(
            "the seed range {text} is too large (at most 1,000,000 seeds)"
        ));
    }
    Ok(a..=b)
}

/// Runs every seed of `range`, on `threads` worker threads; results in seed order whatever the
/// thread count.
pub fn run_seeds(
    s: &Scenario,
    range: std::ops::RangeInclusive<u64>,
    threads: usize,
    options: RunOptions,
) -> Vec<SeedOutcome> {
    let seeds: Vec<u64> = range.collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<SeedOutcome>> = vec![None; seeds.len()];
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let outcome = one(s, seed, options);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(outcome);
                }
            });
        }
    });
    results.into_iter().flatten().collect()
}

fn one(s: &Scenario, seed: u64, options: RunOptions) -> SeedOutcome {
    let mut s = s.clone();
    s.run.seed = seed;
    let r = match bug::catch(seed, || run_with(&s, "seeds", options).summary) {
        Ok(r) => r,
        Err(bug) => {
            return SeedOutcome {
                seed,
                passed: false,
                fingerprint: String::new(),
                failures: Vec::new(),
                liveness: String::new(),
                bug: Some(bug),
            }
        }
    };
    SeedOutcome {
        seed,
        passed: r.passed,
        fingerprint: r.fingerprint.clone(),
        failures: r
            .expect
            .iter()
            .filter(|v| !v.ok)
            .map(|v| {
                format!(
                    "{} = {} (expected {})",
                    v.key,
                    v.value
                        .map_or("not measured".into(), crate::metrics::summary::trim),
                    v.bound
                )
            })
            .collect(),
        liveness: r.liveness.verdict,
        bug: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_checked() {
        assert_eq!(parse_range("1..3"), Ok(1..=3));
        assert_eq!(parse_range("1..=3"), Ok(1..=3));
        assert_eq!(parse_range("7"), Ok(7..=7));
        assert!(parse_range("3..1").is_err());
        assert!(parse_range("a..b").is_err());
    }
}
