//! Determinism is the product: the same scenario and seed give byte-identical result files,
//! in one process and across processes; another seed gives another run.

use crate::{root, scratch};
use interop_sim::report;
use interop_sim::scenario;
use interop_sim::sim::run_scenario;
use std::path::Path;
use std::process::Command;

const DETERMINISTIC_FILES: [&str; 3] = ["summary.json", "timeseries.csv", "latency.hgrm"];

fn small() -> scenario::Scenario {
    scenario::load(&root().join("tests/data/scenarios/small.toml")).expect("small.toml is valid")
}

fn read(dir: &Path, f: &str) -> Vec<u8> {
    std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{} missing: {e}", dir.join(f).display()))
}

#[test]
fn same_seed_same_files_in_one_process() {
    let s = small();
    let hash = scenario::hash(&s);
    let (a, b) = (scratch("det-a"), scratch("det-b"));
    report::write_results(&a, &run_scenario(&s, &hash)).expect("write a");
    report::write_results(&b, &run_scenario(&s, &hash)).expect("write b");
    for f in DETERMINISTIC_FILES {
        assert!(
            read(&a, f) == read(&b, f),
            "{f} differs between two runs of the same seed"
        );
    }
}

#[test]
fn same_seed_same_files_in_two_processes() {
    let file = root().join("tests/data/scenarios/small.toml");
    let dirs = [scratch("det-proc-a"), scratch("det-proc-b")];
    for d in &dirs {
        let status = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
            .args([
                "run",
                file.to_str().expect("utf-8 path"),
                "--out",
                d.to_str().expect("utf-8 path"),
            ])
            .output()
            .expect("run interop-sim");
        assert!(
            status.status.code().is_some_and(|c| c <= 1),
            "run failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    for f in DETERMINISTIC_FILES {
        assert!(
            read(&dirs[0], f) == read(&dirs[1], f),
            "{f} differs between two processes"
        );
    }
    assert!(
        dirs[0].join("perf.json").exists(),
        "wall-clock figures go to perf.json"
    );
}

#[test]
fn the_baseline_twice_gives_identical_files() {
    // Modeled crypto: the summary is the same as with real crypto (e2ee.rs checks that), and
    // .ci/run runs the real-crypto baseline twice in two processes (a minute each).
    let mut s = scenario::load(&root().join("scenarios/baseline.toml")).expect("baseline is valid");
    s.e2ee.crypto = scenario::CryptoMode::Modeled;
    let hash = scenario::hash(&s);
    let a = run_scenario(&s, &hash);
    let b = run_scenario(&s, &hash);
    assert_eq!(a.summary, b.summary);
    let (da, db) = (scratch("det-base-a"), scratch("det-base-b"));
    report::write_results(&da, &a).expect("write a");
    report::write_results(&db, &b).expect("write b");
    for f in DETERMINISTIC_FILES {
        assert!(read(&da, f) == read(&db, f), "baseline {f} differs");
    }
}

#[test]
fn another_seed_changes_the_fingerprint() {
    let mut s = small();
    let hash = scenario::hash(&s);
    let a = run_scenario(&s, &hash).summary;
    s.run.seed += 1;
    let b = run_scenario(&s, &hash).summary;
    assert_ne!(a.fingerprint, b.fingerprint);
    assert_ne!(a.latency, b.latency, "another seed draws other latencies");
}
