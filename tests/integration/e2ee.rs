//! Every message really encrypted: real and modeled crypto give the same run, the key
//! lifecycle faults (reinstall, prekey drain, stuck retries, PQXDH) do what Signal does, and no
//! plaintext, content type or profile data reaches the gateway, adapters or partner servers.

use crate::root;
use interop_sim::report::files::summary_json;
use interop_sim::scenario::{self, CryptoMode, Scenario};
use interop_sim::sim::{run_scenario, run_with, RunOptions};
use std::path::Path;

fn load(name: &str) -> Scenario {
    scenario::load(&root().join("scenarios").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn with_crypto(s: &Scenario, mode: CryptoMode) -> Scenario {
    let mut s = s.clone();
    s.e2ee.crypto = mode;
    s
}

#[test]
fn real_and_modeled_crypto_give_identical_summaries() {
    for name in [
        "identity-reset.toml",
        "pqxdh.toml",
        "prekey-drain.toml",
        "media-heavy.toml",
    ] {
        let mut s = load(name);
        // Blobs clamped to 64 KiB, as `validate` does: the media path (upload, pointer,
        // download, verify) is the same, without the seconds of AES over megabyte files.
        s.workload.media_bytes_max = 64 * 1024;
        let real = with_crypto(&s, CryptoMode::Real);
        let modeled = with_crypto(&s, CryptoMode::Modeled);
        assert_eq!(
            scenario::hash(&real),
            scenario::hash(&modeled),
            "the crypto mode is not part of the hash"
        );
        let a = run_scenario(&real, &scenario::hash(&real));
        let b = run_scenario(&modeled, &scenario::hash(&modeled));
        let path = Path::new("summary.json");
        assert_eq!(
            summary_json(&a.summary, path).ok(),
            summary_json(&b.summary, path).ok(),
            "{name}: summaries differ"
        );
        assert!(
            a.verified_plaintexts > 1_000,
            "{name}: real mode verified {} plaintexts",
            a.verified_plaintexts
        );
        assert_eq!(b.verified_plaintexts, 0, "modeled mode decrypts nothing");
        assert_eq!(
            a.verified_plaintexts,
            a.summary.latency.samples + a.summary.deliveries_in_warmup,
            "{name}: every shown copy was decrypted and verified"
        );
    }
}

#[test]
fn reinstalls_are_healed_by_retry_receipts() {
    // The key lifecycle is what is tested: modeled crypto (the real run of this scenario gives
    // the same summary, real_and_modeled_crypto_give_identical_summaries).
    let r = run_scenario(
        &with_crypto(&load("identity-reset.toml"), CryptoMode::Modeled),
        "test",
    );
    let s = &r.summary;
    assert!(
        s.crypto["security_code_changed"] > 10,
        "peers see the new identities: {}",
        s.crypto["security_code_changed"]
    );
    assert!(
        s.crypto["decrypt_failed_events"] > 10,
        "stale sessions fail first"
    );
    assert_eq!(
        s.counters.decrypt_failures, 0,
        "and re-encryption fixes every one: {:#?}",
        s.violations
    );
    assert_eq!(s.counters.lost, 0);
    assert!(s.passed);
}

#[test]
fn stuck_retries_are_counted_with_their_reason() {
    // The counting and naming of failures is what is tested: modeled crypto. Its real run
    // writes the same summary.json (compared once by hand) and is `bench check`'s, against the
    // committed baseline, on every CI run.
    let r = run_scenario(
        &with_crypto(&load("stuck-retry.toml"), CryptoMode::Modeled),
        "test",
    );
    let s = &r.summary;
    assert!(
        s.counters.decrypt_failures > 0,
        "\"waiting for this message\" is counted"
    );
    let v: Vec<_> = s
        .violations
        .iter()
        .filter(|v| v.kind == "decrypt_failure")
        .collect();
    assert!(!v.is_empty());
    assert!(v.iter().all(|v| v.hops.contains("undecryptable")), "{v:#?}");
    assert!(
        v.iter().any(|v| v.hops.contains("evicted")),
        "the eviction is named: {v:#?}"
    );
    assert!(s.passed, "its [expect] says decrypt_failures >= 1");
}

#[test]
fn a_drained_pool_falls_back_to_the_signed_prekey_then_refills() {
    // The key directory is what is tested: modeled crypto (the real run of this scenario gives
    // the same summary, real_and_modeled_crypto_give_identical_summaries).
    let r = run_scenario(
        &with_crypto(&load("prekey-drain.toml"), CryptoMode::Modeled),
        "test",
    );
    let c = &r.summary.crypto;
    assert!(
        c["bundles_without_one_time"] > 0,
        "the drain forces the fallback"
    );
    assert!(c["prekey_refills"] > 0, "the victims refill when online");
    assert_eq!(r.summary.counters.decrypt_failures, 0);
    assert!(r.summary.passed);
}

#[test]
fn a_bundle_fetch_limit_throttles_the_drain_and_leaves_one_time_prekeys() {
    // The limiter is what is tested: modeled crypto.
    let open = with_crypto(&load("prekey-drain.toml"), CryptoMode::Modeled);
    assert_eq!(
        open.e2ee.bundle_fetch_limit, None,
        "the scenario runs the drain unlimited"
    );
    let mut tight = open.clone();
    tight.e2ee.bundle_fetch_limit = Some(scenario::BundleFetchLimit {
        burst: 2,
        per_hour: 1.0,
    });
    let mut signal = open.clone();
    signal.e2ee.bundle_fetch_limit = Some(scenario::BundleFetchLimit::SIGNAL);
    let open = run_scenario(&open, "open").summary;
    let tight = run_scenario(&tight, "tight").summary;
    let signal = run_scenario(&signal, "signal").summary;
    let c = |s: &interop_sim::metrics::Summary, key: &str| s.crypto[key];
    assert_eq!(c(&open, "bundle_fetches_limited"), 0);
    assert!(
        c(&tight, "bundles_without_one_time") < c(&open, "bundles_without_one_time"),
        "the drained pools run dry less often: {} with the limit, {} without",
        c(&tight, "bundles_without_one_time"),
        c(&open, "bundles_without_one_time")
    );
    assert!(c(&tight, "prekey_refills") < c(&open, "prekey_refills"));
    let attempts = tight.work["prekey_drain_fetches"];
    assert!(
        c(&tight, "bundle_fetches_limited") > attempts * 99 / 100,
        "almost all of the adversary's {attempts} fetches are refused"
    );
    for s in [&tight, &signal] {
        assert_eq!(
            c(s, "bundle_fetches_limited_honest"),
            0,
            "honest devices fetch a peer device once per session"
        );
        assert_eq!(s.counters.decrypt_failures, 0);
        assert!(s.passed);
    }
    assert_eq!(
        c(&signal, "bundles_without_one_time"),
        0,
        "at Signal's limit no pool runs dry"
    );
}

#[test]
fn honest_fetches_over_a_tight_limit_wait_for_the_permit_and_every_message_arrives() {
    // Identity resets renew sessions: each renewal fetches the peer device's bundle again, and
    // with one permit per pair a minute some renewals come too soon: the client waits for the
    // permit (issue 20), and its messages arrive that much later, all of them.
    // The limiter is what is tested: modeled crypto.
    let mut open = with_crypto(&load("identity-reset.toml"), CryptoMode::Modeled);
    open.e2ee.bundle_fetch_limit = None;
    let mut tight = open.clone();
    tight.e2ee.bundle_fetch_limit = Some(scenario::BundleFetchLimit {
        burst: 1,
        per_hour: 60.0, // a permit a minute
    });
    let (ra, rb) = (run_scenario(&open, "test"), run_scenario(&tight, "test"));
    // The delivered messages' latencies, added up (s).
    let total_s = |r: &interop_sim::metrics::RunResult| -> f64 {
        r.ledger
            .records()
            .iter()
            .filter(|m| m.is_delivered())
            .map(|m| (m.last_shown.as_nanos() - m.created.as_nanos()) as f64 / 1e9)
            .sum()
    };
    let (late_a, late_b) = (total_s(&ra), total_s(&rb));
    let (a, b) = (ra.summary, rb.summary);
    assert_eq!(a.crypto["bundle_fetches_limited_honest"], 0);
    assert!(!a.crypto.contains_key("bundle_fetch_wait_ns"));
    let waits = b.crypto["bundle_fetches_limited_honest"];
    let waited_ns = b.crypto["bundle_fetch_wait_ns"];
    assert!(waits > 0, "renewals meet the limit");
    // Each wait is for the next free permit of its pair, so renewals queued on one pair wait
    // for later ones (the bucket's arithmetic, and that a held message leaves no earlier, are
    // unit tests: nodes/keyring/tests.rs and nodes/pair_tests/retry.rs).
    assert!(waited_ns >= waits, "{waited_ns} ns over {waits} waits");
    assert_eq!(b.crypto["bundle_fetches_limited"], 0, "no adversary here");
    for s in [&a, &b] {
        let c = &s.counters;
        assert_eq!((c.failed, c.lost, c.duplicates), (0, 0, 0), "{c:?}");
    }
    // Each message ends delivered, unreachable or expired (checked above). The waits move
    // deliveries, and with them the replies composed before the send window closes: the
    // counts differ by a message or two.
    assert!(
        b.counters.delivered * 100 >= a.counters.delivered * 99,
        "{:?} against {:?}",
        b.counters,
        a.counters
    );
    // Each wait holds back the message that needed the bundle (and the ones behind it).
    eprintln!(
        "latencies added up: {late_a:.0} s without the limit, {late_b:.0} s with it; waits {:.0} s in {waits}",
        waited_ns as f64 / 1e9
    );
    assert!(
        late_b > late_a * 1.2,
        "the waits show in latency: {late_b:.0} s against {late_a:.0} s without the limit"
    );
}

#[test]
fn pqxdh_replaces_x3dh_and_costs_more() {
    let pq = load("pqxdh.toml");
    let mut classic = pq.clone();
    classic.e2ee.protocol = scenario::Protocol::X3dh;
    let a = run_scenario(&with_crypto(&pq, CryptoMode::Modeled), "test").summary;
    let b = run_scenario(&with_crypto(&classic, CryptoMode::Modeled), "test").summary;
    assert!(a.crypto.keys().any(|k| k.contains("pqxdh_initiate")));
    assert!(!a.crypto.keys().any(|k| k.contains("x3dh_initiate")));
    let ns = |s: &interop_sim::metrics::Summary, op: &str| -> u64 {
        s.crypto
            .iter()
            .filter(|(k, _)| {
                k.starts_with("gatekeeper_device.") && k.contains(op) && k.ends_with("_ns")
            })
            .map(|(_, v)| v)
            .sum()
    };
    assert!(
        ns(&a, "xdh_initiate") > ns(&b, "xdh_initiate"),
        "PQXDH is priced above X3DH"
    );
}

#[test]
fn no_plaintext_content_type_or_profile_data_reaches_the_infrastructure() {
    let mut s = load("pqxdh.toml");
    s.e2ee.protocol = scenario::Protocol::X3dh;
    assert_isolated(&s);
}

#[test]
fn group_messages_leak_nothing_to_the_infrastructure_either() {
    let path = root().join("tests/data/scenarios/groups-small.toml");
    let s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_isolated(&s);
}

/// Runs `s` with real crypto, taps everything the gateway, adapters and partner servers
/// handle, and scans it for the plaintext canary, content types and profile fields.
fn assert_isolated(s: &Scenario) {
    let r = run_with(
        s,
        "test",
        RunOptions {
            tap: true,
            ..RunOptions::default()
        },
    );
    assert!(
        r.tapped.len() > 1_000,
        "the gateway, adapters and partner servers handled frames"
    );
    let canary = r.canary.to_le_bytes();
    // Content types as the simulator names them (`ContentKind`'s variants) and profile data
    // (the providers' and users' names): none may appear in what crosses the infrastructure.
    let forbidden: Vec<&[u8]> = vec![
        b"Text",
        b"Image",
        b"Voice",
        b"Video",
        b"File",
        b"ContentKind",
        b"whatsapp",
        b"birdychat",
        b"haiket",
    ];
    let mut ciphertexts = 0;
    for frame in &r.tapped {
        assert!(
            !frame.windows(8).any(|w| w == canary),
            "plaintext canary seen by the infrastructure"
        );
        for word in &forbidden {
            let text = String::from_utf8_lossy(frame);
            let head = text.split("bytes: Some").next().unwrap_or("");
            assert!(
                !head.contains(std::str::from_utf8(word).unwrap_or("?")),
                "'{}' in routing fields: {head}",
                String::from_utf8_lossy(word)
            );
        }
        if frame.len() > 300 {
            ciphertexts += 1;
        }
    }
    assert!(
        ciphertexts > 100,
        "real ciphertext crossed (and was scanned)"
    );
    // The canary is really in the plaintexts: the scan would have found it unencrypted.
    assert!(r.verified_plaintexts > 0);
}
