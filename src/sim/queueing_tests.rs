//! The simulated cores against queueing theory. [`Cpu`] is the one queue every server node
//! runs, so its mean wait must be what M/D/1, M/M/1, M/D/c and M/M/c say it is when it is fed
//! Poisson arrivals alone (no acks, no retries: the node isolated). Each case runs until the 95 %
//! confidence interval of the mean wait (batch means) is under 2 % of it, then holds the
//! estimate within 3 % of the formula; Little's law is checked with a second estimator (the
//! queue length seen by arrivals, which Poisson arrivals see as its time average).

use super::cpu::Cpu;
use crate::engine::SimTime;
use crate::scenario::{NodeCapacity, RunSpec};
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

type TestRng = rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug)]
enum Service {
    Constant,
    Exponential,
}

/// What one case measured: mean wait in queue (service times), its 95 % half-width, and the
/// mean number waiting as seen by arrivals.
struct Measured {
    wait: f64,
    half_width: f64,
    waiting: f64,
    arrivals: u64,
}

fn exponential(rng: &mut TestRng, mean: f64) -> f64 {
    let u = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -mean * u.ln()
}

/// Poisson arrivals at utilization `rho` on `cores` cores with mean service 1 (1 µs of
/// simulated time), until the mean wait is known to 2 % or `max_arrivals` are in.
fn simulate(cores: u32, rho: f64, service: Service, seed: u64) -> Measured {
    const SERVICE_NS: f64 = 1_000.0;
    const BATCHES: usize = 40;
    const BATCH_MIN: u64 = 25_000;
    const ARRIVALS_MAX: u64 = 60_000_000;
    let capacity = NodeCapacity {
        cores,
        per_message_ns: SERVICE_NS as u64,
        queue_max: u64::MAX / 4,
        rate_limit_per_partner: None,
        control_queue: Default::default(),
    };
    let run = RunSpec {
        name: "queue".into(),
        seed,
        duration_ns: u64::MAX / 4,
        drain_ns: 0,
        // One interval for the whole run: the test reads waits, not utilization rows.
        interval_ns: u64::MAX / 4,
        ramp_ns: 0,
        warmup_ns: 0,
        events_max: u64::MAX,
    };
    let mut cpu = Cpu::new(&capacity, &run);
    let mut rng = TestRng::seed_from_u64(seed);
    let gap_mean = SERVICE_NS / (rho * cores as f64);
    let mut now = 0.0f64;
    // Start instants of the items still waiting, for the queue length an arrival sees.
    let mut waiting: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let (mut batch, mut batch_len) = (0u64, BATCH_MIN);
    let mut sums: Vec<f64> = Vec::new();
    let (mut wait_sum, mut seen_sum, mut n) = (0.0, 0.0, 0u64);
    // Warm up (discarded): a tenth of the first batches.
    let warmup = BATCH_MIN * BATCHES as u64 / 10;
    loop {
        now += exponential(&mut rng, gap_mean);
        let at = now as u64;
        while waiting.peek().is_some_and(|s| s.0 <= at) {
            waiting.pop();
        }
        let s = match service {
            Service::Constant => SERVICE_NS as u64,
            Service::Exponential => (exponential(&mut rng, SERVICE_NS) as u64).max(1),
        };
        let done = cpu
            .admit(SimTime::from_nanos(at), s)
            .expect("the queue is unbounded here");
        let start = done.as_nanos() - s;
        let wait = (start - at) as f64 / SERVICE_NS;
        let seen = waiting.len() as f64;
        if start > at {
            waiting.push(Reverse(start));
        }
        n += 1;
        if n <= warmup {
            continue;
        }
        wait_sum += wait;
        seen_sum += seen;
        batch += 1;
        if batch < batch_len {
            continue;
        }
        sums.push(wait_sum);
        wait_sum = 0.0;
        batch = 0;
        if sums.len() < BATCHES {
            continue;
        }
        let means: Vec<f64> = sums.iter().map(|s| s / batch_len as f64).collect();
        let mean = means.iter().sum::<f64>() / BATCHES as f64;
        let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (BATCHES - 1) as f64;
        // Student's t, 39 degrees of freedom, 97.5 %.
        let half_width = 2.023 * (var / BATCHES as f64).sqrt();
        let counted = n - warmup;
        if half_width < 0.02 * mean || n >= ARRIVALS_MAX {
            return Measured {
                wait: mean,
                half_width,
                waiting: seen_sum / counted as f64,
                arrivals: counted,
            };
        }
        // Not precise enough: double the batches' length by merging them pairwise.
        sums = sums.chunks(2).map(|p| p.iter().sum()).collect();
        batch_len *= 2;
    }
}

