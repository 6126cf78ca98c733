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
mod group_media;
mod groups;
mod inbox;
mod live;
mod media;
mod mimi;
mod mls_interop;
mod plan;
mod queueing;
mod reports;
mod scenario_errors;
mod scenario_robust;
mod scenario_valid;
mod steps;
mod warmup;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A base port for a server layout of `n` consecutive ports, below the kernel's ephemeral
/// range (32768 and up on Linux): a port from that range may be held by the TIME_WAIT of a
/// client connection of an earlier test, and a listener cannot take it over. Every one of the
/// `n` ports is bound once (and let go) before the base is returned.
pub fn free_base(n: u16) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Tests of one binary take turns through the range; two binaries start apart.
    let start = 20_000 + (std::process::id() % 500) as u16 * 10;
    for _ in 0..200 {
        let base = start + NEXT.fetch_add(n + 1, Ordering::Relaxed) % 7_000;
        // The layout's media services sit at base + 999 (proxy) and base + 1000 + provider.
        let media = (999..1005).map(|k| base + k);
        let all_free = ((0..n).map(|k| base + k).chain(media))
            .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return ([127, 0, 0, 1], base).into();
        }
    }
    panic!("no {n} consecutive free ports in 20000..32000 on loopback");
}

/// A fresh, empty scratch directory under the target dir (no temp-dir crate needed; each test
/// names its own).
/// Every file under `dir`, at any depth, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir under target/ is writable");
    dir
}
