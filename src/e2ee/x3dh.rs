//! X3DH as libsignal v3 runs it, and the prekey bundle it starts from. The shared secret is
//! 32 bytes of 0xFF || DH1 || DH2 || DH3 [|| DH4] [|| KEM secret], expanded by HKDF-SHA256 (zero
//! salt) into a root key and the first chain key. With a KEM part (PQXDH, `pqxdh.rs`) the info
//! string is libsignal's PQ label instead of "WhisperText".

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use zeroize::Zeroizing;

use super::chain::{split_root_chain, ChainKey, RootKey};
use super::error::{E2eeError, Result};
use super::kdf::hkdf_sha256;
use super::keys::{IdentityKeyPair, KeyPair, PublicKey, KEY_TYPE_DJB};
use super::pqxdh::KemPreKeyPublic;

const DISCONTINUITY: [u8; 32] = [0xFF; 32];
pub const INFO_X3DH: &[u8] = b"WhisperText";
pub const INFO_PQXDH: &[u8] = b"WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024";

/// What a device publishes so that others can open sessions with it while it is offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyBundle {
    pub registration_id: u32,
    pub device_id: u32,
    pub pre_key: Option<(u32, PublicKey)>,
    pub signed_pre_key_id: u32,
    pub signed_pre_key: PublicKey,
    pub signed_pre_key_signature: [u8; 64],
    pub identity_key: PublicKey,
    /// The PQXDH part; `None` for plain X3DH (message version 3).
    pub kem_pre_key: Option<KemPreKeyPublic>,
}

/// A bundle whose signatures checked out: what a session starts from
/// ([`super::SessionRecord::process_verified_bundle`]), so that none starts from an unchecked one.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedBundle<'a>(&'a PreKeyBundle);

impl<'a> VerifiedBundle<'a> {
    pub fn bundle(&self) -> &'a PreKeyBundle {
        self.0
    }
}

impl PreKeyBundle {
    /// Checks the identity's XEdDSA signatures over the 33-byte signed prekey and, for PQXDH, over
    /// the KEM prekey's encoding.
    pub fn verify(&self) -> Result<VerifiedBundle<'_>> {
        if !self.signed_pre_key_checks() {
            return Err(E2eeError::BadSignature);
        }
        self.kem_pre_key_checks()
    }

    /// [`PreKeyBundle::verify`], taking the signed prekey's check from `seen` when this process
    /// has made it before.
    pub fn verify_remembered(&self, seen: &mut SignedPreKeysSeen) -> Result<VerifiedBundle<'_>> {
        let id = SignedPreKeysSeen::id(self);
        if !seen.checked.contains(&id) {
            if !self.signed_pre_key_checks() {
                return Err(E2eeError::BadSignature);
            }
            if seen.checked.len() >= SignedPreKeysSeen::MAX {
                seen.checked.clear();
            }
            seen.checked.insert(id);
        }
        self.kem_pre_key_checks()
    }

    fn signed_pre_key_checks(&self) -> bool {
        let spk = self.signed_pre_key.serialize();
        assert!(
            spk[0] == KEY_TYPE_DJB,
            "a signed prekey is signed in its 0x05 form"
        );
        self.identity_key
            .verify(&[&spk], &self.signed_pre_key_signature)
    }

    fn kem_pre_key_checks(&self) -> Result<VerifiedBundle<'_>> {
        match &self.kem_pre_key {
            Some(kem) if !self.identity_key.verify(&[kem.encoded()], &kem.signature) => {
                Err(E2eeError::BadSignature)
            }
            _ => Ok(VerifiedBundle(self)),
        }
    }
}

/// The signed prekeys whose signatures one process (a run's devices) has checked: every device
/// that opens a session with a user fetches the same signed prekey, and its check, an XEdDSA
/// verification (24 us, 15 % of an initiator's session setup), has one answer. Kept by a digest
/// of identity key, signed prekey and signature; only successes are kept, so a forged signature
/// is checked, and refused, every time. Cleared when full. A simulator's devices share one
/// process and one trust; real devices would each keep their own.
#[derive(Debug, Default)]
pub struct SignedPreKeysSeen {
    checked: BTreeSet<[u8; 32]>,
}

impl SignedPreKeysSeen {
    const MAX: usize = 1 << 16;

    fn id(b: &PreKeyBundle) -> [u8; 32] {
        Sha256::new()
            .chain_update(b.identity_key.as_bytes())
            .chain_update(b.signed_pre_key.as_bytes())
            .chain_update(b.signed_pre_key_signature)
            .finalize()
            .into()
    }
}

/// The initiator's ("Alice's") side of the agreement.
pub struct InitiatorKeys<'a> {
    pub our_identity: &'a IdentityKeyPair,
    pub our_base: &'a KeyPair,
    pub their_identity: &'a PublicKey,
    pub their_signed_pre_key: &'a PublicKey,
    pub their_one_time: Option<&'a PublicKey>,
}

