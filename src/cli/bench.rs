//! `interop-sim bench check|update|instructions`: the regression gates CI runs (work counters
//! and instruction counts against benches/baseline/).

use super::help::BENCH as EXIT_CODES;
use super::Outcome;
use clap::Subcommand;
use interop_sim::bench::{self as regress, BenchError};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Re-run every CI scenario (scenarios/*.toml but scale-*) and compare its counters with
    /// benches/baseline/<scenario>.json; exit 1 naming each differing scenario and counter.
    #[command(after_help = EXIT_CODES)]
    Check {
        #[command(flatten)]
        dirs: BenchDirs,
    },
    /// Re-run every CI scenario and rewrite its baseline file (review the diff, then commit).
    #[command(after_help = EXIT_CODES)]
    Update {
        #[command(flatten)]
        dirs: BenchDirs,
    },
    /// Count the hot paths' instructions under callgrind (cargo bench --bench instructions,
    /// gungraun) and compare with benches/baseline/instructions.json; exit 1 on more than 2 %
    /// extra instructions in any of them.
    #[command(after_help = EXIT_CODES)]
    Instructions {
        /// Rewrite the baseline with the fresh counts instead of gating.
        #[arg(long)]
        update: bool,
        /// Extra cargo features for the counted build (e.g. demo-slow-ratchet).
        #[arg(long)]
        features: Option<String>,
        /// Read gungraun's JSON lines from this file instead of running cargo bench.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Where to write the fresh counts.
        #[arg(long, default_value = "target/instructions.json")]
        out: PathBuf,
        /// Folder of baseline files.
        #[arg(long, default_value = "benches/baseline")]
        baseline: PathBuf,
    },
    /// Run the 1:1 text pipeline (scenarios/scale-1m-text.toml cut down) at each population,
    /// each in its own process, and print CPU seconds beside wall seconds, events, events per
    /// message, simulated messages per CPU-second and peak memory. Machine figures: compare
    /// them before and after a change on an idle machine; nothing is gated.
    #[command(after_help = EXIT_CODES)]
    Pipeline {
        /// Populations, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = regress::pipeline::DEFAULT_USERS)]
        users: Vec<u32>,
        /// The scenario cut down.
        #[arg(long, default_value = "scenarios/scale-1m-text.toml")]
        scenario: PathBuf,
        /// Where to write the figures (JSON) and each run's folder.
        #[arg(long, default_value = "target/pipeline")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct BenchDirs {
    /// Folder of scenario files.
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Folder of baseline files.
    #[arg(long, default_value = "benches/baseline")]
    pub baseline: PathBuf,
}

pub fn bench(command: BenchCommand) -> anyhow::Result<Outcome> {
    let result = match command {
        BenchCommand::Check { dirs } => bench_check(&dirs),
        BenchCommand::Update { dirs } => bench_update(&dirs),
        BenchCommand::Pipeline {
            users,
            scenario,
            out,
        } => bench_pipeline(&users, &scenario, &out),
        BenchCommand::Instructions {
            update,
            features,
            from,
            out,
            baseline,
        } => bench_instructions(
            update,
            features.as_deref(),
            from.as_deref(),
            &out,
            &baseline,
        ),
    };
    match result {
        Err(e) if e.is_invalid_input() => {
            eprintln!("interop-sim bench: {e}");
            Ok(Outcome::Invalid)
        }
        other => Ok(other?),
    }
}

fn bench_check(dirs: &BenchDirs) -> Result<Outcome, BenchError> {
    let checks = regress::counters::check(&dirs.scenarios, &dirs.baseline)?;
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed()).collect();
    for c in &checks {
        for line in c.report() {
            println!("{line}");
        }
    }
    println!(
        "bench check: {} of {} scenarios match {}",
        checks.len() - failed.len(),
        checks.len(),
        dirs.baseline.display()
    );
    if failed.is_empty() {
        return Ok(Outcome::Passed);
    }
    println!(
        "if the change is intended: interop-sim bench update, then review and commit the diff"
    );
    Ok(Outcome::Failed)
}

fn bench_update(dirs: &BenchDirs) -> Result<Outcome, BenchError> {
    let written = regress::counters::update(&dirs.scenarios, &dirs.baseline)?;
    let changed: Vec<&str> = written
        .iter()
        .filter(|(_, c)| *c)
        .map(|(n, _)| n.as_str())
        .collect();
    println!(
        "bench update: {} scenarios, {} baseline files changed{}{}",
        written.len(),
        changed.len(),
        if changed.is_empty() { "" } else { ": " },
        changed.join(", ")
    );
    Ok(Outcome::Passed)
}

fn bench_pipeline(users: &[u32], scenario: &Path, out: &Path) -> Result<Outcome, BenchError> {
    use regress::pipeline;
    let base =
        interop_sim::scenario::load(scenario).map_err(|e| BenchError::Scenario(e.to_string()))?;
    let exe = std::env::current_exe().map_err(|e| BenchError::io("current_exe", e))?;
    std::fs::create_dir_all(out).map_err(|e| BenchError::io(out, e))?;
    let mut points = Vec::new();
    for &n in users {
        let s = pipeline::scaled(&base, n)?;
        let file = out.join(format!("{}.toml", s.run.name));
        let dir = out.join(&s.run.name);
        std::fs::write(&file, interop_sim::scenario::to_toml(&s))
            .map_err(|e| BenchError::io(&file, e))?;
        eprintln!("bench pipeline: {n} users ...");
        let status = std::process::Command::new(&exe)
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| BenchError::io(&exe, e))?;
        if !matches!(status.code(), Some(0 | 1)) {
            return Err(BenchError::Scenario(format!(
                "{}: the run exited with {status}",
                file.display()
            )));
        }
        let json = |name: &str| -> Result<serde_json::Value, BenchError> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
            serde_json::from_str(&text).map_err(|e| BenchError::BadFile {
                path: path.clone(),
                message: e.to_string(),
            })
        };
        points.push(pipeline::point(
            n,
            &json("summary.json")?,
            &json("perf.json")?,
        )?);
    }
    for line in pipeline::table(&points) {
        println!("{line}");
    }
    let path = out.join("pipeline.json");
    let text = serde_json::to_string_pretty(&points).unwrap_or_default() + "\n";
    std::fs::write(&path, text).map_err(|e| BenchError::io(&path, e))?;
    println!(
        "bench pipeline: {} populations, figures in {}",
        points.len(),
        path.display()
    );
    Ok(Outcome::Passed)
}

fn bench_instructions(
    update: bool,
    features: Option<&str>,
    from: Option<&Path>,
    out: &Path,
    baseline_dir: &Path,
) -> Result<Outcome, BenchError> {
    use regress::instructions as ir;
    let fresh = match from {
        Some(path) => ir::parse_gungraun_json(&std::fs::read_to_string(path).map_err(|e| {
            BenchError::Io {
                path: path.to_path_buf(),
                err: e,
            }
        })?)?,
        None => ir::measure(features)?,
    };
    ir::write(out, &fresh)?;
    let baseline = baseline_dir.join("instructions.json");
    if update {
        let changed = ir::write(&baseline, &fresh)?;
        println!(
            "bench instructions: {} hot paths, {} {}",
            fresh.len(),
            baseline.display(),
            if changed { "rewritten" } else { "unchanged" }
        );
        return Ok(Outcome::Passed);
    }
    let old = ir::read(&baseline)?.unwrap_or_default();
    let lines = ir::gate(&old, &fresh);
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| !l.passed()).count();
    println!(
        "bench instructions: {} of {} hot paths within +{} % of {} (fresh counts: {})",
        lines.len() - failed,
        lines.len(),
        ir::TOLERANCE_PERCENT,
        baseline.display(),
        out.display()
    );
    if failed == 0 {
        return Ok(Outcome::Passed);
    }
    println!("if the change is intended: interop-sim bench instructions --update, then review and commit the diff");
    Ok(Outcome::Failed)
}
