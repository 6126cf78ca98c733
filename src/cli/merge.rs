//! `interop-sim merge DIRS --out DIR`: the shard folders of one sweep combined into the output
//! of the unsharded sweep.

use super::sweep::classify;
use super::Outcome;
use interop_sim::sweep::{self, SweepOutput};
use std::path::{Path, PathBuf};

pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Outcome> {
    let mut shards = Vec::new();
    for d in dirs {
        match sweep::read_shard(d) {
            Ok(s) => shards.push(s),
            Err(e) => return classify(e),
        }
    }
    let merged = match sweep::merge(shards) {
        Ok(m) => m,
        Err(e) => return classify(e),
    };
    let output = SweepOutput {
        base: &merged.base,
        hash: &merged.hash,
        records: &merged.records,
    };
    if let Err(e) = sweep::write_sweep(out, &output) {
        return classify(e);
    }
    outln!(
        "merged {} shards, {} runs of sweep {}\nresults in {}",
        dirs.len(),
        merged.records.len(),
        merged.base.run.name,
        out.display()
    );
    Ok(Outcome::Passed)
}
