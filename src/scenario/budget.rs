//! Resource bounds before a run (issue 21): a scenario is a few lines of text, and a few more
//! digits (`users = 1e8`, five devices each) ask for more memory than the machine has. The
//! simulator sizes its storage from the validated scenario up front, so the cost of a run can be
//! read from the scenario alone: this module estimates peak memory and event count, term by term,
//! and `check`, `run` and `sweep` refuse (exit 2) a scenario whose estimate exceeds the memory
//! budget, naming the key that drives the largest term, before anything is built.
//!
//! The estimate is a sum of terms, each a count read from the scenario times a size per item.
//! The sizes are calibrated on the shipped scenarios (peak RSS from their `perf.json`, and
//! scale-1m's 3.26 GiB with 1 M users and about 10 M messages): the estimate is within a factor
//! of 2 of the measured peak for each (a test holds it there). It is a guard against a machine
//! taken down, not a prediction to the megabyte.

use super::model::{CryptoMode, FaultKind, Protocol, Scenario};
use thiserror::Error;

/// What a run of anything costs: the binary, the allocator's arenas, histograms, the report.
const BASE_BYTES: f64 = 54.0 * MIB;
/// Per device: node state, its links, mailbox and key-directory entries, timers.
const DEVICE_BYTES: f64 = 1_000.0;
/// Per contact-graph edge (a user's conversation partner).
const CONTACT_BYTES: f64 = 8.0;
/// Per message composed over the run: its ledger record and metrics.
const MESSAGE_BYTES: f64 = 200.0;
/// Per device copy of a message (ledger outcome, dedup entries, frames in flight).
const COPY_BYTES: f64 = 40.0;
/// Per pairwise Signal session (real crypto: ratchet state, chain keys, skipped keys).
const SESSION_BYTES: f64 = 150.0;
/// Per session a group sender sets up with a member device to hand it its Sender Key (both
/// ends: the X3DH session that carried it and the Sender Key state kept): a fit to
/// groups-media (256 members), whose real crypto holds ~145 MiB more than modeled.
const GROUP_SESSION_BYTES: f64 = 4_000.0;
/// Per one-time prekey held (real crypto), X3DH and PQXDH (with its Kyber key pair).
const PREKEY_BYTES_X3DH: f64 = 30.0;
const PREKEY_BYTES_PQXDH: f64 = 80.0;
/// Real-crypto media: the share of the blob bytes of the send window (at most
/// `MEDIA_WINDOW_S` of it) resident at the peak. A blob is held until its first recipient
/// device opens it, which an offline recipient puts off for minutes, and freed blobs leave
/// their pages with the allocator: a fit to the shipped scenarios (0.24 to 0.38).
const MEDIA_HELD_SHARE: f64 = 0.3;
const MEDIA_WINDOW_S: f64 = 600.0;
/// One timeseries row.
const ROW_BYTES: f64 = 400.0;
/// One fault and its scheduled events.
const FAULT_BYTES: f64 = 600.0;
/// Events per device copy delivered (frames, acks, receipts across hops) and per message.
const EVENTS_PER_COPY: f64 = 18.0;
/// Churn: two events per online/offline cycle per device.
const EVENTS_PER_CYCLE: f64 = 2.0;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

/// Mean blob size per content kind, in bytes: the means of `workload::size_models`' lognormals
/// (median x exp(sigma^2 / 2), sigma from the p99); text has no blob.
const BLOB_MEAN_BYTES: [f64; 5] = [0.0, 245_000.0, 65_000.0, 6_500_000.0, 1_760_000.0];

/// One term of the estimate: the scenario key that drives it and its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// Key path(s) whose values make the term, as a user would change them.
    pub key: String,
    pub bytes: f64,
}

/// Estimated peak memory and event count of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub memory_bytes: u64,
    pub events: u64,
    /// Every term, largest first.
    pub terms: Vec<Term>,
}

