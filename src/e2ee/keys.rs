//! Curve25519 keys in libsignal's encoding: a public key is 33 bytes, the type byte 0x05 then the
//! X25519 u-coordinate. Keys are built from bytes drawn from a caller-supplied `CryptoRng`, so the
//! simulator's seeded ChaCha stream (never the OS) decides every key.

use rand_core::CryptoRng;
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{E2eeError, Result};
use super::xeddsa::{self, SigningKey, SIGNATURE_LEN};

/// libsignal's key type byte for Curve25519 ("DJB") keys.
pub const KEY_TYPE_DJB: u8 = 0x05;
pub const PUBLIC_KEY_ENCODED_LEN: usize = 33;

/// A Curve25519 public key (X25519 u-coordinate).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub const fn from_bytes(u: [u8; 32]) -> Self {
        PublicKey(u)
    }
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The 33-byte wire form (0x05 || u).
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_ENCODED_LEN] {
        let mut out = [0u8; PUBLIC_KEY_ENCODED_LEN];
        out[0] = KEY_TYPE_DJB;
        out[1..].copy_from_slice(&self.0);
        out
    }
    /// Parses the 33-byte wire form; anything else is refused, including a non-canonical u
    /// (u >= 2^255 - 19). X25519 ignores bit 255, so without this check a flipped top bit of an
    /// unauthenticated key (a prekey message's base key) would pass unnoticed; honest encoders
    /// (libsignal, curve25519-donna) always emit u < p.
    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let u: [u8; 32] = match bytes {
            [KEY_TYPE_DJB, rest @ ..] => rest
                .try_into()
                .map_err(|_| E2eeError::BadKey("length is not 33"))?,
            [] => return Err(E2eeError::BadKey("empty")),
            _ => return Err(E2eeError::BadKey("type byte is not 0x05")),
        };
        if !is_canonical(&u) {
            return Err(E2eeError::BadKey(
                "u-coordinate is not reduced mod 2^255 - 19",
            ));
        }
        assert!(u[31] & 0x80 == 0, "an accepted key has bit 255 clear");
        Ok(PublicKey(u))
    }
    /// XEdDSA verification of `signature` over the concatenated `message` parts.
    pub fn verify(&self, message: &[&[u8]], signature: &[u8]) -> bool {
        match <&[u8; SIGNATURE_LEN]>::try_from(signature) {
            Ok(sig) => xeddsa::verify(&self.0, message, sig),
            Err(_) => false,
        }
    }
}

/// u < p = 2^255 - 19, read little-endian.
fn is_canonical(u: &[u8; 32]) -> bool {
    let top_is_max = u[31] == 0x7F && u[1..31].iter().all(|&b| b == 0xFF);
    u[31] & 0x80 == 0 && !(top_is_max && u[0] >= 0xED)
}

/// A clamped Curve25519 private key; zeroized on drop.
#[derive(Clone)]
pub struct PrivateKey(StaticSecret);

