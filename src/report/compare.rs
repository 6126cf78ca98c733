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

/// Writes `out/report.html` and `out/plots/latency_spectrum_compare.{png,svg}`.
pub fn compare(a: &Path, b: &Path, out: &Path) -> Result<(), ReportError> {
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
    p.h2("Latency");
    p.figure(&drawn);
    p.h2("Summary numbers");
    p.table(&["key", "A", "B", "B − A", "change"], &delta_rows(&sa, &sb));
    let html = p.finish("interop-sim compare");
    write_file(&out.join("report.html"), html.as_bytes())
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
    fn hgrm_rows() {
        let t = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n      10.000 0.000000000000          1           1.00\n      20.000 0.500000000000          5           2.00\n      30.000 1.000000000000         10\n#[Mean    =       20.000, StdDeviation   =        5.000]\n";
        assert_eq!(parse_hgrm(t), vec![(0.0, 10.0), (0.5, 20.0)]);
    }
}
