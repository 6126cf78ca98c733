//! The Double Ratchet's key schedule as libsignal v3 runs it: the root step (HKDF, info
//! "WhisperRatchet"), the symmetric chain step (HMAC-SHA256 of 0x01 for the message key seed,
//! 0x02 for the next chain key) and the message keys (HKDF, info "WhisperMessageKeys", 80 bytes:
//! cipher key, MAC key, IV). Kept apart from the session so the known-answer tests pin it alone.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::kdf::{hkdf_sha256, hmac_sha256_pair};
use super::keys::{PrivateKey, PublicKey};

const MESSAGE_KEY_SEED: [u8; 1] = [0x01];
const CHAIN_KEY_SEED: [u8; 1] = [0x02];
const INFO_RATCHET: &[u8] = b"WhisperRatchet";
const INFO_MESSAGE_KEYS: &[u8] = b"WhisperMessageKeys";

/// The root key; each DH ratchet step turns it into a new root key and a chain key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootKey(pub(crate) [u8; 32]);

impl RootKey {
    /// HKDF(salt = root key, ikm = DH(their ratchet, our ratchet), "WhisperRatchet", 64).
    pub fn step(&self, their: &PublicKey, ours: &PrivateKey) -> (RootKey, ChainKey) {
        let shared = ours.agree(their);
        let mut okm = [0u8; 64];
        hkdf_sha256(Some(&self.0), shared.as_ref(), INFO_RATCHET, &mut okm);
        let out = split_root_chain(&okm);
        okm.zeroize();
        assert!(
            out.1.index == 0,
            "a DH ratchet step starts a chain at index 0"
        );
        out
    }
}

/// Splits 64 derived bytes into (root key, chain key at index 0).
pub(crate) fn split_root_chain(okm: &[u8; 64]) -> (RootKey, ChainKey) {
    let mut root = [0u8; 32];
    let mut chain = [0u8; 32];
    root.copy_from_slice(&okm[..32]);
    chain.copy_from_slice(&okm[32..]);
    assert!(
        root != chain,
        "the root key and the chain key are distinct halves of the HKDF output"
    );
    (
        RootKey(root),
        ChainKey {
            key: chain,
            index: 0,
        },
    )
}

/// A sending or receiving chain key and its index.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    pub fn new(key: [u8; 32], index: u32) -> Self {
        ChainKey { key, index }
    }
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
    pub fn index(&self) -> u32 {
        self.index
    }
    /// HMAC(chain key, 0x02): the chain key one step on.
    pub fn next(&self) -> ChainKey {
        self.step().1
    }
    /// HMAC(chain key, 0x01): the seed of this index's message keys (what skipped-key storage
    /// keeps, deriving the keys only when used).
    pub fn message_key_seed(&self) -> MessageKeySeed {
        self.step().0
    }
    /// Both of the above with one HMAC key schedule.
    pub fn step(&self) -> (MessageKeySeed, ChainKey) {
        let (seed, next) = hmac_sha256_pair(&self.key, &MESSAGE_KEY_SEED, &CHAIN_KEY_SEED);
        assert!(
            seed != next,
            "a step's message key seed and next chain key are distinct HMACs"
        );
        // A deliberate regression for the instruction gate's demo (benches/demo-gate.sh): one
        // wasted HMAC per message. Only the `demo-slow-ratchet` feature compiles it.
        #[cfg(feature = "demo-slow-ratchet")]
        std::hint::black_box(super::kdf::hmac_sha256(&self.key, &[&CHAIN_KEY_SEED]));
        let next = ChainKey {
            key: next,
            index: self.index.wrapping_add(1),
        };
        (
            MessageKeySeed {
                seed,
                counter: self.index,
            },
            next,
        )
    }
    pub fn message_keys(&self) -> MessageKeys {
        self.message_key_seed().derive()
    }
}

/// A message key seed with its counter.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeySeed {
    pub(crate) seed: [u8; 32],
    pub(crate) counter: u32,
}

impl MessageKeySeed {
    pub fn derive(&self) -> MessageKeys {
        let mut okm = [0u8; 80];
        hkdf_sha256(None, &self.seed, INFO_MESSAGE_KEYS, &mut okm);
        let mut keys = MessageKeys {
            cipher_key: [0; 32],
            mac_key: [0; 32],
            iv: [0; 16],
            counter: self.counter,
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        okm.zeroize();
        assert!(
            keys.cipher_key != keys.mac_key,
            "the cipher key and the MAC key are distinct slices of the HKDF output"
        );
        keys
    }
}

/// The per-message keys: AES-256 key, HMAC key, CBC IV.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MessageKeys {
    pub cipher_key: [u8; 32],
    pub mac_key: [u8; 32],
    pub iv: [u8; 16],
    pub counter: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libsignal @3157a9be55918a8f4b88bb9ace5e8c587b42bab8, rust/protocol/src/ratchet/keys.rs,
    /// `test_chain_key_derivation`.
    #[test]
    fn libsignal_chain_key_derivation() {
        let seed: [u8; 32] =
            hex::decode("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
                .unwrap()
                .try_into()
                .unwrap();
        let chain = ChainKey::new(seed, 0);
        let keys = chain.message_keys();
        assert_eq!(
            hex::encode(keys.cipher_key),
            "bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217"
        );
        assert_eq!(
            hex::encode(keys.mac_key),
            "c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b"
        );
        assert_eq!(keys.counter, 0);
        let next = chain.next();
        assert_eq!(
            hex::encode(next.key()),
            "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d"
        );
        assert_eq!(next.index(), 1);
        assert_eq!(next.message_keys().counter, 1);
    }
}
