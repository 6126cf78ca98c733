//! Groups across providers with Sender Keys: one ciphertext per group message fanned out by the
//! servers, key distribution over pairwise sessions, re-keying when a member leaves, retry
//! receipts that bring a reinstalled member the key again, and groups of the largest size.

use crate::root;
use interop_sim::report::files::summary_json;
use interop_sim::scenario::{self, CryptoMode, Scenario};
use interop_sim::sim::run_scenario;
use std::path::Path;

fn small() -> Scenario {
    let path = root().join("tests/data/scenarios/groups-small.toml");
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn crypto(s: &interop_sim::metrics::Summary, key: &str) -> u64 {
    s.crypto.get(key).copied().unwrap_or(0)
}

#[test]
fn group_messages_are_sender_key_encrypted_and_reach_every_member_device() {
    let s = small();
    let real = run_scenario(&s, "test");
    let mut m = s.clone();
    m.e2ee.crypto = CryptoMode::Modeled;
    let modeled = run_scenario(&m, "test");
    let path = Path::new("summary.json");
    assert_eq!(
        summary_json(&real.summary, path).ok(),
        summary_json(&modeled.summary, path).ok(),
        "real and modeled crypto give the same summary"
    );
    let sm = &real.summary;
    assert!(sm.passed, "{:?}", sm.expect);
    let group = &sm.paths["group"];
    assert!(group.counters.delivered > 1_000, "{:?}", group.counters);
    assert_eq!(group.counters.lost, 0);
    assert_eq!(
        real.verified_plaintexts,
        sm.latency.samples + sm.deliveries_in_warmup,
        "every shown copy, group ones included, decrypted to the plaintext sent"
    );
    let sends = sm.work["group_sends"];
    let encrypts = crypto(sm, "gatekeeper_device.sender_key_encrypt")
        + crypto(sm, "partner_device.sender_key_encrypt");
    let decrypts = crypto(sm, "gatekeeper_device.sender_key_decrypt")
        + crypto(sm, "partner_device.sender_key_decrypt");
    // One Sender Key encryption per group message, plus one per retry receipt answered for a
    // group message: each follows a failed decryption, whose receipt goes out again (at most
    // RETRY_RECEIPT_SENDS_MAX times in all) while its answer is still on the way. One
    // decryption per member device's copy.
    let failed = crypto(sm, "decrypt_failed_events");
    let answers_max = failed * u64::from(interop_sim::nodes::device::RETRY_RECEIPT_SENDS_MAX);
    assert!(
        encrypts >= sends && encrypts - sends <= answers_max,
        "{encrypts} for {sends} messages and {failed} failed decryptions"
    );
    assert!(encrypts > sends, "failed decryptions were answered");
    assert!(decrypts >= group.latency.samples, "{decrypts} decrypts");
    assert!(crypto(sm, "sender_key_distributions") > 0);
    assert!(
        crypto(sm, "sender_key_rotations") > 0 && sm.work["group_leaves"] > 0,
        "members left, so senders re-keyed"
    );
    // The reinstall wave broke keys; retry receipts healed every copy.
    assert!(crypto(sm, "decrypt_failed_events") > 0);
    assert_eq!(sm.counters.decrypt_failures, 0);
}

#[test]
fn without_departures_no_sender_key_is_replaced() {
    let mut s = small();
    s.e2ee.crypto = CryptoMode::Modeled;
    s.workload.group_leave = 0.0;
    s.faults.clear();
    let r = run_scenario(&s, "test");
    assert_eq!(crypto(&r.summary, "sender_key_rotations"), 0);
    assert!(!r.summary.work.contains_key("group_leaves"));
    // Each sender device distributes its key once per member device at most.
    assert!(crypto(&r.summary, "sender_key_distributions") > 0);
    assert_eq!(r.summary.counters.lost, 0);
}

#[test]
fn a_group_of_1024_members_is_fanned_out_to_all() {
    let mut s = small();
    s.e2ee.crypto = CryptoMode::Modeled;
    s.providers[0].users = 900;
    s.providers[1].users = 200;
    s.workload.group_size_min = 1024;
    s.workload.group_size_max = 1024;
    s.workload.group_leave = 0.0;
    s.workload.cross_provider = 0.2;
    s.workload.messages_per_user_hour = 2.0;
    s.faults.clear();
    let r = run_scenario(&s, "test");
    let sm = &r.summary;
    assert!(sm.work["group_sends"] > 5, "{:?}", sm.work);
    let group = &sm.paths["group"];
    assert_eq!(group.counters.lost, 0, "{:?}", group.counters);
    assert!(
        group.counters.delivered > 5 * 1000,
        "each group message reaches about a thousand members: {:?}",
        group.counters
    );
}

#[test]
fn group_size_is_bounded_by_1024() {
    let text = std::fs::read_to_string(root().join("tests/data/scenarios/groups-small.toml"))
        .expect("readable");
    let text = text.replace("max = 24 }", "max = 2000 }");
    let err = scenario::parse(&text, "groups.toml").expect_err("2000 members");
    let msg = err.to_string();
    assert!(msg.contains("workload.groups.size.max"), "{msg}");
    assert!(msg.contains("1024"), "{msg}");
}
