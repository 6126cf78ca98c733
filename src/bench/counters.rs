//! Work counters per CI scenario, held against a committed baseline. A scenario run is
//! deterministic, so its counters (events, messages, bytes per hop class, crypto operations,
//! the fingerprint) are exact: any difference is a behaviour change, reported per counter with
//! the old and new value, and accepted by `bench update`, whose diff of
//! `benches/baseline/<scenario>.json` is reviewed in the commit like code.
//!
//! Extraction is generic over summary.json so that a counter added to the simulator shows up
//! after the next `bench update` without touching this file: every integer of `work`, every
//! integer (at any depth) of `crypto` when present, every integer of each `paths` entry, every
//! top-level integer whose key starts with [`TOP_LEVEL_PREFIX`] (the media counters), and the
//! fixed list [`TOP_LEVEL`].

use super::{write_if_changed, BenchError};
use crate::scenario;
use crate::sim;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Top-level summary.json keys taken as counters (integers, and the fingerprint).
pub const TOP_LEVEL: &[&str] = &[
    "fingerprint",
    "events_processed",
    "sent",
    "delivered",
    "lost",
    "duplicates",
    "out_of_order",
    "decrypt_failures",
    "unreachable",
    "expired",
    "unsent",
    "queued_at_end",
    "failed",
    "samples",
    "tamper_detected",
    "replay_rejected",
    "duplicates_suppressed",
    "read",
];

/// Top-level integer keys with this prefix are counters too (`media_uploads`, ...; the media
/// latencies are floats and stay out).
pub const TOP_LEVEL_PREFIX: &str = "media_";

/// Maps whose integers are all counters, flattened as `map.key` (`crypto` may nest).
const COUNTER_MAPS: &[&str] = &["work", "crypto", "paths"];

/// Scenario files whose name starts with this are not CI scenarios (too big to run per change).
const SKIPPED_PREFIX: &str = "scale-";

/// A counter's value: an integer, or a string for the fingerprint.
pub type Counters = BTreeMap<String, Value>;

/// `benches/baseline/<scenario>.json`: keys sorted, as `serde_json` writes a struct and a
/// `BTreeMap`; fields in alphabetical order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub counters: Counters,
    /// Context only: a changed scenario file explains changed counters.
    pub scenario_hash: String,
}

/// One counter that differs; `None` on one side when the counter is new or gone.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterDiff {
    pub counter: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl fmt::Display for CounterDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or("(none)".to_string(), Value::to_string);
        write!(
            f,
            "{}: {} -> {}",
            self.counter,
            show(&self.old),
            show(&self.new)
        )?;
        if let (Some(old), Some(new)) = (
            self.old.as_ref().and_then(Value::as_i64),
            self.new.as_ref().and_then(Value::as_i64),
        ) {
            write!(f, " ({:+})", new - old)?;
        }
        Ok(())
    }
}

/// The verdict for one scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioCheck {
    /// The scenario file's stem, which names its baseline file.
    pub scenario: String,
    /// `None`: no baseline file yet.
    pub baseline_hash: Option<String>,
    pub scenario_hash: String,
    pub diffs: Vec<CounterDiff>,
    /// A baseline file whose scenario is gone (`bench update` deletes it).
    pub stale: bool,
}

impl ScenarioCheck {
    pub fn passed(&self) -> bool {
        !self.stale && self.baseline_hash.is_some() && self.diffs.is_empty()
    }

    /// Lines for the terminal: one per differing counter, each naming the scenario.
    pub fn report(&self) -> Vec<String> {
        if self.stale {
            return vec![format!(
                "{}: a baseline without a CI scenario (`interop-sim bench update` deletes it)",
                self.scenario
            )];
        }
        let Some(old_hash) = &self.baseline_hash else {
            return vec![format!(
                "{}: no baseline (run `interop-sim bench update`)",
                self.scenario
            )];
        };
        let mut lines: Vec<String> = self
            .diffs
            .iter()
            .map(|d| format!("{}: {d}", self.scenario))
            .collect();
        if !lines.is_empty() && *old_hash != self.scenario_hash {
            lines.push(format!(
                "{}: note: the scenario itself changed (hash {old_hash} -> {})",
                self.scenario, self.scenario_hash
            ));
        }
        lines
    }
}

