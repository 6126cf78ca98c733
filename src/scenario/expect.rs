//! The walk over `[expect]`: each key names a summary metric, optionally behind a path kind
//! (`interop.delivered_p99`), `overall.` or a node kind (`gateway.utilization_peak`); its value
//! is a bound.
//!
//! An unprefixed service-level key (a latency or `delivered_ratio`) holds every path kind to the
//! bound as well as the whole run: users are told third-party chats may differ from native ones,
//! so a good overall p99 must not hide an interop p99 past the same SLO. Counters need no such
//! lines: a path kind's count is part of the overall one. `overall.` names the whole run alone.

use toml::de::{DeTable, DeValue};

use super::errors::{did_you_mean, Ctx};
use super::model::{Bound, Expectation};
use super::values::*;

/// Counters that count bad things: a plain value is an upper bound.
const BAD_COUNTERS: [&str; 11] = [
    "failed",
    "lost",
    "unsent",
    "queued_at_end",
    "duplicates",
    "out_of_order",
    "decrypt_failures",
    "unreachable",
    "expired",
    "tamper_detected",
    "replay_rejected",
];
/// Counters that count good things: a plain value is a lower bound.
const GOOD_COUNTERS: [&str; 3] = ["sent", "delivered", "delivered_ratio"];
const LATENCIES: [&str; 4] = [
    "delivered_p50",
    "delivered_p99",
    "delivered_p999",
    "delivered_max",
];
const THROUGHPUTS: [&str; 4] = [
    "messages_delivered_per_s_mean",
    "messages_delivered_per_s_peak",
    "device_deliveries_per_s_mean",
    "device_deliveries_per_s_peak",
];
/// Older names still accepted, and the names they now go by: `delivered_per_s_*` counted device
/// copies, so it names `device_deliveries_per_s_*` (SCENARIOS.md: core keys are stable; extend,
/// don't rename).
const OLDER_NAMES: [(&str, &str); 2] = [
    ("delivered_per_s_mean", "device_deliveries_per_s_mean"),
    ("delivered_per_s_peak", "device_deliveries_per_s_peak"),
];
/// Media counters (summary.json's `media_*`), top level only: failures bound from above...
const MEDIA_BAD: [&str; 4] = [
    "media_upload_failures",
    "media_download_failures",
    "media_verify_failures",
    "media_transfers_pending",
];
/// ... work done (and retries) from below ...
const MEDIA_GOOD: [&str; 9] = [
    "media_uploads",
    "media_bytes_uploaded",
    "media_downloads",
    "media_bytes_downloaded",
    "media_downloads_via_proxy",
    "media_bytes_downloaded_via_proxy",
    "media_proxy_bytes",
    "media_upload_retries",
    "media_download_retries",
];
/// ... and download latencies, durations bound from above.
const MEDIA_LATENCIES: [&str; 3] = [
    "media_download_p50",
    "media_download_p99",
    "media_download_max",
];
/// The media keys kept for group messages apart (`group.media_downloads`, ...; the summary's
/// `group_media`, metrics/media.rs).
pub(crate) const GROUP_MEDIA: [&str; 7] = [
    "media_uploads",
    "media_downloads",
    "media_bytes_downloaded",
    "media_downloads_via_proxy",
    "media_download_p50",
    "media_download_p99",
    "media_download_max",
];
/// The inboxes of `inbox.<inbox>.<key>` (summary.json's `inbox`, metrics/inbox.rs), in its
/// `Inbox` order.
pub const INBOXES: [&str; 2] = ["main", "third_party"];
/// An inbox's counts (`inbox.third_party.unread_max`).
pub const INBOX_COUNTS: [&str; 4] = ["shown", "read", "unread_at_end", "unread_max"];
/// An inbox's durations (ms in summary.json; bounded as durations).
pub const INBOX_LATENCIES: [&str; 3] = ["first_read_p50", "first_read_p99", "first_read_mean"];
pub(crate) const PATH_KINDS: [&str; 3] = ["native", "interop", "group"];
/// The prefix for a metric of the whole run only, without the per-path-kind lines.
pub(crate) const OVERALL: &str = "overall";
pub(crate) const NODE_KINDS: [&str; 3] = ["gateway", "chat_server", "adapter"];
const UTILIZATIONS: [&str; 2] = ["utilization_mean", "utilization_peak"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    /// A count (or, for `delivered_ratio`, a share) with its default direction.
    Counter {
        at_least: bool,
        share: bool,
    },
    /// A duration, bounded in ns.
    Latency,
    Throughput,
    Utilization,
}

