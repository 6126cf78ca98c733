//! Runs a list of planned runs on `threads` workers (std::thread::scope): each worker takes the
//! next index from a shared counter, and results are stored by index, so the output is in run
//! order whatever the number of threads or the order in which runs finish. Runs are handed out
//! heaviest first (by messages offered), so that no long run starts last and leaves the other
//! cores idle at the end. A run that panics (a bug) is caught: the others finish, and the
//! first such run in run order is the error.

use super::plan::{Plan, PlannedRun};
use super::record::RunRecord;
use super::SweepError;
use crate::scenario;
use crate::sim;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Called after each finished run (a progress bar's `inc`).
pub type Progress<'a> = &'a (dyn Fn() + Sync);

/// Runs `runs` (a plan's runs, or one shard's) and returns their records in the order given.
pub fn run_all(
    plan: &Plan,
    runs: &[PlannedRun],
    threads: usize,
    progress: Progress<'_>,
) -> Result<Vec<RunRecord>, SweepError> {
    let workers = threads.clamp(1, runs.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<RunRecord, SweepError>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    let send_window_s = plan.base.run.duration_ns as f64 / 1e9;
    let order = heaviest_first(plan, runs);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let run = &runs[i];
                    let s = plan.scenario(run);
                    let record = match sim::bug::catch(run.seed, || {
                        sim::run_scenario(&s, &scenario::hash(&s))
                    }) {
                        Ok(result) => RunRecord::new(run, send_window_s, &result),
                        Err(bug) => Err(SweepError::Bug {
                            run: run.index,
                            seed: bug.seed,
                            message: bug.message,
                        }),
                    };
                    // A poisoned lock means another worker panicked; the scope re-raises that panic.
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(record);
                    }
                    progress();
                }
            });
        }
    });
    let slots = slots
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slots
        .into_iter()
        .map(|slot| slot.expect("every index below runs.len() was taken by a worker"))
        .collect()
}

/// Indices of `runs` by decreasing offered messages (users x rate x send window); ties keep
/// run order. Only the schedule depends on it, never the results.
fn heaviest_first(plan: &Plan, runs: &[PlannedRun]) -> Vec<usize> {
    let cost: Vec<f64> = runs
        .iter()
        .map(|r| {
            let s = plan.scenario(r);
            let users: f64 = s.providers.iter().map(|p| p.users as f64).sum();
            users * s.workload.messages_per_user_hour * s.run.duration_ns as f64
        })
        .collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]).then(a.cmp(&b)));
    order
}
