//! Retry timers that are almost always cancelled, kept apart from the event queue.
//!
//! Every message arms two of them: the sender's outbox retry and the server's redelivery. The
//! ack comes in a fraction of the delay, so nearly all are cancelled, yet as queued events
//! they were a sixth of a large run's events, each waking a node only to be ignored. Armed
//! with the same delay, they come due in the order they were armed: a FIFO holds them, a
//! table of the ones still armed (a few seconds' worth, so it stays in cache) tells a
//! cancelled entry apart, and one queued wake-up at the first entry still armed drives the
//! lot. Cancelled entries at the front go without an event.

use crate::engine::SimTime;
use crate::nodes::{Addr, TimerKind};
use rustc_hash::FxHashMap; // determinism: ok (looked up, inserted and removed, never iterated)
use std::collections::VecDeque;

/// Below this many timers, the FIFO and its table keep whatever room they have.
const SHRINK_BELOW: usize = 4096;

/// A timer's identity: its node and kind (a node has at most one of each armed).
type Key = (u64, u64);

fn key(node: Addr, timer: TimerKind) -> Key {
    (node.code(), timer.code())
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: SimTime,
    node: Addr,
    timer: TimerKind,
}

/// Timers of one fixed delay, in the order they come due.
#[derive(Debug)]
pub struct TimerFifo {
    delay_ns: u64,
    entries: VecDeque<Entry>,
    /// The instant each armed timer is due: an entry whose timer is not in here for its
    /// instant was cancelled (or armed again since).
    armed: FxHashMap<Key, SimTime>, // determinism: ok (never iterated)
    /// The time of the wake-up in the event queue, if one is.
    wake_at: Option<SimTime>,
}

impl TimerFifo {
    pub fn new(delay_ns: u64) -> Self {
        TimerFifo {
            delay_ns,
            entries: VecDeque::new(),
            armed: FxHashMap::default(),
            wake_at: None,
        }
    }

    /// Takes a timer armed at `now` if it is due after this FIFO's delay (else the caller
    /// queues it as any other event). Returns whether it was taken, and the time of a wake-up
    /// to queue if none is queued yet.
    pub fn arm(
        &mut self,
        now: SimTime,
        at: SimTime,
        node: Addr,
        timer: TimerKind,
    ) -> (bool, Option<SimTime>) {
        if at.as_nanos().checked_sub(now.as_nanos()) != Some(self.delay_ns) {
            return (false, None);
        }
        debug_assert!(self.entries.back().is_none_or(|e| e.at <= at));
        self.drop_cancelled_front();
        self.shrink_after_burst();
        self.entries.push_back(Entry { at, node, timer });
        self.armed.insert(key(node, timer), at);
        (true, self.wake())
    }

