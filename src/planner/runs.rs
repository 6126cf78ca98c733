//! A point's runs: one per seed, on this machine's workers, and with a folder of finished runs
//! ([`RunStore`]) shared with other processes: read when recorded, claimed and recorded when
//! run here, waited for when another process holds them.
//!
//! Shards share a point's runs out: shard K of N first takes its own share (the K-th N-th of
//! the seeds), and only when that is done the others' runs nobody has claimed yet (a shard
//! that is not running, as in a job array run one task after the other). Then it waits for
//! what others hold, taking over a claim whose owner is gone.

use super::store::{self, ClaimWatch, Claimed, Figures, RunStore};
use super::{PlanError, Workers};
use crate::scenario::{self, Scenario};
use crate::sim;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// How often a waiting process looks at the runs others hold.
const POLL_MS: u64 = 200;

/// What became of one run in a pass.
type Slot = Option<Result<Figures, PlanError>>;

/// Runs `s` once per seed on `w`'s workers; each run's figures for `keys`, in seed order. An
/// error is the one of the first seed that failed, whichever worker met it first.
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
    let slots: Mutex<Vec<Slot>> = Mutex::new((0..n).map(|_| None).collect());
    let (k, shards) = (w.shard.0 as usize, w.shard.1.max(1) as usize);
    let own: Vec<usize> = (k * n / shards..(k + 1) * n / shards).collect();
    let others: Vec<usize> = (0..n).filter(|i| !own.contains(i)).collect();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        if let Some(store) = w.store {
            scope.spawn(move || heartbeat(store, stopped));
        }
        let mut waiting = pass(&runs, &own, keys, w, &slots, done);
        if no_error(&slots) {
            waiting.extend(pass(&runs, &others, keys, w, &slots, done));
        }
        if let (Some(store), true) = (w.store, no_error(&slots)) {
            wait_for_others(&runs, waiting, keys, store, w, &slots, done);
        }
        drop(stop);
    });
    let slots = slots.into_inner().unwrap_or_else(|p| p.into_inner());
    // The lowest failing seed was always tried: every seed below it passed, and a pass stops
    // taking runs only after an error.
    if slots.iter().any(|s| matches!(s, Some(Err(_)))) {
        let first = slots.into_iter().flatten().find_map(Result::err);
        return Err(first.expect("an error was found above"));
    }
    Ok(slots
        .into_iter()
        .map(|s| match s {
            Some(Ok(f)) => f,
            _ => unreachable!("without an error every seed was run"),
        })
        .collect())
}

fn no_error(slots: &Mutex<Vec<Slot>>) -> bool {
    slots
        .lock()
        .map(|s| !s.iter().any(|x| matches!(x, Some(Err(_)))))
        .unwrap_or(false)
}

/// Takes the runs `indices` on the workers: each is read, or claimed and run, or (held by
/// another process) returned for waiting. Stops taking new runs after an error.
fn pass(
    runs: &[(String, Scenario)],
    indices: &[usize],
    keys: &[String],
    w: Workers<'_>,
    slots: &Mutex<Vec<Slot>>,
    done: &(dyn Fn() + Sync),
) -> Vec<usize> {
    let next = AtomicUsize::new(0);
    let waiting = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..w.threads.clamp(1, indices.len().max(1)) {
            scope.spawn(|| {
                while let Some(&i) = indices.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if !no_error(slots) {
                        return;
                    }
                    match take_run(&runs[i], keys, w.store) {
                        Ok(None) => waiting.lock().map(|mut v| v.push(i)).unwrap_or(()),
                        r => {
                            if let Ok(mut s) = slots.lock() {
                                s[i] = r.transpose();
                            }
                            done();
                        }
                    }
                }
            });
        }
    });
    let mut waiting = waiting.into_inner().unwrap_or_else(|p| p.into_inner());
    waiting.sort_unstable();
    waiting
}

/// Waits for the runs other processes hold: each round reads what they recorded, and takes the
/// runs whose claims are gone or were taken over (run on the workers).
fn wait_for_others(
    runs: &[(String, Scenario)],
    mut waiting: Vec<usize>,
    keys: &[String],
    store: &RunStore,
    w: Workers<'_>,
    slots: &Mutex<Vec<Slot>>,
    done: &(dyn Fn() + Sync),
) {
    let mut watches: Vec<ClaimWatch> = (0..runs.len()).map(|_| ClaimWatch::default()).collect();
    // Rounds waited per run: a wait a sibling shard ends in a moment is not worth a line; one
    // that lasts a heartbeat (5 s of 200 ms rounds) is said once.
    let mut rounds: Vec<u32> = vec![0; runs.len()];
    let say_after = (store::HEARTBEAT.as_millis() / POLL_MS as u128) as u32;
    while !waiting.is_empty() && no_error(slots) {
        let mut free = Vec::new();
        let mut still = Vec::new();
        for i in waiting {
            let (hash, run) = &runs[i];
            match store.load(hash, run.run.seed, keys) {
                Ok(Some(f)) => {
                    if let Ok(mut s) = slots.lock() {
                        s[i] = Some(Ok(f));
                    }
                    done();
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    if let Ok(mut s) = slots.lock() {
                        s[i] = Some(Err(e.into()));
                    }
                    continue;
                }
            }
            match watches[i].look(store, hash) {
                Claimed::Free => free.push(i),
                Claimed::TakenOver(who) => {
                    (w.wait_note)(&format!(
                        "run {hash} (seed {}): its claim by {who} went quiet; running it here",
                        run.run.seed
                    ));
                    free.push(i);
                }
                Claimed::Alive(who) => {
                    rounds[i] += 1;
                    if rounds[i] == say_after {
                        (w.wait_note)(&format!(
                            "waiting for run {hash} (seed {}), claimed by {who}; taken over if its claim does not move for {} s",
                            run.run.seed,
                            store::STALE_DEFAULT.as_secs()
                        ));
                    }
                    still.push(i);
                }
            }
        }
        // A free run another waiter claims first comes back here to wait.
        still.extend(pass(runs, &free, keys, w, slots, done));
        still.sort_unstable();
        waiting = still;
        if !waiting.is_empty() {
            // determinism: ok (polling a shared folder; what is read does not depend on when)
            std::thread::sleep(std::time::Duration::from_millis(POLL_MS));
        }
    }
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
    let seed = run.run.seed;
    if let Some(f) = store.load(hash, seed, keys)? {
        return Ok(Some(f));
    }
    let Some(claim) = store.claim(hash)? else {
        return Ok(None);
    };
    // Recorded between the look and the claim: read it.
    if let Some(f) = store.load(hash, seed, keys)? {
        return Ok(Some(f));
    }
    let f = compute(hash, run, keys)?;
    store.save(hash, seed, &f)?;
    drop(claim);
    Ok(Some(f))
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
