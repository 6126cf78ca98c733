//! What `plan` writes: the answer in one sentence (screen and the top of plan.html), plan.json
//! (`answer` maps each solved key to its value, `met`, the SLOs at the answer with their
//! headroom, every evaluation, the check on fresh seeds), plan.csv (one row per run) and a
//! self-contained plan.html with one curve per knob (plots/plan_knob_<n>.{svg,png}).

use super::resolution::Resolution;
use super::{label, Evaluation, PlanResult};
use crate::report::files::write_file;
use crate::report::plots::knob::{KnobFigure, SloPoint, SloSeries};
use crate::report::plots::{self, Drawn};
use crate::report::ReportError;
use crate::scenario::CapacityPlan;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;

/// The answer in one sentence, as a planner would say it.
pub fn sentence(r: &PlanResult, plan: &CapacityPlan) -> String {
    let values: Vec<String> = r
        .keys
        .iter()
        .zip(&r.answer)
        .map(|(k, v)| format!("{k} = {}", label(*v)))
        .collect();
    let n = r
        .evaluations
        .first()
        .map_or(plan.slo.len(), |e| e.slos.len());
    let conf = plan.confidence * 100.0;
    let slice = match plan.slice {
        1 => String::new(),
        n => format!(", run as a 1/{n} slice"),
    };
    let load = format!(
        "at {}x users and {}x rate, {} seeds{slice}",
        label(plan.load_users),
        label(plan.load_rate),
        plan.seeds
    );
    if !r.met {
        let at = r.evaluations.last();
        let failing: Vec<String> = at
            .map(|e| {
                e.slos
                    .iter()
                    .filter(|s| !s.ok)
                    .map(|s| s.key.clone())
                    .collect()
            })
            .unwrap_or_default();
        return format!(
            "NOT MET: {} (the best found) still fails {} of {n} SLOs with {conf:.0} % confidence ({load}): {}",
            values.join(", "),
            failing.len(),
            failing.join(", ")
        );
    }
    let mut s = format!(
        "{} meet all {n} SLOs with {conf:.0} % confidence ({load})",
        values.join(", ")
    );
    // What the next lower value of each knob fails, from the check on fresh seeds.
    for (i, k) in plan.solve.iter().enumerate() {
        let lower = super::resolution(plan, k).prev(r.answer[i]);
        let below = r
            .check
            .iter()
            .find(|e| e.purpose == format!("check {} below", k.key));
        if let Some(e) = below {
            let failing: Vec<&str> = e
                .slos
                .iter()
                .filter(|s| !s.ok)
                .map(|s| s.key.as_str())
                .collect();
            if failing.is_empty() {
                let _ = write!(
                    s,
                    "; {} = {} also passed on fresh seeds",
                    k.key,
                    label(lower)
                );
            } else {
                let _ = write!(
                    s,
                    "; {} = {} fails {}",
                    k.key,
                    label(lower),
                    failing.join(", ")
                );
            }
        }
    }
    s
}

