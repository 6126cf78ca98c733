//! Retry timers that are almost always cancelled, kept apart from the event queue.
//!
//! Every message arms two of them: the sender's outbox retry and the server's redelivery. The
//! ack comes in a fraction of the delay, so nearly all are cancelled, yet as queued events
//! they were a sixth of a large run's events, each waking a node only to be ignored. Armed
//! with the same delay, they come due in the order they were armed: a FIFO holds them, and one
//! queued wake-up at the first entry still armed drives the lot. Cancelled entries at the front
//! go without an event.
//!
//! Whether an entry is still armed is the node's to say: the device and the mailbox box keep
//! the instant their timer is due (they must, to tell a stale firing apart), so the FIFO asks
//! them ([`ArmedAt`]) when an entry reaches the front instead of keeping a table of its own. A
//! cancel then costs nothing here; a table of the armed timers cost a cache miss on arming, one
//! on cancelling and one at the front, for each of two timers per message.

use crate::engine::SimTime;
use crate::nodes::{Addr, TimerKind};
use std::collections::VecDeque;

/// Below this many timers, the FIFO keeps whatever room it has.
const SHRINK_BELOW: usize = 4096;

/// How far behind the front an entry's node record is fetched into the cache: the front
/// entries are armed a retry delay ago, and at a million devices their records are in memory.
const PREFETCH_AHEAD: usize = 8;

/// The instant a node's timer is due, if it is armed: the nodes' own record, which a timer
/// entry of any other instant does not match (it was cancelled or armed again since).
pub trait ArmedAt {
    fn armed_at(&self, node: Addr, timer: TimerKind) -> Option<SimTime>;
    /// A cache hint for [`ArmedAt::armed_at`] of an entry a few places behind the front.
    fn prefetch(&self, _node: Addr, _timer: TimerKind) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    at: SimTime,
    node: Addr,
    timer: TimerKind,
}

impl Entry {
    fn is_armed(&self, nodes: &impl ArmedAt) -> bool {
        nodes.armed_at(self.node, self.timer) == Some(self.at)
    }
}

/// Timers of one fixed delay, in the order they come due.
#[derive(Debug)]
pub struct TimerFifo {
    delay_ns: u64,
    entries: VecDeque<Entry>,
    /// The time of the wake-up in the event queue, if one is.
    wake_at: Option<SimTime>,
}

impl TimerFifo {
    pub fn new(delay_ns: u64) -> Self {
        TimerFifo {
            delay_ns,
            entries: VecDeque::new(),
            wake_at: None,
        }
    }

    /// Takes a timer armed at `now` if it is due after this FIFO's delay (else the caller
    /// queues it as any other event). Returns whether it was taken, and the time of a wake-up
    /// to queue if none is queued yet. `nodes` have recorded the timer already.
    pub fn arm(
        &mut self,
        now: SimTime,
        at: SimTime,
        node: Addr,
        timer: TimerKind,
        nodes: &impl ArmedAt,
    ) -> (bool, Option<SimTime>) {
        if at.as_nanos().checked_sub(now.as_nanos()) != Some(self.delay_ns) {
            return (false, None);
        }
        assert!(
            self.entries.back().is_none_or(|e| e.at <= at),
            "timers of one delay come due in the order they are armed"
        );
        self.drop_cancelled_front(nodes);
        self.shrink_after_burst();
        self.entries.push_back(Entry { at, node, timer });
        (true, self.wake())
    }

