//! The scenario parser's tests: defaults, keys, hashes, round trips and the problems it reports.

use super::*;

const BASE: &str = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\n\
                    [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 5\n";

fn with(extra: &str) -> Result<Scenario, ScenarioErrors> {
    parse(&format!("{BASE}\n{extra}"), "t.toml")
}

fn problems(extra: &str) -> Vec<String> {
    match with(extra) {
        Ok(_) => panic!("should be rejected: {extra}"),
        Err(e) => e
            .iter()
            .map(|p| format!("{}: {}", p.key_path, p.message))
            .collect(),
    }
}

#[test]
fn client_endpoints_only_in_partitions() {
    let ok = with("[[fault]]\nat = \"1s\"\nkind = \"partition\"\nbetween = [\"p-clients\", \"g\"]")
        .expect("valid");
    assert_eq!(
        ok.faults[0].kind,
        FaultKind::Partition {
            a: Endpoint::Clients(1),
            b: Endpoint::Provider(0),
            one_way: false
        }
    );
    let p = problems("[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"p-clients\"");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("fault[0].node: no provider or node named \"p-clients\""),
        "{p:?}"
    );
    let p =
        problems("[[fault]]\nat = \"1s\"\nkind = \"toggle\"\nprovider = \"gateway\"\nusers = 0.5");
    assert_eq!(
        p,
        ["fault[0].provider: expected a provider name, found \"gateway\""]
    );
}

