//! `validate --repeat N`: the same rate validated N times, each run a live run and the
//! simulated copy priced from it, and one verdict over them. Live moves between runs minutes
//! apart on a shared machine (p99 2.1 to 6.7 ms over nine runs at one rate), so one run's error
//! says as much about that run as about the model. Over N runs a figure holds only when it
//! held in every run that judged it; the table gives the medians, the range of the runs' errors
//! and of live's own figure, so a planner sees whether a miss is the model's or live's noise.

use super::comparison::{percent, Comparison, Row, Spread};

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// One figure over the runs: the medians of sim, live and the runs' errors, and held only
/// when every run that judged it held (`None`: no run judged it).
fn combine_row(rows: &[&Row]) -> Row {
    let first = rows[0];
    let sim = median(rows.iter().map(|r| r.sim).collect()).unwrap_or(first.sim);
    let live = median(rows.iter().map(|r| r.live).collect()).unwrap_or(first.live);
    let errors: Vec<f64> = rows.iter().filter_map(|r| r.relative_error).collect();
    let judged: Vec<bool> = rows.iter().filter_map(|r| r.ok).collect();
    let held = judged.iter().filter(|ok| **ok).count();
    let fold = |f: fn(f64, f64) -> f64| errors.iter().copied().reduce(f);
    let spread = Spread {
        judged: judged.len() as u32,
        held: held as u32,
        live_min: rows.iter().map(|r| r.live).fold(f64::INFINITY, f64::min),
        live_max: rows
            .iter()
            .map(|r| r.live)
            .fold(f64::NEG_INFINITY, f64::max),
        error_min: fold(f64::min),
        error_max: fold(f64::max),
    };
    Row {
        path: first.path.clone(),
        metric: first.metric.clone(),
        sim,
        live,
        relative_error: median(errors),
        ok: (!judged.is_empty()).then_some(held == judged.len()),
        repeats: Some(spread),
    }
}

/// The runs of one rate as one comparison: each figure the first run listed, over every run
/// that has it (see [`combine_row`]); the first run's notes and steps. `runs` is not empty.
pub fn combine(runs: &[Comparison]) -> Comparison {
    assert!(!runs.is_empty(), "combine needs at least one run");
    let mut c = runs[0].clone();
    c.rows = (runs[0].rows.iter())
        .map(|r| {
            let same: Vec<&Row> = (runs.iter())
                .filter_map(|c| (c.rows.iter()).find(|x| x.path == r.path && x.metric == r.metric))
                .collect();
            combine_row(&same)
        })
        .collect();
    c.rate_per_s = runs.iter().map(|c| c.rate_per_s).sum::<f64>() / runs.len() as f64;
    c.passed = c.rows.iter().all(|r| r.ok != Some(false));
    c.runs = runs.len() as u32;
    c
}

/// The verdict cell of a repeated figure: "ok in 3 of 3 runs", "FAILED: held in 1 of 3 runs",
/// with the runs' errors and live's own range.
pub fn cell(r: &Row) -> Option<String> {
    let s = r.repeats.as_ref()?;
    let verdict = match r.ok {
        None => return Some("not judged (too few deliveries in every run)".into()),
        Some(true) => format!("ok in {} of {} runs", s.held, s.judged),
        Some(false) => format!("FAILED: held in {} of {} runs", s.held, s.judged),
    };
    let live = s.live_range(r.live).map_or(String::new(), |x| {
        format!(
            "; live {:.3} to {:.3} ({:.0} % of its median)",
            s.live_min,
            s.live_max,
            x * 100.0
        )
    });
    Some(format!(
        "{verdict} (errors {} to {}{live})",
        percent(s.error_min),
        percent(s.error_max)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: &str, sim: f64, live: f64, ok: Option<bool>) -> Row {
        Row {
            path: "all".into(),
            metric: metric.into(),
            sim,
            live,
            relative_error: Some((live - sim) / sim),
            ok,
            repeats: None,
        }
    }

    fn run(rate: f64, rows: Vec<Row>) -> Comparison {
        let mut c = Comparison::of_rows(rate, rows);
        c.aligned = vec!["first run's note".into()];
        c
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    /// p50 held in every run; p99 held in one of three (live's noise, not a steady model):
    /// the level fails on it, and the cell says how often it held and how far live moved.
    #[test]
    fn a_figure_holds_over_repeats_only_when_it_held_in_every_run_that_judged_it() {
        let runs = [
            run(
                100.0,
                vec![
                    row("p50_ms", 1.0, 1.05, Some(true)),
                    row("p99_ms", 2.0, 2.1, Some(true)),
                    row("mean_ms", 1.0, 3.0, None),
                ],
            ),
            run(
                102.0,
                vec![
                    row("p50_ms", 1.0, 0.95, Some(true)),
                    row("p99_ms", 2.0, 6.0, Some(false)),
                    row("mean_ms", 1.0, 1.0, None),
                ],
            ),
            run(
                98.0,
                vec![
                    row("p50_ms", 1.1, 1.1, Some(true)),
                    row("p99_ms", 2.0, 3.0, Some(false)),
                ],
            ),
        ];
        let c = combine(&runs);
        assert_eq!(c.runs, 3);
        assert!((c.rate_per_s - 100.0).abs() < 1e-9);
        assert_eq!(c.aligned, vec!["first run's note".to_string()]);
        assert!(!c.passed, "p99 held in one run of three");
        let p50 = &c.rows[0];
        assert_eq!(p50.ok, Some(true));
        assert_eq!((p50.sim, p50.live), (1.0, 1.05));
        let s = p50.repeats.as_ref().expect("spread");
        assert_eq!((s.held, s.judged), (3, 3));
        assert_eq!((s.live_min, s.live_max), (0.95, 1.1));
        let p99 = &c.rows[1];
        assert_eq!(p99.ok, Some(false));
        assert!(
            (p99.relative_error.expect("error") - 0.5).abs() < 1e-9,
            "median of +5, +200, +50 %"
        );
        let text = cell(p99).expect("a repeated row");
        assert!(
            text.starts_with(
                "FAILED: held in 1 of 3 runs (errors +5.0% to +200.0%; live 2.100 to 6.000"
            ),
            "{text}"
        );
        let mean = &c.rows[2];
        assert_eq!(mean.ok, None, "judged in no run");
        assert_eq!(mean.repeats.as_ref().map(|s| s.judged), Some(0));
        assert_eq!(
            cell(&runs[0].rows[0]),
            None,
            "a single run's row has no spread"
        );
    }

    /// One run combined is that run: the same figures and verdicts.
    #[test]
    fn one_run_combined_keeps_its_figures() {
        let one = run(50.0, vec![row("p50_ms", 1.0, 1.2, Some(false))]);
        let c = combine(std::slice::from_ref(&one));
        assert_eq!(c.rows[0].sim, 1.0);
        assert_eq!(c.rows[0].live, 1.2);
        assert_eq!(c.rows[0].ok, Some(false));
        assert_eq!(c.passed, one.passed);
    }
}
