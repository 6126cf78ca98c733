//! The live driver's clock: wall time since the run started, as the nodes' `SimTime`.
//! determinism: ok (live mode, wall clock and real sockets)

use crate::engine::SimTime;
use std::time::{Duration, Instant};

/// Wall-clock time since the run started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    #[allow(clippy::disallowed_methods)] // live mode: the wall clock is the point
    pub fn start() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    #[allow(clippy::disallowed_methods)] // live mode: the wall clock is the point
    pub fn now(&self) -> SimTime {
        SimTime::from_nanos(self.start.elapsed().as_nanos() as u64)
    }
    /// Sleeps the calling thread until `t` (a thread's sleep is precise to tens of
    /// microseconds; a tokio timer rounds up to the next millisecond).
    pub fn sleep_thread_until(&self, t: SimTime) {
        let now = self.now();
        if t > now {
            std::thread::sleep(Duration::from_nanos(t.since(now)));
        }
    }
    /// The wall-clock instant of `t`, for sleeping until it.
    pub fn instant(&self, t: SimTime) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.start + Duration::from_nanos(t.as_nanos()))
    }
}
