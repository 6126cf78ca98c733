//! The bundle-fetch limiter's table: one theoretical arrival time (TAT) per (requester,
//! device) pair. At a million devices every new session adds a pair, tens of millions over a
//! run, and each lookup was a cache miss that the handler waited on. This table is open
//! addressing over one flat array, so that the slot a pair will use can be asked for ahead
//! (see [`TatTable::prefetch`]), which a standard hash map does not offer.
//!
//! Only looked up, inserted and pruned, never iterated into any result: its order reaches
//! nothing. Keys are nonzero (`0` marks an empty slot).

/// The table grows before it is three quarters full: linear probes stay short (a probe's
/// first cache line holds four slots) and the table about as small as a hash map's.
const fn fits(len: usize, capacity: usize) -> bool {
    len * 4 <= capacity * 3
}
const CAPACITY_MIN: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct TatTable {
    /// `(key, tat_ns)`, key `0` for an empty slot; the length is a power of two (or zero).
    slots: Vec<(u64, u64)>,
    len: usize,
}

impl TatTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where `key`'s probe starts. Fibonacci hashing: the high bits of a multiplication, so
    /// that consecutive device ids spread over the table.
    fn home(&self, key: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        debug_assert!(key != 0 && !self.slots.is_empty());
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].0;
            if k == key || k == 0 {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, key: u64) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let (k, tat) = self.slots[self.find(key)];
        (k == key).then_some(tat)
    }

    pub fn insert(&mut self, key: u64, tat_ns: u64) {
        assert!(key != 0, "key 0 marks an empty slot");
        if !fits(self.len + 1, self.slots.len()) {
            self.rebuild((self.slots.len() * 2).max(CAPACITY_MIN), |_| true);
        }
        let i = self.find(key);
        if self.slots[i].0 == 0 {
            self.len += 1;
        }
        self.slots[i] = (key, tat_ns);
    }

    /// How many entries `keep` accepts.
    pub fn count(&self, keep: impl Fn(u64) -> bool) -> usize {
        self.slots
            .iter()
            .filter(|&&(k, t)| k != 0 && keep(t))
            .count()
    }

    /// Keeps only the entries `keep` accepts, in a table sized for them.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        let kept = self.count(&keep);
        let mut capacity = CAPACITY_MIN;
        while !fits(kept + 1, capacity) {
            capacity *= 2;
        }
        self.rebuild(capacity, keep);
    }

    fn rebuild(&mut self, capacity: usize, keep: impl Fn(u64) -> bool) {
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); capacity]);
        self.len = 0;
        for (k, t) in old {
            if k != 0 && keep(t) {
                let i = self.find(k);
                self.slots[i] = (k, t);
                self.len += 1;
            }
        }
    }

    /// A cache hint for the slot `key` starts its probe at (see [`crate::engine::prefetch`]).
    pub fn prefetch(&self, key: u64) {
        if let Some(slot) = self.slots.get(self.home(key)) {
            crate::engine::prefetch::prefetch(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn agrees_with_a_btreemap_through_inserts_updates_and_prunes() {
        let mut table = TatTable::default();
        let mut model = BTreeMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 5_000 + 1;
            table.insert(key, round);
            model.insert(key, round);
            if round % 4_999 == 0 {
                let cut = round.saturating_sub(1_000);
                table.retain(|t| t > cut);
                model.retain(|_, t| *t > cut);
            }
            assert_eq!(table.len(), model.len());
        }
        for key in 0..=5_001 {
            let key = key + 1;
            assert_eq!(table.get(key), model.get(&key).copied(), "key {key}");
        }
        table.retain(|_| false);
        assert!(table.is_empty());
        assert_eq!(table.get(7), None);
    }
}
