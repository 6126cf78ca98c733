//! A short stack of emptied buffers, kept for their next use.
//!
//! A device's outbox, a mailbox box's queue and the boxes of the frames between them hold one
//! message most of the time and none the rest. An idle one keeps no buffer (a million of them
//! would hold gigabytes), so each message allocated them and freed them again at its ack. The
//! allocator hands out the blocks it has free page by page, and at a million devices a block
//! freed a while ago is out of the cache: each allocation waited on a miss before anything
//! was written into it (mimalloc's `mi_page_malloc_zero`, 5 % of a 1 M-user run's main
//! thread). Kept here when emptied, a buffer is the next one taken, still in the cache. Only
//! a few are kept, which is all that is emptied between two uses; this is no allocator, each
//! buffer stays a value of its own type.

use std::collections::VecDeque;

/// How many are kept at most.
const KEPT_MAX: usize = 32;

#[derive(Clone, Debug)]
pub struct Spares<T> {
    kept: Vec<T>,
}

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Spares { kept: Vec::new() }
    }
}

impl<T> Spares<T> {
    /// The buffer kept last, if any.
    pub fn take(&mut self) -> Option<T> {
        self.kept.pop()
    }

    /// Keeps `buffer` for the next [`Spares::take`], unless enough are kept.
    pub fn keep(&mut self, buffer: T) {
        if self.kept.len() < KEPT_MAX {
            self.kept.push(buffer);
        }
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

impl<T: Clone> Spares<Box<T>> {
    /// A copy of `value` in a box, a kept one if there is one.
    pub fn boxed(&mut self, value: &T) -> Box<T> {
        match self.take() {
            Some(mut b) => {
                T::clone_from(&mut b, value);
                b
            }
            None => Box::new(value.clone()),
        }
    }

    /// The value out of its box, which is kept holding `vacant` (a value that owns no heap
    /// memory) for the next [`Spares::boxed`].
    pub fn open(&mut self, mut b: Box<T>, vacant: T) -> T {
        let value = std::mem::replace(&mut *b, vacant);
        self.keep(b);
        value
    }
}

impl<T> Spares<VecDeque<T>> {
    /// An empty queue with room for at least one item: a kept one if there is one.
    pub fn queue(&mut self) -> VecDeque<T> {
        match self.take() {
            Some(queue) => {
                assert!(queue.is_empty(), "a kept queue is empty");
                queue
            }
            None => VecDeque::with_capacity(1),
        }
    }

    /// Keeps an emptied queue's buffer for the next [`Spares::queue`].
    pub fn keep_queue(&mut self, queue: VecDeque<T>) {
        if queue.is_empty() && queue.capacity() > 0 {
            self.keep(queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_kept_last_is_taken_first_and_at_most_kept_max_are_kept() {
        let mut spares = Spares::default();
        assert_eq!(spares.take(), None::<Vec<u8>>);
        for i in 0..KEPT_MAX + 3 {
            spares.keep(Vec::with_capacity(i + 1));
        }
        assert_eq!(spares.len(), KEPT_MAX);
        assert_eq!(spares.take().map(|v| v.capacity()), Some(KEPT_MAX));
        assert_eq!(spares.len(), KEPT_MAX - 1);
    }
}
