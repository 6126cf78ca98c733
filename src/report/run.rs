//! A run's results folder, complete: the deterministic files of `files`, messages.csv (with
//! `--ledger`), the plots and report.html. perf.json (wall clock) is written by the caller.

use super::files::{write_results, ReportError};
use super::html::{link, num, pass_cell, Cell, Page};
use super::labels::{fault_label, path_label};
use super::plots::bars::GroupedBars;
use super::plots::spectrum::{self, SloMark, Spectrum};
use super::plots::time::{FaultWindow, TimeFigure, TimeKind};
use super::plots::{self, Drawn, Figure};
use crate::metrics::RunResult;
use crate::metrics::{Origin, PathKind, Summary};
use crate::scenario::{Bound, Scenario};
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};

/// What to write besides the default files.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// messages.csv, one row per message.
    pub ledger: bool,
}

/// Writes summary.json, timeseries.csv, latency.hgrm, messages.csv (if asked), plots/ and
/// report.html into `dir`; returns the files written.
pub fn write_run(
    dir: &Path,
    s: &Scenario,
    r: &RunResult,
    opts: RunOptions,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = write_results(dir, r)?;
    if opts.ledger {
        let path = dir.join("messages.csv");
        super::files::write_file(
            &path,
            super::messages::messages_csv(r.ledger.records()).as_bytes(),
        )?;
        written.push(path);
    }
    let figures = draw_figures(&dir.join("plots"), s, r)?;
    let html = page(s, r, &figures, opts);
    let path = dir.join("report.html");
    super::files::write_file(&path, html.as_bytes())?;
    written.push(path);
    Ok(written)
}

/// The drawn figures, and the note that replaces the crypto figure when there is no data.
pub struct Figures {
    pub drawn: Vec<Drawn>,
    pub crypto_note: Option<String>,
}

fn draw_figures(dir: &Path, s: &Scenario, r: &RunResult) -> Result<Figures, ReportError> {
    let mut drawn = Vec::new();
    let mut add = |fig: &dyn FigureDyn| -> Result<(), ReportError> {
        drawn.push(fig.render_to(dir)?);
        Ok(())
    };
    add(&latency_spectrum(s, r))?;
    let faults = fault_windows(s, r.summary.end_time_s);
    let send_end_s = s.run.duration_ns as f64 / 1e9;
    for kind in [
        TimeKind::Percentiles,
        TimeKind::Throughput,
        TimeKind::Queues,
    ] {
        add(&TimeFigure {
            kind,
            series: &r.timeseries,
            faults: &faults,
            send_end_s,
        })?;
    }
    add(&outcomes(&r.summary))?;
    if let Some(fig) = media_spectrum(r) {
        add(&fig)?;
    }
    let crypto_note = match super::crypto::figure(&r.summary) {
        Some(fig) => {
            add(&fig)?;
            None
        }
        None => Some(
            "No crypto cost figure: this run's summary.json has no `crypto` section.".to_string(),
        ),
    };
    Ok(Figures { drawn, crypto_note })
}

/// Object-safe rendering, so that figures of different types go through one loop.
trait FigureDyn {
    fn render_to(&self, dir: &Path) -> Result<Drawn, ReportError>;
}

impl<F: Figure> FigureDyn for F {
    fn render_to(&self, dir: &Path) -> Result<Drawn, ReportError> {
        plots::render(self, dir).map_err(ReportError::Plot)
    }
}

fn latency_spectrum(s: &Scenario, r: &RunResult) -> Spectrum {
    let mut series = Vec::new();
    for p in PathKind::ALL {
        let h = &r.ledger.latency[p.index()];
        series.push(spectrum::series(path_label(p), p.index(), h));
    }
    let mut all = spectrum::series("all", 6, &r.ledger.latency_all);
    all.width = 2;
    series.push(all);
    let slos = latency_slos(s);
    let caption = if slos.is_empty() {
        "Latency from creation to display, per device delivery, by path kind (HdrHistogram percentile spectrum).".to_string()
    } else {
        "Latency from creation to display, per device delivery, by path kind (HdrHistogram percentile spectrum). The bars are the scenario's latency SLOs ([expect]): its curve must pass below each at that percentile.".to_string()
    };
    Spectrum {
        name: "latency_spectrum".to_string(),
        title: "Delivery latency by percentile".to_string(),
        caption,
        series,
        what: "delivery",
        slos,
    }
}

