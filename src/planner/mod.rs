//! `interop-sim plan`: the smallest capacity that meets a scenario's `[plan]` service levels
//! with the stated confidence, at the stated load.
//!
//! A point is one value per knob; evaluating it runs the scenario (at the plan's load) once per
//! seed, in parallel, and holds each SLO at the one-sided Student's t bound of its metric over
//! the seeds: an upper bound at most the SLO's maximum (a latency, a loss count), a lower bound
//! at least its minimum (a rate). The solver takes the knobs in file order, each with the knobs
//! not solved yet at their maximum (the most capacity): it gallops up from the knob's minimum
//! (doubling) to the first value that meets every SLO, then bisects between the last value that
//! failed and it (whole numbers to 1, other values to two significant figures: see
//! [`resolution`]). When every knob is solved the joint
//! answer is evaluated; if the knobs interact and it fails, they step up one at a time until it
//! holds. Finally the answer and, per knob, the next value below it run again on fresh seeds:
//! the answer should pass and each lower value fail.
//!
//! Every evaluation is kept (a point is never run twice) and written out with its figures, so a
//! planner sees the curve behind the answer. Everything is deterministic: the seeds derive from
//! the scenario's seed, the runs are the simulator's, and the thread count changes nothing.

pub mod output;
pub mod resolution;
mod runs;
pub mod store;

use crate::engine::RngTree;
use crate::scenario::{self, Bound, CapacityPlan, Scenario, SweepTarget, SweepValue};
use resolution::Resolution;
#[cfg(test)]
use runs::figures;
use runs::run_seeds;
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;
use store::{Figures, RunStore, StoreError};

/// Below this many users at a provider, a slice is called thin (see the note in [`solve`]).
pub const THIN_SLICE_USERS: u32 = 1000;

/// What can stop a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the scenario has no [plan] table; add one, e.g. [plan] solve = {{ \"capacity.gateway.cores\" = {{ min = 1, max = 64 }} }} and slo = {{ \"interop.delivered_p99\" = \"2s\", lost = 0 }}")]
    NoPlan,
    /// A run panicked: a bug in the simulator.
    #[error("a run (seed {seed}) panicked: {message}")]
    Bug { seed: u64, message: String },
    /// The folder of finished runs (`--runs`) could not be read or written.
    #[error("the runs folder: {0}")]
    Store(#[from] StoreError),
}

/// Where a plan's runs happen: on `threads` workers of this machine, and, with a folder of
/// finished runs, shared with other processes (shards) and kept for a restart.
#[derive(Clone, Copy)]
pub struct Workers<'a> {
    pub threads: usize,
    pub store: Option<&'a RunStore>,
    /// This process's shard `(k, n)`: it takes the k-th n-th of each point's runs first, and
    /// the others' only when they are not taken. `(0, 1)` unsharded.
    pub shard: (u32, u32),
    /// Told when the plan waits for a run another process holds, or takes one over.
    pub wait_note: &'a (dyn Fn(&str) + Sync),
}

impl Workers<'_> {
    /// `threads` workers, nothing shared.
    pub fn local(threads: usize) -> Workers<'static> {
        Workers {
            threads,
            store: None,
            shard: (0, 1),
            wait_note: &|_| {},
        }
    }
}

/// One SLO at one point: its metric over the seeds and the confidence bound held to it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SloAt {
    pub key: String,
    /// `<= x` or `>= x` (latencies in ms, as the metric).
    pub bound: String,
    /// The limit in the metric's unit (ms for latencies).
    pub limit: f64,
    pub at_most: bool,
    /// The metric per seed (`None`: not measured in that run, which fails the SLO).
    pub values: Vec<Option<f64>>,
    pub mean: f64,
    /// The one-sided confidence bound on the mean (upper for `<=`, lower for `>=`).
    pub confident: f64,
    pub ok: bool,
}

impl SloAt {
    /// How far inside the SLO the bound is: a share of the limit (negative: outside), or for a
    /// limit of 0 (`lost = 0`) the distance itself.
    pub fn headroom(&self) -> f64 {
        let room = if self.at_most {
            self.limit - self.confident
        } else {
            self.confident - self.limit
        };
        if self.limit == 0.0 {
            room
        } else {
            room / self.limit.abs()
        }
    }
}

