//! Tests of the summary and its verdict lines (moved out of mod.rs: no change).
use super::*;

/// A summary of an empty ledger whose latencies the test sets by hand (also the planner's
/// tests' stand-in for a run).
pub(crate) fn summary() -> Summary {
    let facts = RunFacts {
        scenario: "t".into(),
        scenario_hash: String::new(),
        seed: 1,
        fingerprint: String::new(),
        events_processed: 0,
        end_time_s: 0.0,
        send_window_s: 1.0,
        messages_delivered_per_s_peak: 0.0,
        device_deliveries_per_s_peak: 0.0,
        replay_rejected: 0,
        nodes: BTreeMap::new(),
        work: BTreeMap::new(),
        violations: Vec::new(),
        liveness: super::super::checker::liveness(&Ledger::new(), &[], 0),
        crypto: BTreeMap::new(),
        media: MediaCounters::default(),
        inbox: None,
    };
    let mut s = Summary::build(&Ledger::new(), facts, &[]);
    s.latency.samples = 30;
    s.latency.delivered_p99 = 900.0;
    for (kind, p99) in [("native", 800.0), ("interop", 11_300.0)] {
        let p = s.paths.get_mut(kind).expect("every path kind has a line");
        p.latency.samples = 10;
        p.latency.delivered_p99 = p99;
    }
    s
}

fn at_most(key: &str, ms: f64) -> Expectation {
    Expectation {
        key: key.into(),
        bound: Bound::AtMost(ms * 1e6),
    }
}

fn lines(s: &Summary) -> Vec<(&str, bool, &Origin)> {
    s.expect
        .iter()
        .map(|v| (v.key.as_str(), v.ok, &v.origin))
        .collect()
}

#[test]
fn a_latency_of_nothing_delivered_is_not_measured_and_fails() {
    let mut s = summary();
    s.latency = Latency::default();
    s.paths.get_mut("interop").unwrap().latency = Latency::default();
    s.judge(&[
        at_most("delivered_p99", 10_000.0),
        at_most("interop.delivered_max", 10_000.0),
        at_most("native.delivered_p99", 10_000.0),
    ]);
    let got: Vec<(&str, bool, Option<f64>)> = s
        .expect
        .iter()
        .filter(|v| v.key.contains("delivered"))
        .map(|v| (v.key.as_str(), v.ok, v.value))
        .collect();
    assert_eq!(
        got[..3],
        [
            ("delivered_p99", false, None),
            ("interop.delivered_max", false, None),
            ("native.delivered_p99", true, Some(800.0)),
        ],
        "a dead network's 0 ms no longer passes: {got:?}"
    );
    assert!(!s.passed);
}

#[test]
fn an_unprefixed_slo_holds_every_path_kind_that_carried_messages() {
    let mut s = summary();
    s.judge(&[at_most("delivered_p99", 10_000.0)]);
    let from = || Origin::PerPathKind {
        from: "delivered_p99".into(),
    };
    assert_eq!(
        lines(&s)[..3],
        [
            ("delivered_p99", true, &Origin::Named),
            ("native.delivered_p99", true, &from()),
            // The group kind carried nothing: no line for it.
            ("interop.delivered_p99", false, &from()),
        ]
    );
    assert!(!s.passed, "a path kind past the SLO fails the run");
}

#[test]
fn a_named_path_kind_or_overall_replaces_the_derived_line() {
    let mut s = summary();
    s.judge(&[
        at_most("delivered_p99", 10_000.0),
        at_most("interop.delivered_p99", 15_000.0),
    ]);
    let keys: Vec<&str> = s.expect.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "delivered_p99",
            "native.delivered_p99",
            "interop.delivered_p99",
            "failed",
            "decrypt_failures"
        ]
    );
    assert!(s.passed, "{:?}", s.expect);

    s.judge(&[at_most("overall.delivered_p99", 1_000.0)]);
    assert_eq!(s.expect[0].value, Some(900.0), "overall. is the whole run");
    assert_eq!(s.expect.len(), 3, "no per-kind lines: {:?}", s.expect);
    assert!(s.passed);
}

#[test]
fn counters_are_not_repeated_per_path_kind() {
    let mut s = summary();
    s.judge(&[Expectation {
        key: "lost".into(),
        bound: Bound::AtMost(0.0),
    }]);
    assert_eq!(s.expect.len(), 3, "{:?}", s.expect);
}
