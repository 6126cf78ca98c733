//! `interop-sim sweep FILE`: every point of a scenario's [sweep] grid, in parallel, or one
//! shard of them (`--shard K/N`, combined later by `merge`).

use super::scenario_args::ScenarioArgs;
use super::{load_with, report_bug, Outcome};
use anyhow::Context;
use interop_sim::report::perf::progress::Progress;
use interop_sim::report::perf::{self, Stopwatch};
use interop_sim::scenario;
use interop_sim::sim::bug::Bug;
use interop_sim::sweep::{self, Plan, Shard, SweepError, SweepOutput};
use std::path::{Path, PathBuf};

/// Bad input (exit 2) or a failure of ours (exit 3).
pub fn classify(e: SweepError) -> anyhow::Result<Outcome> {
    match e {
        SweepError::NoSweep { .. }
        | SweepError::BadShard { .. }
        | SweepError::Read { .. }
        | SweepError::BadShardFile { .. }
        | SweepError::Mismatch(_) => {
            eprintln!("interop-sim: {e}");
            Ok(Outcome::Invalid)
        }
        other => Err(other.into()),
    }
}

pub fn sweep(
    file: &Path,
    out: Option<PathBuf>,
    threads: Option<usize>,
    shard: Option<&str>,
    args: &ScenarioArgs,
) -> anyhow::Result<Outcome> {
    let s = match load_with(Some(file), &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let plan = match Plan::new(&s, &file.display().to_string()) {
        Ok(p) => p,
        Err(e) => return classify(e),
    };
    for run in &plan.runs {
        let point = format!("{} (sweep point {})", file.display(), run.point);
        if let Err(o) = args.within_budget(&plan.scenario(run), &point) {
            return Ok(o);
        }
    }
    let shard: Option<Shard> = match shard.map(str::parse).transpose() {
        Ok(sh) => sh,
        Err(e) => return classify(e),
    };
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let base_out = Path::new("results").join(format!("{}-sweep", s.run.name));
    let runs = match shard {
        Some(sh) => plan.shard(sh),
        None => plan.runs.clone(),
    };
    let cpu_start_s = perf::process_cpu_s();
    let watch = Stopwatch::start();
    let progress = Progress::new(&format!("sweep {}", s.run.name), Some(runs.len() as u64));
    let records = match sweep::run_all(&plan, &runs, threads, &|| progress.inc()) {
        Ok(r) => r,
        Err(SweepError::Bug { run, seed, message }) => {
            progress.finish();
            let dir = out.unwrap_or(base_out);
            let replay = write_replay(&dir, &plan, &file.display().to_string(), run)?;
            return Ok(report_bug(
                &Bug { seed, message },
                &replay.display().to_string(),
            ));
        }
        Err(e) => return classify(e),
    };
    progress.finish();
    let wall_s = watch.elapsed_s();
    let cpu_s = cpu_start_s.zip(perf::process_cpu_s()).map(|(a, b)| b - a);
    let out = match shard {
        Some(sh) => {
            let out =
                out.unwrap_or_else(|| base_out.join(format!("shard-{}-of-{}", sh.index, sh.count)));
            sweep::write_shard(&out, &plan, sh, &records).context("writing the shard")?;
            out
        }
        None => {
            let out = out.unwrap_or(base_out);
            let output = SweepOutput {
                base: &plan.base,
                hash: &plan.hash,
                records: &records,
            };
            if let Err(e) = sweep::write_sweep(&out, &output) {
                return classify(e);
            }
            out
        }
    };
    write_perf(&out, wall_s, cpu_s, runs.len(), threads)?;
    let passed = records.iter().filter(|r| r.passed).count();
    outln!(
        "sweep {}: {} runs ({} points x {} repeats{}), {passed} met every expectation, {wall_s:.1}s on {threads} threads\nresults in {}",
        s.run.name,
        runs.len(),
        plan.points(),
        plan.sweep.repeats,
        shard.map_or(String::new(), |sh| format!(", shard {}/{}", sh.index, sh.count)),
        out.display()
    );
    Ok(Outcome::Passed)
}

/// Writes the scenario of run `index` (its point's values, no [sweep]) to the output folder,
/// so that `interop-sim run FILE --seed N` replays it alone; returns the file. The file keeps
/// the sweep's own seed: a repeat's derived seed may not fit a TOML integer (i64), so the
/// replay command carries it.
fn write_replay(dir: &Path, plan: &Plan, file: &str, index: u64) -> anyhow::Result<PathBuf> {
    let run = plan
        .runs
        .iter()
        .find(|r| r.index == index)
        .context("the panicked run is in the plan")?;
    let mut scenario = plan.scenario(run);
    scenario.run.seed = plan.base.run.seed;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("panicked-run-{index}.toml"));
    let text = format!(
        "# Run {index} of the sweep in {file} (point {}, repeat {}), which panicked.\n\
         # Replay: interop-sim run <this file> --seed {}\n{}",
        run.point,
        run.repeat,
        run.seed,
        scenario::to_toml(&scenario)
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// perf.json of a sweep: wall-clock figures only, beside the deterministic files.
fn write_perf(
    dir: &Path,
    wall_s: f64,
    cpu_s: Option<f64>,
    runs: usize,
    threads: usize,
) -> anyhow::Result<()> {
    let perf = serde_json::json!({
        "wall_s": wall_s,
        "runs": runs,
        "threads": threads,
        "runs_per_s": runs as f64 / wall_s.max(1e-9),
        "cpu_s": cpu_s,
        "peak_rss_mib": interop_sim::report::perf::peak_rss_mib(),
    });
    let mut text = serde_json::to_string_pretty(&perf)?;
    text.push('\n');
    let path = dir.join("perf.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
