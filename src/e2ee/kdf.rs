//! The symmetric primitives every layer shares (HKDF, HMAC, AES-256-CBC), wrapped once so that the
//! protocol code reads like the spec and the RustCrypto API churn is confined to this file.

use aes::Aes256;
use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::OnceLock;
use zeroize::Zeroize;

use super::error::{E2eeError, Result};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with HKDF's default salt (32 zero bytes), keyed once per process: the
/// ratchet's message keys use it for every message.
fn zero_salt_hmac() -> &'static HmacSha256 {
    static KEYED: OnceLock<HmacSha256> = OnceLock::new();
    KEYED.get_or_init(|| keyed_hmac(&[0u8; 32]))
}

fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// HKDF-SHA256 (RFC 5869). `salt = None` means 32 zero bytes, as libsignal's v3 HKDF. The output
/// lengths used by the protocol are constants far below the RFC limit of 255 hash lengths.
pub fn hkdf_sha256(salt: Option<&[u8]>, ikm: &[u8], info: &[u8], okm: &mut [u8]) {
    assert!(
        okm.len() <= 255 * 32,
        "HKDF output length is a protocol constant"
    );
    let mut extract = match salt {
        None => zero_salt_hmac().clone(),
        Some(salt) => keyed_hmac(salt),
    };
    extract.update(ikm);
    let mut prk: [u8; 32] = extract.finalize().into_bytes().into();
    let expand = keyed_hmac(&prk);
    prk.zeroize();
    let mut block = [0u8; 32];
    for (i, chunk) in okm.chunks_mut(32).enumerate() {
        let mut mac = expand.clone();
        if i > 0 {
            mac.update(&block);
        }
        mac.update(info);
        mac.update(&[i as u8 + 1]);
        block = mac.finalize().into_bytes().into();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
    block.zeroize();
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed_hmac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// (HMAC(key, a), HMAC(key, b)) with one key schedule: a chain step needs both the message key
/// seed (0x01) and the next chain key (0x02).
pub fn hmac_sha256_pair(key: &[u8], a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    assert!(a != b, "the two HMAC inputs of a pair differ");
    let keyed = keyed_hmac(key);
    let mut first = keyed.clone();
    first.update(a);
    let mut second = keyed;
    second.update(b);
    (
        first.finalize().into_bytes().into(),
        second.finalize().into_bytes().into(),
    )
}

/// AES-256-CBC with PKCS#7 padding.
pub fn aes_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    let len = plaintext.len();
    let mut buf = vec![0u8; (len / 16 + 1) * 16];
    buf[..len].copy_from_slice(plaintext);
    let enc = cbc::Encryptor::<Aes256>::new(key.into(), iv.into());
    if enc.encrypt_padded::<Pkcs7>(&mut buf, len).is_err() {
        unreachable!("buffer sized for one padding block");
    }
    buf
}

/// AES-256-CBC with PKCS#7 padding; a bad length or padding is an error, never a panic.
pub fn aes_cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(E2eeError::BadCiphertext);
    }
    let mut buf = ciphertext.to_vec();
    let dec = cbc::Decryptor::<Aes256>::new(key.into(), iv.into());
    let len = dec
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| E2eeError::BadCiphertext)?
        .len();
    assert!(
        len < ciphertext.len() && len + 16 >= ciphertext.len(),
        "PKCS#7 unpadding removes 1 to 16 bytes"
    );
    buf.truncate(len);
    Ok(buf)
}

/// Constant-time equality of two MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869, appendix A.1 (test case 1, SHA-256) and A.3 (test case 3, no salt, no info).
    #[test]
    fn rfc5869_vectors() {
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        hkdf_sha256(Some(&salt), &ikm, &info, &mut okm);
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
        hkdf_sha256(None, &ikm, b"", &mut okm);
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    #[test]
    fn hmac_pair_matches_two_hmacs() {
        let (a, b) = hmac_sha256_pair(b"key", &[1], &[2]);
        assert_eq!(a, hmac_sha256(b"key", &[&[1]]));
        assert_eq!(b, hmac_sha256(b"key", &[&[2]]));
    }

    /// HKDF with every output length up to 3 blocks agrees with the `hkdf` crate.
    #[test]
    fn hkdf_matches_reference_crate() {
        for len in 1..=96 {
            for salt in [None, Some(&b"salt"[..])] {
                let mut ours = vec![0u8; len];
                let mut theirs = vec![0u8; len];
                hkdf_sha256(salt, b"input keying material", b"info", &mut ours);
                hkdf::Hkdf::<Sha256>::new(salt, b"input keying material")
                    .expand(b"info", &mut theirs)
                    .unwrap();
                assert_eq!(ours, theirs, "len {len} salt {salt:?}");
            }
        }
    }

    #[test]
    fn cbc_round_trip_and_refusals() {
        let (key, iv) = ([7u8; 32], [9u8; 16]);
        for len in [0usize, 1, 15, 16, 17, 100] {
            let pt = vec![0xabu8; len];
            let ct = aes_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(aes_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
        assert_eq!(
            aes_cbc_decrypt(&key, &iv, &[0u8; 15]),
            Err(E2eeError::BadCiphertext)
        );
        assert_eq!(
            aes_cbc_decrypt(&key, &iv, &[]),
            Err(E2eeError::BadCiphertext)
        );
    }
}
