//! The pending-event set, ordered by (time, insertion sequence) so that events at the same
//! instant fire in the order they were scheduled (determinism rule 6), and fast with millions of
//! pending events.
//!
//! [`EventQueue`] is a hierarchical timing wheel whose levels are the base-64 digits of the time
//! in nanoseconds (equivalently, a radix heap in base 64). It relies on the DES property that no
//! event is scheduled before the last popped one: every pending time `t` is stored at the level
//! of the highest 6-bit digit in which `t` differs from `now` (the last popped time), in the slot
//! named by that digit of `t`. Eleven levels of 64 slots cover all of `u64`, so there is no
//! overflow list and no time is ever out of range.
//!
//! - Level 0 holds only times that share every digit above the lowest with `now`: slot `s` is
//!   the single instant `(now & !63) | s`, a FIFO of events.
//! - Popping takes the lowest occupied level-0 slot (a bitmask and `trailing_zeros`). When level
//!   0 is empty, the lowest occupied slot of the lowest occupied level is emptied: `now` moves to
//!   the smallest time in it (tracked per slot) and its events are re-placed relative to the new
//!   `now`, each landing on a strictly lower level. An event therefore moves at most ten times,
//!   in practice two or three (one per digit between its delay and 1 ns), and each move is a
//!   sequential append.
//! - A slot of at most [`RUN_MAX`] events is not re-placed when it is emptied: its events are
//!   sorted (stably, so equal times keep their order) into the *run*, a short sorted FIFO that
//!   pops before the wheel. At a million devices a slot holds a few dozen events spread over
//!   microseconds, and re-placing them digit by digit was two or three moves per event. Every
//!   event left in the wheel is later than the whole run; an event pushed no later than the
//!   run's last joins the run in order, and a run grown past [`RUN_CAP`] goes back into the
//!   wheel.
//! - FIFO among equal times is structural, so no sequence number is stored: equal times always
//!   share a slot (the slot is a function of the time and `now`), a slot is an
//!   insertion-ordered subsequence of all pushes, and re-placing walks a slot in order into
//!   slots that are empty (every lower level is empty when a slot is re-placed).
//!
//! Memory: an upper slot keeps its first 16 KiB block and overflows into blocks from one shared
//! pool (see `blocks`), so the queue holds about as much memory as the events pending at the
//! peak plus at most ~10 MiB, and the steady state does not allocate once that peak has been
//! reached. (A `Vec` per slot kept each slot's own peak: ten times the contents at 10 M
//! pending.) Level-0 slots, one instant each, are `VecDeque`s that shed capacity after a burst.
//!
//! [`HeapQueue`], the binary heap this replaced, stays as the reference for tests and benches;
//! [`PendingEvents`] lets the run loop drive either.

mod blocks;
mod heap;
#[cfg(test)]
mod tests;

pub use heap::HeapQueue;

use super::time::SimTime;
use blocks::{BlockPool, Bucket};
use std::collections::VecDeque;

/// What the run loop needs from a pending-event set, so that the same loop can drive
/// [`EventQueue`] and the reference [`HeapQueue`] (benches, tests).
pub trait PendingEvents<E> {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Schedules `event` at `at`; panics if `at` is before the last popped time.
    fn push(&mut self, at: SimTime, event: E);
    fn peek_time(&self) -> Option<SimTime>;
    /// The earliest event; among equal times, the first pushed.
    fn pop(&mut self) -> Option<(SimTime, E)>;
    /// The event `pop` would return next, when that is cheap to tell (else `None`): a hint for
    /// [`crate::engine::World::prefetch`], never needed for correctness.
    fn peek_next(&self) -> Option<&E> {
        None
    }
}

/// Bits of the time per wheel level.
const DIGIT_BITS: u32 = 6;
/// Slots per level: one per digit value.
const SLOTS: usize = 1 << DIGIT_BITS;
/// Levels: `LEVELS * DIGIT_BITS >= 64` covers every `u64` time.
const LEVELS: usize = 11;
/// Capacity a level-0 slot keeps once emptied; a burst of more events at one instant is rare.
const EXACT_RETAIN_MAX: usize = 1024;
/// The low digit of a time: its level-0 slot.
const DIGIT_MASK: u64 = SLOTS as u64 - 1;

/// Emptied slots of at most this many events are sorted into the run instead of re-placed.
const RUN_MAX: usize = 48;
/// A run grown by pushes past this many events goes back into the wheel (inserting into a long
/// run would cost a move per event behind the insertion point).
const RUN_CAP: usize = 256;

/// A pending event above level 0, where the slot does not pin down the time.
struct Timed<E> {
    at_ns: u64,
    event: E,
}

