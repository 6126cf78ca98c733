//! One Double Ratchet session state, as libsignal v3 keeps it: a root key, one sending chain and
//! up to `RECEIVER_CHAINS_MAX` receiving chains, each with its skipped message keys (bounded by
//! `SKIPPED_KEYS_MAX` per chain and `FORWARD_JUMP_MAX` per message).
//!
//! Decryption is staged: `decrypt_staged` reads the state and returns the plaintext together with
//! a `Commit` describing the change; the caller applies it only on success. A refused message
//! therefore leaves the state exactly as it was, without cloning the state on the hot path.

use std::collections::VecDeque;

use rand_core::CryptoRng;

use super::chain::{ChainKey, MessageKeySeed, MessageKeys, RootKey};
use super::error::{E2eeError, Result};
use super::kdf::{aes_cbc_decrypt, aes_cbc_encrypt};
use super::keys::{KeyPair, PublicKey};
use super::wire::{
    CiphertextMessage, MacInput, PreKeyHeader, PreKeySignalMessage, SignalMessage, VERSION_PQ,
    VERSION_V3,
};

/// libsignal consts.rs `MAX_MESSAGE_KEYS`: skipped message keys kept per receiving chain.
pub const SKIPPED_KEYS_MAX: usize = 2000;
/// libsignal consts.rs `MAX_FORWARD_JUMPS`: how far ahead of its chain a message may be.
pub const FORWARD_JUMP_MAX: u32 = 25_000;
/// libsignal consts.rs `MAX_RECEIVER_CHAINS`.
pub const RECEIVER_CHAINS_MAX: usize = 5;

#[derive(Clone)]
pub(crate) struct ReceiverChain {
    their_ratchet: PublicKey,
    chain: ChainKey,
    skipped: VecDeque<MessageKeySeed>,
}

/// A session with one remote device, from one X3DH / PQXDH run.
#[derive(Clone)]
pub struct SessionState {
    pub(crate) version: u8,
    pub(crate) local_identity: PublicKey,
    pub(crate) remote_identity: PublicKey,
    pub(crate) remote_registration_id: u32,
    /// The initiator's base key: names the X3DH run this state came from.
    pub(crate) base_key: PublicKey,
    /// (one-time prekey id, signed prekey id) the run used.
    pub(crate) prekey_ids: (Option<u32>, u32),
    root: RootKey,
    sender_ratchet: KeyPair,
    sender_chain: ChainKey,
    previous_counter: u32,
    receivers: VecDeque<ReceiverChain>,
    /// Set on the initiator until the first reply: every message is then a prekey message.
    pub(crate) pending_prekey: Option<PreKeyHeader>,
}

/// The state change a successful decryption makes; applied only after MAC and padding checks.
pub(crate) enum Commit {
    UseSkipped {
        chain: usize,
        pos: usize,
    },
    Advance {
        chain: usize,
        next: ChainKey,
        skipped: Vec<MessageKeySeed>,
    },
    NewChain {
        root: RootKey,
        sender: KeyPair,
        sender_chain: ChainKey,
        receiver: ReceiverChain,
    },
}

/// How a state starts: identities, versions, and the keys the handshake produced.
pub(crate) struct StateInit {
    pub version: u8,
    pub local_identity: PublicKey,
    pub remote_identity: PublicKey,
    pub remote_registration_id: u32,
    pub base_key: PublicKey,
    pub prekey_ids: (Option<u32>, u32),
    pub root: RootKey,
    pub sender_ratchet: KeyPair,
    pub sender_chain: ChainKey,
    pub pending_prekey: Option<PreKeyHeader>,
}

impl SessionState {
    pub(crate) fn new(init: StateInit) -> Self {
        assert!(
            init.sender_chain.index() == 0,
            "a session starts its sending chain at index 0"
        );
        SessionState {
            version: init.version,
            local_identity: init.local_identity,
            remote_identity: init.remote_identity,
            remote_registration_id: init.remote_registration_id,
            base_key: init.base_key,
            prekey_ids: init.prekey_ids,
            root: init.root,
            sender_ratchet: init.sender_ratchet,
            sender_chain: init.sender_chain,
            previous_counter: 0,
            receivers: VecDeque::new(),
            pending_prekey: init.pending_prekey,
        }
    }

