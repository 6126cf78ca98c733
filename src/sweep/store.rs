//! A sweep's files: sweep.csv (one row per run, in run order), runs.json (every run's record
//! with its lossless histograms), shard.json (one shard's records, with the resolved scenario
//! so that `merge` needs nothing else), and the merge of shards into the unsharded output.

use super::curves;
use super::plan::{Plan, Shard};
use super::record::{RunRecord, ALL};
use super::SweepError;
use crate::metrics::PathKind;
use crate::scenario::{self, Scenario};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Format tag of shard.json; bumped when the record changes shape.
pub const SHARD_FORMAT: &str = "interop-sim-shard/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub format: String,
    pub sweep_hash: String,
    pub shard: u32,
    pub shards: u32,
    pub runs_total: u64,
    /// The resolved scenario, [sweep] included (`interop-sim check` output).
    pub scenario_toml: String,
    pub runs: Vec<RunRecord>,
}

/// runs.json: the whole sweep's records.
#[derive(Serialize)]
struct RunsFile<'a> {
    sweep_hash: &'a str,
    scenario: &'a str,
    keys: Vec<&'a str>,
    runs: &'a [RunRecord],
}

fn write(path: PathBuf, bytes: &[u8]) -> Result<(), SweepError> {
    std::fs::write(&path, bytes).map_err(|source| SweepError::Write { path, source })
}

