//! `interop-sim compare RUN_A RUN_B`: two results folders side by side. The latency spectra are
//! overlaid from their latency.hgrm files (so any two runs compare, whatever wrote them) and
//! every number of their summary.json is tabled with its difference.

use super::files::{write_file, ReportError};
use super::html::{esc, Cell, Page};
use super::plots::spectrum::{Series, Spectrum};
use super::plots::{self, color};
use serde_json::Value;
use std::path::Path;

/// Rows of the delta table at most; summary.json has about a hundred numbers.
const DELTA_ROWS_MAX: usize = 2000;

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::Input {
        path: path.to_path_buf(),
        message: format!("cannot read: {e} (is this a results folder?)"),
    })
}

/// (percentile, value in ms) points of a latency.hgrm file, the 100% row left out.
pub fn parse_hgrm(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let value: f64 = cols.next()?.parse().ok()?;
            let q: f64 = cols.next()?.parse().ok()?;
            (q < 1.0 && value.is_finite()).then_some((q, value))
        })
        .collect()
}

/// Every number in a JSON document, by dotted path (arrays indexed), in document order.
pub fn numbers(v: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((prefix.to_string(), x));
            }
        }
        Value::Object(o) => o.iter().for_each(|(k, v)| numbers(v, &key(k), out)),
        // Verdicts are named by their key (`expect[lost].value`), other arrays by index.
        Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| {
            let name = v
                .get("key")
                .and_then(Value::as_str)
                .map_or(i.to_string(), str::to_string);
            numbers(v, &format!("{prefix}[{name}]"), out)
        }),
        _ => {}
    }
}

fn summary(dir: &Path) -> Result<Value, ReportError> {
    let path = dir.join("summary.json");
    serde_json::from_str(&read(&path)?).map_err(|e| ReportError::Input {
        path,
        message: format!("not a summary.json: {e}"),
    })
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "?".to_string(),
    }
}

/// Which way a service-level figure gets worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Worse {
    Up,
    Down,
}

/// The service-level figures of summary.json a regression is judged on, by how they end
/// (`delivered_p99`, `paths.interop.delivered_p99`, `lost`, ...), and which way is worse.
const SLO_FIGURES: [(&str, Worse); 16] = [
    ("delivered_p50", Worse::Up),
    ("delivered_p99", Worse::Up),
    ("delivered_p999", Worse::Up),
    ("delivered_max", Worse::Up),
    ("delivered_ratio", Worse::Down),
    ("lost", Worse::Up),
    ("failed", Worse::Up),
    ("duplicates", Worse::Up),
    ("out_of_order", Worse::Up),
    ("decrypt_failures", Worse::Up),
    ("unsent", Worse::Up),
    ("queued_at_end", Worse::Up),
    ("messages_delivered_per_s_mean", Worse::Down),
    ("media_download_p99", Worse::Up),
    ("media_verify_failures", Worse::Up),
    ("media_download_failures", Worse::Up),
];

/// One service-level figure of both runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub key: String,
    pub a: f64,
    pub b: f64,
    /// (b - a) / |a|; infinite when a is 0 and b is not.
    pub relative: f64,
    /// B is worse than A by more than the tolerance.
    pub regression: bool,
}

