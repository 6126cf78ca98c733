//! Finished plan runs kept in a folder (`plan --runs DIR`): a plan that stopped (a crash, a
//! killed job, a machine lost) picks up where it was, and several `plan --shard K/N` processes
//! on different machines share one folder, each running what the others have not taken.
//!
//! A run is named by the hash of its resolved scenario, seed included. Its record holds the
//! figures the plan's SLOs read, each as the bits of its `f64`, so a figure read back is the
//! one computed: a plan that reads its runs from the folder writes what a plan that ran them
//! writes, byte for byte. A record also names the build that ran it (a hash of the executable):
//! a rebuilt simulator runs its runs again rather than trust another build's figures.
//!
//! A run being computed has a claim beside it, created exclusively and refreshed while the run
//! lasts. A waiting process judges a claim by its own monotonic clock (no two machines' clocks
//! need agree): a claim whose modification time has not moved for [`STALE_DEFAULT`] is taken
//! over, and one of a process of this machine (same boot, same process namespace) that no
//! longer runs is taken over at once. Races cost at most a run done twice: runs are
//! deterministic, so both write the same figures, each through a file of its own renamed into
//! place, and no reader sees half a record.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// A claim not refreshed for this long (by the waiter's own clock) belongs to a process that
/// is gone.
pub const STALE_DEFAULT: Duration = Duration::from_secs(60);
/// How often a running process refreshes its claims (well inside [`STALE_DEFAULT`]).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// The record layout; a record of another is refused, named.
pub const FORMAT: &str = "interop-sim-plan-run/1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a folder (--runs names a folder of finished runs)", path.display())]
    NotAFolder { path: PathBuf },
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
    format: String,
    /// The executable that ran it ([`build_id`]).
    build: String,
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
    /// Names this process's temporary files and claims apart from its other threads'.
    serial: AtomicU64,
    /// The claims this process holds, refreshed by [`RunStore::refresh_held`].
    held: Mutex<BTreeSet<PathBuf>>,
    /// Runs read from the folder rather than run.
    read: AtomicU64,
    /// Records of another build, run again.
    other_build: AtomicU64,
}

/// A run this process took: its claim file goes when the guard does (the run finished, or
/// failed and another process may try it), unless another process took it over meanwhile.
#[derive(Debug)]
pub struct Claim<'a> {
    store: &'a RunStore,
    path: PathBuf,
    token: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.store.held.lock() {
            held.remove(&self.path);
        }
        if std::fs::read_to_string(&self.path).is_ok_and(|t| t == self.token) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a waiting process makes of another's claim ([`ClaimWatch::look`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// No claim: the run may be taken.
    Free,
    /// Alive; the owner as its claim names it.
    Alive(String),
    /// Its owner is gone: the claim was removed, the run may be taken.
    TakenOver(String),
}

/// A waiting process's view of one claim: when it last saw the claim's modification time move.
#[derive(Debug, Default)]
pub struct ClaimWatch {
    seen: Option<(SystemTime, std::time::Instant)>,
}

impl ClaimWatch {
    /// Looks at run `run`'s claim now.
    pub fn look(&mut self, store: &RunStore, run: &str) -> Claimed {
        let path = store.claim_path(run);
        let (Ok(meta), Ok(owner)) = (std::fs::metadata(&path), std::fs::read_to_string(&path))
        else {
            self.seen = None;
            return Claimed::Free;
        };
        let who = describe(&owner);
        let moved_at = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let now = monotonic_now();
        let quiet_for = match self.seen {
            Some((mtime, since)) if mtime == moved_at => now.duration_since(since),
            _ => {
                self.seen = Some((moved_at, now));
                Duration::ZERO
            }
        };
        if owner_is_gone(&owner) || quiet_for > store.stale {
            let _ = std::fs::remove_file(&path);
            self.seen = None;
            return Claimed::TakenOver(who);
        }
        Claimed::Alive(who)
    }
}

impl RunStore {
    /// The folder `dir`, made if missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::NotAFolder {
                path: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(RunStore {
            dir: dir.to_path_buf(),
            stale: STALE_DEFAULT,
            serial: AtomicU64::new(0),
            held: Mutex::new(BTreeSet::new()),
            read: AtomicU64::new(0),
            other_build: AtomicU64::new(0),
        })
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

    /// Records of another build met so far (each run again).
    pub fn other_build_count(&self) -> u64 {
        self.other_build.load(Ordering::Relaxed)
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

    fn record_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.json"))
    }