impl Estimate {
    /// The term that drives the estimate (the largest).
    pub fn largest(&self) -> Option<&Term> {
        self.terms.first()
    }
}

/// A scenario the budget refuses.
#[derive(Debug, Error, PartialEq)]
pub enum BudgetError {
    #[error(
        "{file}: the run would need about {} of memory (estimate), over the budget of {} \
         (--memory-max); most of it from {key} ({}). Lower it, or raise --memory-max if the \
         machine has the memory",
        show_bytes(*estimate_bytes),
        show_bytes(*max_bytes),
        show_bytes(*term_bytes)
    )]
    OverMemory {
        file: String,
        estimate_bytes: u64,
        max_bytes: u64,
        key: String,
        term_bytes: u64,
    },
}

/// A bad `--memory-max` value.
#[derive(Debug, Error, PartialEq)]
#[error("expected a size in bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), like 4GiB, found {found:?}")]
pub struct BytesError {
    pub found: String,
}

/// The estimate of one run of `s`.
pub fn estimate(s: &Scenario) -> Estimate {
    let q = Quantities::of(s);
    let mut terms = vec![
        Term {
            key: "base (any run)".to_string(),
            bytes: BASE_BYTES,
        },
        Term {
            key: format!("{} x devices_per_user", q.largest_provider),
            bytes: q.devices * DEVICE_BYTES
                + q.users * f64::from(s.workload.contacts_per_user) * CONTACT_BYTES,
        },
        Term {
            key: "users x workload.messages_per_user_hour x run.duration".to_string(),
            bytes: q.messages * MESSAGE_BYTES + q.copies * COPY_BYTES,
        },
        Term {
            key: "run.interval".to_string(),
            bytes: q.rows * ROW_BYTES,
        },
        Term {
            key: "fault".to_string(),
            bytes: s.faults.len() as f64 * FAULT_BYTES,
        },
    ];
    if s.e2ee.crypto == CryptoMode::Real {
        let prekey = match s.e2ee.protocol {
            Protocol::X3dh => PREKEY_BYTES_X3DH,
            Protocol::Pqxdh => PREKEY_BYTES_PQXDH,
        };
        terms.push(Term {
            key: "e2ee.crypto = \"real\" x workload.contacts_per_user (sessions)".to_string(),
            bytes: q.sessions * SESSION_BYTES,
        });
        terms.push(Term {
            key:
                "e2ee.crypto = \"real\" x workload.groups (a session per sender and member device)"
                    .to_string(),
            bytes: q.group_sessions * GROUP_SESSION_BYTES,
        });
        terms.push(Term {
            key: "e2ee.one_time_prekeys x devices".to_string(),
            bytes: q.devices * f64::from(s.e2ee.one_time_prekeys) * prekey,
        });
        terms.push(Term {
            key: "workload.content media x users x workload.messages_per_user_hour (real crypto)"
                .to_string(),
            bytes: q.media_bytes * MEDIA_HELD_SHARE,
        });
    }
    terms.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    let memory: f64 = terms.iter().map(|t| t.bytes).sum();
    let events =
        q.copies * EVENTS_PER_COPY + q.churn_cycles * EVENTS_PER_CYCLE + q.rows + q.fetches;
    Estimate {
        memory_bytes: saturate(memory),
        events: saturate(events),
        terms,
    }
}

/// Refuses an estimate over `max_bytes`; `file` names the scenario in the message.
pub fn check(est: &Estimate, max_bytes: u64, file: &str) -> Result<(), BudgetError> {
    if est.memory_bytes <= max_bytes {
        return Ok(());
    }
    let (key, term_bytes) = est
        .largest()
        .map_or((String::new(), 0), |t| (t.key.clone(), saturate(t.bytes)));
    Err(BudgetError::OverMemory {
        file: file.to_string(),
        estimate_bytes: est.memory_bytes,
        max_bytes,
        key,
        term_bytes,
    })
}

