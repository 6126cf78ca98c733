//! `interop-sim validate FILE`: one scenario in the simulator and live, and how far apart
//! they land (validate.json).

use super::live_args::LiveArgs;
use super::{load, Outcome};
use std::path::{Path, PathBuf};

pub fn validate(
    file: &Path,
    out: Option<PathBuf>,
    scenario_network: bool,
    tolerance: f64,
    args: &LiveArgs,
) -> anyhow::Result<Outcome> {
    if !(tolerance.is_finite() && tolerance > 0.0 && tolerance <= 10.0) {
        eprintln!("interop-sim validate: --tolerance must be a fraction above 0 (0.1 = 10 %), got {tolerance}");
        return Ok(Outcome::Invalid);
    }
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let opts = match args.options() {
        // Poisson unless asked otherwise: the simulator's arrivals are Poisson.
        Ok(o) if args.arrivals.is_none() => interop_sim::live::LiveOptions {
            arrivals: interop_sim::live::Arrivals::Poisson,
            ..o
        },
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim validate: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let hash = interop_sim::scenario::hash(&s);
    let network = if scenario_network {
        interop_sim::live::validate::Network::Scenario
    } else {
        interop_sim::live::validate::Network::MeasuredLoopback
    };
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-validate", s.run.name)));
    let (cmp, sim, live) =
        match interop_sim::live::validate::validate(&s, &hash, &opts, network, tolerance) {
            Ok(r) => r,
            Err(interop_sim::live::LiveError::Schedule(e)) => {
                eprintln!("interop-sim validate: {e}");
                return Ok(Outcome::Invalid);
            }
            Err(e) => return Err(e.into()),
        };
    interop_sim::report::write_results(&out.join("sim"), &sim)?;
    interop_sim::live::output::write_live_results(&out.join("live"), &live)?;
    let json = serde_json::to_string_pretty(&cmp)?;
    std::fs::write(out.join("validate.json"), json + "\n")?;
    let table = interop_sim::live::validate::render(&cmp);
    std::fs::write(out.join("validate.txt"), &table)?;
    print!("{table}");
    println!("wrote {}", out.display());
    Ok(if cmp.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
