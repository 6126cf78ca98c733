//! The `compare` page's section for two runs of different interop designs (the hub's gateway
//! against MIMI rooms, issue 22): latency per path kind, bytes per hop class, crypto CPU per
//! delivered copy at each node kind, and what membership changes cost, all read from the two
//! summary.json files. A run is MIMI when its providers' endpoints fanned out (the
//! `mimi_fanouts` counter), so any two results folders compare.

use super::html::{num, Cell, Page};
use serde_json::Value;

/// The design a run's summary shows.
pub fn design(s: &Value) -> &'static str {
    if s["work"].get("mimi_fanouts").is_some() {
        "mimi"
    } else {
        "hub"
    }
}

fn work(s: &Value, key: &str) -> f64 {
    s["work"][key].as_f64().unwrap_or(0.0)
}

/// The sum of every crypto counter named `<runner>.<op>` (or `<op>_ns`) for `runner`.
fn crypto(s: &Value, runner: &str, suffix: &str, ops: &[&str]) -> f64 {
    ops.iter()
        .map(|op| {
            let key = format!("{runner}.{op}{suffix}");
            s["crypto"][&key].as_f64().unwrap_or(0.0)
        })
        .sum()
}

/// Copies shown on devices: the denominator of the per-delivery figures.
fn deliveries(s: &Value) -> f64 {
    let samples = s["samples"].as_f64().unwrap_or(0.0);
    samples + s["deliveries_in_warmup"].as_f64().unwrap_or(0.0)
}

const HOPS: [&str; 5] = [
    "client_server",
    "server_gateway",
    "gateway_partner",
    "adapter_server",
    "provider_provider",
];
const RUNNERS: [&str; 3] = ["gatekeeper_device", "partner_device", "gateway"];
/// What membership changes cost: MLS commits, their processing and joins under MIMI; Sender
/// Key distributions (sealed pairwise) under the hub.
const MEMBERSHIP_OPS: [&str; 3] = ["mls_commit", "mls_process_commit", "mls_join"];

