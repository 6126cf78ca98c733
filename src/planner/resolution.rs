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

/// Grid values per decade at two significant figures: 10 to 99.
const PER_DECADE: i64 = 90;

impl Resolution {
    /// The grid's values are numbered in order: value `i` is `i * u` for multiples of `u`, and
    /// `m * 10^e` with `i = 90 e + (m - 10)` for two figures (so a step past 99 carries into
    /// the next decade by itself). The index of the largest grid value at or below `x`.
    fn floor_index(self, x: f64) -> i64 {
        match self {
            Resolution::Multiple(u) => (x / u + NOISE).floor() as i64,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                let m = ((m + NOISE).floor() as i64).clamp(10, 99);
                i64::from(e) * PER_DECADE + m - 10
            }
        }
    }

    /// The index of the smallest grid value at or above `x`.
    fn ceil_index(self, x: f64) -> i64 {
        match self {
            Resolution::Multiple(u) => (x / u - NOISE).ceil() as i64,
            Resolution::TwoFigures => {
                let (m, e) = figures(x);
                i64::from(e) * PER_DECADE + (m - NOISE).ceil() as i64 - 10
            }
        }
    }

    /// Grid value number `i`.
    fn at(self, i: i64) -> f64 {
        match self {
            Resolution::Multiple(u) => i as f64 * u,
            Resolution::TwoFigures => value(
                10 + i.rem_euclid(PER_DECADE),
                i.div_euclid(PER_DECADE) as i32,
            ),
        }
    }

    /// Two figures have no grid at or below 0 (knob ranges start above 0, the parser's rule):
    /// such an `x` is its own answer.
    fn off_grid(self, x: f64) -> bool {
        self == Resolution::TwoFigures && x <= 0.0
    }

    /// The smallest value on the grid at or above `x`.
    pub fn up(self, x: f64) -> f64 {
        if self.off_grid(x) {
            return x;
        }
        self.at(self.ceil_index(x))
    }

    /// The largest value on the grid at or below `x`.
    pub fn down(self, x: f64) -> f64 {
        if self.off_grid(x) {
            return x;
        }
        self.at(self.floor_index(x))
    }

    /// The grid value just above `x`.
    pub fn next(self, x: f64) -> f64 {
        if self.off_grid(x) {
            return x;
        }
        self.at(self.floor_index(x) + 1)
    }

    /// The grid value just below `x`.
    pub fn prev(self, x: f64) -> f64 {
        if self.off_grid(x) {
            return x;
        }
        self.at(self.ceil_index(x) - 1)
    }

    /// A grid value strictly between `lo` and `hi`, about halfway along the grid (the
    /// bisection's next point); `None` when they are neighbours.
    pub fn between(self, lo: f64, hi: f64) -> Option<f64> {
        if !(lo > 0.0 && hi > lo) {
            // Knob ranges start above 0 (the parser's rule); nothing lies between otherwise.
            return None;
        }
        // The grid values strictly between are numbers `first..=last`; the bisection takes the
        // middle one: of two middles, the lower for whole numbers, the upper for two figures.
        let (first, last) = (self.floor_index(lo) + 1, self.ceil_index(hi) - 1);
        let upper = i64::from(self == Resolution::TwoFigures);
        (first <= last).then(|| self.at(first + (last - first + upper) / 2))
    }

    /// A joint answer's step up from `x` when the knobs interact: one whole-number step, or
    /// the grid value about 10 % up.
    pub fn step_up(self, x: f64) -> f64 {
        match self {
            Resolution::Multiple(_) => self.next(x),
            Resolution::TwoFigures => self.up(x * 1.1).max(self.next(x)),
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
