//! How to run live beyond the scenario (users, rate, shards, drain, a remote layout): the
//! options every part of a live run reads, kept apart from the run so that preparing and
//! judging it need not import the run itself.

use super::schedule::Arrivals;
use super::topology::Layout;

/// Time between binding the listeners and the first arrival: every device connects first (a
/// burst of Connect frames that must not delay the first arrivals).
pub const WARMUP_NS: u64 = 1_000_000_000;

/// How to run live, beyond the scenario.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Scale the scenario's users down (or up) to this many in all, providers in proportion.
    pub users: Option<u32>,
    /// Messages per second; default: the scenario's users x messages_per_user_hour.
    pub rate_per_s: Option<f64>,
    /// Sending window; default: the scenario's duration.
    pub duration_ns: Option<u64>,
    pub arrivals: Arrivals,
    pub ramp_ns: u64,
    /// Generator shards (tasks holding client devices).
    pub shards: usize,
    /// An arrival more than this late is dropped and counted.
    pub lag_max_ns: u64,
    /// Bound on the drain after the sending window.
    pub drain_max_ns: u64,
    /// Tokio worker threads.
    pub threads: usize,
    /// Worker threads of a runtime of the load generator's own, for its clients (their Signal
    /// work and sockets); 0: the clients share the servers' `threads`.
    pub generator_threads: usize,
    /// Pin the servers' threads to cores of their own and the load generator's (with every
    /// thread it starts, the pacer's too) to the others (`--pin`, with `generator_threads`).
    pub pin: bool,
    /// The rate counts as reached when at least this share of the planned arrivals went out.
    pub rate_tolerance: f64,
    /// Encrypt every message before the run (senders' Signal work off the measured path;
    /// recipients still decrypt live). Bounded by [`PRECRYPT_MAX`] messages.
    pub precrypt: bool,
    /// Establish every scheduled conversation's Signal session before the clock (steady-state
    /// messaging); off, the first message of a conversation does its X3DH on the measured
    /// path, as in the simulator (`validate`).
    pub warm_sessions: bool,
    /// Load only (`interop-sim load`): the servers run elsewhere, at this layout, and this
    /// generator is `k` of `n`.
    pub remote: Option<Remote>,
}

/// A load generator against servers in other processes.
#[derive(Clone, Copy, Debug)]
pub struct Remote {
    pub layout: Layout,
    pub k: u32,
    pub n: u32,
}

/// Bound on messages encrypted ahead with `precrypt`.
pub const PRECRYPT_MAX: usize = 5_000_000;

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            users: None,
            rate_per_s: None,
            duration_ns: None,
            arrivals: Arrivals::Constant,
            ramp_ns: 0,
            shards: 1,
            lag_max_ns: 1_000_000_000,
            drain_max_ns: 10_000_000_000,
            threads: 2,
            generator_threads: 0,
            pin: false,
            rate_tolerance: 0.99,
            precrypt: false,
            warm_sessions: true,
            remote: None,
        }
    }
}
