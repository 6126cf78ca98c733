//! Finished plan runs kept in a folder (`plan --runs DIR`): a plan that stopped (a crash, a
//! killed job, a machine lost) picks up where it was, and several `plan --shard K/N` processes
//! on different machines share one folder, each running what the others have not taken.
//!
//! A run is named by the hash of its resolved scenario, seed included. Its record holds the
//! figures the plan's SLOs read, each as the bits of its `f64`, so a figure read back is the
//! one computed: a plan that reads its runs from the folder writes what a plan that ran them
//! writes, byte for byte. A run being computed has a claim beside it, created exclusively and
//! kept fresh while the run lasts; a claim left stale by a process that died is taken over.
//! Two processes that both end up running one run write the same bytes (runs are
//! deterministic), each through a file of its own renamed into place, so a reader never sees
//! half a record.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A claim not refreshed for this long belongs to a process that is gone.
pub const STALE_DEFAULT: Duration = Duration::from_secs(60);
/// How often a running process refreshes its claims (well inside [`STALE_DEFAULT`]).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a plan run record ({why}); remove it, or give --runs another folder", path.display())]
    Corrupt { path: PathBuf, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One run's figures, by SLO key (`None`: not measured in that run).
pub type Figures = BTreeMap<String, Option<f64>>;

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    run: String,
    seed: u64,
    /// Each figure as 16 hex digits of its bits, or null.
    figures: BTreeMap<String, Option<String>>,
}

/// The folder of finished runs.
#[derive(Debug)]
pub struct RunStore {
    dir: PathBuf,
    stale: Duration,
    /// Names this process's temporary files apart from its other threads'.
    writes: AtomicU64,
    /// The claims this process holds, refreshed by [`RunStore::refresh_held`].
    held: Mutex<BTreeSet<PathBuf>>,
    /// Runs read from the folder rather than run (for the command's last line).
    read: AtomicU64,
}

