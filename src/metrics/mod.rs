//! Measurement, kept outside the system under test (TigerBeetle's VOPR): nodes emit
//! [`LedgerEvent`]s; the [`Ledger`] folds them into per-message records, histograms and time
//! series; the [`summary`] turns the ledger into the counters of SCENARIOS.md and evaluates
//! `[expect]`. No node ever decides whether a guarantee held.

pub mod checker;
pub mod deliveries;
mod event;
pub mod feed;
pub mod hops;
pub mod inbox;
pub mod ledger;
pub mod media;
mod order;
pub mod result;
pub mod retry_storm;
pub mod summary;
pub mod timeseries;

pub use deliveries::Deliveries;
pub use ledger::{IntervalLatency, Ledger, LedgerEvent, PathKind};
pub use result::RunResult;
pub use summary::{Origin, Summary, Verdict};
pub use timeseries::{Sample, TimeSeries};
