//! The walk over the behaviour sections of a scenario file: `[workload]`, `[capacity]`, `[e2ee]`
//! and `[devices]`, with their defaults and in-section cross-field checks.

use std::ops::Range;
use toml::de::{DeTable, DeValue};

use super::cost_table::cost_table;
use super::errors::Ctx;
use super::model::*;
use super::values::*;

const US: u64 = 1_000;
const S: u64 = 1_000_000_000;
const I64_MAX: u64 = i64::MAX as u64;
/// Bound on group size: WhatsApp's limit, and the largest group the interop groups will carry.
pub const GROUP_SIZE_MAX: u64 = 1024;
const COUNT_MAX: u64 = u32::MAX as u64;

pub(crate) fn default_workload() -> Workload {
    Workload {
        messages_per_user_hour: 20.0,
        cross_provider: 0.3,
        content: [0.7, 0.15, 0.08, 0.04, 0.03],
        groups_share: 0.0,
        group_size_min: 3,
        group_size_max: 32,
        group_leave: 0.0,
        media_bytes_max: MEDIA_BYTES_MAX,
        contacts_per_user: 8,
        reply_probability: 0.5,
        reply_delay_mean_ns: 20 * S,
        read_probability: 0.8,
        separate_inbox_delay_ns: SEPARATE_INBOX_DELAY_NS,
    }
}

pub(crate) fn workload(ctx: &mut Ctx, t: Option<&DeTable<'_>>) -> Workload {
    let d = default_workload();
    let Some(t) = t else { return d };
    let p = "workload";
    let keys = [
        "messages_per_user_hour",
        "cross_provider",
        "content",
        "groups",
        "media_bytes_max",
        "contacts_per_user",
        "reply_probability",
        "reply_delay",
        "read_probability",
        "separate_inbox_delay",
    ];
    check_keys(ctx, t, p, &keys);
    let (groups_share, group_size_min, group_size_max, group_leave) = field(
        ctx,
        t,
        p,
        "groups",
        (
            d.groups_share,
            d.group_size_min,
            d.group_size_max,
            d.group_leave,
        ),
        groups,
    );
    Workload {
        messages_per_user_hour: field(
            ctx,
            t,
            p,
            "messages_per_user_hour",
            d.messages_per_user_hour,
            |c, v, p| number_in(c, v, p, 0.0, f64::MAX, "a number >= 0"),
        ),
        cross_provider: field(ctx, t, p, "cross_provider", d.cross_provider, probability),
        content: field(ctx, t, p, "content", d.content, content),
        groups_share,
        group_size_min,
        group_size_max,
        group_leave,
        media_bytes_max: field(
            ctx,
            t,
            p,
            "media_bytes_max",
            d.media_bytes_max,
            |c, v, p| integer(c, v, p, 1, MEDIA_BYTES_MAX),
        ),
        contacts_per_user: field(
            ctx,
            t,
            p,
            "contacts_per_user",
            d.contacts_per_user,
            |c, v, p| integer(c, v, p, 0, COUNT_MAX).map(|n| n as u32),
        ),
        reply_probability: field(
            ctx,
            t,
            p,
            "reply_probability",
            d.reply_probability,
            probability,
        ),
        reply_delay_mean_ns: field(ctx, t, p, "reply_delay", d.reply_delay_mean_ns, duration),
        read_probability: field(
            ctx,
            t,
            p,
            "read_probability",
            d.read_probability,
            probability,
        ),
        separate_inbox_delay_ns: field(
            ctx,
            t,
            p,
            "separate_inbox_delay",
            d.separate_inbox_delay_ns,
            duration,
        ),
    }
}

