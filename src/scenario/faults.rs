//! The walk over `[[fault]]` and `[expect]`: the parts of a scenario that refer to other parts
//! (provider names, the run's window), so they are read after the providers and `[run]`.

use toml::de::{DeTable, DeValue};

use super::errors::{did_you_mean, Ctx};
use super::model::*;
use super::values::*;
use crate::engine::time::format_duration_ns;

/// The kinds of fault and their own keys, besides `at`, `for` and `kind`.
pub(crate) const FAULT_KINDS: [(&str, &[&str]); 14] = [
    ("partition", &["between", "one_way"]),
    ("crash", &["node", "durable"]),
    ("slow", &["node", "factor"]),
    ("loss", &["link", "rate"]),
    ("duplicate", &["link", "rate"]),
    ("reorder", &["link", "rate"]),
    ("tamper", &["link", "rate"]),
    ("replay", &["link", "rate"]),
    ("identity_reset", &["provider", "users"]),
    ("toggle", &["provider", "users"]),
    ("surge", &["factor"]),
    ("clock_skew", &["node", "offset", "behind"]),
    ("push_loss", &["provider", "rate"]),
    ("prekey_drain", &["provider", "users", "rate"]),
];
const FAULT_COMMON: [&str; 3] = ["at", "for", "kind"];

/// What faults may refer to: the resolved providers and every name written in the file (a
/// provider with its own problems is not resolved, but naming it is not a second problem).
/// Bound on `[[fault]]` tables in one scenario.
pub const FAULTS_MAX: usize = 10_000;
/// Bound on a `slow` fault's factor (as on a `surge`'s).
pub const SLOW_FACTOR_MAX: f64 = 1000.0;

pub(crate) struct Refs<'a> {
    pub providers: &'a [Provider],
    pub names_written: &'a [String],
    /// `None` when `[run]` has problems of its own: windows are then not checked against
    /// defaults the user did not mean.
    pub run: Option<&'a RunSpec>,
    /// Which hop classes a link fault may name (`provider_provider` under MIMI only).
    pub design: Design,
}

pub(crate) fn faults(ctx: &mut Ctx, value: Option<&Value<'_>>, refs: &Refs<'_>) -> Vec<Fault> {
    let Some(value) = value else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        ctx.expected(value, "fault", "an array of tables ([[fault]])");
        return Vec::new();
    };
    if items.len() > FAULTS_MAX {
        // Checked before the walk: each fault costs validation, events and memory, and a
        // generated file with 150,000 of them is a mistake, not a test plan.
        let message = format!(
            "{} [[fault]] tables, more than {FAULTS_MAX}: each one is validated, scheduled and \
             tracked for the whole run; merge faults with longer windows or use [swarm]",
            items.len()
        );
        ctx.error(
            items[FAULTS_MAX].span(),
            &format!("fault[{FAULTS_MAX}]"),
            message,
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("fault[{i}]");
        let Some(t) = table(ctx, item, &path) else {
            continue;
        };
        if let Some(f) = fault(ctx, t, item, &path, refs) {
            out.push(f);
        }
    }
    out
}

fn fault(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    item: &Value<'_>,
    path: &str,
    refs: &Refs<'_>,
) -> Option<Fault> {
    let names = FAULT_KINDS.map(|(name, _)| name);
    let kind_path = join(path, "kind");
    let kind = required(ctx, t, item.span(), path, "kind")
        .and_then(|v| choice(ctx, v, &kind_path, &names));
    check_fault_keys(ctx, t, path, kind);
    let at =
        required(ctx, t, item.span(), path, "at").and_then(|v| duration(ctx, v, &join(path, "at")));
    let for_ns = field(ctx, t, path, "for", None, |c, v, p| {
        duration_positive(c, v, p).map(Some)
    });
    // The window is checked even when the kind has problems: every problem is reported.
    let window_ok = match (at, refs.run) {
        (Some(at_ns), Some(run)) => check_window(ctx, t, path, at_ns, for_ns, run),
        _ => true,
    };
    let kind = fault_kind(ctx, t, item, path, FAULT_KINDS[kind?].0, refs);
    let f = Fault {
        at_ns: at?,
        for_ns,
        kind: kind?,
    };
    window_ok.then_some(f)
}

