//! The simulator: builds the world (directory, nodes, links, workload, fault schedule) from a
//! validated scenario and drives it with the engine. The one place that knows both the engine
//! and the messaging system: nodes stay sans-IO, the engine stays generic.

pub mod bug;
pub mod cpu;
mod host_cores;
mod media;
#[cfg(test)]
mod queueing_tests;
mod rounds;
mod timers;
mod transport;
mod world;

pub use crate::metrics::RunResult;
pub use world::{build_directory, run_scenario, run_traced, run_with, RunOptions, TraceFilter};
