//! The buffers a message leaves behind at each hop, kept for the next message: the boxes of
//! the frames a node takes apart, and the outbox buffers of devices whose outbox emptied (see
//! [`Spares`] for why).
//!
//! A submission and a per-device delivery each travel boxed (so that a frame, and every output
//! and event that holds one, stays small): the device boxes its submission, the server opens
//! it; the mailbox boxes a delivery, the device opens it.

use crate::collections::spares::Spares;
use crate::engine::SimTime;
use crate::wire::{
    Ciphertext, CopyId, Delivery, DeviceId, MsgId, Payload, PerDevice, Submission, UserId,
};
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct FrameBoxes {
    submissions: Spares<Box<Submission>>,
    deliveries: Spares<Box<Delivery>>,
    outboxes: Spares<VecDeque<Submission>>,
}

impl FrameBoxes {
    /// `s` in a box, a kept one if there is one.
    pub fn submission(&mut self, s: &Submission) -> Box<Submission> {
        self.submissions.boxed(s)
    }

    /// The submission out of its box, which is kept for the next one.
    pub fn open_submission(&mut self, b: Box<Submission>) -> Submission {
        self.submissions.open(b, vacant_submission())
    }

    /// `d` in a box, a kept one if there is one.
    pub fn delivery(&mut self, d: &Delivery) -> Box<Delivery> {
        self.deliveries.boxed(d)
    }

    /// The delivery out of its box, which is kept for the next one.
    pub fn open_delivery(&mut self, b: Box<Delivery>) -> Delivery {
        self.deliveries.open(b, vacant_delivery())
    }

    /// An empty outbox with room for at least one submission.
    pub fn outbox(&mut self) -> VecDeque<Submission> {
        self.outboxes.queue()
    }

    /// Keeps an emptied outbox's buffer for the next device that needs one.
    pub fn keep_outbox(&mut self, outbox: VecDeque<Submission>) {
        self.outboxes.keep_queue(outbox)
    }
}

/// What a kept box holds between two frames: no message, no ciphertext, nothing on the heap.
fn vacant_submission() -> Submission {
    Submission {
        msg: MsgId(0),
        from_user: UserId(0),
        from_device: DeviceId(0),
        to_user: UserId(0),
        seq: 0,
        sent_at: SimTime::ZERO,
        payload: Payload::Direct(PerDevice::new()),
    }
}

fn vacant_delivery() -> Delivery {
    Delivery {
        copy: CopyId::default(),
        from_user: UserId(0),
        from_device: DeviceId(0),
        to_user: UserId(0),
        to_device: DeviceId(0),
        seq: 0,
        retry: 0,
        sent_at: SimTime::ZERO,
        ciphertext: Ciphertext::default(),
        group: None,
        key_distribution: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(msg: u64) -> Submission {
        Submission {
            msg: MsgId(msg),
            to_user: UserId(7),
            ..vacant_submission()
        }
    }

    #[test]
    fn a_box_given_back_carries_the_next_value_and_only_it() {
        let mut boxes = FrameBoxes::default();
        let first = boxes.submission(&submission(1));
        let first_at: *const Submission = &*first;
        assert_eq!(boxes.open_submission(first), submission(1));
        let second = boxes.submission(&submission(2));
        assert_eq!(&*second as *const Submission, first_at, "the box is reused");
        assert_eq!(*second, submission(2));
        // Two boxes out at once: the second is a new one.
        let third = boxes.submission(&submission(3));
        assert_ne!(&*third as *const Submission, first_at);
        assert_eq!(*third, submission(3));
    }

    #[test]
    fn no_more_than_kept_max_boxes_are_kept() {
        let mut boxes = FrameBoxes::default();
        let out: Vec<_> = (0..40).map(|i| boxes.submission(&submission(i))).collect();
        for (i, b) in out.into_iter().enumerate() {
            assert_eq!(boxes.open_submission(b).msg, MsgId(i as u64));
        }
        assert_eq!(boxes.submissions.len(), 32);
        let d = vacant_delivery();
        let b = boxes.delivery(&d);
        assert_eq!(boxes.open_delivery(b), d);
        assert_eq!(boxes.deliveries.len(), 1);
        let outbox = boxes.outbox();
        assert!(outbox.capacity() >= 1);
        boxes.keep_outbox(outbox);
        assert_eq!(boxes.outboxes.len(), 1);
    }
}
