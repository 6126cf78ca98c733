//! Sender Keys for groups, in libsignal's v3 layout: each member sends with its own chain (a
//! uint32 key id, an iteration, a 32-byte chain key) and signs each message with its own
//! Curve25519 signing key (XEdDSA, 64 bytes). Message keys: HKDF(HMAC(chain, 0x01),
//! "WhisperGroup", 48) = IV (16) || AES-256 key (32). One encryption per group message instead of
//! one per member device: the reason groups scale.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{E2eeError, Result};
use super::kdf::{aes_cbc_decrypt, aes_cbc_encrypt, hkdf_sha256, hmac_sha256_pair};
use super::keys::{IdentityKeyPair, PublicKey};
use super::ratchet::{FORWARD_JUMP_MAX, SKIPPED_KEYS_MAX};
use super::wire::{SenderKeyDistributionMessage, SenderKeyMessage, VERSION_V3};
use super::xeddsa::{SharedVerifiers, VerifyingKey};

/// libsignal consts.rs `MAX_SENDER_KEY_STATES`: key ids kept per (group, sender).
pub const SENDER_KEY_STATES_MAX: usize = 5;
const INFO_GROUP: &[u8] = b"WhisperGroup";

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct SenderChainKey {
    iteration: u32,
    key: [u8; 32],
}

impl SenderChainKey {
    /// (message key seed = HMAC(chain, 0x01), next chain = HMAC(chain, 0x02)).
    fn step(&self) -> (SenderMessageSeed, SenderChainKey) {
        let (seed, next) = hmac_sha256_pair(&self.key, &[0x01], &[0x02]);
        assert!(
            seed != next,
            "a step's message seed and next chain key are distinct HMACs"
        );
        let next = SenderChainKey {
            iteration: self.iteration.wrapping_add(1),
            key: next,
        };
        (
            SenderMessageSeed {
                iteration: self.iteration,
                seed,
            },
            next,
        )
    }
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct SenderMessageSeed {
    iteration: u32,
    seed: [u8; 32],
}

impl SenderMessageSeed {
    /// (IV, cipher key).
    fn keys(&self) -> ([u8; 16], Zeroizing<[u8; 32]>) {
        let mut okm = Zeroizing::new([0u8; 48]);
        hkdf_sha256(None, &self.seed, INFO_GROUP, okm.as_mut());
        let mut iv = [0u8; 16];
        let mut key = Zeroizing::new([0u8; 32]);
        iv.copy_from_slice(&okm[..16]);
        key.copy_from_slice(&okm[16..]);
        assert!(
            iv[..] != key[..16],
            "the IV and the cipher key are distinct slices of the HKDF output"
        );
        (iv, key)
    }
}

/// One sender's chain in one group, as its owner (can sign) or a member (can verify).
#[derive(Clone)]
pub struct SenderKeyState {
    key_id: u32,
    chain: SenderChainKey,
    signing_public: PublicKey,
    verifier: VerifyingKey,
    signing_private: Option<IdentityKeyPair>,
    skipped: VecDeque<SenderMessageSeed>,
}

impl SenderKeyState {
    /// A new sending chain (draws: key id, chain key, signing key).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; 4];
        rng.fill_bytes(&mut id);
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let signer = IdentityKeyPair::generate(rng);
        let key_id = u32::from_le_bytes(id) & 0x7FFF_FFFF;
        assert!(key_id <= 0x7FFF_FFFF, "a sender key id is 31 bits");
        SenderKeyState {
            key_id,
            chain: SenderChainKey {
                iteration: 0,
                key: *key,
            },
            signing_public: *signer.public_key(),
            verifier: VerifyingKey::new(signer.public_key().as_bytes()),
            signing_private: Some(signer),
            skipped: VecDeque::new(),
        }
    }

    /// A member's copy of a sender's chain, from its distribution message.
    pub fn from_distribution(message: &SenderKeyDistributionMessage) -> Self {
        Self::from_distribution_with(message, VerifyingKey::new(message.signing_key.as_bytes()))
    }

    /// As [`Self::from_distribution`], verifying with the process's shared preparation of the
    /// sender's signing key (see [`SharedVerifiers`]).
    pub fn from_distribution_shared(
        message: &SenderKeyDistributionMessage,
        verifiers: &mut SharedVerifiers,
    ) -> Self {
        let verifier = verifiers.get(message.signing_key.as_bytes());
        Self::from_distribution_with(message, verifier)
    }

    fn from_distribution_with(
        message: &SenderKeyDistributionMessage,
        verifier: VerifyingKey,
    ) -> Self {
        // Built by `SenderKeyDistributionMessage::new` or its decoder, which refuses any other.
        assert!(
            message.serialized().first().map(|b| b >> 4) == Some(VERSION_V3),
            "a distribution message is a v3 one"
        );
        SenderKeyState {
            key_id: message.key_id,
            chain: SenderChainKey {
                iteration: message.iteration,
                key: message.chain_key,
            },
            signing_public: message.signing_key,
            verifier,
            signing_private: None,
            skipped: VecDeque::new(),
        }
    }

    /// What the sender hands each member (over 1:1 sessions) so they can decrypt.
    pub fn distribution_message(&self) -> SenderKeyDistributionMessage {
        assert!(
            self.signing_private.is_some(),
            "only a chain's owner hands out its distribution"
        );
        SenderKeyDistributionMessage::new(
            self.key_id,
            self.chain.iteration,
            self.chain.key,
            self.signing_public,
        )
    }

