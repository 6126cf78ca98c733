//! `interop-sim validate FILE`: one scenario in the simulator and live, and how far apart
//! they land (validate.json, validate.txt, validate.html); with `--levels`, at fractions of
//! the live saturation it finds first.

use super::live_args::LiveArgs;
use super::{load, Outcome};
use anyhow::Context as _;
use interop_sim::live::ladder::{self, Probe};
use interop_sim::live::validate::{self as v, Comparison, Model, Network};
use interop_sim::live::{LiveError, LiveOutcome};
use interop_sim::report::validate_page::{self, ValidateView};
use interop_sim::scenario::Scenario;
use interop_sim::sim::RunResult;
use std::path::{Path, PathBuf};

pub fn validate(
    file: &Path,
    out: Option<PathBuf>,
    model: Model,
    tolerance: f64,
    (levels, repeat): (&[f64], usize),
    args: &LiveArgs,
) -> anyhow::Result<Outcome> {
    if !(tolerance.is_finite() && tolerance > 0.0 && tolerance <= 10.0) {
        eprintln!("interop-sim validate: --tolerance must be a fraction above 0 (0.1 = 10 %), got {tolerance}");
        return Ok(Outcome::Invalid);
    }
    if let Some(bad) = levels
        .iter()
        .find(|f| !(f.is_finite() && **f > 0.0 && **f <= 1.0))
    {
        eprintln!("interop-sim validate: --levels: each level is a fraction of the live saturation in (0, 1], such as 0.3,0.6,0.9; got {bad}");
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
    let scenario_network = model.network == Network::Scenario;
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-validate", s.run.name)));
    let title = format!("interop-sim validate: {}", s.run.name);
    // One run's results in `folder`, or in `folder/run-<k>` when the rate is validated more
    // than once.
    let run_folder = |folder: &Path, run: usize| match repeat {
        1 => folder.to_path_buf(),
        _ => folder.join(format!("run-{}", run + 1)),
    };
    let write_level = |folder: &Path, sim: &RunResult, live: &LiveOutcome, ran: &Scenario| {
        let opts = interop_sim::report::RunOptions { ledger: false };
        interop_sim::report::write_run(&folder.join("sim"), ran, sim, opts)?;
        // The simulated copy as it ran: this machine's model, to run again or to change.
        let model = folder.join("sim").join("scenario.toml");
        std::fs::write(&model, interop_sim::scenario::to_toml(ran))
            .with_context(|| format!("writing {}", model.display()))?;
        interop_sim::live::output::write_live_results(&folder.join("live"), ran, live)?;
        anyhow::Ok(())
    };
    // Each run's view: the first run's makes the level's, later ones add their spectra.
    let view_of = |views: &mut Vec<validate_page::LevelView>,
                   run: usize,
                   cmp: &Comparison,
                   sim: &RunResult,
                   live: &LiveOutcome,
                   stem: &str,
                   heading: &str,
                   folder: &Path| {
        let rel = folder.strip_prefix(&out).unwrap_or(folder);
        let rel = match rel.to_string_lossy().into_owned() {
            r if r.is_empty() => ".".to_string(),
            r => r,
        };
        match (run, views.last_mut()) {
            (0, _) | (_, None) => views.push(v::level_view(cmp, sim, live, stem, heading, &rel)),
            (_, Some(view)) => v::add_run(view, run, sim, live, &rel),
        }
    };
    let result = if levels.is_empty() {
        let mut views = Vec::new();
        let mut runs = Vec::new();
        let mut single = || -> anyhow::Result<()> {
            for run in 0..repeat {
                let (cmp, sim, live, ran) = v::validate(&s, &hash, &opts, model, tolerance, &[])?;
                let folder = run_folder(&out, run);
                write_level(&folder, &sim, &live, &ran)?;
                if repeat > 1 {
                    eprint!("{}", v::render(&cmp));
                }
                view_of(
                    &mut views,
                    run,
                    &cmp,
                    &sim,
                    &live,
                    "latency_spectrum",
                    "sim and live",
                    &folder,
                );
                runs.push(cmp);
            }
            Ok(())
        };
        single().map(|()| {
            let cmp = match runs.len() {
                1 => runs.remove(0),
                _ => interop_sim::live::repeats::combine(&runs),
            };
            if let Some(view) = views.last_mut() {
                v::set_rows(view, &cmp);
            }
            (vec![cmp], views, None)
        })
    } else {
        let progress = |p: &Probe| {
            eprintln!(
                "validate: probe {:>9.1} msg/s: delivered {:>9.1}/s ({:.2} % of those sent), p99 {:.3} ms, {}",
                p.rate_per_s,
                p.delivered_per_s,
                100.0 * p.delivered as f64 / p.sent.max(1) as f64,
                p.p99_ms,
                if p.kept_up {
                    "kept up"
                } else {
                    "did not keep up"
                }
            )
        };
        let mut views = Vec::new();
        let level = |f: f64,
                     run: usize,
                     cmp: &Comparison,
                     sim: &RunResult,
                     live: &LiveOutcome,
                     ran: &Scenario| {
            let stem = format!("level-{f:.2}");
            let folder = run_folder(&out.join(&stem), run);
            write_level(&folder, sim, live, ran)?;
            eprint!("{}", v::render(cmp));
            let heading = format!(
                "{:.0} % of saturation: {:.0} msg/s",
                f * 100.0,
                cmp.rate_per_s
            );
            view_of(&mut views, run, cmp, sim, live, &stem, &heading, &folder);
            anyhow::Ok(())
        };
        let runs = (levels, repeat);
        ladder::ladder(&s, &hash, &opts, model, tolerance, runs, progress, level).map(|l| {
            let probes = l
                .saturation
                .probes
                .iter()
                .map(|p| {
                    [
                        format!("{:.1}", p.rate_per_s),
                        format!("{:.1}", p.delivered_per_s),
                        format!("{:.3}", p.p99_ms),
                        if p.kept_up { "yes" } else { "no" }.to_string(),
                    ]
                })
                .collect();
            let sat = (
                format!(
                    "{:.0} msg/s, {}",
                    l.saturation.rate_per_s, l.saturation.rule
                ),
                probes,
            );
            let json = serde_json::to_string_pretty(&l).unwrap_or_default();
            let cmps: Vec<Comparison> = l.levels.into_iter().map(|(_, c)| c).collect();
            let mut views = std::mem::take(&mut views);
            for (view, c) in views.iter_mut().zip(&cmps) {
                v::set_rows(view, c);
            }
            (cmps, views, Some((sat, json, l.reach)))
        })
    };
    let (cmps, views, ladder) = match result {
        Ok(r) => r,
        Err(e) => {
            match e.downcast_ref::<LiveError>() {
                Some(LiveError::Schedule(e)) => {
                    eprintln!("interop-sim validate: {e}");
                    return Ok(Outcome::Invalid);
                }
                Some(LiveError::NoSaturation(why)) => {
                    eprintln!("interop-sim validate: FAILED: {why}");
                    return Ok(Outcome::Failed);
                }
                _ => {}
            }
            return Err(e);
        }
    };
    let passed = cmps.iter().all(|c| c.passed);
    let mut table = String::new();
    for c in &cmps {
        table.push_str(&v::render(c));
    }
    let refs: Vec<&Comparison> = cmps.iter().collect();
    let verdict = v::verdict(&refs);
    let (saturation, json, reach) = match ladder {
        Some(((rule, probes), json, reach)) => {
            table.push_str(&format!("validate: saturation {rule}\n"));
            table.push_str(&format!(
                "validate: where the model holds (levels as shares of that saturation; tolerance +-{:.0} %):\n",
                tolerance * 100.0
            ));
            for r in &reach {
                table.push_str(&format!(
                    "  {}\n",
                    interop_sim::live::reach::render(r, tolerance)
                ));
            }
            table.push_str(&format!(
                "validate: ladder {}: {verdict}\n",
                if passed { "PASSED" } else { "FAILED" }
            ));
            let cells = reach.iter().map(interop_sim::live::reach::cells).collect();
            (Some((rule, probes)), json, cells)
        }
        None => (None, serde_json::to_string_pretty(&cmps[0])?, Vec::new()),
    };
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("validate.json"), json + "\n")?;
    std::fs::write(out.join("validate.txt"), &table)?;
    let meta = format!(
        "{} · tolerance {:.0} % · live on loopback, the simulated copy {}",
        file.display(),
        tolerance * 100.0,
        if scenario_network {
            "on the scenario's network"
        } else {
            "on this machine's measured loopback hop and node costs"
        }
    );
    let view = ValidateView {
        title,
        meta,
        saturation,
        reach,
        levels: views,
        passed,
        verdict,
    };
    validate_page::write(&out, &view)?;
    print!("{table}");
    println!("wrote {}", out.join("validate.html").display());
    Ok(if passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
