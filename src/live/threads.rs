//! What a runtime's worker threads did: the servers' host, apart from the load generator's
//! threads when those run on a runtime of their own. Tokio's own counts (time running tasks,
//! parks), and the scheduler's per thread from Linux's /proc (time on a core, time runnable
//! and waiting, preemptions); elsewhere the scheduler's figures are `None`.
//! determinism: ok (live mode: a measurement of this machine)

use std::sync::{Arc, Mutex};

/// The threads registered so far (each worker registers itself as it starts).
#[derive(Clone, Debug, Default)]
pub struct WorkerThreads(Arc<Mutex<Vec<u32>>>);

impl WorkerThreads {
    /// Registers the calling thread (a runtime's `on_thread_start` hook). A thread whose id
    /// cannot be read is left out of the figures.
    pub fn register_current(&self) {
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok());
        if let Ok(mut threads) = self.0.lock() {
            // 0 stands for an unreadable id: the sum then says it has no figure.
            threads.push(tid.unwrap_or(0));
        }
    }

    /// How many threads have registered.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.0.lock().map_or(0, |t| t.len())
    }

    /// Each registered thread's times so far (threads that cannot be read are left out).
    pub fn snapshot(&self) -> Snapshot {
        let threads = self.0.lock().map(|t| t.clone()).unwrap_or_default();
        Snapshot(
            threads
                .into_iter()
                .filter_map(|tid| Some((tid, ThreadTimes::read(tid)?)))
                .collect(),
        )
    }

    /// What the registered threads did since `start`, summed: a thread registered since
    /// counts from its start, one gone since (a blocking-pool thread that idled out) counts
    /// nothing. `None` when no thread can be read (no /proc).
    pub fn since(&self, start: &Snapshot) -> Option<ThreadTimes> {
        let now = self.snapshot();
        (!now.0.is_empty()).then(|| {
            now.0.iter().fold(ThreadTimes::default(), |sum, (tid, t)| {
                let before = start.0.get(tid).copied().unwrap_or_default();
                sum.plus(&t.minus(&before))
            })
        })
    }
}

/// Per thread id, its times.
#[derive(Clone, Debug, Default)]
pub struct Snapshot(std::collections::BTreeMap<u32, ThreadTimes>);

/// What the scheduler says of a thread: time on a core, time runnable and waiting for one
/// (after a wake-up, or taken off by preemption), and how many times it was preempted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadTimes {
    pub run_ns: u64,
    pub wait_ns: u64,
    pub preempted: u64,
}

impl ThreadTimes {
    /// From `/proc/self/task/<tid>/schedstat` (run and wait ns) and its status's
    /// `nonvoluntary_ctxt_switches`.
    fn read(tid: u32) -> Option<ThreadTimes> {
        if tid == 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
        let mut f = stat.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (run_ns, wait_ns) = (f.next()??, f.next()??);
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
        let preempted = status
            .lines()
            .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))?
            .trim()
            .parse()
            .ok()?;
        Some(ThreadTimes {
            run_ns,
            wait_ns,
            preempted,
        })
    }

    fn minus(&self, o: &ThreadTimes) -> ThreadTimes {
        ThreadTimes {
            run_ns: self.run_ns.saturating_sub(o.run_ns),
            wait_ns: self.wait_ns.saturating_sub(o.wait_ns),
            preempted: self.preempted.saturating_sub(o.preempted),
        }
    }

    fn plus(&self, o: &ThreadTimes) -> ThreadTimes {
        ThreadTimes {
            run_ns: self.run_ns + o.run_ns,
            wait_ns: self.wait_ns + o.wait_ns,
            preempted: self.preempted + o.preempted,
        }
    }
}

/// What one runtime's worker threads did over a stretch of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct RuntimeLoad {
    pub threads: usize,
    /// Time running tasks, s (tokio's busy duration: from waking to parking again, so not the
    /// parking, the idle waits nor the OS's wake-ups).
    pub busy_s: f64,
    /// How many times the threads parked: each park ends a stretch of work, and the next item
    /// to come wakes a thread.
    pub parks: u64,
    /// The scheduler's view (`None` without /proc): time on a core, s; time runnable and
    /// waiting for a core, s; times preempted.
    pub on_core_s: Option<f64>,
    pub runnable_waiting_s: Option<f64>,
    pub preempted: Option<u64>,
}

/// Measures a runtime from [`RuntimeMeter::start`] to [`RuntimeMeter::load`].
pub struct RuntimeMeter {
    threads: WorkerThreads,
    handle: tokio::runtime::Handle,
    start: (Snapshot, u128, u64),
}

impl RuntimeMeter {
    /// From now on, the runtime of `handle`, whose threads registered in `threads`.
    pub fn start(threads: WorkerThreads, handle: tokio::runtime::Handle) -> Self {
        let (busy_ns, parks) = busy(&handle);
        let start = (threads.snapshot(), busy_ns, parks);
        RuntimeMeter {
            threads,
            handle,
            start,
        }
    }

    /// What the runtime did since the start.
    pub fn load(&self) -> RuntimeLoad {
        let (busy_ns, parks) = busy(&self.handle);
        let sched = self.threads.since(&self.start.0);
        RuntimeLoad {
            threads: self.handle.metrics().num_workers(),
            busy_s: busy_ns.saturating_sub(self.start.1) as f64 / 1e9,
            parks: parks.saturating_sub(self.start.2),
            on_core_s: sched.map(|t| t.run_ns as f64 / 1e9),
            runnable_waiting_s: sched.map(|t| t.wait_ns as f64 / 1e9),
            preempted: sched.map(|t| t.preempted),
        }
    }
}

/// A runtime's workers' time running tasks (ns) and parks so far.
fn busy(rt: &tokio::runtime::Handle) -> (u128, u64) {
    let m = rt.metrics();
    (0..m.num_workers())
        .map(|w| {
            let busy = m.worker_total_busy_duration(w).as_nanos();
            (busy, m.worker_park_count(w))
        })
        .fold((0, 0), |(b, p), (bw, pw)| (b + bw, p + pw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_registered_thread_shows_its_cpu_time() {
        let threads = WorkerThreads::default();
        let t = threads.clone();
        let start = threads.snapshot();
        let from_start = start.clone();
        let (during, mid) = std::thread::spawn(move || {
            t.register_current();
            let mid = t.snapshot();
            // Work the optimizer cannot drop, a few milliseconds of it.
            let mut x = 1u64;
            for i in 0..20_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            std::hint::black_box(x);
            (t.since(&from_start), t.since(&mid))
        })
        .join()
        .expect("thread");
        assert_eq!(threads.count(), 1);
        if std::path::Path::new("/proc/thread-self").exists() {
            let (all, since_mid) = (during.expect("readable"), mid.expect("readable"));
            assert!(since_mid.run_ns > 0, "the loop ran on a core");
            assert!(
                all.run_ns >= since_mid.run_ns,
                "{all:?} against {since_mid:?}"
            );
        }
        // The thread has ended: it counts nothing, and with no thread left there is no figure.
        assert_eq!(threads.since(&start), None);
    }
}
