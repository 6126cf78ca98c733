//! The live driver: the same sans-IO nodes as the simulator, run as tokio tasks behind real TCP
//! sockets on loopback, with the gateway's partner links under Noise
//! (Noise_XX_25519_AESGCM_SHA256) and load-generator clients that really encrypt every message
//! with the Signal protocol. The load is an open model (a precomputed arrival schedule) and
//! latency is measured from each message's intended send time (coordinated-omission corrected),
//! with the uncorrected histogram beside it.
//!
//! This is the one module allowed the wall clock and sockets (DESIGN.md, determinism rules);
//! Noise ephemerals come from the OS generator (live mode faces real sockets); the rest is seeded.
//!
//! # Files
//! `abuse` (what strangers do to a server's ports, counted, and the bounds), `codec` (records on
//! the wire), `noise` (handshake, OS-generator resolver), `conn` (reader and
//! writer tasks, batching), `node` (server node tasks), `client` (generator shards), `crypto`
//! (their Signal sessions), `schedule` (arrivals), `ledger` (the shared ledger), `prepare`
//! (what is built before the clock starts), `run` (one live run), `outcome` (its judgement and
//! report), `session` (load runs as sessions at a long-lived server), `threads` (what the
//! runtimes' worker threads did), `validate` (one scenario in the simulator and live,
//! compared), `align` (the inputs it gives both), `host_model` (its model of this machine's
//! cores) and `ladder` (validate at fractions of the live saturation).

pub mod abuse;
pub mod align;
pub mod client;
pub mod clock;
pub mod codec;
pub mod comparison;
pub mod conn;
pub mod crypto;
pub mod faults;
pub mod hops;
pub mod host_model;
pub mod ladder;
pub mod ledger;
pub mod media_http;
pub mod node;
pub mod noise;
pub mod options;
pub mod outcome;
pub mod output;
pub mod prepare;
pub mod probe;
pub mod reach;
pub mod remote;
pub mod repeats;
pub mod run;
pub mod schedule;
pub mod session;
pub mod step_pairs;
pub mod threads;
pub mod topology;
pub mod validate;

pub use options::LiveOptions;
pub use outcome::{LiveOutcome, LiveReport};
pub use run::run_live;
pub use schedule::Arrivals;

use std::net::SocketAddr;

/// What can go wrong in a live run (bad input or the machine refusing), kept apart from the
/// simulated failures, which go to the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The OS refused (its error is the source, printed after `what` by the caller's chain).
    #[error("{what}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    /// A listener could not take its port: the address says which one.
    #[error("cannot listen on {at}: another process holds the port, or a recent connection's TIME_WAIT does; choose another base with --listen")]
    Bind {
        at: SocketAddr,
        source: std::io::Error,
    },
    #[error("noise: {0}")]
    Noise(String),
    #[error("{0} is not a loopback address: live load goes to 127.0.0.0/8 or ::1 only")]
    NotLoopback(String),
    #[error("bad address {0:?}: expected HOST:PORT on loopback, such as 127.0.0.1:7000")]
    BadAddr(String),
    #[error(transparent)]
    Schedule(#[from] schedule::ScheduleError),
    #[error("{0}")]
    Invalid(String),
    /// A ladder's saturation search found no edge to climb to.
    #[error("{0}")]
    NoSaturation(String),
}

impl LiveError {
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LiveError {
        move |source| LiveError::Io { what, source }
    }
}

/// Parses `HOST:PORT` and refuses anything but loopback.
pub fn loopback_addr(s: &str) -> Result<SocketAddr, LiveError> {
    let addr: SocketAddr = s.parse().map_err(|_| LiveError::BadAddr(s.to_string()))?;
    if !addr.ip().is_loopback() {
        return Err(LiveError::NotLoopback(s.to_string()));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_pass() {
        assert!(loopback_addr("127.0.0.1:7000").is_ok());
        assert!(loopback_addr("[::1]:7000").is_ok());
        assert!(matches!(
            loopback_addr("10.0.0.1:7000"),
            Err(LiveError::NotLoopback(_))
        ));
        assert!(matches!(
            loopback_addr("example.com:80"),
            Err(LiveError::BadAddr(_))
        ));
    }
}