    /// Adds the initiator's first receiving chain (their signed prekey is their first ratchet key).
    pub(crate) fn add_receiver_chain(&mut self, their_ratchet: PublicKey, chain: ChainKey) {
        assert!(
            chain.index() == 0,
            "a first receiving chain starts at index 0"
        );
        self.push_receiver(ReceiverChain {
            their_ratchet,
            chain,
            skipped: VecDeque::new(),
        });
    }

    fn push_receiver(&mut self, receiver: ReceiverChain) {
        self.receivers.push_back(receiver);
        if self.receivers.len() > RECEIVER_CHAINS_MAX {
            self.receivers.pop_front();
        }
        assert!(
            self.receivers.len() <= RECEIVER_CHAINS_MAX,
            "receiving chains stay within RECEIVER_CHAINS_MAX"
        );
    }

    pub fn remote_identity(&self) -> &PublicKey {
        &self.remote_identity
    }
    pub fn remote_registration_id(&self) -> u32 {
        self.remote_registration_id
    }
    pub fn version(&self) -> u8 {
        self.version
    }

    fn mac_input<'a>(&'a self, keys: &'a MessageKeys, sending: bool) -> MacInput<'a> {
        // The MAC binds the version byte too: one this session does not speak would never verify.
        assert!(
            matches!(self.version, VERSION_V3 | VERSION_PQ),
            "a session MACs under a known version"
        );
        let (sender_identity, receiver_identity) = if sending {
            (&self.local_identity, &self.remote_identity)
        } else {
            (&self.remote_identity, &self.local_identity)
        };
        MacInput {
            sender_identity,
            receiver_identity,
            mac_key: &keys.mac_key,
        }
    }

