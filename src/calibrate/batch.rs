//! What every measured operation shares: a batch of prepared operations that times itself.

use crate::report::perf::Stopwatch;

/// Runs the prepared operations and returns the nanoseconds they took.
pub type Batch = Box<dyn FnOnce() -> Result<u64, String>>;

/// Prepares a batch of `n` operations on payloads of `bytes` bytes.
pub type Prepare = fn(n: usize, bytes: usize) -> Result<Batch, String>;

/// Times `run` as a whole.
pub fn timed(run: impl FnOnce() -> Result<(), String>) -> Result<u64, String> {
    let watch = Stopwatch::start();
    run()?;
    Ok(watch.elapsed_ns())
}

/// An error's words, for a batch's `Err`.
pub fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