/// The counts the terms are made of, read from the validated scenario.
struct Quantities {
    users: f64,
    devices: f64,
    /// `provider[i].users` of the provider with the most devices.
    largest_provider: String,
    /// Messages composed over the run (arrivals, surges, replies).
    messages: f64,
    /// Device copies of them (group fan-out, every device of the recipient).
    copies: f64,
    /// Pairwise sessions (both ends).
    sessions: f64,
    /// Sessions group senders' devices set up with member devices (both ends).
    group_sessions: f64,
    /// Blob bytes of the messages of the send window (at most `MEDIA_WINDOW_S` of it).
    media_bytes: f64,
    rows: f64,
    churn_cycles: f64,
    /// Prekey fetches of drain faults.
    fetches: f64,
}

impl Quantities {
    fn of(s: &Scenario) -> Quantities {
        let mut users = 0.0;
        let mut devices = 0.0;
        let mut largest = (0usize, -1.0);
        for (i, p) in s.providers.iter().enumerate() {
            let mean = (f64::from(p.devices_min) + f64::from(p.devices_max)) / 2.0;
            let d = f64::from(p.users) * mean;
            users += f64::from(p.users);
            devices += d;
            if d > largest.1 {
                largest = (i, d);
            }
        }
        let dev_mean = if users > 0.0 { devices / users } else { 1.0 };
        let w = &s.workload;
        let send_s = s.run.duration_ns as f64 / 1e9;
        let run_s = send_s + s.run.drain_ns as f64 / 1e9;
        let rate_per_s = users * w.messages_per_user_hour / 3600.0;
        let arrivals = rate_per_s * (send_s + surge_extra_s(s));
        let messages = arrivals * (1.0 + w.reply_probability);
        let group_mean = (f64::from(w.group_size_min) + f64::from(w.group_size_max)) / 2.0;
        let recipients = (1.0 - w.groups_share) + w.groups_share * (group_mean - 1.0).max(1.0);
        let copies = messages * recipients * dev_mean;
        let contacts = users * f64::from(w.contacts_per_user);
        let sessions = 2.0 * contacts.min(messages) * dev_mean * dev_mean;
        // Each group sender's device, once, with every member device; at most one sender per
        // group message, at most every user.
        let group_senders = (messages * w.groups_share).min(users);
        let group_sessions = if w.groups_share > 0.0 {
            2.0 * group_senders * (group_mean - 1.0).max(1.0) * dev_mean
        } else {
            0.0
        };
        let blob_mean_bytes: f64 = w
            .content
            .iter()
            .zip(BLOB_MEAN_BYTES)
            .map(|(p, b)| p * b)
            .sum();
        let on_ns = s.devices.online_mean_ns as f64;
        let share = s.devices.online_share.clamp(1e-9, 1.0);
        let cycle_ns = on_ns / share;
        let churn_cycles = if share >= 1.0 {
            0.0
        } else {
            devices * run_s * 1e9 / cycle_ns
        };
        Quantities {
            users,
            devices,
            largest_provider: format!("provider[{}].users", largest.0),
            messages,
            copies,
            sessions,
            group_sessions,
            media_bytes: messages * (MEDIA_WINDOW_S / send_s.max(1e-9)).min(1.0) * blob_mean_bytes,
            rows: run_s * 1e9 / s.run.interval_ns.max(1) as f64,
            churn_cycles,
            fetches: drain_fetches(s),
        }
    }
}

/// Extra seconds of sending at the base rate that surges add ((factor - 1) x window).
fn surge_extra_s(s: &Scenario) -> f64 {
    let run_ns = s.run.duration_ns as f64;
    s.faults
        .iter()
        .map(|f| match f.kind {
            FaultKind::Surge { factor } => {
                let window = f.for_ns.map_or(run_ns - f.at_ns as f64, |d| d as f64);
                (factor - 1.0) * window.max(0.0) / 1e9
            }
            _ => 0.0,
        })
        .sum()
}

