//! Simulated cores of a server node: work items queue for `cores` servers in FIFO order, each
//! taking its service time. Throughput saturates here, queues grow here, and busy time is
//! accounted here per interval, which is what a capacity planner reads.
//!
//! Busy time is booked to the sampling intervals in which a core actually serves the item, not
//! to the one in which it arrived: a backlog of seconds admitted at once is busy time of the
//! seconds that serve it. A share is therefore never above 1 and is never clamped: a node reads
//! 1.0 only when its cores were busy the whole interval.

use super::host_cores::{take_core, HostCores};
use crate::engine::SimTime;
use crate::scenario::{ControlQueue, NodeCapacity, RunSpec};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

#[derive(Clone, Debug)]
pub struct Cpu {
    /// When each core is next free, earliest on top. Cores are interchangeable: which of
    /// several equally free cores takes an item changes nothing but its name, so a heap of
    /// instants replaces a scan of every core per item (64 cores on a chat server).
    free_at: BinaryHeap<Reverse<SimTime>>,
    /// The control frames' own cores (`control_queue = "separate"`); `None`: they share
    /// `free_at` with the message frames.
    control_free_at: Option<BinaryHeap<Reverse<SimTime>>>,
    cores: usize,
    per_message_ns: u64,
    queue_max: u64,
    /// Work admitted and not completed.
    in_system: u64,
    /// Multiplies service times (the `slow` fault).
    pub slow_factor: f64,
    /// Length of a sampling interval (`run.interval`).
    interval_ns: u64,
    /// Where the current sampling interval ends.
    interval_end_ns: u64,
    /// Core time booked in the current interval.
    busy_interval_ns: u64,
    /// Core time booked in the intervals after the current one, the next first.
    busy_ahead_ns: VecDeque<u64>,
    /// Core time of the intervals already sampled after the warm-up.
    busy_sampled_ns: u64,
    /// Intervals ending by then are left out of the mean and the peak (`[run] warmup`).
    warmup_end_ns: u64,
    /// Intervals sampled after the warm-up.
    intervals_counted: u64,
    pub peak_utilization: f64,
    pub rejected: u64,
    pub processed: u64,
    /// Time message frames admitted after the warm-up waited for a core.
    pub message_waits: Waits,
    /// The same for control frames.
    pub control_waits: Waits,
    /// When the last frame admitted is taken: its core free, and awake after the wake when it
    /// was idle (a hop trace's mark, where a live node's task takes the frame).
    pub last_taken: SimTime,
}

/// Time spent waiting for a core by the frames of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Waits {
    pub count: u64,
    pub total_ns: u128,
}

impl Waits {
    fn add(&mut self, ns: u64) {
        self.count += 1;
        self.total_ns += ns as u128;
    }

    /// Mean wait in microseconds (0 with no frames).
    pub fn mean_us(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ns as f64 / self.count as f64 / 1_000.0
        }
    }

    /// Adds another node's waits (the adapters are reported together).
    pub fn merge(&mut self, other: &Waits) {
        self.count += other.count;
        self.total_ns += other.total_ns;
    }
}

