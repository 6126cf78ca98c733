//! PQXDH (Signal's PQXDH spec, revision 3) with ML-KEM-1024 from libcrux, behind the same session
//! API: the bundle carries a signed KEM prekey, the initiator encapsulates to it and appends the
//! KEM shared secret to the X3DH secret (info "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
//! libsignal's label). It exists for planners pricing post-quantum: its cost is real.
//!
//! Message layout (our documented extension of v3, libsignal's field numbers): PQXDH sessions
//! send version byte 0x44 in `SignalMessage` and `PreKeySignalMessage`; the prekey message adds
//! field 7 (uint32 KEM prekey id) and field 8 (bytes, the 1568-byte ML-KEM ciphertext). The KEM
//! public key is encoded as 0x0A (libsignal's ML-KEM-1024 type byte) || 1568 bytes, and the
//! bundle's KEM signature is XEdDSA by the identity key over that encoding. The ratchet itself is
//! the v3 Double Ratchet (no SPQR).

use libcrux_ml_kem::mlkem1024::{
    self, MlKem1024Ciphertext, MlKem1024PrivateKey, MlKem1024PublicKey,
};
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::error::{E2eeError, Result};
use super::keys::IdentityKeyPair;

pub const KEM_TYPE_MLKEM1024: u8 = 0x0A;
pub const KEM_PUBLIC_KEY_LEN: usize = 1568;
pub const KEM_PRIVATE_KEY_LEN: usize = 3168;
pub const KEM_CIPHERTEXT_LEN: usize = 1568;

/// An ML-KEM-1024 key pair; the private half is zeroized on drop.
#[derive(Clone)]
pub struct KemKeyPair {
    public: Box<MlKem1024PublicKey>,
    private: Box<[u8; KEM_PRIVATE_KEY_LEN]>,
}

impl Drop for KemKeyPair {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl KemKeyPair {
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seed.as_mut());
        let (sk, pk) = mlkem1024::generate_key_pair(*seed).into_parts();
        assert!(
            pk.as_slice().len() == KEM_PUBLIC_KEY_LEN,
            "an ML-KEM-1024 public key is 1568 bytes"
        );
        let mut sk_bytes: [u8; KEM_PRIVATE_KEY_LEN] = sk.into();
        let private = Box::new(sk_bytes);
        sk_bytes.zeroize();
        KemKeyPair {
            public: Box::new(pk),
            private,
        }
    }
    /// 0x0A || encapsulation key.
    pub fn encoded_public(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + KEM_PUBLIC_KEY_LEN);
        out.push(KEM_TYPE_MLKEM1024);
        out.extend_from_slice(self.public.as_slice());
        assert!(
            out.len() == 1 + KEM_PUBLIC_KEY_LEN,
            "a KEM public key is its type byte and 1568 bytes"
        );
        out
    }
    /// Decapsulates a 1568-byte ciphertext; ML-KEM's implicit rejection means a wrong ciphertext
    /// yields a wrong secret, which the first message's MAC then refuses.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let ct = MlKem1024Ciphertext::try_from(ciphertext)
            .map_err(|_| E2eeError::Decode("KEM ciphertext length"))?;
        assert!(
            ciphertext.len() == KEM_CIPHERTEXT_LEN,
            "a ciphertext that converted is 1568 bytes"
        );
        let sk = MlKem1024PrivateKey::from(&*self.private);
        let shared = Zeroizing::new(mlkem1024::decapsulate(&sk, &ct));
        let mut sk_bytes: [u8; KEM_PRIVATE_KEY_LEN] = sk.into();
        sk_bytes.zeroize();
        Ok(shared)
    }
}

/// A published, signed KEM prekey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KemPreKeyPublic {
    pub id: u32,
    encoded: Vec<u8>,
    pub signature: [u8; 64],
}

impl KemPreKeyPublic {
    /// Signs `pair`'s public key with the identity key.
    pub fn sign(
        id: u32,
        pair: &KemKeyPair,
        identity: &IdentityKeyPair,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let encoded = pair.encoded_public();
        assert!(
            encoded.first() == Some(&KEM_TYPE_MLKEM1024),
            "a KEM prekey is signed in its typed form"
        );
        let signature = identity.sign(&[&encoded], rng);
        KemPreKeyPublic {
            id,
            encoded,
            signature,
        }
    }
    /// Parses the encoded form (type byte checked, key validated per FIPS 203).
    pub fn from_parts(id: u32, encoded: Vec<u8>, signature: [u8; 64]) -> Result<Self> {
        match encoded.split_first() {
            Some((&KEM_TYPE_MLKEM1024, key)) if key.len() == KEM_PUBLIC_KEY_LEN => {
                assert!(
                    encoded.len() == 1 + KEM_PUBLIC_KEY_LEN,
                    "an accepted KEM prekey is its type byte and 1568 bytes"
                );
                Ok(KemPreKeyPublic {
                    id,
                    encoded,
                    signature,
                })
            }
            _ => Err(E2eeError::BadKey("not an ML-KEM-1024 public key")),
        }
    }
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }
    /// Encapsulates to this key: (ciphertext, shared secret).
    pub fn encapsulate(&self, rng: &mut impl CryptoRng) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>)> {
        // `from_parts` and `sign` build only this shape.
        assert!(
            self.encoded.len() == 1 + KEM_PUBLIC_KEY_LEN && self.encoded[0] == KEM_TYPE_MLKEM1024,
            "a KEM prekey is its type byte and 1568 bytes"
        );
        let pk = MlKem1024PublicKey::try_from(&self.encoded[1..])
            .map_err(|_| E2eeError::BadKey("KEM public key length"))?;
        if !mlkem1024::validate_public_key(&pk) {
            return Err(E2eeError::BadKey("KEM public key fails validation"));
        }
        let mut randomness = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(randomness.as_mut());
        let (ct, ss) = mlkem1024::encapsulate(&pk, *randomness);
        assert!(
            ct.as_slice().len() == KEM_CIPHERTEXT_LEN,
            "an ML-KEM-1024 ciphertext is 1568 bytes"
        );
        Ok((ct.as_slice().to_vec(), Zeroizing::new(ss)))
    }
}
