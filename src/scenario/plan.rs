//! `[plan]`: the question a capacity planner asks, for `interop-sim plan`: the smallest
//! capacity that meets service levels with a stated confidence, at a given load.
//!
//! ```toml
//! [plan]
//! solve = { "capacity.gateway.cores" = { min = 1, max = 64 } }
//! slo = { "interop.delivered_p99" = "2s", lost = 0 }
//! load = { users = 2.0, rate = 3.0 }   # multipliers on the scenario's population and rate
//! seeds = 5
//! confidence = 0.95
//! ```
//!
//! `solve` names capacity knobs by the dotted keys of `[sweep]` (cores, queue bounds, the
//! gateway's rate limit per partner: more is more capacity), each with a range; `slo` takes any
//! `[expect]` key. The solver is in `crate::planner`.

use toml::de::DeTable;

use super::errors::Ctx;
use super::expect::expectations;
use super::model::*;
use super::sweep_keys::{known_keys, target};
use super::values::*;

/// Bounds: every point of a plan runs `seeds` full runs.
pub const SEEDS_MAX: u64 = 100;
/// The thinnest slice: one millionth of the population.
pub const SLICE_MAX: u64 = 1_000_000;
/// The largest multiplier `load` takes.
pub const LOAD_MAX: f64 = 1000.0;

/// Reads `[plan]`; `s` is the scenario read so far (providers resolve the keys).
pub(crate) fn plan(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
    s: &Scenario,
) -> Option<CapacityPlan> {
    let keys = ["solve", "slo", "load", "seeds", "confidence", "slice"];
    check_keys(ctx, t, "plan", &keys);
    let solve = required(ctx, t, span.clone(), "plan", "solve")
        .and_then(|v| table(ctx, v, "plan.solve"))
        .map(|t| knobs(ctx, t, s));
    let slo = required(ctx, t, span, "plan", "slo")
        .and_then(|v| table(ctx, v, "plan.slo"))
        .map(|t| expectations(ctx, t, "plan.slo"));
    let (load_users, load_rate) = match get(t, "load") {
        Some(v) => table(ctx, v, "plan.load").map_or((1.0, 1.0), |l| {
            check_keys(ctx, l, "plan.load", &["users", "rate"]);
            let mult = |c: &mut Ctx, v: &Value<'_>, p: &str| {
                number_in(
                    c,
                    v,
                    p,
                    1e-6,
                    LOAD_MAX,
                    "a multiplier above 0, at most 1000",
                )
            };
            (
                field(ctx, l, "plan.load", "users", 1.0, mult),
                field(ctx, l, "plan.load", "rate", 1.0, mult),
            )
        }),
        None => (1.0, 1.0),
    };
    let seeds = field(ctx, t, "plan", "seeds", 5, |c, v, p| {
        integer(c, v, p, 1, SEEDS_MAX).map(|n| n as u32)
    });
    let confidence = field(ctx, t, "plan", "confidence", 0.95, |c, v, p| {
        number_in(c, v, p, 0.5, 0.9999, "a confidence from 0.5 to 0.9999")
    });
    let slice = field(ctx, t, "plan", "slice", 1, |c, v, p| {
        integer(c, v, p, 1, SLICE_MAX).map(|n| n as u32)
    });
    let (solve, slo) = (solve?, slo?);
    for what in ["solve", "slo"] {
        let written = get(t, what).and_then(|v| match v.get_ref() {
            toml::de::DeValue::Table(t) => Some((v, t.is_empty())),
            _ => None,
        });
        if let Some((v, true)) = written {
            ctx.expected(v, &format!("plan.{what}"), "at least one entry");
        }
    }
    if solve.is_empty() || slo.is_empty() {
        return None;
    }
    Some(CapacityPlan {
        solve,
        slo,
        load_users,
        load_rate,
        seeds,
        confidence,
        slice,
    })
}

