//! `plan` slices (issue 19): a slice runs 1/N of the users against 1/N of the capacity, so two
//! slices of one population, both thick enough, see the same latencies at the same
//! whole-system capacity.

use crate::root;
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
        let s = scenario_at(&base, &p, &[100_000.0]);
        let users: u32 = s.providers.iter().map(|p| p.users).sum();
        assert_eq!(users, 3_000_000 / slice);
        run_scenario(&s, "t").summary
    };
    // 1/10 and 1/20: 300 k and 150 k users, the partners 1,200 and more in each (a thinner
    // slice is noisy: see the plan's note).
    let (ten, hundred) = (at(10), at(20));
    for path in ["native", "interop"] {
        let (a, b) = (&ten.paths[path].latency, &hundred.paths[path].latency);
        assert!(
            a.samples > 3 * b.samples / 2,
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
                "{path} {what}: 1/10 {x:.1} ms, 1/20 {y:.1} ms ({:.1} %)",
                off * 100.0
            );
            assert!(
                off < 0.05,
                "{path} {what}: 1/10 {x} ms, 1/20 {y} ms ({:.1} %)",
                off * 100.0
            );
        }
    }
}
