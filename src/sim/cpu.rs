//! Simulated cores of a server node: work items queue for `cores` servers in FIFO order, each
//! taking its service time. Throughput saturates here, queues grow here, and busy time is
//! accounted here per interval, which is what a capacity planner reads.

use crate::engine::SimTime;
use crate::scenario::NodeCapacity;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Debug)]
pub struct Cpu {
    /// When each core is next free, earliest on top. Cores are interchangeable: which of
    /// several equally free cores takes an item changes nothing but its name, so a heap of
    /// instants replaces a scan of every core per item (64 cores on a chat server).
    free_at: BinaryHeap<Reverse<SimTime>>,
    cores: usize,
    per_message_ns: u64,
    queue_max: u64,
    /// Work admitted and not completed.
    in_system: u64,
    /// Multiplies service times (the `slow` fault).
    pub slow_factor: f64,
    busy_interval_ns: u64,
    busy_total_ns: u64,
    pub peak_utilization: f64,
    pub rejected: u64,
    pub processed: u64,
}

impl Cpu {
    pub fn new(cap: &NodeCapacity) -> Self {
        Cpu {
            free_at: vec![Reverse(SimTime::ZERO); cap.cores.max(1) as usize].into(),
            cores: cap.cores.max(1) as usize,
            per_message_ns: cap.per_message_ns,
            queue_max: cap.queue_max,
            in_system: 0,
            slow_factor: 1.0,
            busy_interval_ns: 0,
            busy_total_ns: 0,
            peak_utilization: 0.0,
            rejected: 0,
            processed: 0,
        }
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Work waiting or in service.
    pub fn in_system(&self) -> u64 {
        self.in_system
    }

    /// Service time of a frame: a message costs `per_message`, a control frame a quarter.
    pub fn service_ns(&self, is_message: bool) -> u64 {
        let base = if is_message {
            self.per_message_ns
        } else {
            self.per_message_ns / 4
        };
        (base as f64 * self.slow_factor) as u64
    }

    /// Admits a work item arriving at `now`, or refuses it when the queue is full
    /// (backpressure: the sender's retry timer takes it from there). Returns its completion.
    pub fn admit(&mut self, now: SimTime, service_ns: u64) -> Option<SimTime> {
        if self.in_system >= self.queue_max + self.cores as u64 {
            self.rejected += 1;
            return None;
        }
        let mut earliest = self.free_at.peek_mut()?;
        let start = earliest.0.max(now);
        let done = start.plus(service_ns);
        *earliest = Reverse(done);
        drop(earliest);
        self.in_system += 1;
        self.busy_interval_ns += service_ns;
        self.busy_total_ns += service_ns;
        Some(done)
    }

    pub fn complete(&mut self) {
        debug_assert!(self.in_system > 0);
        self.in_system -= 1;
        self.processed += 1;
    }

    /// Busy share of the cores over the interval just ended; resets the interval.
    pub fn take_interval_utilization(&mut self, interval_ns: u64) -> f64 {
        let u =
            (self.busy_interval_ns as f64 / (interval_ns as f64 * self.cores() as f64)).min(1.0);
        self.busy_interval_ns = 0;
        self.peak_utilization = self.peak_utilization.max(u);
        u
    }

    pub fn mean_utilization(&self, elapsed_ns: u64) -> f64 {
        if elapsed_ns == 0 {
            return 0.0;
        }
        (self.busy_total_ns as f64 / (elapsed_ns as f64 * self.cores() as f64)).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_serve_in_parallel_then_queue_and_refuse() {
        let mut c = Cpu::new(&NodeCapacity {
            cores: 2,
            per_message_ns: 100,
            queue_max: 1,
            rate_limit_per_partner: None,
        });
        let t = SimTime::ZERO;
        assert_eq!(c.admit(t, 100), Some(SimTime::from_nanos(100)));
        assert_eq!(c.admit(t, 100), Some(SimTime::from_nanos(100)));
        assert_eq!(c.admit(t, 100), Some(SimTime::from_nanos(200)));
        assert_eq!(
            c.admit(t, 100),
            None,
            "2 in service + 1 queued is the bound"
        );
        c.complete();
        assert!(c.admit(t, 100).is_some());
    }
}
