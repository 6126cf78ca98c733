//! The scenario front end (`interop_sim::scenario`) as a library: broken files report every
//! problem with its line and key path (this file), valid files resolve with their defaults and
//! round-trip through `to_toml` (`scenario_valid.rs`), and no input makes the parser panic
//! (`scenario_robust.rs`). One test binary, as STYLE.md asks.

use std::path::{Path, PathBuf};

use interop_sim::scenario::{self, Scenario, ScenarioErrors};

pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn valid(name: &str) -> Scenario {
    match scenario::load(&data(&format!("valid/{name}"))) {
        Ok(s) => s,
        Err(e) => panic!("{name} should parse:\n{e}"),
    }
}

fn broken(name: &str) -> ScenarioErrors {
    match scenario::load(&data(&format!("broken/{name}"))) {
        Ok(s) => panic!("{name} should be rejected, parsed as {s:#?}"),
        Err(e) => e,
    }
}

/// Asserts that `errors` has a problem on `line` at `key_path` whose message (with help)
/// contains `text`, and that its rendering shows `file:line:`.
fn has(errors: &ScenarioErrors, line: u32, key_path: &str, text: &str) {
    let found = errors.iter().any(|p| {
        let rendered = p.to_string();
        p.line == line
            && p.key_path == key_path
            && rendered.contains(text)
            && rendered.contains(&format!(".toml:{line}:"))
    });
    assert!(
        found,
        "expected a problem on line {line} at '{key_path}' containing {text:?}, got:\n{errors}"
    );
}

fn one(name: &str, line: u32, key_path: &str, text: &str) -> ScenarioErrors {
    let errors = broken(name);
    has(&errors, line, key_path, text);
    errors
}

#[test]
fn syntax_error_has_line_and_column() {
    let e = one(
        "syntax_error.toml",
        3,
        "run",
        "invalid TOML: unclosed table, expected `]` (in the header of table [run])",
    );
    assert_eq!(
        e.len(),
        1,
        "only the first syntax error: later ones echo it\n{e}"
    );
    assert_eq!(e.problems[0].col, 5);
    let shown = e.to_string();
    assert!(
        shown.contains("\n 3 | [run\n   |     ^"),
        "the line and a caret under the column:\n{shown}"
    );
}

#[test]
fn duplicate_key_names_the_key_its_table_and_the_first_definition() {
    let e = one(
        "duplicate_key.toml",
        18,
        "workload.cross_provider",
        "invalid TOML: duplicate key \"cross_provider\" in [workload] (first defined at line 16",
    );
    let shown = e.to_string();
    assert!(
        shown.contains("\n 18 | cross_provider = 0.5\n    | ^^^^^^^^^^^^^^"),
        "the line and a caret under the key:\n{shown}"
    );
}

#[test]
fn misspelt_key_suggests_the_right_one() {
    one(
        "misspelt_key.toml",
        13,
        "network.client_server.los",
        "unknown key 'los' (did you mean 'loss'?)",
    );
}

#[test]
fn misspelt_section_suggests_the_right_one() {
    one(
        "unknown_section.toml",
        12,
        "netwrok",
        "did you mean 'network'?",
    );
}

#[test]
fn wrong_type() {
    one(
        "wrong_type.toml",
        5,
        "provider[0].users",
        "expected an integer >= 1, found \"many\"",
    );
}

#[test]
fn negative_duration() {
    one("negative_duration.toml", 3, "run.duration", "non-negative");
}

#[test]
fn duration_without_unit() {
    one("duration_without_unit.toml", 3, "run.drain", "with a unit");
}

#[test]
fn duration_with_unknown_unit() {
    one(
        "unknown_duration_unit.toml",
        3,
        "run.duration",
        "unknown duration unit 'sec'",
    );
}

#[test]
fn duration_overflow() {
    one("duration_overflow.toml", 3, "run.drain", "too large");
}

#[test]
fn probability_above_one() {
    one(
        "probability_too_big.toml",
        13,
        "network.client_server.loss",
        "expected a probability in [0, 1], found 1.5",
    );
}