/// The scenario's `[expect]` latency bounds (`delivered_p99 <= 2s`, `interop.delivered_p50`,
/// ...), each at its percentile in its path's colour.
fn latency_slos(s: &Scenario) -> Vec<SloMark> {
    s.expect
        .iter()
        .filter_map(|e| {
            let Bound::AtMost(ns) = e.bound else {
                return None;
            };
            let (path, metric) = match e.key.split_once('.') {
                Some((p, m)) => (PathKind::ALL.into_iter().find(|k| k.key() == p), m),
                None => (None, e.key.as_str()),
            };
            if e.key.contains('.') && path.is_none() && !e.key.starts_with("overall.") {
                return None;
            }
            let (q, what) = match metric {
                "delivered_p50" => (0.5, "p50"),
                "delivered_p99" => (0.99, "p99"),
                "delivered_p999" => (0.999, "p99.9"),
                "delivered_max" => (1.0, "max"),
                _ => return None,
            };
            let ms = ns / 1e6;
            let (who, color) = match path {
                Some(p) => (path_label(p), plots::color(p.index())),
                None => ("all", plots::color(6)),
            };
            Some(SloMark {
                label: format!("SLO {who} {what} ≤ {}", plots::ms_label(ms)),
                q,
                ms,
                color,
            })
        })
        .collect()
}

/// The media download latency spectrum, 1:1 and group messages apart; `None` without media.
fn media_spectrum(r: &RunResult) -> Option<Spectrum> {
    let m = &r.media_latency;
    let series: Vec<_> = [("1:1", 0, &m.direct), ("group", 2, &m.group)]
        .into_iter()
        .filter_map(|(label, i, h)| {
            Some(spectrum::counted_series(label, "downloads", i, h.as_ref()?))
        })
        .collect();
    (!series.is_empty()).then(|| Spectrum {
        name: "media_download_spectrum".to_string(),
        title: "Media download latency by percentile".to_string(),
        caption: "From a media message shown on a device to its blob downloaded, verified and decrypted there, per device, 1:1 and group messages apart (HdrHistogram percentile spectrum).".to_string(),
        series,
        what: "download",
        slos: Vec::new(),
    })
}

fn outcomes(sm: &Summary) -> GroupedBars {
    let cats = [
        "delivered",
        "unreachable",
        "expired",
        "lost",
        "unsent",
        "duplicates",
    ];
    let series = PathKind::ALL
        .iter()
        .filter_map(|p| {
            let c = &sm.paths.get(p.key())?.counters;
            let values = vec![
                c.delivered as f64,
                c.unreachable as f64,
                c.expired as f64,
                c.lost as f64,
                c.unsent as f64,
                c.duplicates as f64,
            ];
            Some((path_label(*p).to_string(), values))
        })
        .filter(|(_, v)| v.iter().any(|x| *x > 0.0))
        .collect();
    GroupedBars {
        name: "outcomes".to_string(),
        title: "Message outcomes".to_string(),
        caption: "What became of each message, by path kind (log scale; duplicates are extra displays, not messages)."
            .to_string(),
        y_desc: "messages (log scale)".to_string(),
        categories: cats.iter().map(|c| c.to_string()).collect(),
        series,
        log_y: true,
    }
}

pub fn fault_windows(s: &Scenario, end_s: f64) -> Vec<FaultWindow> {
    // The swarm's faults too, drawn from the seed as the run drew them.
    let drawn = crate::faults::swarm::materialize(s);
    drawn
        .faults
        .iter()
        .map(|f| FaultWindow {
            start_s: f.at_ns as f64 / 1e9,
            end_s: f.end_ns().map_or(end_s, |e| e as f64 / 1e9),
            label: fault_label(f, &s.providers),
        })
        .collect()
}

/// Percentiles of the percentile table.
const TABLE_QUANTILES: [(f64, &str); 6] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (1.0, "max"),
];

/// One row of the percentile table, values in ms.
pub fn percentile_row(label: &str, h: &Histogram<u64>) -> Vec<Cell> {
    let mut row: Vec<Cell> = vec![label.into(), h.len().to_string().into()];
    for (q, _) in TABLE_QUANTILES {
        let v = if h.is_empty() {
            "–".to_string()
        } else if q >= 1.0 {
            format!("{:.1}", h.max() as f64 / 1e6)
        } else {
            format!("{:.1}", h.value_at_quantile(q) as f64 / 1e6)
        };
        row.push(v.into());
    }
    row
}

