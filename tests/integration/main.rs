//! Integration tests, in one binary (STYLE.md): the scenario front end, the CLI contract, and
//! whole-scenario runs (determinism, delivery guarantees).

mod abuse;
mod architecture;
mod bench;
mod budget;
mod cli;
mod delivery;
mod determinism;
mod e2ee;
mod explore;
mod faults;
mod groups;
mod live;
mod media;
mod reports;
mod scenario_errors;
mod scenario_robust;
mod scenario_valid;
mod warmup;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory under the target dir (no temp-dir crate needed; each test
/// names its own).
pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir under target/ is writable");
    dir
}
