//! Per-interval rows for timeseries.csv: what was sent and delivered in each interval, and the
//! gauges (in flight, queue depths, utilization) sampled at its end.

use super::ledger::IntervalLatency;

/// One row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// The end of the interval.
    pub t_s: f64,
    pub sent: u64,
    /// Messages whose last expected device showed them in the interval (see `deliveries`).
    pub messages_delivered: u64,
    /// Recipient devices that first showed a copy in the interval.
    pub device_deliveries: u64,
    pub in_flight: u64,
    pub offline_queue: u64,
    pub gateway_queue: u64,
    pub gateway_utilization: f64,
    pub chat_server_utilization: f64,
    pub adapter_utilization: f64,
    /// Latency percentiles of the deliveries in this interval.
    pub latency: IntervalLatency,
}

#[derive(Clone, Debug, Default)]
pub struct TimeSeries {
    pub interval_s: f64,
    pub rows: Vec<Sample>,
}

/// Slack when comparing a row's end with the end of the send window: both are whole
/// nanoseconds converted to seconds, so only rounding can separate equal instants.
const WINDOW_SLACK_S: f64 = 1e-9;

impl TimeSeries {
    pub fn new(interval_s: f64) -> Self {
        TimeSeries {
            interval_s,
            rows: Vec::new(),
        }
    }

    pub const HEADER: [&'static str; 13] = [
        "t_s",
        "sent",
        "messages_delivered",
        "device_deliveries",
        "in_flight",
        "offline_queue",
        "gateway_queue",
        "gateway_utilization",
        "chat_server_utilization",
        "adapter_utilization",
        "delivered_p50_ms",
        "delivered_p99_ms",
        "delivered_max_ms",
    ];

    /// Peak per-second rate of `count` over the rows that end within the send window (which ends
    /// at `window_end_s`): the same window as the mean, so that a drain row, which only empties
    /// the backlog, never sets the peak.
    pub fn peak_per_s(&self, window_end_s: f64, count: impl Fn(&Sample) -> u64) -> f64 {
        self.rows
            .iter()
            .filter(|r| r.t_s <= window_end_s + WINDOW_SLACK_S)
            .map(|r| count(r) as f64 / self.interval_s)
            .fold(0.0, f64::max)
    }

    /// [`TimeSeries::peak_per_s`] of messages delivered.
    pub fn messages_delivered_per_s_peak(&self, window_end_s: f64) -> f64 {
        self.peak_per_s(window_end_s, |r| r.messages_delivered)
    }

    /// [`TimeSeries::peak_per_s`] of device deliveries.
    pub fn device_deliveries_per_s_peak(&self, window_end_s: f64) -> f64 {
        self.peak_per_s(window_end_s, |r| r.device_deliveries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_ignores_drain_rows() {
        let mut ts = TimeSeries::new(1.0);
        for (t_s, n) in [(1.0, 4), (2.0, 6), (3.0, 50), (4.0, 90)] {
            ts.rows.push(Sample {
                t_s,
                messages_delivered: n,
                device_deliveries: 2 * n,
                ..Sample::default()
            });
        }
        // Sends for 2 s: the backlog delivered in the drain (rows ending at 3 and 4 s) is no peak.
        assert_eq!(ts.messages_delivered_per_s_peak(2.0), 6.0);
        assert_eq!(ts.device_deliveries_per_s_peak(2.0), 12.0);
        assert_eq!(ts.messages_delivered_per_s_peak(4.0), 90.0);
        assert_eq!(
            ts.messages_delivered_per_s_peak(0.5),
            0.0,
            "no row ends that early"
        );
    }
}
