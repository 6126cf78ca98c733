//! Sweeps: the runs of a scenario's `[sweep]` grid (points x repeats), run in parallel on the
//! local cores, in slices (`--shard K/N`) on many machines, and merged back. Every run is
//! independent and seeded from the scenario, so the results are the same whatever the number
//! of threads or shards: records are kept in run order and written in run order.
//!
//! Module map: `plan` (the runs of a sweep, shards), `exec` (threads), `record` (what is kept of
//! a run: counters and lossless histograms), `store` (sweep.csv, runs.json, shard.json, merge).

pub mod curves;
pub mod designs;
pub mod exec;
pub mod plan;
pub mod record;
pub mod store;

pub use exec::{run_all, Progress};
pub use plan::{Plan, PlannedRun, Shard};
pub use record::RunRecord;
pub use store::{merge, read_shard, write_shard, write_sweep, Merged, ShardFile, SweepOutput};

use std::path::PathBuf;

/// Bad input to a sweep, a shard or a merge.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{file}: the scenario has no [sweep] table; add one, e.g. [sweep] grid = {{ \"workload.messages_per_user_hour\" = [10, 40] }}")]
    NoSweep { file: String },
    #[error("--shard {given}: expected K/N with 0 <= K < N, like 0/3")]
    BadShard { given: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a shard file of this version: {message}")]
    BadShardFile { path: PathBuf, message: String },
    #[error("cannot merge: {0}")]
    Mismatch(String),
    #[error("histogram of run {run}: {message}")]
    Histogram { run: u64, message: String },
    #[error("{0}")]
    Report(#[from] crate::report::ReportError),
    /// Run `run` (seed `seed`) panicked: a bug in the simulator.
    #[error("run {run} (seed {seed}) panicked: {message}")]
    Bug {
        run: u64,
        seed: u64,
        message: String,
    },
}
