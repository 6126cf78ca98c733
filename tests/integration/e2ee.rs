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
        let s = load(name);
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
            a.verified_plaintexts, a.summary.latency.samples,
            "{name}: every shown copy was decrypted and verified"
        );
    }
}

#[test]
fn reinstalls_are_healed_by_retry_receipts() {
    let r = run_scenario(&load("identity-reset.toml"), "test");
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
    let r = run_scenario(&load("stuck-retry.toml"), "test");
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
    let r = run_scenario(&load("prekey-drain.toml"), "test");
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
    let r = run_with(
        &s,
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