    /// A connect storm arms a timer on every device at once; once those are gone, the table
    /// and the FIFO give back the room, so that the steady state's few seconds of timers stay
    /// in cache instead of being spread over a table sized for millions.
    fn shrink_after_burst(&mut self) {
        let room = |len: usize| 8 * len.max(SHRINK_BELOW);
        if self.armed.capacity() > room(self.armed.len()) {
            self.armed.shrink_to(2 * self.armed.len());
        }
        if self.entries.capacity() > room(self.entries.len()) {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    /// Cancels the timer of `node` and `timer` due at `at`, if this FIFO holds it armed.
    pub fn cancel(&mut self, at: SimTime, node: Addr, timer: TimerKind) {
        let k = key(node, timer);
        if self.armed.get(&k) == Some(&at) {
            self.armed.remove(&k);
        }
    }

    /// The queued wake-up fired at `now`: takes the timers due and still armed, in the order
    /// they were armed. Call [`TimerFifo::rewake`] once they have been handled.
    pub fn take_due(&mut self, now: SimTime) -> Vec<(Addr, TimerKind)> {
        self.wake_at = None;
        let mut due = Vec::new();
        while let Some(&e) = self.entries.front().filter(|e| e.at <= now) {
            self.entries.pop_front();
            let k = key(e.node, e.timer);
            if self.armed.get(&k) == Some(&e.at) {
                self.armed.remove(&k);
                due.push((e.node, e.timer));
            }
        }
        due
    }

    /// After [`TimerFifo::take_due`]: the time of the next wake-up to queue, unless one is
    /// queued already (handling the due timers may have armed more).
    pub fn rewake(&mut self) -> Option<SimTime> {
        self.drop_cancelled_front();
        self.wake()
    }

    fn wake(&mut self) -> Option<SimTime> {
        if self.wake_at.is_some() {
            return None;
        }
        self.wake_at = self.entries.front().map(|e| e.at);
        self.wake_at
    }

    fn is_armed(&self, e: &Entry) -> bool {
        self.armed.get(&key(e.node, e.timer)) == Some(&e.at)
    }

    fn drop_cancelled_front(&mut self) {
        while self.entries.front().is_some_and(|e| !self.is_armed(e)) {
            self.entries.pop_front();
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

    const RETRY: TimerKind = TimerKind::OutboxRetry;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    fn dev(i: u32) -> Addr {
        Addr::Device(DeviceId(i))
    }

    /// Fires the FIFO's wake-up at `now`: what came due, and the next wake-up.
    fn fire(f: &mut TimerFifo, now: u64) -> (Vec<Addr>, Option<SimTime>) {
        let due = f
            .take_due(t(now))
            .into_iter()
            .map(|(node, _)| node)
            .collect();
        (due, f.rewake())
    }

    #[test]
    fn only_timers_of_its_delay_are_taken() {
        let mut f = TimerFifo::new(10);
        assert_eq!(f.arm(t(5), t(16), dev(0), RETRY), (false, None));
        assert_eq!(f.arm(t(5), t(15), dev(0), RETRY), (true, Some(t(15))));
        assert_eq!(
            f.arm(t(6), t(16), dev(1), RETRY),
            (true, None),
            "a wake-up is queued"
        );
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn timers_fire_in_order_and_cancelled_ones_do_not() {
        let mut f = TimerFifo::new(10);
        f.arm(t(0), t(10), dev(0), RETRY);
        f.arm(t(1), t(11), dev(1), RETRY);
        f.arm(t(1), t(11), dev(2), RETRY);
        f.arm(t(2), t(12), dev(3), RETRY);
        f.cancel(t(11), dev(1), RETRY);
        f.cancel(t(12), dev(3), TimerKind::Redeliver(DeviceId(3))); // another timer: kept
        f.cancel(t(13), dev(0), RETRY); // nothing due then: no effect
        assert_eq!(fire(&mut f, 10), (vec![dev(0)], Some(t(11))));
        assert_eq!(fire(&mut f, 11), (vec![dev(2)], Some(t(12))));
        assert_eq!(fire(&mut f, 12), (vec![dev(3)], None));
        assert!(f.is_empty());
    }

    #[test]
    fn cancelled_timers_at_the_front_cost_no_wake_up() {
        let mut f = TimerFifo::new(10);
        assert_eq!(f.arm(t(0), t(10), dev(0), RETRY), (true, Some(t(10))));
        f.cancel(t(10), dev(0), RETRY);
        // The queued wake-up at 10 still fires, finds nothing, and asks for none.
        assert_eq!(fire(&mut f, 10), (vec![], None));
        assert_eq!(f.arm(t(20), t(30), dev(1), RETRY), (true, Some(t(30))));
        f.cancel(t(30), dev(1), RETRY);
        // The wake-up queued for the cancelled one stays queued: no second one.
        assert_eq!(f.arm(t(21), t(31), dev(2), RETRY), (true, None));
        assert_eq!(fire(&mut f, 30), (vec![], Some(t(31))));
        assert_eq!(fire(&mut f, 31), (vec![dev(2)], None));
    }

    #[test]
    fn a_timer_armed_while_due_ones_are_handled_gets_one_wake_up() {
        let mut f = TimerFifo::new(10);
        f.arm(t(0), t(10), dev(0), RETRY);
        assert_eq!(f.take_due(t(10)), vec![(dev(0), RETRY)]);
        // Handling it arms the next retry: that queues the wake-up, and `rewake` adds none.
        assert_eq!(f.arm(t(10), t(20), dev(0), RETRY), (true, Some(t(20))));
        assert_eq!(f.rewake(), None);
        assert_eq!(fire(&mut f, 20), (vec![dev(0)], None));
    }

    #[test]
    fn a_timer_cancelled_and_armed_again_at_one_instant_fires_once() {
        let mut f = TimerFifo::new(10);
        f.arm(t(0), t(10), dev(0), RETRY);
        f.cancel(t(10), dev(0), RETRY);
        f.cancel(t(10), dev(0), RETRY);
        f.arm(t(0), t(10), dev(0), RETRY);
        assert_eq!(fire(&mut f, 10), (vec![dev(0)], None));
    }

    /// A connect storm arms a timer on every device at one instant, and most are cancelled:
    /// each cancel must find its timer without walking the others.
    #[test]
    fn many_timers_due_at_one_instant_cancel_one_by_one() {
        let mut f = TimerFifo::new(10);
        let n = 200_000;
        for i in 0..n {
            f.arm(t(0), t(10), dev(i), RETRY);
        }
        for i in (0..n).filter(|i| i % 1000 != 7) {
            f.cancel(t(10), dev(i), RETRY);
        }
        let (due, next) = fire(&mut f, 10);
        assert_eq!(due.len(), 200);
        assert_eq!(due[1], dev(1007));
        assert_eq!(next, None);
    }
}
