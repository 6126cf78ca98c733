//! Result files: summary.json, timeseries.csv, latency.hgrm, messages.csv, plots, report.html,
//! and the one-screen summary. Every file here is a pure function of the run's deterministic
//! results; wall-clock figures go to perf.json only (written through `perf`).

pub mod compare;
pub mod crypto;
pub mod designs;
pub mod files;
pub mod html;
mod labels;
pub mod messages;
pub mod perf;
pub mod plots;
pub mod run;
mod run_tables;
pub mod screen;
pub mod sweep_page;
pub mod validate_page;

pub use files::{write_results, ReportError};
pub use run::{write_run, RunOptions};
