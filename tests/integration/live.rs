//! The live driver on loopback (issue 7's acceptance): real TCP, the gateway's links under
//! Noise, clients that really encrypt with Signal. A few thousand messages in a few seconds:
//! nothing lost, nothing shown twice, every plaintext verified at its recipient, and the
//! plaintext marker never seen in the gateway's decrypted transport buffers.

use interop_sim::live::{run_live, Arrivals, LiveOptions};
use interop_sim::scenario;

#[test]
fn live_loopback_delivers_every_encrypted_message_once_and_the_gateway_sees_no_plaintext() {
    let s = scenario::parse(
        include_str!("../../scenarios/baseline.toml"),
        "scenarios/baseline.toml",
    )
    .expect("the baseline is valid");
    let opts = LiveOptions {
        users: Some(300),
        rate_per_s: Some(1_500.0),
        duration_ns: Some(2_000_000_000),
        arrivals: Arrivals::Poisson,
        drain_max_ns: 5_000_000_000,
        ..LiveOptions::default()
    };
    let out = run_live(&s, "test", &opts).expect("a live run on loopback starts");
    let r = &out.report;
    let c = &out.result.summary.counters;
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    for (k, p) in &out.result.summary.paths {
        eprintln!("{k}: {:?}", p.counters);
    }
    for v in out.result.summary.violations.iter().take(5) {
        eprintln!("{v:?}");
    }
    assert!(
        r.sent >= 2_500,
        "a few thousand messages went out: {}",
        r.sent
    );
    assert_eq!(r.dropped_arrivals, 0);
    assert!(r.rate_reached);
    assert_eq!(c.lost, 0, "lost: {:?}", out.result.summary.evidence.lost);
    assert_eq!(c.duplicates, 0);
    assert_eq!(c.unsent, 0);
    assert_eq!(c.delivered + c.unreachable, c.sent);
    assert!(c.delivered > 2_000, "delivered {}", c.delivered);
    assert_eq!(r.decrypt_failures, 0);
    assert_eq!(
        r.plaintext_verified, c.delivered,
        "every delivery decrypted to its own plaintext"
    );
    assert!(
        out.result.summary.counters.delivered > 0 && r.gateway_messages_inspected > 100,
        "the gateway probe looked at its buffers"
    );
    assert_eq!(r.gateway_plaintext_hits, 0, "plaintext in the gateway");
    assert!(r.noise_messages > 0);
}
