//! A live run's results folder: the same files as a simulated run (summary.json,
//! timeseries.csv, latency.hgrm with the corrected latency), plus live.json (rates, schedule
//! lag, uncorrected percentiles, the gateway probe), latency-uncorrected.hgrm, and
//! latency.hlog (HdrHistogram interval log of the corrected latency, for `live-merge`).

use super::outcome::LiveOutcome;
use crate::report::files::percentile_distribution;
use crate::report::ReportError;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The interval log of `intervals` (values in ns), one histogram per interval.
pub fn hlog(intervals: &[(u64, u64, Histogram<u64>)], comment: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut ser = V2Serializer::new();
    let mut w = IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .add_comment("interop-sim live: corrected delivery latency, ns")
        .begin_log_with(&mut buf, &mut ser)
        .expect("writing to a Vec cannot fail");
    for (start, end, h) in intervals {
        let _ = w.write_histogram(
            h,
            Duration::from_nanos(*start),
            Duration::from_nanos(end - start),
            Tag::new("delivery"),
        );
    }
    buf
}

/// Writes the results folder of a live run of `s` (the scenario as it ran, scaled): the
/// simulator's files and report.html, then what only live has.
pub fn write_live_results(
    dir: &Path,
    s: &crate::scenario::Scenario,
    out: &LiveOutcome,
) -> Result<Vec<PathBuf>, ReportError> {
    let opts = crate::report::RunOptions { ledger: false };
    let mut written = crate::report::write_run(dir, s, &out.result, opts)?;
    let live = dir.join("live.json");
    let mut text = serde_json::to_string_pretty(&out.report).map_err(|e| ReportError::Encode {
        path: live.clone(),
        message: e.to_string(),
    })?;
    text.push('\n');
    std::fs::write(&live, text).map_err(io(&live))?;
    written.push(live);
    let unc = dir.join("latency-uncorrected.hgrm");
    let h = &out.uncorrected;
    std::fs::write(&unc, percentile_distribution(h)).map_err(io(&unc))?;
    written.push(unc);
    let log = dir.join("latency.hlog");
    let comment = out.log_counters().comment();
    std::fs::write(&log, hlog(&out.intervals, &comment)).map_err(io(&log))?;
    written.push(log);
    Ok(written)
}

/// Writes `live-merge`'s folder: summary.json and latency.hgrm of the merged logs.
pub fn write_merged(
    dir: &Path,
    summary: &crate::metrics::Summary,
    merged: &super::remote::Merged,
) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("summary.json");
    let json = crate::report::files::summary_json(summary, &path)?;
    std::fs::write(&path, json).map_err(io(&path))?;
    let path = dir.join("latency.hgrm");
    std::fs::write(&path, percentile_distribution(&merged.latency)).map_err(io(&path))?;
    Ok(())
}