/// The responder's ("Bob's") side of the agreement.
pub struct ResponderKeys<'a> {
    pub our_identity: &'a IdentityKeyPair,
    pub our_signed_pre_key: &'a KeyPair,
    pub our_one_time: Option<&'a KeyPair>,
    pub their_identity: &'a PublicKey,
    pub their_base: &'a PublicKey,
}

/// 0xFF*32 || DH(IK_B, IK_A... ) in libsignal's order, as the initiator computes it.
pub fn initiator_secret(k: &InitiatorKeys<'_>) -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * 5 + 32));
    secret.extend_from_slice(&DISCONTINUITY);
    secret.extend_from_slice(k.our_identity.agree(k.their_signed_pre_key).as_ref());
    secret.extend_from_slice(k.our_base.private.agree(k.their_identity).as_ref());
    secret.extend_from_slice(k.our_base.private.agree(k.their_signed_pre_key).as_ref());
    if let Some(otpk) = k.their_one_time {
        secret.extend_from_slice(k.our_base.private.agree(otpk).as_ref());
    }
    let dh_count = 3 + usize::from(k.their_one_time.is_some());
    assert!(
        secret.len() == 32 * (1 + dh_count),
        "the X3DH secret is 0xFF*32 and three or four DH outputs"
    );
    secret
}

/// The same secret as the responder computes it.
pub fn responder_secret(k: &ResponderKeys<'_>) -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(Vec::with_capacity(32 * 5 + 32));
    secret.extend_from_slice(&DISCONTINUITY);
    secret.extend_from_slice(
        k.our_signed_pre_key
            .private
            .agree(k.their_identity)
            .as_ref(),
    );
    secret.extend_from_slice(k.our_identity.agree(k.their_base).as_ref());
    secret.extend_from_slice(k.our_signed_pre_key.private.agree(k.their_base).as_ref());
    if let Some(otpk) = k.our_one_time {
        secret.extend_from_slice(otpk.private.agree(k.their_base).as_ref());
    }
    let dh_count = 3 + usize::from(k.our_one_time.is_some());
    assert!(
        secret.len() == 32 * (1 + dh_count),
        "the X3DH secret is 0xFF*32 and three or four DH outputs"
    );
    secret
}

/// HKDF(zero salt, secret, info, 64) = root key || first chain key.
pub fn derive_initial_keys(secret: &[u8], info: &[u8]) -> (RootKey, ChainKey) {
    assert!(
        secret.len() >= 32 * 4 && secret[..32] == DISCONTINUITY,
        "a handshake secret starts with 0xFF*32 and holds at least three DH outputs"
    );
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha256(None, secret, info, okm.as_mut());
    split_root_chain(&okm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2ee::{DeviceKeys, PreKeyStore};
    use rand::SeedableRng;

    /// A remembered signed prekey skips its own check and nothing else: a forged signature over
    /// it is refused every time, another identity's bundle is checked on its own, and a PQXDH
    /// bundle's KEM signature is still checked.
    #[test]
    fn remembered_checks_refuse_what_verify_refuses() {
        let mut rng = crate::engine::SimRng::seed_from_u64(4);
        let mut keys = DeviceKeys::generate(1, 1, &mut rng);
        keys.enable_pqxdh(&mut rng);
        let genuine = keys.bundle(false, &mut rng);
        let mut seen = SignedPreKeysSeen::default();
        for _ in 0..2 {
            assert!(genuine.verify_remembered(&mut seen).is_ok());
        }
        assert_eq!(seen.checked.len(), 1, "one signed prekey, remembered once");
        let mut forged = genuine.clone();
        forged.signed_pre_key_signature[5] ^= 1;
        for _ in 0..2 {
            assert_eq!(
                forged.verify_remembered(&mut seen).err(),
                Some(E2eeError::BadSignature)
            );
        }
        let mut bad_kem = genuine.clone();
        if let Some(kem) = bad_kem.kem_pre_key.as_mut() {
            kem.signature[7] ^= 1;
        }
        assert_eq!(
            bad_kem.verify_remembered(&mut seen).err(),
            Some(E2eeError::BadSignature),
            "the KEM prekey's signature is checked though the signed prekey's is remembered"
        );
        let mut other = genuine.clone();
        other.identity_key = *DeviceKeys::generate(2, 1, &mut rng).identity().public_key();
        assert_eq!(
            other.verify_remembered(&mut seen).err(),
            Some(E2eeError::BadSignature),
            "another identity's claim to the same signed prekey"
        );
        assert_eq!(seen.checked.len(), 1, "refusals are not remembered");
    }
}