impl Cpu {
    /// A node sampled every `run.interval` from time zero.
    pub fn new(cap: &NodeCapacity, run: &RunSpec) -> Self {
        let interval_ns = run.interval_ns;
        assert!(interval_ns > 0, "a sampling interval is at least 1ms");
        Cpu {
            free_at: vec![Reverse(SimTime::ZERO); cap.cores.max(1) as usize].into(),
            control_free_at: (cap.control_queue == ControlQueue::Separate)
                .then(|| vec![Reverse(SimTime::ZERO); cap.cores.max(1) as usize].into()),
            cores: cap.cores.max(1) as usize,
            per_message_ns: cap.per_message_ns,
            queue_max: cap.queue_max,
            in_system: 0,
            slow_factor: 1.0,
            interval_ns,
            interval_end_ns: interval_ns,
            busy_interval_ns: 0,
            busy_ahead_ns: VecDeque::new(),
            busy_sampled_ns: 0,
            warmup_end_ns: run.warmup_ns,
            intervals_counted: 0,
            peak_utilization: 0.0,
            rejected: 0,
            processed: 0,
            message_waits: Waits::default(),
            control_waits: Waits::default(),
            last_taken: SimTime::ZERO,
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
        self.admit_frame(now, service_ns, true)
    }

    /// [`Cpu::admit`] for a message frame (`is_message`) or a control frame, which waits on
    /// the control cores when the node has them.
    pub fn admit_frame(
        &mut self,
        now: SimTime,
        service_ns: u64,
        is_message: bool,
    ) -> Option<SimTime> {
        self.admit_frame_on(None, now, service_ns, is_message)
    }

    /// [`Cpu::admit_frame`] on a host's cores shared with other nodes (`Some`) instead of the
    /// node's own: the node keeps its queue bound, its waits and its busy time. The frame came
    /// over connection `conn` (see [`HostCores::read`]).
    pub fn admit_frame_on(
        &mut self,
        host: Option<(&mut HostCores, u64)>,
        now: SimTime,
        service_ns: u64,
        is_message: bool,
    ) -> Option<SimTime> {
        if self.in_system >= self.queue_max + self.cores as u64 {
            self.rejected += 1;
            return None;
        }
        // Control frames on their own cores, when the node has them; only the shared cores
        // are booked as utilization.
        let (start, done, booked) = match (host, &mut self.control_free_at) {
            (Some((host, conn)), _) => {
                let (start, done) = host.read(now, service_ns, conn);
                (start, done, true)
            }
            (None, Some(control)) if !is_message => {
                let (start, done) = take_core(control, now, service_ns, 0)?;
                (start, done, false)
            }
            (None, _) => {
                let (start, done) = take_core(&mut self.free_at, now, service_ns, 0)?;
                (start, done, true)
            }
        };
        self.in_system += 1;
        if now.as_nanos() >= self.warmup_end_ns {
            let waits = if is_message {
                &mut self.message_waits
            } else {
                &mut self.control_waits
            };
            waits.add(start.as_nanos() - now.as_nanos());
        }
        if booked {
            self.book(start.as_nanos(), done.as_nanos());
        }
        self.last_taken = SimTime::from_nanos(done.as_nanos() - service_ns);
        Some(done)
    }

    /// Books core time `[from, to)` to the intervals it falls in.
    fn book(&mut self, from: u64, to: u64) {
        debug_assert!(
            from + self.interval_ns >= self.interval_end_ns,
            "sampled on time"
        );
        if to <= self.interval_end_ns {
            self.busy_interval_ns += to - from;
            return;
        }
        let mut from = from;
        if from < self.interval_end_ns {
            self.busy_interval_ns += self.interval_end_ns - from;
            from = self.interval_end_ns;
        }
        while from < to {
            let slot = ((from - self.interval_end_ns) / self.interval_ns) as usize;
            let slot_end = self.interval_end_ns + (slot as u64 + 1) * self.interval_ns;
            let end = to.min(slot_end);
            if self.busy_ahead_ns.len() <= slot {
                self.busy_ahead_ns.resize(slot + 1, 0);
            }
            self.busy_ahead_ns[slot] += end - from;
            from = end;
        }
    }

    pub fn complete(&mut self) {
        debug_assert!(self.in_system > 0);
        self.in_system -= 1;
        self.processed += 1;
    }

    /// Busy share of the cores over the interval just ended (called at its end); moves on to
    /// the next interval.
    pub fn take_interval_utilization(&mut self) -> f64 {
        let capacity = self.interval_ns as f64 * self.cores as f64;
        assert!(
            self.busy_interval_ns <= self.interval_ns * self.cores as u64,
            "cores busy longer than the interval"
        );
        let u = self.busy_interval_ns as f64 / capacity;
        if self.interval_end_ns > self.warmup_end_ns {
            self.busy_sampled_ns += self.busy_interval_ns;
            self.intervals_counted += 1;
            self.peak_utilization = self.peak_utilization.max(u);
        }
        self.busy_interval_ns = self.busy_ahead_ns.pop_front().unwrap_or(0);
        self.interval_end_ns += self.interval_ns;
        u
    }

    /// Busy share of the cores over the intervals sampled so far after the warm-up: the same
    /// window as the peak.
    pub fn mean_utilization(&self) -> f64 {
        let sampled_ns = self.intervals_counted * self.interval_ns;
        if sampled_ns == 0 {
            return 0.0;
        }
        self.busy_sampled_ns as f64 / (sampled_ns as f64 * self.cores as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_cores_serve_in_parallel_then_queue_and_refuse() {
        let mut c = Cpu::new(&capacity(2, 1), &run(1_000, 0));
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

    fn run(interval_ns: u64, warmup_ns: u64) -> RunSpec {
        RunSpec {
            name: "t".into(),
            seed: 1,
            duration_ns: 60_000_000_000,
            drain_ns: 0,
            interval_ns,
            ramp_ns: warmup_ns,
            warmup_ns,
            events_max: 1_000,
        }
    }

    #[test]
    fn the_warm_up_is_left_out_of_mean_and_peak() {
        let mut c = Cpu::new(&capacity(1, 100), &run(1_000_000_000, 1_000_000_000));
        c.admit(SimTime::ZERO, 1_500_000_000).expect("room");
        let shares: Vec<f64> = (0..2).map(|_| c.take_interval_utilization()).collect();
        assert_eq!(shares, [1.0, 0.5], "the rows still show the warm-up");
        assert_eq!(c.peak_utilization, 0.5);
        assert_eq!(c.mean_utilization(), 0.5);
    }

    fn capacity(cores: u32, queue_max: u64) -> NodeCapacity {
        NodeCapacity {
            cores,
            per_message_ns: 100,
            queue_max,
            rate_limit_per_partner: None,
            control_queue: Default::default(),
        }
    }

    #[test]
    fn a_backlog_is_busy_time_of_the_intervals_that_serve_it() {
        // One core, 1 s intervals: 2.5 s of work arrives at once at t = 0.5 s.
        let mut c = Cpu::new(&capacity(1, 100), &run(1_000_000_000, 0));
        let t = SimTime::from_nanos(500_000_000);
        for _ in 0..5 {
            c.admit(t, 500_000_000).expect("room in the queue");
        }
        let shares: Vec<f64> = (0..4).map(|_| c.take_interval_utilization()).collect();
        assert_eq!(
            shares,
            [0.5, 1.0, 1.0, 0.0],
            "booked when served, never above 1"
        );
        assert_eq!(c.peak_utilization, 1.0);
        assert!((c.mean_utilization() - 2.5 / 4.0).abs() < 1e-12);
    }

    #[test]
    fn control_frames_on_their_own_cores_delay_no_message() {
        let t = SimTime::from_nanos(1_000);
        let run = run(1_000_000_000, 0);
        let mut shared = Cpu::new(&capacity(1, 100), &run);
        let mut separate = Cpu::new(
            &NodeCapacity {
                control_queue: ControlQueue::Separate,
                ..capacity(1, 100)
            },
            &run,
        );
        for c in [&mut shared, &mut separate] {
            c.admit_frame(t, 25, false).expect("room");
            c.admit_frame(t, 25, false).expect("room");
        }
        // Behind two acks in the shared FIFO; at once on the message core.
        assert_eq!(shared.admit_frame(t, 100, true), Some(t.plus(150)));
        assert_eq!(separate.admit_frame(t, 100, true), Some(t.plus(100)));
        assert_eq!(shared.message_waits.mean_us(), 0.05);
        assert_eq!(separate.message_waits.mean_us(), 0.0);
        assert_eq!(separate.control_waits.mean_us(), 0.0125, "0 and 25 ns");
        // Utilization counts the message core only.
        assert_eq!(separate.take_interval_utilization(), 100.0 / 1e9);
        assert_eq!(shared.take_interval_utilization(), 150.0 / 1e9);
    }

    #[test]
    fn nodes_on_one_host_wait_for_its_cores_and_a_wake_is_paid_from_idle() {
        let run = run(1_000_000_000, 0);
        let host = crate::scenario::HostCapacity {
            cores: 2,
            per_frame_ns: 10,
            per_wake_ns: 1_000,
        };
        let mut cores = HostCores::new(&host);
        // Two nodes of many cores each: on their own they would serve every frame at once.
        let (mut a, mut b) = (
            Cpu::new(&capacity(8, 100), &run),
            Cpu::new(&capacity(8, 100), &run),
        );
        let t = SimTime::from_nanos(5_000);
        // The first two find a core idle each and pay its wake; the third, for the other
        // node, waits behind the first and pays none.
        assert_eq!(
            a.admit_frame_on(Some((&mut cores, 1)), t, 100, true),
            Some(t.plus(1_100))
        );
        assert_eq!(
            a.admit_frame_on(Some((&mut cores, 1)), t, 100, true),
            Some(t.plus(1_100))
        );
        assert_eq!(
            b.admit_frame_on(Some((&mut cores, 1)), t, 100, true),
            Some(t.plus(1_200))
        );
        assert_eq!(
            b.message_waits.mean_us(),
            1.1,
            "waited for a's frame on the shared cores"
        );
        // Once the cores have gone idle again, the next frame wakes one again.
        let later = t.plus(10_000);
        assert_eq!(
            b.admit_frame_on(Some((&mut cores, 1)), later, 100, true),
            Some(later.plus(1_100))
        );
        // A device's frame on a generator's cores just as a core finishes: its own price, no
        // wake (the core is still awake); a moment later, the wake too.
        let mut one = HostCores::new(&crate::scenario::HostCapacity { cores: 1, ..host });
        assert_eq!(one.serve(t), t.plus(1_010));
        assert_eq!(one.serve(t.plus(1_010)), t.plus(1_020));
        assert_eq!(one.serve(t.plus(1_021)), t.plus(1_021 + 1_010));
        // Each node books its own busy time, wakes included.
        assert_eq!(a.take_interval_utilization(), 2_200.0 / 8e9);
        assert_eq!(b.take_interval_utilization(), 1_200.0 / 8e9);
    }

    /// Server nodes on a one-core host: the first frame of a round from each connection pays
    /// the read, busy or idle, whichever node it is for; frames over a connection the round in
    /// progress reads ride its read.
    #[test]
    fn nodes_on_a_one_core_host_pay_a_read_per_connection_and_round() {
        let t = SimTime::from_nanos;
        let run = run(1_000_000_000, 0);
        let mut cores = HostCores::new(&crate::sim::host_cores::ONE_CORE);
        let (mut chat, mut gateway) = (
            Cpu::new(&capacity(8, 10), &run),
            Cpu::new(&capacity(8, 10), &run),
        );
        let (devices, from_chat) = (1, 2);
        // Idle: the read and the frame (1,000 + 10 + the host's 100).
        assert_eq!(
            chat.admit_frame_on(Some((&mut cores, devices)), t(0), 110, true),
            Some(t(1_110))
        );
        // During that round: the devices' next frames ride its read; the chat server's
        // connection to the gateway is read in the next round.
        assert_eq!(
            chat.admit_frame_on(Some((&mut cores, devices)), t(100), 110, true),
            Some(t(1_220))
        );
        assert_eq!(
            chat.admit_frame_on(Some((&mut cores, devices)), t(200), 110, true),
            Some(t(1_330))
        );
        assert_eq!(
            gateway.admit_frame_on(Some((&mut cores, from_chat)), t(300), 110, true),
            Some(t(2_440))
        );
        assert_eq!(cores.release(t(1_220), false), t(2_440), "one round");
    }

    #[test]
    fn the_mean_covers_the_sampled_intervals() {
        let mut c = Cpu::new(&capacity(2, 100), &run(1_000_000_000, 0));
        assert_eq!(c.mean_utilization(), 0.0, "nothing sampled yet");
        c.admit(SimTime::ZERO, 3_000_000_000).expect("room");
        c.take_interval_utilization();
        c.take_interval_utilization();
        // Two intervals of two cores: one core busy throughout.
        assert!((c.mean_utilization() - 0.5).abs() < 1e-12);
    }
}
