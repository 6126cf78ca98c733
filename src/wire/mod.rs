//! What crosses between nodes. The [`Envelope`] is the type that crosses the interop gateway:
//! routing fields and ciphertext, nothing else. No content type, no plaintext, no profile data:
//! metadata isolation is enforced by what this type can hold (DESIGN.md, "The modeled system").

use crate::engine::SimTime;

pub mod media;
pub use media::{BlobId, MediaFrame};

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
}

/// A group message's recipients: each member with its sequence number.
pub type GroupMembers = std::sync::Arc<[(UserId, u32)]>;

/// A message in transit: routing fields and ciphertext only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub msg: MsgId,
    pub from_user: UserId,
    pub from_device: DeviceId,
    pub to_user: UserId,
    /// Set by the server's fan-out; `None` on the way from the sender to its server.
    pub to_device: Option<DeviceId>,
    /// Per (sender device, recipient user) sequence number, so that messages show in order.
    pub seq: u32,
    /// Re-encryption attempt after a retry receipt (0: the original).
    pub retry: u8,
    /// When the sender's device created it (the sender's clock).
    pub sent_at: SimTime,
    /// The delivered copy's ciphertext (on `Deliver`).
    pub ciphertext: Ciphertext,
    /// One ciphertext per recipient device (on `Submit`: the sender encrypts for each device).
    /// In a group message: the pairwise Sender Key distributions for the devices that lack the
    /// sender's current key (on `Deliver`: the one for this device, if any), while
    /// `ciphertext` is the one Sender Key ciphertext every member device gets.
    pub per_device: Vec<(DeviceId, Ciphertext)>,
    /// The group a message is for (the server fans it out to the members).
    pub group: Option<GroupId>,
    /// On a group `Submit`: the members it goes to, in the order of their message ids (member
    /// `k` gets message id `msg + k`), each with its sequence number (numbered per sender
    /// device and recipient, as 1:1 messages are, so that a newcomer's stream starts at 0).
    /// The sender's server needs them for the fan-out, as every messaging server knows group
    /// membership. Shared, not copied, by the fan-out.
    pub members: Option<GroupMembers>,
}

impl Envelope {
    /// Which submission of a message this is: 0 for the original, else the re-encryption
    /// attempt and the one device it is for (two devices may ask for the same message).
    pub fn copy_key(&self) -> u32 {
        match (self.retry, self.to_device) {
            (0, _) | (_, None) => 0,
            (r, Some(d)) => ((r as u32) << 24) | ((d.0 + 1) & 0x00ff_ffff),
        }
    }

    /// An envelope with only defaults, to fill with `..` where a few fields matter.
    pub fn ack_stub() -> Envelope {
        Envelope {
            msg: MsgId(0),
            from_user: UserId(0),
            from_device: DeviceId(0),
            to_user: UserId(0),
            to_device: None,
            seq: 0,
            retry: 0,
            sent_at: SimTime::ZERO,
            ciphertext: Ciphertext::default(),
            per_device: Vec::new(),
            group: None,
            members: None,
        }
    }

    /// The conversation this copy belongs to, seen from its sender and its recipient.
    pub fn conversation(&self) -> Conversation {
        match self.group {
            Some(g) => Conversation::Group(g),
            None => Conversation::Direct(self.to_user),
        }
    }

    /// Ciphertext bytes on the wire.
    pub fn payload_len(&self) -> u32 {
        self.ciphertext.len + self.per_device.iter().map(|(_, c)| c.len).sum::<u32>()
    }
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
    Submit(Box<Envelope>),
    /// Server -> sending device: the server has the message ("sent", one tick). `copy` names
    /// which submission of it (see [`Envelope::copy_key`]).
    SubmitAck {
        msg: MsgId,
        device: DeviceId,
        copy: u32,
    },
    /// Server -> sending device: the message cannot be delivered, and why.
    Refused {
        msg: MsgId,
        device: DeviceId,
        to_user: UserId,
        reason: Refusal,
    },
    /// Server -> recipient device (fan-out copy).
    Deliver(Box<Envelope>),
    /// Recipient device -> server: this device has it.
    DeliverAck {
        msg: MsgId,
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
    Bounced { msg: MsgId, device: DeviceId },
    /// Gateway -> chat server: the partner's shaper is full; hold off this device until
    /// `until`, then resend in order (backpressure).
    Throttle { device: DeviceId, until: SimTime },
    /// A push notification (through the platform's push service) that wakes an offline device.
    Push { device: DeviceId },
    /// Recipient device -> the sender's device (through the servers, best effort): "I could
    /// not decrypt `msg`; encrypt it again" (attempt `attempt`, at most five).
    RetryReceipt {
        msg: MsgId,
        requester: DeviceId,
        sender: DeviceId,
        sender_user: UserId,
        attempt: u8,
    },
    /// A delivery or read receipt, routed back to the sender's devices.
    Receipt {
        msg: MsgId,
        kind: ReceiptKind,
        from_user: UserId,
        to_user: UserId,
        to_device: Option<DeviceId>,
    },
    /// A media transfer between a device and a media store (see [`media`]).
    Media(MediaFrame),
}

impl Frame {
    /// Bytes on the wire, for bandwidth and byte counters.
    pub fn wire_bytes(&self) -> u32 {
        match self {
            Frame::Submit(e) | Frame::Deliver(e) => ENVELOPE_OVERHEAD_BYTES + e.payload_len(),
            Frame::Media(m) => m.wire_bytes(),
            _ => CONTROL_FRAME_BYTES,
        }
    }

    /// Whether the frame carries a message payload (counted against rate limits and
    /// charged per-message CPU).
    pub fn is_message(&self) -> bool {
        matches!(self, Frame::Submit(_) | Frame::Deliver(_))
    }

    /// The message a frame is about, if any.
    pub fn msg(&self) -> Option<MsgId> {
        match self {
            Frame::Submit(e) | Frame::Deliver(e) => Some(e.msg),
            Frame::SubmitAck { msg, .. }
            | Frame::Refused { msg, .. }
            | Frame::DeliverAck { msg, .. }
            | Frame::Bounced { msg, .. }
            | Frame::RetryReceipt { msg, .. }
            | Frame::Receipt { msg, .. } => Some(*msg),
            Frame::Connect { .. }
            | Frame::Throttle { .. }
            | Frame::ConnectAck { .. }
            | Frame::Disconnect { .. }
            | Frame::PushRequest { .. }
            | Frame::Push { .. }
            | Frame::Media(_) => None,
        }
    }

    /// The device a frame is about, if any.
    pub fn device(&self) -> Option<DeviceId> {
        match self {
            Frame::Submit(e) | Frame::Deliver(e) => e.to_device.or(Some(e.from_device)),
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
        }
    }

    /// A small stable code per frame kind, for the run fingerprint.
    pub fn kind_code(&self) -> u64 {
        match self {
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
        }
    }
}
