//! The live codec: records split off a TCP byte stream, each re-encoding to its bytes.
//! The property checked is `interop_sim::fuzzing::codec`, which the normal test suite also runs
//! under proptest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| interop_sim::fuzzing::codec(data));