    /// Encrypts and signs one group message (draws: 64 signature bytes).
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<SenderKeyMessage> {
        let signer = self
            .signing_private
            .as_ref()
            .ok_or(E2eeError::NoSenderKey)?;
        // Only an owner signs, and its chain starts at 0 and moves one step per own message: a
        // wrap would repeat message keys. (A member's copy starts wherever the sender says.)
        assert!(
            self.chain.iteration < u32::MAX,
            "an own sending chain never wraps"
        );
        let (seed, next) = self.chain.step();
        let (iv, key) = seed.keys();
        let ciphertext = aes_cbc_encrypt(&key, &iv, plaintext);
        let message = SenderKeyMessage::new(self.key_id, seed.iteration, ciphertext, signer, rng);
        self.chain = next;
        Ok(message)
    }

    /// Verifies and decrypts; the state changes only if the message is genuine.
    pub fn decrypt(&mut self, message: &SenderKeyMessage) -> Result<Vec<u8>> {
        if message.key_id != self.key_id {
            return Err(E2eeError::UnknownSenderKey(message.key_id));
        }
        if !message.verify_signature_with(&self.verifier) {
            return Err(E2eeError::BadSignature);
        }
        if message.iteration < self.chain.iteration {
            return self.decrypt_skipped(message);
        }
        let jump = message.iteration - self.chain.iteration;
        if jump > FORWARD_JUMP_MAX {
            return Err(E2eeError::TooFarAhead {
                counter: message.iteration,
                max_jump: FORWARD_JUMP_MAX,
            });
        }
        let keep_from = message.iteration.saturating_sub(SKIPPED_KEYS_MAX as u32);
        let mut chain = self.chain.clone();
        let mut skipped = Vec::new();
        let (seed, next) = loop {
            let (seed, next) = chain.step();
            if chain.iteration == message.iteration {
                break (seed, next);
            }
            if chain.iteration >= keep_from {
                skipped.push(seed);
            }
            chain = next;
        };
        assert!(
            skipped.len() <= SKIPPED_KEYS_MAX,
            "a jump keeps at most SKIPPED_KEYS_MAX skipped keys"
        );
        let (iv, key) = seed.keys();
        let plaintext = aes_cbc_decrypt(&key, &iv, &message.ciphertext)?;
        self.chain = next;
        self.skipped.extend(skipped);
        while self.skipped.len() > SKIPPED_KEYS_MAX {
            self.skipped.pop_front();
        }
        Ok(plaintext)
    }

    fn decrypt_skipped(&mut self, message: &SenderKeyMessage) -> Result<Vec<u8>> {
        assert!(
            self.skipped.len() <= SKIPPED_KEYS_MAX,
            "skipped keys stay within SKIPPED_KEYS_MAX"
        );
        let pos = self
            .skipped
            .iter()
            .position(|s| s.iteration == message.iteration)
            .ok_or(E2eeError::Duplicate(message.iteration))?;
        let (iv, key) = self.skipped[pos].keys();
        let plaintext = aes_cbc_decrypt(&key, &iv, &message.ciphertext)?;
        self.skipped.remove(pos);
        Ok(plaintext)
    }
}

/// The sender-key states of one (group, sender), newest first, bounded.
#[derive(Clone, Default)]
pub struct SenderKeyRecord {
    states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds (or replaces, by key id) a state and makes it the newest.
    pub fn add(&mut self, state: SenderKeyState) {
        self.states.retain(|s| s.key_id != state.key_id);
        self.states.push_front(state);
        self.states.truncate(SENDER_KEY_STATES_MAX);
    }
    pub fn newest_mut(&mut self) -> Option<&mut SenderKeyState> {
        self.states.front_mut()
    }
    /// Parses and decrypts a serialized `SenderKeyMessage`.
    pub fn decrypt(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let message = SenderKeyMessage::deserialize(bytes)?;
        assert!(
            self.states.len() <= SENDER_KEY_STATES_MAX,
            "sender-key states stay within SENDER_KEY_STATES_MAX"
        );
        let state = self
            .states
            .iter_mut()
            .find(|s| s.key_id == message.key_id)
            .ok_or(E2eeError::UnknownSenderKey(message.key_id))?;
        state.decrypt(&message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The sender-key chain has the ratchet's bounds: 25,000 forward, 2,000 skipped keys kept.
    #[test]
    fn forward_jump_and_skipped_bounds() {
        let mut rng = crate::engine::SimRng::seed_from_u64(1);
        let mut sender = SenderKeyState::generate(&mut rng);
        let mut member = SenderKeyRecord::new();
        member.add(SenderKeyState::from_distribution(
            &sender.distribution_message(),
        ));
        let first = sender.encrypt(b"0", &mut rng).unwrap();
        for _ in 0..FORWARD_JUMP_MAX {
            sender.chain = sender.chain.step().1;
        }
        let far = sender.encrypt(b"far", &mut rng).unwrap();
        assert!(matches!(
            member.decrypt(far.serialized()),
            Err(E2eeError::TooFarAhead { .. })
        ));
        assert_eq!(member.decrypt(first.serialized()).unwrap(), b"0");
        assert_eq!(member.decrypt(far.serialized()).unwrap(), b"far");
        let state = member.newest_mut().unwrap();
        assert_eq!(state.skipped.len(), SKIPPED_KEYS_MAX);
    }
}