impl Metric {
    fn at_least(self) -> bool {
        match self {
            Metric::Counter { at_least, .. } => at_least,
            Metric::Throughput => true,
            Metric::Latency | Metric::Utilization => false,
        }
    }
}

/// The metric named by a full expectation key, if any.
fn metric(key: &str) -> Option<Metric> {
    if let Some((prefix, base)) = key.split_once('.') {
        if NODE_KINDS.contains(&prefix) {
            return UTILIZATIONS.contains(&base).then_some(Metric::Utilization);
        }
        if prefix == "group" && GROUP_MEDIA.contains(&base) {
            return media_metric(base);
        }
        if prefix == "inbox" {
            return inbox_metric(base);
        }
        return if PATH_KINDS.contains(&prefix) || prefix == OVERALL {
            base_metric(base)
        } else {
            None
        };
    }
    base_metric(key).or_else(|| media_metric(key))
}

/// `inbox.<main|third_party>.<key>` (metrics/inbox.rs): reads and shown messages are bounded
/// from below by default, the unread badges from above; the times to first read are durations.
fn inbox_metric(key: &str) -> Option<Metric> {
    let (inbox, k) = key.split_once('.')?;
    if !INBOXES.contains(&inbox) {
        return None;
    }
    if INBOX_COUNTS.contains(&k) {
        let at_least = k == "read" || k == "shown";
        Some(Metric::Counter {
            at_least,
            share: false,
        })
    } else if INBOX_LATENCIES.contains(&k) {
        Some(Metric::Latency)
    } else {
        None
    }
}

fn media_metric(key: &str) -> Option<Metric> {
    if MEDIA_BAD.contains(&key) || MEDIA_GOOD.contains(&key) {
        Some(Metric::Counter {
            at_least: MEDIA_GOOD.contains(&key),
            share: false,
        })
    } else if MEDIA_LATENCIES.contains(&key) {
        Some(Metric::Latency)
    } else {
        None
    }
}

fn base_metric(key: &str) -> Option<Metric> {
    if BAD_COUNTERS.contains(&key) {
        Some(Metric::Counter {
            at_least: false,
            share: false,
        })
    } else if GOOD_COUNTERS.contains(&key) {
        Some(Metric::Counter {
            at_least: true,
            share: key == "delivered_ratio",
        })
    } else if LATENCIES.contains(&key) {
        Some(Metric::Latency)
    } else if THROUGHPUTS.contains(&key) {
        Some(Metric::Throughput)
    } else {
        None
    }
}

/// Whether an unprefixed key also holds each path kind to its bound (see the module doc).
pub fn held_per_path_kind(key: &str) -> bool {
    LATENCIES.contains(&key) || key == "delivered_ratio"
}

/// The key a `[expect]` key bounds on its own: `overall.X` and `X` measure the same value.
fn measured(key: &str) -> &str {
    key.strip_prefix("overall.").unwrap_or(key)
}

/// `key` with an older metric name (after any prefix) replaced by its current one, so that the
/// rest of the program knows one name per metric.
fn current_name(key: &str) -> String {
    let (prefix, base) = match key.rsplit_once('.') {
        Some((p, b)) => (Some(p), b),
        None => (None, key),
    };
    let Some(&(_, now)) = OLDER_NAMES.iter().find(|(old, _)| *old == base) else {
        return key.to_string();
    };
    prefix.map_or(now.to_string(), |p| format!("{p}.{now}"))
}

