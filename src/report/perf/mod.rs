//! Wall-clock figures of a run (events per second, wall time). They differ from machine to
//! machine and run to run, so they live in perf.json, never in summary.json (determinism
//! rule 1). This is the one place outside `live/` that reads the wall clock.

use serde::Serialize;
use std::path::Path;
use std::time::Instant;

pub mod progress;

/// A started wall-clock measurement.
pub struct Stopwatch(Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // perf.json only, never a simulated decision
    pub fn start() -> Self {
        Stopwatch(Instant::now()) // determinism: ok (wall-clock figures go to perf.json)
    }
    pub fn elapsed_s(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
    /// For short spans (`calibrate` times batches of crypto operations).
    pub fn elapsed_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Serialize)]
pub struct Perf {
    pub wall_s: f64,
    /// User + system CPU time of the process, s (Linux; absent elsewhere): beside the wall
    /// time, what the run cost whatever else the machine did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
    pub events_processed: u64,
    pub events_per_s: f64,
    pub simulated_s: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    pub peak_rss_mib: Option<f64>,
    /// Deliveries whose decrypted plaintext was checked against what the sender wrote (real
    /// crypto; 0 when crypto is modeled).
    pub verified_plaintexts: u64,
    /// Crypto CPU time the cost table charged to the simulated nodes, in seconds.
    pub crypto_charged_s: f64,
    /// Media downloads whose pointer (from the decrypted plaintext) verified and decrypted the
    /// blob, and blobs really decrypted (the first verifying device of each); real crypto only.
    pub media_verified: u64,
    pub media_blobs_opened: u64,
}

impl Perf {
    pub fn new(wall_s: f64, events_processed: u64, simulated_s: f64) -> Self {
        let wall = wall_s.max(1e-9);
        Perf {
            wall_s,
            cpu_s: process_cpu_s(),
            events_processed,
            events_per_s: events_processed as f64 / wall,
            simulated_s,
            speedup: simulated_s / wall,
            peak_rss_mib: peak_rss_mib(),
            verified_plaintexts: 0,
            crypto_charged_s: 0.0,
            media_verified: 0,
            media_blobs_opened: 0,
        }
    }

    /// Adds the run's real media checks.
    pub fn with_media(mut self, verified: u64, blobs_opened: u64) -> Self {
        self.media_verified = verified;
        self.media_blobs_opened = blobs_opened;
        self
    }

    /// Adds the run's crypto figures.
    pub fn with_crypto(mut self, verified_plaintexts: u64, crypto_charged_ns: u64) -> Self {
        self.verified_plaintexts = verified_plaintexts;
        self.crypto_charged_s = crypto_charged_ns as f64 / 1e9;
        self
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut s = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        s.push('\n');
        std::fs::write(dir.join("perf.json"), s)
    }
}

/// Peak resident set size of this process (Linux: VmHWM in /proc/self/status).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time of this process so far, user + system, in seconds (Linux: /proc/self/stat, at the
/// kernel's USER_HZ of 100 ticks per second). With the wall time it tells how many cores a
/// parallel sweep really had.
pub fn process_cpu_s() -> Option<f64> {
    const TICKS_PER_S: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}
