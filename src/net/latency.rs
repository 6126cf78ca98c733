//! The five latency distributions of SCENARIOS.md, sampled with portable math (`libm`) so that
//! no platform's `ln` or `exp` changes a draw (determinism rule 5).

use rand::Rng;
use serde::Serialize;

/// z for the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// A latency distribution as a scenario sets it (SCENARIOS.md, `[network]`), in nanoseconds;
/// [`LatencySampler`] is the same with what sampling needs pre-computed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Latency {
    Constant { value_ns: u64 },
    Uniform { min_ns: u64, max_ns: u64 },
    Normal { mean_ns: u64, stddev_ns: u64 },
    Lognormal { median_ns: u64, p99_ns: u64 },
    Pareto { min_ns: u64, alpha: f64 },
}

/// A latency distribution with its parameters pre-converted to what sampling needs.
#[derive(Clone, Copy, Debug)]
pub enum LatencySampler {
    Constant {
        ns: u64,
    },
    Uniform {
        min_ns: u64,
        span_ns: u64,
    },
    Normal {
        mean: f64,
        stddev: f64,
    },
    /// ln-space parameters.
    Lognormal {
        mu: f64,
        sigma: f64,
    },
    Pareto {
        min: f64,
        inv_alpha: f64,
    },
}

impl LatencySampler {
    pub fn new(spec: &Latency) -> Self {
        match *spec {
            Latency::Constant { value_ns } => LatencySampler::Constant { ns: value_ns },
            Latency::Uniform { min_ns, max_ns } => LatencySampler::Uniform {
                min_ns,
                span_ns: max_ns.saturating_sub(min_ns),
            },
            Latency::Normal { mean_ns, stddev_ns } => LatencySampler::Normal {
                mean: mean_ns as f64,
                stddev: stddev_ns as f64,
            },
            Latency::Lognormal { median_ns, p99_ns } => {
                let mu = libm::log(median_ns.max(1) as f64);
                let sigma = ((libm::log(p99_ns.max(1) as f64) - mu) / Z_P99).max(0.0);
                LatencySampler::Lognormal { mu, sigma }
            }
            Latency::Pareto { min_ns, alpha } => LatencySampler::Pareto {
                min: min_ns as f64,
                inv_alpha: 1.0 / alpha.max(1e-9),
            },
        }
    }

    /// One draw, in nanoseconds. Never negative: a normal draw below zero is clamped to 0.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match *self {
            LatencySampler::Constant { ns } => ns,
            LatencySampler::Uniform { min_ns, span_ns } => {
                if span_ns == 0 {
                    min_ns
                } else {
                    min_ns + rng.next_u64() % (span_ns + 1)
                }
            }
            LatencySampler::Normal { mean, stddev } => to_ns(mean + stddev * standard_normal(rng)),
            LatencySampler::Lognormal { mu, sigma } => {
                to_ns(libm::exp(mu + sigma * standard_normal(rng)))
            }
            LatencySampler::Pareto { min, inv_alpha } => {
                to_ns(min / libm::pow(unit_open(rng), inv_alpha))
            }
        }
    }
}

/// Clamps a float draw into u64 nanoseconds (negative and NaN give 0; a day at most, so that a
/// heavy tail cannot push an event past any sane horizon).
fn to_ns(x: f64) -> u64 {
    const CAP_NS: f64 = 86_400e9;
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= CAP_NS {
        CAP_NS as u64
    } else {
        x as u64
    }
}

/// A uniform draw in (0, 1]: 53 random bits, never zero (safe for `ln`).
pub fn unit_open<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in [0, 1).
pub fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Bernoulli(p) without a float draw when p is 0 or 1, so that a zero-probability feature
/// costs nothing and consumes no randomness.
pub fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        unit(rng) < p
    }
}

/// A standard normal draw by the ziggurat method (Marsaglia and Tsang, "The Ziggurat Method
/// for Generating Random Variables", Journal of Statistical Software 5(8), 2000, with its 128
/// layers and constants). Every frame on every link draws one, and 98.8 % of draws cost one
/// random word, a table lookup and a multiply: Box-Muller's logarithm, square root and cosine
/// per draw were a twentieth of a 1 M-user run. Stateless, and the tables come from `libm`,
/// so a seed gives the same draws on every platform.
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let z = &*ZIGGURAT;
    loop {
        let word = rng.next_u64();
        let hz = (word >> 32) as u32 as i32;
        let iz = (word & 0x7f) as usize;
        if u64::from(hz.unsigned_abs()) < u64::from(z.k[iz]) {
            return f64::from(hz) * z.w[iz];
        }
        if let Some(x) = z.fix(hz, iz, rng) {
            return x;
        }
    }
}

/// The ziggurat's layer tables: `k` (acceptance bounds on `|hz|`), `w` (scale from `hz` to
/// `x`) and `f` (the density at each layer's edge).
struct Ziggurat {
    k: [u32; 128],
    w: [f64; 128],
    f: [f64; 128],
}

/// Where the tail begins, and the area of each layer (Marsaglia and Tsang, 128 layers).
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