/// Every key `[expect]` accepts, for did-you-mean.
pub(crate) fn all_keys() -> Vec<String> {
    let bases: Vec<&str> = BAD_COUNTERS
        .iter()
        .chain(&GOOD_COUNTERS)
        .chain(&LATENCIES)
        .chain(&THROUGHPUTS)
        .copied()
        .collect();
    let mut keys: Vec<String> = bases.iter().map(|b| b.to_string()).collect();
    for prefix in PATH_KINDS.iter().chain(&[OVERALL]) {
        keys.extend(bases.iter().map(|b| format!("{prefix}.{b}")));
    }
    for node in NODE_KINDS {
        keys.extend(UTILIZATIONS.iter().map(|u| format!("{node}.{u}")));
    }
    let media = MEDIA_BAD.iter().chain(&MEDIA_GOOD).chain(&MEDIA_LATENCIES);
    keys.extend(media.map(|k| k.to_string()));
    keys.extend(GROUP_MEDIA.iter().map(|k| format!("group.{k}")));
    for inbox in INBOXES {
        let k = INBOX_COUNTS.iter().chain(&INBOX_LATENCIES);
        keys.extend(k.map(|k| format!("inbox.{inbox}.{k}")));
    }
    keys
}

/// The expectations, in file order.
pub(crate) fn expect(ctx: &mut Ctx, t: Option<&DeTable<'_>>) -> Vec<Expectation> {
    let Some(t) = t else { return Vec::new() };
    // Its keys are metric names, an open set checked by name below, not a key list.
    #[cfg(test)]
    super::values::accepted::record("expect", &["<metric>"]);
    expectations(ctx, t, "expect")
}

/// The expectations of a table written like `[expect]` (also `[plan] slo`), in file order;
/// `root` is the table's key path, for messages.
pub(crate) fn expectations(ctx: &mut Ctx, t: &DeTable<'_>, root: &str) -> Vec<Expectation> {
    let mut found: Vec<(usize, Expectation)> = Vec::new();
    walk(ctx, t, root, "", &mut found);
    found.sort_by_key(|(offset, _)| *offset);
    found.into_iter().map(|(_, e)| e).collect()
}

fn walk(
    ctx: &mut Ctx,
    t: &DeTable<'_>,
    root: &str,
    prefix: &str,
    found: &mut Vec<(usize, Expectation)>,
) {
    for (key, value) in t.iter() {
        let written = join(prefix, key.get_ref());
        let path = join(root, &written);
        let full = current_name(&written);
        if let Some(m) = metric(&full) {
            if let Some((_, e)) = found
                .iter()
                .find(|(_, e)| measured(&e.key) == measured(&full))
            {
                let what = if e.key == full {
                    format!("expectation '{full}' is given twice")
                } else {
                    format!(
                        "expectation '{full}' bounds the same value as '{}': give one (`overall.` leaves out the per-path-kind lines)",
                        e.key
                    )
                };
                ctx.error(key.span(), &path, what);
            } else if let Some(bound) = bound(ctx, value, &path, m) {
                found.push((key.span().start, Expectation { key: full, bound }));
            }
            continue;
        }
        let is_namespace = (prefix.is_empty()
            && (PATH_KINDS.contains(&full.as_str())
                || NODE_KINDS.contains(&full.as_str())
                || full == OVERALL
                || full == "inbox"))
            || (prefix == "inbox" && INBOXES.contains(&key.get_ref().as_ref()));
        match value.get_ref() {
            DeValue::Table(inner) if is_namespace => walk(ctx, inner, root, &full, found),
            _ => {
                let keys = all_keys();
                let known: Vec<&str> = keys.iter().map(String::as_str).collect();
                let help = did_you_mean(&full, &known);
                ctx.problem(
                    key.span(),
                    &path,
                    format!("unknown expectation '{full}'"),
                    help,
                );
            }
        }
    }
}

