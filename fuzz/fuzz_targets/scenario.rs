//! The scenario parser and the cost-table parser on arbitrary UTF-8 (non-UTF-8 input is skipped: both take `&str`).
//! The property checked is `interop_sim::fuzzing::scenario`, which the normal test suite also runs
//! under proptest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| interop_sim::fuzzing::scenario(data));