static ZIGGURAT: std::sync::LazyLock<Ziggurat> = std::sync::LazyLock::new(|| {
    let m1 = 2_147_483_648.0; // 2^31
    let (mut k, mut w, mut f) = ([0u32; 128], [0f64; 128], [0f64; 128]);
    let mut dn = ZIG_R;
    let mut tn = dn;
    let q = ZIG_V / libm::exp(-0.5 * dn * dn);
    k[0] = ((dn / q) * m1) as u32;
    k[1] = 0;
    w[0] = q / m1;
    w[127] = dn / m1;
    f[0] = 1.0;
    f[127] = libm::exp(-0.5 * dn * dn);
    for i in (1..=126).rev() {
        dn = libm::sqrt(-2.0 * libm::log(ZIG_V / dn + libm::exp(-0.5 * dn * dn)));
        k[i + 1] = ((dn / tn) * m1) as u32;
        tn = dn;
        f[i] = libm::exp(-0.5 * dn * dn);
        w[i] = dn / m1;
    }
    Ziggurat { k, w, f }
});

impl Ziggurat {
    /// The slow path of a rejected `hz` in layer `iz`: the base layer's tail, or the wedge
    /// test under the density. `None`: draw again.
    fn fix<R: Rng + ?Sized>(&self, hz: i32, iz: usize, rng: &mut R) -> Option<f64> {
        let x = f64::from(hz) * self.w[iz];
        if iz == 0 {
            // The tail beyond ZIG_R (Marsaglia's method for the normal tail).
            loop {
                let x = -libm::log(unit_open(rng)) / ZIG_R;
                let y = -libm::log(unit_open(rng));
                if y + y >= x * x {
                    return Some(if hz > 0 { ZIG_R + x } else { -ZIG_R - x });
                }
            }
        }
        let under = self.f[iz] + unit(rng) * (self.f[iz - 1] - self.f[iz]);
        (under < libm::exp(-0.5 * x * x)).then_some(x)
    }
}

/// An exponential draw with the given mean, in ns.
pub fn exponential_ns<R: Rng + ?Sized>(rng: &mut R, mean_ns: f64) -> u64 {
    to_ns(-mean_ns * libm::log(unit_open(rng)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RngTree;

    fn percentile(mut v: Vec<u64>, p: f64) -> u64 {
        v.sort_unstable();
        v[((v.len() as f64 - 1.0) * p) as usize]
    }

    #[test]
    fn ziggurat_draws_a_standard_normal() {
        let mut rng = crate::engine::RngTree::new(3).stream("z", 0);
        let n = 400_000;
        let draws: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let share =
            |p: &dyn Fn(f64) -> bool| draws.iter().filter(|&&x| p(x)).count() as f64 / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        // Normal CDF values: P(|z| < 1) = 0.6827, P(z > 2) = 0.02275, P(|z| > 3.4426) (the
        // tail, drawn by its own path) = 5.76e-4.
        assert!((share(&|x| x.abs() < 1.0) - 0.6827).abs() < 0.003);
        assert!((share(&|x| x > 2.0) - 0.02275).abs() < 0.001);
        let tail = share(&|x| x.abs() > ZIG_R);
        assert!(tail > 3.0e-4 && tail < 9.0e-4, "tail share {tail}");
        assert!(draws.iter().any(|&x| x < -ZIG_R) && draws.iter().any(|&x| x > ZIG_R));
    }

    #[test]
    fn lognormal_hits_its_median_and_p99() {
        let s = LatencySampler::new(&Latency::Lognormal {
            median_ns: 60_000_000,
            p99_ns: 400_000_000,
        });
        let mut rng = RngTree::new(1).stream("t", 0);
        let v: Vec<u64> = (0..200_000).map(|_| s.sample(&mut rng)).collect();
        let p50 = percentile(v.clone(), 0.5) as f64;
        let p99 = percentile(v, 0.99) as f64;
        assert!((p50 / 60e6 - 1.0).abs() < 0.03, "p50 {p50}");
        assert!((p99 / 400e6 - 1.0).abs() < 0.06, "p99 {p99}");
    }

    #[test]
    fn uniform_stays_in_bounds_and_normal_never_negative() {
        let u = LatencySampler::new(&Latency::Uniform {
            min_ns: 10,
            max_ns: 20,
        });
        let n = LatencySampler::new(&Latency::Normal {
            mean_ns: 1,
            stddev_ns: 1_000,
        });
        let mut rng = RngTree::new(2).stream("t", 0);
        for _ in 0..10_000 {
            let x = u.sample(&mut rng);
            assert!((10..=20).contains(&x));
            let _ = n.sample(&mut rng); // u64: a negative would have wrapped to a huge value
            assert!(n.sample(&mut rng) < 1_000_000);
        }
    }

    #[test]
    fn pareto_is_at_least_its_minimum() {
        let p = LatencySampler::new(&Latency::Pareto {
            min_ns: 5_000,
            alpha: 1.5,
        });
        let mut rng = RngTree::new(3).stream("t", 0);
        assert!((0..10_000).all(|_| p.sample(&mut rng) >= 5_000));
    }
}