#[test]
fn no_gatekeeper() {
    one(
        "no_gatekeeper.toml",
        2,
        "provider",
        "no provider has role = \"gatekeeper\"",
    );
}

#[test]
fn two_gatekeepers() {
    let e = one(
        "two_gatekeepers.toml",
        14,
        "provider[2].role",
        "a second gatekeeper \"imessage\" (the first is \"whatsapp\")",
    );
    assert_eq!(e.len(), 1, "{e}");
}

#[test]
fn fault_target_that_does_not_exist() {
    one(
        "fault_target_missing.toml",
        15,
        "fault[0].between[1]",
        "no provider or node named \"telegram\"",
    );
}

#[test]
fn fault_after_the_end() {
    one(
        "fault_after_end.toml",
        16,
        "fault[0].at",
        "after the end of the workload",
    );
}

#[test]
fn fault_ending_after_the_run() {
    one(
        "fault_ends_after_run.toml",
        18,
        "fault[0].for",
        "after the end of the run",
    );
}

#[test]
fn zero_users() {
    one(
        "zero_users.toml",
        10,
        "provider[1].users",
        "expected an integer >= 1, found 0",
    );
}

#[test]
fn comment_only_file() {
    one("empty.toml", 1, "", "no settings");
}

#[test]
fn unknown_latency_dist() {
    one(
        "unknown_latency_dist.toml",
        13,
        "network.server_gateway.latency.dist",
        "found \"gaussian\"",
    );
}

#[test]
fn lognormal_p99_below_median() {
    one(
        "lognormal_p99_below_median.toml",
        13,
        "network.client_server.latency",
        "expected 0 < median < p99, found median = 60ms, p99 = 50ms",
    );
}

#[test]
fn missing_required_keys_are_each_reported() {
    let e = broken("missing_required_keys.toml");
    for key in ["name", "role", "users"] {
        has(
            &e,
            7,
            &format!("provider[1].{key}"),
            &format!("missing required key '{key}'"),
        );
    }
    // The partner is unusable, so the file also lacks a partner; nothing else.
    assert_eq!(e.len(), 4, "{e}");
}

#[test]
fn content_weights_all_zero() {
    one(
        "content_weights_zero.toml",
        13,
        "workload.content",
        "positive, finite sum",
    );
}

#[test]
fn duplicate_provider_names() {
    one(
        "duplicate_provider_names.toml",
        13,
        "provider[2].name",
        "duplicate provider name 'birdychat' (first defined on line 8)",
    );
}

#[test]
fn devices_min_above_max() {
    one(
        "devices_min_gt_max.toml",
        5,
        "provider[0].devices_per_user",
        "min <= max",
    );
}

#[test]
fn group_size_min_above_max() {
    one(
        "group_size_min_gt_max.toml",
        13,
        "workload.groups.size",
        "min <= max",
    );
}

#[test]
fn unknown_fault_kind() {
    one(
        "unknown_fault_kind.toml",
        14,
        "fault[0].kind",
        "found \"meteor\"",
    );
}

#[test]
fn key_of_another_fault_kind() {
    let e = one(
        "key_of_other_fault_kind.toml",
        15,
        "fault[0].node",
        "does not belong to a \"partition\" fault",
    );
    assert_eq!(e.len(), 1, "{e}");
}

#[test]
fn partition_between_an_endpoint_and_itself() {
    one(
        "partition_same_endpoint.toml",
        15,
        "fault[0].between",
        "two different endpoints",
    );
}

#[test]
fn rate_limit_only_on_the_gateway() {
    one(
        "rate_limit_not_on_gateway.toml",
        13,
        "capacity.chat_server.rate_limit_per_partner",
        "only valid on capacity.gateway",
    );
}

#[test]
fn unknown_expectation_suggests_the_right_one() {
    one(
        "unknown_expectation.toml",
        13,
        "expect.delivered_p98",
        "did you mean 'delivered_p99'?",
    );
}

#[test]
fn provider_as_single_table() {
    one(
        "provider_not_array.toml",
        2,
        "provider",
        "expected an array of tables",
    );
}