fn drain_fetches(s: &Scenario) -> f64 {
    let run_ns = (s.run.duration_ns + s.run.drain_ns) as f64;
    s.faults
        .iter()
        .map(|f| match f.kind {
            FaultKind::PrekeyDrain {
                provider,
                users,
                rate,
            } => {
                let victims = s
                    .providers
                    .get(provider)
                    .map_or(0.0, |p| f64::from(p.users))
                    * users;
                let window = f.for_ns.map_or(run_ns - f.at_ns as f64, |d| d as f64);
                victims * rate * window.max(0.0) / 1e9
            }
            _ => 0.0,
        })
        .sum()
}

fn saturate(x: f64) -> u64 {
    if x.is_finite() && x >= 0.0 {
        x.min(u64::MAX as f64) as u64
    } else {
        u64::MAX
    }
}

/// `4GiB`, `512MiB`, `2GB`, `1000000`: bytes (decimal and binary units, case-insensitive).
pub fn parse_bytes(text: &str) -> Result<u64, BytesError> {
    let bad = || BytesError {
        found: text.to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => GIB * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `3.3 GiB`, `512.0 MiB`: for messages.
pub fn show_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

/// Bytes of memory this machine has (`MemTotal` of /proc/meminfo), if it can be read.
pub fn machine_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The default budget: 75 % of the machine's memory, or of 16 GiB when it cannot be read.
pub fn default_memory_max() -> u64 {
    let total = machine_memory_bytes().unwrap_or(16 << 30);
    total / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 10\n\n\
                        [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 5\n";

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_bytes("4GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("512 mib"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        for bad in [
            "",
            "GiB",
            "-1GiB",
            "4 parsecs",
            "0",
            "1e400",
            "99999999999TiB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_largest_term_names_the_key_that_drives_it() {
        // Modeled crypto and few messages: no blobs, so the devices are the largest term.
        let many = BASE.replace("users = 10\n", "users = 100000000\ndevices_per_user = 5\n")
            + "[e2ee]\ncrypto = \"modeled\"\n[workload]\nmessages_per_user_hour = 1\n";
        let est = estimate(&scenario(&many));
        assert_eq!(
            est.largest().map(|t| t.key.as_str()),
            Some("provider[0].users x devices_per_user")
        );
        assert!(est.memory_bytes > 100 << 30, "{est:?}");
        let e = check(&est, 4 << 30, "t.toml").expect_err("over 4 GiB");
        let text = e.to_string();
        assert!(
            text.starts_with("t.toml: the run would need about "),
            "{text}"
        );
        assert!(
            text.contains("provider[0].users x devices_per_user"),
            "{text}"
        );
        let small = estimate(&scenario(BASE));
        assert_eq!(check(&small, 4 << 30, "t.toml"), Ok(()));
        assert!(small.memory_bytes < 100 << 20, "{small:?}");
    }

    #[test]
    fn the_estimate_grows_with_each_key_it_reads() {
        let base = estimate(&scenario(BASE)).memory_bytes;
        for extra in [
            "[workload]\nmessages_per_user_hour = 100000\n",
            "[run]\nduration = \"10h\"\ninterval = \"1ms\"\n",
            "[workload]\ncontent = { video = 1.0 }\nmessages_per_user_hour = 10000\n",
        ] {
            let more = estimate(&scenario(&format!("{BASE}\n{extra}"))).memory_bytes;
            assert!(more > base, "{extra}: {more} <= {base}");
        }
    }

    #[test]
    fn the_default_budget_is_three_quarters_of_the_machine() {
        let max = default_memory_max();
        match machine_memory_bytes() {
            Some(total) => assert_eq!(max, total / 4 * 3),
            None => assert_eq!(max, 12 << 30),
        }
    }
}