/// Pending events, popped in (time, insertion sequence) order. See the module doc for the
/// structure; push is O(1), pop is O(1) amortised per level an event descends (at most ten).
pub struct EventQueue<E> {
    /// Level 0: slot `d` holds, in insertion order, the events at the instant
    /// `(now_ns & !63) | d`.
    exact: Box<[VecDeque<E>; SLOTS]>,
    /// Levels 1..=10: `upper[l - 1][d]` holds, in insertion order, the events whose highest
    /// base-64 digit differing from `now_ns` is digit `l`, and whose digit `l` is `d`.
    upper: Box<[[Bucket<Timed<E>>; SLOTS]; LEVELS - 1]>,
    /// The blocks upper slots overflow into past their own first block.
    pool: BlockPool<Timed<E>>,
    /// The smallest time in each upper slot (`u64::MAX` when empty), so that `peek_time` is O(1)
    /// and re-placing a slot needs no extra scan.
    upper_min_ns: Box<[[u64; SLOTS]; LEVELS - 1]>,
    /// Bit `d` of `occupied[l]` is set when slot `d` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The wheel's reference: every event in the wheel is at or after it, and placed by the
    /// digits in which it differs from it. At or before the last popped time.
    now_ns: u64,
    /// The last popped time (0 before the first pop); every pending time is at or after it.
    popped_ns: u64,
    /// Events earlier than everything in the wheel, sorted by time, equal times in push order.
    run: VecDeque<Timed<E>>,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }
    /// Storage for `pending_max` events allocated up front; past it, blocks are added as needed
    /// and kept for reuse.
    pub fn with_capacity(pending_max: usize) -> Self {
        EventQueue {
            exact: Box::new(std::array::from_fn(|_| VecDeque::new())),
            upper: Box::new(std::array::from_fn(|_| {
                std::array::from_fn(|_| Bucket::default())
            })),
            pool: BlockPool::with_capacity(pending_max),
            upper_min_ns: Box::new([[u64::MAX; SLOTS]; LEVELS - 1]),
            occupied: [0; LEVELS],
            now_ns: 0,
            popped_ns: 0,
            run: VecDeque::new(),
            len: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Schedules `event` at `at`. Panics if `at` is before the last popped event: time never
    /// goes back, and a node that asks for it is a bug.
    #[inline]
    pub fn push(&mut self, at: SimTime, event: E) {
        let at_ns = at.as_nanos();
        assert!(
            at_ns >= self.popped_ns,
            "event scheduled in the past: {at:?} < {:?}",
            SimTime::from_nanos(self.popped_ns)
        );
        self.len += 1;
        if self.run.back().is_some_and(|last| at_ns <= last.at_ns) {
            if self.run.len() < RUN_CAP {
                let at = self.run.partition_point(|t| t.at_ns <= at_ns);
                self.run.insert(at, Timed { at_ns, event });
                return;
            }
            // Back into the wheel, in order (all of it is at or after `now_ns`).
            while let Some(Timed { at_ns, event }) = self.run.pop_front() {
                self.place(at_ns, event);
            }
        }
        self.place(at_ns, event);
    }
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        if let Some(first) = self.run.front() {
            return Some(SimTime::from_nanos(first.at_ns));
        }
        if self.occupied[0] != 0 {
            let slot = u64::from(self.occupied[0].trailing_zeros());
            return Some(SimTime::from_nanos((self.now_ns & !DIGIT_MASK) | slot));
        }
        let (level, slot) = self.lowest_upper_slot()?;
        Some(SimTime::from_nanos(self.upper_min_ns[level - 1][slot]))
    }
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.run.is_empty() && self.occupied[0] == 0 && !self.refill_level0() {
            return None;
        }
        // Pop order is asserted once per event by the loop (`engine::run`: time never goes
        // back), not again here on the hot path.
        if let Some(Timed { at_ns, event }) = self.run.pop_front() {
            self.popped_ns = at_ns;
            self.len -= 1;
            return Some((SimTime::from_nanos(at_ns), event));
        }
        let slot = self.occupied[0].trailing_zeros() as usize;
        let fifo = &mut self.exact[slot];
        let event = fifo
            .pop_front()
            .expect("an occupied level-0 slot holds an event");
        if fifo.is_empty() {
            self.occupied[0] &= !(1 << slot);
            if fifo.capacity() > EXACT_RETAIN_MAX {
                // After a burst at one instant, give the memory back rather than keep it
                // for a slot that usually holds a handful.
                fifo.shrink_to(EXACT_RETAIN_MAX);
            }
        }
        self.now_ns = (self.now_ns & !DIGIT_MASK) | slot as u64;
        self.popped_ns = self.now_ns;
        self.len -= 1;
        Some((SimTime::from_nanos(self.now_ns), event))
    }

    /// Stores an event at the level and slot its time has relative to `now_ns`.
    #[inline]
    fn place(&mut self, at_ns: u64, event: E) {
        debug_assert!(at_ns >= self.now_ns);
        let level = level_of(at_ns ^ self.now_ns);
        let slot = ((at_ns >> (level as u32 * DIGIT_BITS)) & DIGIT_MASK) as usize;
        self.occupied[level] |= 1 << slot;
        if level == 0 {
            self.exact[slot].push_back(event);
        } else {
            self.upper[level - 1][slot].push_back(&mut self.pool, Timed { at_ns, event });
            let min_ns = &mut self.upper_min_ns[level - 1][slot];
            *min_ns = (*min_ns).min(at_ns);
        }
    }

    /// The lowest occupied slot of the lowest occupied upper level, as (level, slot).
    #[inline]
    fn lowest_upper_slot(&self) -> Option<(usize, usize)> {
        let level = 1 + self.occupied[1..].iter().position(|&bits| bits != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// Level 0 is empty: moves `now_ns` to the earliest pending time and re-places the slot that
    /// holds it, which puts at least that event on level 0. False when nothing is pending.
    fn refill_level0(&mut self) -> bool {
        let Some((level, slot)) = self.lowest_upper_slot() else {
            return false;
        };
        self.occupied[level] &= !(1 << slot);
        self.now_ns = std::mem::replace(&mut self.upper_min_ns[level - 1][slot], u64::MAX);
        let bucket = &mut self.upper[level - 1][slot];
        if bucket.own_len().is_some_and(|n| n <= RUN_MAX) {
            // Small: sorted into the run (stable, so equal times keep their push order).
            let (mut own, _) = bucket.take();
            self.run.extend(own.drain(..));
            bucket.restore_own(own);
            self.run.make_contiguous().sort_by_key(|t| t.at_ns);
            return true;
        }
        // Empty the slot and re-place its events in order; each lands on a level below
        // `level`, never back in this slot. Drained vectors go back where they came from.
        let (mut own, mut overflow) = self.upper[level - 1][slot].take();
        for Timed { at_ns, event } in own.drain(..) {
            self.place(at_ns, event);
        }
        self.upper[level - 1][slot].restore_own(own);
        while let Some(mut taken) = self.pool.pop_block(&mut overflow) {
            for Timed { at_ns, event } in taken.items.drain(..) {
                self.place(at_ns, event);
            }
            self.pool.recycle(taken);
        }
        // That the re-placed slot's earliest event reached level 0 is checked by `pop`: an
        // empty level 0 makes its slot index 64, out of `exact`'s bounds.
        debug_assert!(
            self.occupied[0] != 0,
            "a re-placed slot's earliest event reaches level 0"
        );
        true
    }
}

/// The wheel level of a time whose XOR with `now_ns` is `diff`: the index of its highest
/// differing base-64 digit, 0 when the time is `now_ns` itself.
#[inline]
fn level_of(diff: u64) -> usize {
    ((63 - (diff | 1).leading_zeros()) / DIGIT_BITS) as usize
}

impl<E> PendingEvents<E> for EventQueue<E> {
    #[inline]
    fn len(&self) -> usize {
        EventQueue::len(self)
    }
    #[inline]
    fn push(&mut self, at: SimTime, event: E) {
        EventQueue::push(self, at, event)
    }
    #[inline]
    fn peek_time(&self) -> Option<SimTime> {
        EventQueue::peek_time(self)
    }
    #[inline]
    fn pop(&mut self) -> Option<(SimTime, E)> {
        EventQueue::pop(self)
    }
    /// The front of the lowest occupied level-0 slot. When level 0 is empty (at a million
    /// devices it usually is: events lie microseconds apart), the oldest event of the lowest
    /// upper slot when it holds that slot's earliest time, which is then the next to pop (the
    /// first pushed among equal times); `None` when telling would need a scan.
    #[inline]
    fn peek_next(&self) -> Option<&E> {
        if let Some(first) = self.run.front() {
            return Some(&first.event);
        }
        if self.occupied[0] != 0 {
            return self.exact[self.occupied[0].trailing_zeros() as usize].front();
        }
        let (level, slot) = self.lowest_upper_slot()?;
        let first = self.upper[level - 1][slot].first()?;
        (first.at_ns == self.upper_min_ns[level - 1][slot]).then_some(&first.event)
    }
}