/// The answer as plan.json's `answer`: each solved key to its value.
fn answer(r: &PlanResult) -> Value {
    let mut m = Map::new();
    for (k, v) in r.keys.iter().zip(&r.answer) {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

fn evaluation(r: &PlanResult, e: &Evaluation) -> Value {
    let mut values = Map::new();
    for (k, v) in r.keys.iter().zip(&e.values) {
        values.insert(k.clone(), json!(v));
    }
    let slos: Vec<Value> = e
        .slos
        .iter()
        .map(|s| {
            json!({
                "key": s.key,
                "bound": s.bound,
                "values": s.values,
                "mean": finite(s.mean),
                "confident": finite(s.confident),
                "headroom": finite(s.headroom()),
                "ok": s.ok,
            })
        })
        .collect();
    json!({
        "purpose": e.purpose,
        "values": values,
        "seeds": e.seeds,
        "met": e.met,
        "slos": slos,
    })
}

/// JSON has no NaN or infinity: `null`.
fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// How finely each knob was resolved, as a planner reads it: `(key, "multiples of N")` for
/// whole-number knobs, `(key, "two significant figures")` for the others.
pub fn resolutions(plan: &CapacityPlan) -> Vec<(String, String)> {
    plan.solve
        .iter()
        .map(|k| {
            let how = match super::resolution(plan, k) {
                Resolution::Multiple(u) if u <= 1.0 => "whole numbers".to_string(),
                Resolution::Multiple(u) => format!("multiples of {} (the slice)", label(u)),
                Resolution::TwoFigures => "two significant figures (steps of 1 to 10 %, about as fine as a few seeds tell apart)".to_string(),
            };
            (k.key.clone(), how)
        })
        .collect()
}

/// plan.json.
pub fn plan_json(r: &PlanResult, plan: &CapacityPlan, scenario: &str) -> String {
    let at_answer = r
        .evaluations
        .iter()
        .rev()
        .find(|e| e.values == r.answer)
        .map(|e| evaluation(r, e));
    let v = json!({
        "scenario": scenario,
        "answer": answer(r),
        "met": r.met,
        "sentence": sentence(r, plan),
        "load": { "users": plan.load_users, "rate": plan.load_rate },
        "seeds": plan.seeds,
        "confidence": plan.confidence,
        "slice": plan.slice,
        "resolution": resolutions(plan).into_iter().map(|(k, how)| (k, Value::String(how))).collect::<Map<_, _>>(),
        "at_answer": at_answer,
        "notes": r.notes,
        "runs": r.runs,
        "evaluations": r.evaluations.iter().map(|e| evaluation(r, e)).collect::<Vec<_>>(),
        "check": r.check.iter().map(|e| evaluation(r, e)).collect::<Vec<_>>(),
    });
    let mut s = serde_json::to_string_pretty(&v).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// plan.csv: one row per run (a point's seed), with each SLO's metric.
pub fn plan_csv(r: &PlanResult) -> String {
    let mut out = String::from("purpose,");
    for k in &r.keys {
        let _ = write!(out, "{k},");
    }
    out.push_str("seed,met");
    let slo_keys: Vec<&str> = r
        .evaluations
        .first()
        .map(|e| e.slos.iter().map(|s| s.key.as_str()).collect())
        .unwrap_or_default();
    for k in &slo_keys {
        let _ = write!(out, ",{k}");
    }
    out.push('\n');
    for e in r.evaluations.iter().chain(&r.check) {
        for (j, seed) in e.seeds.iter().enumerate() {
            let _ = write!(out, "{},", e.purpose);
            for v in &e.values {
                let _ = write!(out, "{v},");
            }
            let _ = write!(out, "{seed},{}", e.met);
            for s in &e.slos {
                match s.values.get(j).copied().flatten() {
                    Some(x) => {
                        let _ = write!(out, ",{x}");
                    }
                    None => out.push(','),
                }
            }
            out.push('\n');
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Knob `i`'s curve: the points the solver ran while solving it, each SLO's share used there.
fn knob_series(r: &PlanResult, i: usize) -> (Vec<SloSeries>, Vec<f64>) {
    let purpose = format!("solve {}", r.keys[i]);
    let runs: Vec<&Evaluation> = r
        .evaluations
        .iter()
        .filter(|e| e.purpose == purpose)
        .collect();
    let mut series: Vec<SloSeries> = Vec::new();
    let mut zero_failures = Vec::new();
    for e in &runs {
        let x = e.values[i];
        for s in &e.slos {
            if s.limit == 0.0 {
                if !s.ok && !zero_failures.contains(&x) {
                    zero_failures.push(x);
                }
                continue;
            }
            let used = if s.at_most {
                s.confident / s.limit
            } else if s.confident > 0.0 {
                s.limit / s.confident
            } else {
                f64::INFINITY
            };
            // A value never measured (an empty path) has no share to draw; its cell says so.
            if !used.is_finite() || used <= 0.0 {
                continue;
            }
            let label = format!("{} {}", s.key, s.bound);
            let point = SloPoint { x, used, ok: s.ok };
            match series.iter_mut().find(|t| t.label == label) {
                Some(t) => t.points.push(point),
                None => series.push(SloSeries {
                    label,
                    points: vec![point],
                }),
            }
        }
    }
    (series, zero_failures)
}

/// Draws each knob's curve into `dir/plots/`.
pub fn knob_figures(r: &PlanResult, dir: &Path) -> Result<Vec<Drawn>, ReportError> {
    let mut drawn = Vec::new();
    for (i, key) in r.keys.iter().enumerate() {
        let (series, zero) = knob_series(r, i);
        let fig = KnobFigure {
            name: format!("plan_knob_{}", i + 1),
            knob: key,
            series: &series,
            zero_limit_failures: &zero,
            answer: r.answer.get(i).copied(),
        };
        drawn.push(plots::render(&fig, &dir.join("plots"))?);
    }
    Ok(drawn)
}

/// plan.html: the sentence, the SLOs at the answer with their headroom, each knob's curve, the
/// notes, and every point the solver ran (per knob: the value, met or not, each SLO's bound).
pub fn plan_html(r: &PlanResult, plan: &CapacityPlan, scenario: &str, figures: &[Drawn]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>plan: {}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{max-width:100%}}th{{background:#eee}}.ok{{color:#060}}.bad{{color:#b00;font-weight:bold}}</style></head><body>",
        escape(scenario)
    );
    let _ = write!(
        h,
        "<h1>Capacity plan: {}</h1><p style=\"font-size:1.3em\">{}</p>",
        escape(scenario),
        escape(&sentence(r, plan))
    );
    let resolved: Vec<String> = resolutions(plan)
        .into_iter()
        .map(|(k, how)| format!("{k} to {how}"))
        .collect();
    let _ = write!(h, "<p>Resolved: {}.</p>", escape(&resolved.join(", ")));
    if let Some(e) = r.evaluations.iter().rev().find(|e| e.values == r.answer) {
        h.push_str("<h2>Service levels at the answer</h2><table><tr><th>SLO</th><th>bound</th><th>mean</th><th>confidence bound</th><th>headroom</th><th></th></tr>");
        for s in &e.slos {
            let _ = write!(
                h,
                "<tr><td style=\"text-align:left\">{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1} %</td><td class=\"{}\">{}</td></tr>",
                escape(&s.key),
                escape(&s.bound),
                s.mean,
                s.confident,
                s.headroom() * 100.0,
                if s.ok { "ok" } else { "bad" },
                if s.ok { "met" } else { "FAILED" }
            );
        }
        h.push_str("</table>");
    }
    if !figures.is_empty() {
        h.push_str("<h2>Each knob's curve</h2>");
    }
    for d in figures {
        h.push_str(&crate::report::html::figure_html(d));
    }
    if !r.notes.is_empty() {
        h.push_str("<h2>Notes</h2><ul>");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", escape(n));
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<h2>Every point run ({} runs)</h2><table><tr><th>why</th>",
        r.runs
    );
    for k in &r.keys {
        let _ = write!(h, "<th>{}</th>", escape(k));
    }
    h.push_str("<th>met</th>");
    if let Some(e) = r.evaluations.first() {
        for s in &e.slos {
            let _ = write!(h, "<th>{} {}</th>", escape(&s.key), escape(&s.bound));
        }
    }
    h.push_str("</tr>");
    for e in r.evaluations.iter().chain(&r.check) {
        let _ = write!(
            h,
            "<tr><td style=\"text-align:left\">{}</td>",
            escape(&e.purpose)
        );
        for v in &e.values {
            let _ = write!(h, "<td>{}</td>", label(*v));
        }
        let _ = write!(
            h,
            "<td class=\"{}\">{}</td>",
            if e.met { "ok" } else { "bad" },
            if e.met { "yes" } else { "no" }
        );
        for s in &e.slos {
            let _ = write!(
                h,
                "<td class=\"{}\">{:.3}</td>",
                if s.ok { "ok" } else { "bad" },
                s.confident
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</table><p>Each SLO cell is the one-sided confidence bound of the metric over the seeds (ms for latencies).</p>");
    let script = crate::report::html::interactive_script(&h);
    h.push_str(&script);
    h.push_str("</body></html>\n");
    h
}

/// Writes plan.json, plan.csv, plan.html and the knob curves (plots/) into `dir`.
pub fn write(
    dir: &Path,
    r: &PlanResult,
    plan: &CapacityPlan,
    scenario: &str,
) -> Result<(), ReportError> {
    write_file(
        &dir.join("plan.json"),
        plan_json(r, plan, scenario).as_bytes(),
    )?;
    write_file(&dir.join("plan.csv"), plan_csv(r).as_bytes())?;
    let figures = knob_figures(r, dir)?;
    write_file(
        &dir.join("plan.html"),
        plan_html(r, plan, scenario, &figures).as_bytes(),
    )
}
