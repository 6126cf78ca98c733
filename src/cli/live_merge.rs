//! `interop-sim live-merge FILE LOGS`: load generators' latency logs merged losslessly and
//! judged against [expect].

use super::{load, Outcome};
use std::path::{Path, PathBuf};

pub fn live_merge(file: &Path, logs: &[PathBuf], out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let mut inputs = Vec::new();
    for p in logs {
        let path = if p.is_dir() {
            p.join("latency.hlog")
        } else {
            p.clone()
        };
        match std::fs::read(&path) {
            Ok(b) => inputs.push((path.display().to_string(), b)),
            Err(e) => {
                eprintln!("interop-sim live-merge: {}: {e}", path.display());
                return Ok(Outcome::Invalid);
            }
        }
    }
    let merged = match interop_sim::live::remote::merge_logs(&inputs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("interop-sim live-merge: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let hash = interop_sim::scenario::hash(&s);
    let summary = interop_sim::live::remote::merged_summary(&s, &hash, &merged);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-merged", s.run.name)));
    interop_sim::live::output::write_merged(&out, &summary, &merged)?;
    println!(
        "merged {} logs ({} intervals): sent {}, delivered {}, lost {}, duplicates {}",
        merged.logs,
        merged.intervals,
        merged.counters.sent,
        merged.counters.delivered,
        merged.counters.lost,
        merged.counters.duplicates
    );
    print!(
        "{}",
        interop_sim::report::screen::render(
            &summary,
            &out.display().to_string(),
            &file.display().to_string(),
        )
    );
    Ok(if summary.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
