//! `interop-sim calibrate`: measures the crypto cost table on this machine with the real
//! implementation, so that a capacity planner can price simulated crypto with the hardware it
//! will run on instead of the project's bench figures (`CostTable::default`).
//!
//! Every operation of the table is timed in batches (`ops::MEASURES`): batches double in size
//! until one takes the target time (the warm-up), then several batches of that size are timed
//! and the median time per operation kept, so that one preempted batch on a shared machine does
//! not move the figure. Operations whose cost grows with the payload are measured at two sizes
//! and fitted as a fixed part plus a part per KiB. The result is a cost table file
//! (`scenario::cost_table`) that a scenario names with `[e2ee] cost_table`.
//!
//! This is the one command whose output depends on the machine and the moment: it reads the
//! wall clock, through `report::perf::Stopwatch`. A simulated run never does; it only reads
//! the file, when its scenario names it.

mod batch;
mod mls_ops;
pub mod ops;

use std::fmt::Write as _;

use crate::scenario::cost_table::{render_file, CostOverrides, CostTable, Op, OpCost};
use ops::{Measure, MEASURES, PAYLOAD_BYTES_MAX};

/// Where `calibrate` writes its table unless told otherwise.
pub const DEFAULT_OUT: &str = "results/calibration.toml";
/// Payloads of the two measurements of a sized operation: a short text message and a large one
/// (still one Noise frame), far enough apart that the per-KiB slope stands out of the noise.
pub const SMALL_BYTES: usize = 64;
pub const LARGE_BYTES: usize = 16 * 1024;
/// Bound on the prepared inputs of one batch (ciphertexts waiting to be decrypted).
const BATCH_BYTES_MAX: usize = 8 << 20;
/// Bound on the operations in one batch, whatever their size.
const BATCH_OPS_MAX: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Timed batches per measurement; the median is kept.
    pub batches: usize,
    /// Wall time one batch should take; the warm-up grows batches until they do.
    pub batch_target_ns: u64,
    pub quick: bool,
}

impl Settings {
    /// About ten seconds in all: 9 batches of 20 ms per measurement.
    pub const FULL: Settings = Settings {
        batches: 9,
        batch_target_ns: 20_000_000,
        quick: false,
    };
    /// Well under a second, for tests: 3 batches of 0.2 ms (rough figures).
    pub const QUICK: Settings = Settings {
        batches: 3,
        batch_target_ns: 200_000,
        quick: true,
    };
}

/// A measurement failed: the real code refused its own inputs (a bug).
#[derive(Debug, thiserror::Error)]
#[error("measuring {op}: {message}")]
pub struct CalibrateError {
    pub op: &'static str,
    pub message: String,
}

/// One operation's measurement.
#[derive(Clone, Debug)]
pub struct Measured {
    pub op: Op,
    /// Median ns per operation at [`SMALL_BYTES`] (or without payload).
    pub small_ns: f64,
    /// Median ns per operation at [`LARGE_BYTES`], for sized operations.
    pub large_ns: Option<f64>,
    pub cost: OpCost,
}

#[derive(Clone, Debug)]
pub struct Calibration {
    pub settings: Settings,
    pub rows: Vec<Measured>,
}

/// Measures every operation; `on_op` is called before each (progress).
pub fn calibrate(
    settings: Settings,
    mut on_op: impl FnMut(Op),
) -> Result<Calibration, CalibrateError> {
    let mut rows = Vec::with_capacity(MEASURES.len());
    for m in MEASURES {
        on_op(m.op);
        let fail = |message| CalibrateError {
            op: m.op.key(),
            message,
        };
        let small_bytes = if m.sized { SMALL_BYTES } else { 0 };
        let small_ns = per_op_ns(m, small_bytes, settings).map_err(fail)?;
        let large_ns = if m.sized {
            Some(per_op_ns(m, LARGE_BYTES, settings).map_err(fail)?)
        } else {
            None
        };
        rows.push(Measured {
            op: m.op,
            small_ns,
            large_ns,
            cost: fit(small_ns, large_ns),
        });
    }
    Ok(Calibration { settings, rows })
}

