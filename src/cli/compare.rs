//! `interop-sim compare A B`: two results folders side by side (latency spectra, summary
//! deltas), the service-level figures printed with the largest change first, and exit 1 when
//! one got worse by more than the tolerance.

use super::Outcome;
use std::path::{Path, PathBuf};

/// Service-level figures printed on screen at most (all are in the report).
const SCREEN_ROWS: usize = 12;

/// `compare`'s arguments.
#[derive(clap::Args)]
pub struct CompareArgs {
    run_a: PathBuf,
    run_b: PathBuf,
    /// Output folder. Default: results/compare/.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A service-level figure of B worse than A's by more than this fraction (latency or
    /// loss up, delivered ratio or rate down) is a regression: exit 1.
    #[arg(long, default_value_t = 0.1)]
    tolerance: f64,
}

pub fn compare(args: CompareArgs) -> anyhow::Result<Outcome> {
    let CompareArgs {
        run_a,
        run_b,
        out,
        tolerance,
    } = args;
    let (a, b) = (run_a.as_path(), run_b.as_path());
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        eprintln!("interop-sim compare: --tolerance must be a fraction >= 0 (0.1 = 10 %), got {tolerance}");
        return Ok(Outcome::Invalid);
    }
    let out = out.unwrap_or_else(|| Path::new("results").join("compare"));
    let changes = match interop_sim::report::compare::compare(a, b, &out, tolerance) {
        Ok(c) => c,
        Err(interop_sim::report::ReportError::Input { path, message }) => {
            eprintln!("interop-sim: {}: {message}", path.display());
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    outln!(
        "{:<36} {:>14} {:>14} {:>10}",
        "service-level figure (A -> B)",
        "A",
        "B",
        "change"
    );
    for c in changes.iter().take(SCREEN_ROWS) {
        outln!(
            "{:<36} {:>14} {:>14} {:>10}{}",
            c.key,
            interop_sim::report::html::num(c.a),
            interop_sim::report::html::num(c.b),
            interop_sim::report::compare::change_text(c),
            if c.regression { "  REGRESSION" } else { "" }
        );
    }
    if changes.len() > SCREEN_ROWS {
        outln!("... {} more in the report", changes.len() - SCREEN_ROWS);
    }
    outln!("comparison in {}", out.join("report.html").display());
    let regressions: Vec<&str> = changes
        .iter()
        .filter(|c| c.regression)
        .map(|c| c.key.as_str())
        .collect();
    if regressions.is_empty() {
        outln!(
            "compare: no service-level figure of B is worse than A's by more than {:.0} %",
            tolerance * 100.0
        );
        Ok(Outcome::Passed)
    } else {
        outln!(
            "compare: REGRESSION beyond {:.0} % in {}: {}",
            tolerance * 100.0,
            regressions.len(),
            regressions.join(", ")
        );
        Ok(Outcome::Failed)
    }
}