#[test]
fn a_provider_with_problems_is_not_reported_again_by_its_references() {
    let text = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\
                [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = -5\n\
                [[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"p\"\n";
    let e = parse(text, "t.toml").expect_err("users = -5");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.problems[0].key_path, "provider[1].users");
}

#[test]
fn expectations_dotted_quoted_or_nested_are_the_same_key() {
    let s = with(
        "[expect]\n\"interop.lost\" = 1\nnative = { sent = 2 }\ngroup.delivered_p50 = \"1ms\"",
    )
    .expect("valid");
    let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
    assert_eq!(
        keys,
        [
            ("interop.lost", Bound::AtMost(1.0)),
            ("native.sent", Bound::AtLeast(2.0)),
            ("group.delivered_p50", Bound::AtMost(1e6))
        ]
    );
    let p = problems("[expect]\n\"native.lost\" = 1\nnative.lost = 2");
    assert_eq!(
        p,
        ["expect.native.lost: expectation 'native.lost' is given twice"]
    );
    let p = problems("[expect]\ndelivered_p99 = \"1s\"\noverall.delivered_p99 = \"2s\"");
    assert_eq!(
        p,
        ["expect.overall.delivered_p99: expectation 'overall.delivered_p99' bounds the same value as 'delivered_p99': give one (`overall.` leaves out the per-path-kind lines)"]
    );
    let s = with("[expect]\noverall.delivered_p99 = \"2s\"").expect("valid");
    assert_eq!(s.expect[0].key, "overall.delivered_p99");
    // Two levels under `inbox`, quoted, dotted or nested alike.
    let s = with(
        "[expect]\n\"inbox.main.read\" = 1\ninbox.third_party.first_read_p50 = \"1s\"\ninbox.main = { unread_max = 3 }",
    )
    .expect("valid");
    let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
    assert_eq!(
        keys,
        [
            ("inbox.main.read", Bound::AtLeast(1.0)),
            ("inbox.third_party.first_read_p50", Bound::AtMost(1e9)),
            ("inbox.main.unread_max", Bound::AtMost(3.0))
        ]
    );
    let p = problems("[expect]\ninbox.other.read = 1");
    assert_eq!(p.len(), 1, "{p:?}");
    let p = problems("[expect]\nlost = { min = 1, max = 2 }\ngateway.lost = 1\nsent = \"5s\"");
    assert_eq!(p.len(), 3, "{p:?}");
}

#[test]
fn the_older_throughput_name_still_parses_as_device_deliveries() {
    let s = with("[expect]\ndelivered_per_s_mean = 10\ninterop.delivered_per_s_peak = 2")
        .expect("an older key is still accepted");
    let keys: Vec<(&str, Bound)> = s.expect.iter().map(|e| (e.key.as_str(), e.bound)).collect();
    assert_eq!(
        keys,
        [
            ("device_deliveries_per_s_mean", Bound::AtLeast(10.0)),
            ("interop.device_deliveries_per_s_peak", Bound::AtLeast(2.0))
        ]
    );
    let p = problems("[expect]\ndelivered_per_s_mean = 1\ndevice_deliveries_per_s_mean = 2");
    assert_eq!(
        p,
        ["expect.device_deliveries_per_s_mean: expectation 'device_deliveries_per_s_mean' is given twice"]
    );
}

#[test]
fn sections_of_the_wrong_type() {
    // After a [[provider]] header, `run = 5` is a key of that provider.
    assert_eq!(problems("run = 5"), ["provider[1].run: unknown key 'run'"]);
    let e = parse(&format!("run = 5\n{BASE}"), "t.toml").expect_err("run is not a table");
    assert_eq!(
        e.to_string(),
        "t.toml:1:7: run: expected a table ([run]), found 5\n 1 | run = 5\n   |       ^"
    );
    let p = problems(
        "[[fault]]\nat = \"1s\"\nkind = \"slow\"\nnode = \"g\"\nfactor = 2\n[[expect]]\nlost = 1",
    );
    assert_eq!(p, ["expect: expected a table ([expect]), found an array"]);
}

#[test]
fn fault_window_is_checked_even_when_the_target_is_wrong() {
    let p = problems("[[fault]]\nat = \"2m\"\nfor = \"5m\"\nkind = \"crash\"\nnode = \"nobody\"");
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("fault[0].at: the fault starts at 2m"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("fault[0].for: the fault ends at 7m"),
        "{p:?}"
    );
    assert!(
        p[2].starts_with("fault[0].node: no provider or node named \"nobody\""),
        "{p:?}"
    );
}

#[test]
fn a_bad_run_duration_does_not_make_faults_look_late() {
    let text = format!(
        "[run]\nduration = \"10x\"\n{BASE}\n[[fault]]\nat = \"3m\"\nkind = \"crash\"\nnode = \"g\""
    );
    let e = parse(&text, "t.toml").expect_err("bad unit");
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.problems[0].key_path, "run.duration");
}

#[test]
fn fault_keys_are_checked_even_without_a_kind() {
    let p = problems("[[fault]]\nat = \"1s\"\nnod = \"g\"");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter()
            .any(|m| m == "fault[0].kind: missing required key 'kind'"),
        "{p:?}"
    );
    assert!(
        p.iter().any(|m| m == "fault[0].nod: unknown key 'nod'"),
        "{p:?}"
    );
}

#[test]
fn sessions_default_to_the_first_message_and_keep_the_hash() {
    let s = with("").expect("valid");
    assert_eq!(s.e2ee.sessions, SessionSetup::FirstMessage);
    let e = with("[e2ee]\nsessions = \"established\"").expect("valid");
    assert_eq!(e.e2ee.sessions, SessionSetup::Established);
    assert_ne!(hash(&s), hash(&e), "the setting is in the hash");
    let explicit = with("[e2ee]\nsessions = \"first_message\"").expect("valid");
    assert_eq!(
        hash(&s),
        hash(&explicit),
        "the default leaves the hash alone"
    );
    let again = parse(&to_toml(&e), "again.toml").expect("to_toml parses");
    assert_eq!(again.e2ee.sessions, SessionSetup::Established);
    let p = problems("[e2ee]\nsessions = \"warm\"");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("e2ee.sessions: expected one of"), "{p:?}");
}

