//! The reference pending-event set: a binary heap keyed on (time, insertion sequence). It was the
//! engine's first queue; it stays as the oracle the property tests compare [`super::EventQueue`]
//! against and as the baseline of `benches/engine.rs`. Same API as `EventQueue`.

use super::PendingEvents;
use crate::engine::time::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

struct Entry<E> {
    at: SimTime,
    seq: u64,
    event: E,
}
impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Pending events, popped in (time, insertion sequence) order; O(log n) push and pop.
pub struct HeapQueue<E> {
    heap: BinaryHeap<Reverse<Entry<E>>>,
    next_seq: u64,
    last_popped: SimTime,
}

impl<E> Default for HeapQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> HeapQueue<E> {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }
    /// Room for `pending_max` events before the heap reallocates.
    pub fn with_capacity(pending_max: usize) -> Self {
        HeapQueue {
            heap: BinaryHeap::with_capacity(pending_max),
            next_seq: 0,
            last_popped: SimTime::ZERO,
        }
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
    /// Schedules `event` at `at`. Panics if `at` is before the last popped event: time never
    /// goes back, and a node that asks for it is a bug.
    pub fn push(&mut self, at: SimTime, event: E) {
        assert!(
            at >= self.last_popped,
            "event scheduled in the past: {at:?} < {:?}",
            self.last_popped
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(Entry { at, seq, event }));
    }
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|r| r.0.at)
    }
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse(e) = self.heap.pop()?;
        assert!(e.at >= self.last_popped, "the heap pops in time order");
        self.last_popped = e.at;
        Some((e.at, e.event))
    }
}

impl<E> PendingEvents<E> for HeapQueue<E> {
    #[inline]
    fn len(&self) -> usize {
        HeapQueue::len(self)
    }
    #[inline]
    fn push(&mut self, at: SimTime, event: E) {
        HeapQueue::push(self, at, event)
    }
    #[inline]
    fn peek_time(&self) -> Option<SimTime> {
        HeapQueue::peek_time(self)
    }
    #[inline]
    fn pop(&mut self) -> Option<(SimTime, E)> {
        HeapQueue::pop(self)
    }
}