fn check_fault_keys(ctx: &mut Ctx, t: &DeTable<'_>, path: &str, kind: Option<usize>) {
    let mut all: Vec<&str> = FAULT_COMMON.to_vec();
    for (_, keys) in FAULT_KINDS {
        all.extend(keys.iter().filter(|k| !all.contains(k)).collect::<Vec<_>>());
    }
    #[cfg(test)]
    super::values::accepted::record(path, &all);
    let Some(kind) = kind else {
        check_keys(ctx, t, path, &all);
        return;
    };
    let (kind_name, own) = FAULT_KINDS[kind];
    for (key, _) in t.iter() {
        let name: &str = key.get_ref();
        if FAULT_COMMON.contains(&name) || own.contains(&name) {
            continue;
        }
        let mut known: Vec<&str> = FAULT_COMMON.to_vec();
        known.extend(own.iter());
        if all.contains(&name) {
            let message = format!(
                "key '{name}' does not belong to a \"{kind_name}\" fault (its keys: {})",
                known.join(", ")
            );
            ctx.error(key.span(), &join(path, name), message);
        } else {
            let help = did_you_mean(name, &known)
                .or_else(|| Some(format!("expected one of: {}", known.join(", "))));
            ctx.problem(
                key.span(),
                &join(path, name),
                format!("unknown key '{name}'"),
                help,
            );
        }
    }
}

fn fault_kind(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    item: &Value<'_>,
    path: &str,
    kind: &str,
    refs: &Refs<'_>,
) -> Option<FaultKind> {
    let req = |ctx: &mut Ctx, key: &str| required(ctx, t, item.span(), path, key);
    let p = |key: &str| join(path, key);
    let hops = refs.design.hop_classes();
    let links: Vec<&str> = hops.iter().map(|h| h.key()).collect();
    Some(match kind {
        "partition" => {
            let between = req(ctx, "between").and_then(|v| between(ctx, v, &p("between"), refs));
            let one_way = field(ctx, t, path, "one_way", false, boolean);
            let (a, b) = between?;
            FaultKind::Partition { a, b, one_way }
        }
        "crash" => {
            let node = req(ctx, "node").and_then(|v| endpoint(ctx, v, &p("node"), refs, false));
            let durable = field(ctx, t, path, "durable", true, boolean);
            FaultKind::Crash {
                node: node?,
                durable,
            }
        }
        "slow" => {
            let node = req(ctx, "node").and_then(|v| endpoint(ctx, v, &p("node"), refs, false));
            // A node slowed past 1000x does nothing in the run's time: a crash says that better,
            // and a factor like 1e300 overflows every service time it multiplies.
            let factor = req(ctx, "factor").and_then(|v| {
                let what = "a factor between 1 and 1000 (a slower node is a crashed one: use kind = \"crash\")";
                number_in(ctx, v, &p("factor"), 1.0, SLOW_FACTOR_MAX, what)
            });
            FaultKind::Slow {
                node: node?,
                factor: factor?,
            }
        }
        "surge" => {
            let factor = req(ctx, "factor").and_then(|v| {
                number_in(
                    ctx,
                    v,
                    &p("factor"),
                    1.0,
                    1000.0,
                    "a factor between 1 and 1000",
                )
            });
            FaultKind::Surge { factor: factor? }
        }
        "clock_skew" => {
            let node = req(ctx, "node").and_then(|v| endpoint(ctx, v, &p("node"), refs, true));
            let offset = req(ctx, "offset").and_then(|v| duration(ctx, v, &p("offset")));
            let behind = field(ctx, t, path, "behind", false, boolean);
            FaultKind::ClockSkew {
                node: node?,
                offset_ns: offset?,
                behind,
            }
        }
        "push_loss" | "prekey_drain" => {
            let provider =
                req(ctx, "provider").and_then(|v| endpoint(ctx, v, &p("provider"), refs, false));
            let rate = if kind == "push_loss" {
                req(ctx, "rate").and_then(|v| probability(ctx, v, &p("rate")))
            } else {
                req(ctx, "rate").and_then(|v| {
                    number_in(ctx, v, &p("rate"), 0.0, 1e6, "fetches per second, 0 to 1e6")
                })
            };
            let users = if kind == "prekey_drain" {
                req(ctx, "users").and_then(|v| probability(ctx, v, &p("users")))
            } else {
                Some(0.0)
            };
            let provider = match provider? {
                Endpoint::Provider(i) => i,
                _ => {
                    let v = get(t, "provider")?;
                    ctx.expected(v, &p("provider"), "a provider name");
                    return None;
                }
            };
            let (rate, users) = (rate?, users?);
            if kind == "push_loss" {
                FaultKind::PushLoss { provider, rate }
            } else {
                FaultKind::PrekeyDrain {
                    provider,
                    users,
                    rate,
                }
            }
        }
        "identity_reset" | "toggle" => {
            let provider =
                req(ctx, "provider").and_then(|v| endpoint(ctx, v, &p("provider"), refs, false));
            let users = req(ctx, "users").and_then(|v| probability(ctx, v, &p("users")));
            let provider = match provider? {
                Endpoint::Provider(i) => i,
                _ => {
                    let v = get(t, "provider")?;
                    ctx.expected(v, &p("provider"), "a provider name");
                    return None;
                }
            };
            let users = users?;
            if kind == "toggle" {
                FaultKind::Toggle { provider, users }
            } else {
                FaultKind::IdentityReset { provider, users }
            }
        }
        _ => {
            let link = req(ctx, "link")
                .and_then(|v| choice(ctx, v, &p("link"), &links))
                .map(|i| hops[i]);
            let rate = req(ctx, "rate").and_then(|v| probability(ctx, v, &p("rate")));
            let (link, rate) = (link?, rate?);
            match kind {
                "loss" => FaultKind::Loss { link, rate },
                "duplicate" => FaultKind::Duplicate { link, rate },
                "reorder" => FaultKind::Reorder { link, rate },
                "tamper" => FaultKind::Tamper { link, rate },
                _ => FaultKind::Replay { link, rate },
            }
        }
    })
}