#[test]
fn control_frames_share_the_queue_unless_told_and_keep_the_hash() {
    let s = with("").expect("valid");
    assert_eq!(s.capacity.chat_server.control_queue, ControlQueue::Shared);
    let e = with("[capacity]\nchat_server = { control_queue = \"separate\" }").expect("valid");
    assert_eq!(e.capacity.chat_server.control_queue, ControlQueue::Separate);
    assert_eq!(e.capacity.gateway.control_queue, ControlQueue::Shared);
    assert_ne!(hash(&s), hash(&e), "the setting is in the hash");
    let explicit = with("[capacity]\ngateway = { control_queue = \"shared\" }").expect("valid");
    assert_eq!(
        hash(&s),
        hash(&explicit),
        "the default leaves the hash alone"
    );
    let again = parse(&to_toml(&e), "again.toml").expect("to_toml parses");
    assert_eq!(again.capacity, e.capacity);
    let p = problems("[capacity]\nadapter = { control_queue = \"apart\" }");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("capacity.adapter.control_queue: expected one of"),
        "{p:?}"
    );
}

#[test]
fn a_shared_host_and_a_generator_are_read_rendered_and_checked() {
    let s = with("").expect("valid");
    assert_eq!((s.capacity.host, s.capacity.generator), (None, None));
    let text = "[capacity]\nhost = { cores = 2, per_frame = \"3us\", per_wake = \"25us\" }\ngenerator = { cores = 1, per_frame = \"12us\" }";
    let e = with(text).expect("valid");
    let host = HostCapacity {
        cores: 2,
        per_frame_ns: 3_000,
        per_wake_ns: 25_000,
    };
    assert_eq!(e.capacity.host, Some(host));
    assert_eq!(
        e.capacity.generator,
        Some(HostCapacity {
            cores: 1,
            per_frame_ns: 12_000,
            per_wake_ns: 0,
        })
    );
    assert_ne!(hash(&s), hash(&e), "a host is in the hash");
    let again = parse(&to_toml(&e), "again.toml").expect("to_toml parses");
    assert_eq!(again.capacity, e.capacity);
    let p = problems("[capacity]\nhost = { per_frame = \"3us\", wake = 1 }");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.starts_with("capacity.host.wake: unknown key")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m == "capacity.host.cores: missing required key 'cores'"),
        "{p:?}"
    );
    let p = problems("[capacity]\ngenerator = { cores = 0, per_frame = \"1us\" }");
    assert!(p[0].starts_with("capacity.generator.cores:"), "{p:?}");
}

#[test]
fn bundle_fetch_limit_defaults_to_signal_and_can_be_switched_off() {
    let s = with("").expect("valid");
    assert_eq!(s.e2ee.bundle_fetch_limit, Some(BundleFetchLimit::SIGNAL));
    let s = with("[e2ee]\nbundle_fetch_burst = 2\nbundle_fetch_per_hour = 0.5").expect("valid");
    assert_eq!(
        s.e2ee.bundle_fetch_limit,
        Some(BundleFetchLimit {
            burst: 2,
            per_hour: 0.5
        })
    );
    let s = with("[e2ee]\nbundle_fetch_per_hour = \"unlimited\"").expect("valid");
    assert_eq!(s.e2ee.bundle_fetch_limit, None);
    let p = problems("[e2ee]\nbundle_fetch_burst = 0\nbundle_fetch_per_hour = -1");
    assert_eq!(
        p,
        [
            "e2ee.bundle_fetch_burst: expected an integer >= 1, found 0",
            "e2ee.bundle_fetch_per_hour: expected a number >= 0 or \"unlimited\", found -1"
        ]
    );
}

