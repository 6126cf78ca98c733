//! X3DH as libsignal v3 runs it, and the prekey bundle it starts from. The shared secret is
//! 32 bytes of 0xFF || DH1 || DH2 || DH3 [|| DH4] [|| KEM secret], expanded by HKDF-SHA256 (zero
//! salt) into a root key and the first chain key. With a KEM part (PQXDH, `pqxdh.rs`) the info
//! string is libsignal's PQ label instead of "WhisperText".

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

impl PreKeyBundle {
    /// Checks the identity's XEdDSA signatures over the 33-byte signed prekey and, for PQXDH, over
    /// the KEM prekey's encoding.
    pub fn verify(&self) -> Result<()> {
        let spk = self.signed_pre_key.serialize();
        assert!(
            spk[0] == KEY_TYPE_DJB,
            "a signed prekey is signed in its 0x05 form"
        );
        if !self
            .identity_key
            .verify(&[&spk], &self.signed_pre_key_signature)
        {
            return Err(E2eeError::BadSignature);
        }
        match &self.kem_pre_key {
            Some(kem) if !self.identity_key.verify(&[kem.encoded()], &kem.signature) => {
                Err(E2eeError::BadSignature)
            }
            _ => Ok(()),
        }
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
