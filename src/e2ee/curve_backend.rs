//! Which of curve25519-dalek's backends this process runs on, for the choices that depend on it
//! (X25519 agreement in `keys`, sender keys' tables in `xeddsa`).

/// Whether dalek's variable- and double-base multiplications run on AVX-512 IFMA: .cargo/config.toml
/// asks for that backend (as does a build for a CPU with IFMA, `-C target-cpu=native` on one),
/// and dalek uses it when the CPU has it (AVX2 or serial code otherwise).
/// There a double-base multiplication takes 12.2 us against AVX2's 22.5, and a variable-base one
/// 13.4 against 23.
pub(crate) fn dalek_runs_on_ifma() -> bool {
    #[cfg(all(
        target_arch = "x86_64",
        any(
            curve25519_dalek_backend = "avx512",
            all(target_feature = "avx512ifma", target_feature = "avx512vl")
        )
    ))]
    {
        std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        any(
            curve25519_dalek_backend = "avx512",
            all(target_feature = "avx512ifma", target_feature = "avx512vl")
        )
    )))]
    {
        false
    }
}
