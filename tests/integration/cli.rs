//! The command-line contract: documented exit codes (0 passed, 1 an expectation failed,
//! 2 invalid scenario or arguments, 3 internal error), errors that name file, line and key,
//! and no panic on any input.

use crate::{root, scratch};

use std::process::{Command, Output};

fn interop_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(args)
        .output()
        .expect("spawn interop-sim")
}

fn assert_invalid(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, stderr:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
    stderr
}

/// `path:line:col:` at the start of some line of the message.
fn has_location(stderr: &str, file: &str) -> bool {
    stderr.lines().any(|l| {
        let Some(rest) = l.strip_prefix(file) else {
            return false;
        };
        let mut parts = rest.splitn(4, ':');
        parts.next() == Some("")
            && parts
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 1))
            && parts.next().is_some_and(|n| n.parse::<u32>().is_ok())
    })
}

#[test]
fn every_broken_file_exits_2_with_its_location() {
    let dir = root().join("tests/data/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/broken")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file()) // not cost_tables/
        .collect();
    files.sort();
    assert!(files.len() >= 15, "at least 15 broken scenarios");
    for f in files {
        let name = f.to_str().expect("utf-8 path");
        for cmd in ["run", "check"] {
            let out = interop_sim(
                &[
                    cmd,
                    name,
                    "--out",
                    scratch("cli-broken").to_str().expect("utf-8"),
                ][..if cmd == "run" { 4 } else { 2 }],
            );
            let stderr = assert_invalid(&out, name);
            assert!(
                has_location(&stderr, name),
                "{cmd} {name}: no file:line:col in\n{stderr}"
            );
        }
    }
}

#[test]
fn the_message_names_the_key_and_suggests_the_right_one() {
    let f = root().join("tests/data/broken/misspelt_key.toml");
    let stderr = assert_invalid(
        &interop_sim(&["check", f.to_str().expect("utf-8")]),
        "misspelt key",
    );
    assert!(stderr.contains("did you mean"), "{stderr}");
}

#[test]
fn binary_garbage_missing_files_and_bad_arguments_exit_2() {
    let dir = scratch("cli-garbage");
    let garbage = dir.join("garbage.toml");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 0xff, 0xfe, 7, 0, 1, 2, 3])
        .expect("write garbage");
    assert_invalid(
        &interop_sim(&["run", garbage.to_str().expect("utf-8")]),
        "binary garbage",
    );
    assert_invalid(
        &interop_sim(&["run", "no/such/scenario.toml"]),
        "missing file",
    );
    assert_invalid(&interop_sim(&["run", "--seed", "minus-one"]), "bad seed");
    assert_invalid(&interop_sim(&["frobnicate"]), "unknown command");
    let as_dir = interop_sim(&["check", dir.to_str().expect("utf-8")]);
    assert_invalid(&as_dir, "a directory");
}

