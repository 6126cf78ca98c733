//! The keys a `[sweep]` grid may set: their names (scenario key paths), the kind of value each
//! takes, and [`apply`], which sets one on a validated scenario.

use super::model::*;

/// The kind of value a target takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Probability,
    Positive,
    Integer,
    Duration,
    Design,
}

impl SweepTarget {
    pub(crate) fn kind(self) -> Kind {
        use SweepTarget::*;
        match self {
            CrossProvider
            | GroupsShare
            | GroupsLeave
            | ReplyProbability
            | ReadProbability
            | ProviderOptIn(_)
            | ProviderSeparateInbox(_)
            | LinkLoss(_)
            | LinkDuplicate(_)
            | LinkReorder(_)
            | OnlineShare => Kind::Probability,
            MessagesPerUserHour | RateLimitPerPartner => Kind::Positive,
            LinkLatency(_, LatencyParam::Alpha) => Kind::Positive,
            ContactsPerUser | GroupsSize | ProviderUsers(_) | LinkBandwidth(_) | Cores(_)
            | QueueMax(_) => Kind::Integer,
            Design => Kind::Design,
            ReplyDelay | SeparateInboxDelay | LinkLatency(..) | PerMessage(_) | OnlineMean
            | RetryInitial | RetryMax => Kind::Duration,
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

    /// A capacity knob: a node's cores or queue bound, the gateway's rate limit.
    pub fn is_capacity(self) -> bool {
        matches!(
            self,
            SweepTarget::Cores(_) | SweepTarget::QueueMax(_) | SweepTarget::RateLimitPerPartner
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
pub(crate) fn known_keys(s: &Scenario) -> Vec<String> {
    let mut keys: Vec<String> = [
        "workload.messages_per_user_hour",
        "workload.cross_provider",
        "workload.groups.share",
        "workload.groups.size",
        "workload.groups.leave",
        "topology.design",
        "workload.contacts_per_user",
        "workload.reply_probability",
        "workload.reply_delay",
        "workload.read_probability",
        "workload.separate_inbox_delay",
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
        keys.push(format!("provider.{}.separate_inbox", p.name));
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
pub(crate) fn target(s: &Scenario, key: &str) -> Result<SweepTarget, String> {
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
        ["workload", "groups", "size"] => GroupsSize,
        ["workload", "groups", "leave"] => GroupsLeave,
        ["topology", "design"] => Design,
        ["workload", "contacts_per_user"] => ContactsPerUser,
        ["workload", "reply_probability"] => ReplyProbability,
        ["workload", "reply_delay"] => ReplyDelay,
        ["workload", "read_probability"] => ReadProbability,
        ["workload", "separate_inbox_delay"] => SeparateInboxDelay,
        ["provider", p, "users"] => ProviderUsers(provider(p)?),
        ["provider", p, "opt_in"] => ProviderOptIn(provider(p)?),
        ["provider", p, "separate_inbox"] => ProviderSeparateInbox(provider(p)?),
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
        SweepValue::Design(_) => 0,
    };
    let int = x.max(0.0) as u64;
    let int_u32 = int.min(u32::MAX as u64) as u32;
    match target {
        MessagesPerUserHour => s.workload.messages_per_user_hour = x,
        CrossProvider => s.workload.cross_provider = x,
        GroupsShare => s.workload.groups_share = x,
        GroupsSize => {
            s.workload.group_size_min = int_u32;
            s.workload.group_size_max = int_u32;
        }
        GroupsLeave => s.workload.group_leave = x,
        Design => {
            if let SweepValue::Design(d) = value {
                s.set_design(d);
            }
        }
        ContactsPerUser => s.workload.contacts_per_user = int_u32,
        ReplyProbability => s.workload.reply_probability = x,
        ReplyDelay => s.workload.reply_delay_mean_ns = ns,
        ReadProbability => s.workload.read_probability = x,
        SeparateInboxDelay => s.workload.separate_inbox_delay_ns = ns,
        ProviderUsers(p) => s.providers[p].users = int_u32,
        ProviderOptIn(p) => s.providers[p].opt_in = x,
        ProviderSeparateInbox(p) => s.providers[p].separate_inbox = Some(x),
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
        SweepValue::Design(_) => return,
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
