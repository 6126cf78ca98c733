//! Where the model holds: for each figure a ladder judged (a path kind and a metric), the
//! highest load up to which the simulated copy stayed within the tolerance of the live run, and
//! the first load where it did not, with the error there. A planner reads "p50 holds up to 30 %
//! of saturation, live 88 % above the model from 60 %" instead of a list of every failed cell,
//! and knows which of the model's figures to act on at which load.

use super::validate::Comparison;
use serde::Serialize;

/// A level of the ladder: its fraction of the live saturation and its rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Level {
    pub fraction: f64,
    pub rate_per_s: f64,
}

/// The first level, counted from the lowest, where a figure was outside the tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Off {
    pub level: Level,
    /// (live - sim) / sim there; `None` when the model said 0.
    pub relative_error: Option<f64>,
}

/// One figure across the levels that judged it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reach {
    pub path: String,
    pub metric: String,
    /// The highest level up to which every judged level was within the tolerance; `None`
    /// when the lowest judged level already was not.
    pub holds_up_to: Option<Level>,
    /// The first judged level past `holds_up_to` (or the lowest) that was outside the
    /// tolerance; `None` when every judged level was within it.
    pub first_off: Option<Off>,
    /// Levels above `first_off` that were within the tolerance again (a figure need not
    /// degrade monotonically with load: run-to-run noise can bring it back).
    pub within_again: Vec<Level>,
    /// Levels at which the figure was not judged (too few deliveries on a side).
    pub not_judged: Vec<Level>,
}

/// Each figure of `levels` (fraction of saturation and the comparison at that rate), in the
/// order the comparisons list them; a figure no level judged is left out.
pub fn reach(levels: &[(f64, Comparison)]) -> Vec<Reach> {
    let mut by_load: Vec<&(f64, Comparison)> = levels.iter().collect();
    by_load.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut figures: Vec<(&str, &str)> = Vec::new();
    for (_, c) in &by_load {
        for r in &c.rows {
            if !figures.contains(&(r.path.as_str(), r.metric.as_str())) {
                figures.push((&r.path, &r.metric));
            }
        }
    }
    let mut out = Vec::new();
    for (path, metric) in figures {
        let mut reach = Reach {
            path: path.to_string(),
            metric: metric.to_string(),
            holds_up_to: None,
            first_off: None,
            within_again: Vec::new(),
            not_judged: Vec::new(),
        };
        let mut judged = false;
        for (fraction, c) in &by_load {
            let Some(row) = c.rows.iter().find(|r| r.path == path && r.metric == metric) else {
                continue;
            };
            let level = Level {
                fraction: *fraction,
                rate_per_s: c.rate_per_s,
            };
            match (row.ok, reach.first_off) {
                (None, _) => reach.not_judged.push(level),
                (Some(true), None) => reach.holds_up_to = Some(level),
                (Some(true), Some(_)) => reach.within_again.push(level),
                (Some(false), None) => {
                    reach.first_off = Some(Off {
                        level,
                        relative_error: row.relative_error,
                    })
                }
                (Some(false), Some(_)) => {}
            }
            judged |= row.ok.is_some();
        }
        if judged {
            out.push(reach);
        }
    }
    out
}

fn at(l: &Level) -> String {
    format!("{:.0} % ({:.0} msg/s)", l.fraction * 100.0, l.rate_per_s)
}

/// One line per figure, for validate.txt and the page: where it holds and where it stops.
pub fn render(r: &Reach, tolerance: f64) -> String {
    let figure = format!("{} {}", r.path, r.metric);
    let mut s = match (&r.holds_up_to, &r.first_off) {
        (Some(up), None) => format!("{figure}: holds at every level judged, up to {}", at(up)),
        (up, Some(off)) => {
            let holds = match up {
                Some(up) => format!("holds up to {}", at(up)),
                None => "holds at no level".to_string(),
            };
            let how = match off.relative_error {
                Some(e) => format!(
                    "live {:.1} % {} the model",
                    e.abs() * 100.0,
                    if e >= 0.0 { "above" } else { "below" }
                ),
                None => "the model says 0".to_string(),
            };
            format!(
                "{figure}: {holds}; outside +-{:.0} % from {}: {how}",
                tolerance * 100.0,
                at(&off.level)
            )
        }
        (None, None) => format!("{figure}: not judged at any level"),
    };
    if !r.within_again.is_empty() {
        let again: Vec<String> = r.within_again.iter().map(at).collect();
        s.push_str(&format!("; within again at {}", again.join(", ")));
    }
    if !r.not_judged.is_empty() {
        let skipped: Vec<String> = r.not_judged.iter().map(at).collect();
        s.push_str(&format!(
            "; not judged at {} (too few deliveries)",
            skipped.join(", ")
        ));
    }
    s
}

