//! The CPU time of a runtime's worker threads: what the server nodes' host spent, apart from the
//! load generator's threads when those run on a runtime of their own. Read from Linux's
//! per-thread scheduler statistics (`/proc/self/task/<tid>/schedstat`, nanoseconds on a core);
//! elsewhere there is no figure and the callers say so.
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
    pub fn count(&self) -> usize {
        self.0.lock().map_or(0, |t| t.len())
    }

    /// Each registered thread's time on a core so far, ns (threads that cannot be read are
    /// left out).
    pub fn snapshot(&self) -> Snapshot {
        let threads = self.0.lock().map(|t| t.clone()).unwrap_or_default();
        Snapshot(
            threads
                .into_iter()
                .filter_map(|tid| Some((tid, thread_cpu_ns(tid)?)))
                .collect(),
        )
    }

    /// Nanoseconds the registered threads ran on a core since `start`: a thread registered
    /// since counts from its start, one gone since (a blocking-pool thread that idled out)
    /// counts nothing. `None` when no thread can be read (no /proc).
    pub fn cpu_ns_since(&self, start: &Snapshot) -> Option<u64> {
        let now = self.snapshot();
        (!now.0.is_empty()).then(|| {
            now.0
                .iter()
                .map(|(tid, ns)| ns.saturating_sub(start.0.get(tid).copied().unwrap_or(0)))
                .sum()
        })
    }
}

/// Per thread id, its time on a core, ns.
#[derive(Clone, Debug, Default)]
pub struct Snapshot(std::collections::BTreeMap<u32, u64>);

/// The first field of a thread's schedstat: its time on a core, ns.
fn thread_cpu_ns(tid: u32) -> Option<u64> {
    if tid == 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    stat.split_whitespace().next()?.parse().ok()
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
            (t.cpu_ns_since(&from_start), t.cpu_ns_since(&mid))
        })
        .join()
        .expect("thread");
        assert_eq!(threads.count(), 1);
        if std::path::Path::new("/proc/thread-self").exists() {
            let (all, since_mid) = (during.expect("readable"), mid.expect("readable"));
            assert!(since_mid > 0, "the loop ran on a core");
            assert!(
                all >= since_mid,
                "from the start counts more: {all} < {since_mid}"
            );
        }
        // The thread has ended: it counts nothing, and with no thread left there is no figure.
        assert_eq!(threads.cpu_ns_since(&start), None);
    }
}
