//! Result files: summary.json, timeseries.csv, latency.hgrm, and the one-screen summary. Every
//! file here is a pure function of the run's deterministic results; wall-clock figures go to
//! perf.json only.

pub mod files;
pub mod perf;
pub mod screen;

pub use files::{write_results, ReportError};
