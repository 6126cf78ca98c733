//! `validate.html`: per load level, the simulated and live latency spectra overlaid and the
//! table of judged figures, and, for a ladder, the saturation search. The live module computes
//! the view (it knows both runs); this module only presents it.

use super::files::{write_file, ReportError};
use super::html::{esc, link, pass_cell, Cell, Page};
use super::plots::spectrum::{Series, Spectrum};
use super::plots::{self, Drawn};
use std::path::Path;

#[derive(Clone, Debug)]
pub struct ValidateView {
    pub title: String,
    pub meta: String,
    /// A ladder's saturation search: its rule, and per probe (rate, delivered/s, p99 ms,
    /// kept up).
    pub saturation: Option<(String, Vec<[String; 4]>)>,
    /// A ladder's figures: figure, the level up to which the model held, the first level it
    /// did not, and the error there (`live::reach::cells`).
    pub reach: Vec<[String; 4]>,
    pub levels: Vec<LevelView>,
    pub passed: bool,
    pub verdict: String,
}

#[derive(Clone, Debug)]
pub struct LevelView {
    /// File stem of its spectrum under plots/.
    pub name: String,
    pub heading: String,
    pub aligned: Vec<String>,
    /// What the live run showed that the model leaves out.
    pub unmodeled: Vec<String>,
    /// Per figure: path, metric, sim, live, error; and its verdict (`None`: not judged).
    pub rows: Vec<([String; 5], Option<bool>)>,
    /// Over repeated runs, per figure (as `rows`): how often it held, the runs' errors and
    /// live's own range; empty for one run.
    pub spread: Vec<String>,
    pub spectrum: Vec<Series>,
    /// The traced messages step by step in both runs: from, to, p50 sim, p50 live, p50 error,
    /// p99 sim, p99 live, messages (sim / live).
    pub steps: Vec<[String; 8]>,
    /// The folders (relative to the page) holding both runs' results, one per repeated run.
    pub folders: Vec<String>,
}

/// Draws each level's spectrum into `dir/plots` and writes `dir/validate.html`.
pub fn write(dir: &Path, v: &ValidateView) -> Result<(), ReportError> {
    let plots_dir = dir.join("plots");
    let mut drawn = Vec::new();
    for l in &v.levels {
        let fig = Spectrum {
            name: l.name.clone(),
            title: l.heading.clone(),
            caption: format!(
                "{}: delivery latency percentiles, simulated and live (live from each message's actual send).",
                l.heading
            ),
            series: l.spectrum.clone(),
            what: "delivery",
            slos: Vec::new(),
        };
        drawn.push(plots::render(&fig, &plots_dir)?);
    }
    write_file(&dir.join("validate.html"), page(v, &drawn).as_bytes())
}

/// A table's rows of plain text cells.
fn text_rows<const N: usize>(rows: &[[String; N]]) -> Vec<Vec<Cell>> {
    (rows.iter())
        .map(|r| r.iter().map(|c| Cell::from(c.as_str())).collect())
        .collect()
}

fn page(v: &ValidateView, drawn: &[Drawn]) -> String {
    let mut p = Page::new();
    p.h1(&v.title);
    p.para("meta", &v.meta);
    let badge = if v.passed { "pass" } else { "fail" };
    p.raw(&format!(
        "<p><span class=\"badge {badge}\">{}</span> {}</p>",
        if v.passed { "PASSED" } else { "FAILED" },
        esc(&v.verdict)
    ));
    if let Some((rule, probes)) = &v.saturation {
        p.h2("Live saturation");
        p.para("", &format!("Saturation: {rule}."));
        p.table(
            &["offered msg/s", "delivered msg/s", "p99 ms", "kept up"],
            &text_rows(probes),
        );
    }
    if !v.reach.is_empty() {
        p.h2("Where the model holds");
        p.para(
            "",
            "Per figure: the highest level (share of the live saturation) up to which every level was within the tolerance, and the first level that was not, with live's error against the model there.",
        );
        p.table(
            &[
                "figure",
                "holds up to",
                "outside from",
                "live vs model there",
            ],
            &text_rows(&v.reach),
        );
    }
    for (l, d) in v.levels.iter().zip(drawn) {
        p.h2(&l.heading);
        p.figure(d);
        let rows: Vec<Vec<Cell>> = l
            .rows
            .iter()
            .enumerate()
            .map(|(i, (r, ok))| {
                let mut cells: Vec<Cell> = r.iter().map(|c| Cell::from(c.as_str())).collect();
                cells.push(match ok {
                    Some(ok) => pass_cell(*ok),
                    None => "not judged (too few deliveries)".into(),
                });
                if let Some(s) = l.spread.get(i) {
                    cells.push(Cell::from(s.as_str()));
                }
                cells
            })
            .collect();
        let mut head = vec!["path", "metric", "sim", "live", "error", "verdict"];
        if !l.spread.is_empty() {
            head = vec![
                "path",
                "metric",
                "sim (median)",
                "live (median)",
                "error (median)",
                "verdict",
                "over the runs",
            ];
        }
        p.table(&head, &rows);
        p.raw("<p class=\"note\">Aligned between the two runs:</p>\n<ul>");
        for n in &l.aligned {
            p.raw(&format!("<li>{}</li>", esc(n)));
        }
        p.raw("</ul>");
        if !l.steps.is_empty() {
            p.raw("<p class=\"note\">Step by step, both runs (one message in 64, from its send; ms). Where the two part, the error above comes from. Shown, not judged:</p>");
            let head = [
                "from",
                "to",
                "p50 sim",
                "p50 live",
                "p50 error",
                "p99 sim",
                "p99 live",
                "messages (sim / live)",
            ];
            p.table(&head, &text_rows(&l.steps));
        }
        if !l.unmodeled.is_empty() {
            p.raw("<p class=\"note\">Not modeled, seen in the live run:</p>\n<ul>");
            for n in &l.unmodeled {
                p.raw(&format!("<li>{}</li>", esc(n)));
            }
            p.raw("</ul>");
        }
        for (i, folder) in l.folders.iter().enumerate() {
            let which = if l.folders.len() > 1 {
                format!("Run {}'s", i + 1)
            } else {
                "Both runs'".to_string()
            };
            p.raw(&format!(
                "<p>{which} results: {} (simulated) · {} (live)</p>",
                link(&format!("{folder}/sim/report.html"), "sim"),
                link(&format!("{folder}/live/report.html"), "live")
            ));
        }
    }
    p.finish(&v.title)
}
