//! Generic containers shaped for the hot path at a million devices: a sorted-`Vec` map for the
//! per-device maps that hold a handful of entries, an append-only vector in chunks (the
//! message records), an open-addressing table whose probe slot can be prefetched, and a
//! short stack of emptied buffers for their next use. They know nothing of messaging; nodes
//! and drivers use them.

pub mod chunked;
pub mod spares;
pub mod tat_table;
pub mod vec_map;

/// How many slots to add to a full per-device buffer of `len` items (sorted maps, the
/// plaintext cache, dedup windows): half as many again, not double, since there are millions
/// of them and slack adds up; and at least 8, since each growth copies a buffer that is cold
/// by then into fresh memory, and a device's buffers reach ten or twenty items at scale (from
/// 2 by half, that was five copies).
pub fn growth(len: usize) -> usize {
    (len / 2).max(8)
}
