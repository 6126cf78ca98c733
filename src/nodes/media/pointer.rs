//! The media pointer inside an E2EE message: where the blob is (host provider, blob id), its
//! sizes and content kind, and what opens and checks it (media key, SHA-256 of the plaintext and
//! of the uploaded blob), as WhatsApp's `ImageMessage` carries `direct_path`, `media_key`,
//! `file_sha256` and `file_enc_sha256`. It travels only inside the Signal ciphertext, so the
//! stores, the proxy and the gateway never see the key or the kind.
//!
//! Layout: the pointer is the last [`POINTER_LEN`] bytes of a media message's plaintext, whose
//! first byte is the content code (see `sim/world/compose.rs`, `plaintext`). Real crypto writes
//! it and the recipient parses it after decrypting; modeled crypto writes zeros for the secrets
//! (the plaintext has the same length either way, so both runs are the same).

use crate::e2ee::attachment::{MediaKind, MEDIA_MAC_LEN};
use crate::scenario::ContentKind;
use crate::wire::{BlobId, ProviderId};

/// Tag and version ahead of the fields, so that a parser refuses what is not a pointer.
const MAGIC: [u8; 2] = *b"M1";

/// Serialized size: magic, host, blob id, blob and plaintext lengths, content code, and the
/// 32-byte key and two digests.
pub const POINTER_LEN: usize = 2 + 4 + 8 + 4 + 4 + 1 + 3 * 32;

/// The bound on a media file, as messaging apps cap documents (2 GiB): a drawn size past it is
/// clamped, which also keeps every length in a `u32`.
pub const MEDIA_BYTES_MAX: u64 = crate::scenario::MEDIA_BYTES_MAX;

/// What opens and checks a blob. Its `Debug` is redacted: a trace line must never print a key.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Secret {
    pub media_key: [u8; 32],
    pub plaintext_sha256: [u8; 32],
    pub blob_sha256: [u8; 32],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A media message's pointer to its blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pointer {
    pub host: ProviderId,
    pub blob: BlobId,
    pub blob_len: u32,
    pub plaintext_len: u32,
    pub content: ContentKind,
    pub secret: Secret,
}

impl Pointer {
    pub fn to_bytes(&self) -> [u8; POINTER_LEN] {
        let mut out = [0u8; POINTER_LEN];
        let mut w = Writer(&mut out, 0);
        w.put(&MAGIC);
        w.put(&self.host.0.to_le_bytes());
        w.put(&self.blob.0.to_le_bytes());
        w.put(&self.blob_len.to_le_bytes());
        w.put(&self.plaintext_len.to_le_bytes());
        w.put(&[content_code(self.content)]);
        w.put(&self.secret.media_key);
        w.put(&self.secret.plaintext_sha256);
        w.put(&self.secret.blob_sha256);
        debug_assert_eq!(w.1, POINTER_LEN);
        out
    }

    /// The pointer at the end of a decrypted media message, or `None` when the plaintext is
    /// not a media message or its tail is not a well-formed pointer (bytes from the network:
    /// never a panic).
    pub fn from_plaintext(plaintext: &[u8]) -> Option<Pointer> {
        let content = content_of(*plaintext.first()?)?;
        let tail = plaintext.get(plaintext.len().checked_sub(POINTER_LEN)?..)?;
        Self::from_tail(tail).filter(|p| p.content == content)
    }

    /// The pointer in the last [`POINTER_LEN`] bytes of `plaintext`, whatever comes before it
    /// (the live load generator's plaintexts start with its marker, not a content code); `None`
    /// when they are not a well-formed pointer to a media kind.
    pub fn from_tail(plaintext: &[u8]) -> Option<Pointer> {
        let tail = plaintext.get(plaintext.len().checked_sub(POINTER_LEN)?..)?;
        let mut r = Reader(tail);
        if r.take::<2>()? != MAGIC {
            return None;
        }
        let host = ProviderId(u32::from_le_bytes(r.take()?));
        let blob = BlobId(u64::from_le_bytes(r.take()?));
        let blob_len = u32::from_le_bytes(r.take()?);
        let plaintext_len = u32::from_le_bytes(r.take()?);
        let [code] = r.take::<1>()?;
        let content = content_of(code)?;
        media_kind(content)?;
        let secret = Secret {
            media_key: r.take()?,
            plaintext_sha256: r.take()?,
            blob_sha256: r.take()?,
        };
        Some(Pointer {
            host,
            blob,
            blob_len,
            plaintext_len,
            content,
            secret,
        })
    }
}

