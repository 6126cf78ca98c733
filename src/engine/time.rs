//! Simulated time: integer nanoseconds since the start of the run (determinism rule 5), so that
//! no float rounding can reorder two events on another machine.

use std::fmt;

/// An instant of simulated time, in nanoseconds since the run started.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

pub const NS_PER_US: u64 = 1_000;
pub const NS_PER_MS: u64 = 1_000_000;
pub const NS_PER_S: u64 = 1_000_000_000;

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    pub const fn from_secs(s: u64) -> Self {
        assert!(
            s <= u64::MAX / NS_PER_S,
            "an instant fits in u64 nanoseconds"
        );
        SimTime(s * NS_PER_S)
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
    /// `self + delay_ns`, saturating at [`SimTime::MAX`] so that a huge sampled delay can never
    /// wrap around into the past.
    pub const fn plus(self, delay_ns: u64) -> Self {
        SimTime(self.0.saturating_add(delay_ns))
    }
    /// Nanoseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub const fn since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", format_duration_ns(self.0))
    }
}

/// Formats a duration in nanoseconds with the largest unit that keeps it exact when possible,
/// in the same syntax the scenario files accept ("250us", "40ms", "2s", "1.5s").
pub fn format_duration_ns(ns: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600 * NS_PER_S, "h"),
        (60 * NS_PER_S, "m"),
        (NS_PER_S, "s"),
        (NS_PER_MS, "ms"),
        (NS_PER_US, "us"),
        (1, "ns"),
    ];
    if ns == 0 {
        return "0s".to_string();
    }
    for (unit_ns, name) in UNITS {
        if ns.is_multiple_of(unit_ns) {
            return format!("{}{}", ns / unit_ns, name);
        }
    }
    unreachable!("every duration is a whole number of nanoseconds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_largest_exact_unit() {
        assert_eq!(format_duration_ns(90 * NS_PER_S), "90s");
        assert_eq!(format_duration_ns(120 * NS_PER_S), "2m");
        assert_eq!(format_duration_ns(250 * NS_PER_US), "250us");
        assert_eq!(format_duration_ns(1_500 * NS_PER_MS), "1500ms");
        assert_eq!(format_duration_ns(0), "0s");
    }

    #[test]
    fn plus_saturates() {
        assert_eq!(SimTime::MAX.plus(5), SimTime::MAX);
        assert_eq!(SimTime::from_secs(1).since(SimTime::from_secs(2)), 0);
    }
}
