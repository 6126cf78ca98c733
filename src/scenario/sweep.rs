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

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use super::errors::{did_you_mean, Ctx};
use super::model::*;
use super::values::*;

/// Bounds: a sweep is a batch of full runs, so these are generous but finite.
pub const REPEATS_MAX: u64 = 1000;
pub const VALUES_PER_KEY_MAX: usize = 1000;
pub const RUNS_MAX: u64 = 100_000;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// In file order; the last axis varies fastest.
    pub axes: Vec<SweepAxis>,
    /// Runs per grid point, each with its own seed.
    pub repeats: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepAxis {
    /// The key as written (after flattening nested tables).
    pub key: String,
    pub target: SweepTarget,
    pub values: Vec<SweepValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepValue {
    Number(f64),
    /// Nanoseconds.
    Duration(DurationNs),
}

impl SweepValue {
    /// The value as a number: durations in ms (what plots and CSV columns show).
    pub fn as_f64(self) -> f64 {
        match self {
            SweepValue::Number(x) => x,
            SweepValue::Duration(ns) => ns as f64 / 1e6,
        }
    }
    /// As written in a scenario: `40`, `0.02`, `"250ms"`.
    pub fn label(self) -> String {
        match self {
            // Display prints the shortest form that reads back exactly: 0.02, 160, 1e-5.
            SweepValue::Number(x) => format!("{x}"),
            SweepValue::Duration(ns) => crate::engine::time::format_duration_ns(ns),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Gateway,
    ChatServer,
    Adapter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyParam {
    Value,
    Min,
    Max,
    Mean,
    Stddev,
    Median,
    P99,
    Alpha,
}

/// What a sweep key sets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepTarget {
    MessagesPerUserHour,
    CrossProvider,
    GroupsShare,
    ContactsPerUser,
    ReplyProbability,
    ReplyDelay,
    ReadProbability,
    ProviderUsers(usize),
    ProviderOptIn(usize),
    LinkLoss(HopClass),
    LinkDuplicate(HopClass),
    LinkReorder(HopClass),
    LinkBandwidth(HopClass),
    LinkLatency(HopClass, LatencyParam),
    Cores(NodeKind),
    PerMessage(NodeKind),
    QueueMax(NodeKind),
    RateLimitPerPartner,
    OnlineShare,
    OnlineMean,
    RetryInitial,
    RetryMax,
}

/// The kind of value a target takes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Probability,
    Positive,
    Integer,
    Duration,
}

impl SweepTarget {
    fn kind(self) -> Kind {
        use SweepTarget::*;
        match self {
            CrossProvider | GroupsShare | ReplyProbability | ReadProbability | ProviderOptIn(_)
            | LinkLoss(_) | LinkDuplicate(_) | LinkReorder(_) | OnlineShare => Kind::Probability,
            MessagesPerUserHour | RateLimitPerPartner => Kind::Positive,
            LinkLatency(_, LatencyParam::Alpha) => Kind::Positive,
            ContactsPerUser | ProviderUsers(_) | LinkBandwidth(_) | Cores(_) | QueueMax(_) => {
                Kind::Integer
            }
            ReplyDelay | LinkLatency(..) | PerMessage(_) | OnlineMean | RetryInitial | RetryMax => {
                Kind::Duration
            }
        }
    }

    /// Whether the key takes whole numbers (users, cores, bytes per second).
    pub fn is_integer(self) -> bool {
        self.kind() == Kind::Integer
    }

    /// Whether the key sets the offered load (the x axis of capacity curves).
    pub fn is_load(self) -> bool {
        matches!(
            self,
            SweepTarget::MessagesPerUserHour | SweepTarget::ProviderUsers(_)
        )
    }
}

const NODES: [(&str, NodeKind); 3] = [
    ("gateway", NodeKind::Gateway),
    ("chat_server", NodeKind::ChatServer),
    ("adapter", NodeKind::Adapter),
];
const PARAMS: [(&str, LatencyParam); 8] = [
    ("value", LatencyParam::Value),
    ("min", LatencyParam::Min),
    ("max", LatencyParam::Max),
    ("mean", LatencyParam::Mean),
    ("stddev", LatencyParam::Stddev),
    ("median", LatencyParam::Median),
    ("p99", LatencyParam::P99),
    ("alpha", LatencyParam::Alpha),
];

/// Every key this scenario supports, for did-you-mean and the "expected one of" help.
fn known_keys(s: &Scenario) -> Vec<String> {
    let mut keys: Vec<String> = [
        "workload.messages_per_user_hour",
        "workload.cross_provider",
        "workload.groups.share",
        "workload.contacts_per_user",
        "workload.reply_probability",
        "workload.reply_delay",
        "workload.read_probability",
        "capacity.gateway.rate_limit_per_partner",
        "devices.online_share",
        "devices.online_mean",
        "devices.retry_initial",
        "devices.retry_max",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    for p in &s.providers {
        keys.push(format!("provider.{}.users", p.name));
        keys.push(format!("provider.{}.opt_in", p.name));
    }
    for h in HopClass::ALL {
        for k in ["loss", "duplicate", "reorder", "bandwidth"] {
            keys.push(format!("network.{}.{k}", h.key()));
        }
        for (name, param) in PARAMS {
            if latency_param(&s.network.link(h).latency, param).is_some() {
                keys.push(format!("network.{}.latency.{name}", h.key()));
            }
        }
    }
    for (n, _) in NODES {
        for k in ["cores", "per_message", "queue_max"] {
            keys.push(format!("capacity.{n}.{k}"));
        }
    }
    keys
}

/// The target of a key, or why it is not supported.
fn target(s: &Scenario, key: &str) -> Result<SweepTarget, String> {
    use SweepTarget::*;
    let parts: Vec<&str> = key.split('.').collect();
    let provider = |name: &str| -> Result<usize, String> {
        let index = name
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|i| i.parse::<usize>().ok());
        match index {
            Some(i) if i < s.providers.len() => Ok(i),
            Some(i) => Err(format!("there is no provider[{i}]")),
            None => s
                .providers
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| format!("no provider named \"{name}\"")),
        }
    };
    let hop = |name: &str| HopClass::ALL.into_iter().find(|h| h.key() == name);
    let node = |name: &str| NODES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
    let unknown = || Err(format!("unknown or unsupported sweep key '{key}'"));
    // provider[1].users splits as ["provider[1]", "users"].
    let parts: Vec<String> = match parts.first().and_then(|p| p.strip_prefix("provider[")) {
        Some(rest) => {
            let mut v = vec!["provider".to_string(), format!("[{rest}")];
            v.extend(parts[1..].iter().map(|p| p.to_string()));
            v
        }
        None => parts.iter().map(|p| p.to_string()).collect(),
    };
    let parts: Vec<&str> = parts.iter().map(|p| p.as_str()).collect();
    Ok(match parts.as_slice() {
        ["workload", "messages_per_user_hour"] => MessagesPerUserHour,
        ["workload", "cross_provider"] => CrossProvider,
        ["workload", "groups", "share"] => GroupsShare,
        ["workload", "contacts_per_user"] => ContactsPerUser,
        ["workload", "reply_probability"] => ReplyProbability,
        ["workload", "reply_delay"] => ReplyDelay,
        ["workload", "read_probability"] => ReadProbability,
        ["provider", p, "users"] => ProviderUsers(provider(p)?),
        ["provider", p, "opt_in"] => ProviderOptIn(provider(p)?),
        ["network", h, field @ ..] => {
            let Some(h) = hop(h) else {
                return Err(format!("no hop class named \"{h}\""));
            };
            match field {
                ["loss"] => LinkLoss(h),
                ["duplicate"] => LinkDuplicate(h),
                ["reorder"] => LinkReorder(h),
                ["bandwidth"] => LinkBandwidth(h),
                ["latency", param] => {
                    let Some((_, param)) = PARAMS.iter().find(|(n, _)| n == param) else {
                        return unknown();
                    };
                    if latency_param(&s.network.link(h).latency, *param).is_none() {
                        return Err(format!(
                            "the latency of network.{} has no parameter '{}' (it is {})",
                            h.key(),
                            parts[parts.len() - 1],
                            dist_name(&s.network.link(h).latency)
                        ));
                    }
                    LinkLatency(h, *param)
                }
                _ => return unknown(),
            }
        }
        ["capacity", "gateway", "rate_limit_per_partner"] => RateLimitPerPartner,
        ["capacity", n, field] => {
            let Some(n) = node(n) else {
                return unknown();
            };
            match *field {
                "cores" => Cores(n),
                "per_message" => PerMessage(n),
                "queue_max" => QueueMax(n),
                _ => return unknown(),
            }
        }
        ["devices", "online_share"] => OnlineShare,
        ["devices", "online_mean"] => OnlineMean,
        ["devices", "retry_initial"] => RetryInitial,
        ["devices", "retry_max"] => RetryMax,
        _ => return unknown(),
    })
}

fn dist_name(l: &Latency) -> &'static str {
    match l {
        Latency::Constant { .. } => "constant",
        Latency::Uniform { .. } => "uniform",
        Latency::Normal { .. } => "normal",
        Latency::Lognormal { .. } => "lognormal",
        Latency::Pareto { .. } => "pareto",
    }
}

