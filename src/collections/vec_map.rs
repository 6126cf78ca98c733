//! A small ordered map in one sorted `Vec`, for the per-device maps that hold a handful of
//! entries (sequence counters, streams, sessions). A `BTreeMap` allocates an 11-slot node
//! (plus node overhead) for its first entry; at a million devices that was most of the
//! memory. Same ordering as `BTreeMap` (iteration is by key), so swapping one for the other
//! changes no behaviour. Inserting is O(n): meant for maps of at most a few hundred entries.

/// A map from `K` to `V` kept as a `Vec` sorted by key.
#[derive(Clone, Debug)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord + Copy, V> VecMap<K, V> {
    pub const fn new() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }

    fn find(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.grow();
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.find(key).ok().map(|i| self.entries.remove(i).1)
    }

    /// The value at `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.grow();
                self.entries.insert(i, (key, make()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// Grows by [`super::growth`]: these maps are many and small.
    fn grow(&mut self) {
        let (len, cap) = (self.entries.len(), self.entries.capacity());
        if len == cap {
            self.entries.reserve_exact(super::growth(len));
        }
    }

    /// A cache hint for the first entries (see [`crate::engine::prefetch`]): the few a
    /// device's map holds, which a lookup's binary search reads.
    pub fn prefetch(&self) {
        crate::engine::prefetch::prefetch_slice(&self.entries, 128);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Values in key order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord + Copy, V: Default> VecMap<K, V> {
    /// The value at `key`, inserted as `V::default()` if absent (`entry(key).or_default()`).
    pub fn entry_or_default(&mut self, key: K) -> &mut V {
        self.get_or_insert_with(key, V::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_btree_map() {
        let mut a = VecMap::new();
        let mut b = BTreeMap::new();
        let mut x = 7u64;
        for step in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = (x >> 40) % 97;
            match step % 4 {
                0 | 1 => assert_eq!(a.insert(k, step), b.insert(k, step)),
                2 => assert_eq!(a.remove(&k), b.remove(&k)),
                _ => *a.entry_or_default(k) += 1,
            }
            if step % 4 == 3 {
                *b.entry(k).or_default() += 1;
            }
            assert_eq!(a.get(&k), b.get(&k));
            assert_eq!(a.len(), b.len());
        }
        let av: Vec<_> = a.iter().map(|(k, v)| (*k, *v)).collect();
        let bv: Vec<_> = b.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(av, bv);
    }
}
