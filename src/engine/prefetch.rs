//! A non-blocking cache hint. At a million devices almost every event's first read (its frame,
//! its device) misses the cache; asking for the line one event ahead lets that miss overlap the
//! current event's work. A plain load would stall the pipeline instead, which is what the
//! prefetch hook did before it used this.

/// Asks the CPU to bring the cache line holding `value` closer. Never reads `value` and never
/// changes any result: on targets without a prefetch instruction it does nothing.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let ptr = (value as *const T).cast::<i8>();
        // SAFETY: a prefetch is a hint; it does not access memory architecturally, cannot
        // fault, and `ptr` comes from a live reference anyway. SSE is baseline on x86_64.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = value;
    }
}