/// The CI scenarios of a folder: every `*.toml` except `scale-*` and plans run as a slice (a
/// `[plan] slice` above 1: the file describes a population too large to run whole), sorted by
/// file name.
pub fn ci_scenarios(dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| BenchError::Scenario(format!("{}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| BenchError::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".toml") && !name.starts_with(SKIPPED_PREFIX) && !sliced_plan(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `path` is a scenario whose `[plan]` runs as a slice (an unreadable file is not: the
/// run reports it).
fn sliced_plan(path: &Path) -> bool {
    crate::scenario::load(path).is_ok_and(|s| s.plan.is_some_and(|p| p.slice > 1))
}

/// The counters of a summary, as summary.json has them (see the module doc).
pub fn extract(summary_json: &Value) -> Counters {
    let mut counters = Counters::new();
    for &key in TOP_LEVEL {
        match summary_json.get(key) {
            Some(v @ Value::String(_)) => {
                counters.insert(key.to_string(), v.clone());
            }
            Some(v) if v.is_u64() || v.is_i64() => {
                counters.insert(key.to_string(), v.clone());
            }
            _ => {}
        }
    }
    if let Some(top) = summary_json.as_object() {
        for (key, v) in top {
            if key.starts_with(TOP_LEVEL_PREFIX) && (v.is_u64() || v.is_i64()) {
                counters.insert(key.clone(), v.clone());
            }
        }
    }
    for &map in COUNTER_MAPS {
        if let Some(v) = summary_json.get(map) {
            flatten_integers(map, v, &mut counters);
        }
    }
    counters
}

fn flatten_integers(prefix: &str, v: &Value, out: &mut Counters) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                flatten_integers(&format!("{prefix}.{k}"), child, out);
            }
        }
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            out.insert(prefix.to_string(), v.clone());
        }
        _ => {}
    }
}

/// Runs one scenario file and returns its name (the file stem), counters and scenario hash.
pub fn measure(file: &Path) -> Result<(String, Baseline), BenchError> {
    let s = scenario::load(file).map_err(|e| BenchError::Scenario(e.to_string()))?;
    let hash = scenario::hash(&s);
    let result = sim::run_scenario(&s, &hash);
    let json = serde_json::to_value(&result.summary).map_err(|e| BenchError::BadFile {
        path: file.to_path_buf(),
        message: format!("summary does not serialize: {e}"),
    })?;
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    Ok((
        name,
        Baseline {
            counters: extract(&json),
            scenario_hash: hash,
        },
    ))
}

/// Runs every CI scenario of `scenarios`, two at a time, in file-name order.
pub fn measure_all(scenarios: &Path) -> Result<Vec<(String, Baseline)>, BenchError> {
    let files = ci_scenarios(scenarios)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let mut slots: Vec<Option<Result<(String, Baseline), BenchError>>> =
        (0..files.len()).map(|_| None).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(file) = files.get(i) else { break };
                let r = measure(file);
                done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|r| r.expect("every scenario was measured"))
        .collect()
}

/// The baseline file of a scenario.
pub fn baseline_path(baseline_dir: &Path, scenario: &str) -> PathBuf {
    baseline_dir.join(format!("{scenario}.json"))
}

/// The file text: sorted keys, two-space indent, one trailing newline; byte-identical for
/// identical counters.
pub fn render(b: &Baseline) -> String {
    let mut text = serde_json::to_string_pretty(b).expect("counters serialize");
    text.push('\n');
    text
}

pub fn read_baseline(path: &Path) -> Result<Option<Baseline>, BenchError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BenchError::io(path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| BenchError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Every counter that differs between the baseline and a fresh run, in key order.
pub fn diff(old: &Counters, new: &Counters) -> Vec<CounterDiff> {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| CounterDiff {
            counter: k.clone(),
            old: old.get(k).cloned(),
            new: new.get(k).cloned(),
        })
        .collect()
}