    fn claim_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.claim"))
    }

    fn read_record(&self, run: &str) -> Result<Option<Record>, StoreError> {
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
        if record.format != FORMAT {
            return Err(corrupt(format!(
                "format {:?}, this build reads {FORMAT:?}",
                record.format
            )));
        }
        if record.run != run {
            return Err(corrupt(format!("it names run {}", record.run)));
        }
        Ok(Some(record))
    }

    /// Run `run`'s figures for every key of `keys`, if this build recorded them all (on `seed`).
    pub fn load(
        &self,
        run: &str,
        seed: u64,
        keys: &[String],
    ) -> Result<Option<Figures>, StoreError> {
        let Some(record) = self.read_record(run)? else {
            return Ok(None);
        };
        let path = self.record_path(run);
        let corrupt = |why: String| StoreError::Corrupt {
            path: path.clone(),
            why,
        };
        if record.seed != seed {
            return Err(corrupt(format!(
                "seed {}, the run's is {seed}",
                record.seed
            )));
        }
        if record.build != build_id() {
            self.other_build.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let mut figures = Figures::new();
        for key in keys {
            // A record of a plan with other SLOs: this one runs the run again (and adds its keys).
            let Some(stored) = record.figures.get(key) else {
                return Ok(None);
            };
            let value = match stored {
                None => None,
                Some(hex) => Some(
                    parse_bits(hex)
                        .ok_or_else(|| corrupt(format!("{key} = {hex:?} is not 16 hex digits")))?,
                ),
            };
            figures.insert(key.clone(), value);
        }
        self.read.fetch_add(1, Ordering::Relaxed);
        Ok(Some(figures))
    }

    /// Records run `run` (on `seed`) with its figures, keeping the figures of other keys a
    /// record of this build already holds (plans with other SLOs share runs).
    pub fn save(&self, run: &str, seed: u64, figures: &Figures) -> Result<(), StoreError> {
        let mut all: BTreeMap<String, Option<String>> = match self.read_record(run) {
            Ok(Some(r)) if r.build == build_id() && r.seed == seed => r.figures,
            _ => BTreeMap::new(),
        };
        for (k, v) in figures {
            all.insert(k.clone(), v.map(|x| format!("{:016x}", x.to_bits())));
        }
        let record = Record {
            format: FORMAT.to_string(),
            build: build_id().to_string(),
            run: run.to_string(),
            seed,
            figures: all,
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
        let n = self.serial.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!(
            "{run}.{}.{}.{n}.tmp",
            identity().host,
            std::process::id()
        ));
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
                let n = self.serial.fetch_add(1, Ordering::Relaxed);
                let token = format!("{}claim {n}\n", owner_lines(std::process::id()));
                f.write_all(token.as_bytes()).map_err(io(&path))?;
                if let Ok(mut held) = self.held.lock() {
                    held.insert(path.clone());
                }
                Ok(Some(Claim {
                    store: self,
                    path,
                    token,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

/// 16 hex digits to the f64 with those bits.
fn parse_bits(hex: &str) -> Option<f64> {
    (hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(hex, 16).ok().map(f64::from_bits))
        .flatten()
}

/// The wall clock, for refreshing claims only (a claim's modification time moving is what a
/// waiter watches; its value is never compared across machines).
#[allow(clippy::disallowed_methods)] // claims in a shared folder, never a simulated decision
fn wall_now() -> SystemTime {
    SystemTime::now() // determinism: ok (a claim's refresh time; never a simulated decision)
}

/// This process's monotonic clock, for how long a claim has not moved.
#[allow(clippy::disallowed_methods)] // claims in a shared folder, never a simulated decision
fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now() // determinism: ok (how long a claim sat still; never simulated)
}

/// The executable's identity: 16 hex digits of the SHA-256 of its bytes, read once. Two
/// processes agree when they run the same build (copied anywhere); "unknown" where the
/// executable cannot be read.
pub fn build_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let Some(bytes) = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::read(p).ok())
        else {
            return "unknown".to_string();
        };
        Sha256::digest(&bytes)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// Where this process runs, as far as the system tells (Linux: host name, boot and process
/// namespace; empty elsewhere, where only a claim's age counts).
struct Identity {
    host: String,
    boot: String,
    pid_ns: String,
}

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let host: String = read("/proc/sys/kernel/hostname")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        Identity {
            host: if host.is_empty() { "host".into() } else { host },
            boot: read("/proc/sys/kernel/random/boot_id"),
            pid_ns,
        }
    })
}

/// What a claim file says about its owner.
fn owner_lines(pid: u32) -> String {
    let id = identity();
    format!(
        "host {}\nboot {}\npidns {}\npid {pid}\n",
        id.host, id.boot, id.pid_ns
    )
}

fn field<'a>(owner: &'a str, name: &str) -> Option<&'a str> {
    owner
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
}

/// "pid P on host H", for the waiting message.
fn describe(owner: &str) -> String {
    format!(
        "pid {} on {}",
        field(owner, "pid").unwrap_or("?"),
        field(owner, "host").unwrap_or("?")
    )
}

/// Whether a claim's owner was a process of this machine's current boot, in this process
/// namespace, that no longer runs. Anything unknown counts as alive (the claim's age decides).
fn owner_is_gone(owner: &str) -> bool {
    let id = identity();
    let same_place = !id.boot.is_empty()
        && !id.pid_ns.is_empty()
        && field(owner, "boot") == Some(id.boot.as_str())
        && field(owner, "pidns") == Some(id.pid_ns.as_str());
    let Some(pid) = field(owner, "pid").filter(|p| p.parse::<u32>().is_ok()) else {
        return false;
    };
    same_place && !Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests;