/// A plain value (default direction) or `{ max = X }` / `{ min = X }`.
fn bound(ctx: &mut Ctx, value: &Value<'_>, path: &str, m: Metric) -> Option<Bound> {
    let DeValue::Table(t) = value.get_ref() else {
        let x = metric_value(ctx, value, path, m)?;
        return Some(if m.at_least() {
            Bound::AtLeast(x)
        } else {
            Bound::AtMost(x)
        });
    };
    check_keys(ctx, t, path, &["min", "max"]);
    match (get(t, "min"), get(t, "max")) {
        (Some(v), None) => metric_value(ctx, v, &join(path, "min"), m).map(Bound::AtLeast),
        (None, Some(v)) => metric_value(ctx, v, &join(path, "max"), m).map(Bound::AtMost),
        _ => {
            ctx.expected(value, path, "exactly one of { min = .. } or { max = .. }");
            None
        }
    }
}

fn metric_value(ctx: &mut Ctx, value: &Value<'_>, path: &str, m: Metric) -> Option<f64> {
    match m {
        Metric::Latency => duration(ctx, value, path).map(|ns| ns as f64),
        Metric::Counter { share: true, .. } | Metric::Utilization => {
            number_in(ctx, value, path, 0.0, 1.0, "a number in [0, 1]")
        }
        Metric::Counter { share: false, .. } => {
            number_in(ctx, value, path, 0.0, f64::MAX, "a count >= 0")
        }
        Metric::Throughput => {
            number_in(ctx, value, path, 0.0, f64::MAX, "messages per second >= 0")
        }
    }
}

/// Whether a key names a latency (rendered as a duration string).
pub(crate) fn is_latency(key: &str) -> bool {
    metric(key) == Some(Metric::Latency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_key() {
        assert_eq!(
            metric("lost"),
            Some(Metric::Counter {
                at_least: false,
                share: false
            })
        );
        assert_eq!(metric("interop.delivered_p99"), Some(Metric::Latency));
        assert_eq!(
            metric("gateway.utilization_peak"),
            Some(Metric::Utilization)
        );
        assert_eq!(metric("gateway.lost"), None);
        assert_eq!(metric("native.utilization_mean"), None);
        assert_eq!(metric("bogus"), None);
        assert!(all_keys().len() > 60);
    }

    #[test]
    fn older_throughput_names_become_the_device_deliveries_rates() {
        assert_eq!(
            current_name("delivered_per_s_mean"),
            "device_deliveries_per_s_mean"
        );
        assert_eq!(
            current_name("interop.delivered_per_s_peak"),
            "interop.device_deliveries_per_s_peak"
        );
        assert_eq!(current_name("delivered_p99"), "delivered_p99");
        assert_eq!(
            metric(&current_name("delivered_per_s_peak")),
            Some(Metric::Throughput)
        );
    }

    fn c_group(k: &str) -> bool {
        crate::metrics::media::MediaCounters::default()
            .group_metric(k)
            .is_some()
    }

    #[test]
    fn media_keys_are_top_level_and_measured() {
        use crate::metrics::media::{MediaCounters, LATENCY_KEYS};
        assert_eq!(metric("media_download_p99"), Some(Metric::Latency));
        assert!(metric("media_download_failures").is_some_and(|m| !m.at_least()));
        assert!(metric("media_bytes_downloaded").is_some_and(|m| m.at_least()));
        assert_eq!(
            metric("interop.media_downloads"),
            None,
            "no 1:1 per-path media counters"
        );
        assert_eq!(metric("group.media_download_p99"), Some(Metric::Latency));
        assert_eq!(metric("group.media_upload_failures"), None);
        assert_eq!(MEDIA_LATENCIES, LATENCY_KEYS);
        for k in GROUP_MEDIA {
            assert!(c_group(k), "summary measures group.{k}");
        }
        let c = MediaCounters::default();
        for k in MEDIA_BAD.iter().chain(&MEDIA_GOOD).chain(&MEDIA_LATENCIES) {
            assert!(c.metric(k).is_some(), "summary measures {k}");
            assert!(all_keys().iter().any(|a| a == k));
        }
    }
}
