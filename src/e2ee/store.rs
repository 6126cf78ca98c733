//! A device's own keys: identity, signed prekey, one-time prekeys and (for PQXDH) a signed KEM
//! prekey. The responder side of a session looks keys up through `PreKeyStore`, so a device node
//! can keep them however it likes; `DeviceKeys` is the plain in-memory store.

use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::keys::{IdentityKeyPair, KeyPair, PublicKey};
use super::pqxdh::{KemKeyPair, KemPreKeyPublic};
use super::x3dh::PreKeyBundle;

/// The lookups the responder needs to answer a prekey message.
pub trait PreKeyStore {
    fn identity(&self) -> &IdentityKeyPair;
    fn registration_id(&self) -> u32;
    fn signed_pre_key(&self, id: u32) -> Option<&KeyPair>;
    fn pre_key(&self, id: u32) -> Option<&KeyPair>;
    fn kem_pre_key(&self, id: u32) -> Option<&KemKeyPair>;
}

struct SignedPreKey {
    id: u32,
    pair: KeyPair,
    signature: [u8; 64],
}

struct KemPreKey {
    pair: KemKeyPair,
    public: KemPreKeyPublic,
}

/// One device's key material, in memory.
pub struct DeviceKeys {
    identity: IdentityKeyPair,
    registration_id: u32,
    device_id: u32,
    signed: SignedPreKey,
    one_time: BTreeMap<u32, KeyPair>,
    next_pre_key_id: u32,
    kem: Option<KemPreKey>,
}

impl DeviceKeys {
    /// A new identity with signed prekey id 1 (draws: identity, signed prekey, signature).
    pub fn generate(registration_id: u32, device_id: u32, rng: &mut impl CryptoRng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let pair = KeyPair::generate(rng);
        let signature = identity.sign(&[&pair.public.serialize()], rng);
        assert!(
            pair.public != *identity.public_key(),
            "the signed prekey is a key apart from the identity"
        );
        DeviceKeys {
            identity,
            registration_id,
            device_id,
            signed: SignedPreKey {
                id: 1,
                pair,
                signature,
            },
            one_time: BTreeMap::new(),
            next_pre_key_id: 1,
            kem: None,
        }
    }

    /// Adds a signed ML-KEM-1024 last-resort prekey (id 1), so bundles offer PQXDH.
    pub fn enable_pqxdh(&mut self, rng: &mut impl CryptoRng) {
        let pair = KemKeyPair::generate(rng);
        let public = KemPreKeyPublic::sign(1, &pair, &self.identity, rng);
        self.kem = Some(KemPreKey { pair, public });
    }

    /// Generates `count` one-time prekeys and returns their public halves.
    pub fn add_one_time_pre_keys(
        &mut self,
        count: u32,
        rng: &mut impl CryptoRng,
    ) -> Vec<(u32, PublicKey)> {
        (0..count)
            .map(|_| {
                let id = self.next_pre_key_id;
                assert!(
                    (1..=0xFF_FFFE).contains(&id),
                    "one-time prekey ids stay in 1..=0xFFFFFE"
                );
                self.next_pre_key_id = self.next_pre_key_id % 0xFF_FFFE + 1;
                let pair = KeyPair::generate(rng);
                let public = pair.public;
                self.one_time.insert(id, pair);
                (id, public)
            })
            .collect()
    }

    /// A bundle; with `one_time` a fresh one-time prekey is generated and offered.
    pub fn bundle(&mut self, one_time: bool, rng: &mut impl CryptoRng) -> PreKeyBundle {
        let pre_key = if one_time {
            self.add_one_time_pre_keys(1, rng).pop()
        } else {
            None
        };
        assert!(
            pre_key.is_some() == one_time,
            "a bundle offers a one-time prekey exactly when asked"
        );
        PreKeyBundle {
            registration_id: self.registration_id,
            device_id: self.device_id,
            pre_key,
            signed_pre_key_id: self.signed.id,
            signed_pre_key: self.signed.pair.public,
            signed_pre_key_signature: self.signed.signature,
            identity_key: *self.identity.public_key(),
            kem_pre_key: self.kem.as_ref().map(|k| k.public.clone()),
        }
    }

    /// Deletes a one-time prekey once a session used it.
    pub fn remove_pre_key(&mut self, id: u32) {
        self.one_time.remove(&id);
    }
}

impl PreKeyStore for DeviceKeys {
    fn identity(&self) -> &IdentityKeyPair {
        &self.identity
    }
    fn registration_id(&self) -> u32 {
        self.registration_id
    }
    fn signed_pre_key(&self, id: u32) -> Option<&KeyPair> {
        (id == self.signed.id).then_some(&self.signed.pair)
    }
    fn pre_key(&self, id: u32) -> Option<&KeyPair> {
        self.one_time.get(&id)
    }
    fn kem_pre_key(&self, id: u32) -> Option<&KemKeyPair> {
        self.kem
            .as_ref()
            .filter(|k| k.public.id == id)
            .map(|k| &k.pair)
    }
}
