//! What crosses between nodes. A message crosses the interop gateway as a [`Submission`] (the
//! sender's device to its server: one ciphertext per recipient device) or a [`Delivery`] (the
//! server to one device: that device's ciphertext): routing fields and ciphertext, nothing
//! else. No content type, no plaintext, no profile data: metadata isolation is enforced by what
//! these types can hold (DESIGN.md, "The modeled system").

use crate::engine::SimTime;

pub mod media;
pub mod mimi;
pub use media::{BlobId, MediaFrame};
pub use mimi::MimiFrame;

/// Dense ids: `u32` newtypes that index the simulator's arenas.
macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u32);
        impl $name {
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

dense_id!(
    /// A user, across all providers.
    UserId
);
dense_id!(
    /// A device, across all users.
    DeviceId
);
dense_id!(
    /// A provider: 0 is the gatekeeper, partners follow.
    ProviderId
);
dense_id!(
    /// A group chat, across providers.
    GroupId
);

/// Which conversation a message belongs to, from the point of view of the two devices: the
/// 1:1 chat with a user, or a group. Sequence numbers and ordering are per (sender device,
/// conversation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Conversation {
    Direct(UserId),
    Group(GroupId),
}

/// A message, numbered in creation order across the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MsgId(pub u64);

/// The end-to-end encrypted payload: opaque bytes to every node but the two devices. `len` is
/// the modeled wire size (the same in real and modeled crypto, so both give the same run);
/// `bytes` is the real Signal message when crypto runs for real.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ciphertext {
    pub len: u32,
    pub bytes: Option<Box<[u8]>>,
    pub seal: SealInfo,
}

/// What a Signal message's header tells its receiver, which the wire format carries too: its
/// type (prekey message or not) and which identities it is between (bound by the MAC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SealInfo {
    pub prekey: bool,
    /// A Sender Key message (one ciphertext for a whole group): `target_generation` then holds
    /// the sender key's id, as the real message's header does.
    pub sender_key: bool,
    pub sender_generation: u32,
    pub target_generation: u32,
    /// An MLS message (the MIMI design): one ciphertext for every device of the room, so a
    /// 1:1 submission's per-device list carries it once on the wire; `target_generation` then
    /// holds the room's epoch.
    pub mls: bool,
    /// What the message carries (0: control, else 1 + the content kind's index), for the
    /// receiver's cost accounting only: the receiver learns it by decrypting; it is never on
    /// the wire (the live codec does not carry a `SealInfo`).
    pub content: u8,
}

/// A group message's recipients: each member with its sequence number.
pub type GroupMembers = std::sync::Arc<[(UserId, u32)]>;

/// The sequence number of a group member the sender could not reach when it wrote (third-party
/// chats off at either end): no number of the member's stream is used up, and the hub refuses
/// the member's copy even if the way opened since (the member's next message carries the number
/// this one would have had, so a copy of this one must not arrive too).
pub const SEQ_VOID: u32 = u32::MAX;

/// One recipient user's copy of a message: the message and the recipient's index among its
/// recipients (a group member's index in the message's member list; 0 for a 1:1 message, whose
/// one recipient is the peer). Frames about a copy (its delivery, ack, bounce, retry receipt)
/// and about a submission carry it. The ledger numbers member copies as messages of their own:
/// a group message reserves one id per member, and [`CopyId::ledger_id`] is the conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CopyId {
    pub msg: MsgId,
    pub member: u32,
}

impl CopyId {
    /// The copy of a 1:1 message (or a whole submission's first copy).
    pub fn direct(msg: MsgId) -> Self {
        CopyId { msg, member: 0 }
    }

    /// The ledger's id of this copy: the one place a member's index becomes a message id.
    pub fn ledger_id(self) -> MsgId {
        let id = self.msg.0.checked_add(u64::from(self.member));
        MsgId(id.expect("a member copy's ledger id fits in 64 bits"))
    }
}

