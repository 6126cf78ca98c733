//! Writing the results folder.

use crate::metrics::RunResult;
use crate::metrics::{Summary, TimeSeries};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {message}")]
    Encode { path: PathBuf, message: String },
    /// An input of `compare` (a results folder) is missing or unreadable: bad input, exit 2.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("plot: {0}")]
    Plot(#[from] super::plots::PlotError),
}

/// Writes a whole file, naming it in the error.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    write(path, bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes summary.json, timeseries.csv and latency.hgrm into `dir` (created if missing).
pub fn write_results(dir: &Path, r: &RunResult) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let summary = dir.join("summary.json");
    write(&summary, summary_json(&r.summary, &summary)?.as_bytes())?;
    written.push(summary);
    let ts = dir.join("timeseries.csv");
    write(&ts, timeseries_csv(&r.timeseries, &ts)?.as_bytes())?;
    written.push(ts);
    let hgrm = dir.join("latency.hgrm");
    write(
        &hgrm,
        percentile_distribution(&r.ledger.latency_all).as_bytes(),
    )?;
    written.push(hgrm);
    Ok(written)
}

pub fn summary_json(s: &Summary, path: &Path) -> Result<String, ReportError> {
    let mut out = serde_json::to_string_pretty(s).map_err(|e| ReportError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    out.push('\n');
    Ok(out)
}

pub fn timeseries_csv(ts: &TimeSeries, path: &Path) -> Result<String, ReportError> {
    let enc = |e: csv::Error| ReportError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(TimeSeries::HEADER).map_err(enc)?;
    for r in &ts.rows {
        w.write_record([
            format!("{:.3}", r.t_s),
            r.sent.to_string(),
            r.messages_delivered.to_string(),
            r.device_deliveries.to_string(),
            r.in_flight.to_string(),
            r.offline_queue.to_string(),
            r.gateway_queue.to_string(),
            format!("{:.4}", r.gateway_utilization),
            format!("{:.4}", r.chat_server_utilization),
            format!("{:.4}", r.adapter_utilization),
            optional_ms(r.latency.p50_ms),
            optional_ms(r.latency.p99_ms),
            optional_ms(r.latency.max_ms),
        ])
        .map_err(enc)?;
    }
    let bytes = w.into_inner().map_err(|e| ReportError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| ReportError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A latency cell: empty when the interval delivered nothing.
fn optional_ms(ms: Option<f64>) -> String {
    ms.map_or(String::new(), |v| format!("{v:.3}"))
}

/// HdrHistogram's percentile-distribution text format (what `HistogramLogProcessor` writes and
/// its online plotter reads), with values in milliseconds.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1e6; // ns -> ms
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        let _ = writeln!(
            out,
            "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
            0.0, 0.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:>12.3}, Total count    = {:>12}]",
            0.0, 0
        );
        return out;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let value = h.highest_equivalent(v.value_iterated_to()) as f64 / SCALE;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{:>12.3} {:>2.12} {:>10} {:>14.2}",
                value,
                q,
                cumulative(h, v.value_iterated_to()),
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{:>12.3} {:>2.12} {:>10}", value, q, h.len());
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / SCALE,
        h.stdev() / SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / SCALE,
        h.len()
    );
    out
}

/// Count of recorded values at or below `value`.
fn cumulative(h: &Histogram<u64>, value: u64) -> u64 {
    h.count_between(0, value)
}
