//! Instruction counts of the hot paths under callgrind, through gungraun: the counts CI gates
//! (`interop-sim bench instructions`, benches/baseline/instructions.json, more than 2 % extra
//! instructions fails). The states are built by `interop_sim::bench::hotpaths` outside the
//! counted function; each benchmark counts one `run` (a fixed number of operations, see the
//! constants there) and hands the state back so that dropping it is not counted either.
//!
//! Needs valgrind and `gungraun-runner` 0.19.3 (the library's version) on the PATH:
//! `cargo install --locked gungraun-runner --version 0.19.3`. See benches/README.md.

use gungraun::{library_benchmark, library_benchmark_group, main};
use interop_sim::bench::hotpaths::{self, *};
use std::hint::black_box;

#[library_benchmark]
#[bench::run(hotpaths::engine_loop())]
fn engine_loop(mut s: EngineLoop) -> EngineLoop {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::ratchet_encrypt())]
fn ratchet_encrypt(mut s: RatchetEncrypt) -> RatchetEncrypt {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::ratchet_decrypt())]
fn ratchet_decrypt(mut s: RatchetDecrypt) -> RatchetDecrypt {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::x3dh())]
fn x3dh(mut s: X3dh) -> X3dh {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::sender_key_encrypt())]
fn sender_key_encrypt(mut s: SenderKeyEncrypt) -> SenderKeyEncrypt {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::sender_key_decrypt())]
fn sender_key_decrypt(mut s: SenderKeyDecrypt) -> SenderKeyDecrypt {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::sender_key_decrypt_table())]
fn sender_key_decrypt_table(mut s: SenderKeyDecrypt) -> SenderKeyDecrypt {
    black_box(s.run());
    s
}

#[library_benchmark]
#[bench::run(hotpaths::wire_decode())]
fn wire_decode(mut s: WireDecode) -> WireDecode {
    black_box(s.run());
    s
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks =
        engine_loop,
        ratchet_encrypt,
        ratchet_decrypt,
        x3dh,
        sender_key_encrypt,
        sender_key_decrypt,
        sender_key_decrypt_table,
        wire_decode
);

main!(library_benchmark_groups = hot_paths);
