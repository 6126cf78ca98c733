//! The instruction gate: the hot paths of [`super::hotpaths`] run under valgrind's callgrind
//! through gungraun (`benches/instructions.rs`), and their instruction counts are held against
//! `benches/baseline/instructions.json`. Instruction counts do not depend on the machine's load,
//! so a small threshold ([`TOLERANCE_PERCENT`]) catches a real regression (one extra HMAC per
//! message) without flaking; they do depend on the compiler and the dependencies' versions, so
//! a toolchain or `Cargo.lock` update is followed by `bench instructions --update`, reviewed
//! like any baseline change.

use super::{write_if_changed, BenchError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

/// More extra instructions than this, in percent of the baseline, fails the gate.
pub const TOLERANCE_PERCENT: u64 = 2;

/// The gungraun bench target that counts the hot paths.
pub const BENCH_TARGET: &str = "instructions";

/// Instructions per hot path, by benchmark function name.
pub type Counts = BTreeMap<String, u64>;

/// `benches/baseline/instructions.json` (and the fresh count file): sorted keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CountFile {
    /// Instructions (callgrind `Ir`) of one counted run of each hot path.
    pub instructions: Counts,
}

pub fn render(counts: &Counts) -> String {
    let file = CountFile {
        instructions: counts.clone(),
    };
    let mut text = serde_json::to_string_pretty(&file).expect("counts serialize");
    text.push('\n');
    text
}

pub fn read(path: &Path) -> Result<Option<Counts>, BenchError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BenchError::io(path, e)),
    };
    serde_json::from_str::<CountFile>(&text)
        .map(|f| Some(f.instructions))
        .map_err(|e| BenchError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// Writes a count file; returns whether it changed.
pub fn write(path: &Path, counts: &Counts) -> Result<bool, BenchError> {
    write_if_changed(path, &render(counts))
}

/// Runs `cargo bench --bench instructions` (with extra cargo `features`, for the demo of a
/// deliberately slower build) and returns its counts. cargo's and gungraun's progress go to
/// stderr; gungraun's JSON summary lines come back on stdout.
pub fn measure(features: Option<&str>) -> Result<Counts, BenchError> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["bench", "--bench", BENCH_TARGET]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    cmd.args(["--", "--output-format=json"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .map_err(|e| BenchError::Callgrind(format!("cannot run cargo bench: {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Callgrind(format!(
            "cargo bench --bench {BENCH_TARGET} failed ({}); is valgrind installed, and \
             gungraun-runner 0.19.3 on the PATH?",
            out.status
        )));
    }
    parse_gungraun_json(&String::from_utf8_lossy(&out.stdout))
}

/// Instruction counts from gungraun's `--output-format=json` lines (schema v6: one summary
/// per benchmark; the callgrind profile's total `Ir`, current run first).
pub fn parse_gungraun_json(text: &str) -> Result<Counts, BenchError> {
    let bad = |message: String| BenchError::Callgrind(format!("gungraun output: {message}"));
    let mut counts = Counts::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let summary: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let name = summary
            .get("function_name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a summary without function_name".into()))?;
        let ir = callgrind_ir(&summary)
            .ok_or_else(|| bad(format!("{name}: no callgrind instruction count")))?;
        if counts.insert(name.to_string(), ir).is_some() {
            return Err(bad(format!("{name} appears twice")));
        }
    }
    if counts.is_empty() {
        return Err(bad("no benchmark summaries".into()));
    }
    Ok(counts)
}

fn callgrind_ir(summary: &Value) -> Option<u64> {
    let profiles = summary.get("profiles")?.as_array()?;
    let callgrind = profiles
        .iter()
        .find(|p| p.get("tool").and_then(Value::as_str) == Some("Callgrind"))?;
    let metrics = callgrind
        .pointer("/summaries/total/summary/Callgrind/Ir/metrics")?
        .as_object()?;
    // EitherOrBoth: `Left` is this run alone, `Both` is [this run, the previous run].
    let current = metrics
        .get("Left")
        .or_else(|| metrics.get("Both").and_then(|b| b.get(0)))?;
    current.get("Int")?.as_u64()
}

/// One hot path's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct GateLine {
    pub name: String,
    pub old: Option<u64>,
    pub new: Option<u64>,
}

impl GateLine {
    /// Fails on more than [`TOLERANCE_PERCENT`] extra instructions, or a hot path missing on
    /// one side.
    pub fn passed(&self) -> bool {
        match (self.old, self.new) {
            (Some(old), Some(new)) => {
                u128::from(new) * 100 <= u128::from(old) * u128::from(100 + TOLERANCE_PERCENT)
            }
            _ => false,
        }
    }

    /// Change in percent of the baseline.
    pub fn change_percent(&self) -> Option<f64> {
        match (self.old, self.new) {
            (Some(old), Some(new)) if old > 0 => {
                Some((new as f64 - old as f64) * 100.0 / old as f64)
            }
            _ => None,
        }
    }
}

impl fmt::Display for GateLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        match (self.old, self.new) {
            (Some(old), Some(new)) => write!(
                f,
                "{:<24} {:>13} -> {:>13} instructions ({:+.3} %) {verdict}",
                self.name,
                old,
                new,
                self.change_percent().unwrap_or(0.0)
            ),
            (None, Some(new)) => write!(
                f,
                "{:<24} {new:>13} instructions: not in the baseline {verdict}",
                self.name
            ),
            (Some(old), None) => write!(
                f,
                "{:<24} {old:>13} instructions in the baseline, not measured {verdict}",
                self.name
            ),
            (None, None) => write!(f, "{}: nothing", self.name),
        }
    }
}

/// Every hot path of either side, in name order.
pub fn gate(old: &Counts, new: &Counts) -> Vec<GateLine> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| GateLine {
            name: n.clone(),
            old: old.get(n).copied(),
            new: new.get(n).copied(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn gate_fails_above_two_percent_only() {
        let old = counts(&[("a", 10_000), ("b", 10_000), ("c", 10_000), ("gone", 1)]);
        let new = counts(&[("a", 10_200), ("b", 10_201), ("c", 5_000), ("new", 1)]);
        let verdicts: Vec<(String, bool)> = gate(&old, &new)
            .into_iter()
            .map(|g| (g.name.clone(), g.passed()))
            .collect();
        let expected = [
            ("a", true),
            ("b", false),
            ("c", true),
            ("gone", false),
            ("new", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        assert_eq!(verdicts, expected);
    }

    #[test]
    fn parses_gungraun_summaries_first_and_later_runs() {
        let line = |name: &str, metrics: &str| {
            format!(
                r#"{{"function_name":"{name}","profiles":[{{"tool":"Callgrind","summaries":{{"total":{{"summary":{{"Callgrind":{{"Ir":{{"diffs":null,"metrics":{metrics}}}}}}}}}}}}}]}}"#
            )
        };
        let text = format!(
            "{}\n{}\n",
            line("x3dh", r#"{"Left":{"Int":123}}"#),
            line("wire_decode", r#"{"Both":[{"Int":7},{"Int":9}]}"#)
        );
        assert_eq!(
            parse_gungraun_json(&text).unwrap(),
            counts(&[("wire_decode", 7), ("x3dh", 123)])
        );
        assert!(parse_gungraun_json("").is_err());
    }

    #[test]
    fn count_file_round_trips_sorted() {
        let c = counts(&[("z", 1), ("a", 2)]);
        let text = render(&c);
        assert!(text.find("\"a\"").unwrap() < text.find("\"z\"").unwrap());
        let f: CountFile = serde_json::from_str(&text).unwrap();
        assert_eq!(f.instructions, c);
    }
}
