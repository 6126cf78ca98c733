//! FIFO lists that share one pool of fixed-size blocks, so that the wheel's upper slots together
//! hold about as much memory as the events pending at the peak, not each slot its own peak.
//! Lists are consumed a whole block at a time (the wheel re-places a slot in one go). Each
//! [`Bucket`] (a wheel slot) owns its first block, so sparse slots never touch the pool.
//!
//! With one `Vec` per slot, a slot keeps the capacity of the largest burst it ever held: in a
//! 10 M-event hold run every level-3 slot of the wheel, in turn, grows to millions of entries,
//! and the queue ends up holding ten times its contents (measured: 1.5 GB for 160 MB of
//! events). Blocks go back to the pool as soon as they are emptied and are reused as they are,
//! so past the peak nothing allocates.

/// Bytes per block: big enough that linking blocks is rare next to the moves themselves
/// (measured: 256-byte blocks cost 50% more at 10 M pending than 16 KiB ones), small enough that
/// the ~640 upper slots, each keeping its own first block, retain at most ~10 MiB between them.
const BLOCK_BYTES: usize = 16 * 1024;

/// Items per block: `BLOCK_BYTES` worth, and at least 16 for large items.
#[inline]
pub(super) const fn block_len<T>() -> usize {
    let len = BLOCK_BYTES
        / if size_of::<T>() == 0 {
            1
        } else {
            size_of::<T>()
        };
    let len = if len < 16 { 16 } else { len };
    assert!(
        len >= 16 && len <= BLOCK_BYTES,
        "a block holds 16 to BLOCK_BYTES items"
    );
    len
}

/// No block: the end of a list.
const NIL: u32 = u32::MAX;

struct Block<T> {
    /// Capacity `block_len::<T>()`, allocated once; never grown past it.
    items: Vec<T>,
    next: u32,
}

/// One FIFO list: the first and last block of its chain, `NIL` when empty. Lists are plain
/// values held by their owner; every operation goes through the [`BlockPool`] that owns the
/// blocks.
#[derive(Clone, Copy, Debug)]
pub(super) struct List {
    head: u32,
    tail: u32,
}

impl List {
    pub(super) const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
    pub(super) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// A block taken off a list by [`BlockPool::pop_block`]: its items, to be drained, and the
/// index to hand them back under.
pub(super) struct Taken<T> {
    pub(super) items: Vec<T>,
    block: u32,
}

pub(super) struct BlockPool<T> {
    blocks: Vec<Block<T>>,
    free: Vec<u32>,
}

impl<T> BlockPool<T> {
    /// A pool with blocks for `items` items already allocated.
    pub(super) fn with_capacity(items: usize) -> Self {
        let mut pool = BlockPool {
            blocks: Vec::new(),
            free: Vec::new(),
        };
        let blocks = items.div_ceil(block_len::<T>());
        pool.blocks.reserve_exact(blocks);
        pool.free.reserve_exact(blocks);
        for _ in 0..blocks {
            let b = pool.new_block();
            pool.free.push(b);
        }
        pool.free.reverse();
        assert!(
            pool.blocks.len() == blocks && pool.free.len() == blocks,
            "a new pool has every block allocated and free"
        );
        pool
    }

    #[inline]
    pub(super) fn push_back(&mut self, list: &mut List, item: T) {
        if list.is_empty() {
            let b = self.alloc();
            *list = List { head: b, tail: b };
        } else if self.blocks[list.tail as usize].items.len() == block_len::<T>() {
            let b = self.alloc();
            self.blocks[list.tail as usize].next = b;
            list.tail = b;
        }
        let items = &mut self.blocks[list.tail as usize].items;
        // A debug check only: a reallocated block costs memory, not correctness, and this is
        // on the event loop's hot path (the instruction gate measured it).
        debug_assert!(items.len() < items.capacity(), "a block never reallocates");
        items.push(item);
    }

    /// Unlinks the first block of `list` and hands out its items, in order. Give the drained
    /// vector back with [`BlockPool::recycle`] so that its allocation is reused.
    #[inline]
    pub(super) fn pop_block(&mut self, list: &mut List) -> Option<Taken<T>> {
        if list.is_empty() {
            return None;
        }
        let block = list.head;
        let b = &mut self.blocks[block as usize];
        assert!(
            (b.next == NIL) == (block == list.tail),
            "a list's blocks link up to its tail and end there"
        );
        if block == list.tail {
            *list = List::EMPTY;
        } else {
            list.head = b.next;
        }
        b.next = NIL;
        Some(Taken {
            items: std::mem::take(&mut b.items),
            block,
        })
    }

    /// Returns a drained block to the pool.
    #[inline]
    pub(super) fn recycle(&mut self, taken: Taken<T>) {
        debug_assert!(taken.items.is_empty(), "only drained blocks are recycled");
        self.blocks[taken.block as usize].items = taken.items;
        self.free.push(taken.block);
    }

    /// Blocks allocated so far (in lists or free): the pool's high-water mark.
    #[cfg(test)]
    pub(super) fn blocks_allocated(&self) -> usize {
        self.blocks.len()
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(b) => b,
            None => self.new_block(),
        }
    }