    /// Encrypts on the sending chain (symmetric step; no randomness needed in v3).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> CiphertextMessage {
        // Only our own sends move this chain, one per message: a wrap would repeat message keys.
        assert!(
            self.sender_chain.index() < u32::MAX,
            "the sending chain never wraps"
        );
        let (seed, next) = self.sender_chain.step();
        let keys = seed.derive();
        let ciphertext = aes_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let counters = (keys.counter, self.previous_counter);
        let ratchet = self.sender_ratchet.public;
        let message = SignalMessage::new(
            self.version,
            ratchet,
            counters,
            ciphertext,
            &self.mac_input(&keys, true),
        );
        self.sender_chain = next;
        match &self.pending_prekey {
            Some(header) => {
                CiphertextMessage::PreKey(PreKeySignalMessage::new(header.clone(), message))
            }
            None => CiphertextMessage::Signal(message),
        }
    }

    /// Decrypts without changing the state; returns the plaintext and the change to apply.
    pub(crate) fn decrypt_staged(
        &self,
        message: &SignalMessage,
        rng: &mut impl CryptoRng,
    ) -> Result<(Vec<u8>, Commit)> {
        assert!(
            matches!(self.version, VERSION_V3 | VERSION_PQ),
            "a session state has a known version"
        );
        if message.version != self.version {
            return Err(E2eeError::NoMatchingState);
        }
        let position = self
            .receivers
            .iter()
            .position(|r| r.their_ratchet == message.ratchet_key);
        match position {
            Some(idx) => self.decrypt_on_chain(idx, message),
            None => self.decrypt_on_new_chain(message, rng),
        }
    }

    fn decrypt_on_chain(&self, idx: usize, message: &SignalMessage) -> Result<(Vec<u8>, Commit)> {
        let receiver = &self.receivers[idx];
        assert!(
            receiver.skipped.len() <= SKIPPED_KEYS_MAX,
            "skipped keys stay within SKIPPED_KEYS_MAX per chain"
        );
        if message.counter < receiver.chain.index() {
            let pos = receiver
                .skipped
                .iter()
                .position(|s| s.counter == message.counter)
                .ok_or(E2eeError::Duplicate(message.counter))?;
            let plaintext = self.open(message, &receiver.skipped[pos].derive())?;
            return Ok((plaintext, Commit::UseSkipped { chain: idx, pos }));
        }
        let (keys, next, skipped) = advance_chain(&receiver.chain, message.counter)?;
        let plaintext = self.open(message, &keys)?;
        Ok((
            plaintext,
            Commit::Advance {
                chain: idx,
                next,
                skipped,
            },
        ))
    }

    fn decrypt_on_new_chain(
        &self,
        message: &SignalMessage,
        rng: &mut impl CryptoRng,
    ) -> Result<(Vec<u8>, Commit)> {
        let their = message.ratchet_key;
        let (root, chain) = self.root.step(&their, &self.sender_ratchet.private);
        let (keys, next, skipped) = advance_chain(&chain, message.counter)?;
        let plaintext = self.open(message, &keys)?;
        let sender = KeyPair::generate(rng);
        let (root, sender_chain) = root.step(&their, &sender.private);
        assert!(
            sender_chain.index() == 0,
            "a turned ratchet sends from index 0"
        );
        let skipped = skipped.into_iter().collect();
        let receiver = ReceiverChain {
            their_ratchet: their,
            chain: next,
            skipped,
        };
        Ok((
            plaintext,
            Commit::NewChain {
                root,
                sender,
                sender_chain,
                receiver,
            },
        ))
    }

    fn open(&self, message: &SignalMessage, keys: &MessageKeys) -> Result<Vec<u8>> {
        if !message.verify_mac(&self.mac_input(keys, false)) {
            return Err(E2eeError::BadMac);
        }
        aes_cbc_decrypt(&keys.cipher_key, &keys.iv, &message.ciphertext)
    }

    /// Applies a staged change; a successful decryption also acknowledges the session.
    pub(crate) fn apply(&mut self, commit: Commit) {
        if let Commit::UseSkipped { chain, .. } | Commit::Advance { chain, .. } = commit {
            assert!(
                chain < self.receivers.len(),
                "a commit applies to the state that staged it"
            );
        }
        self.pending_prekey = None;
        match commit {
            Commit::UseSkipped { chain, pos } => {
                self.receivers[chain].skipped.remove(pos);
            }
            Commit::Advance {
                chain,
                next,
                skipped,
            } => {
                let receiver = &mut self.receivers[chain];
                receiver.chain = next;
                store_skipped(&mut receiver.skipped, skipped);
            }
            Commit::NewChain {
                root,
                sender,
                sender_chain,
                receiver,
            } => {
                self.root = root;
                self.previous_counter = self.sender_chain.index().saturating_sub(1);
                self.sender_ratchet = sender;
                self.sender_chain = sender_chain;
                self.push_receiver(receiver);
            }
        }
    }
}

/// Steps `chain` to `counter`: (that message's keys, the chain after it, skipped key seeds).
/// Only the last `SKIPPED_KEYS_MAX` skipped seeds are kept, as libsignal does.
fn advance_chain(
    chain: &ChainKey,
    counter: u32,
) -> Result<(MessageKeys, ChainKey, Vec<MessageKeySeed>)> {
    assert!(counter >= chain.index(), "a chain is only advanced forward");
    let jump = counter - chain.index();
    if jump > FORWARD_JUMP_MAX {
        return Err(E2eeError::TooFarAhead {
            counter,
            max_jump: FORWARD_JUMP_MAX,
        });
    }
    let keep_from = counter.saturating_sub(SKIPPED_KEYS_MAX as u32);
    let mut skipped = Vec::with_capacity((jump as usize).min(SKIPPED_KEYS_MAX));
    let mut current = chain.clone();
    loop {
        let (seed, next) = current.step();
        if current.index() == counter {
            assert!(
                skipped.len() <= SKIPPED_KEYS_MAX,
                "a jump keeps at most SKIPPED_KEYS_MAX skipped keys"
            );
            return Ok((seed.derive(), next, skipped));
        }
        if current.index() >= keep_from {
            skipped.push(seed);
        }
        current = next;
    }
}

fn store_skipped(store: &mut VecDeque<MessageKeySeed>, new: Vec<MessageKeySeed>) {
    store.extend(new);
    while store.len() > SKIPPED_KEYS_MAX {
        store.pop_front();
    }
}
