//! Generic containers shaped for the hot path at a million devices: a sorted-`Vec` map for the
//! per-device maps that hold a handful of entries, an append-only vector in chunks (the
//! message records), and an open-addressing table whose probe slot can be prefetched. They
//! know nothing of messaging; nodes and drivers use them.

pub mod chunked;
pub mod tat_table;
pub mod vec_map;
