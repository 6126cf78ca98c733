//! What nodes report to the ledger: one event per step of a message's life at a node or a
//! device (accepted, crossed the gateway, stored offline, shown, ...), and the reasons a copy
//! could not be decrypted or re-encrypted.

use crate::wire::{Conversation, DeviceId, MsgId, ReceiptKind, UserId};

/// What nodes report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// The sender's server has it (first time only), with the devices it is for: a bit per
    /// device slot of the recipient (all of them, but the sending device on the sender's own
    /// other devices), and `sync`, the sender's other devices that get a copy of a 1:1 message.
    Accepted {
        msg: MsgId,
        devices: u8,
        sync: u8,
    },
    /// Refused for good: the recipient (or sender) has not enabled third-party chats.
    Refused {
        msg: MsgId,
        to_user: UserId,
    },
    CrossedGateway {
        msg: MsgId,
    },
    StoredOffline {
        msg: MsgId,
        device: DeviceId,
    },
    /// Shown to the user on `device`; `digest` of the decrypted plaintext (real crypto), `late`
    /// when it fills the "waiting for this message" placeholder at its place.
    Shown {
        msg: MsgId,
        device: DeviceId,
        from_device: DeviceId,
        conversation: Conversation,
        seq: u32,
        digest: Option<u64>,
        late: bool,
    },
    /// The device could not decrypt its copy (a placeholder shows; a retry receipt went out).
    DecryptFailed {
        msg: MsgId,
        device: DeviceId,
        reason: DecryptReason,
    },
    /// The sender could not answer a retry receipt.
    RetryRefused {
        msg: MsgId,
        device: DeviceId,
        reason: RetryRefusal,
    },
    DuplicateSuppressed {
        msg: MsgId,
        device: DeviceId,
    },
    /// A queued copy that could no longer cross (the recipient switched third-party chats off).
    DeviceUnreachable {
        msg: MsgId,
        device: DeviceId,
    },
    Expired {
        msg: MsgId,
        device: DeviceId,
    },
    TamperDetected {
        msg: MsgId,
        device: DeviceId,
    },
    Read {
        msg: MsgId,
    },
    ReceiptSeen {
        msg: MsgId,
        kind: ReceiptKind,
        device: DeviceId,
    },
    /// When the drain ended, a frame of this message was still on its way to `at` (on a link
    /// or in its CPU queue): it was late, not lost. Recorded by the driver once, at the end.
    QueuedAtEnd {
        msg: MsgId,
        at: QueuedAt,
    },
}

/// Where a message's frame still was when the drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueuedAt {
    Gateway,
    ChatServer,
    Adapter,
    PartnerServer,
    /// On the last link, to a device.
    Device,
}

impl QueuedAt {
    /// How the verdict names it: "the gateway's queue was still draining".
    pub fn label(self) -> &'static str {
        match self {
            QueuedAt::Gateway => "the gateway",
            QueuedAt::ChatServer => "the chat server",
            QueuedAt::Adapter => "an adapter",
            QueuedAt::PartnerServer => "a partner server",
            QueuedAt::Device => "a device's link",
        }
    }
}

impl LedgerEvent {
    /// The message an event is about, to rename it (the live driver maps wire ids to ledger ids).
    pub fn msg_mut(&mut self) -> &mut MsgId {
        match self {
            LedgerEvent::Accepted { msg, .. }
            | LedgerEvent::Refused { msg, .. }
            | LedgerEvent::CrossedGateway { msg }
            | LedgerEvent::StoredOffline { msg, .. }
            | LedgerEvent::Shown { msg, .. }
            | LedgerEvent::DuplicateSuppressed { msg, .. }
            | LedgerEvent::DeviceUnreachable { msg, .. }
            | LedgerEvent::Expired { msg, .. }
            | LedgerEvent::TamperDetected { msg, .. }
            | LedgerEvent::Read { msg }
            | LedgerEvent::DecryptFailed { msg, .. }
            | LedgerEvent::RetryRefused { msg, .. }
            | LedgerEvent::ReceiptSeen { msg, .. }
            | LedgerEvent::QueuedAtEnd { msg, .. } => msg,
        }
    }
}

/// The message and device of an event about one device's copy.
pub(super) fn per_device(event: &LedgerEvent) -> Option<(MsgId, DeviceId)> {
    match *event {
        LedgerEvent::StoredOffline { msg, device }
        | LedgerEvent::Shown { msg, device, .. }
        | LedgerEvent::DecryptFailed { msg, device, .. }
        | LedgerEvent::DuplicateSuppressed { msg, device }
        | LedgerEvent::DeviceUnreachable { msg, device }
        | LedgerEvent::Expired { msg, device }
        | LedgerEvent::RetryRefused { msg, device, .. } => Some((msg, device)),
        LedgerEvent::Accepted { .. }
        | LedgerEvent::Refused { .. }
        | LedgerEvent::CrossedGateway { .. }
        | LedgerEvent::TamperDetected { .. }
        | LedgerEvent::Read { .. }
        | LedgerEvent::ReceiptSeen { .. }
        | LedgerEvent::QueuedAtEnd { .. } => None,
    }
}

/// Why a device could not decrypt a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptReason {
    /// The sender's session is for an older identity of this device (it reinstalled).
    StaleSession,
    /// No session with the sender, and the message is not a prekey message.
    NoSession,
    /// A group message under a Sender Key this device never received (its distribution was
    /// lost, or this device reinstalled since).
    NoSenderKey,
    /// Real crypto refused the bytes although the model expected them to decrypt.
    Refused,
}

/// Why a sender could not re-encrypt for a retry receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryRefusal {
    /// Already re-encrypted the maximum number of times.
    Exhausted,
    /// The plaintext left the sender's bounded cache.
    Evicted,
}