/// A message from the sender's device to its server (through adapter and gateway for a
/// partner's interop traffic): routing fields and the ciphertexts the sender made, one for
/// each recipient device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub msg: MsgId,
    pub from_user: UserId,
    pub from_device: DeviceId,
    /// Whom it is addressed to, for routing and the servers' reachability check: the peer of a
    /// 1:1 message, the member a re-encryption is for, or for a group message the member whose
    /// provider decides the route (the device's `group_route_user`).
    pub to_user: UserId,
    /// Per (sender device, recipient user) sequence number, so that messages show in order; a
    /// group message's are per member, in [`GroupPayload::members`].
    pub seq: u32,
    /// When the sender's device created it (the sender's clock).
    pub sent_at: SimTime,
    pub payload: Payload,
}

/// A 1:1 message's ciphertexts, one per recipient device. Inline for one device (a user with
/// one device, no sync copies: most messages at scale), so that composing, keeping and resending
/// such a message allocates no list.
pub type PerDevice = smallvec::SmallVec<[(DeviceId, Ciphertext); 1]>;

/// What a submission carries, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A 1:1 message: one pairwise ciphertext per recipient device (the peer's devices, and the
    /// sender's other devices as sync copies).
    Direct(PerDevice),
    /// A group message, for every device of every member.
    Group(Box<GroupPayload>),
    /// One copy encrypted again for one device, which could not decrypt it (a retry receipt).
    Resend(Box<Resend>),
}

/// A group message as submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPayload {
    pub group: GroupId,
    /// The group's hub provider: under the MIMI design it orders the room and fans its
    /// messages out (the room's creator's provider); unused by the hub design.
    pub hub: ProviderId,
    /// The one Sender Key ciphertext every member device gets.
    pub shared: Ciphertext,
    /// The sender's Sender Key, sealed pairwise for each member device that lacks it.
    pub distributions: Vec<(DeviceId, Ciphertext)>,
    /// The members in the order of their index (see [`CopyId`]), each with its sequence number
    /// (numbered per sender device and recipient, as 1:1 messages are, so that a newcomer's
    /// stream starts at 0). The sender's server needs them for the fan-out, as every messaging
    /// server knows group membership. Shared, not copied, by the fan-out.
    pub members: GroupMembers,
}

/// A re-encryption of one copy for one device: what that device's delivery will carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resend {
    /// The re-encryption attempt, from 1 (a retry receipt asks for the next one).
    pub attempt: u8,
    /// The copy's recipient index (see [`CopyId`]).
    pub member: u32,
    /// The device it is for.
    pub device: DeviceId,
    /// The device's ciphertext: pairwise for a 1:1 message, the Sender Key one for a group's.
    pub ciphertext: Ciphertext,
    /// The group of a group copy.
    pub group: Option<GroupId>,
    /// A group copy's Sender Key, sealed anew for the device (its copy may be what it lacked).
    pub key_distribution: Option<Box<Ciphertext>>,
}

impl Resend {
    /// The [`Submission::resend_key`] of re-encryption `attempt` for `device`.
    pub fn key(attempt: u8, device: DeviceId) -> u32 {
        assert!(attempt >= 1, "a re-encryption is attempt 1 or later");
        assert!(device.0 < 0x00ff_ffff, "a device id fits the key's 24 bits");
        ((attempt as u32) << 24) | (device.0 + 1)
    }
}

impl Submission {
    /// The server's "sent" for this submission, to its device ([`Frame::SubmitAck`]).
    pub fn ack(&self) -> Frame {
        Frame::SubmitAck {
            copy: self.copy_id(),
            device: self.from_device,
            resend: self.resend_key(),
        }
    }

    /// The same routing fields with another payload (a MIMI hub's share for one follower).
    pub fn with_payload(&self, payload: Payload) -> Submission {
        Submission {
            msg: self.msg,
            from_user: self.from_user,
            from_device: self.from_device,
            to_user: self.to_user,
            seq: self.seq,
            sent_at: self.sent_at,
            payload,
        }
    }

    /// Which copy the submission is about: a re-encryption's copy, else the message itself
    /// (its first copy's id, which names a whole group message too).
    pub fn copy_id(&self) -> CopyId {
        match &self.payload {
            Payload::Resend(r) => {
                // A device re-encrypts a 1:1 copy only as member 0 (the span of its cached
                // message); the live wire carries no re-encryptions.
                assert!(
                    r.group.is_some() || r.member == 0,
                    "a 1:1 copy's re-encryption is member 0"
                );
                CopyId {
                    msg: self.msg,
                    member: r.member,
                }
            }
            Payload::Direct(_) | Payload::Group(_) => CopyId::direct(self.msg),
        }
    }

