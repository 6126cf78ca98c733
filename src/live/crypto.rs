//! The load generator's end-to-end encryption: real Signal sessions (X3DH + Double Ratchet,
//! this crate's `e2ee`) per pair of devices. The generator encrypts each message before it
//! leaves and decrypts it on arrival; servers only ever carry the bytes. Kept here, in live/,
//! so that the generator does not depend on how the simulated devices use the same protocol.

use crate::e2ee::{
    DeviceKeys, E2eeError, PreKeyBundle, PreKeySignalMessage, PreKeyStore, SessionRecord,
    SignalMessage,
};
use crate::engine::SimRng;
use crate::wire::{DeviceId, MsgId};
use rustc_hash::FxHashMap; // determinism: ok (lookups only, never iterated)
use std::sync::Arc;

/// First byte of the carried ciphertext: which Signal message follows.
const KIND_SIGNAL: u8 = 0;
const KIND_PREKEY: u8 = 1;

/// The key directory as the generator sees it: every device's published bundle (signed prekey
/// only, so that one bundle serves every initiator).
pub type KeyDirectory = Arc<Vec<PreKeyBundle>>;

/// The sessions and keys of the devices one generator shard holds.
pub struct Crypto {
    /// Own devices' keys, by device index (`None`: another shard's).
    keys: Vec<Option<DeviceKeys>>,
    directory: KeyDirectory,
    /// (own device, peer device) -> session.
    sessions: FxHashMap<(u32, u32), SessionRecord>, // determinism: ok (lookups only)
    rng: SimRng,
    pub encrypted: u64,
    pub decrypted: u64,
    pub sessions_started: u64,
}

/// The plaintext of message `msg`: a marker the gateway probe looks for, the id, padding.
pub fn plaintext(marker: &[u8], msg: MsgId, body_bytes: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(marker);
    out.extend_from_slice(&msg.0.to_le_bytes());
    let len = (body_bytes as usize).max(out.len());
    out.resize(len, b'.');
}

impl Crypto {
    pub fn new(keys: Vec<Option<DeviceKeys>>, directory: KeyDirectory, rng: SimRng) -> Self {
        Crypto {
            keys,
            directory,
            sessions: FxHashMap::default(),
            rng,
            encrypted: 0,
            decrypted: 0,
            sessions_started: 0,
        }
    }

    /// Encrypts `plaintext` from `own` to `peer`, starting a session from the peer's bundle
    /// the first time.
    pub fn encrypt(
        &mut self,
        own: DeviceId,
        peer: DeviceId,
        plaintext: &[u8],
    ) -> Result<Box<[u8]>, E2eeError> {
        let keys = self.keys[own.index()]
            .as_ref()
            .ok_or(E2eeError::NoSession)?;
        let record = self.sessions.entry((own.0, peer.0)).or_default();
        if !record.has_current() {
            record.process_prekey_bundle(
                keys.identity(),
                keys.registration_id(),
                &self.directory[peer.index()],
                &mut self.rng,
            )?;
            self.sessions_started += 1;
        }
        let ct = record.encrypt(plaintext)?;
        self.encrypted += 1;
        let kind = if ct.is_prekey() {
            KIND_PREKEY
        } else {
            KIND_SIGNAL
        };
        let body = ct.serialized();
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(kind);
        out.extend_from_slice(body);
        Ok(out.into_boxed_slice())
    }

    /// Decrypts what `peer` sent to `own`. On error nothing changes.
    pub fn decrypt(
        &mut self,
        own: DeviceId,
        peer: DeviceId,
        bytes: &[u8],
    ) -> Result<Vec<u8>, E2eeError> {
        let (&kind, body) = bytes.split_first().ok_or(E2eeError::NoSession)?;
        let keys = self.keys[own.index()]
            .as_mut()
            .ok_or(E2eeError::NoSession)?;
        let record = self.sessions.entry((own.0, peer.0)).or_default();
        let plaintext = if kind == KIND_PREKEY {
            let m = PreKeySignalMessage::deserialize(body)?;
            let d = record.decrypt_prekey(&m, keys, &mut self.rng)?;
            if let Some(id) = d.used_pre_key {
                keys.remove_pre_key(id);
            }
            d.plaintext
        } else {
            let m = SignalMessage::deserialize(body)?;
            record.decrypt(&m, &mut self.rng)?
        };
        self.decrypted += 1;
        Ok(plaintext)
    }
}