/// The figure's row of the page's table: figure, holds up to, outside from, live against the
/// model there.
pub fn cells(r: &Reach) -> [String; 4] {
    let figure = format!("{} {}", r.path, r.metric);
    let holds = match (&r.holds_up_to, &r.first_off) {
        (Some(up), None) => format!("every level, up to {}", at(up)),
        (Some(up), Some(_)) => at(up),
        (None, _) => "no level".to_string(),
    };
    let (from, how) = match &r.first_off {
        None => ("-".to_string(), "-".to_string()),
        Some(off) => (
            at(&off.level),
            off.relative_error
                .map_or("model 0".to_string(), |e| format!("{:+.1} %", e * 100.0)),
        ),
    };
    [figure, holds, from, how]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::validate::Row;

    fn row(metric: &str, error: f64, ok: Option<bool>) -> Row {
        Row {
            path: "all".into(),
            metric: metric.into(),
            sim: 1.0,
            live: 1.0 + error,
            relative_error: Some(error),
            ok,
            repeats: None,
        }
    }

    fn level(rate: f64, rows: Vec<Row>) -> Comparison {
        Comparison::of_rows(rate, rows)
    }

    /// The levels given out of order (as a caller may list --levels): p50 holds at 30 % and
    /// is off from 60 %, p99 at none, throughput at all, and a figure within again above its
    /// first failure says so; a figure judged nowhere is left out.
    #[test]
    fn each_figure_holds_up_to_the_last_level_within_before_the_first_outside() {
        let levels = vec![
            (
                0.9,
                level(
                    900.0,
                    vec![
                        row("p50_ms", 3.0, Some(false)),
                        row("p99_ms", 0.05, Some(true)),
                        row("messages_per_s", 0.0, Some(true)),
                        row("mean_ms", 9.0, None),
                    ],
                ),
            ),
            (
                0.3,
                level(
                    300.0,
                    vec![
                        row("p50_ms", 0.05, Some(true)),
                        row("p99_ms", 2.0, Some(false)),
                        row("messages_per_s", -0.01, Some(true)),
                        row("mean_ms", 9.0, None),
                    ],
                ),
            ),
            (
                0.6,
                level(
                    600.0,
                    vec![
                        row("p50_ms", 0.88, Some(false)),
                        row("p99_ms", -0.5, Some(false)),
                        row("messages_per_s", 0.0, Some(true)),
                    ],
                ),
            ),
        ];
        let r = reach(&levels);
        let names: Vec<&str> = r.iter().map(|f| f.metric.as_str()).collect();
        assert_eq!(names, ["p50_ms", "p99_ms", "messages_per_s"]);
        let at = |fraction: f64, rate_per_s: f64| Level {
            fraction,
            rate_per_s,
        };
        assert_eq!(r[0].holds_up_to, Some(at(0.3, 300.0)));
        assert_eq!(
            r[0].first_off,
            Some(Off {
                level: at(0.6, 600.0),
                relative_error: Some(0.88)
            })
        );
        assert!(r[0].within_again.is_empty());
        assert_eq!(r[1].holds_up_to, None);
        assert_eq!(r[1].first_off.map(|o| o.level), Some(at(0.3, 300.0)));
        assert_eq!(r[1].within_again, vec![at(0.9, 900.0)]);
        assert_eq!(r[2].holds_up_to, Some(at(0.9, 900.0)));
        assert_eq!(r[2].first_off, None);

        let lines: Vec<String> = r.iter().map(|f| render(f, 0.1)).collect();
        assert_eq!(
            lines[0],
            "all p50_ms: holds up to 30 % (300 msg/s); outside +-10 % from 60 % (600 msg/s): live 88.0 % above the model"
        );
        assert_eq!(
            lines[1],
            "all p99_ms: holds at no level; outside +-10 % from 30 % (300 msg/s): live 200.0 % above the model; within again at 90 % (900 msg/s)"
        );
        assert_eq!(
            lines[2],
            "all messages_per_s: holds at every level judged, up to 90 % (900 msg/s)"
        );
    }

    /// A level that could not judge a figure is named, and neither breaks nor extends its run.
    #[test]
    fn a_level_not_judged_is_named_and_skipped() {
        let levels = vec![
            (0.3, level(300.0, vec![row("p99_ms", 0.0, Some(true))])),
            (0.6, level(600.0, vec![row("p99_ms", 0.0, None)])),
            (0.9, level(900.0, vec![row("p99_ms", -0.2, Some(false))])),
        ];
        let r = reach(&levels);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].holds_up_to.map(|l| l.fraction), Some(0.3));
        assert_eq!(r[0].first_off.map(|o| o.level.fraction), Some(0.9));
        assert_eq!(
            render(&r[0], 0.1),
            "all p99_ms: holds up to 30 % (300 msg/s); outside +-10 % from 90 % (900 msg/s): live 20.0 % below the model; not judged at 60 % (600 msg/s) (too few deliveries)"
        );
    }
}