    /// Which submission of a copy this is: 0 for the original, else the re-encryption attempt
    /// and the one device it is for (two devices may ask for the same message).
    pub fn resend_key(&self) -> u32 {
        match &self.payload {
            Payload::Resend(r) => Resend::key(r.attempt, r.device),
            Payload::Direct(_) | Payload::Group(_) => 0,
        }
    }

    /// The key a server remembers an accepted submission by, to refuse it again: the copy's
    /// ledger id (a re-encryption is a new submission of the same copy) and [`Self::resend_key`].
    pub fn dedup_key(&self) -> (u64, u32) {
        (self.copy_id().ledger_id().0, self.resend_key())
    }

    /// The device a submission is about: a re-encryption's target, else the sender's.
    pub fn device(&self) -> DeviceId {
        match &self.payload {
            Payload::Resend(r) => r.device,
            Payload::Direct(_) | Payload::Group(_) => self.from_device,
        }
    }

    /// Every ciphertext it carries.
    pub fn ciphertexts(&self) -> impl Iterator<Item = &Ciphertext> {
        let (one, many): (Option<&Ciphertext>, &[(DeviceId, Ciphertext)]) = match &self.payload {
            Payload::Direct(per_device) => {
                assert!(
                    !per_device.is_empty(),
                    "a 1:1 message goes to a device at least"
                );
                if per_device[0].1.seal.mls {
                    // One MLS ciphertext serves every device of the room.
                    (Some(&per_device[0].1), &[][..])
                } else {
                    (None, &per_device[..])
                }
            }
            Payload::Group(g) => {
                assert!(
                    !g.members.is_empty(),
                    "a group message goes to a member at least"
                );
                (Some(&g.shared), &g.distributions)
            }
            Payload::Resend(r) => (Some(&r.ciphertext), &[]),
        };
        let distribution = match &self.payload {
            Payload::Resend(r) => {
                let key = r.key_distribution.as_deref();
                assert!(
                    key.is_none() || r.group.is_some(),
                    "a key goes with a group copy"
                );
                key
            }
            Payload::Direct(_) | Payload::Group(_) => None,
        };
        one.into_iter()
            .chain(many.iter().map(|(_, c)| c))
            .chain(distribution)
    }

    /// Ciphertext bytes on the wire.
    pub fn payload_len(&self) -> u32 {
        sum_lens(self.ciphertexts())
    }
}

/// A copy on its way from the server to one device: routing fields and that device's
/// ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub copy: CopyId,
    pub from_user: UserId,
    pub from_device: DeviceId,
    /// The recipient user (a group copy's member; the peer for a sync copy of a 1:1 message,
    /// which belongs to that chat).
    pub to_user: UserId,
    /// The one device the copy is for.
    pub to_device: DeviceId,
    /// The sender's sequence number in this conversation, for this recipient.
    pub seq: u32,
    /// Re-encryption attempt after a retry receipt (0: the original).
    pub retry: u8,
    /// When the sender's device created it (the sender's clock).
    pub sent_at: SimTime,
    /// This device's ciphertext: pairwise for a 1:1 message, the Sender Key one for a group's.
    pub ciphertext: Ciphertext,
    /// The group of a group message.
    pub group: Option<GroupId>,
    /// The sender's Sender Key sealed pairwise for this device, when it lacked it.
    pub key_distribution: Option<Box<Ciphertext>>,
}

impl Delivery {
    /// The conversation this copy belongs to, seen from its sender and its recipient.
    pub fn conversation(&self) -> Conversation {
        match self.group {
            Some(g) => Conversation::Group(g),
            None => Conversation::Direct(self.to_user),
        }
    }

    /// Every ciphertext it carries.
    pub fn ciphertexts(&self) -> impl Iterator<Item = &Ciphertext> {
        assert!(
            self.key_distribution.is_none() || self.group.is_some(),
            "a key distribution rides with a group copy only"
        );
        std::iter::once(&self.ciphertext).chain(self.key_distribution.as_deref())
    }

