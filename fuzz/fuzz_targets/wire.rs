//! The Signal wire decoders (public key, whisper, prekey, sender-key and distribution messages); the first byte picks one.
//! The property checked is `interop_sim::fuzzing::wire`, which the normal test suite also runs
//! under proptest.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| interop_sim::fuzzing::wire(data));
