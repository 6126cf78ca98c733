//! The values a plan's knob is resolved to.
//!
//! Cores are whole, and in a 1/N slice whole in the slice, so the whole system's come in
//! multiples of N. Every other knob (a rate limit) is resolved to two significant figures:
//! ..., 170, 180, ..., 990, 1,000, 1,100, ... (steps of 1 to 10 %). Finer is not knowable: on
//! two seeds the value 1 % below an answer passed as often as not when re-run on fresh seeds,
//! and two slices of one population put a rate limit 2 % apart (176,250/s at 1/100 and
//! 180,000/s at 1/1000 when it was resolved to 1 %). A planner also buys capacity in round
//! figures. On this grid both slices answer 180,000/s.

/// How finely one knob is resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resolution {
    /// Whole numbers, in multiples of this (the slice's N).
    Multiple(f64),
    /// Two significant figures.
    TwoFigures,
}

/// `m * 10^e` without the rounding error of multiplying by a negative power of ten.
fn value(m: i64, e: i32) -> f64 {
    if e >= 0 {
        m as f64 * 10f64.powi(e)
    } else {
        m as f64 / 10f64.powi(-e)
    }
}

/// `x = m * 10^e` with `10 <= m < 100` (up to float noise), for `x > 0`.
fn figures(x: f64) -> (f64, i32) {
    let mut e = x.log10().floor() as i32 - 1;
    let mut m = x / value(1, e);
    if m >= 100.0 - 1e-9 {
        e += 1;
        m = x / value(1, e);
    } else if m < 10.0 - 1e-9 {
        e -= 1;
        m = x / value(1, e);
    }
    (m, e)
}

/// Float noise tolerated when a value is read as a grid value.
const NOISE: f64 = 1e-9;

impl Resolution {
    /// The smallest value on the grid at or above `x`.
    pub fn up(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(u) => (x / u - NOISE).ceil() * u,
            Resolution::TwoFigures if x <= 0.0 => x,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                let c = (m - NOISE).ceil() as i64;
                if c >= 100 {
                    value(10, e + 1)
                } else {
                    value(c, e)
                }
            }
        }
    }

    /// The largest value on the grid at or below `x`.
    pub fn down(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(u) => (x / u + NOISE).floor() * u,
            Resolution::TwoFigures if x <= 0.0 => x,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                value(((m + NOISE).floor() as i64).clamp(10, 99), e)
            }
        }
    }

    /// The grid value just above `x`.
    pub fn next(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(u) => self.down(x) + u,
            Resolution::TwoFigures if x <= 0.0 => x,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                let f = (m + NOISE).floor() as i64 + 1;
                if f >= 100 {
                    value(10, e + 1)
                } else {
                    value(f, e)
                }
            }
        }
    }

    /// The grid value just below `x`.
    pub fn prev(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(u) => self.up(x) - u,
            Resolution::TwoFigures if x <= 0.0 => x,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                let c = (m - NOISE).ceil() as i64 - 1;
                if c < 10 {
                    value(99, e - 1)
                } else {
                    value(c, e)
                }
            }
        }
    }

    /// A grid value strictly between `lo` and `hi`, about halfway along the grid (the
    /// bisection's next point); `None` when they are neighbours.
    pub fn between(self, lo: f64, hi: f64) -> Option<f64> {
        if !(lo > 0.0 && hi > lo) {
            // Knob ranges start above 0 (the parser's rule); nothing lies between otherwise.
            return None;
        }
        match self {
            Resolution::Multiple(u) => {
                let mid = ((lo + hi) / 2.0 / u).floor() * u;
                (hi - lo > u && mid > lo && mid < hi).then_some(mid)
            }
            Resolution::TwoFigures => {
                let mut grid = Vec::new();
                let mut x = self.next(lo);
                while x < hi * (1.0 - NOISE) {
                    grid.push(x);
                    x = self.next(x);
                }
                grid.get(grid.len() / 2).copied()
            }
        }
    }

    /// The gallop's next value after `x`: about twice it, on the grid.
    pub fn gallop(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(u) => (x * 2.0).max(x + u),
            Resolution::TwoFigures => self.up(x * 2.0).max(self.next(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Resolution::{self, Multiple, TwoFigures};

    #[test]
    fn two_figures_round_to_the_grid_both_ways() {
        for (x, up, down) in [
            (176_250.0, 180_000.0, 170_000.0),
            (180_000.0, 180_000.0, 180_000.0),
            (99_500.0, 100_000.0, 99_000.0),
            (100_000.0, 100_000.0, 100_000.0),
            (0.123, 0.13, 0.12),
            (1.5, 1.5, 1.5),
            (7.0, 7.0, 7.0),
            (10_000_000.0, 10_000_000.0, 10_000_000.0),
        ] {
            assert_eq!(TwoFigures.up(x), up, "up {x}");
            assert_eq!(TwoFigures.down(x), down, "down {x}");
        }
    }

    #[test]
    fn two_figures_step_across_decades() {
        assert_eq!(TwoFigures.next(99_000.0), 100_000.0);
        assert_eq!(TwoFigures.next(100_000.0), 110_000.0);
        assert_eq!(TwoFigures.prev(100_000.0), 99_000.0);
        assert_eq!(TwoFigures.prev(180_000.0), 170_000.0);
        assert_eq!(TwoFigures.prev(176_250.0), 170_000.0);
        assert_eq!(TwoFigures.next(176_250.0), 180_000.0);
        assert_eq!(TwoFigures.gallop(10_000.0), 20_000.0);
        assert_eq!(TwoFigures.gallop(55.0), 110.0);
        assert_eq!(TwoFigures.gallop(99.0), 200.0);
        // Every step up is between 1 % and 10 %.
        let mut x = 0.01;
        while x < 1e7 {
            let n = TwoFigures.next(x);
            let step = n / x - 1.0;
            assert!((0.0099..=0.1001).contains(&step), "{x} -> {n}");
            assert_eq!(TwoFigures.prev(n), x);
            x = n;
        }
    }

    #[test]
    fn bisection_ends_between_neighbours() {
        let bisect = |r: Resolution, mut lo: f64, mut hi: f64, threshold: f64| {
            let mut steps = 0;
            while let Some(mid) = r.between(lo, hi) {
                assert!(mid > lo && mid < hi);
                if mid >= threshold {
                    hi = mid;
                } else {
                    lo = mid;
                }
                steps += 1;
            }
            (hi, steps)
        };
        assert_eq!(
            bisect(TwoFigures, 160_000.0, 320_000.0, 176_250.0).0,
            180_000.0
        );
        assert_eq!(
            bisect(TwoFigures, 160_000.0, 320_000.0, 179_000.0).0,
            180_000.0
        );
        let (answer, steps) = bisect(TwoFigures, 10_000.0, 10_000_000.0, 3_333.0e3);
        assert_eq!(answer, 3_400_000.0);
        assert!(steps <= 9, "{steps}");
        assert_eq!(bisect(Multiple(100.0), 1600.0, 3200.0, 2_050.0).0, 2_100.0);
        assert_eq!(bisect(Multiple(1.0), 4.0, 8.0, 7.0).0, 7.0);
        assert_eq!(Multiple(100.0).prev(2_100.0), 2_000.0);
        assert_eq!(Multiple(1.0).gallop(1.0), 2.0);
    }
}
