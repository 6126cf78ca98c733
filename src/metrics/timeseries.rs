//! Per-interval rows for timeseries.csv: what was sent and delivered in each interval, and the
//! gauges (in flight, queue depths, utilization) sampled at its end.

use super::ledger::IntervalLatency;

/// One row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub sent: u64,
    pub delivered: u64,
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

impl TimeSeries {
    pub fn new(interval_s: f64) -> Self {
        TimeSeries {
            interval_s,
            rows: Vec::new(),
        }
    }

    pub const HEADER: [&'static str; 12] = [
        "t_s",
        "sent",
        "delivered",
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

    /// Peak per-second delivery rate over the rows.
    pub fn delivered_per_s_peak(&self) -> f64 {
        self.rows
            .iter()
            .map(|r| r.delivered as f64 / self.interval_s)
            .fold(0.0, f64::max)
    }
}