    /// Ciphertext bytes on the wire.
    pub fn payload_len(&self) -> u32 {
        sum_lens(self.ciphertexts())
    }
}

/// The modeled lengths of `cts`, added up.
fn sum_lens<'a>(cts: impl Iterator<Item = &'a Ciphertext>) -> u32 {
    let total = cts.fold(0u64, |n, c| n + u64::from(c.len));
    u32::try_from(total).expect("a frame's ciphertexts fit in 4 GiB")
}

/// Fixed bytes of routing fields on the wire, on top of the ciphertext.
pub const ENVELOPE_OVERHEAD_BYTES: u32 = 64;
/// Bytes of a control frame (ack, connect, receipt).
pub const CONTROL_FRAME_BYTES: u32 = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptKind {
    Delivered,
    Read,
}

/// Why a server refused a message for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The recipient (or the sender) has not enabled third-party chats.
    Unreachable,
}

/// Every frame a node can send to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Device -> its server (through adapter and gateway for a partner's interop traffic).
    Submit(Box<Submission>),
    /// Server -> sending device: the server has the submission ("sent", one tick), named by
    /// [`Submission::copy_id`] and [`Submission::resend_key`].
    SubmitAck {
        copy: CopyId,
        device: DeviceId,
        resend: u32,
    },
    /// Server -> sending device: the submission ([`Submission::copy_id`]) cannot be delivered,
    /// and why.
    Refused {
        copy: CopyId,
        device: DeviceId,
        to_user: UserId,
        reason: Refusal,
    },
    /// Server -> recipient device (fan-out copy).
    Deliver(Box<Delivery>),
    /// Recipient device -> server: this device has it.
    DeliverAck {
        copy: CopyId,
        device: DeviceId,
        from_user: UserId,
        to_user: UserId,
    },
    /// Device -> server: online now (connection `epoch`, counted per device), drain my queue.
    /// The epoch lets a server tell a late frame of an old connection from the current one.
    Connect { device: DeviceId, epoch: u32 },
    /// Server -> device: the connection is up (the device stops retrying its Connect).
    ConnectAck { device: DeviceId, epoch: u32 },
    /// Device -> server: connection `epoch` is closing.
    Disconnect { device: DeviceId, epoch: u32 },
    /// Chat server -> partner server: wake this device.
    PushRequest { device: DeviceId },
    /// Gateway -> chat server: this fan-out copy cannot cross (the recipient switched
    /// third-party chats off while it was queued).
    Bounced { copy: CopyId, device: DeviceId },
    /// Gateway -> chat server: the partner's shaper is full; hold off this device until
    /// `until`, then resend in order (backpressure).
    Throttle { device: DeviceId, until: SimTime },
    /// A push notification (through the platform's push service) that wakes an offline device.
    Push { device: DeviceId },
    /// Recipient device -> the sender's device (through the servers, best effort): "I could
    /// not decrypt `copy`; encrypt it again" (attempt `attempt`, at most five).
    RetryReceipt {
        copy: CopyId,
        requester: DeviceId,
        sender: DeviceId,
        sender_user: UserId,
        attempt: u8,
    },
    /// A delivery or read receipt, routed back to the sender's devices; `msg` is the ledger's
    /// id of the copy read.
    Receipt {
        msg: MsgId,
        kind: ReceiptKind,
        from_user: UserId,
        to_user: UserId,
        to_device: Option<DeviceId>,
    },
    /// A media transfer between a device and a media store (see [`media`]).
    Media(MediaFrame),
    /// Between two providers' servers under the MIMI design (see [`mimi`]).
    Mimi(MimiFrame),
}

impl Frame {
    /// Bytes on the wire, for bandwidth and byte counters.
    pub fn wire_bytes(&self) -> u32 {
        let payload = match self {
            Frame::Submit(s) => s.payload_len(),
            Frame::Deliver(d) => d.payload_len(),
            Frame::Media(m) => return m.wire_bytes(),
            Frame::Mimi(m) => match m.payload_len() {
                Some(len) => len,
                None => return CONTROL_FRAME_BYTES,
            },
            _ => return CONTROL_FRAME_BYTES,
        };
        let bytes = ENVELOPE_OVERHEAD_BYTES.checked_add(payload);
        bytes.expect("a message frame's size fits in 32 bits")
    }

