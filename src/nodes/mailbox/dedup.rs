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
    pub(super) windows: Vec<VecDeque<(u64, u32)>>,
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