/// A media message's plaintext: `head` (the app's message header and caption, from the
/// workload's body size less the pointer) followed by the pointer.
pub fn embed(head: &mut Vec<u8>, pointer: &Pointer) {
    head.extend_from_slice(&pointer.to_bytes());
}

/// The content code a plaintext starts with (the app's message type).
pub fn content_code(c: ContentKind) -> u8 {
    c as u8
}

fn content_of(code: u8) -> Option<ContentKind> {
    ContentKind::ALL.get(code as usize).copied()
}

/// The attachment kind (its HKDF info) of a content kind; `None` for text.
pub fn media_kind(c: ContentKind) -> Option<MediaKind> {
    match c {
        ContentKind::Text => None,
        ContentKind::Image => Some(MediaKind::Image),
        ContentKind::Voice => Some(MediaKind::Audio),
        ContentKind::Video => Some(MediaKind::Video),
        ContentKind::File => Some(MediaKind::Document),
    }
}

/// Bytes of the uploaded blob for a file of `plaintext_len` bytes: AES-CBC with PKCS#7 padding
/// (always 1 to 16 bytes) and the 10-byte MAC. Modeled crypto sizes transfers with this;
/// real crypto asserts that the real blob has this size.
pub fn blob_len(plaintext_len: u32) -> u32 {
    (plaintext_len / 16 + 1)
        .saturating_mul(16)
        .saturating_add(MEDIA_MAC_LEN as u32)
}

struct Writer<'a>(&'a mut [u8], usize);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0[self.1..self.1 + bytes.len()].copy_from_slice(bytes);
        self.1 += bytes.len();
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer() -> Pointer {
        Pointer {
            host: ProviderId(2),
            blob: BlobId(41),
            blob_len: blob_len(150_000),
            plaintext_len: 150_000,
            content: ContentKind::Video,
            secret: Secret {
                media_key: [7; 32],
                plaintext_sha256: [8; 32],
                blob_sha256: [9; 32],
            },
        }
    }

    #[test]
    fn round_trips_at_the_end_of_a_plaintext() {
        let p = pointer();
        let mut plaintext = vec![content_code(ContentKind::Video), b'v', b'i'];
        plaintext.resize(40, b'.');
        embed(&mut plaintext, &p);
        assert_eq!(plaintext.len(), 40 + POINTER_LEN);
        assert_eq!(Pointer::from_plaintext(&plaintext), Some(p));
        assert_eq!(format!("{:?}", p.secret), "Secret(..)", "no key in traces");
    }

    #[test]
    fn refuses_text_short_or_foreign_bytes() {
        let p = pointer();
        let mut text = vec![content_code(ContentKind::Text)];
        embed(&mut text, &p);
        assert_eq!(Pointer::from_plaintext(&text), None, "text has no pointer");
        assert_eq!(Pointer::from_plaintext(&[]), None);
        assert_eq!(Pointer::from_plaintext(&[1, 2, 3]), None);
        let mut wrong_kind = vec![content_code(ContentKind::Image)];
        embed(&mut wrong_kind, &p);
        assert_eq!(
            Pointer::from_plaintext(&wrong_kind),
            None,
            "kind must agree"
        );
        let mut garbled = vec![content_code(ContentKind::Video)];
        embed(&mut garbled, &p);
        garbled[1] ^= 1;
        assert_eq!(Pointer::from_plaintext(&garbled), None, "magic checked");
        assert_eq!(
            Pointer::from_plaintext(&[99; 200]),
            None,
            "unknown content code"
        );
    }

    #[test]
    fn blob_len_is_the_attachment_size() {
        for n in [0u32, 1, 15, 16, 17, 1000, 4_000_000] {
            let enc = crate::e2ee::attachment::encrypt(
                &[1; 32],
                MediaKind::Image,
                &vec![0u8; n as usize],
            );
            assert_eq!(enc.blob.len() as u32, blob_len(n), "{n} bytes");
        }
        assert_eq!(blob_len(u32::MAX), u32::MAX, "saturates");
    }
}
