//! interop-sim: a deterministic discrete-event simulator and load tester for cross-app,
//! end-to-end encrypted messaging under the EU Digital Markets Act. See DESIGN.md for the
//! architecture; the module tree mirrors the modeled system.

pub mod bench;
pub mod calibrate;
pub mod collections;
pub mod directory;
pub mod e2ee;
pub mod engine;
pub mod faults;
#[doc(hidden)]
pub mod fuzzing;
pub mod live;
pub mod metrics;
pub mod mls;
pub mod net;
pub mod nodes;
pub mod planner;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod sim;
pub mod sweep;
pub mod wire;
pub mod workload;
