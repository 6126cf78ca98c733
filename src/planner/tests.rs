//! The solver on a small scenario whose gateway is the bottleneck: one gateway core serves
//! about 16 frames a second, and the interop traffic needs several.

use super::*;
use crate::scenario::parse;

/// 400 users writing across providers only (every message crosses the gateway), at a 60 ms
/// gateway frame cost; `plan` is the `[plan]` table's body.
fn scenario(plan: &str) -> Scenario {
    let text = format!(
        r#"
[run]
duration = "20s"
drain = "20s"
[[provider]]
name = "g"
role = "gatekeeper"
users = 200
[[provider]]
name = "p"
role = "partner"
users = 200
[workload]
messages_per_user_hour = 180
cross_provider = 1.0
content = {{ text = 1.0 }}
[e2ee]
crypto = "modeled"
[capacity]
gateway = {{ cores = 1, per_message = "60ms", queue_max = 1000000 }}
[plan]
{plan}
"#
    );
    parse(&text, "plan-test.toml").unwrap_or_else(|e| panic!("{e}"))
}

const GATEWAY: &str = r#"solve = { "capacity.gateway.cores" = { min = 1, max = 64 } }
slo = { "interop.delivered_p99" = "2s", lost = 0 }
seeds = 2"#;

#[test]
fn the_answer_is_the_smallest_value_that_meets_the_slos() {
    let s = scenario(GATEWAY);
    let r = solve(&s, 2, &|_| {}).expect("solves");
    assert!(r.met, "{:#?}", r.notes);
    let cores = r.answer[0];
    assert!(cores > 1.0 && cores < 64.0, "{cores}");
    // Solving saw the answer pass and the value below it fail.
    let at = |c: f64| r.evaluations.iter().find(|e| e.values[0] == c);
    assert!(at(cores).expect("the answer was run").met);
    let below = at(cores - 1.0).expect("the value below was run");
    assert!(!below.met, "{below:#?}");
    // Galloping then bisecting: far fewer points than the 64 of the range.
    assert!(r.evaluations.len() <= 12, "{}", r.evaluations.len());
    assert_eq!(r.runs as usize, 2 * (r.evaluations.len() + r.check.len()));
    // The progress bar's estimate is of the right size: 64 = 2^6, so 13 points and the check's
    // 2, at 2 seeds.
    let estimate = estimated_runs(s.plan.as_ref().unwrap());
    assert_eq!(estimate, 2 * (13 + 2));
    assert!(r.runs <= estimate, "{} runs, estimated {estimate}", r.runs);
    // The check on fresh seeds: the answer holds and one core less does not.
    assert_eq!(r.check.len(), 2);
    assert!(r.check[0].met, "{:#?}", r.check[0]);
    assert!(!r.check[1].met, "{:#?}", r.check[1]);
    assert_ne!(r.check[0].seeds, at(cores).unwrap().seeds);
    let sentence = output::sentence(&r, s.plan.as_ref().unwrap());
    assert!(
        sentence.starts_with(&format!(
            "capacity.gateway.cores = {cores} meet all 3 SLOs with 95 % confidence"
        )),
        "{sentence}"
    );
    assert!(
        sentence.contains(&format!("capacity.gateway.cores = {} fails", cores - 1.0)),
        "{sentence}"
    );
    // plan.json's answer maps the key to its value.
    let json: serde_json::Value =
        serde_json::from_str(&output::plan_json(&r, s.plan.as_ref().unwrap(), "t")).unwrap();
    assert_eq!(
        json["answer"]["capacity.gateway.cores"],
        serde_json::json!(cores)
    );
    assert_eq!(json["met"], serde_json::json!(true));
}

#[test]
fn the_answer_does_not_depend_on_threads() {
    let s = scenario(GATEWAY);
    let one = solve(&s, 1, &|_| {}).expect("solves");
    let two = solve(&s, 3, &|_| {}).expect("solves");
    assert_eq!(one.answer, two.answer);
    let plan = s.plan.as_ref().unwrap();
    assert_eq!(
        output::plan_json(&one, plan, "t"),
        output::plan_json(&two, plan, "t")
    );
}

#[test]
fn a_range_whose_maximum_fails_is_not_met_and_says_so() {
    let s = scenario(
        r#"solve = { "capacity.gateway.cores" = { min = 1, max = 2 } }
slo = { "interop.delivered_p99" = "2s" }
seeds = 1"#,
    );
    let r = solve(&s, 2, &|_| {}).expect("solves");
    assert!(!r.met);
    assert_eq!(r.answer, vec![2.0]);
    assert!(r.notes[0].contains("the range's maximum"), "{:?}", r.notes);
    let sentence = output::sentence(&r, s.plan.as_ref().unwrap());
    assert!(sentence.starts_with("NOT MET"), "{sentence}");
}

