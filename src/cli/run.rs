//! `interop-sim run [FILE]`: one simulated run and its results folder (with `--seeds`, see
//! `seeds.rs`).

use super::scenario_args::ScenarioArgs;
use super::{load_with, report_bug, Outcome, BASELINE_NAME};
use anyhow::Context;
use interop_sim::report::perf::progress::Progress;
use interop_sim::report::perf::{Perf, Stopwatch};
use interop_sim::{report, scenario, sim};
use std::path::{Path, PathBuf};

pub fn run(
    file: Option<&Path>,
    seed: Option<u64>,
    out: Option<PathBuf>,
    trace: Option<(PathBuf, Option<u64>)>,
    opts: report::RunOptions,
    args: &ScenarioArgs,
) -> anyhow::Result<Outcome> {
    let mut s = match load_with(file, &args.load_options()) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    if let Some(seed) = seed {
        s.run.seed = seed;
    }
    let shown = file.map_or(BASELINE_NAME.to_string(), |f| f.display().to_string());
    // What to run again: the file, and the design when the command line chose it.
    let replay = match args.design {
        Some(d) => format!("{shown} --design {}", d.key()),
        None => shown.clone(),
    };
    if let Err(o) = args.within_budget(&s, &shown) {
        return Ok(o);
    }
    if s.topology.design == scenario::Design::Mimi {
        for (i, f) in s.faults.iter().enumerate() {
            if f.kind.idle_under_mimi() {
                eprintln!("note: fault[{i}] acts on the gatekeeper's gateway or the hub design's interop links, which MIMI's messages do not cross: it changes nothing here (MIMI's providers meet over provider_provider)");
            }
        }
    }
    let hash = scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(&s.run.name));
    let watch = Stopwatch::start();
    let progress = Progress::new(&format!("simulating {}", s.run.name), None);
    let filter = trace.as_ref().map(|(_, m)| {
        m.map_or(sim::TraceFilter::All, |m| {
            sim::TraceFilter::Msg(interop_sim::wire::MsgId(m))
        })
    });
    let result = match sim::bug::catch(s.run.seed, || sim::run_traced(&s, &hash, filter)) {
        Ok(r) => r,
        Err(bug) => {
            progress.finish();
            let file = file.map_or(BASELINE_NAME.to_string(), |f| f.display().to_string());
            return Ok(report_bug(&bug, &file));
        }
    };
    if let Some((path, _)) = &trace {
        let mut text = result.trace.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing trace {}", path.display()))?;
    }
    progress.finish();
    let wall_s = watch.elapsed_s();
    report::write_run(&out, &s, &result, opts).context("writing results")?;
    Perf::new(
        wall_s,
        result.summary.events_processed,
        result.summary.end_time_s,
    )
    .with_crypto(result.verified_plaintexts, result.crypto_charged_ns)
    .with_media(result.media_verified, result.media_blobs_opened)
    .write(&out)
    .with_context(|| format!("writing {}", out.join("perf.json").display()))?;
    out!(
        "{}",
        report::screen::render(&result.summary, &out.display().to_string(), &replay)
    );
    if result.verified_plaintexts > 0 {
        // Every device delivery, the warm-up's included (the latency figures leave those out).
        let sm = &result.summary;
        let shown: u64 = sm.latency.samples + sm.deliveries_in_warmup;
        outln!("e2ee: {} of {shown} deliveries decrypted to exactly the plaintext sent (real Signal crypto)", result.verified_plaintexts);
    }
    if result.media_verified > 0 {
        let downloads = result.summary.media.media_downloads;
        outln!(
            "media: {} of {downloads} downloads verified and decrypted with the key and digests from their message ({} blobs decrypted, AES-CBC + HMAC)",
            result.media_verified,
            result.media_blobs_opened
        );
    }
    Ok(if result.summary.passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