/// The field of a latency distribution that `param` names, if it has one.
fn latency_param(l: &Latency, param: LatencyParam) -> Option<()> {
    use LatencyParam as P;
    let ok = matches!(
        (l, param),
        (Latency::Constant { .. }, P::Value)
            | (Latency::Uniform { .. }, P::Min | P::Max)
            | (Latency::Normal { .. }, P::Mean | P::Stddev)
            | (Latency::Lognormal { .. }, P::Median | P::P99)
            | (Latency::Pareto { .. }, P::Min | P::Alpha)
    );
    ok.then_some(())
}

/// Sets `target` to `value` on a validated scenario. The caller validates the result (see
/// [`check_points`]); values of the wrong kind were rejected when the sweep was read.
pub fn apply(s: &mut Scenario, target: SweepTarget, value: SweepValue) {
    use SweepTarget::*;
    let x = value.as_f64();
    let ns = match value {
        SweepValue::Duration(ns) => ns,
        SweepValue::Number(x) => x as u64,
    };
    let int = x.max(0.0) as u64;
    let int_u32 = int.min(u32::MAX as u64) as u32;
    match target {
        MessagesPerUserHour => s.workload.messages_per_user_hour = x,
        CrossProvider => s.workload.cross_provider = x,
        GroupsShare => s.workload.groups_share = x,
        ContactsPerUser => s.workload.contacts_per_user = int_u32,
        ReplyProbability => s.workload.reply_probability = x,
        ReplyDelay => s.workload.reply_delay_mean_ns = ns,
        ReadProbability => s.workload.read_probability = x,
        ProviderUsers(p) => s.providers[p].users = int_u32,
        ProviderOptIn(p) => s.providers[p].opt_in = x,
        LinkLoss(h) => s.network.links[h.index()].loss = x,
        LinkDuplicate(h) => s.network.links[h.index()].duplicate = x,
        LinkReorder(h) => s.network.links[h.index()].reorder = x,
        LinkBandwidth(h) => s.network.links[h.index()].bandwidth_bytes_per_s = Some(int),
        LinkLatency(h, param) => set_latency(&mut s.network.links[h.index()].latency, param, value),
        Cores(n) => node_mut(s, n).cores = int_u32,
        PerMessage(n) => node_mut(s, n).per_message_ns = ns,
        QueueMax(n) => node_mut(s, n).queue_max = int,
        RateLimitPerPartner => s.capacity.gateway.rate_limit_per_partner = Some(x),
        OnlineShare => s.devices.online_share = x,
        OnlineMean => s.devices.online_mean_ns = ns,
        RetryInitial => s.devices.retry_initial_ns = ns,
        RetryMax => s.devices.retry_max_ns = ns,
    }
}

