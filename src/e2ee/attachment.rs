//! Attachments, WhatsApp style: a random 32-byte media key is HKDF-expanded (info per media kind)
//! to IV (16) || cipher key (32) || MAC key (32) || ref key (32); the file is AES-256-CBC, followed
//! by the first 10 bytes of HMAC-SHA256(MAC key, IV || ciphertext). The message carries the media
//! key and the SHA-256 of plaintext and of the uploaded blob, so the blob store (the partner's
//! media store) sees only ciphertext.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::{E2eeError, Result};
use super::kdf::{aes_cbc_decrypt, aes_cbc_encrypt, ct_eq, hkdf_sha256};
use super::twin_hash::{update_both, HmacStream, Sha256Stream};

pub const MEDIA_MAC_LEN: usize = 10;

/// The media kind selects the HKDF info string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
}

impl MediaKind {
    fn info(self) -> &'static [u8] {
        let info: &'static [u8] = match self {
            MediaKind::Image => b"WhatsApp Image Keys",
            MediaKind::Video => b"WhatsApp Video Keys",
            MediaKind::Audio => b"WhatsApp Audio Keys",
            MediaKind::Document => b"WhatsApp Document Keys",
        };
        assert!(
            info.starts_with(b"WhatsApp ") && info.ends_with(b" Keys"),
            "a media info string is WhatsApp's \"WhatsApp <kind> Keys\""
        );
        info
    }
}

/// The uploaded blob (ciphertext || 10-byte MAC) and the two digests the message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedAttachment {
    pub blob: Vec<u8>,
    pub plaintext_sha256: [u8; 32],
    pub blob_sha256: [u8; 32],
}

struct MediaKeys {
    iv: [u8; 16],
    cipher_key: Zeroizing<[u8; 32]>,
    mac_key: Zeroizing<[u8; 32]>,
}

fn expand(media_key: &[u8; 32], kind: MediaKind) -> MediaKeys {
    let mut okm = Zeroizing::new([0u8; 112]);
    hkdf_sha256(None, media_key, kind.info(), okm.as_mut());
    let mut keys = MediaKeys {
        iv: [0; 16],
        cipher_key: Zeroizing::new([0; 32]),
        mac_key: Zeroizing::new([0; 32]),
    };
    keys.iv.copy_from_slice(&okm[..16]);
    keys.cipher_key.copy_from_slice(&okm[16..48]);
    keys.mac_key.copy_from_slice(&okm[48..80]);
    assert!(
        keys.cipher_key != keys.mac_key,
        "the cipher key and the MAC key are distinct slices of the HKDF output"
    );
    keys
}

/// Encrypts a file under `media_key` (32 bytes the caller drew from its seeded stream).
pub fn encrypt(media_key: &[u8; 32], kind: MediaKind, plaintext: &[u8]) -> EncryptedAttachment {
    let keys = expand(media_key, kind);
    let mut blob = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
    let (mac, mut digest) = mac_and_digest(&keys, &blob);
    blob.extend_from_slice(&mac[..MEDIA_MAC_LEN]);
    digest.update(&mac[..MEDIA_MAC_LEN]);
    assert!(
        blob.len() > plaintext.len() && blob.len() % 16 == MEDIA_MAC_LEN,
        "a blob is whole AES blocks and a 10-byte MAC"
    );
    EncryptedAttachment {
        plaintext_sha256: Sha256::digest(plaintext).into(),
        blob_sha256: digest.finish(),
        blob,
    }
}

/// HMAC(MAC key, IV || ciphertext), and the blob's digest fed the ciphertext (its MAC is still
/// to come), in one pass over the ciphertext.
fn mac_and_digest(keys: &MediaKeys, ciphertext: &[u8]) -> ([u8; 32], Sha256Stream) {
    let mut mac = HmacStream::new(keys.mac_key.as_ref());
    mac.update(&keys.iv);
    let mut digest = Sha256Stream::default();
    update_both(&mut mac.inner, &mut digest, ciphertext);
    (mac.finish(), digest)
}

/// Checks the blob digest and MAC, decrypts, and checks the plaintext digest.
pub fn decrypt(
    media_key: &[u8; 32],
    kind: MediaKind,
    blob: &[u8],
    blob_sha256: &[u8; 32],
    plaintext_sha256: &[u8; 32],
) -> Result<Vec<u8>> {
    let Some(split) = blob.len().checked_sub(MEDIA_MAC_LEN) else {
        // Too short to hold a MAC: its digest decides first, as for any blob.
        return Err(if ct_eq(&Sha256::digest(blob), blob_sha256) {
            E2eeError::Decode("blob shorter than its MAC")
        } else {
            E2eeError::BadMac
        });
    };
    let (ciphertext, tag) = blob.split_at(split);
    let keys = expand(media_key, kind);
    let (mac, mut digest) = mac_and_digest(&keys, ciphertext);
    digest.update(tag);
    if !ct_eq(&digest.finish(), blob_sha256) {
        return Err(E2eeError::BadMac);
    }
    if !ct_eq(&mac[..MEDIA_MAC_LEN], tag) {
        return Err(E2eeError::BadMac);
    }
    let plaintext = aes_cbc_decrypt(&keys.cipher_key, &keys.iv, ciphertext)?;
    assert!(
        ciphertext.len() % 16 == 0 && plaintext.len() < ciphertext.len(),
        "a decrypted blob is whole blocks and longer than its plaintext"
    );
    if !ct_eq(&Sha256::digest(&plaintext), plaintext_sha256) {
        return Err(E2eeError::BadMac);
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = [3u8; 32];
        let file = vec![0x5au8; 1000];
        let enc = encrypt(&key, MediaKind::Image, &file);
        assert_eq!(enc.blob.len(), 1008 + MEDIA_MAC_LEN);
        let ok = decrypt(
            &key,
            MediaKind::Image,
            &enc.blob,
            &enc.blob_sha256,
            &enc.plaintext_sha256,
        );
        assert_eq!(ok.unwrap(), file);
        let wrong_kind = decrypt(
            &key,
            MediaKind::Video,
            &enc.blob,
            &enc.blob_sha256,
            &enc.plaintext_sha256,
        );
        assert_eq!(wrong_kind, Err(E2eeError::BadMac));
        let mut bad = enc.blob.clone();
        bad[5] ^= 1;
        let digest: [u8; 32] = Sha256::digest(&bad).into();
        assert_eq!(
            decrypt(&key, MediaKind::Image, &bad, &digest, &enc.plaintext_sha256),
            Err(E2eeError::BadMac)
        );
        assert!(decrypt(
            &key,
            MediaKind::Image,
            &[1, 2],
            &Sha256::digest([1u8, 2]).into(),
            &[0; 32]
        )
        .is_err());
    }
}