#[test]
fn check_prints_the_resolved_scenario_and_its_hash() {
    let f = root().join("tests/data/valid/minimal.toml");
    let out = interop_sim(&["check", f.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[capacity"),
        "defaults filled in:\n{stdout}"
    );
    assert!(stdout.contains("scenario hash: "), "{stdout}");
}

fn run_with_expect(name: &str, expect: &str) -> Output {
    let dir = scratch(name);
    let base = std::fs::read_to_string(root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml");
    let cut = base.find("[expect]").expect("small.toml has [expect]");
    let file = dir.join("s.toml");
    std::fs::write(&file, format!("{}[expect]\n{expect}\n", &base[..cut])).expect("write scenario");
    interop_sim(&[
        "run",
        file.to_str().expect("utf-8"),
        "--out",
        dir.join("out").to_str().expect("utf-8"),
    ])
}

#[test]
fn exit_0_when_every_expectation_holds_and_1_when_one_fails() {
    let ok = run_with_expect("cli-pass", "lost = 0\ndelivered_p50 = \"1h\"");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("PASS  lost = 0"),
        "one line per expectation:\n{stdout}"
    );
    let fail = run_with_expect("cli-fail", "delivered_p50 = \"1us\"");
    assert_eq!(fail.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&fail.stdout);
    assert!(stdout.contains("FAIL  delivered_p50"), "{stdout}");
    let file = root().join("target/test-scratch/cli-fail/s.toml");
    assert!(
        stdout.contains(&format!(
            "reproduce with: interop-sim run {} --seed 11",
            file.display()
        )),
        "tells how to reproduce, with the file that was run:\n{stdout}"
    );
}

/// `calibrate --quick` writes a cost table that a scenario in the same folder names by a
/// relative path; the run with it charges other CPU times for the same operations.
/// Issue 21 item 6: a cost table outside the scenario's folder is refused when the scenario
/// names it, but the user may name any file on the command line (`--cost-table`), which then
/// replaces the scenario's table; a bad one is reported in its own place, exit 2.
#[test]
fn a_cost_table_given_on_the_command_line_may_be_anywhere() {
    use interop_sim::scenario::{self, cost_table, LoadOptions};
    let outside = root().join("tests/data/broken/cost_table_outside_folder.toml");
    let outside = outside.to_str().expect("utf-8");
    let refused = interop_sim(&["check", outside]);
    let stderr = assert_invalid(&refused, "cost table outside the folder");
    assert!(stderr.contains("outside the scenario's folder"), "{stderr}");
    let table = root().join("tests/data/valid/cost_tables/valid.toml");
    let table_arg = table.to_str().expect("utf-8");
    let out = interop_sim(&["check", outside, "--cost-table", table_arg]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let given = cost_table::load_file(&table).unwrap_or_else(|e| panic!("{e}"));
    assert!(!given.is_empty());
    let opts = LoadOptions {
        cost_table: Some(table.clone()),
        ..LoadOptions::default()
    };
    let s = scenario::load_with(std::path::Path::new(outside), &opts).expect("valid");
    assert_eq!(
        s.e2ee.cost_table, given,
        "the table given replaces the scenario's"
    );
    assert!(stdout.contains(&scenario::to_toml(&s)), "{stdout}");
    // Also on a scenario that names no table, and on `run` and `sweep` (parsed only here).
    let small = root().join("tests/data/scenarios/small.toml");
    let small_s = scenario::load_with(&small, &opts).expect("valid");
    assert_eq!(small_s.e2ee.cost_table, given);
    let bad = scratch("cli-cost-table").join("bad.toml");
    std::fs::write(&bad, "ratchet = { fixed_ns = 1, per_kib_ns = 1 }\n").expect("write");
    let bad_arg = bad.to_str().expect("utf-8");
    let small_arg = small.to_str().expect("utf-8");
    for command in ["check", "run", "sweep"] {
        let out = interop_sim(&[command, small_arg, "--cost-table", bad_arg]);
        let stderr = assert_invalid(&out, "a bad --cost-table");
        assert!(has_location(&stderr, bad_arg), "{command}: {stderr}");
        assert!(stderr.contains("unknown operation 'ratchet'"), "{stderr}");
    }
    let missing = interop_sim(&["check", small_arg, "--cost-table", "/nonexistent/t.toml"]);
    let stderr = assert_invalid(&missing, "a missing --cost-table");
    assert!(
        stderr.contains("cannot use the cost table /nonexistent/t.toml"),
        "{stderr}"
    );
}

#[test]
fn calibrate_writes_a_cost_table_that_a_scenario_runs_with() {
    use interop_sim::scenario::{self, cost_table::Op};
    use interop_sim::sim::run_scenario;
    let dir = scratch("cli-calibrate");
    let table = dir.join("calibration.toml");
    let out = interop_sim(&[
        "calibrate",
        "--quick",
        "--out",
        table.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ratchet_encrypt") && stdout.contains("ratio"),
        "{stdout}"
    );
    let base = std::fs::read_to_string(root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml");
    let named = base.replace("[e2ee]\n", "[e2ee]\ncost_table = \"calibration.toml\"\n");
    assert_ne!(named, base, "small.toml has an [e2ee] table");
    let file = dir.join("s.toml");
    std::fs::write(&file, named).expect("write scenario");
    let check = interop_sim(&["check", file.to_str().expect("utf-8")]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let measured = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(measured.e2ee.cost_table.len(), Op::ALL.len());
    let mut plain = measured.clone();
    plain.e2ee.cost_table.clear();
    assert_ne!(scenario::hash(&plain), scenario::hash(&measured));
    // Only the prices differ: no loss, churn, replies or reads, whose draws would follow the
    // event order that other CPU times change.
    let steady = |mut s: scenario::Scenario| {
        for hop in scenario::HopClass::ALL {
            s.network.links[hop.index()].loss = 0.0;
        }
        s.devices.online_share = 1.0;
        s.workload.reply_probability = 0.0;
        s.workload.read_probability = 0.0;
        s
    };
    let a = run_scenario(&steady(plain), "plain").summary.crypto;
    let b = run_scenario(&steady(measured), "measured").summary.crypto;
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same operations"
    );
    let mut charges_differ = 0;
    // A session is set up by whichever message to a peer is sealed first, and a media
    // message is sealed once its upload is done, which the prices move: so session setups
    // are compared per operation over all kinds, everything else per kind.
    let mut setups: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for (key, n) in &a {
        let op = key.rsplit('.').next().unwrap_or(key);
        if key.ends_with("_ns") {
            charges_differ += usize::from(b[key] != *n);
        } else if op.contains("x3dh_") || op.contains("pqxdh_") {
            let sums = setups.entry(op).or_default();
            sums.0 += *n;
            sums.1 += b[key];
        } else if !key.contains("noise_") && op != "key_generation" {
            // The gateway's Noise work is per frame, and control frames (outbox resends,
            // acks) follow the timing; so do prekey refills, counted as key generation: a
            // device tops its pool up by what is missing when it checks, and how many bundles
            // were fetched before that check follows the timing. The rest of the Signal work
            // follows the messages only.
            assert_eq!(b[key], *n, "{key}: counts do not depend on prices");
        }
    }
    assert!(!setups.is_empty(), "sessions were set up");
    for (op, (plain, measured)) in setups {
        assert_eq!(
            plain, measured,
            "{op}: session setups do not depend on prices"
        );
    }
    assert!(charges_differ > 5, "{charges_differ} charges differ");
}

/// A failed assertion inside a run (here the test build's deliberate panic, `nodes/buggify.rs`,
/// which makes the run of one named seed panic) ends the command with exit 3 and the command
/// that replays that run: for `run`, for `--seeds` (the other seeds still run) and for a sweep
/// (whose panicked point is written out as a scenario of its own).
#[test]
fn a_panic_in_a_run_exits_3_with_the_command_that_replays_it() {
    use interop_sim::nodes::buggify::PANIC_SEED_VAR;
    let panicking = |seed: u64, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
            .env(PANIC_SEED_VAR, seed.to_string())
            .args(args)
            .output()
            .expect("spawn interop-sim");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert_eq!(out.status.code(), Some(3), "{args:?}:\n{stdout}\n{stderr}");
        let bug = format!(
            "interop-sim: internal error (a bug): buggify: the run of seed {seed} panics on purpose"
        );
        assert!(stderr.contains(&bug), "{args:?}:\n{stderr}");
        (stdout, stderr)
    };
    let small = root().join("tests/data/scenarios/small.toml");
    let small = small.to_str().expect("utf-8");
    let dir = scratch("cli-panic");
    let out = dir.join("run");
    let (_, stderr) = panicking(
        5,
        &[
            "run",
            small,
            "--seed",
            "5",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    );
    let replay = format!(" — replay with `interop-sim run {small} --seed 5`");
    assert!(stderr.contains(&replay), "{stderr}");
    // The same without --seed: the scenario's own seed (11) is the one to replay.
    let (_, stderr) = panicking(11, &["run", small, "--out", out.to_str().expect("utf-8")]);
    assert!(
        stderr.contains(&format!("replay with `interop-sim run {small} --seed 11`")),
        "{stderr}"
    );

    let (stdout, stderr) = panicking(5, &["run", small, "--seeds", "4..6"]);
    assert!(stdout.contains("seed 5 PANICKED: buggify"), "{stdout}");
    assert!(stdout.contains("of 3 seeds (4..6) passed"), "{stdout}");
    assert!(!stdout.contains("seed 4 PANICKED") && !stdout.contains("seed 6 PANICKED"));
    assert!(stderr.contains(&replay), "{stderr}");
    assert!(
        !stderr.contains("--seed 4`") && !stderr.contains("--seed 6`"),
        "{stderr}"
    );

    // In the sweep, repeat 1 of every point has one seed: run 1 (point 0) panics first.
    let sweep_file = root().join("tests/data/scenarios/small-sweep.toml");
    let base = interop_sim::scenario::load(&sweep_file).unwrap_or_else(|e| panic!("{e}"));
    let plan = interop_sim::sweep::Plan::new(&base, "small-sweep.toml").expect("a sweep");
    let seed = plan.runs[1].seed;
    let out = dir.join("sweep");
    let (_, stderr) = panicking(
        seed,
        &[
            "sweep",
            sweep_file.to_str().expect("utf-8"),
            "--threads",
            "2",
            "--out",
            out.to_str().expect("utf-8"),
        ],
    );
    let point = out.join("panicked-run-1.toml");
    let replay = format!(
        "replay with `interop-sim run {} --seed {seed}`",
        point.display()
    );
    assert!(stderr.contains(&replay), "{stderr}");
    // The file holds the point; the seed (a derived u64, here past what a TOML integer holds)
    // is --seed's.
    let mut written = interop_sim::scenario::load(&point).unwrap_or_else(|e| panic!("{e}"));
    written.run.seed = seed;
    assert_eq!(
        interop_sim::scenario::hash(&written),
        interop_sim::scenario::hash(&plan.scenario(&plan.runs[1])),
        "the written scenario and --seed make run 1"
    );
}

/// Every subcommand's `--help` ends with examples and the exit codes, and names only files
/// this repository has (issue 20: no path outside the repo).
#[test]
fn every_help_has_examples_and_names_only_files_in_the_repo() {
    let commands: &[&[&str]] = &[
        &[],
        &["run"],
        &["shrink"],
        &["peer"],
        &["live"],
        &["validate"],
        &["serve"],
        &["load"],
        &["live-merge"],
        &["check"],
        &["sweep"],
        &["plan"],
        &["merge"],
        &["compare"],
        &["bench"],
        &["bench", "check"],
        &["bench", "pipeline"],
        &["calibrate"],
    ];
    for c in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_interop-sim"))
            .args(*c)
            .arg("--help")
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{c:?}");
        assert!(
            text.contains("Examples:\n  "),
            "{c:?} has no examples:\n{text}"
        );
        assert!(text.contains("Exit codes:"), "{c:?}");
        assert!(!text.contains("../"), "{c:?} names a path outside the repo");
        for word in text.split(|ch: char| ch.is_whitespace() || "(),`'\"".contains(ch)) {
            let word = word.trim_end_matches(['.', ':', ';']);
            if word.ends_with(".md") {
                assert!(
                    crate::root().join(word).is_file(),
                    "{c:?} names {word}, which the repo does not have"
                );
            }
        }
    }
}

/// The README's and docs' links lead to files of this repository.
#[test]
fn readme_and_docs_link_only_to_files_in_the_repo() {
    let mut pages = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "md") {
            pages.push(e.path());
        }
    }
    let mut links = 0;
    for page in pages {
        let text = std::fs::read_to_string(&page).expect("readable");
        assert!(
            !text.contains("../shared"),
            "{} points outside the repo",
            page.display()
        );
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap_or(0)];
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let at = page.parent().expect("a folder").join(target);
            assert!(
                at.exists()
                    && at
                        .canonicalize()
                        .unwrap()
                        .starts_with(root().canonicalize().unwrap()),
                "{} links to {target}, which is not a file of the repo",
                page.display()
            );
            links += 1;
        }
    }
    assert!(links >= 5, "only {links} links found");
}
