//! A sweep's report.html: the grid, the capacity curves and a table of the grid points. The
//! sweep module computes the view (it knows runs and histograms); this module only presents it.

use super::files::{write_file, ReportError};
use super::html::{esc, link, Cell, Page};
use super::plots::capacity::{CapacityFigure, Curve, Metric};
use super::plots::designs::{DesignFigure, DesignSeries};
use super::plots::{self, Drawn};
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct SweepView {
    pub name: String,
    pub hash: String,
    pub seed: u64,
    pub keys: Vec<String>,
    /// Per key, its values as written.
    pub axis_values: Vec<Vec<String>>,
    pub repeats: u32,
    pub runs: u64,
    pub runs_passed: u64,
    pub x_desc: String,
    /// Per grid point: point, one value per key, offered/s, p50, p99, p999, ratio, passed.
    pub rows: Vec<Vec<String>>,
    pub curves: Vec<Curve>,
    pub knee_rule: String,
    /// The scenario's whole-run `[expect]` bounds on p50, p99, p99.9 (ms) and the delivered
    /// ratio, drawn as lines on the matching curves.
    pub slos: [Option<f64>; 4],
    /// With a capacity knob swept beside other keys: the smallest value that met every
    /// expectation, per combination of the others.
    pub min_capacity: Option<MinCapacity>,
    /// With `topology.design` swept beside another key: each design's cost per copy.
    pub designs: Option<DesignView>,
}

/// The interop designs compared over a swept key (see `sweep::designs`).
#[derive(Clone, Debug, PartialEq)]
pub struct DesignView {
    pub x_key: String,
    pub metrics: Vec<DesignMetric>,
}

/// One cost per delivered copy, one line per design, and where they cross.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignMetric {
    /// File stem of its plot.
    pub name: String,
    pub title: String,
    pub y_desc: String,
    pub series: Vec<DesignSeries>,
    pub crossover: Option<f64>,
    /// The crossover in one sentence, or that there is none, with the figures.
    pub sentence: String,
}

/// The "minimum capacity per load" view: one row per combination of the other keys.
#[derive(Clone, Debug, PartialEq)]
pub struct MinCapacity {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Draws the capacity plots into `dir/plots` and writes `dir/report.html`.
pub fn write(dir: &Path, v: &SweepView) -> Result<(), ReportError> {
    let plots_dir = dir.join("plots");
    let mut drawn: Vec<Drawn> = Vec::new();
    let metrics = [Metric::P50, Metric::P99, Metric::P999, Metric::Ratio];
    for (metric, slo) in metrics.into_iter().zip(v.slos) {
        let fig = CapacityFigure {
            metric,
            curves: &v.curves,
            x_desc: &v.x_desc,
            slo,
        };
        drawn.push(plots::render(&fig, &plots_dir)?);
    }
    let mut designs = Vec::new();
    for m in v.designs.iter().flat_map(|d| &d.metrics) {
        let x_desc = v.designs.as_ref().map_or("", |d| d.x_key.as_str());
        let fig = DesignFigure {
            name: &m.name,
            title: &m.title,
            x_desc,
            y_desc: &m.y_desc,
            series: &m.series,
            crossover: m.crossover,
        };
        // A figure with no point (no refused commit in the whole sweep) says nothing more
        // than its sentence.
        let empty = m.series.iter().all(|s| s.points.is_empty());
        let drawn = if empty {
            None
        } else {
            Some(plots::render(&fig, &plots_dir)?)
        };
        designs.push((m.sentence.clone(), drawn));
    }
    let html = page(v, &drawn, &designs);
    write_file(&dir.join("report.html"), html.as_bytes())
}

fn page(v: &SweepView, drawn: &[Drawn], designs: &[(String, Option<Drawn>)]) -> String {
    let mut p = Page::new();
    p.h1(&format!("interop-sim sweep: {}", v.name));
    p.raw(&format!(
        "<p class=\"meta\">sweep hash {} · base seed {} · {} runs ({} grid points × {} repeats) · {} runs met every expectation</p>",
        esc(&v.hash),
        v.seed,
        v.runs,
        v.rows.len(),
        v.repeats,
        v.runs_passed
    ));
    p.h2("Grid");
    let rows: Vec<Vec<Cell>> = v
        .keys
        .iter()
        .zip(&v.axis_values)
        .map(|(k, vals)| vec![k.as_str().into(), vals.join(", ").into()])
        .collect();
    if rows.is_empty() {
        p.para("meta", "No grid: repeats of the base scenario only.");
    } else {
        p.table(&["key", "values"], &rows);
    }
    p.raw(&format!(
        "<p>Each repeat runs with its own seed, derived from the base seed; a grid point's percentiles are of all its repeats' deliveries together (histograms merged). {}</p>",
        esc(&v.knee_rule)
    ));
    p.h2("Capacity curves");
    for d in drawn {
        p.figure(d);
    }
    if !designs.is_empty() {
        p.h2("The interop designs compared");
        for (sentence, d) in designs {
            p.raw(&format!("<p><b>{}</b></p>", esc(sentence)));
            if let Some(d) = d {
                p.figure(d);
            }
        }
    }
    if let Some(m) = &v.min_capacity {
        p.h2("Minimum capacity per load");
        p.para(
            "meta",
            "For each value of the other keys, the smallest value of the capacity knob at which every run (all repeats) met every expectation of the scenario.",
        );
        let header: Vec<&str> = m.header.iter().map(|h| h.as_str()).collect();
        let rows: Vec<Vec<Cell>> = m
            .rows
            .iter()
            .map(|r| r.iter().map(|c| Cell::from(c.as_str())).collect())
            .collect();
        p.table(&header, &rows);
    }
    p.h2("Grid points");
    let mut header: Vec<&str> = vec!["point"];
    header.extend(v.keys.iter().map(|k| k.as_str()));
    header.extend([
        "offered/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "delivered ratio",
        "runs passed",
    ]);
    let rows: Vec<Vec<Cell>> = v
        .rows
        .iter()
        .map(|r| r.iter().map(|c| Cell::from(c.as_str())).collect())
        .collect();
    p.table(&header, &rows);
    p.h2("Files");
    p.raw(&format!(
        "<p>{} (one row per run) · {} (every run, with its latency histograms in HdrHistogram V2 form, base64)</p>",
        link("sweep.csv", "sweep.csv"),
        link("runs.json", "runs.json")
    ));
    p.finish(&format!("interop-sim sweep: {}", v.name))
}
