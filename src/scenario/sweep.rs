//! `[sweep]`: a grid of values for scenario keys, and repeats with derived seeds, for capacity
//! curves. The keys are scenario key paths (`workload.messages_per_user_hour`,
//! `network.gateway_partner.loss`, `provider.birdychat.users`, `capacity.gateway.cores`, ...);
//! [`apply`] sets one on a validated scenario. Every point of the grid is checked here, by
//! applying it and validating the result, so that a sweep never fails half-way through.
//!
//! ```toml
//! [sweep]
//! grid = { "workload.messages_per_user_hour" = [10, 40, 160], "network.gateway_partner.loss" = [0.0, 0.02] }
//! repeats = 2
//! ```

use toml::de::{DeTable, DeValue};

use super::errors::{did_you_mean, Ctx};
use super::model::*;
pub use super::sweep_keys::apply;
use super::sweep_keys::{known_keys, target, Kind};
use super::values::*;

/// Bounds: a sweep is a batch of full runs, so these are generous but finite.
pub const REPEATS_MAX: u64 = 1000;
pub const VALUES_PER_KEY_MAX: usize = 1000;
pub const RUNS_MAX: u64 = 100_000;

/// Reads `[sweep]`; `s` is the scenario read so far (providers and network resolve the keys).
pub(crate) fn sweep(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
    s: &Scenario,
) -> Option<Sweep> {
    check_keys(ctx, t, "sweep", &["grid", "repeats"]);
    let repeats = field(ctx, t, "sweep", "repeats", 1, |c, v, p| {
        integer(c, v, p, 1, REPEATS_MAX).map(|n| n as u32)
    });
    let mut axes = Vec::new();
    if let Some(grid) = get(t, "grid") {
        if let Some(g) = table(ctx, grid, "sweep.grid") {
            let mut flat = Vec::new();
            flatten(g, "", &mut flat);
            flat.sort_by_key(|(_, key_span, _)| key_span.start);
            let known = known_keys(s);
            for (key, key_span, value) in flat {
                let path = format!("sweep.grid.\"{key}\"");
                if axes.iter().any(|a: &SweepAxis| a.key == key) {
                    let message = format!("sweep key '{key}' is given twice");
                    ctx.error(key_span, &path, message);
                    continue;
                }
                match target(s, &key) {
                    Ok(target) => {
                        if let Some(values) = axis_values(ctx, value, &path, target) {
                            axes.push(SweepAxis {
                                key,
                                target,
                                values,
                            });
                        }
                    }
                    Err(message) => {
                        let refs: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
                        let help = did_you_mean(&key, &refs)
                            .or_else(|| Some(format!("supported keys here: {}", refs.join(", "))));
                        ctx.problem(key_span, &path, message, help);
                    }
                }
            }
        }
    }
    if let Some(dupe) = duplicate_target(&axes) {
        ctx.error(
            span.clone(),
            "sweep.grid",
            format!("two keys set the same value ({dupe})"),
        );
        return None;
    }
    let runs = axes.iter().fold(repeats as u64, |n, a| {
        n.saturating_mul(a.values.len() as u64)
    });
    if runs > RUNS_MAX {
        let message = format!("the sweep has {runs} runs; at most {RUNS_MAX} are allowed");
        ctx.error(span, "sweep", message);
        return None;
    }
    Some(Sweep { axes, repeats })
}

fn duplicate_target(axes: &[SweepAxis]) -> Option<String> {
    for (i, a) in axes.iter().enumerate() {
        if let Some(b) = axes[i + 1..].iter().find(|b| b.target == a.target) {
            return Some(format!("'{}' and '{}'", a.key, b.key));
        }
    }
    None
}

type FlatKey<'a, 'i> = (String, std::ops::Range<usize>, &'a Value<'i>);

