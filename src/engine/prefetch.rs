//! A non-blocking cache hint. At a million devices almost every event's first read (its frame,
//! its device) misses the cache; asking for the line one event ahead lets that miss overlap the
//! current event's work. A plain load would stall the pipeline instead, which is what the
//! prefetch hook did before it used this.

/// Asks the CPU to bring every cache line of `value` closer: a device's state spans four
/// lines, and asking for the first alone left three misses for the handler to wait on. Never
/// reads `value` and never changes any result.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_bytes((value as *const T).cast::<u8>(), std::mem::size_of::<T>());
}

/// Asks for the start of a slice's heap buffer, at most `max_bytes` of it: the second level of
/// a node's state (its maps and queues), which a handler reads right after the node itself.
#[inline(always)]
pub fn prefetch_slice<T>(items: &[T], max_bytes: usize) {
    prefetch_bytes(
        items.as_ptr().cast::<u8>(),
        std::mem::size_of_val(items).min(max_bytes),
    );
}

/// Prefetches the cache lines covering `len` bytes from `first` (none when `len` is 0: an empty
/// buffer's pointer is dangling). On targets without a prefetch instruction it does nothing.
#[inline(always)]
fn prefetch_bytes(first: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        const LINE: usize = 64;
        if len == 0 {
            return;
        }
        let lines = ((first as usize % LINE) + len - 1) / LINE + 1;
        assert!(
            lines <= len.div_ceil(LINE) + 1,
            "a range touches at most one line more than its length fills"
        );
        for line in 0..lines {
            // SAFETY: a prefetch is a hint; it does not access memory architecturally and
            // cannot fault. The address is computed with `wrapping_add` and never dereferenced;
            // it stays within the last cache line of the range. SSE is baseline on x86_64.
            unsafe {
                let ptr = first.wrapping_add(line * LINE).cast::<i8>();
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (first, len);
    }
}
