//! A failed assertion inside a run is a bug in the simulator, not a result. [`catch`] runs one
//! simulation and turns its panic into a [`Bug`] that names the seed, so that a command running
//! many seeds (`--seeds`, a sweep) finishes the others and the command line can end with exit
//! code 3 and the command that replays the failing run.

use std::any::Any;
use std::panic::AssertUnwindSafe;

/// A run that panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bug {
    /// The run's seed: with the scenario, all it takes to replay the panic.
    pub seed: u64,
    /// The panic's message (an assertion's text).
    pub message: String,
}

/// Runs `run` (one simulation of `seed`), catching its panic. The panic hook still prints
/// where it happened; the caller says how to replay it.
pub fn catch<T>(seed: u64, run: impl FnOnce() -> T) -> Result<T, Bug> {
    // AssertUnwindSafe: a run owns its world; after a panic the world is dropped and the
    // caller only reads the message.
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "buggify")]
        crate::nodes::buggify::panic_if_asked(seed);
        run()
    }))
    .map_err(|payload| Bug {
        seed,
        message: message(payload.as_ref()),
    })
}

/// The text of a panic: what `panic!` and `assert!` carry (a `&str` or a `String`).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_bug_with_its_seed_and_message() {
        assert_eq!(catch(7, || 1 + 1), Ok(2));
        let bug = catch(7, || -> u32 { panic!("time went back: {} < {}", 3, 5) });
        assert_eq!(
            bug,
            Err(Bug {
                seed: 7,
                message: "time went back: 3 < 5".to_string()
            })
        );
        let two = std::hint::black_box(2);
        let bug = catch(8, || assert!(two == 3, "arithmetic"));
        assert_eq!(bug.map_err(|b| b.message), Err("arithmetic".to_string()));
    }
}
