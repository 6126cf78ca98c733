//! Faults the heap in ahead of the simulation, on a thread of its own.
//!
//! A 1 M-user run grows from 0.8 to 3.3 GB while its event loop runs, and every new 2 MiB
//! page costs the loop a page fault and the kernel's zeroing of it: 7 % of the loop thread's
//! time in a profile of `scenarios/scale-1m.toml` (a VM whose host backs memory lazily makes
//! each first touch dear). The loop is the run's bottleneck and the machine's other cores are
//! mostly idle, so a helper thread takes the faults instead.
//!
//! It follows where the allocator hands memory out: the allocator below notes the end of
//! each allocation whenever it falls in another 2 MiB chunk than the thread's previous one,
//! and the helper, a few hundred times a second, asks the kernel to populate the chunks just
//! after the last one noted (`MADV_POPULATE_WRITE`: the pages are faulted in as if written,
//! and not written, so memory in use is never touched). Allocations grow into fresh memory
//! at a few frontiers, so a few chunks ahead of the noted end are usually the next ones
//! used; at worst a run keeps [`AHEAD`] chunks per frontier that it never needed.
//!
//! Nothing here reaches a result: which pages are resident is invisible to the simulation.
//! Linux only; anywhere else, or on a kernel without `MADV_POPULATE_WRITE` (before 5.14),
//! [`start`] does nothing and the loop takes its own faults as before.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The unit the kernel backs the heap with (transparent huge pages).
const CHUNK: usize = 2 << 20;
/// Chunks populated after the last noted allocation: 8 MiB, about a fifth of a second of a
/// 1 M-user run's growth, so the helper stays ahead between two looks.
const AHEAD: usize = 4;

/// The end of the most recent allocation that fell in a new chunk (0: none yet).
static NOTED_END: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's last noted chunk: a thread writes [`NOTED_END`] only when it moves to
    /// another chunk, so the shared word stays out of the allocation fast path.
    static LAST_CHUNK: Cell<usize> = const { Cell::new(0) };
}

/// mimalloc, with the end of each allocation noted for the helper.
pub struct Noting<A>(pub A);

impl<A> Noting<A> {
    #[inline]
    fn note(p: *mut u8, size: usize) {
        if p.is_null() {
            return;
        }
        let end = p as usize + size;
        let chunk = end / CHUNK;
        // `try_with`: a thread's allocations during its own teardown are simply not noted.
        let _ = LAST_CHUNK.try_with(|last| {
            if last.get() != chunk {
                last.set(chunk);
                NOTED_END.store(end, Ordering::Relaxed);
            }
        });
    }
}

// SAFETY: every call is forwarded to `A` unchanged; noting reads only the returned pointer.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Noting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        Self::note(p, layout.size());
        p
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        Self::note(p, layout.size());
        p
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout)
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        Self::note(p, new_size);
        p
    }
}

/// Starts the helper thread, if this platform can have one. Call before the run grows its
/// heap: only memory allocated after this is warmed ahead.
pub fn start() {
    #[cfg(target_os = "linux")]
    linux::start();
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{AHEAD, CHUNK, NOTED_END};
    use std::collections::BTreeSet;
    use std::ffi::c_void;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    const POLL: Duration = Duration::from_millis(2);

    pub(super) fn start() {
        if !populate_works() {
            return;
        }
        // No thread, no warming: the run is the same, only slower.
        let _ = std::thread::Builder::new()
            .name("heap-warmer".into())
            .spawn(warm);
    }

    /// Whether this kernel knows `MADV_POPULATE_WRITE` (asked on an empty range).
    pub(super) fn populate_works() -> bool {
        let page = CHUNK as *mut c_void;
        // SAFETY: a zero-length advice touches nothing; the kernel still validates the advice.
        unsafe { libc::madvise(page, 0, libc::MADV_POPULATE_WRITE) == 0 }
    }

    fn warm() {
        let mut warmed = BTreeSet::new();
        let mut last = 0;
        loop {
            let chunk = NOTED_END.load(Ordering::Relaxed) / CHUNK;
            if chunk != last && chunk != 0 {
                last = chunk;
                for c in chunk + 1..=chunk + AHEAD {
                    if warmed.insert(c) {
                        populate(c);
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Faults in the chunk's pages as if written, without writing them: memory in use is left
    /// as it is. The chunk is usually the allocator's next (fresh, mapped read-write); if it is
    /// not mapped, or not writable, the kernel refuses and nothing happens; if it belongs to
    /// another mapping, its untouched pages only count as resident early.
    pub(super) fn populate(chunk: usize) {
        // SAFETY: the advice never changes a byte of memory, mapped or not.
        unsafe {
            libc::madvise(
                (chunk * CHUNK) as *mut c_void,
                CHUNK,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The warmer's one promise: populating a chunk the program is using changes none of its
    /// bytes (and a chunk nobody mapped is refused without harm).
    #[test]
    fn populating_leaves_memory_in_use_as_it_is() {
        if !linux::populate_works() {
            eprintln!("this kernel has no MADV_POPULATE_WRITE: the warmer stays off");
            return;
        }
        let pattern = |i: usize| (i % 251) as u8;
        let mut v = vec![0u8; 3 * CHUNK];
        v.iter_mut().enumerate().for_each(|(i, b)| *b = pattern(i));
        let first_whole = (v.as_ptr() as usize).div_ceil(CHUNK);
        linux::populate(first_whole);
        assert!(v.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        linux::populate(0); // the null page's chunk: never mapped
    }

    #[test]
    fn an_allocation_in_a_new_chunk_is_noted() {
        let b = vec![1u8; 3 * CHUNK / 2];
        let end = b.as_ptr() as usize + b.len();
        // Through the binary's global allocator, which notes on the way (this thread's note:
        // the shared word may hold another test thread's by now).
        assert_eq!(LAST_CHUNK.with(Cell::get), end / CHUNK);
    }
}