/// A run this process took: the claim file goes when the guard does (the run finished, or
/// failed and another process may try it).
#[derive(Debug)]
pub struct Claim<'a> {
    store: &'a RunStore,
    path: PathBuf,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.store.held.lock() {
            held.remove(&self.path);
        }
        // Gone already (taken over as stale): nothing to undo.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl RunStore {
    /// The folder `dir`, made if missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(RunStore {
            dir: dir.to_path_buf(),
            stale: STALE_DEFAULT,
            writes: AtomicU64::new(0),
            held: Mutex::new(BTreeSet::new()),
            read: AtomicU64::new(0),
        })
    }

    /// Marks every claim this process holds as alive (call it every [`HEARTBEAT`]).
    pub fn refresh_held(&self) {
        let held: Vec<PathBuf> = match self.held.lock() {
            Ok(h) => h.iter().cloned().collect(),
            Err(_) => return,
        };
        let now = wall_now();
        for path in held {
            if let Ok(f) = std::fs::File::options().write(true).open(&path) {
                let _ = f.set_modified(now);
            }
        }
    }

    /// The same folder with claims counted stale after `stale` (tests).
    pub fn with_stale(mut self, stale: Duration) -> Self {
        self.stale = stale;
        self
    }

    /// Runs read from the folder so far, by this process.
    pub fn read_count(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    fn record_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.json"))
    }

    fn claim_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.claim"))
    }

    /// Run `run`'s figures for every key of `keys`, if it finished and recorded them all.
    pub fn load(&self, run: &str, keys: &[String]) -> Result<Option<Figures>, StoreError> {
        let path = self.record_path(run);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let corrupt = |why: String| StoreError::Corrupt {
            path: path.clone(),
            why,
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if record.run != run {
            return Err(corrupt(format!("it names run {}", record.run)));
        }
        let mut figures = Figures::new();
        for key in keys {
            // A record of a plan with other SLOs: this one runs the run again.
            let Some(stored) = record.figures.get(key) else {
                return Ok(None);
            };
            let value = match stored {
                None => None,
                Some(hex) => Some(
                    u64::from_str_radix(hex, 16)
                        .map(f64::from_bits)
                        .map_err(|_| corrupt(format!("{key} = {hex:?} is not 16 hex digits")))?,
                ),
            };
            figures.insert(key.clone(), value);
        }
        self.read.fetch_add(1, Ordering::Relaxed);
        Ok(Some(figures))
    }

    /// Records run `run` (on `seed`) with its figures.
    pub fn save(&self, run: &str, seed: u64, figures: &Figures) -> Result<(), StoreError> {
        let record = Record {
            run: run.to_string(),
            seed,
            figures: figures
                .iter()
                .map(|(k, v)| (k.clone(), v.map(|x| format!("{:016x}", x.to_bits()))))
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{run}.{}.{n}.tmp", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&json).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        let path = self.record_path(run);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Takes run `run` for this process, unless another holds it.
    pub fn claim(&self, run: &str) -> Result<Option<Claim<'_>>, StoreError> {
        let path = self.claim_path(run);
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let _ = write!(f, "{}", owner_line(std::process::id()));
                if let Ok(mut held) = self.held.lock() {
                    held.insert(path.clone());
                }
                Ok(Some(Claim { store: self, path }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Whether run `run` is claimed by a process that still refreshes its claim. A stale claim
    /// is removed, so that the next [`RunStore::claim`] can take the run.
    pub fn claimed_by_other(&self, run: &str) -> bool {
        let path = self.claim_path(run);
        let Ok(meta) = std::fs::metadata(&path) else {
            return false;
        };
        // A claim of a process of this machine that is gone (a plan killed and started again)
        // is stale at once, not after a minute.
        let dead = std::fs::read_to_string(&path).is_ok_and(|owner| owner_is_gone(&owner));
        let age = meta
            .modified()
            .ok()
            .and_then(|m| wall_now().duration_since(m).ok())
            .unwrap_or_default();
        if dead || age > self.stale {
            let _ = std::fs::remove_file(&path);
            return false;
        }
        true
    }
}

/// The wall clock, for claims' ages only: an age decides which process runs a run, never what
/// the run computes.
#[allow(clippy::disallowed_methods)] // claims in a shared folder, never a simulated decision
fn wall_now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// This machine's name, where the system tells it (Linux); `None` elsewhere.
fn host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// What a claim file says about its owner.
fn owner_line(pid: u32) -> String {
    format!("host {}\npid {pid}\n", host().unwrap_or_default())
}

/// Whether a claim's owner was a process of this machine that no longer runs.
fn owner_is_gone(owner: &str) -> bool {
    let field = |name: &str| {
        owner
            .lines()
            .find_map(|l| l.strip_prefix(name).map(str::trim))
    };
    let (Some(their_host), Some(pid), Some(ours)) = (field("host "), field("pid "), host()) else {
        return false;
    };
    their_host == ours
        && Path::new("/proc/self").exists()
        && pid.parse::<u32>().is_ok()
        && !Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("interop-sim-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn figures_come_back_bit_for_bit() {
        let dir = scratch("bits");
        let store = RunStore::open(&dir).unwrap();
        let mut f = Figures::new();
        f.insert("interop.delivered_p99".into(), Some(0.1 + 0.2));
        f.insert("lost".into(), Some(0.0));
        f.insert("native.delivered_p50".into(), None);
        f.insert("odd".into(), Some(f64::MIN_POSITIVE / 3.0));
        assert_eq!(store.load("abc", &keys(&["lost"])).unwrap(), None);
        store.save("abc", 7, &f).unwrap();
        let all: Vec<String> = f.keys().cloned().collect();
        let back = store.load("abc", &all).unwrap().unwrap();
        for (k, v) in &f {
            assert_eq!(back[k].map(f64::to_bits), v.map(f64::to_bits), "{k}");
        }
        // A key the record does not hold: the run is run again.
        assert_eq!(
            store.load("abc", &keys(&["lost", "duplicates"])).unwrap(),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_claim_is_exclusive_until_dropped_or_stale() {
        let dir = scratch("claim");
        let store = RunStore::open(&dir).unwrap();
        let held = store.claim("r1").unwrap().expect("free");
        assert!(store.claim("r1").unwrap().is_none(), "held");
        assert!(store.claimed_by_other("r1"));
        drop(held);
        assert!(!store.claimed_by_other("r1"));
        let _again = store.claim("r1").unwrap().expect("free after drop");
        // A process that died leaves its claim; once stale it is taken over.
        let quick = RunStore::open(&dir)
            .unwrap()
            .with_stale(Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!quick.claimed_by_other("r1"), "stale");
        assert!(quick.claim("r1").unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_claim_of_a_process_that_is_gone_is_taken_over_at_once() {
        let dir = scratch("gone");
        let store = RunStore::open(&dir).unwrap();
        if host().is_none() {
            return; // no host name here: only the age rule applies
        }
        // Process ids are below 2^22 on Linux: this one runs nowhere.
        std::fs::write(dir.join("r3.claim"), owner_line(4_194_304 + 17)).unwrap();
        assert!(!store.claimed_by_other("r3"));
        std::fs::write(dir.join("r4.claim"), owner_line(std::process::id())).unwrap();
        assert!(store.claimed_by_other("r4"), "this process is alive");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_record_is_named_not_trusted() {
        let dir = scratch("corrupt");
        let store = RunStore::open(&dir).unwrap();
        std::fs::write(dir.join("r2.json"), b"{ half a rec").unwrap();
        let e = store.load("r2", &keys(&["lost"])).unwrap_err().to_string();
        assert!(
            e.contains("r2.json") && e.contains("not a plan run record"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
