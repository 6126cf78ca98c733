//! `bench check` / `bench update` (issue 8): the counter baselines are byte-identical across
//! runs, and a changed routing decision fails the check naming the scenario and the counters.

use super::{root, scratch};
use interop_sim::bench::counters;
use std::path::Path;
use std::process::Command;

fn bench(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .arg("bench")
        .args(args)
        .output()
        .expect("interop-sim runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Every CI scenario with modeled crypto, in `dir`: the counters are the same as with real
/// crypto (a tested invariant), at a fraction of the time. The real-crypto runs are `.ci/run`'s
/// `bench check` against the committed baselines.
fn modeled_ci_scenarios(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("scenarios");
    std::fs::create_dir_all(&out).unwrap();
    for path in counters::ci_scenarios(&root().join("scenarios")).unwrap() {
        let text = std::fs::read_to_string(&path).unwrap();
        let modeled = if text.contains("crypto = \"real\"") {
            text.replace("crypto = \"real\"", "crypto = \"modeled\"")
        } else if text.contains("crypto = \"modeled\"") {
            text
        } else if text.contains("\n[e2ee]\n") {
            text.replace("\n[e2ee]\n", "\n[e2ee]\ncrypto = \"modeled\"\n")
        } else {
            format!("{text}\n[e2ee]\ncrypto = \"modeled\"\n")
        };
        assert!(
            modeled.contains("crypto = \"modeled\""),
            "{}",
            path.display()
        );
        std::fs::write(out.join(path.file_name().unwrap()), modeled).unwrap();
    }
    out
}

/// Two `bench update` runs of every CI scenario write byte-identical baselines, and a check
/// against them passes (twice).
#[test]
fn counter_baselines_are_byte_identical_across_runs() {
    let scenarios = modeled_ci_scenarios(&scratch("bench-twice-scenarios"));
    let (a, b) = (scratch("bench-twice-a"), scratch("bench-twice-b"));
    counters::update(&scenarios, &a).unwrap();
    counters::update(&scenarios, &b).unwrap();
    let (fa, fb) = (files_of(&a), files_of(&b));
    assert_eq!(fa.len(), counters::ci_scenarios(&scenarios).unwrap().len());
    assert!(fa.iter().all(|(n, _)| !n.starts_with("scale-")));
    assert_eq!(fa, fb, "two runs wrote different baselines");
    for _ in 0..2 {
        let checks = counters::check(&scenarios, &a).unwrap();
        assert!(checks.iter().all(|c| c.passed()), "{checks:?}");
    }
}

/// Acceptance demo: routing birdychat directly instead of through its adapter (a routing
/// decision) fails `bench check` with exit code 1, naming the scenario and changed counters.
#[test]
fn changed_routing_fails_counter_check_naming_scenario_and_counter() {
    let dir = scratch("bench-routing");
    let (scenarios, baseline) = (dir.join("scenarios"), dir.join("baseline"));
    std::fs::create_dir_all(&scenarios).unwrap();
    // Modeled crypto: the same counters as real (a tested invariant), in a fraction of the time.
    let original = std::fs::read_to_string(root().join("scenarios/baseline.toml"))
        .unwrap()
        .replace("crypto = \"real\"", "crypto = \"modeled\"");
    assert!(original.contains("crypto = \"modeled\""));
    std::fs::write(scenarios.join("baseline.toml"), &original).unwrap();
    let dirs = [
        "--scenarios",
        scenarios.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
    ];
    let update: Vec<&str> = ["update"].iter().chain(&dirs).copied().collect();
    let check: Vec<&str> = ["check"].iter().chain(&dirs).copied().collect();
    assert_eq!(bench(&update).0, 0);
    let (code, text) = bench(&check);
    assert_eq!(code, 0, "{text}");

    let proxied = "adapter = \"proxied\"";
    assert!(original.contains(proxied));
    let rerouted = original.replace(proxied, "adapter = \"direct\"");
    std::fs::write(scenarios.join("baseline.toml"), rerouted).unwrap();
    let (code, text) = bench(&check);
    println!("{text}");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("baseline: work.frames_sent: "), "{text}");
    assert!(text.contains("baseline: fingerprint: "), "{text}");
    assert!(text.contains("0 of 1 scenarios match"), "{text}");
}

/// A baseline whose scenario file is gone fails the check, and `bench update` deletes it;
/// other files of the folder (a run's summary.json) are left alone.
#[test]
fn stale_baseline_fails_check_and_update_deletes_it() {
    let dir = scratch("bench-stale");
    let (scenarios, baseline) = (dir.join("scenarios"), dir.join("baseline"));
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::copy(
        root().join("scenarios/push-loss.toml"),
        scenarios.join("push-loss.toml"),
    )
    .unwrap();
    counters::update(&scenarios, &baseline).unwrap();
    std::fs::copy(baseline.join("push-loss.json"), baseline.join("gone.json")).unwrap();
    std::fs::write(baseline.join("summary.json"), "{}").unwrap();
    let checks = counters::check(&scenarios, &baseline).unwrap();
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.scenario.as_str())
        .collect();
    assert_eq!(failed, ["gone"]);
    counters::update(&scenarios, &baseline).unwrap();
    assert!(!baseline.join("gone.json").exists());
    assert!(baseline.join("summary.json").exists());
    assert!(counters::check(&scenarios, &baseline)
        .unwrap()
        .iter()
        .all(|c| c.passed()));
}

/// Issue 21 item 7: the default run (`cargo run --release`, into results/baseline/) leaves
/// `git status` clean, and CI's baselines are committed in benches/baseline/, not beside run
/// outputs. Checked with git's own ignore rules when git and the repository are at hand.
#[test]
fn bench_baselines_tracked_and_run_outputs_ignored() {
    let git = |args: &[&str]| Command::new("git").current_dir(root()).args(args).output();
    match git(&["rev-parse", "--is-inside-work-tree"]) {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("skipped: git or the repository is not available");
            return;
        }
    }
    for output in [
        "summary.json",
        "perf.json",
        "timeseries.csv",
        "latency.hgrm",
        "report.html",
    ] {
        let path = format!("results/baseline/{output}");
        let out = git(&["check-ignore", "--no-index", "-q", &path]).unwrap();
        assert!(out.status.success(), "{path} is not ignored by git");
    }
    for path in [
        "results/my-sweep/point-0/perf.json",
        "results/calibration.toml",
    ] {
        let out = git(&["check-ignore", "--no-index", "-q", path]).unwrap();
        assert!(out.status.success(), "{path} is not ignored by git");
    }
    let out = git(&["check-ignore", "--no-index", "-q", "results/README.md"]).unwrap();
    assert!(!out.status.success(), "results/README.md is ignored");
    for tracked in [
        "benches/baseline/baseline.json",
        "benches/baseline/instructions.json",
    ] {
        let out = git(&["ls-files", "--error-unmatch", tracked]).unwrap();
        assert!(out.status.success(), "{tracked} is not tracked");
    }
    let out = git(&["ls-files", "results"]).unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.trim(), "results/README.md", "tracked under results/");
}
