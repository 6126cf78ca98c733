//! Media (images, voice notes, videos, files), as WhatsApp sends them and as the DMA interop
//! design routes them between providers:
//!
//! 1. The sender's device encrypts the file (`e2ee/attachment.rs`: a random media key, AES-CBC
//!    and HMAC) and uploads the blob to its own provider's [`store::MediaStore`]
//!    ([`client::MediaClient::upload`]). The message waits for the store's ack, then enters the
//!    outbox like any message: delivery latency includes the upload.
//! 2. The message's plaintext ends with a [`pointer::Pointer`]: host, blob id, sizes, media key
//!    and digests. Only the two devices ever see it; stores, proxy and gateway see blob ids
//!    and lengths.
//! 3. Once the message shows on a recipient device, that device fetches the blob: from its own
//!    provider's store directly, or else through the gatekeeper's [`proxy::MediaProxy`] (a
//!    partner device by way of its interop path: its adapter when proxied). It verifies the
//!    digests and the MAC and decrypts.
//!
//! Failures are handled as a real client does: a transfer that dies (a partition, a store
//! down, a lost transfer) is noticed after [`DETECT_NS`] (a connect or read timeout, or the
//! proxy's 502), retried with backoff and given up after a bound, and every outcome is counted
//! (`metrics/media.rs`).
//!
//! Nodes here are sans-IO like the others. Transfers ride their own connections (apps talk to
//! a media host, not the chat connection), so a video never holds up the messages behind it;
//! they take the same hop classes, with their bandwidth.

pub mod client;
pub mod pointer;
pub mod proxy;
pub mod store;

pub use client::{Done, Download, MediaClient, Upload};
pub use pointer::{Pointer, Secret, POINTER_LEN};
pub use proxy::MediaProxy;
pub use store::MediaStore;

use super::keyring::Runner;
use super::{Addr, Effects};
use crate::directory::Directory;
use crate::directory::PartnerLink;
use crate::scenario::ContentKind;
use crate::wire::{DeviceId, MediaFrame, MsgId, ProviderId};

/// How long a party waiting on a transfer takes to notice it died (no connection, no answer):
/// a client's connect or read timeout, and the proxy's upstream timeout.
pub const DETECT_NS: u64 = 10_000_000_000;

/// A pointer a device found in a message it decrypted; the driver starts the download once
/// the message shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub device: DeviceId,
    pub msg: MsgId,
    pub pointer: Pointer,
}

/// The device's hook after a successful decryption: a media message's pointer is parsed from
/// the real plaintext and handed to the driver (text and modeled crypto hand nothing).
pub fn note_opened(device: DeviceId, msg: MsgId, plaintext: &[u8], fx: &mut Effects) {
    if let Some(pointer) = Pointer::from_plaintext(plaintext) {
        fx.media.push(Opened {
            device,
            msg,
            pointer,
        });
    }
}

/// Where a device uploads: its own provider's store.
pub fn upload_route(dir: &Directory, d: DeviceId) -> Addr {
    Addr::MediaStore(dir.provider_of_device(d))
}

/// The first hop of a fetch of a blob hosted by `host`: the device's own provider's store, else
/// the media proxy (a gatekeeper device, a direct-mode partner device) or the device's adapter
/// (a proxied partner device: media takes the same interop path as its messages).
pub fn fetch_route(dir: &Directory, d: DeviceId, host: ProviderId) -> Addr {
    let own = dir.provider_of_device(d);
    if own == host {
        return Addr::MediaStore(own);
    }
    if dir.is_gatekeeper(own) {
        return Addr::MediaProxy;
    }
    match dir.partner_link(own) {
        PartnerLink::Proxied => Addr::Adapter(own),
        PartnerLink::Direct => Addr::MediaProxy,
    }
}