impl PrivateKey {
    /// Clamps `bytes` (libsignal stores private keys clamped, and XEdDSA signs with them as is).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        assert!(
            bytes[0] & 7 == 0 && bytes[31] & 0xC0 == 0x40,
            "a private key is stored clamped"
        );
        let key = PrivateKey(StaticSecret::from(bytes));
        bytes.zeroize();
        key
    }
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_bytes(*bytes)
    }
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
    pub fn public_key(&self) -> PublicKey {
        PublicKey(x25519_dalek::PublicKey::from(&self.0).to_bytes())
    }
    /// X25519 agreement (RFC 7748), on HACL*'s verified Curve25519 (libcrux): 28 us here
    /// against x25519-dalek's 35 us, and session setup is three or four of them; on a CPU with
    /// AVX-512 IFMA, as dalek's Edwards multiplication (22 us) when the peer's key has an
    /// Edwards form. A peer key of small order gives the all-zero secret, as x25519-dalek (and
    /// libsignal, which does not refuse it) gives it; HACL* reports that case instead of
    /// returning it, and the test `agreement_matches_x25519_dalek` holds both paths equal to
    /// x25519-dalek on 20,000 keys (high bit set, non-canonical and small-order ones among
    /// them). Key generation stays on dalek, whose fixed-base multiplication is faster than a
    /// ladder from the base point.
    pub fn agree(&self, their: &PublicKey) -> Zeroizing<[u8; 32]> {
        if super::curve_backend::dalek_runs_on_ifma() {
            if let Some(shared) = self.agree_on_edwards(their) {
                return shared;
            }
        }
        self.agree_on_hacl(their)
    }

    /// X25519 as an Edwards multiplication: the clamped scalar times a point whose Montgomery u
    /// is the peer's, mapped back to u. Both points with that u (the two signs) give the same
    /// u, and a small-order point goes to the identity, whose u is 0, as X25519's. `None` for a
    /// u with no Edwards form (on the twist, or -1), which the ladder takes.
    fn agree_on_edwards(&self, their: &PublicKey) -> Option<Zeroizing<[u8; 32]>> {
        let point = edwards_form(&their.0)?;
        let mut product = point.mul_clamped(*self.to_bytes());
        let mut shared = product.to_montgomery();
        product.zeroize();
        let out = Zeroizing::new(shared.to_bytes());
        shared.zeroize();
        Some(out)
    }

    fn agree_on_hacl(&self, their: &PublicKey) -> Zeroizing<[u8; 32]> {
        let mut shared = Zeroizing::new([0u8; 32]);
        if libcrux_curve25519::ecdh(&mut shared, &their.0, &self.to_bytes()).is_err() {
            shared.fill(0);
        }
        shared
    }
}

/// The Edwards form of a peer's X25519 key (`None` for one on the twist, or -1), remembered by
/// this thread: a map from u costs an inversion and a square root (about 5.6 of an IFMA
/// agreement's 22 us), and most keys are agreed with more than once (a user's identity and
/// signed prekey by everyone who opens a session with them, a base key three times by its
/// responder, a ratchet key twice). A memo of a function of public bytes; cleared when full.
fn edwards_form(u: &[u8; 32]) -> Option<curve25519_dalek::EdwardsPoint> {
    const KEPT: usize = 1 << 14;
    type Forms = std::collections::BTreeMap<[u8; 32], Option<curve25519_dalek::EdwardsPoint>>;
    thread_local! {
        static FORMS: std::cell::RefCell<Forms> = const { std::cell::RefCell::new(Forms::new()) };
    }
    FORMS.with_borrow_mut(|forms| {
        if let Some(form) = forms.get(u) {
            return *form;
        }
        let form = curve25519_dalek::MontgomeryPoint(*u).to_edwards(0);
        if forms.len() >= KEPT {
            forms.clear();
        }
        forms.insert(*u, form);
        form
    })
}

/// A key pair (ratchet keys, base keys, prekeys).
#[derive(Clone)]
pub struct KeyPair {
    pub public: PublicKey,
    pub private: PrivateKey,
}

impl KeyPair {
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }
    pub fn from_private(private: PrivateKey) -> Self {
        KeyPair {
            public: private.public_key(),
            private,
        }
    }
}

/// A long-term identity key pair, which also signs (XEdDSA); its Edwards form is cached.
#[derive(Clone, ZeroizeOnDrop)]
pub struct IdentityKeyPair {
    #[zeroize(skip)]
    key_pair: KeyPair,
    signing: SigningKey,
}

