//! `plan` slices (issue 19): a slice runs 1/N of the users against 1/N of the capacity, so two
//! slices of one population, both thick enough, see the same latencies at the same
//! whole-system capacity.

use crate::{root, scratch};
use interop_sim::planner::scenario_at;
use interop_sim::scenario;
use interop_sim::sim::run_scenario;

#[test]
fn two_thick_slices_of_one_population_see_the_same_latencies() {
    let base = scenario::load(&root().join("tests/data/scenarios/plan-slices.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = base.plan.clone().expect("a plan");
    // A rate limit well above the traffic: latencies are the network's and the queues'.
    let at = |slice: u32| {
        let mut p = plan.clone();
        p.slice = slice;
        let s = scenario_at(&base, &p, &[10_000_000.0]);
        let users: u32 = s.providers.iter().map(|p| p.users).sum();
        assert_eq!(users, 30_000_000 / slice);
        run_scenario(&s, "t").summary
    };
    // 1/100 and 1/1000: 300 k and 30 k users, the partners 4,000 and more in each (a thinner
    // slice is noisy: see the plan's note).
    let (hundred, thousand) = (at(100), at(1000));
    for path in ["native", "interop"] {
        let (a, b) = (&hundred.paths[path].latency, &thousand.paths[path].latency);
        assert!(
            a.samples > 8 * b.samples,
            "{path}: {} vs {}",
            a.samples,
            b.samples
        );
        for (what, x, y) in [
            ("p50", a.delivered_p50, b.delivered_p50),
            ("p99", a.delivered_p99, b.delivered_p99),
        ] {
            let off = (x - y).abs() / x;
            eprintln!(
                "{path} {what}: 1/100 {x:.1} ms, 1/1000 {y:.1} ms ({:.1} %)",
                off * 100.0
            );
            assert!(
                off < 0.05,
                "{path} {what}: 1/100 {x} ms, 1/1000 {y} ms ({:.1} %)",
                off * 100.0
            );
        }
    }
}

/// `plan` end to end: the answer in plan.json, and plan.html with each knob's curve (the SLO
/// line, the answer marked) embedded and written beside it for slides.
#[test]
fn plan_writes_the_answer_and_a_curve_per_knob() {
    let out = scratch("plan-gateway");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_interop-sim"))
        .args(["plan", "scenarios/plan-gateway.toml", "--out"])
        .arg(&out)
        .current_dir(root())
        .output()
        .expect("spawn interop-sim");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).expect("plan.json"))
            .expect("JSON");
    assert_eq!(json["met"], true);
    let answer = json["answer"].as_object().expect("an answer object");
    assert_eq!(answer.len(), 2, "{answer:?}");
    let html = std::fs::read_to_string(out.join("plan.html")).expect("plan.html");
    for (i, key) in ["capacity.gateway.cores", "capacity.chat_server.cores"]
        .iter()
        .enumerate()
    {
        assert!(answer[*key].as_f64().is_some_and(|v| v >= 1.0), "{key}");
        for ext in ["png", "svg"] {
            let f = out.join(format!("plots/plan_knob_{}.{ext}", i + 1));
            assert!(std::fs::metadata(&f).is_ok_and(|m| m.len() > 1000), "{f:?}");
        }
        assert!(html.contains(&format!("each value of {key} the solver ran")));
    }
    assert_eq!(html.matches("data:image/png;base64,").count(), 2);
    let svg = std::fs::read_to_string(out.join("plots/plan_knob_1.svg")).expect("SVG");
    assert!(svg.contains("the SLO (100 %)") && svg.contains("the answer (dashed)"));
}