/// The knobs of `solve`, in file order: capacity keys, each with a `{ min, max }` range.
fn knobs(ctx: &mut Ctx, t: &DeTable<'_>, s: &Scenario) -> Vec<PlanKnob> {
    let mut out: Vec<(usize, PlanKnob)> = Vec::new();
    for (key, value) in t.iter() {
        let name = key.get_ref().to_string();
        let path = format!("plan.solve.\"{name}\"");
        let target = match target(s, &name) {
            Ok(t) if SweepTarget::is_capacity(t) => t,
            Ok(_) => {
                let message = format!("'{name}' is not a capacity knob: plan finds the smallest value that meets the service levels, so it solves for cores, queue bounds and the gateway's rate limit per partner (capacity.<node>.cores, capacity.<node>.queue_max, capacity.gateway.rate_limit_per_partner); sweep other keys with [sweep]");
                ctx.error(key.span(), &path, message);
                continue;
            }
            Err(message) => {
                let known = known_keys(s);
                let refs: Vec<&str> = known
                    .iter()
                    .map(String::as_str)
                    .filter(|k| target(s, k).is_ok_and(SweepTarget::is_capacity))
                    .collect();
                let help = super::errors::did_you_mean(&name, &refs)
                    .or_else(|| Some(format!("capacity keys: {}", refs.join(", "))));
                ctx.problem(key.span(), &path, message, help);
                continue;
            }
        };
        let Some(range) = table(ctx, value, &path) else {
            continue;
        };
        check_keys(ctx, range, &path, &["min", "max"]);
        let integer_knob = target.is_integer();
        let bound = |ctx: &mut Ctx, which: &str| -> Option<f64> {
            let v = required(ctx, range, value.span(), &path, which)?;
            let p = join(&path, which);
            if integer_knob {
                integer(ctx, v, &p, 1, 1_000_000_000).map(|n| n as f64)
            } else {
                number_in(ctx, v, &p, 1e-9, 1e12, "a number above 0")
            }
        };
        let (min, max) = (bound(ctx, "min"), bound(ctx, "max"));
        let (Some(min), Some(max)) = (min, max) else {
            continue;
        };
        if min > max {
            let message = format!("the range's min ({min}) is above its max ({max})");
            ctx.error(value.span(), &path, message);
            continue;
        }
        if out.iter().any(|(_, k)| k.target == target) {
            let message = format!("'{name}' sets the same value as a knob before it");
            ctx.error(key.span(), &path, message);
            continue;
        }
        let knob = PlanKnob {
            key: name,
            target,
            min,
            max,
        };
        out.push((key.span().start, knob));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter().map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse, to_toml, Bound};

    const BASE: &str = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\n\
                        [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 10\n";

    fn problems(plan: &str) -> Vec<String> {
        match parse(&format!("{BASE}\n[plan]\n{plan}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.key_path, p.message))
                .collect(),
        }
    }

    #[test]
    fn a_plan_reads_back_and_round_trips() {
        let text = format!(
            "{BASE}\n[plan]\nsolve = {{ \"capacity.gateway.cores\" = {{ min = 1, max = 64 }}, \"capacity.gateway.rate_limit_per_partner\" = {{ min = 100, max = 50000.5 }} }}\nslo = {{ \"interop.delivered_p99\" = \"2s\", lost = 0 }}\nload = {{ users = 2.0, rate = 3 }}\nseeds = 3\nconfidence = 0.9\n"
        );
        let s = parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        let p = s.plan.as_ref().expect("a plan");
        let keys: Vec<(&str, f64, f64)> = p
            .solve
            .iter()
            .map(|k| (k.key.as_str(), k.min, k.max))
            .collect();
        assert_eq!(
            keys,
            [
                ("capacity.gateway.cores", 1.0, 64.0),
                ("capacity.gateway.rate_limit_per_partner", 100.0, 50000.5)
            ]
        );
        assert_eq!(p.slo[0].key, "interop.delivered_p99");
        assert_eq!(p.slo[0].bound, Bound::AtMost(2e9));
        assert_eq!(
            (p.load_users, p.load_rate, p.seeds, p.confidence),
            (2.0, 3.0, 3, 0.9)
        );
        let again = parse(&to_toml(&s), "again.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.plan, s.plan);
        // Defaults, and the hash of a scenario without a plan is unchanged by the table.
        let d = parse(
            &format!("{BASE}\n[plan]\nsolve = {{ \"capacity.chat_server.cores\" = {{ min = 1, max = 8 }} }}\nslo = {{ lost = 0 }}\n"),
            "t.toml",
        )
        .expect("valid");
        let p = d.plan.as_ref().expect("a plan");
        assert_eq!(
            (p.load_users, p.load_rate, p.seeds, p.confidence),
            (1.0, 1.0, 5, 0.95)
        );
        let plain = parse(BASE, "t.toml").expect("valid");
        assert_ne!(crate::scenario::hash(&plain), crate::scenario::hash(&d));
        assert!(!to_toml(&plain).contains("[plan]"));
    }

    #[test]
    fn bad_plans_are_refused_with_the_place_and_a_hint() {
        let p = problems(
            "solve = { \"capacity.gateway.coers\" = { min = 1, max = 4 } }\nslo = { lost = 0 }",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("plan.solve.\"capacity.gateway.coers\""),
            "{p:?}"
        );
        let p = problems("solve = { \"workload.cross_provider\" = { min = 0.1, max = 0.5 } }\nslo = { lost = 0 }");
        assert!(p[0].contains("is not a capacity knob"), "{p:?}");
        let p = problems(
            "solve = { \"capacity.gateway.cores\" = { min = 8, max = 4 } }\nslo = { lost = 0 }",
        );
        assert!(p[0].contains("min (8) is above its max (4)"), "{p:?}");
        let p = problems(
            "solve = { \"capacity.gateway.cores\" = { min = 1, max = 4 } }\nslo = { lots = 0 }",
        );
        assert!(
            p[0].starts_with("plan.slo.lots: unknown expectation"),
            "{p:?}"
        );
        let p = problems("slo = { lost = 0 }");
        assert!(p[0].contains("solve"), "{p:?}");
        let p = problems("solve = { \"capacity.gateway.cores\" = { min = 1, max = 4 } }\nslo = { lost = 0 }\nseeds = 0");
        assert!(p[0].starts_with("plan.seeds"), "{p:?}");
        let p =
            problems("solve = { \"capacity.gateway.cores\" = { min = 1 } }\nslo = { lost = 0 }");
        assert!(p[0].contains("max"), "{p:?}");
        let p = problems("solve = {}\nslo = { lost = 0 }");
        assert!(p[0].contains("at least one entry"), "{p:?}");
    }
}
