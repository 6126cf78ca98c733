//! The walk over the plain sections of a scenario file (`[run]`, `[[provider]]`, `[network]`,
//! `[workload]`, `[capacity]`, `[e2ee]`, `[devices]`): known keys, value checks, defaults and the
//! cross-field checks that stay inside one section.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::errors::Ctx;
use super::model::*;
use super::values::*;
use crate::engine::time::format_duration_ns;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
/// Bound on `devices_per_user`: a user has a phone and at most four companion devices.
pub const DEVICES_PER_USER_MAX: u64 = 5;
const USERS_MAX: u64 = u32::MAX as u64;
const I64_MAX: u64 = i64::MAX as u64;
/// `[run] ramp` when absent (or a tenth of `duration` if shorter): a few seconds of connects.
pub const RAMP_DEFAULT_NS: u64 = 5 * S;

pub(crate) fn run(ctx: &mut Ctx, t: &DeTable<'_>, default_name: &str) -> RunSpec {
    let p = "run";
    check_keys(
        ctx,
        t,
        p,
        &[
            "name",
            "seed",
            "duration",
            "drain",
            "interval",
            "ramp",
            "warmup",
            "events_max",
        ],
    );
    let duration_ns = field(ctx, t, p, "duration", 60 * S, duration_positive);
    // Within the send window: a ramp or warm-up longer than it would leave nothing measured.
    let within_run = |c: &mut Ctx, v: &Value<'_>, path: &str| {
        let d = duration(c, v, path)?;
        if d > duration_ns {
            c.expected(v, path, "a duration at most the run's duration");
            return None;
        }
        Some(d)
    };
    let ramp_ns = field(
        ctx,
        t,
        p,
        "ramp",
        RAMP_DEFAULT_NS.min(duration_ns / 10),
        within_run,
    );
    RunSpec {
        name: field(ctx, t, p, "name", default_name.to_string(), run_name),
        seed: field(ctx, t, p, "seed", 1, |c, v, p| integer(c, v, p, 0, I64_MAX)),
        duration_ns,
        drain_ns: field(ctx, t, p, "drain", 120 * S, duration),
        interval_ns: field(ctx, t, p, "interval", S, timer_duration),
        ramp_ns,
        warmup_ns: field(ctx, t, p, "warmup", ramp_ns, within_run),
        events_max: field(ctx, t, p, "events_max", 2_000_000_000, |c, v, p| {
            integer(c, v, p, 1, I64_MAX)
        }),
    }
}