/// Median wall time of one operation on `bytes` of payload.
fn per_op_ns(m: &Measure, bytes: usize, settings: Settings) -> Result<f64, String> {
    let bytes = bytes.min(PAYLOAD_BYTES_MAX);
    let ops_max = (BATCH_BYTES_MAX / bytes.max(1)).clamp(1, BATCH_OPS_MAX);
    // Warm-up: caches, branch predictors and the CPU's clock settle while the batch grows.
    let mut n = 1;
    loop {
        let ns = (m.prepare)(n, bytes)?()?;
        if ns >= settings.batch_target_ns || n >= ops_max {
            break;
        }
        n = (n * 2).min(ops_max);
    }
    let mut per_op = Vec::with_capacity(settings.batches);
    for _ in 0..settings.batches.max(1) {
        let ns = (m.prepare)(n, bytes)?()?;
        per_op.push(ns as f64 / n as f64);
    }
    Ok(median(&mut per_op))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

/// The line through the two measurements: its slope per KiB and its value at no payload, both
/// kept non-negative (noise can make a tiny slope come out below zero).
fn fit(small_ns: f64, large_ns: Option<f64>) -> OpCost {
    let Some(large_ns) = large_ns else {
        return OpCost {
            fixed_ns: small_ns.round().max(0.0) as u64,
            per_kib_ns: 0,
        };
    };
    let kib = |bytes: usize| bytes as f64 / 1024.0;
    let per_kib = ((large_ns - small_ns) / (kib(LARGE_BYTES) - kib(SMALL_BYTES))).max(0.0);
    let fixed = (small_ns - per_kib * kib(SMALL_BYTES)).max(0.0);
    OpCost {
        fixed_ns: fixed.round() as u64,
        per_kib_ns: per_kib.round() as u64,
    }
}

impl Calibration {
    /// The measured prices of every operation.
    pub fn overrides(&self) -> CostOverrides {
        self.rows.iter().map(|r| (r.op, r.cost)).collect()
    }

    /// The cost table file, with a header saying what it is and how to use it.
    pub fn file_text(&self) -> String {
        let how = if self.settings.quick {
            "--quick: rough figures, for tests"
        } else {
            "median of timed batches"
        };
        let header = [
            format!(
                "Crypto cost table measured by `interop-sim calibrate` on this machine ({how})."
            ),
            "Per operation: simulated CPU time = fixed_ns + per_kib_ns * payload bytes / 1024."
                .to_string(),
            "Use it from a scenario: [e2ee] cost_table = \"<path relative to the scenario file>\";"
                .to_string(),
            "operations left out keep their defaults.".to_string(),
        ];
        render_file(&header, &self.overrides())
    }

    /// A one-screen table: measured prices against the defaults; `ratio` compares the cost of
    /// one operation on a 1 KiB payload (the fixed cost for unsized operations).
    pub fn screen(&self) -> String {
        let defaults = CostTable::default();
        let measured = CostTable::default().with_overrides(&self.overrides());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<20} {:>10} {:>10} {:>21} {:>6}",
            "op", "fixed", "per KiB", "default", "ratio"
        );
        for r in &self.rows {
            let d = defaults.get(r.op);
            let default = format!("{} + {}", show_ns(d.fixed_ns), show_ns(d.per_kib_ns));
            let ratio = measured.cost_ns(r.op, 1024) as f64
                / (defaults.cost_ns(r.op, 1024) as f64).max(1.0);
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>10} {:>21} {:>6.2}",
                r.op.key(),
                show_ns(r.cost.fixed_ns),
                show_ns(r.cost.per_kib_ns),
                default,
                ratio
            );
        }
        out
    }
}

/// A duration for the screen: ns below 10 us, then us, then ms, three significant figures.
fn show_ns(ns: u64) -> String {
    let x = ns as f64;
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} us", x / 1e3)
    } else {
        format!("{:.1} ms", x / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_separates_fixed_and_per_kib_costs() {
        let small = 1000.0 + 500.0 * SMALL_BYTES as f64 / 1024.0;
        let large = 1000.0 + 500.0 * LARGE_BYTES as f64 / 1024.0;
        assert_eq!(
            fit(small, Some(large)),
            OpCost {
                fixed_ns: 1000,
                per_kib_ns: 500
            }
        );
        assert_eq!(fit(900.0, Some(800.0)).per_kib_ns, 0, "no negative slope");
        assert_eq!(fit(5.0, Some(1e6)).fixed_ns, 0, "no negative fixed part");
        assert_eq!(fit(1234.4, None).fixed_ns, 1234);
    }

    #[test]
    fn the_median_ignores_one_slow_batch() {
        assert_eq!(median(&mut [3.0, 1.0, 100.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 100.0]), 3.0);
    }

    #[test]
    fn quick_calibration_writes_a_table_that_parses_with_every_op() {
        let c = calibrate(Settings::QUICK, |_| {}).expect("the real code accepts its inputs");
        let text = c.file_text();
        let parsed = crate::scenario::cost_table::parse_file(&text, "calibration.toml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(parsed.len(), Op::ALL.len());
        let table = CostTable::default().with_overrides(&parsed);
        for op in Op::ALL {
            assert!(table.cost_ns(op, 1024) > 0, "{} takes time", op.key());
        }
        assert_eq!(c.screen().lines().count(), Op::ALL.len() + 1);
    }
}