/// One evaluated point.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    /// One value per knob, in `[plan] solve` order.
    pub values: Vec<f64>,
    pub seeds: Vec<u64>,
    pub slos: Vec<SloAt>,
    pub met: bool,
    /// Why this point was run: `solve <key>`, `joint`, `check`.
    pub purpose: String,
}

/// The answer and the evidence behind it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanResult {
    pub keys: Vec<String>,
    /// The value found per knob (for a knob that never met the SLOs: its maximum).
    pub answer: Vec<f64>,
    /// Every SLO held at the answer (in the solve, on its seeds).
    pub met: bool,
    /// Notes a planner should read: a knob that is not monotone in the data, a range whose
    /// maximum fails, knobs that interact.
    pub notes: Vec<String>,
    /// Every point run while solving, in order.
    pub evaluations: Vec<Evaluation>,
    /// The answer and each knob's next lower value on fresh seeds.
    pub check: Vec<Evaluation>,
    /// Simulation runs in all.
    pub runs: u64,
}

/// The scenario a point runs: the plan's load applied, its slice taken (1/N of the users, of
/// every node's cores, queue bound and rate limit), the knobs set (whole-system values, sliced
/// the same way), `[plan]` and `[sweep]` dropped.
pub fn scenario_at(base: &Scenario, plan: &CapacityPlan, values: &[f64]) -> Scenario {
    let mut s = base.clone();
    s.plan = None;
    s.sweep = None;
    let n = plan.slice as f64;
    for p in &mut s.providers {
        p.users = ((p.users as f64 * plan.load_users / n).round() as u32).max(1);
    }
    s.workload.messages_per_user_hour *= plan.load_rate;
    let whole = |x: f64| (x / n).round().max(1.0);
    for node in [
        &mut s.capacity.gateway,
        &mut s.capacity.chat_server,
        &mut s.capacity.adapter,
    ] {
        node.cores = whole(node.cores as f64) as u32;
        node.queue_max = whole(node.queue_max as f64) as u64;
        node.rate_limit_per_partner = node.rate_limit_per_partner.map(|r| r / n);
    }
    for (k, &v) in plan.solve.iter().zip(values) {
        let sliced = if k.target.is_integer() {
            whole(v)
        } else {
            v / n
        };
        scenario::sweep::apply(&mut s, k.target, SweepValue::Number(sliced));
    }
    s
}

/// The values a knob is resolved to: whole numbers in multiples of the slice (a sliced run's
/// cores are whole, so the whole system's come in multiples of N), else two significant
/// figures.
pub fn resolution(plan: &CapacityPlan, k: &scenario::PlanKnob) -> Resolution {
    if k.target.is_integer() {
        Resolution::Multiple(plan.slice as f64)
    } else {
        Resolution::TwoFigures
    }
}

