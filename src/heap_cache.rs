//! A small cache of recently freed blocks in front of the allocator, on the event loop's thread.
//!
//! A simulated message allocates a handful of small blocks (its envelope, the frame that
//! carries it, an outbox slot) and frees them again when it is acknowledged. mimalloc hands a
//! new block out from the free list of its current page, and at a million devices that block
//! was freed long ago: reading its free-list link is a cache miss the loop waits on, 6 % of
//! the loop's time in `scenarios/scale-1m.toml`. Blocks freed a moment ago are still in the
//! cache, so this layer keeps the last few of each small size (by the exact size class the
//! program frees them with) and hands them out again first, last in, first out. The cache
//! holds pointers only: caching or reusing a block touches none of its bytes.
//!
//! Only a thread that asks for it ([`enable_on_this_thread`]) caches; every other thread goes
//! straight to the allocator. The cache never gives its blocks back (the loop's thread lives
//! as long as the run), and holds at most [`CLASSES`] × [`DEPTH`] blocks of up to
//! [`MAX_SIZE`] bytes: 256 KiB.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::{Cell, UnsafeCell};

/// Largest block size cached; size classes are 8 bytes wide.
const MAX_SIZE: usize = 256;
const CLASSES: usize = MAX_SIZE / 8;
/// Blocks kept per size class.
const DEPTH: usize = 32;
/// Largest alignment cached (every block is checked against the request's).
const MAX_ALIGN: usize = 16;

struct Cache {
    blocks: [[*mut u8; DEPTH]; CLASSES],
    lens: [u8; CLASSES],
}

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache {
            blocks: [[std::ptr::null_mut(); DEPTH]; CLASSES],
            lens: [0; CLASSES],
        })
    };
}

/// Lets the calling thread cache freed blocks from now on.
pub fn enable_on_this_thread() {
    ENABLED.with(|e| e.set(true));
}

/// The class of a request, if it is cached at all.
#[inline]
fn class(layout: &Layout) -> Option<usize> {
    let size = layout.size();
    (size != 0 && size <= MAX_SIZE && layout.align() <= MAX_ALIGN).then(|| (size - 1) / 8)
}

#[inline]
fn enabled() -> bool {
    ENABLED.try_with(Cell::get).unwrap_or(false)
}

/// `A` with a per-thread cache of freed small blocks in front (see the module docs).
pub struct Recycling<A>(pub A);

// SAFETY: a cached block was allocated by `A` and freed by the program; it is handed out again
// only for a request of the same size class (whose size it covers: every block in class `c`
// came from `A` for a size above `8 * c`, and `A` rounds block sizes up to whole 8-byte words,
// so it holds `8 * (c + 1)` bytes; the same bound lets a reallocation within a class keep its
// block) and an alignment its address meets. Each thread's cache is its own (thread-local), and no
// cache operation allocates, so none re-enters itself.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Recycling<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(c) = class(&layout) {
            if enabled() {
                if let Some(p) = take(c, layout.align()) {
                    return p;
                }
            }
        }
        self.0.alloc(layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(c) = class(&layout) {
            if enabled() {
                if let Some(p) = take(c, layout.align()) {
                    p.write_bytes(0, layout.size());
                    return p;
                }
            }
        }
        self.0.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(c) = class(&layout) {
            if enabled() && keep(c, ptr) {
                return;
            }
        }
        self.0.dealloc(ptr, layout)
    }

    /// Small vectors grow through small sizes (a device's sessions: 2, 3, 4, 6 entries): a
    /// size within the block's class keeps the block, and a block of the new class comes from
    /// the cache when it has one, the old block going into it. (mimalloc first reads the
    /// block's page to learn its usable size: another miss.)
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        if let (Some(old), Some(new)) = (class(&layout), class(&new_layout)) {
            if enabled() {
                if old == new {
                    return ptr;
                }
                if let Some(p) = take(new, layout.align()) {
                    std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                    if !keep(old, ptr) {
                        self.0.dealloc(ptr, layout);
                    }
                    return p;
                }
            }
        }
        self.0.realloc(ptr, layout, new_size)
    }
}