fn between(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    refs: &Refs<'_>,
) -> Option<(Endpoint, Endpoint)> {
    let what = "an array of two endpoints, like [\"gateway\", \"<provider>\"]";
    let DeValue::Array(items) = value.get_ref() else {
        ctx.expected(value, path, what);
        return None;
    };
    let [a, b] = items.as_ref() else {
        ctx.error(
            value.span(),
            path,
            format!(
                "expected {what}, found an array of {} elements",
                items.len()
            ),
        );
        return None;
    };
    let ea = endpoint(ctx, a, &format!("{path}[0]"), refs, true);
    let eb = endpoint(ctx, b, &format!("{path}[1]"), refs, true);
    let (ea, eb) = (ea?, eb?);
    if ea == eb {
        ctx.error(
            value.span(),
            path,
            "expected two different endpoints, found the same one twice".to_string(),
        );
        return None;
    }
    Some((ea, eb))
}

/// "gateway", a provider name, or (if `clients`) "<provider>-clients".
fn endpoint(
    ctx: &mut Ctx,
    value: &Value<'_>,
    path: &str,
    refs: &Refs<'_>,
    clients: bool,
) -> Option<Endpoint> {
    let name = string(ctx, value, path)?;
    if name == "gateway" {
        return Some(Endpoint::Gateway);
    }
    let index = |n: &str| refs.providers.iter().position(|p| p.name == n);
    if let Some(i) = index(name) {
        return Some(Endpoint::Provider(i));
    }
    let client_of = name.strip_suffix("-clients").filter(|_| clients);
    if let Some(i) = client_of.and_then(index) {
        return Some(Endpoint::Clients(i));
    }
    let base = client_of.unwrap_or(name);
    if refs.names_written.iter().any(|n| n == base) {
        return None; // that provider has its own problems, already reported
    }
    let mut candidates = vec!["gateway".to_string()];
    for p in refs.providers {
        candidates.push(p.name.clone());
        if clients {
            candidates.push(format!("{}-clients", p.name));
        }
    }
    let refs_list: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let message = format!(
        "no provider or node named {}; expected one of {}",
        describe(value.get_ref()),
        refs_list.join(", ")
    );
    ctx.problem(value.span(), path, message, did_you_mean(name, &refs_list));
    None
}

/// A fault starts while the workload sends and ends before the run does.
fn check_window(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    path: &str,
    at_ns: DurationNs,
    for_ns: Option<DurationNs>,
    run: &RunSpec,
) -> bool {
    let mut ok = true;
    if at_ns >= run.duration_ns {
        let message = format!(
            "the fault starts at {}, at or after the end of the workload (run.duration = {})",
            format_duration_ns(at_ns),
            format_duration_ns(run.duration_ns)
        );
        let span = get(t, "at").map_or(0..0, |v| v.span());
        ctx.error(span, &join(path, "at"), message);
        ok = false;
    }
    let run_end = run.duration_ns.saturating_add(run.drain_ns);
    let end = for_ns.map(|d| at_ns.saturating_add(d));
    if let Some(end) = end.filter(|end| *end > run_end) {
        let message = format!(
            "the fault ends at {}, after the end of the run (run.duration + run.drain = {})",
            format_duration_ns(end),
            format_duration_ns(run_end)
        );
        let span = get(t, "for").map_or(0..0, |v| v.span());
        ctx.error(span, &join(path, "for"), message);
        ok = false;
    }
    ok
}