fn node_mut(s: &mut Scenario, n: NodeKind) -> &mut NodeCapacity {
    match n {
        NodeKind::Gateway => &mut s.capacity.gateway,
        NodeKind::ChatServer => &mut s.capacity.chat_server,
        NodeKind::Adapter => &mut s.capacity.adapter,
    }
}

fn set_latency(l: &mut Latency, param: LatencyParam, value: SweepValue) {
    use LatencyParam as P;
    let ns = match value {
        SweepValue::Duration(ns) => ns,
        SweepValue::Number(x) => x as u64,
    };
    match (l, param) {
        (Latency::Constant { value_ns }, P::Value) => *value_ns = ns,
        (Latency::Uniform { min_ns, .. }, P::Min) => *min_ns = ns,
        (Latency::Uniform { max_ns, .. }, P::Max) => *max_ns = ns,
        (Latency::Normal { mean_ns, .. }, P::Mean) => *mean_ns = ns,
        (Latency::Normal { stddev_ns, .. }, P::Stddev) => *stddev_ns = ns,
        (Latency::Lognormal { median_ns, .. }, P::Median) => *median_ns = ns,
        (Latency::Lognormal { p99_ns, .. }, P::P99) => *p99_ns = ns,
        (Latency::Pareto { min_ns, .. }, P::Min) => *min_ns = ns,
        (Latency::Pareto { alpha, .. }, P::Alpha) => *alpha = value.as_f64(),
        _ => {}
    }
}

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
