//! `interop-sim compare A B`: two results folders side by side (latency spectra, summary
//! deltas).

use super::Outcome;
use std::path::{Path, PathBuf};

pub fn compare(a: &Path, b: &Path, out: Option<PathBuf>) -> anyhow::Result<Outcome> {
    let out = out.unwrap_or_else(|| Path::new("results").join("compare"));
    match interop_sim::report::compare::compare(a, b, &out) {
        Ok(()) => {
            outln!("comparison in {}", out.join("report.html").display());
            Ok(Outcome::Passed)
        }
        Err(interop_sim::report::ReportError::Input { path, message }) => {
            eprintln!("interop-sim: {}: {message}", path.display());
            Ok(Outcome::Invalid)
        }
        Err(e) => Err(e.into()),
    }
}
