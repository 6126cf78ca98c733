//! The runs of a sweep, in a fixed order: grid points with the last axis varying fastest, and
//! for each point its repeats, each seeded `RngTree::new(seed).derive_seed("sweep/repeat", k)`.
//! A shard `K/N` takes the runs whose index is K modulo N: round-robin, so that heavy points
//! (high load, late in the grid) spread over the shards.

use super::SweepError;
use crate::engine::RngTree;
use crate::scenario::sweep::apply;
use crate::scenario::{self, Scenario};
use crate::scenario::{Sweep, SweepValue};
use std::str::FromStr;

/// One run of the sweep.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Position in the sweep, 0-based; sweep.csv is in this order.
    pub index: u64,
    pub point: u64,
    pub repeat: u32,
    pub seed: u64,
    /// One value per axis.
    pub values: Vec<SweepValue>,
}

/// A sweep ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario as written, with its `[sweep]`.
    pub base: Scenario,
    pub sweep: Sweep,
    /// Hash of the base scenario, sweep included: shards of one sweep share it.
    pub hash: String,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    pub fn new(base: &Scenario, file: &str) -> Result<Plan, SweepError> {
        let sweep = base.sweep.clone().ok_or_else(|| SweepError::NoSweep {
            file: file.to_string(),
        })?;
        let tree = RngTree::new(base.run.seed);
        let points: usize = sweep.axes.iter().map(|a| a.values.len()).product();
        let mut runs = Vec::with_capacity(points * sweep.repeats as usize);
        let mut index = vec![0usize; sweep.axes.len()];
        for point in 0..points as u64 {
            let values: Vec<SweepValue> = sweep
                .axes
                .iter()
                .zip(&index)
                .map(|(a, &i)| a.values[i])
                .collect();
            for repeat in 0..sweep.repeats {
                runs.push(PlannedRun {
                    index: runs.len() as u64,
                    point,
                    repeat,
                    seed: tree.derive_seed("sweep/repeat", repeat as u64),
                    values: values.clone(),
                });
            }
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < sweep.axes[d].values.len() {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(Plan {
            hash: scenario::hash(base),
            base: base.clone(),
            sweep,
            runs,
        })
    }

    /// The scenario of one run: the base with the point's values and the repeat's seed.
    pub fn scenario(&self, run: &PlannedRun) -> Scenario {
        let mut s = self.base.clone();
        s.sweep = None;
        for (a, v) in self.sweep.axes.iter().zip(&run.values) {
            apply(&mut s, a.target, *v);
        }
        s.run.seed = run.seed;
        s
    }

    /// The runs of one shard.
    pub fn shard(&self, shard: Shard) -> Vec<PlannedRun> {
        self.runs
            .iter()
            .filter(|r| r.index % shard.count as u64 == shard.index as u64)
            .cloned()
            .collect()
    }

    pub fn points(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.point + 1)
    }
}

/// `--shard K/N`: slice K (0-based) of N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Bound on N: more shards than this is a typo, not a cluster.
pub const SHARDS_MAX: u32 = 100_000;

impl FromStr for Shard {
    type Err = SweepError;
    fn from_str(s: &str) -> Result<Shard, SweepError> {
        let bad = || SweepError::BadShard {
            given: s.to_string(),
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > SHARDS_MAX || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(
            "1/3".parse::<Shard>().ok(),
            Some(Shard { index: 1, count: 3 })
        );
        assert!("3/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("a/3".parse::<Shard>().is_err());
        assert!("2".parse::<Shard>().is_err());
    }
}
