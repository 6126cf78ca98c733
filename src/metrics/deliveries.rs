//! Deliveries counted at two grains, because they answer different questions. A message is
//! delivered once, at the instant the last of its recipient's expected devices shows it (what
//! `delivered` counts: what a user experiences); a device delivery is each recipient device's
//! first display of its copy (what servers and links carry, and what the latency histograms
//! sample). A message to a user with three devices is one of the first and three of the second;
//! calling both "delivered" made a throughput of copies read as one of messages.
//!
//! Both grains are counted here, from the same ledger events, per timeseries interval and within
//! the send window, so that a rate's mean and its peak cover the same window: the drain after
//! the senders stop only delivers the backlog, and counting it against the send window inflated
//! the mean while the peak could come from a drain row.

use crate::engine::SimTime;

/// A number of deliveries at both grains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deliveries {
    /// Messages shown on every expected device of their recipient.
    pub messages: u64,
    /// First displays of a copy on one of the recipient's devices (sync copies on the sender's
    /// other devices and duplicates are not deliveries).
    pub devices: u64,
}

/// A ledger's running delivery counts.
#[derive(Clone, Debug)]
pub struct DeliveryCounts {
    /// Since the run began (`messages` equals the summary's `delivered`).
    pub total: Deliveries,
    /// Shown at or before the end of the send window: the numerator of the mean rates.
    pub in_window: Deliveries,
    /// Since the last timeseries row ([`DeliveryCounts::take_interval`]).
    interval: Deliveries,
    /// The end of the send window; `SimTime::MAX` (everything counts) until the driver sets it.
    window_end: SimTime,
}

impl Default for DeliveryCounts {
    fn default() -> Self {
        DeliveryCounts {
            total: Deliveries::default(),
            in_window: Deliveries::default(),
            interval: Deliveries::default(),
            window_end: SimTime::MAX,
        }
    }
}

impl DeliveryCounts {
    /// Deliveries after `end` still count in the totals and the intervals, not in `in_window`.
    pub fn set_window_end(&mut self, end: SimTime) {
        self.window_end = end;
    }

    /// A recipient device showed its copy for the first time.
    pub fn device(&mut self, now: SimTime) {
        self.total.devices += 1;
        self.interval.devices += 1;
        if now <= self.window_end {
            self.in_window.devices += 1;
        }
    }

    /// A message became shown on every expected device (called once per message).
    pub fn message(&mut self, now: SimTime) {
        self.total.messages += 1;
        self.interval.messages += 1;
        if now <= self.window_end {
            self.in_window.messages += 1;
        }
    }

    /// The deliveries since the previous call (one timeseries interval).
    pub fn take_interval(&mut self) -> Deliveries {
        std::mem::take(&mut self.interval)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::SimTime;
    use crate::metrics::ledger::{Ledger, LedgerEvent, NewMessage};
    use crate::metrics::PathKind;
    use crate::scenario::ContentKind;
    use crate::wire::{Conversation, DeviceId, MsgId, UserId};

    /// User 1 has devices 10, 11 and 12 (slots 0..3); user 0 sends from device 0.
    fn owner(d: DeviceId) -> (UserId, u32) {
        if d.0 >= 10 {
            (UserId(1), d.0 - 10)
        } else {
            (UserId(0), d.0)
        }
    }

    fn message(l: &mut Ledger, devices: u8) -> MsgId {
        let msg = l.create(
            SimTime::ZERO,
            NewMessage {
                from_user: UserId(0),
                from_device: DeviceId(0),
                to_user: UserId(1),
                content: ContentKind::Text,
                path: PathKind::Native,
                bytes: 10,
                digest: 1,
            },
        );
        let accepted = LedgerEvent::Accepted {
            msg,
            devices,
            sync: 0b10,
        };
        l.apply(SimTime::ZERO, &accepted, owner);
        msg
    }

    fn show(l: &mut Ledger, at_s: u64, msg: MsgId, device: u32) {
        let shown = LedgerEvent::Shown {
            msg,
            device: DeviceId(device),
            from_device: DeviceId(0),
            conversation: Conversation::Direct(UserId(0)),
            seq: msg.0 as u32,
            digest: None,
            late: false,
        };
        l.apply(SimTime::from_secs(at_s), &shown, owner);
    }

    #[test]
    fn a_message_counts_once_however_many_devices_show_it() {
        let mut l = Ledger::new();
        let msg = message(&mut l, 0b111);
        show(&mut l, 1, msg, 10);
        show(&mut l, 1, msg, 1); // a sync copy on the sender's other device
        show(&mut l, 2, msg, 11);
        assert_eq!(
            l.deliveries.total.messages, 0,
            "one device still to show it"
        );
        show(&mut l, 3, msg, 12);
        show(&mut l, 4, msg, 12); // a duplicate
        let d = l.deliveries.total;
        assert_eq!((d.messages, d.devices), (1, 3));
        assert_eq!(
            l.counts.shown, 3,
            "device deliveries are the ledger's shown copies"
        );
    }

    #[test]
    fn intervals_and_the_window_split_the_same_deliveries() {
        let mut l = Ledger::new();
        l.deliveries.set_window_end(SimTime::from_secs(5));
        let a = message(&mut l, 0b11);
        let b = message(&mut l, 0b01);
        show(&mut l, 1, a, 10);
        show(&mut l, 2, b, 10);
        let first = l.deliveries.take_interval();
        assert_eq!((first.messages, first.devices), (1, 2));
        show(&mut l, 6, a, 11); // completes `a` in the drain
        let second = l.deliveries.take_interval();
        assert_eq!((second.messages, second.devices), (1, 1));
        let w = l.deliveries.in_window;
        assert_eq!(
            (w.messages, w.devices),
            (1, 2),
            "the drain is not in the window"
        );
        assert_eq!(l.deliveries.total.messages, 2);
    }
}