#[test]
fn new_e2ee_keys_at_their_defaults_keep_the_hash_and_round_trip() {
    let plain = with("").expect("valid");
    let explicit =
        with("[e2ee]\nbundle_fetch_burst = 6\nbundle_fetch_per_hour = 6\ncost_table = {}");
    // An empty inline table is a table naming no operation: accepted, nothing replaced.
    let explicit = explicit.expect("valid");
    assert_eq!(hash(&plain), hash(&explicit));
    let custom = with(
        "[e2ee]\nbundle_fetch_per_hour = \"unlimited\"\n\
         cost_table = { ratchet_encrypt = { fixed_ns = 5, per_kib_ns = 6 } }",
    )
    .expect("valid");
    assert_ne!(hash(&plain), hash(&custom));
    for s in [plain, custom] {
        let text = to_toml(&s);
        let back = parse(&text, "back.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, s, "{text}");
    }
}

#[test]
fn an_inline_cost_table_is_checked_where_it_is_written() {
    let p = problems("[e2ee]\ncost_table = { ratchet = { fixed_ns = 1, per_kib_ns = 1 } }");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("e2ee.cost_table.ratchet: unknown operation 'ratchet'"),
        "{p:?}"
    );
    let p = problems("[e2ee]\ncost_table = 3");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("a path to a cost table file"), "{p:?}");
}

#[test]
fn timers_have_a_floor_of_a_millisecond() {
    let p = problems(
        "[devices]\nretry_initial = \"1ns\"\nretry_max = \"1ns\"\nonline_mean = \"999us\"",
    );
    assert_eq!(p.len(), 3, "{p:?}");
    for (m, key) in p.iter().zip(["retry_initial", "retry_max", "online_mean"]) {
        assert!(
            m.starts_with(&format!("devices.{key}: expected at least 1ms")),
            "{m}"
        );
        assert!(m.contains("repeating timer"), "{m}");
    }
    let p = problems("[run]\ninterval = \"100us\"");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("run.interval: expected at least 1ms"),
        "{p:?}"
    );
    with("[devices]\nretry_initial = \"1ms\"\nretry_max = \"1ms\"\n[run]\ninterval = \"1ms\"")
        .expect("1ms is allowed");
}

#[test]
fn slow_factors_and_fault_counts_are_bounded() {
    let slow = "[[fault]]\nat = \"1s\"\nkind = \"slow\"\nnode = \"g\"\nfactor = ";
    let p = problems(&format!("{slow}1e300"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("fault[0].factor: expected a factor between 1 and 1000"),
        "{p:?}"
    );
    with(&format!("{slow}1000")).expect("1000 is allowed");
    let one = "[[fault]]\nat = \"1s\"\nkind = \"crash\"\nnode = \"g\"\n";
    with(&one.repeat(faults::FAULTS_MAX)).expect("10,000 faults are allowed");
    let p = problems(&one.repeat(faults::FAULTS_MAX + 1));
    assert_eq!(
        p,
        [
            "fault[10000]: 10001 [[fault]] tables, more than 10000: each one is validated, \
          scheduled and tracked for the whole run; merge faults with longer windows or use \
          [swarm]"
        ]
    );
}

#[test]
fn run_defaults_and_limits() {
    let s = with("").expect("valid");
    assert_eq!(s.run.name, "t");
    let p = problems("[run]\nname = \"../x\"\nseed = -1\nduration = \"0s\"\nevents_max = 0");
    assert_eq!(p.len(), 4, "{p:?}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    /// Any text: problems or a scenario that `to_toml` gives back (`fuzzing::scenario`).
    #[test]
    fn any_text_is_refused_or_round_trips(bytes in crate::fuzzing::inputs("scenario")) {
        crate::fuzzing::scenario(&bytes);
    }
}

#[test]
fn media_bytes_max_keeps_the_hash_at_its_default_and_is_checked() {
    let plain = with("").expect("valid");
    let explicit = with("[workload]\nmedia_bytes_max = 2147483647").expect("valid");
    assert_eq!(hash(&plain), hash(&explicit));
    let bounded = with("[workload]\nmedia_bytes_max = 65536").expect("valid");
    assert_eq!(bounded.workload.media_bytes_max, 65_536);
    assert_ne!(hash(&plain), hash(&bounded));
    for s in [plain, bounded] {
        let text = to_toml(&s);
        let back = parse(&text, "back.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, s, "{text}");
    }
    let p = problems("[workload]\nmedia_bytes_max = 0");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("workload.media_bytes_max: expected an integer"),
        "{p:?}"
    );
}
