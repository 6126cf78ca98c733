//! A point's runs: one per seed, on this machine's workers, and with a folder of finished runs
//! ([`RunStore`]) shared with other processes: read when recorded, claimed and recorded when
//! run here, waited for when another process holds them.

use super::store::{self, Figures, RunStore};
use super::{PlanError, Workers};
use crate::scenario::{self, Scenario};
use crate::sim;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `s` once per seed on `w`'s workers; each run's figures for `keys`, in seed order. With
/// a folder of finished runs, a run recorded there is read instead of run, and a run another
/// process has claimed is waited for (or taken over when its claim goes stale).
pub(super) fn run_seeds(
    s: &Scenario,
    seeds: &[u64],
    keys: &[String],
    w: Workers<'_>,
    done: &(dyn Fn() + Sync),
) -> Result<Vec<Figures>, PlanError> {
    let runs: Vec<(String, Scenario)> = seeds
        .iter()
        .map(|&seed| {
            let mut run = s.clone();
            run.run.seed = seed;
            (scenario::hash(&run), run)
        })
        .collect();
    let n = runs.len();
    let slots: Mutex<Vec<Option<Figures>>> = Mutex::new(vec![None; n]);
    let put = |i: usize, f: Figures| {
        if let Ok(mut slots) = slots.lock() {
            slots[i] = Some(f);
        }
        done();
    };
    let (k, shards) = (w.shard.0 as usize, w.shard.1.max(1) as usize);
    let start = k * n / shards;
    let next = AtomicUsize::new(0);
    let waiting: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|scope| -> Result<(), PlanError> {
        if let Some(store) = w.store {
            scope.spawn(move || heartbeat(store, stopped));
        }
        let workers: Vec<_> = (0..w.threads.clamp(1, n.max(1)))
            .map(|_| {
                scope.spawn(|| -> Result<(), PlanError> {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j >= n {
                            return Ok(());
                        }
                        let i = (start + j) % n;
                        match take_run(&runs[i], keys, w.store)? {
                            Some(f) => put(i, f),
                            None => waiting.lock().map(|mut v| v.push(i)).unwrap_or(()),
                        }
                    }
                })
            })
            .collect();
        let mut result = Ok(());
        for h in workers {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if result.is_ok() {
                result = r;
            }
        }
        // Runs other processes were running: wait for their records, or run them here if their
        // claims go stale.
        let mut waiting = match waiting.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        waiting.sort_unstable();
        if let (Ok(()), Some(store)) = (&result, w.store) {
            for i in waiting {
                match wait_for(&runs[i], keys, store) {
                    Ok(f) => put(i, f),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        drop(stop);
        result
    });
    outcome?;
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(slots
        .into_iter()
        .map(|s| s.expect("every seed was run"))
        .collect())
}

/// One run's figures: read from the store, or run here (claimed in the store, and recorded);
/// `None` when another process holds its claim.
fn take_run(
    (hash, run): &(String, Scenario),
    keys: &[String],
    store: Option<&RunStore>,
) -> Result<Option<Figures>, PlanError> {
    let Some(store) = store else {
        return compute(hash, run, keys).map(Some);
    };
    if let Some(f) = store.load(hash, keys)? {
        return Ok(Some(f));
    }
    let Some(claim) = store.claim(hash)? else {
        return Ok(None);
    };
    // Recorded between the look and the claim: read it.
    if let Some(f) = store.load(hash, keys)? {
        return Ok(Some(f));
    }
    let f = compute(hash, run, keys)?;
    store.save(hash, run.run.seed, &f)?;
    drop(claim);
    Ok(Some(f))
}

/// Waits for a run another process claimed: its record, or its claim going stale (then this
/// process runs it).
fn wait_for(
    run: &(String, Scenario),
    keys: &[String],
    store: &RunStore,
) -> Result<Figures, PlanError> {
    loop {
        if let Some(f) = store.load(&run.0, keys)? {
            return Ok(f);
        }
        if !store.claimed_by_other(&run.0) {
            if let Some(f) = take_run(run, keys, Some(store))? {
                return Ok(f);
            }
        }
        // determinism: ok (polling a shared folder; what is read does not depend on when)
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Keeps this process's claims fresh until `stop` is dropped.
fn heartbeat(store: &RunStore, stop: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    // determinism: ok (refreshing claims in a shared folder; results do not depend on it)
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(store::HEARTBEAT) {
        store.refresh_held();
    }
}

/// Runs one run and reads the figures `keys` name from its summary.
fn compute(hash: &str, run: &Scenario, keys: &[String]) -> Result<Figures, PlanError> {
    let seed = run.run.seed;
    let summary = sim::bug::catch(seed, || sim::run_scenario(run, hash).summary).map_err(|b| {
        PlanError::Bug {
            seed: b.seed,
            message: b.message,
        }
    })?;
    Ok(figures(&summary, keys))
}

/// The figures `keys` name in a run's summary.
pub(super) fn figures(summary: &crate::metrics::Summary, keys: &[String]) -> Figures {
    keys.iter()
        .map(|k| (k.clone(), summary.metric(k)))
        .collect()
}