/// The most recently cached block of class `c`, if its address meets `align`.
#[inline]
fn take(c: usize, align: usize) -> Option<*mut u8> {
    CACHE
        .try_with(|cache| {
            // SAFETY: only this thread reaches its cache, and nothing here re-enters it.
            let cache = unsafe { &mut *cache.get() };
            let n = cache.lens[c] as usize;
            if n == 0 {
                return None;
            }
            let p = cache.blocks[c][n - 1];
            if !(p as usize).is_multiple_of(align) {
                return None;
            }
            cache.lens[c] -= 1;
            Some(p)
        })
        .ok()
        .flatten()
}

/// Caches `p` in class `c`; `false` when the class is full.
#[inline]
fn keep(c: usize, p: *mut u8) -> bool {
    CACHE
        .try_with(|cache| {
            // SAFETY: as in `take`.
            let cache = unsafe { &mut *cache.get() };
            let n = cache.lens[c] as usize;
            if n == DEPTH {
                return false;
            }
            cache.blocks[c][n] = p;
            cache.lens[c] += 1;
            true
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through the binary's global allocator (this layer over mimalloc): the cache is per
    /// thread, not per allocator value, so a second `Recycling` in a test would share it.
    #[test]
    fn a_freed_block_comes_back_for_its_size_class_only_on_an_enabled_thread() {
        let addr = |b: &[u8]| b.as_ptr() as usize;
        let block = |n: usize, byte: u8| vec![byte; n].into_boxed_slice();

        enable_on_this_thread();
        let a = block(100, 0xab);
        let at = addr(&a);
        drop(a);
        let b = block(104, 1);
        assert_eq!(
            addr(&b),
            at,
            "same class (97..=104 bytes): the block comes back"
        );
        let c = block(120, 2);
        assert_ne!(addr(&c), at, "another class: another block");
        drop(b);
        let z = vec![0u8; 100].into_boxed_slice();
        assert_eq!(addr(&z), at, "zeroed requests reuse too");
        assert!(
            z.iter().all(|&x| x == 0),
            "and get zeroes, not the old bytes"
        );

        // Last in, first out, and a full class sends the rest to the allocator.
        let many: Vec<Box<[u8]>> = (0..DEPTH + 5).map(|i| block(200, i as u8)).collect();
        let addrs: Vec<usize> = many.iter().map(|m| addr(m)).collect();
        drop(many);
        let again = block(200, 9);
        assert_eq!(addr(&again), addrs[DEPTH - 1], "the last one kept");
        let n = CACHE.with(|cache| unsafe { (*cache.get()).lens[(200 - 1) / 8] });
        assert_eq!(n as usize, DEPTH - 1);

        // A big block is never cached.
        let big = block(4096, 3);
        let big_at = addr(&big);
        drop(big);
        assert!(CACHE.with(|cache| unsafe { &*cache.get() }
            .blocks
            .iter()
            .flatten()
            .all(|&p| p as usize != big_at)));

        // A reallocation within a class keeps the block; across classes it takes a cached
        // block, and the old one is cached.
        let mut v: Vec<u8> = Vec::with_capacity(65); // class 8: 65..=72 bytes
        v.extend_from_slice(&[7; 65]);
        let first = addr(&v);
        v.reserve_exact(7); // 72 bytes
        assert_eq!(addr(&v), first, "same class: same block");
        let spare = block(80, 5); // class 9: 73..=80 bytes
        let spare_at = addr(&spare);
        drop(spare);
        v.reserve_exact(15); // 80 bytes
        assert_eq!(addr(&v), spare_at, "the cached block of the new class");
        assert_eq!(v, [7; 65], "contents kept");
        assert_eq!(addr(&block(72, 6)), first, "the old block was cached");

        // Another thread does not cache.
        std::thread::spawn(move || {
            let d = block(100, 4);
            drop(d);
            let n = CACHE.with(|cache| unsafe { (*cache.get()).lens[(100 - 1) / 8] });
            assert_eq!(n, 0);
        })
        .join()
        .expect("the other thread's checks hold");
        drop((c, z, again));
    }
}