fn create_dir(dir: &Path) -> Result<(), SweepError> {
    std::fs::create_dir_all(dir).map_err(|source| SweepError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn json<T: Serialize>(value: &T) -> String {
    // Records hold only strings, numbers and maps with string keys: serialization cannot fail.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// What a whole sweep (run here, or merged from shards) writes.
pub struct SweepOutput<'a> {
    pub base: &'a Scenario,
    pub hash: &'a str,
    pub records: &'a [RunRecord],
}

/// Writes sweep.csv, runs.json, plots/ and report.html into `dir`.
pub fn write_sweep(dir: &Path, out: &SweepOutput<'_>) -> Result<(), SweepError> {
    create_dir(dir)?;
    let keys: Vec<&str> = axes(out.base).iter().map(|a| a.key.as_str()).collect();
    write(
        dir.join("sweep.csv"),
        sweep_csv(&keys, out.records)?.as_bytes(),
    )?;
    let runs = RunsFile {
        sweep_hash: out.hash,
        scenario: &out.base.run.name,
        keys: keys.clone(),
        runs: out.records,
    };
    write(dir.join("runs.json"), json(&runs).as_bytes())?;
    let view = curves::view(out.base, out.hash, out.records)?;
    crate::report::sweep_page::write(dir, &view)?;
    Ok(())
}

fn axes(s: &Scenario) -> &[crate::scenario::SweepAxis] {
    s.sweep.as_ref().map_or(&[], |sw| sw.axes.as_slice())
}

/// One row per run. Latencies in ms from the run's histograms.
pub fn sweep_csv(keys: &[&str], records: &[RunRecord]) -> Result<String, SweepError> {
    let mut out = String::from("run,point,repeat,seed");
    for k in keys {
        let _ = write!(out, ",{}", csv_field(k));
    }
    out.push_str(",offered_per_s,sent,delivered,lost,duplicates,unreachable,expired,unsent,delivered_ratio,messages_delivered_per_s_mean,device_deliveries_per_s_mean,delivered_p50_ms,delivered_p99_ms,delivered_p999_ms,delivered_max_ms");
    for p in PathKind::ALL {
        let _ = write!(out, ",{}_p99_ms", p.key());
    }
    out.push_str(",gateway_utilization_peak,chat_server_utilization_peak,adapter_utilization_peak,passed,fingerprint\n");
    for r in records {
        let _ = write!(out, "{},{},{},{}", r.run, r.point, r.repeat, r.seed);
        for l in &r.labels {
            let _ = write!(out, ",{}", csv_field(l));
        }
        let all = r.histogram(ALL)?;
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            if h.is_empty() {
                String::new()
            } else {
                format!("{:.3}", h.value_at_quantile(q) as f64 / 1e6)
            }
        };
        let max = if all.is_empty() {
            String::new()
        } else {
            format!("{:.3}", all.max() as f64 / 1e6)
        };
        let ratio = if r.deliverable() == 0 {
            1.0
        } else {
            r.delivered as f64 / r.deliverable() as f64
        };
        let _ = write!(
            out,
            ",{:.3},{},{},{},{},{},{},{},{:.6},{:.3},{:.3},{},{},{},{}",
            r.offered_per_s(),
            r.sent,
            r.delivered,
            r.lost,
            r.duplicates,
            r.unreachable,
            r.expired,
            r.unsent,
            ratio,
            r.messages_delivered_per_s_mean,
            r.device_deliveries_per_s_mean,
            q(&all, 0.5),
            q(&all, 0.99),
            q(&all, 0.999),
            max
        );
        for p in PathKind::ALL {
            let _ = write!(out, ",{}", q(&r.histogram(p.key())?, 0.99));
        }
        for node in ["gateway", "chat_server", "adapter"] {
            let peak = r
                .utilization
                .get(node)
                .map_or(String::new(), |u| format!("{:.4}", u.1));
            let _ = write!(out, ",{peak}");
        }
        let _ = writeln!(out, ",{},{}", r.passed, r.fingerprint);
    }
    Ok(out)
}

/// Quotes a CSV field when it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes one shard's records to `dir/shard.json`.
pub fn write_shard(
    dir: &Path,
    plan: &Plan,
    shard: Shard,
    records: &[RunRecord],
) -> Result<PathBuf, SweepError> {
    create_dir(dir)?;
    let file = ShardFile {
        format: SHARD_FORMAT.to_string(),
        sweep_hash: plan.hash.clone(),
        shard: shard.index,
        shards: shard.count,
        runs_total: plan.runs.len() as u64,
        scenario_toml: scenario::to_toml(&plan.base),
        runs: records.to_vec(),
    };
    let path = dir.join("shard.json");
    write(path.clone(), json(&file).as_bytes())?;
    Ok(path)
}

/// Reads `dir/shard.json` (or the file itself if `path` is one).
pub fn read_shard(path: &Path) -> Result<ShardFile, SweepError> {
    let path = if path.is_dir() {
        path.join("shard.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SweepError::Read {
        path: path.clone(),
        source,
    })?;
    let file: ShardFile = serde_json::from_str(&text).map_err(|e| SweepError::BadShardFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if file.format != SHARD_FORMAT {
        return Err(SweepError::BadShardFile {
            path,
            message: format!("format {:?}, expected {SHARD_FORMAT:?}", file.format),
        });
    }
    Ok(file)
}

/// The merged sweep: its scenario, hash and every record in run order.
pub struct Merged {
    pub base: Scenario,
    pub hash: String,
    pub records: Vec<RunRecord>,
}

/// Combines the shards of one sweep, checking that they are all there, once each.
pub fn merge(shards: Vec<ShardFile>) -> Result<Merged, SweepError> {
    let first = shards
        .first()
        .ok_or_else(|| SweepError::Mismatch("no shard given".to_string()))?;
    let (hash, count, total) = (first.sweep_hash.clone(), first.shards, first.runs_total);
    let mut seen = vec![false; count as usize];
    for s in &shards {
        if s.sweep_hash != hash || s.shards != count || s.runs_total != total {
            return Err(SweepError::Mismatch(format!(
                "shard {}/{} is of another sweep (hash {}, {} shards) than shard {}/{} (hash {hash}, {count} shards)",
                s.shard, s.shards, s.sweep_hash, s.shards, first.shard, first.shards
            )));
        }
        match seen.get_mut(s.shard as usize) {
            Some(slot) if !*slot => *slot = true,
            _ => {
                return Err(SweepError::Mismatch(format!(
                    "shard {}/{} is given twice or is out of range",
                    s.shard, s.shards
                )))
            }
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|k| !seen[*k as usize])
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(SweepError::Mismatch(format!(
            "missing shard(s) {}",
            missing.join(", ")
        )));
    }
    let base = scenario::parse(&first.scenario_toml, "shard.json scenario").map_err(|e| {
        SweepError::Mismatch(format!("the scenario in the shard files is invalid: {e}"))
    })?;
    if scenario::hash(&base) != hash {
        return Err(SweepError::Mismatch(
            "the scenario in the shard files does not match their sweep hash".to_string(),
        ));
    }
    let mut records: Vec<RunRecord> = shards.into_iter().flat_map(|s| s.runs).collect();
    records.sort_by_key(|r| r.run);
    let in_order = records.iter().enumerate().all(|(i, r)| r.run == i as u64);
    if records.len() as u64 != total || !in_order {
        return Err(SweepError::Mismatch(format!(
            "the shards hold {} runs, expected runs 0..{total} once each",
            records.len()
        )));
    }
    Ok(Merged {
        base,
        hash,
        records,
    })
}
