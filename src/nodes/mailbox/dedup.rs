//! The dedup memory of a mailbox: which submissions each sender device already had accepted,
//! bounded per device, so a retried submission whose ack was lost is not queued twice.

use crate::wire::DeviceId;
use std::collections::VecDeque;

/// The dedup memory of a mailbox: per sender device, the (message, copy) pairs accepted, in
/// order, at most `dedup_window_max` (the smallest goes first, as a `BTreeSet`'s `pop_first`).
/// Most devices of a large run never send through a given server: a `u32` each, and a window
/// only for those that do.
#[derive(Clone, Debug)]
pub(super) struct Accepted {
    /// Per device: 0, or 1 + its index in `windows`.
    pub(super) index: Vec<u32>,
    pub(super) windows: Vec<VecDeque<Key>>,
}

/// A dedup key `(message, copy)` in 12 bytes instead of a tuple's 16: a window holds every
/// submission a busy sender made, and a run holds tens of millions. Its order is the tuple's
/// (arrays compare element by element, the message's high half first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key([u32; 3]);

impl From<(u64, u32)> for Key {
    fn from((msg, copy): (u64, u32)) -> Self {
        Key([(msg >> 32) as u32, msg as u32, copy])
    }
}

impl Accepted {
    pub(super) fn new(devices: usize) -> Self {
        Accepted {
            index: vec![0; devices],
            windows: Vec::new(),
        }
    }

    /// Records `key` for `device`; `false` if it was there already.
    pub(super) fn insert(&mut self, device: DeviceId, key: (u64, u32), max: usize) -> bool {
        let key = Key::from(key);
        let slot = &mut self.index[device.index()];
        if *slot == 0 {
            self.windows.push(VecDeque::new());
            *slot = self.windows.len() as u32;
        }
        let seen = &mut self.windows[*slot as usize - 1];
        // A sender's message ids mostly grow: past the newest, no search (a binary search over
        // a full window touches a dozen cache lines of a window that is cold by now).
        let at = match seen.back() {
            Some(&newest) if newest < key => seen.len(),
            None => 0,
            Some(_) => match seen.binary_search(&key) {
                Ok(_) => return false,
                Err(at) => at,
            },
        };
        if seen.len() == seen.capacity() {
            seen.reserve_exact((seen.len() / 2).max(2)); // many small windows: grow by half
        }
        seen.insert(at, key);
        if seen.len() > max {
            seen.pop_front();
        }
        true
    }

    pub(super) fn clear(&mut self) {
        for w in &mut self.windows {
            w.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packed key sorts as the tuple it packs, across the halves of the message id.
    #[test]
    fn packed_keys_keep_the_tuple_order() {
        let keys = [
            (0u64, 0u32),
            (0, 7),
            (1, 0),
            (u32::MAX as u64, u32::MAX),
            (1 << 32, 0),
            ((1 << 32) + 1, 3),
            (u64::MAX, 0),
        ];
        for a in keys {
            for b in keys {
                assert_eq!(Key::from(a).cmp(&Key::from(b)), a.cmp(&b), "{a:?} {b:?}");
            }
        }
        assert_eq!(std::mem::size_of::<Key>(), 12);
    }

    /// A window refuses a key it holds and forgets the smallest beyond its bound.
    #[test]
    fn windows_refuse_repeats_within_their_bound() {
        let mut a = Accepted::new(2);
        let d = DeviceId(1);
        assert!(a.insert(d, (5, 0), 2));
        assert!(a.insert(d, (3, 1), 2), "an older id, not seen: accepted");
        assert!(!a.insert(d, (5, 0), 2));
        assert!(a.insert(d, (9, 0), 2), "the window now forgets (3, 1)");
        assert!(a.insert(d, (3, 1), 2), "forgotten, so accepted again");
        assert!(a.insert(DeviceId(0), (5, 0), 2), "another sender's window");
    }
}
