//! The session record: the current session state with one peer device plus up to
//! `ARCHIVED_STATES_MAX` earlier states. Earlier states are what make a simultaneous first
//! contact converge (each side holds both X3DH runs; the first message that decrypts on an
//! earlier state promotes it), and what lets late messages from a replaced session still open.
//! Session setup (initiator: `process_prekey_bundle`; responder: `decrypt_prekey`) lives here.

use std::collections::VecDeque;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::error::{E2eeError, Result};
use super::keys::{IdentityKeyPair, KeyPair};
use super::ratchet::{SessionState, StateInit};
use super::store::PreKeyStore;
use super::wire::{
    CiphertextMessage, PreKeyHeader, PreKeySignalMessage, SignalMessage, VERSION_PQ, VERSION_V3,
};
use super::x3dh::{self, PreKeyBundle, VerifiedBundle, INFO_PQXDH, INFO_X3DH};

/// libsignal consts.rs `ARCHIVED_STATES_MAX_LENGTH`.
pub const ARCHIVED_STATES_MAX: usize = 40;

/// What a prekey message decrypted to, and which one-time prekey the caller must now delete.
pub struct PreKeyDecrypted {
    pub plaintext: Vec<u8>,
    pub used_pre_key: Option<u32>,
}

/// All session states with one remote device; newest first.
#[derive(Clone, Default)]
pub struct SessionRecord {
    current: Option<SessionState>,
    previous: VecDeque<SessionState>,
}

impl SessionRecord {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn has_current(&self) -> bool {
        self.current.is_some()
    }
    pub fn current(&self) -> Option<&SessionState> {
        self.current.as_ref()
    }

