//! What `validate` judges: each figure of both runs (a path kind and a metric), its relative
//! error and verdict, and one rate's comparison of them all. Apart from the runs themselves, so
//! that repeated runs ([`super::repeats`]) combine comparisons without running anything.

use super::step_pairs::StepPair;
use serde::Serialize;

/// A figure is judged only over at least this many deliveries on both sides.
pub const SAMPLES_MIN: u64 = 200;

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `all`, a path kind (`native`, `interop`, `group`), or `media` (blob downloads).
    pub path: String,
    pub metric: String,
    pub sim: f64,
    pub live: f64,
    /// (live - sim) / sim; `None` when the simulated value is 0.
    pub relative_error: Option<f64>,
    /// Within the tolerance; `None` when not judged (too few deliveries on a side). Over
    /// repeated runs: within it in every run that judged it.
    pub ok: Option<bool>,
    /// Over repeated runs (`validate --repeat`): how the figure fared in each; `sim`, `live`
    /// and `relative_error` are then the runs' medians.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Spread>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub users: u64,
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub arrivals: String,
    /// The simulated copy modeled loopback links instead of the scenario's network.
    pub loopback_network: bool,
    /// What was aligned between the two runs, and how.
    pub aligned: Vec<String>,
    /// What the live run showed that the model leaves out (the host's shared cores).
    pub unmodeled: Vec<String>,
    pub tolerance: f64,
    pub rows: Vec<Row>,
    /// Every judged figure is within the tolerance.
    pub passed: bool,
    /// Each step of the traced messages' way in both runs (shown, not judged; the first run's
    /// when repeated).
    pub steps: Vec<StepPair>,
    /// Runs at this rate this comparison stands for (`validate --repeat`).
    pub runs: u32,
}

impl Row {
    /// How far off the figure is, for ranking failures: a model that said 0 is the farthest.
    pub(super) fn error_size(&self) -> f64 {
        self.relative_error.map_or(f64::INFINITY, f64::abs)
    }
}

impl Comparison {
    /// The judged rows outside the tolerance, largest error first.
    pub fn failures(&self) -> Vec<&Row> {
        let mut f: Vec<&Row> = self.rows.iter().filter(|r| r.ok == Some(false)).collect();
        f.sort_by(|a, b| b.error_size().total_cmp(&a.error_size()));
        f
    }
}

/// A figure of both runs, judged against `tolerance` when both sides have `samples` enough.
pub(super) fn row(
    path: &str,
    metric: &str,
    (sim, live): (f64, f64),
    samples: (u64, u64),
    tol: f64,
) -> Row {
    let relative_error = (sim != 0.0).then(|| (live - sim) / sim);
    let judged = samples.0.min(samples.1) >= SAMPLES_MIN;
    Row {
        path: path.to_string(),
        metric: metric.to_string(),
        sim,
        live,
        relative_error,
        ok: judged.then(|| relative_error.is_some_and(|e| e.abs() <= tol)),
        repeats: None,
    }
}

/// A relative error as the tables print it, "+12.3%" ("n/a" when the model said 0).
pub fn percent(e: Option<f64>) -> String {
    e.map_or("n/a".to_string(), |e| format!("{:+.1}%", e * 100.0))
}

#[cfg(test)]
impl Comparison {
    /// The tests' comparison: `rows` at `rate_per_s`, one run of a 1 s window, judged to 10 %.
    pub(crate) fn of_rows(rate_per_s: f64, rows: Vec<Row>) -> Self {
        Comparison {
            scenario: "x".into(),
            users: 1,
            rate_per_s,
            duration_s: 1.0,
            arrivals: "poisson".into(),
            loopback_network: true,
            aligned: Vec::new(),
            unmodeled: Vec::new(),
            tolerance: 0.1,
            passed: rows.iter().all(|r| r.ok != Some(false)),
            rows,
            steps: Vec::new(),
            runs: 1,
        }
    }
}

/// How one figure fared over the repeated runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Runs that judged the figure (enough deliveries on both sides).
    pub judged: u32,
    /// Of those, the runs in which it was within the tolerance.
    pub held: u32,
    /// Live's own figure over the runs: its lowest and highest.
    pub live_min: f64,
    pub live_max: f64,
    /// The runs' relative errors, lowest and highest (`None`: every run's model said 0).
    pub error_min: Option<f64>,
    pub error_max: Option<f64>,
}

impl Spread {
    /// Live's own range as a share of its median: what the machine moved between runs.
    pub fn live_range(&self, median: f64) -> Option<f64> {
        (median > 0.0).then(|| (self.live_max - self.live_min) / median)
    }
}
