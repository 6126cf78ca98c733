//! Regression benches that gate CI without noise (issue 8): deterministic work counters per
//! scenario, compared with the committed `benches/baseline/<scenario>.json` (`counters`), and
//! instruction counts of the hot paths under valgrind's callgrind, compared with
//! `benches/baseline/instructions.json` (`instructions`, `hotpaths`). Neither reads a clock:
//! counters come from the deterministic simulator, instruction counts from callgrind.
//! criterion benches (`benches/`) stay for people; they time, these count.

pub mod counters;
pub mod hotpaths;
pub mod instructions;
pub mod pipeline;

use std::path::PathBuf;

/// What can go wrong around the benches, apart from a regression (which is a result, not an
/// error).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A scenario of the CI set does not validate (bad input: exit code 2).
    #[error("{0}")]
    Scenario(String),
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A baseline or count file that is not what `bench update` writes.
    #[error("{path}: not a valid baseline file: {message}")]
    BadFile { path: PathBuf, message: String },
    /// valgrind is missing or failed, or its output could not be read.
    #[error("callgrind: {0}")]
    Callgrind(String),
    /// An unknown hot path name.
    #[error("unknown hot path {0:?} (known: {1})")]
    UnknownHotPath(String, String),
}

impl BenchError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.into(),
            err: source,
        }
    }

    /// Bad input (exit code 2) rather than an internal error.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            BenchError::Scenario(_) | BenchError::BadFile { .. } | BenchError::UnknownHotPath(..)
        )
    }
}

/// Writes `text` to `path` only if it differs, so that an unchanged baseline keeps its mtime;
/// returns whether the file changed.
pub(crate) fn write_if_changed(path: &std::path::Path, text: &str) -> Result<bool, BenchError> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| BenchError::io(path, e))?;
    Ok(true)
}
