//! Exploring failures: many seeds with a swarm of faults, named regressions found that way,
//! and shrinking a failing run to a handful of faults.

use crate::root;
use interop_sim::faults::swarm;
use interop_sim::nodes::buggify::Bugs;
use interop_sim::scenario::{self, Scenario};
use interop_sim::shrink::{seeds::run_seeds, shrink};
use interop_sim::sim::{run_with, RunOptions};
use std::process::Command;

fn load(rel: &str) -> Scenario {
    scenario::load(&root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn named_regressions_stay_fixed() {
    let dir = root().join("tests/data/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("regressions dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    for f in files {
        let s = scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let r = run_with(&s, "test", RunOptions::default()).summary;
        let c = &r.counters;
        assert_eq!(
            (c.lost, c.duplicates, c.out_of_order, c.decrypt_failures),
            (0, 0, 0, 0),
            "{}: {:#?}",
            f.display(),
            r.violations
        );
        assert!(r.passed, "{}: {:#?}", f.display(), r.violations);
    }
}

/// The group recovery bug's siblings: user-side resets and server faults with groups on, 200
/// seeds, every run heals to 0 undecryptable messages (65 of the 200 failed before the fix).
#[test]
fn group_recovery_swarm_heals_every_seed() {
    let s = load("tests/data/scenarios/group-recovery-swarm.toml");
    let results = run_seeds(&s, 1..=200, 2, RunOptions::default());
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("seed {}: {:?} {}", r.seed, r.failures, r.liveness))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn swarm_seeds_draw_different_faults_and_all_pass() {
    for name in [
        "scenarios/partner-outage.toml",
        "scenarios/lossy-mobile.toml",
    ] {
        let s = load(name);
        let sw = s.swarm.as_ref().expect("a [swarm] table");
        let mut a = s.clone();
        a.run.seed = 1;
        let mut b = s.clone();
        b.run.seed = 2;
        assert_ne!(
            swarm::draw(&a, sw),
            swarm::draw(&b, sw),
            "each seed its own fault mix"
        );
        let results = run_seeds(&s, 1..=8, 2, RunOptions::default());
        assert_eq!(results.len(), 8);
        assert!(
            results.windows(2).all(|w| w[0].seed < w[1].seed),
            "results in seed order"
        );
        for r in results {
            assert!(
                r.passed,
                "{name} seed {}: {:?} {}",
                r.seed, r.failures, r.liveness
            );
        }
    }
}

#[test]
fn seeds_results_do_not_depend_on_threads() {
    let s = load("scenarios/lossy-mobile.toml");
    let one: Vec<_> = run_seeds(&s, 3..=6, 1, RunOptions::default())
        .into_iter()
        .map(|r| r.fingerprint)
        .collect();
    let two: Vec<_> = run_seeds(&s, 3..=6, 2, RunOptions::default())
        .into_iter()
        .map(|r| r.fingerprint)
        .collect();
    assert_eq!(one, two);
}

#[test]
fn shrink_cuts_a_200_fault_failure_to_a_handful() {
    let mut s = load("scenarios/lossy-mobile.toml");
    let sw = s.swarm.clone().expect("[swarm]");
    s.swarm = None;
    s.faults.clear();
    let mut seed = 1_000;
    while s.faults.len() < 200 {
        let mut t = s.clone();
        t.run.seed = seed;
        seed += 1;
        s.faults.extend(swarm::draw(&t, &sw));
    }
    s.faults.truncate(200);
    // Break ordering, and make sure something reorders: the shrink must keep that fault.
    s.faults.push(scenario::Fault {
        at_ns: 60_000_000_000,
        for_ns: Some(120_000_000_000),
        kind: scenario::FaultKind::Reorder {
            link: scenario::HopClass::ClientServer,
            rate: 0.3,
        },
    });
    let options = RunOptions {
        bugs: Bugs::new(false, true, false),
        ..RunOptions::default()
    };
    let shrunk = shrink(&s, options).expect("the bug makes it fail");
    assert_eq!(shrunk.faults_before, 201);
    assert!(
        shrunk.scenario.faults.len() <= 5,
        "shrunk to {} faults",
        shrunk.scenario.faults.len()
    );
    assert!(
        shrunk.signature.contains(&"out_of_order".to_string()),
        "{:?}",
        shrunk.signature
    );
    let again = run_with(&shrunk.scenario, "test", options).summary;
    assert!(
        again.counters.out_of_order > 0,
        "the shrunk scenario still fails the same way"
    );
    let rendered = interop_sim::shrink::render(&shrunk);
    let reparsed = scenario::parse(&rendered, "shrunk.toml").expect("the shrunk file parses");
    assert_eq!(reparsed.faults.len(), shrunk.scenario.faults.len());
}

#[test]
fn cli_seeds_lists_failures_with_replay_commands() {
    let file = root().join("scenarios/volatile-crash.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(["run", file.to_str().expect("utf-8"), "--seeds", "1..3"])
        .output()
        .expect("spawn");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("of 3 seeds (1..3) passed"), "{stdout}");
    let bad = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(["run", file.to_str().expect("utf-8"), "--seeds", "9..1"])
        .output()
        .expect("spawn");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("empty"));
}