#[test]
fn missing_and_misspelt_link() {
    let e = broken("missing_link.toml");
    has(&e, 12, "fault[0].link", "missing required key 'link'");
    has(&e, 20, "fault[1].link", "did you mean 'client_server'?");
    assert_eq!(e.len(), 2, "{e}");
}

#[test]
fn every_problem_of_a_file_is_reported_in_order() {
    let e = broken("many_problems.toml");
    has(&e, 3, "run.seed", "expected an integer >= 0, found \"abc\"");
    has(&e, 4, "run.duraton", "did you mean 'duration'?");
    has(
        &e,
        10,
        "provider[0].opt_in",
        "expected a probability in [0, 1], found 2",
    );
    has(
        &e,
        18,
        "devices.online_mean",
        "unknown duration unit ' minutes'",
    );
    has(&e, 23, "fault[0].node", "\"telegram\"");
    has(
        &e,
        24,
        "fault[0].factor",
        "expected a factor between 1 and 1000",
    );
    has(&e, 27, "expect.lost", "expected a count >= 0, found -1");
    assert_eq!(e.len(), 7, "{e}");
    let lines: Vec<u32> = e.iter().map(|p| p.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "problems out of file order: {lines:?}"
    );
    // Each problem is its headline, the source line and the caret line.
    assert_eq!(e.to_string().lines().count(), 7 * 3, "{e}");
}

#[test]
fn a_cost_table_outside_the_scenario_folder_is_refused_unread() {
    let e = one(
        "cost_table_outside_folder.toml",
        14,
        "e2ee.cost_table",
        "is outside the scenario's folder",
    );
    assert_eq!(
        e.len(),
        1,
        "the file is not read, so nothing of it is quoted: {e}"
    );
}

#[test]
fn a_bad_cost_table_is_reported_in_its_own_file_after_the_key_that_names_it() {
    let e = one(
        "cost_table_unknown_op.toml",
        13,
        "e2ee.cost_table",
        "cost_tables/unknown_op.toml is invalid (1 problem, below)",
    );
    has(
        &e,
        3,
        "ratchet_encryption",
        "unknown operation 'ratchet_encryption' (did you mean 'ratchet_encrypt'?)",
    );
    assert!(e.problems[1].file.ends_with("cost_tables/unknown_op.toml"));
    let e = one(
        "cost_table_negative.toml",
        13,
        "e2ee.cost_table",
        "(2 problems, below)",
    );
    has(
        &e,
        2,
        "noise_aead.fixed_ns",
        "expected an integer >= 0, found -400",
    );
    has(&e, 3, "noise_handshake.fixed_ns", "found 180000.5");
    let e = one(
        "cost_table_bad_toml.toml",
        13,
        "e2ee.cost_table",
        "is invalid",
    );
    has(&e, 3, "ratchet_decrypt", "invalid TOML");
    let e = one(
        "cost_table_missing_file.toml",
        13,
        "e2ee.cost_table",
        "no-such-table.toml: cannot read the file",
    );
    assert_eq!(e.len(), 1, "{e}");
    one(
        "bundle_fetch_burst_zero.toml",
        13,
        "e2ee.bundle_fetch_burst",
        "expected an integer >= 1, found 0",
    );
}

#[test]
fn every_broken_file_says_why_and_is_rejected_with_a_place() {
    let mut count = 0;
    for entry in std::fs::read_dir(data("broken")).expect("tests/data/broken exists") {
        let path = entry.expect("readable dir entry").path();
        if path.is_dir() {
            continue; // cost_tables/: the files the broken scenarios name
        }
        let text = std::fs::read_to_string(&path).expect("broken files are text");
        assert!(
            text.starts_with("# Wrong: "),
            "{} must start with a '# Wrong: ...' comment",
            path.display()
        );
        let errors = scenario::load(&path).expect_err("broken files are rejected");
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|p| p.line >= 1 && p.col >= 1), "{errors}");
        count += 1;
    }
    assert!(count >= 20, "only {count} broken files");
}