    /// Makes `state` current, archiving the old current state (bounded).
    fn promote(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(ARCHIVED_STATES_MAX);
        }
    }

    /// Initiator: verifies the bundle, runs X3DH (or PQXDH if it offers a KEM prekey) and makes
    /// the new state current. Draws: base key, [KEM randomness], sending ratchet key.
    pub fn process_prekey_bundle(
        &mut self,
        our_identity: &IdentityKeyPair,
        our_registration_id: u32,
        bundle: &PreKeyBundle,
        rng: &mut impl CryptoRng,
    ) -> Result<()> {
        self.process_verified_bundle(our_identity, our_registration_id, bundle.verify()?, rng)
    }

    /// [`SessionRecord::process_prekey_bundle`] with the bundle already checked.
    pub fn process_verified_bundle(
        &mut self,
        our_identity: &IdentityKeyPair,
        our_registration_id: u32,
        verified: VerifiedBundle<'_>,
        rng: &mut impl CryptoRng,
    ) -> Result<()> {
        let bundle = verified.bundle();
        let base = KeyPair::generate(rng);
        let mut secret = x3dh::initiator_secret(&x3dh::InitiatorKeys {
            our_identity,
            our_base: &base,
            their_identity: &bundle.identity_key,
            their_signed_pre_key: &bundle.signed_pre_key,
            their_one_time: bundle.pre_key.as_ref().map(|(_, k)| k),
        });
        let (version, info, kem) = match &bundle.kem_pre_key {
            Some(kem_key) => {
                let (ciphertext, shared) = kem_key.encapsulate(rng)?;
                let dh_len = secret.len();
                secret.extend_from_slice(shared.as_ref());
                assert!(
                    secret.len() == dh_len + 32,
                    "the PQXDH secret is the X3DH secret and a 32-byte KEM secret"
                );
                (VERSION_PQ, INFO_PQXDH, Some((kem_key.id, ciphertext)))
            }
            None => (VERSION_V3, INFO_X3DH, None),
        };
        let (root, first_chain) = x3dh::derive_initial_keys(&secret, info);
        let sender_ratchet = KeyPair::generate(rng);
        let (root, sender_chain) = root.step(&bundle.signed_pre_key, &sender_ratchet.private);
        let header = PreKeyHeader {
            registration_id: our_registration_id,
            pre_key_id: bundle.pre_key.map(|(id, _)| id),
            signed_pre_key_id: bundle.signed_pre_key_id,
            kem,
            base_key: base.public,
            identity_key: *our_identity.public_key(),
        };
        let mut state = SessionState::new(StateInit {
            version,
            local_identity: *our_identity.public_key(),
            remote_identity: bundle.identity_key,
            remote_registration_id: bundle.registration_id,
            base_key: base.public,
            prekey_ids: (bundle.pre_key.map(|(id, _)| id), bundle.signed_pre_key_id),
            root,
            sender_ratchet,
            sender_chain,
            pending_prekey: Some(header),
        });
        state.add_receiver_chain(bundle.signed_pre_key, first_chain);
        self.promote(state);
        Ok(())
    }

    /// Encrypts for the current state (a prekey message until the peer has answered).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<CiphertextMessage> {
        self.current
            .as_mut()
            .map(|s| s.encrypt(plaintext))
            .ok_or(E2eeError::NoSession)
    }

    /// Decrypts a `SignalMessage` on the current state or, failing that, an earlier one (which
    /// is then promoted). On error nothing changes.
    pub fn decrypt(
        &mut self,
        message: &SignalMessage,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>> {
        assert!(
            self.previous.len() <= ARCHIVED_STATES_MAX,
            "archived states stay within ARCHIVED_STATES_MAX"
        );
        let current = self.current.as_mut().ok_or(E2eeError::NoSession)?;
        let first_error = match current.decrypt_staged(message, rng) {
            Ok((plaintext, commit)) => {
                current.apply(commit);
                return Ok(plaintext);
            }
            Err(e) => e,
        };
        for idx in 0..self.previous.len() {
            if let Ok((plaintext, commit)) = self.previous[idx].decrypt_staged(message, rng) {
                let mut state = self.previous.remove(idx).expect("index in range");
                state.apply(commit);
                self.promote(state);
                return Ok(plaintext);
            }
        }
        Err(first_error)
    }

    /// Responder: decrypts a prekey message, building the session from it unless a state from
    /// the same X3DH run (same base key) exists. On error nothing changes.
    pub fn decrypt_prekey(
        &mut self,
        message: &PreKeySignalMessage,
        keys: &impl PreKeyStore,
        rng: &mut impl CryptoRng,
    ) -> Result<PreKeyDecrypted> {
        if let Some(idx) = self.find_run(message) {
            let plaintext = self.decrypt_on_run(idx, &message.message, rng)?;
            return Ok(PreKeyDecrypted {
                plaintext,
                used_pre_key: None,
            });
        }
        let state = responder_state(message, keys)?;
        let (plaintext, commit) = state.decrypt_staged(&message.message, rng)?;
        let mut state = state;
        state.apply(commit);
        self.promote(state);
        assert!(
            self.current
                .as_ref()
                .is_some_and(|s| s.pending_prekey.is_none()),
            "a session built from a prekey message is current and acknowledged"
        );
        Ok(PreKeyDecrypted {
            plaintext,
            used_pre_key: message.pre_key_id,
        })
    }

    /// Same X3DH run: same version and base key, and the unauthenticated outer fields agree
    /// with what the run recorded (so a tampered repeat is refused, not silently accepted).
    fn matches(state: &SessionState, message: &PreKeySignalMessage) -> bool {
        state.version == message.version
            && state.base_key == message.base_key
            && state.remote_identity == message.identity_key
            && state.remote_registration_id == message.registration_id
            && state.prekey_ids == (message.pre_key_id, message.signed_pre_key_id)
    }

    fn find_run(&self, message: &PreKeySignalMessage) -> Option<usize> {
        if self
            .current
            .as_ref()
            .is_some_and(|s| Self::matches(s, message))
        {
            return Some(0);
        }
        let found = self
            .previous
            .iter()
            .position(|s| Self::matches(s, message))
            .map(|i| i + 1);
        assert!(
            found.is_none_or(|i| i <= self.previous.len()),
            "a run index names the current state or an archived one"
        );
        found
    }

    /// Decrypts on state `idx` (0 = current, i = previous[i - 1]), promoting it on success.
    fn decrypt_on_run(
        &mut self,
        idx: usize,
        message: &SignalMessage,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>> {
        assert!(
            idx <= self.previous.len(),
            "a run index names the current state or an archived one"
        );
        let state = match idx {
            0 => self.current.as_mut(),
            i => self.previous.get_mut(i - 1),
        }
        .ok_or(E2eeError::NoMatchingState)?;
        let (plaintext, commit) = state.decrypt_staged(message, rng)?;
        state.apply(commit);
        if idx > 0 {
            if let Some(state) = self.previous.remove(idx - 1) {
                self.promote(state);
            }
        }
        Ok(plaintext)
    }
}

/// Runs the responder side of X3DH / PQXDH for `message` and builds the new state.
fn responder_state(message: &PreKeySignalMessage, keys: &impl PreKeyStore) -> Result<SessionState> {
    let signed = keys
        .signed_pre_key(message.signed_pre_key_id)
        .ok_or(E2eeError::UnknownSignedPreKey(message.signed_pre_key_id))?;
    let one_time = match message.pre_key_id {
        Some(id) => Some(keys.pre_key(id).ok_or(E2eeError::UnknownPreKey(id))?),
        None => None,
    };
    let mut secret = x3dh::responder_secret(&x3dh::ResponderKeys {
        our_identity: keys.identity(),
        our_signed_pre_key: signed,
        our_one_time: one_time,
        their_identity: &message.identity_key,
        their_base: &message.base_key,
    });
    let info = kem_part(message, keys, &mut secret)?;
    // `kem_part` admits only (no KEM, v3) and (KEM, PQXDH).
    assert!(
        matches!(message.version, VERSION_V3 | VERSION_PQ),
        "a responder state has a known version"
    );
    let (root, sender_chain) = x3dh::derive_initial_keys(&secret, info);
    Ok(SessionState::new(StateInit {
        version: message.version,
        local_identity: *keys.identity().public_key(),
        remote_identity: message.identity_key,
        remote_registration_id: message.registration_id,
        base_key: message.base_key,
        prekey_ids: (message.pre_key_id, message.signed_pre_key_id),
        root,
        sender_ratchet: signed.clone(),
        sender_chain,
        pending_prekey: None,
    }))
}

/// Appends the KEM shared secret for PQXDH messages; returns the HKDF info to use.
fn kem_part(
    message: &PreKeySignalMessage,
    keys: &impl PreKeyStore,
    secret: &mut Zeroizing<Vec<u8>>,
) -> Result<&'static [u8]> {
    match (&message.kem, message.version) {
        (None, VERSION_V3) => Ok(INFO_X3DH),
        (Some((id, ciphertext)), VERSION_PQ) => {
            let pair = keys
                .kem_pre_key(*id)
                .ok_or(E2eeError::UnknownKemPreKey(*id))?;
            let dh_len = secret.len();
            secret.extend_from_slice(pair.decapsulate(ciphertext)?.as_ref());
            assert!(
                secret.len() == dh_len + 32,
                "the PQXDH secret is the X3DH secret and a 32-byte KEM secret"
            );
            Ok(INFO_PQXDH)
        }
        _ => Err(E2eeError::MissingKem),
    }
}
