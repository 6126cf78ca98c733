//! The in-order check's memory: per receiving device, the highest sequence number shown from
//! each stream (sender device and conversation).

use crate::collections::vec_map::VecMap;
use crate::wire::{Conversation, DeviceId};

/// A device hears from a handful of streams: a small sorted map per device takes a third less
/// memory than one hash table of every stream of a run (ten million at a million users), and
/// grows a few entries at a time instead of rehashing hundreds of megabytes at once, which the
/// simulation waited on.
#[derive(Debug, Default)]
pub struct StreamOrder {
    /// Indexed by the receiving device.
    last: Vec<VecMap<(DeviceId, Conversation), u32>>,
}

impl StreamOrder {
    /// A cache hint for `device`'s map itself (its place in the per-device list), asked for
    /// some events ahead; [`Self::prefetch_marks`] then asks for its entries.
    pub fn prefetch_map(&self, device: DeviceId) {
        if let Some(map) = self.last.get(device.index()) {
            crate::engine::prefetch::prefetch(map);
        }
    }

    /// A cache hint for the entries of `device`'s map (which the binary search reads).
    pub fn prefetch_marks(&self, device: DeviceId) {
        if let Some(map) = self.last.get(device.index()) {
            map.prefetch();
        }
    }

    /// `seq` of the stream `(from, conversation)` shows on `device`: whether it shows out of
    /// order (after a higher number of its stream). A `late` one fills its placeholder at its
    /// place and is never out of order. A number not out of order becomes the stream's mark
    /// (a late fill's too).
    pub fn shown(
        &mut self,
        device: DeviceId,
        from: DeviceId,
        conversation: Conversation,
        seq: u32,
        late: bool,
    ) -> bool {
        let i = device.index();
        if i >= self.last.len() {
            self.last.resize_with(i + 1, VecMap::new);
        }
        let last = self.last[i].get_or_insert_with((from, conversation), || seq);
        if seq < *last && !late {
            return true;
        }
        *last = seq;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::UserId;

    #[test]
    fn a_lower_number_after_a_higher_one_is_out_of_order_unless_it_fills_its_place() {
        let mut o = StreamOrder::default();
        let (d, from, c) = (DeviceId(9), DeviceId(2), Conversation::Direct(UserId(1)));
        assert!(!o.shown(d, from, c, 0, false));
        assert!(!o.shown(d, from, c, 2, false));
        assert!(o.shown(d, from, c, 1, false), "1 after 2");
        assert!(!o.shown(d, from, c, 1, true), "a late fill is at its place");
        assert!(
            !o.shown(d, from, c, 1, false),
            "the late fill is the mark now"
        );
        assert!(o.shown(d, from, c, 0, false), "0 after 1");
        assert!(!o.shown(d, from, c, 3, false));
        // Other streams and other devices are apart.
        assert!(!o.shown(d, DeviceId(3), c, 0, false));
        assert!(!o.shown(DeviceId(1), from, c, 0, false));
        assert!(!o.shown(d, from, Conversation::Direct(UserId(5)), 0, false));
    }
}
