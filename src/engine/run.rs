//! The bounded run loop: next-event time advance over an [`super::EventQueue`], folding every
//! event into the run [`Fingerprint`], stopping at the first of: no events left, `time_max`, or
//! `events_max` (every loop has a named bound).

use super::queue::PendingEvents;
use super::{Fingerprint, SimTime};

/// What the engine drives. The world owns all state; the engine owns time and order.
pub trait World {
    type Event;
    /// Handles one event at `now`; new events go through `sched`.
    fn handle(&mut self, now: SimTime, event: Self::Event, sched: &mut Scheduler<'_, Self::Event>);
    /// A word identifying the event for the fingerprint (its kind and target, say).
    fn fingerprint_word(&self, event: &Self::Event) -> u64;
    /// Whether the loop should show the world the next pending event before handling the
    /// current one (see [`World::prefetch`]).
    const PREFETCH: bool = false;
    /// A hint: `next` is probably the event after the one about to be handled. A world with
    /// millions of nodes asks for the state `next` will touch (see [`super::prefetch`]), so
    /// that its cache misses overlap the current event's work. Must not change any state.
    fn prefetch(&self, _next: &Self::Event) {}
}

/// The handle a world schedules through: it knows `now`, so delays are relative.
///
/// It reaches the queue through `dyn PendingEvents` so that [`World`] stays a plain trait whatever
/// queue drives it (the benches run the same world on `EventQueue` and `HeapQueue`). The call is
/// one well-predicted indirect jump per scheduled event; the loop's own pops are static.
pub struct Scheduler<'q, E> {
    now: SimTime,
    queue: &'q mut dyn PendingEvents<E>,
}

impl<'q, E> Scheduler<'q, E> {
    pub fn new(now: SimTime, queue: &'q mut dyn PendingEvents<E>) -> Self {
        Scheduler { now, queue }
    }
    pub fn at(&mut self, at: SimTime, event: E) {
        assert!(
            at >= self.now,
            "an event is never scheduled before now: {at:?} < {:?}",
            self.now
        );
        self.queue.push(at, event);
    }
    pub fn after(&mut self, delay_ns: u64, event: E) {
        self.queue.push(self.now.plus(delay_ns), event);
    }
}

/// The loop's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub events_max: u64,
    pub time_max: SimTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No events left.
    Drained,
    /// The next event lies past `time_max`; it and everything after it stay unprocessed.
    TimeMax,
    /// `events_max` events were processed.
    EventsMax,
}

#[derive(Clone, Copy, Debug)]
pub struct RunOutcome {
    pub events_processed: u64,
    pub end_time: SimTime,
    pub fingerprint: Fingerprint,
    pub stop: StopReason,
}

