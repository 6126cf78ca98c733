//! The Noise_XX handshake messages a stranger sends to the gateway (first, third) or to a partner client (second); the first byte picks which.
//! The property checked is `interop_sim::fuzzing::noise`, which the normal test suite also runs
//! under proptest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| interop_sim::fuzzing::noise(data));
