//! The bounded run loop: next-event time advance over an [`EventQueue`], folding every event
//! into the run [`Fingerprint`], stopping at the first of: no events left, `time_max`, or
//! `events_max` (every loop has a named bound).

use super::{EventQueue, Fingerprint, SimTime};

/// What the engine drives. The world owns all state; the engine owns time and order.
pub trait World {
    type Event;
    /// Handles one event at `now`; new events go through `sched`.
    fn handle(&mut self, now: SimTime, event: Self::Event, sched: &mut Scheduler<'_, Self::Event>);
    /// A word identifying the event for the fingerprint (its kind and target, say).
    fn fingerprint_word(&self, event: &Self::Event) -> u64;
}

/// The handle a world schedules through: it knows `now`, so delays are relative.
pub struct Scheduler<'q, E> {
    now: SimTime,
    queue: &'q mut EventQueue<E>,
}

impl<'q, E> Scheduler<'q, E> {
    pub fn new(now: SimTime, queue: &'q mut EventQueue<E>) -> Self {
        Scheduler { now, queue }
    }
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn at(&mut self, at: SimTime, event: E) {
        self.queue.push(at, event);
    }
    pub fn after(&mut self, delay_ns: u64, event: E) {
        self.queue.push(self.now.plus(delay_ns), event);
    }
    pub fn pending(&self) -> usize {
        self.queue.len()
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

/// Runs `world` until a bound is hit.
pub fn run<W: World>(
    world: &mut W,
    queue: &mut EventQueue<W::Event>,
    limits: Limits,
) -> RunOutcome {
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
        debug_assert!(at >= now, "time went back");
        now = at;
        fp.absorb(at.as_nanos());
        fp.absorb(world.fingerprint_word(&event));
        processed += 1;
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
