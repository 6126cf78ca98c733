//! The chat server's queue in a whole run, against queueing theory (issue 18's excess at high
//! utilization). Every message is one Poisson arrival of a submission (40 µs of a core) and,
//! a round trip later, the recipient's ack (a control frame, 10 µs). With the acks on cores of
//! their own (`control_queue = "separate"`) the messages meet an M/D/1 queue; with the acks in
//! the same FIFO, the messages wait what Pollaczek-Khinchine gives for the mix of the two
//! service times. That mix, not the acks' timing, is why the shared queue waits more than
//! M/D/1 at the same utilization: the acks arrive a round trip (tens of ms) after their
//! message, which at the queue's scale (tens of µs) is as good as independent.
//!
//! One provider's users write to each other (no gateway), one device each, sessions set up
//! before the clock (no key traffic), no retries within the run (the isolated node of the
//! analytic tests). Three seeds per case, their frames pooled. At utilization 0.9 the seeds'
//! own means spread by about ±5 % (a 30 s window is short for a queue that busy); at 0.8 by
//! about ±1.5 %.

use interop_sim::scenario;
use interop_sim::sim::run_scenario;

const MESSAGE_NS: f64 = 40_000.0;
const ACK_NS: f64 = MESSAGE_NS / 4.0;
const SEND_WINDOW_S: f64 = 30.0;
const SEEDS: [u64; 3] = [1, 2, 3];

/// 20,000 users writing `per_user_hour` messages each, the chat server on one core.
fn scenario(per_user_hour: u32, control_queue: &str) -> String {
    let chat = format!(
        r#"chat_server = {{ cores = 1, per_message = "40us", queue_max = 100000000, control_queue = "{control_queue}" }}"#
    );
    scenario_with(per_user_hour, control_queue, &chat)
}

/// The same population with `capacity` as the `[capacity]` section's lines.
fn scenario_with(per_user_hour: u32, control_queue: &str, capacity: &str) -> String {
    format!(
        r#"
[run]
name = "queue-chat-{control_queue}"
seed = 1
duration = "{SEND_WINDOW_S}s"
drain = "5s"
interval = "1s"
ramp = "5s"
warmup = "10s"

[[provider]]
name = "whatsapp"
role = "gatekeeper"
users = 20000

[[provider]]
name = "birdychat"
role = "partner"
users = 10

[workload]
messages_per_user_hour = {per_user_hour}
cross_provider = 0.0
reply_probability = 0.0
read_probability = 0.0
content = {{ text = 1.0 }}

[capacity]
{capacity}

[e2ee]
crypto = "modeled"
sessions = "established"

[devices]
online_share = 1.0
retry_initial = "60s"
retry_max = "60s"
"#
    )
}

/// What the seeds measured together at the chat server.
struct Measured {
    /// Message arrivals per second in the send window (the realized rate).
    rate: f64,
    /// Mean wait of a message frame for the core, µs, over the frames of every seed.
    wait_us: f64,
    /// The seeds' own means, for the report.
    per_seed: Vec<f64>,
}

fn measure(text: &str) -> Measured {
    let base = scenario::parse(text, "queue-chat.toml").expect("valid scenario");
    let (mut sent, mut wait_sum, mut per_seed) = (0u64, 0.0, Vec::new());
    for seed in SEEDS {
        let mut s = base.clone();
        s.run.seed = seed;
        let r = run_scenario(&s, "test");
        let c = &r.summary.counters;
        assert_eq!((c.lost, c.duplicates), (0, 0), "seed {seed}: {c:?}");
        let chat = &r.summary.nodes["chat_server"];
        // Each seed's mean weighs by its messages, as if the frames were pooled.
        sent += c.sent;
        wait_sum += chat.message_wait_mean_us * c.sent as f64;
        per_seed.push(chat.message_wait_mean_us);
    }
    Measured {
        rate: sent as f64 / SEEDS.len() as f64 / SEND_WINDOW_S,
        wait_us: wait_sum / sent as f64,
        per_seed,
    }
}

/// Mean wait in queue of M/G/1 (Pollaczek-Khinchine), µs, for Poisson arrivals at
/// `rate` per second of each class in `classes` (rate, service ns).
fn pollaczek_khinchine_us(classes: &[(f64, f64)]) -> f64 {
    let rho: f64 = classes.iter().map(|(l, s)| l * s * 1e-9).sum();
    let second_moment: f64 = classes.iter().map(|(l, s)| l * (s * 1e-9).powi(2)).sum();
    assert!(rho < 1.0, "a stable queue: rho {rho}");
    second_moment / (2.0 * (1.0 - rho)) * 1e6
}

fn within(measured: f64, expected: f64, tolerance: f64) -> bool {
    (measured / expected - 1.0).abs() <= tolerance
}