/// Nested tables (`[sweep.grid.workload]`, dotted keys) flattened to dotted key paths.
fn flatten<'a, 'i>(t: &'a DeTable<'i>, prefix: &str, out: &mut Vec<FlatKey<'a, 'i>>) {
    for (k, v) in t.iter() {
        let key = join(prefix, k.get_ref());
        match v.get_ref() {
            DeValue::Table(inner) => flatten(inner, &key, out),
            _ => out.push((key, k.span(), v)),
        }
    }
}

fn axis_values(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    target: SweepTarget,
) -> Option<Vec<SweepValue>> {
    let DeValue::Array(items) = value.get_ref() else {
        ctx.expected(value, path, "an array of values, like [10, 40, 160]");
        return None;
    };
    if items.is_empty() || items.len() > VALUES_PER_KEY_MAX {
        let what = format!("between 1 and {VALUES_PER_KEY_MAX} values");
        ctx.expected(value, path, &what);
        return None;
    }
    let mut values = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let v = match target.kind() {
            Kind::Probability => probability(ctx, item, &p).map(SweepValue::Number),
            Kind::Positive => positive_number(ctx, item, &p).map(SweepValue::Number),
            Kind::Integer => {
                integer(ctx, item, &p, 1, I64_MAX_U).map(|n| SweepValue::Number(n as f64))
            }
            Kind::Duration => duration(ctx, item, &p).map(SweepValue::Duration),
            Kind::Design => {
                let keys = Design::ALL.map(Design::key);
                choice(ctx, item, &p, &keys).map(|i| SweepValue::Design(Design::ALL[i]))
            }
        };
        match v {
            Some(v) => values.push(v),
            None => ok = false,
        }
    }
    ok.then_some(values)
}

const I64_MAX_U: u64 = i64::MAX as u64;