    /// Whether the frame carries a message payload (counted against rate limits and
    /// charged per-message CPU).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            Frame::Submit(_) | Frame::Deliver(_) | Frame::Mimi(MimiFrame::Fanout { .. })
        )
    }

    /// The message a frame is about, if any, as the ledger numbers it (a group member's copy
    /// by its own id).
    pub fn msg(&self) -> Option<MsgId> {
        let msg = match self {
            Frame::Submit(s) => Some(s.copy_id().ledger_id()),
            Frame::Deliver(d) => Some(d.copy.ledger_id()),
            Frame::SubmitAck { copy, .. }
            | Frame::Refused { copy, .. }
            | Frame::DeliverAck { copy, .. }
            | Frame::Bounced { copy, .. }
            | Frame::RetryReceipt { copy, .. } => Some(copy.ledger_id()),
            Frame::Receipt { msg, .. } => Some(*msg),
            Frame::Mimi(MimiFrame::Fanout { submission, .. }) => {
                Some(submission.copy_id().ledger_id())
            }
            Frame::Mimi(MimiFrame::FanoutAck { .. }) => None,
            Frame::Connect { .. }
            | Frame::Throttle { .. }
            | Frame::ConnectAck { .. }
            | Frame::Disconnect { .. }
            | Frame::PushRequest { .. }
            | Frame::Push { .. }
            | Frame::Media(_) => None,
        };
        assert!(
            msg.is_some() || !self.is_message(),
            "every message frame names its message"
        );
        msg
    }

    /// The device a frame is about, if any.
    pub fn device(&self) -> Option<DeviceId> {
        let device = match self {
            Frame::Submit(s) => Some(s.device()),
            Frame::Deliver(d) => Some(d.to_device),
            Frame::SubmitAck { device, .. }
            | Frame::Refused { device, .. }
            | Frame::DeliverAck { device, .. }
            | Frame::Bounced { device, .. }
            | Frame::Connect { device, .. }
            | Frame::Throttle { device, .. }
            | Frame::ConnectAck { device, .. }
            | Frame::Disconnect { device, .. }
            | Frame::PushRequest { device }
            | Frame::Push { device } => Some(*device),
            Frame::Receipt { to_device, .. } => *to_device,
            Frame::RetryReceipt { sender, .. } => Some(*sender),
            Frame::Media(m) => Some(m.device()),
            Frame::Mimi(MimiFrame::Fanout { submission, .. }) => Some(submission.device()),
            Frame::Mimi(MimiFrame::FanoutAck { .. }) => None,
        };
        assert!(
            device.is_some()
                || matches!(
                    self,
                    Frame::Receipt { .. } | Frame::Mimi(MimiFrame::FanoutAck { .. })
                ),
            "every frame but a receipt for a whole user and a provider's ack names a device"
        );
        device
    }

    /// A small stable code per frame kind, for the run fingerprint.
    pub fn kind_code(&self) -> u64 {
        let code = match self {
            Frame::Submit(_) => 1,
            Frame::SubmitAck { .. } => 2,
            Frame::Refused { .. } => 3,
            Frame::Deliver(_) => 4,
            Frame::DeliverAck { .. } => 5,
            Frame::Connect { .. } => 6,
            Frame::Disconnect { .. } => 7,
            Frame::PushRequest { .. } => 8,
            Frame::Receipt { .. } => 9,
            Frame::Bounced { .. } => 10,
            Frame::Push { .. } => 11,
            Frame::ConnectAck { .. } => 12,
            Frame::Throttle { .. } => 13,
            Frame::RetryReceipt { .. } => 14,
            Frame::Media(_) => 15,
            Frame::Mimi(MimiFrame::Fanout { .. }) => 16,
            Frame::Mimi(MimiFrame::FanoutAck { .. }) => 17,
        };
        assert!((1..=17).contains(&code), "a frame kind code is 1 to 17");
        code
    }
}

#[cfg(test)]
mod tests;
