//! `interop-sim calibrate`: measures the crypto cost table on this machine and writes it.

use super::Outcome;
use anyhow::Context;
use interop_sim::report::perf::progress::Progress;
use std::path::PathBuf;

/// `calibrate`'s arguments.
#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// Where to write the table. Default: results/calibration.toml.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Rough figures in well under a second (few, short batches), for tests.
    #[arg(long)]
    quick: bool,
}

pub fn calibrate(args: CalibrateArgs) -> anyhow::Result<Outcome> {
    let CalibrateArgs { out, quick } = args;
    use interop_sim::calibrate::{self as cal, Settings};
    let settings = if quick {
        Settings::QUICK
    } else {
        Settings::FULL
    };
    let out = out.unwrap_or_else(|| PathBuf::from(cal::DEFAULT_OUT));
    let progress = Progress::new("calibrating", Some(cal::ops::MEASURES.len() as u64));
    let measured = cal::calibrate(settings, |_| progress.inc());
    progress.finish();
    let measured = measured?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&out, measured.file_text())
        .with_context(|| format!("writing {}", out.display()))?;
    out!("{}", measured.screen());
    outln!(
        "wrote {} (use it: [e2ee] cost_table = \"<path from the scenario's folder>\")",
        out.display()
    );
    Ok(Outcome::Passed)
}
