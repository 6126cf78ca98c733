//! The scenario front end against broken and valid files: every problem is found, each with its
//! line and key path, and no input makes the parser panic.

use std::path::{Path, PathBuf};

use interop_sim::scenario::{
    self, Bound, Endpoint, FaultKind, HopClass, Latency, Role, Scenario, ScenarioErrors,
};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn valid(name: &str) -> Scenario {
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
    let e = one("syntax_error.toml", 3, "", "invalid TOML");
    assert!(e.problems[0].col >= 1);
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
        12,
        "provider",
        "a second gatekeeper \"imessage\"",
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
        "p99 > median",
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
        12,
        "provider[2].name",
        "duplicate provider name 'birdychat' (first defined on line 7)",
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
    has(&e, 24, "fault[0].factor", "expected a factor >= 1");
    has(&e, 27, "expect.lost", "expected a count >= 0, found -1");
    assert_eq!(e.len(), 7, "{e}");
    let lines: Vec<u32> = e.iter().map(|p| p.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "problems out of file order: {lines:?}"
    );
    assert_eq!(e.to_string().lines().count(), 7);
}

#[test]
fn every_broken_file_says_why_and_is_rejected_with_a_place() {
    let mut count = 0;
    for entry in std::fs::read_dir(data("broken")).expect("tests/data/broken exists") {
        let path = entry.expect("readable dir entry").path();
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

#[test]
fn empty_and_blank_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in [("empty.toml", ""), ("blank.toml", "\n  \n\t\n")] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write temp file");
        let e = scenario::load(&path).expect_err("empty file is rejected");
        assert_eq!(e.len(), 1, "{e}");
        assert!(e.to_string().contains("empty"), "{e}");
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn binary_garbage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.toml");
    let bytes: Vec<u8> = b"[run]\nseed = 1\n"
        .iter()
        .copied()
        .chain([0xff, 0xfe, 0x00, 0x81, 0xc3, 0x28])
        .collect();
    std::fs::write(&path, bytes).expect("write temp file");
    let e = scenario::load(&path).expect_err("binary is rejected");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!((e.problems[0].line, e.problems[0].col), (3, 1));
    assert!(e.to_string().contains("invalid UTF-8 at byte 15"), "{e}");
    // Valid UTF-8 full of control characters is a syntax error, not a panic.
    std::fs::write(&path, "\u{0}\u{1}\u{7f}[[[\u{0}").expect("write temp file");
    assert!(scenario::load(&path).is_err());
}

#[test]
fn unreadable_file() {
    let e =
        scenario::load(Path::new("/nonexistent/dir/x.toml")).expect_err("missing file is rejected");
    assert_eq!(e.len(), 1);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/dir/x.toml: cannot read the file"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(
        scenario::load(dir.path()).is_err(),
        "a directory is not a scenario"
    );
}

#[test]
fn minimal_file_gets_every_default() {
    let s = valid("minimal.toml");
    assert_eq!(s.run.name, "minimal");
    assert_eq!(s.run.seed, 1);
    assert_eq!(s.run.duration_ns, 60_000_000_000);
    assert_eq!(s.run.drain_ns, 120_000_000_000);
    assert_eq!(s.run.interval_ns, 1_000_000_000);
    assert_eq!(s.run.events_max, 2_000_000_000);
    assert_eq!(s.providers.len(), 2);
    assert_eq!(
        (
            s.providers[0].devices_min,
            s.providers[0].devices_max,
            s.providers[0].opt_in
        ),
        (1, 1, 1.0)
    );
    let cs = s.network.link(HopClass::ClientServer);
    assert_eq!(
        cs.latency,
        Latency::Lognormal {
            median_ns: 60_000_000,
            p99_ns: 400_000_000
        }
    );
    assert_eq!(
        (
            cs.loss,
            cs.reorder_delay_ns,
            cs.bandwidth_bytes_per_s,
            cs.queue_max_bytes
        ),
        (0.0, 20_000_000, None, 67_108_864)
    );
    assert_eq!(
        s.network.link(HopClass::ServerGateway).latency,
        Latency::Normal {
            mean_ns: 8_000_000,
            stddev_ns: 2_000_000
        }
    );
    assert_eq!(
        s.network.link(HopClass::GatewayPartner).latency,
        Latency::Constant {
            value_ns: 25_000_000
        }
    );
    assert_eq!(
        s.network.link(HopClass::AdapterServer).latency,
        Latency::Constant {
            value_ns: 5_000_000
        }
    );
    assert_eq!(s.workload.content, [0.7, 0.15, 0.08, 0.04, 0.03]);
    assert_eq!(
        (s.workload.group_size_min, s.workload.group_size_max),
        (3, 32)
    );
    assert_eq!(s.capacity.gateway.rate_limit_per_partner, Some(20_000.0));
    assert_eq!(s.capacity.chat_server.rate_limit_per_partner, None);
    assert_eq!(s.devices.offline_ttl_ns, 30 * 86_400 * 1_000_000_000);
    assert!(s.faults.is_empty() && s.expect.is_empty());
}

