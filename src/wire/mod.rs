//! What crosses between nodes. The [`Envelope`] is the type that crosses the interop gateway:
//! routing fields and ciphertext, nothing else. No content type, no plaintext, no profile data:
//! metadata isolation is enforced by what this type can hold (DESIGN.md, "The modeled system").

use crate::engine::SimTime;

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

/// A message, numbered in creation order across the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MsgId(pub u64);

/// The end-to-end encrypted payload. In this layer it is opaque bytes: a sealed length, and the
/// bytes themselves when crypto runs for real (`None` when only sizes are modeled).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Ciphertext {
    pub len: u32,
    pub bytes: Option<Box<[u8]>>,
}

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
    /// When the sender's device created it (the sender's clock).
    pub sent_at: SimTime,
    pub ciphertext: Ciphertext,
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
    Submit(Envelope),
    /// Server -> sending device: the server has the message ("sent", one tick).
    SubmitAck { msg: MsgId, device: DeviceId },
    /// Server -> sending device: the message cannot be delivered, and why.
    Refused {
        msg: MsgId,
        device: DeviceId,
        to_user: UserId,
        reason: Refusal,
    },
    /// Server -> recipient device (fan-out copy).
    Deliver(Envelope),
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
    /// A delivery or read receipt, routed back to the sender's devices.
    Receipt {
        msg: MsgId,
        kind: ReceiptKind,
        from_user: UserId,
        to_user: UserId,
        to_device: Option<DeviceId>,
    },
}

impl Frame {
    /// Bytes on the wire, for bandwidth and byte counters.
    pub fn wire_bytes(&self) -> u32 {
        match self {
            Frame::Submit(e) | Frame::Deliver(e) => ENVELOPE_OVERHEAD_BYTES + e.ciphertext.len,
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
            | Frame::Receipt { msg, .. } => Some(*msg),
            Frame::Connect { .. }
            | Frame::Throttle { .. }
            | Frame::ConnectAck { .. }
            | Frame::Disconnect { .. }
            | Frame::PushRequest { .. }
            | Frame::Push { .. } => None,
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
        }
    }
}