/// Applies every grid point to `s` and validates the result with the scenario rules, so that
/// combinations (a latency median above its p99, a partner with more users than allowed) are
/// reported before any run starts. `file` names the source in messages.
pub(crate) fn check_points(
    ctx: &mut Ctx,
    span: std::ops::Range<usize>,
    s: &Scenario,
    sweep: &Sweep,
) {
    let mut index = vec![0usize; sweep.axes.len()];
    let points: usize = sweep.axes.iter().map(|a| a.values.len()).product();
    for _ in 0..points {
        let mut point = s.clone();
        point.sweep = None;
        for (a, &i) in sweep.axes.iter().zip(&index) {
            apply(&mut point, a.target, a.values[i]);
        }
        if let Err(e) = super::parse(&super::to_toml(&point), "sweep point") {
            let labels: Vec<String> = sweep
                .axes
                .iter()
                .zip(&index)
                .map(|(a, &i)| format!("{} = {}", a.key, a.values[i].label()))
                .collect();
            let first = e
                .problems
                .first()
                .map_or(String::new(), |p| format!("{}: {}", p.key_path, p.message));
            let message = format!(
                "the sweep point {{ {} }} makes the scenario invalid: {first}",
                labels.join(", ")
            );
            ctx.error(span, "sweep.grid", message);
            return;
        }
        // Next point: the last axis varies fastest.
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < sweep.axes[d].values.len() {
                break;
            }
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, to_toml};

    const BASE: &str = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\n\
                        [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 5\n\n\
                        [network]\nclient_server = { latency = { dist = \"lognormal\", median = \"40ms\", p99 = \"300ms\" } }\n";

    fn with(extra: &str) -> Result<Scenario, crate::scenario::ScenarioErrors> {
        parse(&format!("{BASE}\n{extra}"), "t.toml")
    }

    fn problems(extra: &str) -> Vec<String> {
        match with(extra) {
            Ok(_) => panic!("should be rejected: {extra}"),
            Err(e) => e.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn grid_keys_resolve_in_file_order_and_round_trip() {
        let s = with(
            "[sweep]\nrepeats = 3\ngrid = { \"workload.messages_per_user_hour\" = [10, 40.5], \"provider.p.users\" = [5, 50], \"network.client_server.latency.median\" = [\"20ms\"], \"provider[0].opt_in\" = [0.5] }",
        )
        .expect("valid");
        let sw = s.sweep.as_ref().expect("sweep");
        assert_eq!(sw.repeats, 3);
        let targets: Vec<SweepTarget> = sw.axes.iter().map(|a| a.target).collect();
        assert_eq!(
            targets,
            [
                SweepTarget::MessagesPerUserHour,
                SweepTarget::ProviderUsers(1),
                SweepTarget::LinkLatency(HopClass::ClientServer, LatencyParam::Median),
                SweepTarget::ProviderOptIn(0),
            ]
        );
        assert_eq!(sw.axes[2].values, [SweepValue::Duration(20_000_000)]);
        let back = parse(&to_toml(&s), "back.toml").expect("to_toml parses");
        assert_eq!(back, s);
        assert_eq!(crate::scenario::hash(&back), crate::scenario::hash(&s));
    }

    #[test]
    fn nested_tables_are_the_same_keys() {
        let s = with("[sweep.grid.capacity.gateway]\ncores = [1, 2]\nper_message = [\"10us\"]")
            .expect("valid");
        let keys: Vec<&str> = s
            .sweep
            .as_ref()
            .expect("sweep")
            .axes
            .iter()
            .map(|a| a.key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["capacity.gateway.cores", "capacity.gateway.per_message"]
        );
    }

    #[test]
    fn without_sweep_the_hash_is_unchanged() {
        let s = with("").expect("valid");
        assert!(s.sweep.is_none());
        assert!(!serde_json::to_string(&s).expect("json").contains("sweep"));
    }

    #[test]
    fn apply_sets_the_value() {
        let mut s = with("").expect("valid");
        apply(
            &mut s,
            SweepTarget::Cores(NodeKind::Adapter),
            SweepValue::Number(7.0),
        );
        apply(
            &mut s,
            SweepTarget::LinkLoss(HopClass::GatewayPartner),
            SweepValue::Number(0.25),
        );
        apply(&mut s, SweepTarget::OnlineMean, SweepValue::Duration(5));
        assert_eq!(s.capacity.adapter.cores, 7);
        assert_eq!(s.network.links[HopClass::GatewayPartner.index()].loss, 0.25);
        assert_eq!(s.devices.online_mean_ns, 5);
    }

    #[test]
    fn bad_sweeps_are_reported_with_places() {
        let p =
            problems("[sweep]\ngrid = { \"workload.mesages_per_user_hour\" = [1] }\nrepeat = 2");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("t.toml:")
                && p[0].contains("did you mean 'workload.messages_per_user_hour'?"),
            "{p:?}"
        );
        assert!(p[1].contains("sweep.repeat: unknown key 'repeat'"), "{p:?}");
        let p = problems("[sweep]\ngrid = { \"network.client_server.latency.mean\" = [\"1ms\"] }");
        assert!(
            p[0].contains("has no parameter 'mean' (it is lognormal)"),
            "{p:?}"
        );
        let p = problems("[sweep]\ngrid = { \"run.seed\" = [1, 2] }");
        assert!(
            p[0].contains("unknown or unsupported sweep key 'run.seed'"),
            "{p:?}"
        );
        let p = problems("[sweep]\ngrid = { \"workload.cross_provider\" = [0.5, 1.5], \"capacity.gateway.cores\" = [] }");
        assert_eq!(p.len(), 2, "{p:?}");
        let p =
            problems("[sweep]\ngrid = { \"provider.p.users\" = [1], \"provider[1].users\" = [2] }");
        assert!(p[0].contains("two keys set the same value"), "{p:?}");
        let p = problems("[sweep]\ngrid = { \"network.client_server.latency.median\" = [\"1s\"] }");
        assert!(
            p[0].contains("makes the scenario invalid") && p[0].contains("median"),
            "{p:?}"
        );
    }
}