/// Runs the plan of `base` on `threads` workers; `progress` is called after each run.
pub fn solve(
    base: &Scenario,
    threads: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PlanResult, PlanError> {
    solve_with(base, Workers::local(threads), progress)
}

/// Runs the plan of `base` on `workers`: the result does not depend on the thread count, on
/// the shards or on which runs came from the folder of finished runs.
pub fn solve_with(
    base: &Scenario,
    workers: Workers<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PlanResult, PlanError> {
    let plan = base.plan.as_ref().ok_or(PlanError::NoPlan)?;
    // As every verdict does, a plan holds `failed` (lost, unsent, undecryptable, or still queued
    // when the drain ended) to 0 unless the SLOs name it: a point that does not keep up fails.
    let mut slos = plan.slo.clone();
    if !slos
        .iter()
        .any(|e| e.key == "failed" || e.key == "overall.failed")
    {
        slos.push(scenario::Expectation {
            key: "failed".to_string(),
            bound: Bound::AtMost(0.0),
        });
    }
    let mut s = Solver {
        base,
        plan,
        slos,
        workers: Workers {
            threads: workers.threads.max(1),
            ..workers
        },
        progress,
        seen: BTreeMap::new(),
        evaluations: Vec::new(),
        runs: 0,
    };
    let tree = RngTree::new(base.run.seed);
    let seeds: Vec<u64> = (0..plan.seeds as u64)
        .map(|k| tree.derive_seed("plan/seed", k))
        .collect();
    let mut values: Vec<f64> = plan.solve.iter().map(|k| top(plan, k)).collect();
    let mut notes = Vec::new();
    for i in 0..plan.solve.len() {
        values[i] = s.solve_knob(i, &values, &seeds, &mut notes)?;
    }
    if plan.slice > 1 {
        let users = scenario_at(base, plan, &values)
            .providers
            .iter()
            .map(|p| (p.users, p.name.clone()))
            .min();
        if let Some((fewest, name)) = users.filter(|(n, _)| *n < THIN_SLICE_USERS) {
            notes.push(format!(
                "the 1/{} slice leaves {fewest} users at {name} (fewer than {THIN_SLICE_USERS}): a slice this thin has few messages per path and node, so its tails are noisy and small node counts queue differently from the whole; check the answer with a thicker slice",
                plan.slice
            ));
        }
    }
    if let Some(note) = sliced_rate_limit_note(plan, &values) {
        notes.push(note);
    }
    let mut met = s.at(&values, &seeds, "joint")?.met;
    if !met && plan.solve.len() > 1 {
        notes.push("the knobs interact: each one's answer with the others at their maximum did not hold jointly, so they were stepped up one at a time".to_string());
        met = s.step_up(&mut values, &seeds)?;
    }
    let fresh: Vec<u64> = (0..plan.seeds as u64)
        .map(|k| tree.derive_seed("plan/check", k))
        .collect();
    let mut check = vec![s.evaluate(&values, &fresh, "check answer")?];
    for (i, k) in plan.solve.iter().enumerate() {
        let lower = resolution(plan, k).prev(values[i]);
        if lower >= k.min && met {
            let mut v = values.clone();
            v[i] = lower;
            check.push(s.evaluate(&v, &fresh, &format!("check {} below", k.key))?);
        }
    }
    Ok(PlanResult {
        keys: plan.solve.iter().map(|k| k.key.clone()).collect(),
        answer: values,
        met,
        notes,
        evaluations: s.evaluations,
        check,
        runs: s.runs,
    })
}

/// About how many runs a plan takes, for a progress bar: per knob the gallop's doublings from
/// its minimum to its maximum, then as many bisection steps, each once per seed; then the check
/// (the answer and each knob's next lower value) on fresh seeds. An estimate: a knob that passes
/// early gallops less, knobs that interact step up more.
pub fn estimated_runs(plan: &CapacityPlan) -> u64 {
    let points: u64 = plan
        .solve
        .iter()
        .map(|k| {
            let (lo, hi) = (bottom(plan, k), top(plan, k));
            let doublings = (hi / lo).log2().ceil().max(0.0) as u64;
            2 * doublings + 1
        })
        .sum();
    (points + 1 + plan.solve.len() as u64) * plan.seeds as u64
}

/// The bottom of a knob's range: whole-number knobs in multiples of the slice (at least one),
/// other knobs the first grid value at or above the minimum (the minimum itself when the range
/// holds no grid value).
fn bottom(plan: &CapacityPlan, k: &scenario::PlanKnob) -> f64 {
    match resolution(plan, k) {
        r @ Resolution::Multiple(u) => r.up(k.min).max(u),
        r @ Resolution::TwoFigures => Some(r.up(k.min)).filter(|&x| x <= k.max).unwrap_or(k.min),
    }
}

/// The top of a knob's range: whole-number knobs in multiples of the slice; other knobs the
/// maximum as written, on the grid or not (the gallop stops there: a maximum a planner wrote is
/// tried, not rounded down).
fn top(plan: &CapacityPlan, k: &scenario::PlanKnob) -> f64 {
    match resolution(plan, k) {
        r @ Resolution::Multiple(_) => r.down(k.max).max(bottom(plan, k)),
        Resolution::TwoFigures => k.max,
    }
}

struct Solver<'a> {
    base: &'a Scenario,
    plan: &'a CapacityPlan,
    /// The plan's SLOs and the implicit `failed = 0`.
    slos: Vec<scenario::Expectation>,
    workers: Workers<'a>,
    progress: &'a (dyn Fn(u64) + Sync),
    /// Points already evaluated on the solving seeds (by their values' bits), as indices into
    /// `evaluations`.
    seen: BTreeMap<Vec<u64>, usize>,
    evaluations: Vec<Evaluation>,
    runs: u64,
}

impl Solver<'_> {
    /// The smallest value of knob `i` meeting every SLO, the other knobs at `values`.
    fn solve_knob(
        &mut self,
        i: usize,
        values: &[f64],
        seeds: &[u64],
        notes: &mut Vec<String>,
    ) -> Result<f64, PlanError> {
        let k = &self.plan.solve[i];
        let r = resolution(self.plan, k);
        let (min, max) = (bottom(self.plan, k), top(self.plan, k));
        let purpose = format!("solve {}", k.key);
        let mut v = values.to_vec();
        let mut last_fail: Option<f64> = None;
        // Gallop: min, 2 min, 4 min, ... up to max.
        let mut x = min;
        let pass = loop {
            v[i] = x;
            if self.at(&v, seeds, &purpose)?.met {
                break x;
            }
            last_fail = Some(x);
            if x >= max {
                notes.push(format!(
                    "{} = {} (the range's maximum) does not meet every SLO: widen the range or lower the load",
                    k.key,
                    label(max)
                ));
                return Ok(max);
            }
            x = r.gallop(x).min(max);
        };
        // Bisect between the last failure and the first pass.
        let (mut lo, mut hi) = (last_fail, pass);
        while let Some(mid) = lo.and_then(|l| r.between(l, hi)) {
            v[i] = mid;
            if self.at(&v, seeds, &purpose)?.met {
                hi = mid;
            } else {
                lo = Some(mid);
            }
        }
        // Monotone in the data: no point of this knob below the answer passed while one above
        // it failed.
        let points: Vec<(f64, bool)> = self
            .evaluations
            .iter()
            .filter(|e| e.purpose == purpose)
            .map(|e| (e.values[i], e.met))
            .collect();
        let inverted = points
            .iter()
            .any(|&(a, ok_a)| ok_a && points.iter().any(|&(b, ok_b)| !ok_b && b > a));
        if inverted {
            notes.push(format!(
                "{} is not monotone in the data (a smaller value passed where a larger one failed): the answer is the smallest passing value the search found, not necessarily the smallest there is",
                k.key
            ));
        }
        Ok(hi)
    }

    /// Steps knobs up one at a time (whole-number knobs by one step of their resolution, others
    /// to the grid value about 10 % up) until the joint point holds or every knob is at its
    /// maximum.
    fn step_up(&mut self, values: &mut [f64], seeds: &[u64]) -> Result<bool, PlanError> {
        loop {
            let mut moved = false;
            for (i, k) in self.plan.solve.iter().enumerate() {
                let max = top(self.plan, k);
                if values[i] >= max {
                    continue;
                }
                values[i] = resolution(self.plan, k).step_up(values[i]).min(max);
                moved = true;
                if self.at(values, seeds, "joint")?.met {
                    return Ok(true);
                }
            }
            if !moved {
                return Ok(false);
            }
        }
    }

    /// The evaluation of a point on the solving seeds (run once, remembered).
    fn at(
        &mut self,
        values: &[f64],
        seeds: &[u64],
        purpose: &str,
    ) -> Result<&Evaluation, PlanError> {
        let key: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        if let Some(&i) = self.seen.get(&key) {
            return Ok(&self.evaluations[i]);
        }
        let e = self.evaluate(values, seeds, purpose)?;
        self.evaluations.push(e);
        self.seen.insert(key, self.evaluations.len() - 1);
        Ok(self.evaluations.last().expect("just pushed"))
    }

    /// Runs a point on `seeds` (the check's fresh seeds are not remembered: see `at`).
    fn evaluate(
        &mut self,
        values: &[f64],
        seeds: &[u64],
        purpose: &str,
    ) -> Result<Evaluation, PlanError> {
        let s = scenario_at(self.base, self.plan, values);
        let keys: Vec<String> = self.slos.iter().map(|e| e.key.clone()).collect();
        let figures = run_seeds(&s, seeds, &keys, self.workers, &|| {
            (self.progress)(1);
        })?;
        self.runs += seeds.len() as u64;
        let slos: Vec<SloAt> = self
            .slos
            .iter()
            .map(|e| slo_at(e, &figures, self.plan.confidence))
            .collect();
        Ok(Evaluation {
            values: values.to_vec(),
            seeds: seeds.to_vec(),
            met: slos.iter().all(|s| s.ok),
            slos,
            purpose: purpose.to_string(),
        })
    }
}

