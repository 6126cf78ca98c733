//! The dedup memory of a mailbox: which submissions each sender device already had accepted,
//! bounded per device, so a retried submission whose ack was lost is not queued twice.

use crate::collections::growth;
use crate::wire::DeviceId;
use std::collections::VecDeque;

/// The dedup memory of a mailbox: per sender device, the (message, copy) pairs accepted, in
/// order, at most `dedup_window_max` (the smallest goes first, as a `BTreeSet`'s `pop_first`).
/// Indexed by the device itself, from the lowest sender seen to the highest: a submission
/// finds its sender's window in one step, where an index of the senders seen put one more cache
/// miss in front of every submission. A server whose senders are its own users spans their
/// range; a device in the range that never sends costs an empty window (32 bytes).
#[derive(Clone, Debug, Default)]
pub(super) struct Accepted {
    /// The device of `windows[0]`.
    first: u32,
    windows: Vec<VecDeque<Key>>,
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
    /// `device`'s window, if the span reaches it.
    pub(super) fn window(&self, device: DeviceId) -> Option<&VecDeque<Key>> {
        self.windows.get(self.offset(device)?)
    }

    /// `device`'s place in `windows`, if it is at or above the span's first device.
    fn offset(&self, device: DeviceId) -> Option<usize> {
        Some(device.0.checked_sub(self.first)? as usize)
    }

    /// `device`'s window, the span grown to reach it. Grown downwards by at least its length
    /// at a time, so that senders arriving in falling order cost no more than rising ones.
    fn window_mut(&mut self, device: DeviceId) -> &mut VecDeque<Key> {
        let d = device.0;
        if self.windows.is_empty() {
            self.first = d;
        }
        if d < self.first {
            let grow = (self.first - d)
                .max(self.windows.len() as u32)
                .min(self.first);
            let new = (0..grow).map(|_| VecDeque::new());
            self.windows.splice(0..0, new);
            self.first -= grow;
        }
        let i = (d - self.first) as usize;
        if i >= self.windows.len() {
            self.windows.resize_with(i + 1, VecDeque::new);
        }
        &mut self.windows[i]
    }

    /// Forgets what `device` sent.
    pub(super) fn forget(&mut self, device: DeviceId) {
        if let Some(w) = self.offset(device).and_then(|i| self.windows.get_mut(i)) {
            w.clear();
        }
    }

    /// Records `key` for `device`; `false` if it was there already.
    pub(super) fn insert(&mut self, device: DeviceId, key: (u64, u32), max: usize) -> bool {
        let key = Key::from(key);
        let seen = self.window_mut(device);
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
            seen.reserve_exact(growth(seen.len())); // many small windows
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
        let mut a = Accepted::default();
        let d = DeviceId(1);
        assert!(a.insert(d, (5, 0), 2));
        assert!(a.insert(d, (3, 1), 2), "an older id, not seen: accepted");
        assert!(!a.insert(d, (5, 0), 2));
        assert!(a.insert(d, (9, 0), 2), "the window now forgets (3, 1)");
        assert!(a.insert(d, (3, 1), 2), "forgotten, so accepted again");
        assert!(a.insert(DeviceId(0), (5, 0), 2), "another sender's window");
    }

    /// The span of windows grows up and down to reach each sender, keeps every window where
    /// it was, and forgets one sender alone.
    #[test]
    fn windows_span_the_senders_seen() {
        let mut a = Accepted::default();
        assert!(a.window(DeviceId(7)).is_none(), "nothing seen yet");
        assert!(a.insert(DeviceId(1000), (1, 0), 8));
        assert_eq!((a.first, a.windows.len()), (1000, 1));
        assert!(a.insert(DeviceId(1003), (2, 0), 8));
        assert_eq!(a.windows.len(), 4);
        // Downwards by at least the span's length at a time, never below device 0.
        assert!(a.insert(DeviceId(999), (3, 0), 8));
        assert_eq!((a.first, a.windows.len()), (996, 8));
        assert!(a.insert(DeviceId(2), (4, 0), 8));
        assert_eq!(a.first, 2);
        assert!(a.insert(DeviceId(0), (5, 0), 8));
        assert_eq!(a.first, 0);
        for (d, key) in [
            (1000, (1, 0)),
            (1003, (2, 0)),
            (999, (3, 0)),
            (2, (4, 0)),
            (0, (5, 0)),
        ] {
            assert!(
                !a.insert(DeviceId(d), key, 8),
                "device {d} still holds {key:?}"
            );
            assert_eq!(a.window(DeviceId(d)).map(|w| w.len()), Some(1));
        }
        assert_eq!(a.window(DeviceId(1)).map(|w| w.len()), Some(0));
        assert!(
            a.window(DeviceId(1004)).is_none(),
            "past the highest sender"
        );
        a.forget(DeviceId(1003));
        a.forget(DeviceId(5000)); // never seen: nothing to forget
        assert!(
            a.insert(DeviceId(1003), (2, 0), 8),
            "forgotten, so accepted again"
        );
        assert!(!a.insert(DeviceId(1000), (1, 0), 8), "the others are kept");
    }
}