impl IdentityKeyPair {
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }
    pub fn from_private(private: PrivateKey) -> Self {
        let signing = SigningKey::new(&private.to_bytes());
        IdentityKeyPair {
            key_pair: KeyPair::from_private(private),
            signing,
        }
    }
    pub fn public_key(&self) -> &PublicKey {
        &self.key_pair.public
    }
    pub fn agree(&self, their: &PublicKey) -> Zeroizing<[u8; 32]> {
        self.key_pair.private.agree(their)
    }
    /// XEdDSA signature over the concatenated `message` parts, with 64 bytes drawn from `rng`.
    pub fn sign(&self, message: &[&[u8]], rng: &mut impl CryptoRng) -> [u8; SIGNATURE_LEN] {
        let mut random = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(random.as_mut());
        self.signing.sign(message, &random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(h: &str) -> [u8; 32] {
        hex::decode(h).unwrap().try_into().unwrap()
    }

    /// RFC 7748 section 6.1 (Alice and Bob's X25519 key pairs and shared secret).
    #[test]
    fn rfc7748_diffie_hellman() {
        let a = PrivateKey::from_bytes(arr(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let b = PrivateKey::from_bytes(arr(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let a_pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
        let b_pub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
        assert_eq!(hex::encode(a.public_key().as_bytes()), a_pub);
        assert_eq!(hex::encode(b.public_key().as_bytes()), b_pub);
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        assert_eq!(hex::encode(*a.agree(&b.public_key())), shared);
        assert_eq!(hex::encode(*b.agree(&a.public_key())), shared);
    }

    /// RFC 7748 section 5.2, first X25519 test vector (scalar clamping, arbitrary u).
    /// The agreement is x25519-dalek's on every peer key: random ones, with the high bit set
    /// (ignored, RFC 7748), non-canonical ones (u >= p, reduced) and small-order ones (the
    /// all-zero secret).
    #[test]
    fn agreement_matches_x25519_dalek() {
        use rand::{Rng, SeedableRng};
        let mut rng = crate::engine::SimRng::seed_from_u64(3);
        let (mut all_zero, mut on_edwards) = (0, 0);
        for i in 0..20_000u32 {
            let mut u = [0u8; 32];
            rng.fill_bytes(&mut u);
            if i % 4 == 0 {
                u[31] |= 0x80;
            }
            if i % 7 == 0 {
                // p + k for small k: non-canonical, with the high bit as it was drawn
                let high = u[31] & 0x80;
                u = [0xff; 32];
                u[0] = 0xed + (i % 19) as u8;
                u[31] = 0x7f | high;
            }
            if i < 64 {
                u = [0; 32];
                u[0] = i as u8;
            }
            let key = PrivateKey::generate(&mut rng);
            let dalek = key
                .0
                .diffie_hellman(&x25519_dalek::PublicKey::from(u))
                .to_bytes();
            let ours = key.agree(&PublicKey(u));
            assert_eq!(*ours, dalek, "peer key {u:?}");
            assert_eq!(
                *key.agree_on_hacl(&PublicKey(u)),
                dalek,
                "HACL*, peer key {u:?}"
            );
            if let Some(edwards) = key.agree_on_edwards(&PublicKey(u)) {
                assert_eq!(*edwards, dalek, "Edwards, peer key {u:?}");
                on_edwards += 1;
            }
            all_zero += usize::from(dalek == [0; 32]);
        }
        assert!(all_zero > 100, "small-order keys tried: {all_zero}");
        // The points of order 8 and u = p - 1, p, p + 1, each also with the high bit set.
        for hex_u in [
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ] {
            for high in [0, 0x80] {
                let mut u = arr(hex_u);
                u[31] |= high;
                let key = PrivateKey::generate(&mut rng);
                let dalek = key
                    .0
                    .diffie_hellman(&x25519_dalek::PublicKey::from(u))
                    .to_bytes();
                assert_eq!(*key.agree(&PublicKey(u)), dalek, "peer key {hex_u} {high}");
                assert_eq!(*key.agree_on_hacl(&PublicKey(u)), dalek, "HACL*, {hex_u}");
                if let Some(edwards) = key.agree_on_edwards(&PublicKey(u)) {
                    assert_eq!(*edwards, dalek, "Edwards, {hex_u} {high}");
                }
            }
        }
        // About half of random u are on the curve, the rest on the twist.
        assert!(
            (8_000..12_000).contains(&on_edwards),
            "keys with an Edwards form: {on_edwards}"
        );
    }

    #[test]
    fn rfc7748_function_vector() {
        let k = PrivateKey::from_bytes(arr(
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        ));
        let u = PublicKey::from_bytes(arr(
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        ));
        assert_eq!(
            hex::encode(*k.agree(&u)),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
        );
    }

    /// libsignal @3157a9be55918a8f4b88bb9ace5e8c587b42bab8, rust/core/src/curve/curve25519.rs,
    /// `test_agreement`.
    #[test]
    fn libsignal_agreement() {
        let alice = PrivateKey::from_bytes(arr(
            "c806439dc9d2c476ffed8f2580c0888d58ab406bf7ae3698879021b96bb4bf59",
        ));
        let bob = PrivateKey::from_bytes(arr(
            "b03b34c33a1c44f225b662d2bf4859b8135411fa7b0386d45fb75dc5b91b4466",
        ));
        let alice_pub = "1bb75966f2e93a3691dfff942bb2a466a1c08b8d78ca3f4d6df8b8bfa2e4ee28";
        let bob_pub = "653614993d2b15ee9e5fd3d86ce719ef4ec1daae1886a87b3f5fa9565a27a22f";
        assert_eq!(hex::encode(alice.public_key().as_bytes()), alice_pub);
        assert_eq!(hex::encode(bob.public_key().as_bytes()), bob_pub);
        let shared = "325f239328941ced6e673b86ba41017448e99b649a9c3806c1dd7ca4c477e629";
        assert_eq!(hex::encode(*alice.agree(&bob.public_key())), shared);
        assert_eq!(hex::encode(*bob.agree(&alice.public_key())), shared);
    }

    /// libsignal @3157a9be55918a8f4b88bb9ace5e8c587b42bab8, rust/core/src/curve/curve25519.rs,
    /// `test_signature`: verification, and every single-bit flip of the signature refused.
    #[test]
    fn libsignal_xeddsa_verification() {
        let private = PrivateKey::from_bytes(arr(
            "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865",
        ));
        let public = private.public_key();
        assert_eq!(
            hex::encode(public.as_bytes()),
            "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64"
        );
        let message =
            hex::decode("05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
                .unwrap();
        let signature = hex::decode(concat!(
            "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb",
            "ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88"
        ))
        .unwrap();
        assert!(public.verify(&[&message], &signature));
        let prepared = xeddsa::VerifyingKey::new(public.as_bytes());
        let sig: [u8; 64] = signature.clone().try_into().unwrap();
        assert!(prepared.verify(&[&message], &sig));
        for bit in 0..signature.len() * 8 {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!public.verify(&[&message], &bad), "bit {bit} flip accepted");
            assert!(
                !prepared.verify(&[&message], &bad),
                "bit {bit} flip accepted (prepared)"
            );
        }
    }

    #[test]
    fn sign_verify_round_trip_and_encoding() {
        use rand::SeedableRng;
        let mut rng = crate::engine::SimRng::seed_from_u64(1);
        for _ in 0..20 {
            let id = IdentityKeyPair::generate(&mut rng);
            let sig = id.sign(&[b"hello", b" world"], &mut rng);
            assert!(id.public_key().verify(&[b"hello world"], &sig));
            assert!(!id.public_key().verify(&[b"hello worle"], &sig));
            let enc = id.public_key().serialize();
            assert_eq!(PublicKey::deserialize(&enc).unwrap(), *id.public_key());
        }
        assert!(PublicKey::deserialize(&[0x05; 32]).is_err());
        let mut top = [0u8; 33];
        top[0] = 0x05;
        top[32] = 0x80;
        assert!(PublicKey::deserialize(&top).is_err(), "bit 255 set");
        let mut p = [0xFFu8; 33];
        p[0] = 0x05;
        p[1] = 0xED;
        p[32] = 0x7F;
        assert!(PublicKey::deserialize(&p).is_err(), "u = p");
        p[1] = 0xEC;
        assert!(PublicKey::deserialize(&p).is_ok(), "u = p - 1");
        assert!(PublicKey::deserialize(&[0x06; 33]).is_err());
        assert!(PublicKey::deserialize(&[]).is_err());
    }
}
