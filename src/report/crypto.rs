//! The crypto cost figure and table, from the `crypto` section of summary.json: operations and
//! CPU time charged per message kind (`by_message.<kind>.<op>` counts and `..._ns` times), or,
//! for another shape, one bar per number. Absent section: no figure, and the page says so.

use super::html::Cell;
use super::plots::bars::GroupedBars;
use crate::metrics::ledger::Records;
use crate::metrics::Summary;
use crate::scenario::ContentKind;
use serde_json::{Map, Value};

const BY_MESSAGE: &str = "by_message.";

/// The crypto figure of a run, if its summary has a `crypto` section.
pub fn figure(sm: &Summary) -> Option<GroupedBars> {
    figure_of(&serde_json::to_value(sm).ok()?)
}

/// The crypto figure of a summary.json document.
pub fn figure_of(json: &Value) -> Option<GroupedBars> {
    let crypto = json.get("crypto")?.as_object()?;
    if crypto.keys().any(|k| k.starts_with(BY_MESSAGE)) {
        by_message(crypto)
    } else {
        generic(json)
    }
}

/// (kind, op, ns) of every `by_message.<kind>.<op>_ns` entry, kinds in content order then
/// `control` and any other.
fn times(crypto: &Map<String, Value>) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = crypto
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(BY_MESSAGE)?;
            let (kind, op) = rest.split_once('.')?;
            let op = op.strip_suffix("_ns")?;
            Some((kind.to_string(), op.to_string(), v.as_u64()?))
        })
        .collect();
    let rank = |kind: &str| {
        ContentKind::ALL
            .iter()
            .position(|c| c.key() == kind)
            .unwrap_or(ContentKind::ALL.len())
    };
    out.sort_by(|a, b| (rank(&a.0), &a.0, &a.1).cmp(&(rank(&b.0), &b.0, &b.1)));
    out
}

fn kinds_and_ops(t: &[(String, String, u64)]) -> (Vec<String>, Vec<String>) {
    let mut kinds: Vec<String> = Vec::new();
    let mut ops: Vec<String> = Vec::new();
    for (k, o, _) in t {
        if !kinds.contains(k) {
            kinds.push(k.clone());
        }
        if !ops.contains(o) {
            ops.push(o.clone());
        }
    }
    ops.sort();
    (kinds, ops)
}

fn by_message(crypto: &Map<String, Value>) -> Option<GroupedBars> {
    let t = times(crypto);
    let (kinds, ops) = kinds_and_ops(&t);
    if kinds.is_empty() {
        return None;
    }
    let series = ops
        .iter()
        .map(|op| {
            let values = kinds
                .iter()
                .map(|k| {
                    t.iter()
                        .find(|(tk, to, _)| tk == k && to == op)
                        .map_or(0.0, |(_, _, ns)| *ns as f64 / 1e6)
                })
                .collect();
            (op.replace('_', " "), values)
        })
        .collect();
    Some(GroupedBars {
        name: "crypto".to_string(),
        title: "Crypto CPU time per message kind".to_string(),
        caption: "CPU time charged for each crypto operation, summed over the run, by the kind of message it served, the sender's work (encrypt, initiate) beside the receiver's (decrypt, respond); control: key generation, receipts and the gateway's Noise frames. Log scale."
            .to_string(),
        y_desc: "CPU time (ms, log scale)".to_string(),
        categories: kinds,
        series,
        log_y: true,
    })
}