    /// A connect storm arms a timer on every device at once; once those are gone, the FIFO
    /// gives back the room, so that the steady state's few seconds of timers stay in cache.
    fn shrink_after_burst(&mut self) {
        let room = |len: usize| 8 * len.max(SHRINK_BELOW);
        if self.entries.capacity() > room(self.entries.len()) {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    /// The queued wake-up fired at `now`: takes the timers due and still armed, in the order
    /// they were armed. Call [`TimerFifo::rewake`] once they have been handled.
    pub fn take_due(&mut self, now: SimTime, nodes: &impl ArmedAt) -> Vec<(Addr, TimerKind)> {
        self.wake_at = None;
        let mut due: Vec<Entry> = Vec::new();
        while let Some(&e) = self.entries.front().filter(|e| e.at <= now) {
            self.entries.pop_front();
            // An entry armed, cancelled and armed again at one instant is there twice: it
            // fires once.
            if e.is_armed(nodes) && !due.contains(&e) {
                due.push(e);
            }
        }
        due.into_iter().map(|e| (e.node, e.timer)).collect()
    }

    /// After [`TimerFifo::take_due`]: the time of the next wake-up to queue, unless one is
    /// queued already (handling the due timers may have armed more).
    pub fn rewake(&mut self, nodes: &impl ArmedAt) -> Option<SimTime> {
        self.drop_cancelled_front(nodes);
        self.wake()
    }

    fn wake(&mut self) -> Option<SimTime> {
        if self.wake_at.is_some() {
            return None;
        }
        self.wake_at = self.entries.front().map(|e| e.at);
        self.wake_at
    }

    fn drop_cancelled_front(&mut self, nodes: &impl ArmedAt) {
        while self.entries.front().is_some_and(|e| !e.is_armed(nodes)) {
            self.entries.pop_front();
            if let Some(e) = self.entries.get(PREFETCH_AHEAD) {
                nodes.prefetch(e.node, e.timer);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DeviceId;
    use std::collections::BTreeMap;

    const RETRY: TimerKind = TimerKind::OutboxRetry;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    fn dev(i: u32) -> Addr {
        Addr::Device(DeviceId(i))
    }

    /// What the nodes keep: the instant each device's retry timer is due.
    #[derive(Default)]
    struct Records(BTreeMap<u32, SimTime>);

    impl ArmedAt for Records {
        fn armed_at(&self, node: Addr, _: TimerKind) -> Option<SimTime> {
            let Addr::Device(d) = node else { return None };
            self.0.get(&d.0).copied()
        }
    }

    /// A FIFO and the devices it asks, driven as the simulator drives them.
    struct Pair {
        fifo: TimerFifo,
        nodes: Records,
    }

    impl Pair {
        fn new(delay: u64) -> Self {
            Pair {
                fifo: TimerFifo::new(delay),
                nodes: Records::default(),
            }
        }

        /// A device arms its timer (and keeps the instant), then the FIFO is offered it.
        fn arm(&mut self, now: u64, at: u64, i: u32) -> (bool, Option<SimTime>) {
            self.nodes.0.insert(i, t(at));
            self.fifo.arm(t(now), t(at), dev(i), RETRY, &self.nodes)
        }

        /// A device forgets its timer due at `at` (the FIFO is not told).
        fn cancel(&mut self, at: u64, i: u32) {
            if self.nodes.0.get(&i) == Some(&t(at)) {
                self.nodes.0.remove(&i);
            }
        }

        /// Fires the FIFO's wake-up at `now`: what came due (each device forgets its timer as
        /// it handles it), and the next wake-up.
        fn fire(&mut self, now: u64) -> (Vec<Addr>, Option<SimTime>) {
            let due: Vec<Addr> = (self.fifo.take_due(t(now), &self.nodes).into_iter())
                .map(|(node, _)| node)
                .collect();
            for node in &due {
                if let Addr::Device(d) = node {
                    self.nodes.0.remove(&d.0);
                }
            }
            (due, self.fifo.rewake(&self.nodes))
        }
    }

    #[test]
    fn only_timers_of_its_delay_are_taken() {
        let mut f = Pair::new(10);
        assert_eq!(f.arm(5, 16, 0), (false, None));
        assert_eq!(f.arm(5, 15, 0), (true, Some(t(15))));
        assert_eq!(f.arm(6, 16, 1), (true, None), "a wake-up is queued");
        assert_eq!(f.fifo.len(), 2);
    }

    #[test]
    fn timers_fire_in_order_and_cancelled_ones_do_not() {
        let mut f = Pair::new(10);
        f.arm(0, 10, 0);
        f.arm(1, 11, 1);
        f.arm(1, 11, 2);
        f.arm(2, 12, 3);
        f.cancel(11, 1);
        f.cancel(13, 0); // nothing due then: no effect
        assert_eq!(f.fire(10), (vec![dev(0)], Some(t(11))));
        assert_eq!(f.fire(11), (vec![dev(2)], Some(t(12))));
        assert_eq!(f.fire(12), (vec![dev(3)], None));
        assert!(f.fifo.is_empty());
    }

    #[test]
    fn a_timer_armed_again_fires_at_its_new_instant_only() {
        let mut f = Pair::new(10);
        f.arm(0, 10, 0);
        f.arm(3, 13, 0); // the node keeps 13: the entry at 10 is stale
        assert_eq!(f.fire(10), (vec![], Some(t(13))));
        assert_eq!(f.fire(13), (vec![dev(0)], None));
    }

    #[test]
    fn cancelled_timers_at_the_front_cost_no_wake_up() {
        let mut f = Pair::new(10);
        assert_eq!(f.arm(0, 10, 0), (true, Some(t(10))));
        f.cancel(10, 0);
        // The queued wake-up at 10 still fires, finds nothing, and asks for none.
        assert_eq!(f.fire(10), (vec![], None));
        assert_eq!(f.arm(20, 30, 1), (true, Some(t(30))));
        f.cancel(30, 1);
        // The wake-up queued for the cancelled one stays queued: no second one.
        assert_eq!(f.arm(21, 31, 2), (true, None));
        assert_eq!(f.fire(30), (vec![], Some(t(31))));
        assert_eq!(f.fire(31), (vec![dev(2)], None));
    }

    #[test]
    fn a_timer_armed_while_due_ones_are_handled_gets_one_wake_up() {
        let mut f = Pair::new(10);
        f.arm(0, 10, 0);
        assert_eq!(f.fifo.take_due(t(10), &f.nodes), vec![(dev(0), RETRY)]);
        // Handling it arms the next retry: that queues the wake-up, and `rewake` adds none.
        assert_eq!(f.arm(10, 20, 0), (true, Some(t(20))));
        assert_eq!(f.fifo.rewake(&f.nodes), None);
        assert_eq!(f.fire(20), (vec![dev(0)], None));
    }

    #[test]
    fn a_timer_cancelled_and_armed_again_at_one_instant_fires_once() {
        let mut f = Pair::new(10);
        f.arm(0, 10, 0);
        f.cancel(10, 0);
        f.cancel(10, 0);
        f.arm(0, 10, 0);
        assert_eq!(f.fifo.len(), 2);
        assert_eq!(f.fire(10), (vec![dev(0)], None));
    }

    /// A connect storm arms a timer on every device at one instant, and most are cancelled:
    /// the few left fire, in the order they were armed.
    #[test]
    fn many_timers_due_at_one_instant_cancel_one_by_one() {
        let mut f = Pair::new(10);
        let n = 200_000;
        for i in 0..n {
            f.arm(0, 10, i);
        }
        for i in (0..n).filter(|i| i % 1000 != 7) {
            f.cancel(10, i);
        }
        let (due, next) = f.fire(10);
        assert_eq!(due.len(), 200);
        assert_eq!(due[1], dev(1007));
        assert_eq!(next, None);
    }
}