/// A knob value as people write it.
pub fn label(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

/// A sliced plan's rate limit per partner is one token bucket at 1/N of the rate. At the same
/// utilization, a bucket that serves N times fewer messages sees larger relative swings in its
/// arrivals (their spread shrinks as the square root of the count), so more of them wait past
/// its one-second burst: a rate limit found on a slice is on the safe side, and more so the
/// thinner the slice (measured on plan-slices.toml, resolved to 1 %: 176,250/s at 1/100,
/// 180,000/s at 1/1000; on the plan's grid of two significant figures both answer 180,000/s).
fn sliced_rate_limit_note(plan: &CapacityPlan, values: &[f64]) -> Option<String> {
    if plan.slice <= 1 {
        return None;
    }
    let (i, k) = plan
        .solve
        .iter()
        .enumerate()
        .find(|(_, k)| k.target == SweepTarget::RateLimitPerPartner)?;
    Some(format!(
        "{} = {} runs in the 1/{} slice as one token bucket at {}/s per partner: a bucket serving {}x fewer messages swings more at the same utilization and holds more of them past its one-second burst, so a rate limit found on a slice errs high, more so the thinner the slice (resolved to 1 %, 176,250/s at 1/100 and 180,000/s at 1/1000 of one population; to two figures, as a plan answers, 180,000/s in both)",
        k.key,
        values[i],
        plan.slice,
        values[i] / plan.slice as f64,
        plan.slice
    ))
}

/// One SLO over the seeds' figures.
fn slo_at(e: &scenario::Expectation, runs: &[Figures], confidence: f64) -> SloAt {
    let latency = scenario::is_latency(&e.key);
    let (limit, at_most) = match e.bound {
        Bound::AtMost(x) => (x, true),
        Bound::AtLeast(x) => (x, false),
    };
    let limit = if latency { limit / 1e6 } else { limit };
    // A delivery latency of a path that delivered nothing is not measured (`Summary::metric`):
    // its 0 would pass any bound, and a dead path must fail.
    let values: Vec<Option<f64>> = runs
        .iter()
        .map(|f| f.get(&e.key).copied().flatten())
        .collect();
    let measured: Vec<f64> = values.iter().flatten().copied().collect();
    let n = measured.len() as f64;
    let mean = if measured.is_empty() {
        f64::NAN
    } else {
        measured.iter().sum::<f64>() / n
    };
    let confident = if measured.len() < 2 {
        mean
    } else {
        let var = measured.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let t = StudentsT::new(0.0, 1.0, n - 1.0)
            .map(|d| d.inverse_cdf(confidence))
            .unwrap_or(f64::INFINITY);
        let half = t * (var / n).sqrt();
        if at_most {
            mean + half
        } else {
            mean - half
        }
    };
    let ok = measured.len() == values.len()
        && if at_most {
            confident <= limit
        } else {
            confident >= limit
        };
    let unit = if latency { "ms" } else { "" };
    SloAt {
        key: e.key.clone(),
        bound: format!(
            "{} {}{unit}",
            if at_most { "<=" } else { ">=" },
            label(limit)
        ),
        limit,
        at_most,
        values,
        mean,
        confident,
        ok,
    }
}

#[cfg(test)]
mod tests;