pub fn percentile_header() -> Vec<&'static str> {
    let mut h = vec!["path kind", "deliveries"];
    h.extend(TABLE_QUANTILES.iter().map(|(_, l)| *l));
    h
}

fn page(s: &Scenario, r: &RunResult, figs: &Figures, opts: RunOptions) -> String {
    let sm = &r.summary;
    let mut p = Page::new();
    p.h1(&format!("interop-sim run: {}", sm.scenario));
    let badge = if sm.passed {
        "<span class=\"badge pass\">PASSED</span>"
    } else {
        "<span class=\"badge fail\">FAILED</span>"
    };
    p.raw(&format!(
        "<p class=\"meta\">{badge} seed {} · scenario hash {} · fingerprint {} · interop-sim {} · {} events · {:.1} s simulated</p>",
        sm.seed, sm.scenario_hash, sm.fingerprint, sm.version, sm.events_processed, sm.end_time_s
    ));
    super::run_tables::scenario_section(&mut p, s, sm);
    p.h2("Verdict");
    for note in sm.retry_storm_notes() {
        p.para(
            "note",
            &format!("Retry storm? {note}. See the queue and utilization plots."),
        );
    }
    if sm.expect.is_empty() {
        p.para("note", "This scenario has no [expect] block.");
    } else {
        let rows: Vec<Vec<Cell>> = sm
            .expect
            .iter()
            .map(|v| {
                let key = match &v.origin {
                    Origin::Named => v.key.clone(),
                    Origin::PerPathKind { from } => {
                        format!("{} (per path kind, from {from})", v.key)
                    }
                    Origin::Always => format!("{} (always checked)", v.key),
                };
                vec![
                    key.into(),
                    v.bound.as_str().into(),
                    v.value.map_or("not measured".to_string(), num).into(),
                    pass_cell(v.ok),
                ]
            })
            .collect();
        p.table(&["expectation", "bound", "measured", "verdict"], &rows);
    }
    p.h2("Delivery latency (ms)");
    let mut rows = vec![percentile_row("all", &r.ledger.latency_all)];
    for k in PathKind::ALL {
        rows.push(percentile_row(path_label(k), &r.ledger.latency[k.index()]));
    }
    p.table(&percentile_header(), &rows);
    super::run_tables::counters_section(&mut p, sm);
    p.h2("Plots");
    for d in &figs.drawn {
        p.figure(d);
    }
    if let Some(note) = &figs.crypto_note {
        p.para("note", note);
    }
    if let Some((header, rows)) = super::crypto::table(sm, r.ledger.records()) {
        p.h2("Crypto cost");
        p.table(&header, &rows);
    }
    p.h2("Files");
    let mut files = vec![
        link("summary.json", "summary.json"),
        link("timeseries.csv", "timeseries.csv"),
        link("latency.hgrm", "latency.hgrm"),
        link("perf.json", "perf.json (wall clock)"),
    ];
    if opts.ledger {
        files.insert(2, link("messages.csv", "messages.csv"));
    }
    p.raw(&format!("<p>{}</p>", files.join(" · ")));
    p.finish(&format!("interop-sim: {}", sm.scenario))
}

#[cfg(test)]
mod tests {
    #[test]
    fn latency_bounds_are_marked_at_their_percentile_in_their_paths_colour() {
        let s = crate::scenario::test_file_with(
            "small-sweep.toml",
            &[(
                "[expect]\n",
                "[expect]\ndelivered_p99 = \"2s\"\ninterop.delivered_p50 = \"300ms\"\ngroup.delivered_max = \"1m\"\ndelivered_ratio = 0.99\n",
            )],
        );
        let marks: Vec<(String, f64, f64)> = super::latency_slos(&s)
            .into_iter()
            .map(|m| (m.label, m.q, m.ms))
            .collect();
        assert_eq!(
            marks,
            [
                ("SLO all p99 ≤ 2s".to_string(), 0.99, 2000.0),
                ("SLO cross provider p50 ≤ 300ms".to_string(), 0.5, 300.0),
                ("SLO group max ≤ 60s".to_string(), 1.0, 60000.0),
            ]
        );
    }
}