/// Erlang C: the probability that an arrival waits, M/M/c with offered load `a` = λ/μ.
fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / c as f64;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / k as f64;
        sum += term;
    }
    let last = term * a / c as f64 / (1.0 - rho);
    last / (sum + last)
}

/// Mean wait in queue of M/M/c, in mean service times.
fn mmc_wait(c: u32, rho: f64) -> f64 {
    let a = rho * c as f64;
    erlang_c(c, a) / (c as f64 * (1.0 - rho))
}

/// Mean wait in queue of M/D/c: Cosmetatos' correction of half the M/M/c wait (exact for c = 1).
fn mdc_wait(c: u32, rho: f64) -> f64 {
    let c_f = c as f64;
    let correction =
        1.0 + (1.0 - rho) * (c_f - 1.0) * ((4.0 + 5.0 * c_f).sqrt() - 2.0) / (16.0 * rho * c_f);
    0.5 * mmc_wait(c, rho) * correction
}

/// Utilization below which Cosmetatos' M/D/c approximation is itself off by more than the
/// test's tolerance (3.5 % at rho 0.3 on 4 cores): there the reference is a plain simulation.
const COSMETATOS_FROM: f64 = 0.5;

/// Mean wait of an M/D/c queue by the most direct simulation there is: each arrival takes the
/// core free first, found by a scan (nothing shared with [`Cpu`] but the rule FIFO).
fn reference_mdc_wait(c: u32, rho: f64, arrivals: u64, seed: u64) -> f64 {
    let mut rng = TestRng::seed_from_u64(seed ^ 0x5eed);
    let mut free = vec![0.0f64; c as usize];
    let (mut now, mut sum) = (0.0, 0.0);
    let warmup = arrivals / 10;
    for i in 0..arrivals + warmup {
        now += exponential(&mut rng, 1.0 / (rho * c as f64));
        let (k, at) = free
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::MAX), |b, (k, f)| if f < b.1 { (k, f) } else { b });
        let start = at.max(now);
        free[k] = start + 1.0;
        if i >= warmup {
            sum += start - now;
        }
    }
    sum / arrivals as f64
}

fn check(cores: u32, service: Service, rhos: &[f64]) {
    for (i, &rho) in rhos.iter().enumerate() {
        let seed = 17 + i as u64;
        let m = simulate(cores, rho, service, seed);
        let expected = match service {
            Service::Constant if cores > 1 && rho < COSMETATOS_FROM => {
                reference_mdc_wait(cores, rho, 4 * m.arrivals, seed)
            }
            Service::Constant => mdc_wait(cores, rho),
            Service::Exponential => mmc_wait(cores, rho),
        };
        let what = format!("{service:?} service on {cores} cores at rho {rho}");
        assert!(
            m.half_width < 0.02 * m.wait,
            "{what}: 95 % interval ±{:.3} of {:.3} after {} arrivals",
            m.half_width,
            m.wait,
            m.arrivals
        );
        let error = (m.wait - expected) / expected;
        assert!(
            error.abs() < 0.03,
            "{what}: mean wait {:.4} against {:.4} ({:+.1} %, ±{:.1} %, {} arrivals)",
            m.wait,
            expected,
            error * 100.0,
            m.half_width / m.wait * 100.0,
            m.arrivals
        );
        // Little: waiting = λ Wq, with λ = rho * cores per service time.
        let little = rho * cores as f64 * m.wait;
        assert!(
            ((m.waiting - little) / little).abs() < 0.02,
            "{what}: arrivals saw {:.4} waiting, Little's law says {little:.4}",
            m.waiting
        );
    }
}

const RHOS: [f64; 4] = [0.3, 0.6, 0.8, 0.95];

#[test]
fn one_core_constant_service_is_m_d_1() {
    check(1, Service::Constant, &RHOS);
    // The check tells queues apart: constant service waits half as long as exponential.
    let m = simulate(1, 0.8, Service::Constant, 99);
    let mm1 = mmc_wait(1, 0.8);
    assert!(
        (m.wait / mm1 - 0.5).abs() < 0.03,
        "{} against M/M/1 {mm1}",
        m.wait
    );
}

#[test]
fn one_core_exponential_service_is_m_m_1() {
    check(1, Service::Exponential, &RHOS);
}

#[test]
fn four_cores_constant_service_is_m_d_c() {
    check(4, Service::Constant, &RHOS);
}

#[test]
fn four_cores_exponential_service_is_m_m_c() {
    check(4, Service::Exponential, &RHOS);
}