#[test]
fn the_confidence_bound_widens_with_spread_and_shrinks_with_seeds() {
    let e = crate::scenario::Expectation {
        key: "lost".to_string(),
        bound: Bound::AtMost(10.0),
    };
    let runs = |xs: &[u64]| -> Vec<Figures> {
        xs.iter()
            .map(|&x| {
                let mut s = crate::metrics::summary::tests::summary();
                s.counters.lost = x;
                figures(&s, std::slice::from_ref(&e.key))
            })
            .collect()
    };
    // Mean 8, sd 2 over 3 seeds: t(0.95, 2) = 2.92, bound 8 + 2.92 * 2 / sqrt 3 = 11.4 > 10.
    let wide = slo_at(&e, &runs(&[6, 8, 10]), 0.95);
    assert!((wide.mean - 8.0).abs() < 1e-9);
    assert!((wide.confident - 11.372).abs() < 0.01, "{}", wide.confident);
    assert!(!wide.ok);
    // The same spread over 12 seeds: t(0.95, 11) = 1.80, bound 8 + 1.80 * 1.706 / sqrt 12 < 10.
    let many = slo_at(&e, &runs(&[6, 8, 10, 6, 8, 10, 6, 8, 10, 6, 8, 10]), 0.95);
    assert!(many.ok, "{}", many.confident);
    // One seed: the value itself.
    assert_eq!(slo_at(&e, &runs(&[9]), 0.95).confident, 9.0);
}

#[test]
fn a_path_that_delivered_nothing_fails_its_latency_slo_and_failed_is_always_held() {
    let mut s = crate::metrics::summary::tests::summary();
    assert_eq!(s.metric("interop.delivered_p99"), Some(11_300.0));
    s.paths.get_mut("interop").unwrap().latency = Default::default();
    assert_eq!(
        s.metric("interop.delivered_p99"),
        None,
        "not measured: fails"
    );
    assert_eq!(s.metric("native.delivered_p99"), Some(800.0));
    assert_eq!(s.metric("lost"), Some(0.0));
    let e = crate::scenario::Expectation {
        key: "interop.delivered_p99".to_string(),
        bound: Bound::AtMost(2e9),
    };
    assert!(!slo_at(&e, &[figures(&s, std::slice::from_ref(&e.key))], 0.95).ok);
    // The implicit `failed = 0`: a plan naming only a latency still checks it.
    let r = solve(&scenario(GATEWAY), 2, &|_| {}).expect("solves");
    let keys: Vec<&str> = r.evaluations[0]
        .slos
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(keys, ["interop.delivered_p99", "lost", "failed"]);
}

#[test]
fn a_sliced_rate_limit_answer_is_noted_as_erring_high() {
    let sliced = scenario(
        r#"solve = { "capacity.gateway.rate_limit_per_partner" = { min = 100, max = 100000 } }
slo = { "interop.delivered_p99" = "2s" }
slice = 10"#,
    );
    let plan = sliced.plan.as_ref().unwrap();
    let note = sliced_rate_limit_note(plan, &[5000.0]).expect("a note");
    assert!(note.contains("1/10 slice"), "{note}");
    assert!(note.contains("at 500/s per partner"), "{note}");
    // Whole, or no rate-limit knob: nothing to say.
    let whole = scenario(
        r#"solve = { "capacity.gateway.rate_limit_per_partner" = { min = 100, max = 100000 } }
slo = { "interop.delivered_p99" = "2s" }"#,
    );
    assert_eq!(
        sliced_rate_limit_note(whole.plan.as_ref().unwrap(), &[5000.0]),
        None
    );
    let cores = scenario(&format!("{GATEWAY}\nslice = 10"));
    assert_eq!(
        sliced_rate_limit_note(cores.plan.as_ref().unwrap(), &[5.0]),
        None
    );
}

#[test]
fn each_knob_says_how_finely_it_was_solved() {
    let s = scenario(
        r#"solve = { "capacity.gateway.cores" = { min = 10, max = 640 }, "capacity.gateway.rate_limit_per_partner" = { min = 100, max = 100000 } }
slo = { "interop.delivered_p99" = "2s" }
slice = 10"#,
    );
    let said = super::output::resolutions(s.plan.as_ref().unwrap());
    assert_eq!(
        said,
        [
            (
                "capacity.gateway.cores".to_string(),
                "multiples of 10 (the slice)".to_string()
            ),
            (
                "capacity.gateway.rate_limit_per_partner".to_string(),
                "two significant figures (steps of 1 to 10 %, about as fine as a few seeds tell apart)"
                    .to_string()
            ),
        ]
    );
}

#[test]
fn a_rate_limit_range_starts_on_the_grid_and_tops_out_at_its_maximum_as_written() {
    let s = scenario(
        r#"solve = { "capacity.gateway.rate_limit_per_partner" = { min = 1234, max = 125000 } }
slo = { "interop.delivered_p99" = "2s" }"#,
    );
    let plan = s.plan.as_ref().unwrap();
    let k = &plan.solve[0];
    assert_eq!(super::bottom(plan, k), 1300.0);
    assert_eq!(super::top(plan, k), 125_000.0);
}
