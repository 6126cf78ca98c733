//! Delivery guarantees without faults: every message to an enlisted recipient reaches each of
//! its devices exactly once; messages to users who did not opt in are `unreachable`, not lost.

use crate::root;
use interop_sim::scenario;
use interop_sim::sim::run_scenario;

#[test]
fn every_message_reaches_every_device_exactly_once() {
    let s = scenario::load(&root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml is valid");
    let r = run_scenario(&s, "test");
    let c = &r.summary.counters;
    assert!(
        c.sent > 1_000,
        "the scenario should send a fair number of messages, sent {}",
        c.sent
    );
    let mut devices_checked = 0u64;
    for (i, m) in r.ledger.records().iter().enumerate() {
        assert_eq!(m.duplicates_shown, 0, "message {i} shown twice on a device");
        if m.refused() && !m.accepted() {
            continue;
        }
        assert!(m.accepted(), "message {i} never reached a server");
        let all = m.expected_mask;
        assert_eq!(
            m.shown_mask, all,
            "message {i} missed a device: shown {:#b} of {:#b}",
            m.shown_mask, all
        );
        devices_checked += m.expected_devices() as u64;
    }
    assert!(
        devices_checked > c.sent,
        "multi-device users were exercised"
    );
    assert_eq!(c.lost, 0);
    assert_eq!(c.duplicates, 0);
    assert_eq!(c.out_of_order, 0);
    assert_eq!(c.delivered + c.unreachable, c.sent);
}

#[test]
fn messages_to_users_not_opted_in_are_unreachable_not_lost() {
    let s = scenario::load(&root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml is valid");
    let r = run_scenario(&s, "test");
    let c = &r.summary.counters;
    assert!(
        c.unreachable > 0,
        "opt_in < 1 must make some cross-provider messages unreachable"
    );
    let interop = &r.summary.paths["interop"].counters;
    let native = &r.summary.paths["native"].counters;
    assert_eq!(native.unreachable, 0, "native chats never need opt-in");
    assert_eq!(interop.unreachable, c.unreachable);
    assert_eq!(c.lost, 0);
    for m in r.ledger.records().iter().filter(|m| m.refused()) {
        assert!(!m.accepted(), "a refused message is never accepted");
        assert_eq!(m.shown_mask, 0, "a refused message is never shown");
    }
}
