//! Deliberate bugs, for proving that the checker can fail (FoundationDB's BUGGIFY). Each
//! switch breaks one delivery mechanism; a test turns it on and asserts that the checker
//! reports the violation. The switches can only be turned on in builds with the `buggify`
//! feature, which only the test build enables (a dev-dependency of the crate on itself), so a
//! release binary always runs with [`Bugs::NONE`].

/// Which mechanisms to break.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Devices show a message again instead of suppressing the duplicate.
    pub(crate) break_dedup: bool,
    /// Devices show messages as they arrive, ignoring sequence numbers.
    pub(crate) break_ordering: bool,
    /// A "durable" server crash loses its queues anyway.
    pub(crate) break_durability: bool,
    /// Devices never retry their outbox (a lost submission stays lost).
    pub(crate) never_retry: bool,
    /// Servers never ack a submission (the sender's outbox stalls behind it).
    pub(crate) never_ack: bool,
}

impl Bugs {
    pub const NONE: Bugs = Bugs {
        break_dedup: false,
        break_ordering: false,
        break_durability: false,
        never_retry: false,
        never_ack: false,
    };

    /// Turns the named switches on. Test builds only.
    #[cfg(feature = "buggify")]
    pub fn new(break_dedup: bool, break_ordering: bool, break_durability: bool) -> Self {
        Bugs {
            break_dedup,
            break_ordering,
            break_durability,
            ..Bugs::NONE
        }
    }

    /// Devices never retry their outbox. Test builds only.
    #[cfg(feature = "buggify")]
    pub fn never_retry(self) -> Self {
        Bugs {
            never_retry: true,
            ..self
        }
    }

    /// Servers never ack a submission. Test builds only.
    #[cfg(feature = "buggify")]
    pub fn never_ack(self) -> Self {
        Bugs {
            never_ack: true,
            ..self
        }
    }
}

/// Names a seed whose run panics at its start, in builds with the `buggify` feature only: the
/// command-line tests set it to prove that a failed assertion ends the command with exit code 3
/// and the command that replays it (`sim::bug`).
pub const PANIC_SEED_VAR: &str = "INTEROP_SIM_BUGGIFY_PANIC_SEED";

/// Panics if [`PANIC_SEED_VAR`] names `seed`.
#[cfg(feature = "buggify")]
pub fn panic_if_asked(seed: u64) {
    let asked = std::env::var(PANIC_SEED_VAR).ok();
    if asked.and_then(|v| v.parse::<u64>().ok()) == Some(seed) {
        panic!("buggify: the run of seed {seed} panics on purpose ({PANIC_SEED_VAR})");
    }
}
