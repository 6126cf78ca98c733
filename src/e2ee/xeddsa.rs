//! XEdDSA over Curve25519 identity keys, as libsignal signs signed prekeys and sender-key
//! messages: the Montgomery private key is used directly as an Ed25519 scalar and the Edwards
//! sign bit travels in the top bit of the signature (libsignal's `calculate_signature`). The
//! `xeddsa` crate pulls in the old rand_core generation, and this is a few lines on
//! curve25519-dalek. The signer caches the Edwards form of its key, which halves signing cost.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

pub const SIGNATURE_LEN: usize = 64;

/// hash_1 prefix of the XEdDSA spec: 2^256 - 2 in little-endian (0xFE, then 31 bytes of 0xFF).
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xFFu8; 32];
    p[0] = 0xFE;
    p
};

/// A Curve25519 private key prepared for signing: its scalar and its Edwards public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    key_bytes: [u8; 32],
    a: Scalar,
    ed_public: [u8; 32],
}

impl SigningKey {
    /// `clamped` is the (already clamped) X25519 private key.
    pub fn new(clamped: &[u8; 32]) -> Self {
        assert!(
            clamped[0] & 7 == 0 && clamped[31] & 0xC0 == 0x40,
            "an XEdDSA signing key is a clamped X25519 key"
        );
        let a = Scalar::from_bytes_mod_order(*clamped);
        let ed_public = (&a * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        SigningKey {
            key_bytes: *clamped,
            a,
            ed_public,
        }
    }

    /// Signs the concatenation of `message` parts; `random` is 64 caller-drawn bytes.
    pub fn sign(&self, message: &[&[u8]], random: &[u8; 64]) -> [u8; SIGNATURE_LEN] {
        let mut h1 = Sha512::new();
        h1.update(HASH1_PREFIX);
        h1.update(self.key_bytes);
        message.iter().for_each(|m| h1.update(m));
        h1.update(random);
        let r = Scalar::from_hash(h1);
        let cap_r = (&r * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        let h = challenge(&cap_r, &self.ed_public, message);
        let s = h * self.a + r;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..32].copy_from_slice(&cap_r);
        sig[32..].copy_from_slice(s.as_bytes());
        // s < 2^253: bits 253 and 254 are zero (verification refuses anything else), and bit
        // 255 is free for the sign of the Edwards key.
        assert!(sig[63] & 0xE0 == 0, "a signature's scalar is reduced");
        sig[63] = (sig[63] & 0x7F) | (self.ed_public[31] & 0x80);
        sig
    }
}

/// Verifies a signature by the Curve25519 public key `public_u` (32-byte Montgomery u).
pub fn verify(public_u: &[u8; 32], message: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
    match MontgomeryPoint(*public_u).to_edwards(sig[63] >> 7) {
        Some(a) => verify_with(&-a, &a.compress().to_bytes(), message, sig),
        None => false,
    }
}

/// A public key that verifies many signatures (a sender-key signing key): its Edwards form for
/// each sign bit, as (-A, compressed A), computed once instead of once per message.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    forms: [Option<(EdwardsPoint, [u8; 32])>; 2],
}

impl VerifyingKey {
    pub fn new(public_u: &[u8; 32]) -> Self {
        let form = |sign: u8| {
            MontgomeryPoint(*public_u)
                .to_edwards(sign)
                .map(|a| (-a, a.compress().to_bytes()))
        };
        let forms = [form(0), form(1)];
        // Whether u has an Edwards form (u != -1, on the curve) does not depend on the sign.
        assert!(
            forms[0].is_some() == forms[1].is_some(),
            "a key maps to Edwards for both signs or for neither"
        );
        VerifyingKey { forms }
    }

    pub fn verify(&self, message: &[&[u8]], sig: &[u8; SIGNATURE_LEN]) -> bool {
        match &self.forms[usize::from(sig[63] >> 7)] {
            Some((neg_a, cap_a)) => verify_with(neg_a, cap_a, message, sig),
            None => false,
        }
    }
}

/// The XEdDSA check R == s*B - h*A, with h = SHA-512(R || A || M), s's top three bits zero.
fn verify_with(
    neg_a: &EdwardsPoint,
    cap_a: &[u8; 32],
    message: &[&[u8]],
    sig: &[u8; SIGNATURE_LEN],
) -> bool {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    s_bytes[31] &= 0x7F;
    if s_bytes[31] & 0xE0 != 0 {
        return false;
    }
    assert!(s_bytes[31] < 0x20, "s is below 2^253 past the range check");
    let mut cap_r = [0u8; 32];
    cap_r.copy_from_slice(&sig[..32]);
    let h = challenge(&cap_r, cap_a, message);
    let s = Scalar::from_bytes_mod_order(s_bytes);
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, neg_a, &s);
    crate::e2ee::kdf::ct_eq(check.compress().as_bytes(), &cap_r)
}

fn challenge(cap_r: &[u8; 32], cap_a: &[u8; 32], message: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    h.update(cap_r);
    h.update(cap_a);
    message.iter().for_each(|m| h.update(m));
    Scalar::from_hash(h)
}