/// Runs `world` until a bound is hit. `queue` is normally an [`super::EventQueue`]; it may
/// already hold events, and keeps whatever is left when a bound stops the run.
pub fn run<W, Q>(world: &mut W, queue: &mut Q, limits: Limits) -> RunOutcome
where
    W: World,
    Q: PendingEvents<W::Event>,
{
    let mut fp = Fingerprint::new();
    let mut processed = 0u64;
    let mut now = SimTime::ZERO;
    let stop = loop {
        if processed >= limits.events_max {
            break StopReason::EventsMax;
        }
        match queue.peek_time() {
            None => break StopReason::Drained,
            Some(t) if t > limits.time_max => break StopReason::TimeMax,
            Some(_) => {}
        }
        let Some((at, event)) = queue.pop() else {
            break StopReason::Drained;
        };
        assert!(
            at >= now,
            "simulated time never goes back: popped {at:?} after {now:?}"
        );
        now = at;
        fp.absorb(at.as_nanos());
        fp.absorb(world.fingerprint_word(&event));
        processed += 1;
        if W::PREFETCH {
            if let Some(next) = queue.peek_next() {
                world.prefetch(next);
            }
        }
        let mut sched = Scheduler::new(now, queue);
        world.handle(now, event, &mut sched);
    };
    RunOutcome {
        events_processed: processed,
        end_time: now,
        fingerprint: fp,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EventQueue;

    /// Each event is an id; handling id `i` schedules `i + 1` after `step_ns`, up to `last`.
    struct Chain {
        step_ns: u64,
        last: u64,
        seen: Vec<(SimTime, u64)>,
    }
    impl World for Chain {
        type Event = u64;
        fn handle(&mut self, now: SimTime, id: u64, sched: &mut Scheduler<'_, u64>) {
            self.seen.push((now, id));
            if id < self.last {
                sched.after(self.step_ns, id + 1);
            }
        }
        fn fingerprint_word(&self, id: &u64) -> u64 {
            *id
        }
    }

    fn chain(step_ns: u64, last: u64) -> (Chain, EventQueue<u64>) {
        let mut queue = EventQueue::new();
        queue.push(SimTime::ZERO, 0);
        (
            Chain {
                step_ns,
                last,
                seen: Vec::new(),
            },
            queue,
        )
    }

    const NO_LIMITS: Limits = Limits {
        events_max: u64::MAX,
        time_max: SimTime::MAX,
    };

    #[test]
    fn drains_when_no_events_are_left() {
        let (mut w, mut q) = chain(10, 4);
        let out = run(&mut w, &mut q, NO_LIMITS);
        assert_eq!(out.stop, StopReason::Drained);
        assert_eq!(out.events_processed, 5);
        assert_eq!(out.end_time, SimTime::from_nanos(40));
    }

    #[test]
    fn stops_at_events_max() {
        let (mut w, mut q) = chain(10, 100);
        let out = run(
            &mut w,
            &mut q,
            Limits {
                events_max: 7,
                ..NO_LIMITS
            },
        );
        assert_eq!(out.stop, StopReason::EventsMax);
        assert_eq!(out.events_processed, 7);
        assert_eq!(w.seen.len(), 7);
        assert_eq!(out.end_time, SimTime::from_nanos(60));
        assert_eq!(q.len(), 1, "the 8th event stays queued");
    }

    #[test]
    fn stops_at_time_max_and_keeps_the_later_event_queued() {
        let (mut w, mut q) = chain(10, 100);
        let out = run(
            &mut w,
            &mut q,
            Limits {
                time_max: SimTime::from_nanos(35),
                ..NO_LIMITS
            },
        );
        assert_eq!(out.stop, StopReason::TimeMax);
        assert_eq!(out.events_processed, 4, "events at 0, 10, 20, 30");
        assert_eq!(out.end_time, SimTime::from_nanos(30));
        assert_eq!(q.len(), 1);
        assert_eq!(q.peek_time(), Some(SimTime::from_nanos(40)));
        assert_eq!(q.pop(), Some((SimTime::from_nanos(40), 4)));
    }

    #[test]
    fn an_event_exactly_at_time_max_is_processed() {
        let (mut w, mut q) = chain(10, 100);
        let out = run(
            &mut w,
            &mut q,
            Limits {
                time_max: SimTime::from_nanos(30),
                ..NO_LIMITS
            },
        );
        assert_eq!(out.events_processed, 4);
        assert_eq!(out.stop, StopReason::TimeMax);
    }

    /// Records ids only; the queue's initial contents decide the order.
    struct Sink;
    impl World for Sink {
        type Event = u64;
        fn handle(&mut self, _: SimTime, _: u64, _: &mut Scheduler<'_, u64>) {}
        fn fingerprint_word(&self, id: &u64) -> u64 {
            *id
        }
    }

    fn fingerprint_of(pushes: &[(u64, u64)]) -> Fingerprint {
        let mut q = EventQueue::new();
        for &(at_ns, id) in pushes {
            q.push(SimTime::from_nanos(at_ns), id);
        }
        run(&mut Sink, &mut q, NO_LIMITS).fingerprint
    }

    #[test]
    fn fingerprint_is_reproducible_and_sees_order_and_time() {
        let base = fingerprint_of(&[(5, 1), (5, 2), (9, 3)]);
        assert_eq!(base, fingerprint_of(&[(5, 1), (5, 2), (9, 3)]));
        // Same events, same instants, other order among equals.
        assert_ne!(base, fingerprint_of(&[(5, 2), (5, 1), (9, 3)]));
        // Same order, one event at another instant.
        assert_ne!(base, fingerprint_of(&[(5, 1), (6, 2), (9, 3)]));
    }

    #[test]
    fn heap_queue_runs_the_same_world_identically() {
        let (mut w1, mut q1) = chain(7, 1_000);
        let mut w2 = Chain {
            step_ns: 7,
            last: 1_000,
            seen: Vec::new(),
        };
        let mut q2 = crate::engine::HeapQueue::new();
        q2.push(SimTime::ZERO, 0);
        let a = run(&mut w1, &mut q1, NO_LIMITS);
        let b = run(&mut w2, &mut q2, NO_LIMITS);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(w1.seen, w2.seen);
    }
}