    #[cold]
    fn new_block(&mut self) -> u32 {
        let b = u32::try_from(self.blocks.len()).expect("fewer than 2^32 blocks");
        assert!(b != NIL, "block pool exhausted");
        self.blocks.push(Block {
            items: Vec::with_capacity(block_len::<T>()),
            next: NIL,
        });
        b
    }
}

/// A FIFO that owns its first block and borrows the rest from a [`BlockPool`]. A sparse slot
/// (the common case with few pending events) then never touches the pool, and pushes at the
/// speed of a plain `Vec`, while a slot's retained memory stays capped at one block.
pub(super) struct Bucket<T> {
    /// The first items, up to `block_len::<T>()`; grows like a `Vec` until then and keeps its
    /// capacity.
    own: Vec<T>,
    /// Everything after the first `block_len::<T>()` items.
    overflow: List,
}

impl<T> Default for Bucket<T> {
    fn default() -> Self {
        Bucket {
            own: Vec::new(),
            overflow: List::EMPTY,
        }
    }
}

impl<T> Bucket<T> {
    #[inline]
    pub(super) fn push_back(&mut self, pool: &mut BlockPool<T>, item: T) {
        // Once overflowing, everything goes to the overflow, so `own` stays the oldest items.
        if self.own.len() < block_len::<T>() && self.overflow.is_empty() {
            self.own.push(item);
        } else {
            pool.push_back(&mut self.overflow, item);
        }
    }

    /// How many items the bucket holds, when it has not overflowed its own block (else
    /// `None`: a large bucket is not worth counting).
    #[inline]
    pub(super) fn own_len(&self) -> Option<usize> {
        self.overflow.is_empty().then_some(self.own.len())
    }

    /// The oldest item, if any.
    #[inline]
    pub(super) fn first(&self) -> Option<&T> {
        // `own` fills first and is only ever emptied whole, so it holds the oldest item.
        self.own.first()
    }

    /// Empties the bucket, handing out its items in order: first its own block (give the vector
    /// back with [`Bucket::restore_own`] to keep its capacity), then the overflow list.
    #[inline]
    pub(super) fn take(&mut self) -> (Vec<T>, List) {
        (
            std::mem::take(&mut self.own),
            std::mem::replace(&mut self.overflow, List::EMPTY),
        )
    }

    #[inline]
    pub(super) fn restore_own(&mut self, own: Vec<T>) {
        // Debug only (hot path): a non-empty block here would keep stale capacity, not events.
        debug_assert!(own.is_empty(), "a bucket gets its own block back drained");
        self.own = own;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(pool: &mut BlockPool<usize>, list: &mut List) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(mut taken) = pool.pop_block(list) {
            out.append(&mut taken.items);
            pool.recycle(taken);
        }
        out
    }

    #[test]
    fn lists_are_fifo_and_blocks_are_reused() {
        let n = 3 * block_len::<usize>() + 5;
        let mut pool = BlockPool::with_capacity(0);
        let (mut a, mut b) = (List::EMPTY, List::EMPTY);
        for i in 0..n {
            pool.push_back(&mut a, i);
            pool.push_back(&mut b, 10_000 + i);
        }
        let allocated = pool.blocks.len();
        assert_eq!(allocated, 8);
        assert_eq!(drain(&mut pool, &mut a), (0..n).collect::<Vec<_>>());
        assert!(a.is_empty());
        assert!(pool.pop_block(&mut a).is_none());
        for i in 0..n {
            pool.push_back(&mut a, i);
        }
        assert_eq!(pool.blocks.len(), allocated, "a's old blocks were reused");
        assert_eq!(
            drain(&mut pool, &mut b),
            (10_000..10_000 + n).collect::<Vec<_>>()
        );
        assert!(pool
            .blocks
            .iter()
            .all(|b| b.items.capacity() == block_len::<usize>()));
    }

    #[test]
    fn with_capacity_preallocates() {
        let mut pool = BlockPool::with_capacity(2 * block_len::<usize>());
        let mut a = List::EMPTY;
        for i in 0..2 * block_len::<usize>() {
            pool.push_back(&mut a, i);
        }
        assert_eq!(pool.blocks.len(), 2);
    }

    #[test]
    fn bucket_keeps_order_across_its_own_block_and_the_overflow() {
        let mut pool = BlockPool::with_capacity(0);
        let mut bucket = Bucket::default();
        for round in 0..3 {
            let n = block_len::<usize>() * (round + 1) + 3;
            for i in 0..n {
                bucket.push_back(&mut pool, i);
            }
            let (mut own, mut overflow) = bucket.take();
            let mut got: Vec<usize> = Vec::new();
            got.append(&mut own); // keeps `own`'s allocation, as the wheel does
            got.extend(drain(&mut pool, &mut overflow));
            bucket.restore_own(own);
            assert_eq!(got, (0..n).collect::<Vec<_>>());
        }
        assert_eq!(
            pool.blocks.len(),
            3,
            "overflow blocks are reused across rounds"
        );
        assert_eq!(bucket.own.capacity(), block_len::<usize>());
    }
}
