//! `[run] ramp` and `warmup`: devices connect over a ramp instead of all at time zero, and the
//! cold start is left out of the percentiles and utilization but never out of the counters.

use crate::root;
use interop_sim::metrics::RunResult;
use interop_sim::scenario::{self, Scenario};
use interop_sim::sim::run_scenario;

/// small.toml behind a one-core gateway slow enough (40 ms a frame) that a connect storm
/// matters, with the given `[run]` lines.
fn slow_gateway(run_lines: &str) -> Scenario {
    let text = std::fs::read_to_string(root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml is readable");
    let text = text.replace(
        "interval = \"5s\"",
        &format!("interval = \"5s\"\n{run_lines}"),
    )
        + "\n[capacity]\ngateway = { cores = 1, per_message = \"40ms\", queue_max = 100000 }\n";
    scenario::parse(&text, "slow-gateway.toml").expect("valid scenario")
}

/// scenarios/retry-storm.toml with its `ramp` replaced.
fn retry_storm(ramp: &str) -> Scenario {
    let text = std::fs::read_to_string(root().join("scenarios/retry-storm.toml"))
        .expect("retry-storm.toml is readable")
        .replace("ramp = \"0s\"", &format!("ramp = \"{ramp}\""));
    scenario::parse(&text, "retry-storm.toml").expect("valid scenario")
}

#[test]
fn a_connect_storm_tips_the_gateway_into_a_retry_storm_that_a_ramp_avoids() {
    let storm = run_scenario(&retry_storm("0s"), "test");
    let ramped = run_scenario(&retry_storm("20s"), "test");
    let util = |r: &RunResult| r.summary.nodes["gateway"].utilization_mean;
    // Every device at t = 0: the backlog outlasts the redelivery timers, redeliveries add to
    // it, and the gateway stays saturated for the whole run.
    assert!(util(&storm) > 0.9, "storm: {}", util(&storm));
    assert!(
        storm.summary.passed,
        "the scenario expects it: {:?}",
        storm.summary.expect
    );
    // The same population connecting over 20 s: the gateway keeps up.
    assert!(util(&ramped) < 0.6, "ramped: {}", util(&ramped));
    let queue = |r: &RunResult| {
        r.timeseries
            .rows
            .iter()
            .map(|row| row.gateway_queue)
            .max()
            .unwrap_or(0)
    };
    assert!(queue(&storm) > 10 * queue(&ramped).max(1));
    // The report names it.
    let flags = storm.summary.redelivery_flags();
    assert!(
        flags.iter().any(|(node, _, _)| *node == "chat_server"),
        "{flags:?}"
    );
    assert_eq!(
        ramped.summary.redelivery_flags(),
        [],
        "a healthy run is not flagged"
    );
}

#[test]
fn the_warm_up_is_left_out_of_the_percentiles_and_kept_in_the_counters() {
    let r = run_scenario(&slow_gateway("ramp = \"20s\""), "test");
    let s = &r.summary;
    assert_eq!(s.warmup_s, 20.0, "warmup defaults to the ramp");
    assert!(s.deliveries_in_warmup > 0);
    assert_eq!(
        s.latency.samples + s.deliveries_in_warmup,
        r.ledger.counts.shown,
        "every device delivery is a sample or in the warm-up"
    );
    let all = run_scenario(&slow_gateway("ramp = \"20s\"\nwarmup = \"0s\""), "test");
    assert_eq!(all.summary.deliveries_in_warmup, 0);
    assert_eq!(all.summary.latency.samples, all.ledger.counts.shown);
    assert_eq!(
        all.summary.counters, s.counters,
        "the warm-up changes what is measured, not what happens"
    );
    assert_eq!(all.summary.fingerprint, s.fingerprint);
}

#[test]
fn ramp_and_warmup_default_and_are_bounded_by_the_duration() {
    let small = std::fs::read_to_string(root().join("tests/data/scenarios/small.toml"))
        .expect("small.toml is readable");
    let with = |run: &str| small.replace("duration = \"90s\"", run);
    let s = scenario::parse(&with("duration = \"5m\""), "t.toml").expect("valid");
    assert_eq!(
        (s.run.ramp_ns, s.run.warmup_ns),
        (5_000_000_000, 5_000_000_000)
    );
    let s = scenario::parse(&with("duration = \"20s\""), "t.toml").expect("valid");
    assert_eq!(s.run.ramp_ns, 2_000_000_000, "a tenth of a short run");
    let e = scenario::parse(
        &with("duration = \"20s\"\nramp = \"30s\"\nwarmup = \"1m\""),
        "t.toml",
    )
    .expect_err("longer than the run");
    let text = e.to_string();
    assert!(
        text.contains("run.ramp") && text.contains("run.warmup"),
        "{text}"
    );
    assert!(text.contains("at most the run's duration"), "{text}");
}