/// A run name becomes a directory under `results/`, so it is kept to a safe alphabet.
fn run_name(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<String> {
    let name = string(ctx, value, path)?;
    if !is_safe_name(name) {
        ctx.expected(
            value,
            path,
            "a name of letters, digits, '_', '-' or '.', not starting with '.'",
        );
        return None;
    }
    Some(name.to_string())
}

pub(crate) fn is_safe_name(name: &str) -> bool {
    const NAME_LEN_MAX: usize = 128;
    !name.is_empty()
        && name.len() <= NAME_LEN_MAX
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// A safe run name from a file stem ("my scenario" -> "my-scenario").
pub(crate) fn name_from_stem(stem: &str) -> String {
    let name: String = stem
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches('.').to_string();
    if name.is_empty() {
        "scenario".to_string()
    } else {
        name
    }
}

/// The providers, gatekeeper first, and every provider name written in the file (valid or not,
/// so that a reference to a provider with its own problems is not reported twice).
pub(crate) fn providers(ctx: &mut Ctx, value: Option<&Value<'_>>) -> (Vec<Provider>, Vec<String>) {
    let Some(value) = value else {
        let message =
            "no [[provider]] tables: a scenario needs one gatekeeper and at least one partner";
        ctx.error(0..0, "provider", message.to_string());
        return (Vec::new(), Vec::new());
    };
    let DeValue::Array(items) = value.get_ref() else {
        ctx.expected(value, "provider", "an array of tables ([[provider]])");
        return (Vec::new(), Vec::new());
    };
    let mut list: Vec<(Provider, Range<usize>)> = Vec::new();
    let mut names_written = Vec::new();
    let mut roles_written = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("provider[{i}]");
        let Some(t) = table(ctx, item, &path) else {
            continue;
        };
        if let Some(DeValue::String(name)) = get(t, "name").map(|v| v.get_ref()) {
            names_written.push(name.to_string());
        }
        if let Some(role) = get(t, "role") {
            if let DeValue::String(written) = role.get_ref() {
                let name = get(t, "name").map(|v| describe(v.get_ref()));
                let at = RoleAt {
                    role: written.to_string(),
                    name,
                    path: join(&path, "role"),
                    span: role.span(),
                };
                roles_written.push(at);
            }
        }
        let name_span = get(t, "name").map_or(item.span(), |v| v.span());
        if let Some(p) = provider(ctx, t, item.span(), &path) {
            if let Some((_, first)) = list.iter().find(|(q, _)| q.name == p.name) {
                let (line, _) = ctx.line_col(first.start);
                let message = format!(
                    "duplicate provider name '{}' (first defined on line {line})",
                    p.name
                );
                ctx.error(name_span.clone(), &join(&path, "name"), message);
            }
            list.push((p, name_span));
        }
    }
    check_roles(ctx, value.span(), &roles_written);
    let (gatekeepers, partners): (Vec<_>, Vec<_>) = list
        .into_iter()
        .partition(|(p, _)| p.role == Role::Gatekeeper);
    (
        gatekeepers
            .into_iter()
            .chain(partners)
            .map(|(p, _)| p)
            .collect(),
        names_written,
    )
}

/// Role counts use the roles as written, so that a provider with another problem (a bad user
/// count) does not also make the file look as if it lacked a gatekeeper.
/// A `role = ..` as written, valid or not.
struct RoleAt {
    role: String,
    name: Option<String>,
    path: String,
    span: Range<usize>,
}

/// Role counts use the roles as written, so that a provider with another problem (a bad user
/// count) does not also make the file look as if it lacked a gatekeeper.
fn check_roles(ctx: &mut Ctx, span: Range<usize>, roles: &[RoleAt]) {
    let gatekeepers: Vec<&RoleAt> = roles.iter().filter(|r| r.role == "gatekeeper").collect();
    for r in gatekeepers.iter().skip(1) {
        let name = r.name.as_deref().unwrap_or("without a name");
        let first = gatekeepers[0].name.as_deref().unwrap_or("without a name");
        let message = format!(
            "a second gatekeeper {name} (the first is {first}): a scenario has exactly one"
        );
        ctx.error(r.span.clone(), &r.path, message);
    }
    if gatekeepers.is_empty() {
        ctx.error(
            span.clone(),
            "provider",
            "no provider has role = \"gatekeeper\": exactly one must".to_string(),
        );
    }
    if !roles.iter().any(|r| r.role == "partner") {
        ctx.error(
            span,
            "provider",
            "no provider has role = \"partner\": at least one must".to_string(),
        );
    }
}

fn provider(ctx: &mut Ctx, t: &DeTable<'_>, span: Range<usize>, path: &str) -> Option<Provider> {
    check_keys(
        ctx,
        t,
        path,
        &[
            "name",
            "role",
            "users",
            "devices_per_user",
            "opt_in",
            "separate_inbox",
            "adapter",
        ],
    );
    let name = required(ctx, t, span.clone(), path, "name")
        .and_then(|v| provider_name(ctx, v, &join(path, "name")));
    let role = required(ctx, t, span.clone(), path, "role")
        .and_then(|v| choice(ctx, v, &join(path, "role"), &["gatekeeper", "partner"]));
    let users = required(ctx, t, span, path, "users")
        .and_then(|v| integer(ctx, v, &join(path, "users"), 1, USERS_MAX));
    let (devices_min, devices_max) =
        field(ctx, t, path, "devices_per_user", (1, 1), devices_per_user);
    let opt_in = field(ctx, t, path, "opt_in", 1.0, probability);
    let separate_inbox =
        get(t, "separate_inbox").and_then(|v| probability(ctx, v, &join(path, "separate_inbox")));
    let adapter = field(ctx, t, path, "adapter", 0, |c, v, p| {
        choice(c, v, p, &["proxied", "direct"])
    });
    Some(Provider {
        name: name?,
        role: [Role::Gatekeeper, Role::Partner][role?],
        users: u32::try_from(users?).ok()?,
        devices_min,
        devices_max,
        opt_in,
        separate_inbox,
        adapter: [AdapterMode::Proxied, AdapterMode::Direct][adapter],
    })
}

/// Provider names are used as fault targets and in `<provider>-clients`, so they are kept simple.
fn provider_name(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<String> {
    let name = string(ctx, value, path)?;
    if !is_safe_name(name) || name == "gateway" || name.ends_with("-clients") {
        let what = "a name of letters, digits, '_', '-' or '.' (not \"gateway\", not ending in \"-clients\")";
        ctx.expected(value, path, what);
        return None;
    }
    Some(name.to_string())
}

fn devices_per_user(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<(u8, u8)> {
    let read = |ctx: &mut Ctx, v: &Value<'_>, p: &str| {
        integer(ctx, v, p, 1, DEVICES_PER_USER_MAX).and_then(|n| u8::try_from(n).ok())
    };
    match value.get_ref() {
        DeValue::Integer(_) => read(ctx, value, path).map(|n| (n, n)),
        DeValue::Table(t) => {
            check_keys(ctx, t, path, &["min", "max"]);
            let min = required(ctx, t, value.span(), path, "min")
                .and_then(|v| read(ctx, v, &join(path, "min")));
            let max = required(ctx, t, value.span(), path, "max")
                .and_then(|v| read(ctx, v, &join(path, "max")));
            let (min, max) = (min?, max?);
            if min > max {
                ctx.error(
                    value.span(),
                    path,
                    format!("expected min <= max, found min = {min}, max = {max}"),
                );
                return None;
            }
            Some((min, max))
        }
        _ => {
            ctx.expected(value, path, "an integer or a table { min = .., max = .. }");
            None
        }
    }
}

pub(crate) fn default_link(hop: HopClass) -> LinkSpec {
    let latency = match hop {
        HopClass::ClientServer => Latency::Lognormal {
            median_ns: 60 * MS,
            p99_ns: 400 * MS,
        },
        HopClass::ServerGateway => Latency::Normal {
            mean_ns: 8 * MS,
            stddev_ns: 2 * MS,
        },
        HopClass::GatewayPartner => Latency::Constant { value_ns: 25 * MS },
        HopClass::AdapterServer => Latency::Constant { value_ns: 5 * MS },
        HopClass::ProviderProvider => Latency::Constant { value_ns: 25 * MS },
    };
    LinkSpec {
        latency,
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay_ns: 20 * MS,
        bandwidth_bytes_per_s: None,
        queue_max_bytes: 64 << 20,
        latency_hold_ns: 1_000 * MS,
    }
}

pub(crate) fn network(ctx: &mut Ctx, t: Option<&DeTable<'_>>, design: Design) -> Network {
    let mut links = HopClass::ALL.map(default_link);
    let mut provider_provider = None;
    if let Some(t) = t {
        let keys = HopClass::EVERY.map(HopClass::key);
        check_keys(ctx, t, "network", &keys);
        for hop in HopClass::EVERY {
            let path = join("network", hop.key());
            let Some(v) = get(t, hop.key()) else { continue };
            let Some(link_table) = table(ctx, v, &path) else {
                continue;
            };
            let spec = link(ctx, link_table, &path, default_link(hop));
            match hop {
                HopClass::ProviderProvider => provider_provider = Some(spec),
                _ => links[hop.index()] = spec,
            }
        }
        if design == Design::Hub {
            if let Some((key, _)) = t.iter().find(|(k, _)| k.get_ref() == "provider_provider") {
                ctx.problem(
                    key.span(),
                    "network.provider_provider",
                    "a provider_provider link exists only under the MIMI design; this scenario's design is \"hub\" (the default), where partners reach the gatekeeper through its gateway".into(),
                    Some("did you mean to run the MIMI design ([topology] design = \"mimi\", or --design mimi)? Else remove this link".into()),
                );
            }
        }
    }
    // Without a link of its own, MIMI's is the gateway-partner link's, read when the run
    // starts (`Network::link`), so that a sweep of that link reaches it too.
    Network {
        links,
        provider_provider,
    }
}

/// `[topology]`: `design`, "hub" (the default) or "mimi".
pub(crate) fn topology(ctx: &mut Ctx, t: Option<&DeTable<'_>>) -> Topology {
    let Some(t) = t else {
        return Topology::default();
    };
    check_keys(ctx, t, "topology", &["design"]);
    let keys = Design::ALL.map(Design::key);
    let design = get(t, "design")
        .and_then(|v| choice(ctx, v, "topology.design", &keys))
        .map_or(Design::Hub, |i| Design::ALL[i]);
    Topology { design }
}

fn link(ctx: &mut Ctx, t: &DeTable<'_>, p: &str, d: LinkSpec) -> LinkSpec {
    let keys = [
        "latency",
        "loss",
        "duplicate",
        "reorder",
        "reorder_delay",
        "bandwidth",
        "queue_max_bytes",
        "latency_hold",
    ];
    check_keys(ctx, t, p, &keys);
    LinkSpec {
        latency: field(ctx, t, p, "latency", d.latency, latency),
        loss: field(ctx, t, p, "loss", d.loss, probability),
        duplicate: field(ctx, t, p, "duplicate", d.duplicate, probability),
        reorder: field(ctx, t, p, "reorder", d.reorder, probability),
        reorder_delay_ns: field(ctx, t, p, "reorder_delay", d.reorder_delay_ns, duration),
        bandwidth_bytes_per_s: field(
            ctx,
            t,
            p,
            "bandwidth",
            d.bandwidth_bytes_per_s,
            |c, v, p| integer(c, v, p, 1, I64_MAX).map(Some),
        ),
        queue_max_bytes: field(
            ctx,
            t,
            p,
            "queue_max_bytes",
            d.queue_max_bytes,
            |c, v, p| integer(c, v, p, 1, I64_MAX),
        ),
        latency_hold_ns: field(ctx, t, p, "latency_hold", d.latency_hold_ns, duration),
    }
}

const DISTS: [(&str, [&str; 2]); 5] = [
    ("constant", ["value", ""]),
    ("uniform", ["min", "max"]),
    ("normal", ["mean", "stddev"]),
    ("lognormal", ["median", "p99"]),
    ("pareto", ["min", "alpha"]),
];

/// Every key a latency table may have, whatever its `dist`.
const LATENCY_KEYS: [&str; 9] = [
    "dist", "value", "min", "max", "mean", "stddev", "median", "p99", "alpha",
];

fn latency(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<Latency> {
    let t = table(ctx, value, path)?;
    #[cfg(test)]
    super::values::accepted::record(path, &LATENCY_KEYS);
    let names = DISTS.map(|(name, _)| name);
    let dist_path = join(path, "dist");
    let dist = required(ctx, t, value.span(), path, "dist")
        .and_then(|v| choice(ctx, v, &dist_path, &names));
    let Some(dist) = dist else {
        check_keys(ctx, t, path, &LATENCY_KEYS);
        return None;
    };
    let (name, params) = DISTS[dist];
    let mut known = vec!["dist"];
    known.extend(params.iter().filter(|k| !k.is_empty()));
    for (key, _) in t.iter() {
        let key: &str = key.get_ref();
        if !known.contains(&key) {
            let message = format!(
                "key '{key}' does not belong to dist \"{name}\" (its keys: {})",
                known[1..].join(", ")
            );
            let span = t.get_key_value(key).map_or(value.span(), |(k, _)| k.span());
            ctx.error(span, &join(path, key), message);
        }
    }
    let span = value.span();
    let dur = |ctx: &mut Ctx, key: &str| {
        required(ctx, t, span.clone(), path, key).and_then(|v| duration(ctx, v, &join(path, key)))
    };
    let latency = match name {
        "constant" => Latency::Constant {
            value_ns: dur(ctx, "value")?,
        },
        "uniform" => {
            let (min, max) = (dur(ctx, "min"), dur(ctx, "max"));
            Latency::Uniform {
                min_ns: min?,
                max_ns: max?,
            }
        }
        "normal" => {
            let (mean, stddev) = (dur(ctx, "mean"), dur(ctx, "stddev"));
            Latency::Normal {
                mean_ns: mean?,
                stddev_ns: stddev?,
            }
        }
        "lognormal" => {
            let (median, p99) = (dur(ctx, "median"), dur(ctx, "p99"));
            Latency::Lognormal {
                median_ns: median?,
                p99_ns: p99?,
            }
        }
        _ => {
            let min = dur(ctx, "min");
            let alpha_path = join(path, "alpha");
            let alpha = required(ctx, t, span.clone(), path, "alpha")
                .and_then(|v| positive_number(ctx, v, &alpha_path));
            Latency::Pareto {
                min_ns: min?,
                alpha: alpha?,
            }
        }
    };
    check_latency(ctx, value, path, latency)
}

fn check_latency(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    latency: Latency,
) -> Option<Latency> {
    let show = format_duration_ns;
    let problem = match latency {
        Latency::Uniform { min_ns, max_ns } if min_ns > max_ns => Some(format!(
            "expected min <= max, found min = {}, max = {}",
            show(min_ns),
            show(max_ns)
        )),
        Latency::Lognormal { median_ns, p99_ns } if p99_ns <= median_ns || median_ns == 0 => {
            Some(format!(
                "expected 0 < median < p99, found median = {}, p99 = {}",
                show(median_ns),
                show(p99_ns)
            ))
        }
        Latency::Pareto { min_ns: 0, .. } => {
            Some("expected min > 0 (the scale of a pareto), found 0s".to_string())
        }
        _ => None,
    };
    match problem {
        Some(message) => {
            ctx.error(value.span(), path, message);
            None
        }
        None => Some(latency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_file_stems_are_safe() {
        assert_eq!(name_from_stem("partner-outage"), "partner-outage");
        assert_eq!(name_from_stem("my scenario/x"), "my-scenario-x");
        assert_eq!(name_from_stem("..hidden"), "hidden");
        assert_eq!(name_from_stem(""), "scenario");
        assert!(is_safe_name(&name_from_stem("ünïcode ☃")));
        assert!(!is_safe_name("../etc"));
        assert!(!is_safe_name(""));
    }

    #[test]
    fn default_links_follow_the_contract() {
        let cs = default_link(HopClass::ClientServer);
        assert_eq!(
            cs.latency,
            Latency::Lognormal {
                median_ns: 60 * MS,
                p99_ns: 400 * MS
            }
        );
        assert_eq!(cs.queue_max_bytes, 67_108_864);
        assert_eq!(cs.reorder_delay_ns, 20 * MS);
    }
}
