//! Faults and delivery guarantees: every scenario in scenarios/ holds its `[expect]`, the
//! healed-fault ones with nothing lost, duplicated or out of order; volatile-crash's losses are
//! reported and named; and each deliberate bug (BUGGIFY) is caught by the checker.

use crate::root;
use interop_sim::metrics::Origin;
use interop_sim::nodes::buggify::Bugs;
use interop_sim::scenario::{self, Scenario};
use interop_sim::sim::{run_scenario, run_with, RunOptions};

fn load(name: &str) -> Scenario {
    scenario::load(&root().join("scenarios").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Scenarios whose faults all heal: after the drain, nothing may be lost, shown twice or out
/// of order.
const HEALED: [&str; 12] = [
    "partner-outage.toml",
    "gateway-overload.toml",
    "lossy-mobile.toml",
    "tamper-mitm.toml",
    "replay-attack.toml",
    "one-way-partition.toml",
    "clock-skew.toml",
    "push-loss.toml",
    "new-years-eve.toml",
    "lost-on-disconnect.toml",
    "duplicates-after-reconnect.toml",
    "out-of-order-after-reconnect.toml",
];

#[test]
fn every_healed_fault_scenario_loses_nothing() {
    for name in HEALED {
        let s = load(name);
        assert!(!s.faults.is_empty(), "{name} has faults");
        let r = run_scenario(&s, "test").summary;
        let c = &r.counters;
        assert!(
            r.passed,
            "{name}: expectations failed: {:?}\nviolations: {:#?}",
            r.expect, r.violations
        );
        assert_eq!(
            (c.lost, c.duplicates, c.out_of_order, c.decrypt_failures),
            (0, 0, 0, 0),
            "{name}"
        );
        assert!(
            r.liveness.verdict.starts_with("ok"),
            "{name}: {}",
            r.liveness.verdict
        );
        assert!(c.delivered > 1_000, "{name} delivered only {}", c.delivered);
    }
}

#[test]
fn attacks_are_detected_not_just_survived() {
    let tamper = run_scenario(&load("tamper-mitm.toml"), "test").summary;
    assert!(
        tamper.tamper_detected > 10,
        "tampered frames refused: {}",
        tamper.tamper_detected
    );
    let replay = run_scenario(&load("replay-attack.toml"), "test").summary;
    assert!(
        replay.replay_rejected > 10,
        "replays rejected: {}",
        replay.replay_rejected
    );
    assert!(
        replay.duplicates_suppressed > 0,
        "replayed messages reach the app's dedup"
    );
}

#[test]
fn backpressure_costs_latency_not_messages() {
    let s = load("gateway-overload.toml");
    let r = run_scenario(&s, "test").summary;
    assert!(
        r.work["gateway_rate_limited"] > 0 && r.work["gateway_shaped"] > 0,
        "the rate limit bit: {:?}",
        r.work
    );
    assert_eq!(r.counters.lost, 0);
    let interop_p99 = r.paths["interop"].latency.delivered_p99;
    let native_p99 = r.paths["native"].latency.delivered_p99;
    assert!(
        interop_p99 > 5.0 * native_p99,
        "the cost shows in interop latency: {interop_p99} vs {native_p99}"
    );
}

#[test]
fn volatile_crash_losses_are_reported_and_named() {
    let r = run_scenario(&load("volatile-crash.toml"), "test").summary;
    assert!(
        r.counters.lost > 0,
        "a crash without durable queues loses what it held"
    );
    assert!(r.passed, "the scenario's [expect] says lost >= 1");
    let lost: Vec<_> = r.violations.iter().filter(|v| v.kind == "lost").collect();
    assert!(!lost.is_empty());
    for v in lost {
        assert!(
            v.conversation.contains("->") && v.hops.contains("accepted"),
            "{v:?}"
        );
        assert!(
            v.faults_active
                .iter()
                .any(|f| f.contains("crash whatsapp (volatile)")),
            "{v:?}"
        );
    }
    assert!(
        r.liveness.verdict.starts_with("FAILED"),
        "{}",
        r.liveness.verdict
    );
}

/// The small test scenario without its `[expect]`: what the verdict checks then is what it
/// always checks.
fn small_without_expect() -> Scenario {
    let path = root().join("tests/data/scenarios/small.toml");
    let mut s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.expect.clear();
    s
}

/// The verdict of a broken system: failed, whatever `[expect]` says (here: nothing), with
/// the user-side failures counted.
fn assert_fails(name: &str, r: &interop_sim::metrics::Summary) {
    assert!(!r.passed, "{name}: a broken system passed: {:?}", r.expect);
    assert!(r.counters.failed > 0, "{name}: {:?}", r.counters);
    let failed = r
        .expect
        .iter()
        .find(|v| v.key == "failed")
        .expect("failed is checked");
    assert!(
        failed.origin == Origin::Always && !failed.ok,
        "{name}: {failed:?}"
    );
    assert!(
        r.liveness.verdict.starts_with("FAILED"),
        "{name}: {}",
        r.liveness.verdict
    );
}

#[test]
fn a_network_that_delivers_nothing_fails_the_run() {
    let mut s = small_without_expect();
    s.network.links[scenario::HopClass::ClientServer.index()].loss = 1.0;
    let r = run_scenario(&s, "test").summary;
    assert_fails("loss 1.0", &r);
    let c = &r.counters;
    assert_eq!(c.delivered, 0);
    assert_eq!(
        c.failed,
        c.sent - c.unreachable - c.expired,
        "every message composed failed: {c:?}"
    );
    assert!(c.unsent > 0, "{c:?}");
    assert!(
        r.liveness.verdict.contains("with no fault injected")
            && !r.liveness.verdict.contains("after the last fault"),
        "{}",
        r.liveness.verdict
    );
}

#[test]
fn a_device_that_never_retries_fails_the_run() {
    let mut s = small_without_expect();
    s.network.links[scenario::HopClass::ClientServer.index()].loss = 0.05;
    let healthy = run_scenario(&s, "test").summary;
    assert!(
        healthy.passed,
        "retries hide 5 % loss: {:?}",
        healthy.expect
    );
    let options = RunOptions {
        bugs: Bugs::NONE.never_retry(),
        ..RunOptions::default()
    };
    assert_fails("never retries", &run_with(&s, "test", options).summary);
}

#[test]
fn a_server_that_never_acks_fails_the_run() {
    let s = small_without_expect();
    let options = RunOptions {
        bugs: Bugs::NONE.never_ack(),
        ..RunOptions::default()
    };
    let r = run_with(&s, "test", options).summary;
    assert_fails("never acks", &r);
    assert!(r.counters.unsent > 0, "outboxes stall: {:?}", r.counters);
}

#[test]
fn a_queue_still_draining_at_the_end_is_late_not_lost() {
    let mut s = small_without_expect();
    s.network.links[scenario::HopClass::ClientServer.index()].loss = 0.0;
    s.network.links[scenario::HopClass::GatewayPartner.index()].loss = 0.0;
    // One slow gateway core: the interop backlog outlives a short drain.
    s.capacity.gateway.cores = 1;
    s.capacity.gateway.per_message_ns = 40_000_000;
    s.capacity.gateway.queue_max = 1_000_000;
    s.run.drain_ns = 5_000_000_000;
    let r = run_scenario(&s, "test").summary;
    let c = &r.counters;
    assert!(!r.passed, "{:?}", r.expect);
    assert!(c.queued_at_end > 0, "{c:?}");
    assert_eq!(c.lost, 0, "queued is not lost: {c:?}");
    let v = &r.liveness.verdict;
    assert!(
        v.contains("queued at end") && v.contains("the gateway's queue was still draining"),
        "{v}"
    );
    assert!(!v.contains("after the last fault"), "{v}");
}

/// A scenario that exercises duplicates, reordering and a durable crash at once.
fn stress() -> Scenario {
    let mut s = load("duplicates-after-reconnect.toml");
    let extra = load("out-of-order-after-reconnect.toml");
    s.faults.extend(extra.faults);
    s.faults.extend(load("partner-outage.toml").faults);
    if let Some(f) = s.faults.last_mut() {
        if let scenario::FaultKind::Crash { node, .. } = &mut f.kind {
            *node = scenario::Endpoint::Provider(0); // the hub itself, durable
        }
    }
    s
}

#[test]
fn the_stress_scenario_passes_without_bugs() {
    let r = run_with(&stress(), "test", RunOptions::default()).summary;
    let c = &r.counters;
    assert_eq!(
        (c.lost, c.duplicates, c.out_of_order),
        (0, 0, 0),
        "{:#?}",
        r.violations
    );
}

#[test]
fn each_bug_switch_is_caught() {
    let s = stress();
    let run = |bugs| {
        run_with(
            &s,
            "test",
            RunOptions {
                bugs,
                ..RunOptions::default()
            },
        )
        .summary
    };
    let dedup = run(Bugs::new(true, false, false));
    assert!(
        dedup.counters.duplicates > 0,
        "broken dedup must show duplicates"
    );
    assert!(dedup.violations.iter().any(|v| v.kind == "duplicate"));
    let ordering = run(Bugs::new(false, true, false));
    assert!(
        ordering.counters.out_of_order > 0,
        "broken ordering must show out-of-order messages"
    );
    assert!(ordering.violations.iter().any(|v| v.kind == "out_of_order"));
    let durability = run(Bugs::new(false, false, true));
    assert!(
        durability.counters.lost > 0,
        "broken durability must lose messages"
    );
    assert!(durability.violations.iter().any(|v| v.kind == "lost"));
}