/// Per message kind: messages sent, crypto CPU in all, and per message.
pub fn table(sm: &Summary, records: &Records) -> Option<(Vec<&'static str>, Vec<Vec<Cell>>)> {
    let json = serde_json::to_value(sm).ok()?;
    let crypto = json.get("crypto")?.as_object()?;
    let t = times(crypto);
    let (kinds, _) = kinds_and_ops(&t);
    if kinds.is_empty() {
        return None;
    }
    let rows = kinds
        .iter()
        .map(|k| {
            let ns: u64 = t
                .iter()
                .filter(|(tk, _, _)| tk == k)
                .map(|(_, _, n)| n)
                .sum();
            let sent = records.iter().filter(|r| r.content.key() == k).count() as u64;
            let per_msg = if sent == 0 {
                "–".to_string()
            } else {
                format!("{:.1}", ns as f64 / 1e3 / sent as f64)
            };
            vec![
                k.as_str().into(),
                sent.to_string().into(),
                format!("{:.1}", ns as f64 / 1e6).into(),
                per_msg.into(),
            ]
        })
        .collect();
    let header = vec![
        "message kind",
        "messages",
        "crypto CPU (ms)",
        "per message (µs)",
    ];
    Some((header, rows))
}

/// Any other `crypto` object: `{ kind: number }` or `{ kind: { field: number, ... } }` (one bar
/// per numeric field).
fn generic(json: &serde_json::Value) -> Option<GroupedBars> {
    let crypto = json.get("crypto")?.as_object()?;
    let kinds: Vec<&String> = crypto.keys().collect();
    let mut fields: Vec<String> = Vec::new();
    for v in crypto.values() {
        match v {
            serde_json::Value::Number(_) if !fields.iter().any(|f| f == "cost") => {
                fields.push("cost".to_string())
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    if x.is_number() && !fields.contains(k) {
                        fields.push(k.clone());
                    }
                }
            }
            _ => {}
        }
    }
    if kinds.is_empty() || fields.is_empty() {
        return None;
    }
    let series = fields
        .iter()
        .map(|f| {
            let values = kinds
                .iter()
                .map(|k| match &crypto[k.as_str()] {
                    serde_json::Value::Number(n) if f == "cost" => n.as_f64().unwrap_or(0.0),
                    serde_json::Value::Object(o) => {
                        o.get(f).and_then(|x| x.as_f64()).unwrap_or(0.0)
                    }
                    _ => 0.0,
                })
                .collect();
            (f.clone(), values)
        })
        .collect();
    let unit = if fields.iter().all(|f| f.ends_with("_us")) {
        " (µs)"
    } else if fields.iter().all(|f| f.ends_with("_ns")) {
        " (ns)"
    } else {
        ""
    };
    Some(GroupedBars {
        name: "crypto".to_string(),
        title: "Crypto cost per message kind".to_string(),
        caption: "From the crypto section of summary.json.".to_string(),
        y_desc: format!("cost{unit}"),
        categories: kinds.iter().map(|k| k.to_string()).collect(),
        series,
        log_y: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_figure_from_a_crypto_section() {
        let json = serde_json::json!({
            "crypto": {
                "text": { "encrypt_us": 2.5, "decrypt_us": 2.7 },
                "image": { "encrypt_us": 9.0, "decrypt_us": 8.0 },
                "session": 338.0
            }
        });
        let fig = generic(&json).expect("a crypto section gives a figure");
        assert_eq!(fig.categories, ["image", "session", "text"]);
        let labels: Vec<&str> = fig.series.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["decrypt_us", "encrypt_us", "cost"]);
        assert!(figure_of(&serde_json::json!({ "sent": 1 })).is_none());
        let json = serde_json::json!({ "crypto": {
            "by_message.text.ratchet_encrypt": 3, "by_message.text.ratchet_encrypt_ns": 3000,
            "by_message.control.noise_aead_ns": 500, "by_message.image.x3dh_initiate_ns": 250000,
            "plaintext_bytes": 9 } });
        let fig = figure_of(&json).expect("by_message entries give a figure");
        assert_eq!(fig.categories, ["text", "image", "control"]);
        assert_eq!(fig.series[1].0, "ratchet encrypt");
        assert_eq!(fig.series[1].1, [0.003, 0.0, 0.0]);
        let dir = std::env::temp_dir().join(format!("interop-sim-crypto-{}", std::process::id()));
        let drawn = super::super::plots::render(&fig, &dir).expect("draws");
        assert!(drawn.png.starts_with(b"\x89PNG"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