/// Weights of any subset of the content kinds, normalized to sum to 1 (missing kinds are 0).
fn content(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<[f64; 5]> {
    let t = table(ctx, value, path)?;
    let keys = ContentKind::ALL.map(ContentKind::key);
    check_keys(ctx, t, path, &keys);
    let mut weights = [0.0; 5];
    let mut ok = true;
    for kind in ContentKind::ALL {
        if let Some(v) = get(t, kind.key()) {
            let w = number_in(
                ctx,
                v,
                &join(path, kind.key()),
                0.0,
                f64::MAX,
                "a weight >= 0",
            );
            ok &= w.is_some();
            weights[kind as usize] = w.unwrap_or(0.0);
        }
    }
    let sum: f64 = weights.iter().sum();
    if !ok {
        return None;
    }
    if !(sum > 0.0 && sum.is_finite()) {
        let found = if sum == 0.0 {
            "all weights zero"
        } else {
            "weights summing to more than a float holds"
        };
        ctx.error(
            value.span(),
            path,
            format!("expected weights with a positive, finite sum, found {found}"),
        );
        return None;
    }
    Some(normalize(weights, sum))
}

/// Divides by the sum unless it is already 1 within rounding, so that normalizing twice (as a
/// `to_toml` round trip does) changes nothing.
fn normalize(weights: [f64; 5], sum: f64) -> [f64; 5] {
    const SUM_TOLERANCE: f64 = 1e-12;
    if (sum - 1.0).abs() <= SUM_TOLERANCE {
        weights
    } else {
        weights.map(|w| w / sum)
    }
}

fn groups(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<(f64, u32, u32, f64)> {
    let d = default_workload();
    let t = table(ctx, value, path)?;
    check_keys(ctx, t, path, &["share", "size", "leave"]);
    let share = field(ctx, t, path, "share", d.groups_share, probability);
    let leave = field(ctx, t, path, "leave", d.group_leave, probability);
    let (min, max) = field(
        ctx,
        t,
        path,
        "size",
        (d.group_size_min, d.group_size_max),
        group_size,
    );
    Some((share, min, max, leave))
}

fn group_size(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<(u32, u32)> {
    let d = default_workload();
    let t = table(ctx, value, path)?;
    check_keys(ctx, t, path, &["min", "max"]);
    let read =
        |c: &mut Ctx, v: &Value<'_>, p: &str| integer(c, v, p, 2, GROUP_SIZE_MAX).map(|n| n as u32);
    let before = ctx.problem_count();
    let min = field(ctx, t, path, "min", d.group_size_min, read);
    let max = field(ctx, t, path, "max", d.group_size_max, read);
    if ctx.problem_count() == before && min > max {
        ctx.error(
            value.span(),
            path,
            format!("expected min <= max, found min = {min}, max = {max} (max defaults to 32)"),
        );
        return None;
    }
    Some((min, max))
}

pub(crate) fn default_capacity() -> Capacity {
    Capacity {
        gateway: NodeCapacity {
            cores: 8,
            per_message_ns: 20 * US,
            queue_max: 100_000,
            rate_limit_per_partner: Some(20_000.0),
            control_queue: ControlQueue::Shared,
        },
        chat_server: NodeCapacity {
            cores: 16,
            per_message_ns: 40 * US,
            queue_max: 1_000_000,
            rate_limit_per_partner: None,
            control_queue: ControlQueue::Shared,
        },
        adapter: NodeCapacity {
            cores: 2,
            per_message_ns: 30 * US,
            queue_max: 50_000,
            rate_limit_per_partner: None,
            control_queue: ControlQueue::Shared,
        },
        host: None,
        generator: None,
    }
}

pub(crate) fn capacity(ctx: &mut Ctx, t: Option<&DeTable<'_>>) -> Capacity {
    let mut c = default_capacity();
    let Some(t) = t else { return c };
    check_keys(
        ctx,
        t,
        "capacity",
        &["gateway", "chat_server", "adapter", "host", "generator"],
    );
    for (key, slot) in [("host", &mut c.host), ("generator", &mut c.generator)] {
        let path = join("capacity", key);
        if let Some(v) = get(t, key) {
            if let Some(host_table) = table(ctx, v, &path) {
                *slot = host(ctx, host_table, v.span(), &path);
            }
        }
    }
    for (key, slot) in [
        ("gateway", &mut c.gateway),
        ("chat_server", &mut c.chat_server),
        ("adapter", &mut c.adapter),
    ] {
        let path = join("capacity", key);
        if let Some(v) = get(t, key) {
            if let Some(node_table) = table(ctx, v, &path) {
                *slot = node_capacity(ctx, node_table, &path, *slot, key == "gateway");
            }
        }
    }
    c
}

/// `[capacity] host = { cores, per_frame, per_wake }`: the first two are required (a host with
/// no cores or no price of its own is no model of one); `per_wake` defaults to 0.
fn host(ctx: &mut Ctx, t: &DeTable<'_>, span: Range<usize>, p: &str) -> Option<HostCapacity> {
    check_keys(ctx, t, p, &["cores", "per_frame", "per_wake"]);
    let cores = required(ctx, t, span.clone(), p, "cores")
        .and_then(|v| integer(ctx, v, &join(p, "cores"), 1, 4096));
    let per_frame_ns = required(ctx, t, span, p, "per_frame")
        .and_then(|v| duration(ctx, v, &join(p, "per_frame")));
    let per_wake_ns = field(ctx, t, p, "per_wake", 0, duration);
    Some(HostCapacity {
        cores: cores? as u32,
        per_frame_ns: per_frame_ns?,
        per_wake_ns,
    })
}

fn node_capacity(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    p: &str,
    d: NodeCapacity,
    is_gateway: bool,
) -> NodeCapacity {
    check_keys(
        ctx,
        t,
        p,
        &[
            "cores",
            "per_message",
            "queue_max",
            "rate_limit_per_partner",
            "control_queue",
        ],
    );
    if !is_gateway {
        if let Some((key, _)) = t.get_key_value("rate_limit_per_partner") {
            let message = "rate_limit_per_partner is only valid on capacity.gateway".to_string();
            ctx.error(key.span(), &join(p, "rate_limit_per_partner"), message);
        }
    }
    let rate_limit_per_partner = if is_gateway {
        field(
            ctx,
            t,
            p,
            "rate_limit_per_partner",
            d.rate_limit_per_partner,
            rate_limit,
        )
    } else {
        d.rate_limit_per_partner
    };
    NodeCapacity {
        cores: field(ctx, t, p, "cores", d.cores, |c, v, p| {
            integer(c, v, p, 1, 4096).map(|n| n as u32)
        }),
        per_message_ns: field(ctx, t, p, "per_message", d.per_message_ns, duration),
        queue_max: field(ctx, t, p, "queue_max", d.queue_max, |c, v, p| {
            integer(c, v, p, 1, I64_MAX)
        }),
        rate_limit_per_partner,
        control_queue: field(ctx, t, p, "control_queue", d.control_queue, |c, v, p| {
            choice(c, v, p, &["shared", "separate"])
                .map(|i| [ControlQueue::Shared, ControlQueue::Separate][i])
        }),
    }
}

/// Messages per second, or "unlimited".
fn rate_limit(ctx: &mut Ctx, value: &Value<'_>, path: &str) -> Option<Option<f64>> {
    if let DeValue::String(s) = value.get_ref() {
        if s == "unlimited" {
            return Some(None);
        }
    }
    let what = "a number > 0 (messages per second) or \"unlimited\"";
    match value.get_ref() {
        DeValue::Integer(_) | DeValue::Float(_) => {
            number_in(ctx, value, path, f64::MIN_POSITIVE, f64::MAX, what).map(Some)
        }
        _ => {
            ctx.expected(value, path, what);
            None
        }
    }
}

pub(crate) fn default_e2ee() -> E2ee {
    E2ee {
        protocol: Protocol::X3dh,
        crypto: CryptoMode::Real,
        sessions: SessionSetup::FirstMessage,
        one_time_prekeys: 100,
        prekey_refill_below: 10,
        cost_table: super::cost_table::CostOverrides::new(),
        bundle_fetch_limit: Some(BundleFetchLimit::SIGNAL),
    }
}

pub(crate) fn e2ee(ctx: &mut Ctx, t: Option<&DeTable<'_>>, span: std::ops::Range<usize>) -> E2ee {
    let d = default_e2ee();
    let Some(t) = t else { return d };
    let p = "e2ee";
    check_keys(
        ctx,
        t,
        p,
        &[
            "protocol",
            "crypto",
            "sessions",
            "one_time_prekeys",
            "prekey_refill_below",
            "cost_table",
            "bundle_fetch_burst",
            "bundle_fetch_per_hour",
        ],
    );
    let count =
        |c: &mut Ctx, v: &Value<'_>, p: &str| integer(c, v, p, 0, COUNT_MAX).map(|n| n as u32);
    let before = ctx.problem_count();
    let e = E2ee {
        protocol: field(ctx, t, p, "protocol", d.protocol, |c, v, p| {
            choice(c, v, p, &["x3dh", "pqxdh"]).map(|i| [Protocol::X3dh, Protocol::Pqxdh][i])
        }),
        crypto: field(ctx, t, p, "crypto", d.crypto, |c, v, p| {
            choice(c, v, p, &["real", "modeled"])
                .map(|i| [CryptoMode::Real, CryptoMode::Modeled][i])
        }),
        sessions: field(ctx, t, p, "sessions", d.sessions, |c, v, p| {
            choice(c, v, p, &["first_message", "established"])
                .map(|i| [SessionSetup::FirstMessage, SessionSetup::Established][i])
        }),
        one_time_prekeys: field(ctx, t, p, "one_time_prekeys", d.one_time_prekeys, count),
        prekey_refill_below: field(
            ctx,
            t,
            p,
            "prekey_refill_below",
            d.prekey_refill_below,
            count,
        ),
        cost_table: field(ctx, t, p, "cost_table", d.cost_table, cost_table),
        bundle_fetch_limit: bundle_fetch_limit(ctx, t, p),
    };
    // Compared only when both were read fine, not against a default standing in for a bad value.
    if ctx.problem_count() == before && e.prekey_refill_below > e.one_time_prekeys {
        let message = format!(
            "expected prekey_refill_below <= one_time_prekeys, found {} > {}",
            e.prekey_refill_below, e.one_time_prekeys
        );
        let span = t
            .get_key_value("prekey_refill_below")
            .map_or(span, |(k, _)| k.span());
        ctx.error(span, "e2ee.prekey_refill_below", message);
    }
    e
}

/// `bundle_fetch_burst` (an integer >= 1) and `bundle_fetch_per_hour` (a number >= 0, or
/// "unlimited" to switch the limit off); each defaults to Signal's figure.
fn bundle_fetch_limit(ctx: &mut Ctx, t: &DeTable<'_>, p: &str) -> Option<BundleFetchLimit> {
    let d = BundleFetchLimit::SIGNAL;
    let burst = field(ctx, t, p, "bundle_fetch_burst", d.burst, |c, v, p| {
        integer(c, v, p, 1, COUNT_MAX).map(|n| n as u32)
    });
    let per_hour = field(
        ctx,
        t,
        p,
        "bundle_fetch_per_hour",
        Some(d.per_hour),
        |c, v, p| match v.get_ref() {
            DeValue::String(s) if s == "unlimited" => Some(None),
            _ => number_in(c, v, p, 0.0, f64::MAX, "a number >= 0 or \"unlimited\"").map(Some),
        },
    );
    per_hour.map(|per_hour| BundleFetchLimit { burst, per_hour })
}

pub(crate) fn default_devices() -> Devices {
    Devices {
        online_share: 0.8,
        online_mean_ns: 600 * S,
        offline_ttl_ns: 30 * 86_400 * S,
        retry_initial_ns: S,
        retry_max_ns: 60 * S,
        outbox_max: 1000,
        plaintext_cache: 256,
    }
}

pub(crate) fn devices(
    ctx: &mut Ctx,
    t: Option<&DeTable<'_>>,
    span: std::ops::Range<usize>,
) -> Devices {
    let d = default_devices();
    let Some(t) = t else { return d };
    let p = "devices";
    let keys = [
        "online_share",
        "online_mean",
        "offline_ttl",
        "retry_initial",
        "retry_max",
        "outbox_max",
        "plaintext_cache",
    ];
    check_keys(ctx, t, p, &keys);
    let before = ctx.problem_count();
    let devices = Devices {
        online_share: field(ctx, t, p, "online_share", d.online_share, probability),
        online_mean_ns: field(ctx, t, p, "online_mean", d.online_mean_ns, timer_duration),
        offline_ttl_ns: field(ctx, t, p, "offline_ttl", d.offline_ttl_ns, duration),
        retry_initial_ns: field(
            ctx,
            t,
            p,
            "retry_initial",
            d.retry_initial_ns,
            timer_duration,
        ),
        retry_max_ns: field(ctx, t, p, "retry_max", d.retry_max_ns, timer_duration),
        outbox_max: field(ctx, t, p, "outbox_max", d.outbox_max, |c, v, p| {
            integer(c, v, p, 1, COUNT_MAX).map(|n| n as u32)
        }),
        plaintext_cache: field(
            ctx,
            t,
            p,
            "plaintext_cache",
            d.plaintext_cache,
            |c, v, p| integer(c, v, p, 0, COUNT_MAX).map(|n| n as u32),
        ),
    };
    if ctx.problem_count() == before && devices.retry_initial_ns > devices.retry_max_ns {
        let span = t.get_key_value("retry_max").map_or(span, |(k, _)| k.span());
        ctx.error(
            span,
            "devices.retry_max",
            "expected retry_max >= retry_initial".to_string(),
        );
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_twice_changes_nothing() {
        let once = normalize([3.0, 1.0, 0.0, 0.3, 0.1], 4.4);
        let sum: f64 = once.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12);
        assert_eq!(normalize(once, sum), once);
        let defaults = default_workload().content;
        assert_eq!(normalize(defaults, defaults.iter().sum()), defaults);
    }
}