#[test]
fn with_acks_on_their_own_cores_messages_meet_an_m_d_1_queue() {
    // Utilization 0.9 of message frames alone.
    let m = measure(&scenario(4_050, "separate"));
    let md1 = pollaczek_khinchine_us(&[(m.rate, MESSAGE_NS)]);
    let rho = m.rate * MESSAGE_NS * 1e-9;
    eprintln!(
        "separate: message wait {:.2} µs (seeds {:?}), M/D/1 {md1:.2} µs, utilization {rho:.4}",
        m.wait_us, m.per_seed
    );
    assert!((0.88..0.92).contains(&rho), "utilization {rho}");
    assert!(
        within(m.wait_us, md1, 0.03),
        "message wait {:.1} µs (seeds {:?}) against M/D/1 {md1:.1} µs at utilization {rho:.3}",
        m.wait_us,
        m.per_seed
    );
}

#[test]
fn with_acks_in_the_same_queue_messages_wait_what_the_service_mix_predicts() {
    // Utilization 0.8: messages 0.64, acks 0.16.
    let m = measure(&scenario(2_880, "shared"));
    let mix = [(m.rate, MESSAGE_NS), (m.rate, ACK_NS)];
    let mg1 = pollaczek_khinchine_us(&mix);
    let rho = m.rate * (MESSAGE_NS + ACK_NS) * 1e-9;
    assert!((0.78..0.82).contains(&rho), "utilization {rho}");
    assert!(
        within(m.wait_us, mg1, 0.03),
        "message wait {:.1} µs (seeds {:?}) against M/G/1 of the mix {mg1:.1} µs at utilization {rho:.3}",
        m.wait_us,
        m.per_seed
    );
    // M/D/1 at the same utilization, every frame the mean service time: the shared queue
    // waits about a third more, which the mix (E[S²] = 1.36 E[S]²) accounts for in full.
    let mean_service = (MESSAGE_NS + ACK_NS) / 2.0;
    let md1_same_rho = pollaczek_khinchine_us(&[(2.0 * m.rate, mean_service)]);
    let excess = m.wait_us / md1_same_rho - 1.0;
    eprintln!(
        "shared: message wait {:.2} µs (seeds {:?}), M/G/1 of the mix {mg1:.2} µs, M/D/1 at the same utilization {md1_same_rho:.2} µs, utilization {rho:.4}",
        m.wait_us, m.per_seed
    );
    assert!(
        (0.30..0.42).contains(&excess),
        "shared queue {:.1} µs against M/D/1 at the same utilization {md1_same_rho:.1} µs: {:+.0} %",
        m.wait_us,
        excess * 100.0
    );

    // The same scenario with the acks on cores of their own: the messages alone, M/D/1.
    let apart = measure(&scenario(2_880, "separate"));
    let md1 = pollaczek_khinchine_us(&[(apart.rate, MESSAGE_NS)]);
    eprintln!(
        "same load, acks apart: message wait {:.2} µs (seeds {:?}), M/D/1 {md1:.2} µs",
        apart.wait_us, apart.per_seed
    );
    assert!(
        within(apart.wait_us, md1, 0.03),
        "message wait {:.1} µs (seeds {:?}) against M/D/1 {md1:.1} µs",
        apart.wait_us,
        apart.per_seed
    );
}

#[test]
fn on_a_shared_host_of_one_core_a_node_of_many_meets_that_core_and_its_price() {
    // The chat server declares 16 cores, but runs on a host of one, which adds 10 µs of its
    // own to every frame: messages 50 µs, acks 20 µs, one FIFO. Utilization about 0.78.
    let capacity = r#"chat_server = { cores = 16, per_message = "40us", queue_max = 100000000 }
host = { cores = 1, per_frame = "10us" }"#;
    let m = measure(&scenario_with(2_000, "host", capacity));
    let (message_ns, ack_ns) = (MESSAGE_NS + 10_000.0, ACK_NS + 10_000.0);
    let mg1 = pollaczek_khinchine_us(&[(m.rate, message_ns), (m.rate, ack_ns)]);
    let rho = m.rate * (message_ns + ack_ns) * 1e-9;
    eprintln!(
        "host: message wait {:.2} µs (seeds {:?}), M/G/1 {mg1:.2} µs, utilization {rho:.4}",
        m.wait_us, m.per_seed
    );
    assert!((0.75..0.81).contains(&rho), "utilization {rho}");
    assert!(
        within(m.wait_us, mg1, 0.03),
        "message wait {:.1} µs (seeds {:?}) against M/G/1 {mg1:.1} µs at utilization {rho:.3}",
        m.wait_us,
        m.per_seed
    );
}
