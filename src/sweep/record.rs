//! What a sweep keeps of each run: the counters and figures of sweep.csv, and its latency
//! histograms in HdrHistogram's V2 binary form (base64), which is lossless: merged shards give
//! back exactly the histograms of an unsharded sweep, and per-point histograms are merged from
//! them rather than averaged from percentiles.

use super::plan::PlannedRun;
use super::SweepError;
use crate::metrics::PathKind;
use crate::sim::RunResult;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Key of the all-deliveries histogram in [`RunRecord::histograms`]; the others are the path
/// kinds' keys.
pub const ALL: &str = "all";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: u64,
    pub point: u64,
    pub repeat: u32,
    pub seed: u64,
    /// The point's value per axis, as written (`40`, `"250ms"`).
    pub labels: Vec<String>,
    /// The same as numbers (durations in ms).
    pub values: Vec<f64>,
    pub scenario_hash: String,
    pub fingerprint: String,
    pub passed: bool,
    /// Length of the send window, seconds: offered load is sent / send_window_s.
    pub send_window_s: f64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unreachable: u64,
    pub expired: u64,
    pub unsent: u64,
    /// Mean delivery rates over the send window (summary.json's). Shard files written before
    /// the split have only `delivered_per_s_mean`, which counted device copies.
    #[serde(default)]
    pub messages_delivered_per_s_mean: f64,
    #[serde(default, alias = "delivered_per_s_mean")]
    pub device_deliveries_per_s_mean: f64,
    /// Per node kind: (mean, peak) busy share of its cores.
    pub utilization: BTreeMap<String, (f64, f64)>,
    /// "all", "native", "interop", "group": V2-serialized histograms of latency (ns), base64.
    pub histograms: BTreeMap<String, String>,
    /// Copies shown on devices (the warm-up's included), and what the run spent on them:
    /// message crypto CPU of devices and gateway in ns (media crypto left out, the same under
    /// both designs) and bytes on every hop class (media transfers left out). The figures per
    /// copy compare interop designs; shard files written before them read 0.
    #[serde(default)]
    pub copies_shown: u64,
    #[serde(default)]
    pub crypto_ns: u64,
    #[serde(default)]
    pub bytes: u64,
    /// Members who left a group, and MLS commits the hub refused because another member had
    /// committed the same epoch first (MIMI; the hub design commits nothing).
    #[serde(default)]
    pub leaves: u64,
    #[serde(default)]
    pub commit_conflicts: u64,
}

impl RunRecord {
    pub fn new(run: &PlannedRun, send_window_s: f64, r: &RunResult) -> Result<Self, SweepError> {
        let s = &r.summary;
        let c = &s.counters;
        let mut histograms = BTreeMap::new();
        histograms.insert(ALL.to_string(), encode(run.index, &r.ledger.latency_all)?);
        for p in PathKind::ALL {
            let h = &r.ledger.latency[p.index()];
            histograms.insert(p.key().to_string(), encode(run.index, h)?);
        }
        Ok(RunRecord {
            run: run.index,
            point: run.point,
            repeat: run.repeat,
            seed: run.seed,
            labels: run.values.iter().map(|v| v.label()).collect(),
            values: run.values.iter().map(|v| v.as_f64()).collect(),
            scenario_hash: s.scenario_hash.clone(),
            fingerprint: s.fingerprint.clone(),
            passed: s.passed,
            send_window_s,
            sent: c.sent,
            delivered: c.delivered,
            lost: c.lost,
            duplicates: c.duplicates,
            unreachable: c.unreachable,
            expired: c.expired,
            unsent: c.unsent,
            messages_delivered_per_s_mean: s.messages_delivered_per_s_mean,
            device_deliveries_per_s_mean: s.device_deliveries_per_s_mean,
            utilization: s
                .nodes
                .iter()
                .map(|(k, u)| (k.clone(), (u.utilization_mean, u.utilization_peak)))
                .collect(),
            histograms,
            copies_shown: s.latency.samples + s.deliveries_in_warmup,
            crypto_ns: message_crypto_ns(&s.crypto),
            bytes: s
                .work
                .iter()
                .filter(|(k, _)| k.starts_with("bytes_"))
                .map(|(_, v)| *v)
                .sum(),
            leaves: s.work.get("group_leaves").copied().unwrap_or(0),
            commit_conflicts: s.crypto.get("mls_commit_conflicts").copied().unwrap_or(0),
        })
    }

    /// Messages per second the workload sent.
    pub fn offered_per_s(&self) -> f64 {
        self.sent as f64 / self.send_window_s.max(1e-9)
    }

    /// Delivered share of the deliverable messages (as summary.json's `delivered_ratio`).
    pub fn deliverable(&self) -> u64 {
        self.sent - self.unreachable.min(self.sent)
    }

    /// One of the histograms ("all" or a path kind's key), decoded.
    pub fn histogram(&self, key: &str) -> Result<Histogram<u64>, SweepError> {
        match self.histograms.get(key) {
            Some(text) => decode(self.run, text),
            None => Err(SweepError::Histogram {
                run: self.run,
                message: format!("no histogram '{key}'"),
            }),
        }
    }
}

/// The ns charged to every message crypto operation (`<runner>.<op>_ns`), media crypto
/// (`attachment_*`) left out.
fn message_crypto_ns(crypto: &BTreeMap<String, u64>) -> u64 {
    crypto
        .iter()
        .filter_map(|(k, v)| {
            let (runner, op) = k.split_once('.')?;
            let op = op.strip_suffix("_ns")?;
            let runs = runner.ends_with("_device") || runner == "gateway";
            (runs && !op.starts_with("attachment_")).then_some(*v)
        })
        .sum()
}

/// An empty auto-resizing histogram, as the ledger makes them (3 significant digits).
pub fn empty_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid histogram precision")
}

pub fn encode(run: u64, h: &Histogram<u64>) -> Result<String, SweepError> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| SweepError::Histogram {
            run,
            message: format!("{e:?}"),
        })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode(run: u64, text: &str) -> Result<Histogram<u64>, SweepError> {
    let err = |message: String| SweepError::Histogram { run, message };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| err(e.to_string()))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| err(format!("{e:?}")))?;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_losslessly() {
        let mut h = empty_histogram();
        for v in [1u64, 999, 1_000_000, 123_456_789, 90_000_000_000] {
            h.record_n(v, v % 7 + 1).expect("auto-resizing");
        }
        let text = encode(0, &h).expect("encode");
        let back = decode(0, &text).expect("decode");
        assert_eq!(back, h);
        assert_eq!(encode(0, &back).expect("encode"), text);
    }
}