#[test]
fn full_file_resolves_references_and_order() {
    let s = valid("full.toml");
    let names: Vec<&str> = s.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["whatsapp", "birdychat", "haiket"],
        "gatekeeper first, partners in file order"
    );
    assert_eq!(s.providers[0].role, Role::Gatekeeper);
    assert_eq!(
        (s.providers[1].devices_min, s.providers[1].devices_max),
        (1, 3)
    );
    assert_eq!(s.workload.content, [0.75, 0.25, 0.0, 0.0, 0.0]);
    assert_eq!(s.capacity.adapter.per_message_ns, 30_000);
    assert_eq!(
        s.network.link(HopClass::GatewayPartner).latency,
        Latency::Uniform {
            min_ns: 10_000_000,
            max_ns: 1_500_000_000
        }
    );
    assert_eq!(
        s.faults[0].kind,
        FaultKind::Partition {
            a: Endpoint::Gateway,
            b: Endpoint::Clients(2),
            one_way: true
        }
    );
    assert_eq!(
        s.faults[2].kind,
        FaultKind::Slow {
            node: Endpoint::Provider(1),
            factor: 3.0
        }
    );
    assert_eq!(
        s.faults[4].kind,
        FaultKind::IdentityReset {
            provider: 0,
            users: 0.05
        }
    );
    let keys: Vec<&str> = s.expect.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "lost",
            "sent",
            "interop.delivered_p99",
            "delivered_ratio",
            "gateway.utilization_peak",
            "delivered_per_s_mean",
            "native.delivered_max",
        ]
    );
    assert_eq!(s.expect[0].bound, Bound::AtMost(0.0));
    assert_eq!(s.expect[1].bound, Bound::AtLeast(1000.0));
    assert_eq!(s.expect[2].bound, Bound::AtMost(5e9));
    assert_eq!(s.expect[3].bound, Bound::AtLeast(0.99));
    assert_eq!(s.expect[6].bound, Bound::AtMost(60e9));
}

#[test]
fn to_toml_round_trips_and_hash_is_stable() {
    for name in ["minimal.toml", "contract.toml", "full.toml"] {
        let s = valid(name);
        let text = scenario::to_toml(&s);
        let back = scenario::parse(&text, "resolved.toml")
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(back, s, "{name} round trip:\n{text}");
        assert_eq!(scenario::to_toml(&back), text);
        let h = scenario::hash(&s);
        assert_eq!(h.len(), 16);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(scenario::hash(&back), h);
    }
    assert_ne!(
        scenario::hash(&valid("minimal.toml")),
        scenario::hash(&valid("full.toml"))
    );
}

#[test]
fn the_contract_example_parses() {
    let s = valid("contract.toml");
    assert_eq!(s.run.name, "partner-outage");
    assert_eq!(s.run.seed, 42);
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].end_ns(), Some(270_000_000_000));
    assert_eq!(s.expect.len(), 5);
}

/// No input makes the parser panic: every broken and valid file, cut and corrupted byte by byte.
#[test]
fn mutated_inputs_never_panic() {
    let mut sources = Vec::new();
    for dir in ["valid", "broken"] {
        for entry in std::fs::read_dir(data(dir)).expect("data dir") {
            sources.push(std::fs::read_to_string(entry.expect("entry").path()).expect("text"));
        }
    }
    let replacements = [
        "",
        "\"",
        "[",
        "]",
        "=",
        "-",
        "1e999",
        "\u{0}",
        "é",
        "{",
        "}",
        ".",
        "\n",
        "0",
        "99999999999999999999",
    ];
    let mut runs = 0u64;
    for src in &sources {
        let bytes = src.as_bytes();
        let step = (bytes.len() / 40).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            for r in replacements {
                let mut mutated = bytes[..cut].to_vec();
                mutated.extend_from_slice(r.as_bytes());
                mutated.extend_from_slice(&bytes[(cut + 1).min(bytes.len())..]);
                let text = String::from_utf8_lossy(&mutated);
                let _ = scenario::parse(&text, "mutated.toml");
                runs += 1;
            }
            let _ = scenario::parse(&src[..src.floor_char_boundary_compat(cut)], "cut.toml");
        }
    }
    assert!(runs > 1000);
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}