/// The section, when the two runs' designs differ (else nothing).
pub fn section(p: &mut Page, sa: &Value, sb: &Value) {
    let (da, db) = (design(sa), design(sb));
    if da == db {
        return;
    }
    p.h2(&format!("Across designs: A is {da}, B is {db}"));
    p.para(
        "meta",
        "The same workload under the gatekeeper's hub (its gateway and chat server, Signal) and under MIMI (each provider's own server, MLS rooms ordered by a hub provider). Figures from the two summary.json files.",
    );
    let pair = |key: String, a: f64, b: f64| vec![key.into(), num(a).into(), num(b).into()];
    let mut rows = Vec::new();
    for kind in ["native", "interop", "group"] {
        for q in ["delivered_p50", "delivered_p99"] {
            let v = |s: &Value| s["paths"][kind][q].as_f64();
            if let (Some(a), Some(b)) = (v(sa), v(sb)) {
                rows.push(pair(format!("{kind} {q} (ms)"), a, b));
            }
        }
    }
    p.h2("Latency per path kind");
    p.table(&["", "A", "B"], &rows);
    let (na, nb) = (deliveries(sa).max(1.0), deliveries(sb).max(1.0));
    let rows: Vec<Vec<Cell>> = HOPS
        .iter()
        .map(|h| {
            let key = format!("bytes_{h}");
            let (a, b) = (work(sa, &key), work(sb, &key));
            vec![
                (*h).into(),
                num(a).into(),
                num(b).into(),
                num(a / na).into(),
                num(b / nb).into(),
            ]
        })
        .collect();
    p.h2("Bytes per hop class");
    p.table(
        &[
            "hop",
            "A bytes",
            "B bytes",
            "A per delivery",
            "B per delivery",
        ],
        &rows,
    );
    let all_ops: Vec<String> = sa["crypto"]
        .as_object()
        .into_iter()
        .chain(sb["crypto"].as_object())
        .flat_map(|o| o.keys())
        .filter_map(|k| k.strip_suffix("_ns"))
        .filter_map(|k| k.split_once('.').map(|(_, op)| op.to_string()))
        // Media crypto is the same work under both designs.
        .filter(|op| !op.starts_with("attachment_"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let ops: Vec<&str> = all_ops.iter().map(String::as_str).collect();
    let rows: Vec<Vec<Cell>> = RUNNERS
        .iter()
        .map(|r| {
            let (a, b) = (crypto(sa, r, "_ns", &ops), crypto(sb, r, "_ns", &ops));
            vec![
                (*r).into(),
                num(a / na / 1e3).into(),
                num(b / nb / 1e3).into(),
            ]
        })
        .collect();
    p.h2("Message crypto CPU per delivered copy (µs), by node kind (media crypto left out)");
    p.table(&["node kind", "A", "B"], &rows);
    let mut rows = vec![pair(
        "members who left (group_leaves)".into(),
        work(sa, "group_leaves"),
        work(sb, "group_leaves"),
    )];
    for op in MEMBERSHIP_OPS {
        let sum = |s: &Value, suffix| RUNNERS.iter().map(|r| crypto(s, r, suffix, &[op])).sum();
        rows.push(pair(op.to_string(), sum(sa, ""), sum(sb, "")));
        rows.push(pair(
            format!("{op} CPU (ms)"),
            sum(sa, "_ns") / 1e6,
            sum(sb, "_ns") / 1e6,
        ));
    }
    for key in [
        "sender_key_distributions",
        "sender_key_rotations",
        "mls_commit_conflicts",
    ] {
        let v = |s: &Value| s["crypto"][key].as_f64().unwrap_or(0.0);
        rows.push(pair(key.to_string(), v(sa), v(sb)));
    }
    for key in ["mimi_fanouts", "mimi_fanouts_again", "mimi_relayed_to_hub"] {
        rows.push(pair(key.to_string(), work(sa, key), work(sb, key)));
    }
    p.h2("Membership changes and MIMI fan-out");
    p.table(&["", "A", "B"], &rows);
    metadata(p, sa, sb);
}

/// The metadata table: per provider, who-talks-to-whom its servers saw in the routing fields
/// of the messages they handled (`work.metadata.<provider>.*`, counted from the frames).
fn metadata(p: &mut Page, sa: &Value, sb: &Value) {
    let providers: std::collections::BTreeSet<String> = [sa, sb]
        .iter()
        .filter_map(|s| s["work"].as_object())
        .flat_map(|o| o.keys())
        .filter_map(|k| {
            k.strip_prefix("metadata.")?
                .rsplit_once('.')
                .map(|(p, _)| p.to_string())
        })
        .collect();
    if providers.is_empty() {
        return;
    }
    let mut rows = Vec::new();
    for name in &providers {
        for (what, key) in [
            ("chats with another provider's user (pairs)", "pairs"),
            (
                "of which between two other providers' users",
                "third_party_pairs",
            ),
            ("other providers' users seen", "foreign_users"),
        ] {
            let k = format!("metadata.{name}.{key}");
            rows.push(vec![
                name.as_str().into(),
                what.into(),
                num(work(sa, &k)).into(),
                num(work(sb, &k)).into(),
            ]);
        }
    }
    p.h2("Metadata: what each provider's servers saw");
    p.para(
        "meta",
        "Counted from the frames each provider's servers handled (chat or partner server, adapter; the gateway is the gatekeeper's): distinct sender-recipient pairs of users in the routing fields of message submissions and MIMI fan-outs, where at least one user is another provider's. Contents stay end-to-end encrypted under both designs; this is what routing alone reveals.",
    );
    p.table(&["provider", "", "A", "B"], &rows);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_section_shows_for_two_designs_only_with_their_figures() {
        let hub = json!({
            "samples": 10.0,
            "work": { "bytes_gateway_partner": 1000.0 },
            "crypto": { "gatekeeper_device.ratchet_encrypt_ns": 20000.0 },
            "paths": { "interop": { "delivered_p99": 100.0 } },
        });
        let mimi = json!({
            "samples": 10.0,
            "work": {
                "mimi_fanouts": 3.0,
                "bytes_provider_provider": 700.0,
                "metadata.birdychat.third_party_pairs": 41.0,
            },
            "crypto": { "partner_device.mls_commit": 2.0, "partner_device.mls_commit_ns": 3.0e6 },
            "paths": { "interop": { "delivered_p99": 140.0 } },
        });
        assert_eq!((design(&hub), design(&mimi)), ("hub", "mimi"));
        let page = |a: &Value, b: &Value| {
            let mut p = Page::new();
            section(&mut p, a, b);
            p.finish("t")
        };
        assert!(!page(&hub, &hub).contains("Across designs"));
        let both = page(&hub, &mimi);
        assert!(
            both.contains("Across designs: A is hub, B is mimi"),
            "{both}"
        );
        // Bytes per delivery: 700 B over 10 copies; commit CPU 3 ms; crypto 2 µs per copy.
        for figure in [
            "provider_provider",
            "70",
            "interop delivered_p99 (ms)",
            "mls_commit CPU (ms)",
        ] {
            assert!(both.contains(figure), "{figure} in {both}");
        }
    }
}