/// The service-level figures both runs have, the largest relative change first; a change in
/// the worse direction beyond `tolerance` (a fraction) is a regression.
pub fn slo_changes(sa: &Value, sb: &Value, tolerance: f64) -> Vec<Change> {
    let (mut na, mut nb) = (Vec::new(), Vec::new());
    numbers(sa, "", &mut na);
    numbers(sb, "", &mut nb);
    let mut out: Vec<Change> = na
        .iter()
        .filter_map(|(key, a)| {
            let last = key.rsplit('.').next()?;
            let top_or_path = !key.contains('.') || key.starts_with("paths.");
            let (_, worse) = SLO_FIGURES
                .iter()
                .find(|(k, _)| *k == last && top_or_path)?;
            let b = nb.iter().find(|(k, _)| k == key)?.1;
            let relative = if *a != 0.0 {
                (b - a) / a.abs()
            } else if b == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(b)
            };
            let worse_by = match worse {
                Worse::Up => relative,
                Worse::Down => -relative,
            };
            Some(Change {
                key: key.clone(),
                a: *a,
                b,
                relative,
                regression: worse_by > tolerance,
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.relative
            .abs()
            .total_cmp(&x.relative.abs())
            .then_with(|| x.key.cmp(&y.key))
    });
    out
}

/// A relative change as text (`+12.5 %`, `new`, `=`).
pub fn change_text(c: &Change) -> String {
    if c.relative.is_infinite() {
        "from 0".to_string()
    } else if c.relative == 0.0 {
        "=".to_string()
    } else {
        format!("{:+.1} %", c.relative * 100.0)
    }
}

/// Writes `out/report.html` and `out/plots/latency_spectrum_compare.{png,svg}`, and returns
/// the service-level figures, the largest change first (see [`slo_changes`]).
pub fn compare(a: &Path, b: &Path, out: &Path, tolerance: f64) -> Result<Vec<Change>, ReportError> {
    let (sa, sb) = (summary(a)?, summary(b)?);
    let (ha, hb) = (
        parse_hgrm(&read(&a.join("latency.hgrm"))?),
        parse_hgrm(&read(&b.join("latency.hgrm"))?),
    );
    let name = |s: &Value, d: &Path| format!("{} ({})", text(s, "scenario"), d.display());
    let (na, nb) = (name(&sa, a), name(&sb, b));
    let fig = Spectrum {
        name: "latency_spectrum_compare".to_string(),
        title: "Delivery latency by percentile: A against B".to_string(),
        caption: "Percentile spectra of both runs, all path kinds, from their latency.hgrm."
            .to_string(),
        series: vec![
            Series {
                label: format!("A: {na}"),
                points: ha,
                color: color(0),
                width: 3,
            },
            Series {
                label: format!("B: {nb}"),
                points: hb,
                color: color(1),
                width: 3,
            },
        ],
        what: "delivery",
        slos: Vec::new(),
    };
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let drawn = plots::render(&fig, &out.join("plots"))?;
    let mut p = Page::new();
    p.h1("interop-sim compare");
    let rows: Vec<Vec<Cell>> = ["scenario", "seed", "scenario_hash", "fingerprint", "passed"]
        .iter()
        .map(|k| vec![(*k).into(), text(&sa, k).into(), text(&sb, k).into()])
        .collect();
    p.raw(&format!(
        "<p>A = <code>{}</code>, B = <code>{}</code></p>",
        esc(&a.display().to_string()),
        esc(&b.display().to_string())
    ));
    p.table(&["", "A", "B"], &rows);
    let changes = slo_changes(&sa, &sb, tolerance);
    p.h2("Service-level figures, the largest change first");
    let rows: Vec<Vec<Cell>> = changes
        .iter()
        .map(|c| {
            vec![
                c.key.as_str().into(),
                super::html::num(c.a).into(),
                super::html::num(c.b).into(),
                change_text(c).into(),
                if c.regression {
                    Cell::Html("<span class=\"fail\">REGRESSION</span>".into())
                } else {
                    "".into()
                },
            ]
        })
        .collect();
    p.table(&["key", "A", "B", "change", ""], &rows);
    p.para(
        "meta",
        &format!(
            "A regression: B worse than A by more than {:.0} % (higher latency or loss, lower delivered ratio or rate).",
            tolerance * 100.0
        ),
    );
    p.h2("Latency");
    p.figure(&drawn);
    super::designs::section(&mut p, &sa, &sb);
    p.h2("Summary numbers");
    p.table(&["key", "A", "B", "B − A", "change"], &delta_rows(&sa, &sb));
    let html = p.finish("interop-sim compare");
    write_file(&out.join("report.html"), html.as_bytes())?;
    Ok(changes)
}

fn delta_rows(sa: &Value, sb: &Value) -> Vec<Vec<Cell>> {
    let (mut na, mut nb) = (Vec::new(), Vec::new());
    numbers(sa, "", &mut na);
    numbers(sb, "", &mut nb);
    let mut keys: Vec<&str> = na.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in &nb {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let get = |v: &[(String, f64)], k: &str| v.iter().find(|(x, _)| x == k).map(|(_, n)| *n);
    keys.iter()
        .take(DELTA_ROWS_MAX)
        .map(|k| {
            let (a, b) = (get(&na, k), get(&nb, k));
            let show = |x: Option<f64>| x.map_or("–".to_string(), super::html::num);
            let (delta, change) = match (a, b) {
                (Some(a), Some(b)) => {
                    let change = if a != 0.0 {
                        format!("{:+.1}%", (b - a) / a.abs() * 100.0)
                    } else if b == 0.0 {
                        "=".to_string()
                    } else {
                        "new".to_string()
                    };
                    (super::html::num(b - a), change)
                }
                _ => ("–".to_string(), "–".to_string()),
            };
            vec![
                (*k).into(),
                show(a).into(),
                show(b).into(),
                delta.into(),
                change.into(),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_figures_are_sorted_by_change_and_judged_by_direction() {
        let a = serde_json::json!({
            "delivered_p99": 100.0, "lost": 0, "delivered_ratio": 1.0, "sent": 10,
            "paths": { "interop": { "delivered_p99": 200.0 } },
            "work": { "lost": 5 }
        });
        let b = serde_json::json!({
            "delivered_p99": 105.0, "lost": 2, "delivered_ratio": 0.8, "sent": 99,
            "paths": { "interop": { "delivered_p99": 100.0 } },
            "work": { "lost": 50 }
        });
        let c = slo_changes(&a, &b, 0.1);
        let keys: Vec<&str> = c.iter().map(|c| c.key.as_str()).collect();
        // `sent` is no service-level figure, and `work.lost` is not the counter of that name.
        assert_eq!(
            keys,
            [
                "lost",
                "paths.interop.delivered_p99",
                "delivered_ratio",
                "delivered_p99"
            ]
        );
        let regressions: Vec<&str> = c
            .iter()
            .filter(|c| c.regression)
            .map(|c| c.key.as_str())
            .collect();
        // Faster interop is no regression; +5 % is within the tolerance.
        assert_eq!(regressions, ["lost", "delivered_ratio"]);
        assert_eq!(change_text(&c[0]), "from 0");
    }

    #[test]
    fn hgrm_rows() {
        let t = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n      10.000 0.000000000000          1           1.00\n      20.000 0.500000000000          5           2.00\n      30.000 1.000000000000         10\n#[Mean    =       20.000, StdDeviation   =        5.000]\n";
        assert_eq!(parse_hgrm(t), vec![(0.0, 10.0), (0.5, 20.0)]);
    }
}