/// `bench check`: re-runs every CI scenario and compares it with its baseline file.
pub fn check(scenarios: &Path, baseline_dir: &Path) -> Result<Vec<ScenarioCheck>, BenchError> {
    let mut checks = Vec::new();
    for (scenario, fresh) in measure_all(scenarios)? {
        let old = read_baseline(&baseline_path(baseline_dir, &scenario))?;
        checks.push(ScenarioCheck {
            diffs: old
                .as_ref()
                .map_or_else(Vec::new, |o| diff(&o.counters, &fresh.counters)),
            baseline_hash: old.map(|o| o.scenario_hash),
            scenario_hash: fresh.scenario_hash,
            scenario,
            stale: false,
        });
    }
    let names: Vec<String> = checks.iter().map(|c| c.scenario.clone()).collect();
    for scenario in stale_baselines(baseline_dir, &names)? {
        checks.push(ScenarioCheck {
            scenario,
            baseline_hash: None,
            scenario_hash: String::new(),
            diffs: Vec::new(),
            stale: true,
        });
    }
    Ok(checks)
}

/// Counter baseline files (those that parse as [`Baseline`]; the folder also holds
/// instructions.json) whose scenario is not among `scenarios`, by name.
fn stale_baselines(baseline_dir: &Path, scenarios: &[String]) -> Result<Vec<String>, BenchError> {
    let entries = match std::fs::read_dir(baseline_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BenchError::io(baseline_dir, e)),
    };
    let mut stale = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| BenchError::io(baseline_dir, e))?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json && !scenarios.iter().any(|s| s == stem) && read_baseline(&path).is_ok() {
            stale.push(stem.to_string());
        }
    }
    stale.sort();
    Ok(stale)
}

/// `bench update`: re-runs every CI scenario and rewrites its baseline file, and deletes the
/// baseline files of scenarios that are gone; returns each scenario with whether its file
/// changed.
pub fn update(scenarios: &Path, baseline_dir: &Path) -> Result<Vec<(String, bool)>, BenchError> {
    let mut written = Vec::new();
    for (scenario, fresh) in measure_all(scenarios)? {
        let changed = write_if_changed(&baseline_path(baseline_dir, &scenario), &render(&fresh))?;
        written.push((scenario, changed));
    }
    let names: Vec<String> = written.iter().map(|(n, _)| n.clone()).collect();
    for scenario in stale_baselines(baseline_dir, &names)? {
        let path = baseline_path(baseline_dir, &scenario);
        std::fs::remove_file(&path).map_err(|e| BenchError::io(&path, e))?;
        written.push((format!("{scenario} (deleted)"), true));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_is_generic_over_work_and_crypto() {
        let summary = serde_json::json!({
            "fingerprint": "abc",
            "delivered": 7,
            "delivered_ratio": 1.0,
            "work": {"bytes_client_server": 10, "ratio": 0.5},
            "crypto": {"encrypt": 3, "x3dh": {"initiate": 1}},
            "paths": {"interop": {"sent": 2, "delivered_p50": 1.5}},
            "nodes": {"gateway": {"utilization_mean": 0.1}},
            "media_uploads": 4,
            "media_download_p99": 12.5,
        });
        let c = extract(&summary);
        let keys: Vec<&str> = c.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "crypto.encrypt",
                "crypto.x3dh.initiate",
                "delivered",
                "fingerprint",
                "media_uploads",
                "paths.interop.sent",
                "work.bytes_client_server"
            ]
        );
    }

    #[test]
    fn diff_names_changed_new_and_gone_counters() {
        let old: Counters = [("a", 1), ("b", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect();
        let new: Counters = [("b", 3), ("c", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect();
        let lines: Vec<String> = diff(&old, &new).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            ["a: 1 -> (none)", "b: 2 -> 3 (+1)", "c: (none) -> 4"]
        );
    }

    #[test]
    fn render_sorts_keys_and_round_trips() {
        let b = Baseline {
            counters: [("z", 1), ("a", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::from(v)))
                .collect(),
            scenario_hash: "h".into(),
        };
        let text = render(&b);
        assert!(text.find("\"a\"").unwrap() < text.find("\"z\"").unwrap());
        assert_eq!(serde_json::from_str::<Baseline>(&text).unwrap(), b);
    }
}
