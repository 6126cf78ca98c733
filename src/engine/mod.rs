//! The deterministic discrete-event engine: virtual time, the event queue, the RNG tree, the
//! run fingerprint and the bounded run loop. It knows nothing about messaging, so that every
//! later capability plugs into one small, well-tested core (DESIGN.md, "Architecture").

pub mod fingerprint;
pub mod prefetch;
pub mod queue;
pub mod rng;
pub mod run;
pub mod time;

pub use fingerprint::Fingerprint;
pub use queue::{EventQueue, HeapQueue, PendingEvents};
pub use rng::{RngTree, SimRng};
pub use run::{run, Limits, RunOutcome, Scheduler, StopReason, World};
pub use time::SimTime;