/// A proxied partner's adapter relays its devices' media like their stanzas: up to the media
/// proxy, and answers down to the device.
pub fn adapter_route(from: Addr, frame: &MediaFrame) -> Option<Addr> {
    match from {
        Addr::Device(_) => Some(Addr::MediaProxy),
        Addr::MediaProxy => Some(Addr::Device(frame.device())),
        _ => None,
    }
}

/// Who waits on a media frame, and so notices when it is lost: the sender of a request, the
/// receiver of an answer.
pub fn waiter(from: Addr, to: Addr, frame: &MediaFrame) -> Addr {
    if frame.is_request() {
        from
    } else {
        to
    }
}

/// Which node kind's crypto counts a device's attachment work goes to.
pub fn runner(dir: &Directory, d: DeviceId) -> Runner {
    if dir.is_gatekeeper(dir.provider_of_device(d)) {
        Runner::GatekeeperDevice
    } else {
        Runner::PartnerDevice
    }
}

/// Verifies and decrypts a fetched blob with the secret from the message (real crypto):
/// whether it opened. The plaintext is dropped at once: a video must not stay in memory.
pub fn open_blob(secret: &Secret, content: ContentKind, blob: &[u8]) -> bool {
    let Some(kind) = pointer::media_kind(content) else {
        return false;
    };
    crate::e2ee::attachment::decrypt(
        &secret.media_key,
        kind,
        blob,
        &secret.blob_sha256,
        &secret.plaintext_sha256,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BlobId;

    /// Gatekeeper user 0 (two devices), proxied partner user 1, direct partner user 2.
    fn dir() -> Directory {
        Directory::new(
            &[1, 1, 1],
            vec![
                PartnerLink::Proxied,
                PartnerLink::Proxied,
                PartnerLink::Direct,
            ],
            &[2, 1, 1],
            vec![true; 3],
        )
    }

    #[test]
    fn own_store_directly_else_the_proxy_the_interop_way() {
        let d = dir();
        let (gk, proxied, direct) = (DeviceId(0), DeviceId(2), DeviceId(3));
        let (p0, p1) = (ProviderId(0), ProviderId(1));
        assert_eq!(upload_route(&d, proxied), Addr::MediaStore(p1));
        assert_eq!(fetch_route(&d, gk, p0), Addr::MediaStore(p0));
        assert_eq!(fetch_route(&d, gk, p1), Addr::MediaProxy);
        assert_eq!(fetch_route(&d, proxied, p1), Addr::MediaStore(p1));
        assert_eq!(fetch_route(&d, proxied, p0), Addr::Adapter(p1));
        assert_eq!(fetch_route(&d, direct, p1), Addr::MediaProxy);
        let data = MediaFrame::Data {
            blob: BlobId(1),
            device: proxied,
            attempt: 0,
            len: 9,
        };
        assert_eq!(
            adapter_route(Addr::MediaProxy, &data),
            Some(Addr::Device(proxied))
        );
        assert_eq!(
            waiter(Addr::MediaStore(p1), Addr::MediaProxy, &data),
            Addr::MediaProxy
        );
    }

    #[test]
    fn a_real_blob_opens_with_its_secret_only() {
        use crate::e2ee::attachment::encrypt;
        let file = vec![0x42u8; 5_000];
        let enc = encrypt(&[9; 32], crate::e2ee::attachment::MediaKind::Video, &file);
        let secret = Secret {
            media_key: [9; 32],
            plaintext_sha256: enc.plaintext_sha256,
            blob_sha256: enc.blob_sha256,
        };
        assert!(open_blob(&secret, ContentKind::Video, &enc.blob));
        assert!(
            !open_blob(&secret, ContentKind::Image, &enc.blob),
            "kind is bound"
        );
        let mut bad = enc.blob.clone();
        bad[100] ^= 1;
        assert!(
            !open_blob(&secret, ContentKind::Video, &bad),
            "digest checked"
        );
        assert!(!open_blob(&secret, ContentKind::Text, &enc.blob));
    }
}
