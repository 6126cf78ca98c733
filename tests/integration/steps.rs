//! The simulated copy's step-by-step latency (`RunOptions::hops`), the model's side of
//! `validate`'s steps table: the stages a live run marks, recorded for the same one message in
//! 64, whose steps add up to what the ledger measured end to end.

use interop_sim::scenario;
use interop_sim::sim::{run_scenario, run_with, RunOptions};

/// 2,000 users of one provider writing to each other (`cross` of them to partners' users),
/// one device each, the chat server on 2 cores at 40 us a message (some queueing, no loss),
/// crypto modeled (priced, not performed: the steps are what is tested).
fn scenario(cross: f64) -> scenario::Scenario {
    let text = format!(
        r#"
[run]
name = "steps"
seed = 7
duration = "20s"
drain = "5s"
interval = "1s"
ramp = "2s"
warmup = "3s"

[[provider]]
name = "whatsapp"
role = "gatekeeper"
users = 2000

[[provider]]
name = "birdychat"
role = "partner"
users = 400
adapter = "proxied"

[workload]
messages_per_user_hour = 1800
cross_provider = {cross}
reply_probability = 0.0
read_probability = 0.0
content = {{ text = 1.0 }}

[devices]
online_share = 1.0

[capacity]
chat_server = {{ cores = 2, per_message = "40us" }}

[e2ee]
crypto = "modeled"
"#
    );
    scenario::parse(&text, "steps.toml").expect("valid")
}

/// The same population's devices on a load generator of one core (`[capacity] generator`).
fn on_generator(cross: f64) -> scenario::Scenario {
    let mut s = scenario(cross);
    s.capacity.generator = Some(scenario::HostCapacity {
        cores: 1,
        per_frame_ns: 5_000,
        per_wake_ns: 20_000,
    });
    s
}

fn traced() -> RunOptions {
    RunOptions {
        hops: true,
        ..RunOptions::default()
    }
}

/// On the native path a message goes send -> queued -> its provider's server -> delivered;
/// each traced message's steps add up to its latency in the ledger, so the steps' totals add
/// up to the traced messages' total latency (the same instants, not a second measurement).
#[test]
fn a_native_messages_steps_add_up_to_its_latency() {
    let s = scenario(0.0);
    let r = run_with(&s, "steps", traced());
    let names: Vec<(&str, &str)> = (r.hops.iter())
        .map(|h| (h.from.as_str(), h.to.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("send", "queued"),
            ("queued", "chat_server"),
            ("queued", "partner_server.1"),
            ("chat_server", "delivered"),
            ("partner_server.1", "delivered"),
        ]
    );
    let warmup = s.run.warmup_ns;
    let latencies: Vec<f64> = (r.ledger.records().iter().enumerate())
        .filter(|(i, m)| {
            interop_sim::metrics::hops::traced(*i as u64)
                && m.created.as_nanos() >= warmup
                && m.shown_mask != 0
        })
        .map(|(_, m)| (m.last_shown.as_nanos() - m.created.as_nanos()) as f64 / 1e6)
        .collect();
    assert!(latencies.len() > 250, "{} traced", latencies.len());
    assert_eq!(
        r.hops[0].samples,
        latencies.len() as u64,
        "every traced message sent after the warm-up and delivered"
    );
    let total: f64 = latencies.iter().sum();
    let steps: f64 = (r.hops.iter()).map(|h| h.mean_ms * h.samples as f64).sum();
    assert!(
        (steps - total).abs() < 1e-9 * total,
        "steps {steps} ms against the ledger's {total} ms"
    );
    // The chat server's queue is on its step: the frame waits for a core after its link.
    let to_chat = &r.hops[1];
    assert!(to_chat.p99_ms > to_chat.p50_ms, "{to_chat:?}");
}

/// Interop messages add the gateway and the partner's adapter, in the order they meet them;
/// tracing changes nothing the run measures, and the same seed traces the same steps.
#[test]
fn interop_steps_follow_the_way_and_tracing_changes_nothing() {
    let s = scenario(0.5);
    let r = run_with(&s, "steps", traced());
    let step = |from: &str, to: &str| r.hops.iter().find(|h| h.from == from && h.to == to);
    for (from, to) in [
        ("queued", "chat_server"),
        ("chat_server", "gateway"),
        ("gateway", "adapter.1"),
        ("adapter.1", "delivered"),
        ("queued", "adapter.1"),
        ("gateway", "chat_server"),
    ] {
        let h = step(from, to).unwrap_or_else(|| panic!("no {from} -> {to}: {:?}", r.hops));
        assert!(h.samples > 20 && h.p50_ms > 0.0, "{h:?}");
    }
    let plain = run_scenario(&s, "steps");
    assert!(plain.hops.is_empty(), "a run not asked traces nothing");
    assert_eq!(plain.summary.fingerprint, r.summary.fingerprint);
    assert_eq!(
        serde_json::to_string(&plain.summary).expect("json"),
        serde_json::to_string(&r.summary).expect("json")
    );
    assert_eq!(run_with(&s, "steps", traced()).hops, r.hops);
}

/// On a load generator's core the message is sent when the generator takes it (the ledger's
/// creation and the send mark, both) and delivered when the generator takes its delivery and
/// works on it: each traced message's latency is its steps plus that last item's work, exactly.
/// The generator's core, loaded, makes the device's steps longer than its links.
#[test]
fn on_a_generators_core_the_steps_add_up_to_the_latency_less_the_last_items_work() {
    let s = on_generator(0.0);
    let r = run_with(&s, "steps", traced());
    let warmup = s.run.warmup_ns;
    let latencies: Vec<u64> = (r.ledger.records().iter().enumerate())
        .filter(|(i, m)| {
            interop_sim::metrics::hops::traced(*i as u64)
                && m.created.as_nanos() >= warmup
                && m.shown_mask != 0
        })
        .map(|(_, m)| m.last_shown.as_nanos() - m.created.as_nanos())
        .collect();
    assert!(latencies.len() > 250, "{} traced", latencies.len());
    let total_ms = latencies.iter().sum::<u64>() as f64 / 1e6;
    let steps: f64 = (r.hops.iter()).map(|h| h.mean_ms * h.samples as f64).sum();
    let work_ms = latencies.len() as f64 * 5_000.0 / 1e6;
    assert!(
        (steps + work_ms - total_ms).abs() < 1e-9 * total_ms,
        "steps {steps} ms + {work_ms} ms of work against the ledger's {total_ms} ms"
    );
    let send = &r.hops[0];
    assert_eq!((send.from.as_str(), send.to.as_str()), ("send", "queued"));
    assert_eq!(
        send.p50_ms, 0.005,
        "composed in one item of the generator's work"
    );
}
