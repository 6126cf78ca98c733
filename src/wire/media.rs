//! What crosses between a device and a media store, directly or through the gatekeeper's media
//! proxy (and a proxied partner's adapter): a blob id, the device it is for, an attempt number
//! and a length. The blob is attachment ciphertext (`e2ee/attachment.rs`); its key and digests
//! travel inside the E2EE message, never here, so no store, adapter or proxy learns the content
//! type or the key (metadata isolation, as for messages: [`Submission`](super::Submission),
//! [`Delivery`](super::Delivery)).
//!
//! Frames carry the blob's length only, not its bytes: a frame may be copied while in flight
//! and a video is megabytes, so the simulator keeps real bytes (real crypto) in one place keyed
//! by blob id (`sim/media.rs`), and modeled crypto keeps none at all.

use super::{DeviceId, ProviderId};

/// An uploaded blob, numbered in upload order across the run. It stands for the unguessable
/// path a media host hands out: knowing it is what lets a device fetch the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlobId(pub u64);

/// Bytes of a transfer's request or response framing on the wire (HTTP headers inside TLS),
/// on top of the blob itself.
pub const MEDIA_HEADER_BYTES: u32 = 400;

/// A media transfer frame. Requests (`Upload`, `Fetch`) are answered by one response
/// (`UploadAck`, `Data`, `Error`) for the same blob, device and attempt; `Delete` is not
/// answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaFrame {
    /// Device -> its own provider's store: the encrypted blob, `len` bytes on the wire.
    /// `fetches`: how many recipient devices will fetch it, so that the store can drop the blob
    /// once each has (a real host keeps it for a TTL; the bound keeps memory flat here).
    Upload {
        blob: BlobId,
        device: DeviceId,
        attempt: u8,
        len: u32,
        /// Recipient devices that will fetch it (a group's members' devices: hundreds).
        fetches: u32,
    },
    /// Store -> uploading device: stored (also for a repeated upload of a stored blob).
    UploadAck {
        blob: BlobId,
        device: DeviceId,
        attempt: u8,
    },
    /// Device -> the store of provider `host`: directly for its own provider's store, else
    /// through the gatekeeper's media proxy (a partner device's request takes its interop path:
    /// its adapter when proxied).
    Fetch {
        blob: BlobId,
        host: ProviderId,
        device: DeviceId,
        attempt: u8,
    },
    /// Store -> fetching device (relayed back the way the fetch came): the blob, `len` bytes.
    Data {
        blob: BlobId,
        device: DeviceId,
        attempt: u8,
        len: u32,
    },
    /// The blob is not there, or a hop on the way failed (an HTTP 404 or 502): the device
    /// retries with backoff.
    Error {
        blob: BlobId,
        device: DeviceId,
        attempt: u8,
    },
    /// Uploader -> its store: the message of this blob was refused (its recipient has not
    /// enabled third-party chats), nobody will fetch it: drop it.
    Delete { blob: BlobId, device: DeviceId },
}

impl MediaFrame {
    pub fn blob(&self) -> BlobId {
        match *self {
            MediaFrame::Upload { blob, .. }
            | MediaFrame::UploadAck { blob, .. }
            | MediaFrame::Fetch { blob, .. }
            | MediaFrame::Data { blob, .. }
            | MediaFrame::Error { blob, .. }
            | MediaFrame::Delete { blob, .. } => blob,
        }
    }

    /// The device the transfer is for (the uploader or the fetcher).
    pub fn device(&self) -> DeviceId {
        match *self {
            MediaFrame::Upload { device, .. }
            | MediaFrame::UploadAck { device, .. }
            | MediaFrame::Fetch { device, .. }
            | MediaFrame::Data { device, .. }
            | MediaFrame::Error { device, .. }
            | MediaFrame::Delete { device, .. } => device,
        }
    }

    pub fn attempt(&self) -> u8 {
        match *self {
            MediaFrame::Upload { attempt, .. }
            | MediaFrame::UploadAck { attempt, .. }
            | MediaFrame::Fetch { attempt, .. }
            | MediaFrame::Data { attempt, .. }
            | MediaFrame::Error { attempt, .. } => attempt,
            MediaFrame::Delete { .. } => 0,
        }
    }

    /// Whether the frame goes from the party that started the exchange (which notices when it
    /// is lost); else it is an answer (whose receiver waits for it and notices).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            MediaFrame::Upload { .. } | MediaFrame::Fetch { .. } | MediaFrame::Delete { .. }
        )
    }

    /// Bytes on the wire: the blob for uploads and data, a small request or response otherwise.
    pub fn wire_bytes(&self) -> u32 {
        let bytes = match *self {
            MediaFrame::Upload { len, .. } | MediaFrame::Data { len, .. } => {
                MEDIA_HEADER_BYTES.saturating_add(len)
            }
            _ => MEDIA_HEADER_BYTES,
        };
        assert!(
            bytes >= MEDIA_HEADER_BYTES,
            "a transfer is at least its header"
        );
        bytes
    }

    /// A small stable code per kind, for the live codec.
    pub fn kind_code(&self) -> u8 {
        let code = match self {
            MediaFrame::Upload { .. } => 1,
            MediaFrame::UploadAck { .. } => 2,
            MediaFrame::Fetch { .. } => 3,
            MediaFrame::Data { .. } => 4,
            MediaFrame::Error { .. } => 5,
            MediaFrame::Delete { .. } => 6,
        };
        assert!((1..=6).contains(&code), "a media frame kind code is 1 to 6");
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transfers_carry_the_blob_bytes() {
        let (blob, device) = (BlobId(7), DeviceId(3));
        let up = MediaFrame::Upload {
            blob,
            device,
            attempt: 0,
            len: 1_000_000,
            fetches: 2,
        };
        let fetch = MediaFrame::Fetch {
            blob,
            host: ProviderId(1),
            device,
            attempt: 0,
        };
        assert_eq!(up.wire_bytes(), 1_000_000 + MEDIA_HEADER_BYTES);
        assert_eq!(fetch.wire_bytes(), MEDIA_HEADER_BYTES);
        assert!(up.is_request() && fetch.is_request());
        let data = MediaFrame::Data {
            blob,
            device,
            attempt: 1,
            len: u32::MAX,
        };
        assert_eq!(data.wire_bytes(), u32::MAX, "saturates, never wraps");
        assert!(!data.is_request());
        assert_eq!(
            (data.blob(), data.device(), data.attempt()),
            (blob, device, 1)
        );
    }
}
