//! The peer's JSON-lines server (`interop-sim peer`) on arbitrary input lines.
//! The property checked is `interop_sim::fuzzing::peer`, which the normal test suite also runs
//! under proptest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| interop_sim::fuzzing::peer(data));
