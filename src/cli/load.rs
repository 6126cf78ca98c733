//! `interop-sim load FILE --target ADDR`: one load generator against servers started with
//! `serve`.

use super::live_args::LiveArgs;
use super::{load, Outcome};
use std::path::{Path, PathBuf};

pub fn load_gen(
    file: &Path,
    target: &str,
    slice: &str,
    out: Option<PathBuf>,
    args: &LiveArgs,
) -> anyhow::Result<Outcome> {
    let s = match load(Some(file)) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let base = match interop_sim::live::loopback_addr(target) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("interop-sim load: --target: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    let parsed = slice
        .split_once('/')
        .and_then(|(k, n)| Some((k.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        .filter(|&(k, n)| n >= 1 && k < n && n <= 1024);
    let Some((k, n)) = parsed else {
        eprintln!("interop-sim load: --slice must be K/N with 0 <= K < N <= 1024, got {slice:?}");
        return Ok(Outcome::Invalid);
    };
    let mut opts = match args.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("interop-sim load: {e}");
            return Ok(Outcome::Invalid);
        }
    };
    opts.remote = Some(interop_sim::live::options::Remote {
        layout: interop_sim::live::topology::Layout { base },
        k,
        n,
    });
    let hash = interop_sim::scenario::hash(&s);
    let out = out.unwrap_or_else(|| Path::new("results").join(format!("{}-load-{k}", s.run.name)));
    let outcome = match interop_sim::live::run_live(&s, &hash, &opts) {
        Ok(o) => o,
        Err(interop_sim::live::LiveError::Schedule(e)) => {
            eprintln!("interop-sim load: {e}");
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    let ran = interop_sim::live::prepare::live_scenario(&s, opts.users);
    interop_sim::live::output::write_live_results(&out, &ran, &outcome)?;
    interop_sim::report::perf::Perf::new(
        outcome.report.wall_s,
        0,
        outcome.result.summary.end_time_s,
    )
    .write(&out)?;
    print!(
        "{}",
        interop_sim::report::screen::render(
            &outcome.result.summary,
            &out.display().to_string(),
            &file.display().to_string(),
        )
    );
    println!("{}", interop_sim::live::outcome::render(&outcome.report));
    Ok(if outcome.passed() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
