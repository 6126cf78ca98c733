//! MLS (RFC 9420), the group protocol of the `mimi` design: every room is an MLS group, each
//! device an MLS client. The protocol is mls-rs's (chosen over openmls, which a test checks it
//! interoperates with: tests/integration/mls_interop.rs); what this module adds is what the
//! simulator needs of it: randomness from the run's RNG tree and times from the simulated clock
//! ([`crypto`]), so that a `mimi` run is byte-identical twice, and a small surface in the
//! simulator's terms: a [`Client`] publishes key packages and creates or joins [`Room`]s; a room
//! commits adds and removes, encrypts and reads messages, and tells its epoch.
//!
//! Messages cross as bytes (the TLS encoding of an `MlsMessage`), as they cross the wire between
//! providers; what a hub provider can read of them is what anyone can parse from those bytes.

pub mod crypto;

use crate::engine::{SimRng, SimTime};
use crypto::{Entropy, SimMlsCrypto, SUITE};
use mls_rs::client_builder::{BaseConfig, WithCryptoProvider, WithIdentityProvider};
use mls_rs::group::{CommitEffect, ReceivedMessage};
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::SigningIdentity;
use mls_rs::time::MlsTime;
use mls_rs::{CipherSuiteProvider, CryptoProvider, ExtensionList, MlsMessage};
use thiserror::Error;

type Config =
    WithIdentityProvider<BasicIdentityProvider, WithCryptoProvider<SimMlsCrypto, BaseConfig>>;

/// Simulated time 0 on MLS's clock (seconds since the Unix epoch): 2000-01-01T00:00:00Z. Key
/// package and leaf lifetimes are stamped from it, never from the machine's clock; a date long
/// past, so that a validation that read the machine's clock instead would find every lifetime
/// expired and fail (the tests would show it).
pub const EPOCH_UNIX_S: u64 = 946_684_800;

/// How long a key package is valid: openmls's default, and the longest range it accepts (84 days
/// and an hour), so that its clients take ours. A lifetime runs out 84 simulated days after its
/// key package was made (a creator that has only added members keeps its key package's leaf):
/// runs are hours to days; a run longer than that would need key packages republished and
/// leaves updated, and the `mimi` design must refuse it until it does.
pub const KEY_PACKAGE_LIFETIME_S: u64 = 84 * 24 * 3600;

/// What went wrong in MLS: the operation and mls-rs's own words.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MlsError {
    #[error("MLS {op} failed: {reason}")]
    Protocol { op: &'static str, reason: String },
    #[error("MLS {op}: the bytes are not an MLS message: {reason}")]
    Malformed { op: &'static str, reason: String },
    #[error("MLS {op}: expected {expected}, got another kind of message")]
    Unexpected {
        op: &'static str,
        expected: &'static str,
    },
    #[error("MLS client setup: the crypto provider does not offer {missing}")]
    Setup { missing: &'static str },
}

fn protocol(op: &'static str) -> impl FnOnce(mls_rs::error::MlsError) -> MlsError {
    move |e| MlsError::Protocol {
        op,
        reason: e.to_string(),
    }
}

fn decode(op: &'static str, bytes: &[u8]) -> Result<MlsMessage, MlsError> {
    MlsMessage::from_bytes(bytes).map_err(|e| MlsError::Malformed {
        op,
        reason: e.to_string(),
    })
}

fn encode(op: &'static str, message: &MlsMessage) -> Result<Vec<u8>, MlsError> {
    message.to_bytes().map_err(protocol(op))
}

/// MLS's clock at simulated time `now`.
pub fn mls_time(now: SimTime) -> MlsTime {
    MlsTime::from(EPOCH_UNIX_S + now.as_nanos() / 1_000_000_000)
}

/// One device's MLS client: its signing identity and the key packages it has published (their
/// private halves stay with it until a Welcome consumes one).
pub struct Client {
    client: mls_rs::Client<Config>,
}

impl Client {
    /// A client named `identity` (the basic credential other members see), drawing all its
    /// randomness from `rng`.
    pub fn new(identity: &[u8], rng: SimRng) -> Result<Self, MlsError> {
        let crypto = SimMlsCrypto::new(Entropy::new(rng));
        let suite = crypto.cipher_suite_provider(SUITE).ok_or(MlsError::Setup {
            missing: "cipher suite 1 (X25519, AES-128-GCM, SHA-256, Ed25519)",
        })?;
        let (secret, public) = suite
            .signature_key_generate()
            .map_err(|e| MlsError::Protocol {
                op: "signature key generation",
                reason: e.to_string(),
            })?;
        let credential = BasicCredential::new(identity.to_vec()).into_credential();
        let client = mls_rs::Client::builder()
            .identity_provider(BasicIdentityProvider)
            .crypto_provider(crypto)
            .signing_identity(SigningIdentity::new(credential, public), secret, SUITE)
            .key_package_lifetime(std::time::Duration::from_secs(KEY_PACKAGE_LIFETIME_S))
            .build();
        Ok(Client { client })
    }

    /// A new key package (the MLS counterpart of a one-time prekey: a Welcome consumes it).
    pub fn key_package(&self, now: SimTime) -> Result<Vec<u8>, MlsError> {
        let message = self
            .client
            .generate_key_package_message(
                ExtensionList::default(),
                ExtensionList::default(),
                Some(mls_time(now)),
            )
            .map_err(protocol("key package"))?;
        encode("key package", &message)
    }

    /// A room of one (its creator), named `room`.
    pub fn create_room(&self, room: &[u8], now: SimTime) -> Result<Room, MlsError> {
        let group = self
            .client
            .create_group_with_id(
                room.to_vec(),
                ExtensionList::default(),
                ExtensionList::default(),
                Some(mls_time(now)),
            )
            .map_err(protocol("room creation"))?;
        Ok(Room { group })
    }

    /// Joins the room a Welcome invites this client to (the ratchet tree rides in it).
    pub fn join(&self, welcome: &[u8], now: SimTime) -> Result<Room, MlsError> {
        let welcome = decode("join", welcome)?;
        let (group, _) = self
            .client
            .join_group(None, &welcome, Some(mls_time(now)))
            .map_err(protocol("join"))?;
        Ok(Room { group })
    }
}

/// A commit: the bytes every member gets, and the Welcome for the members it added (`None`
/// when it added none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
}

/// What a member read from the room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// An application message from the member at `sender` (its leaf index).
    Application { sender: u32, plaintext: Vec<u8> },
    /// A commit: the room is at `epoch` now.
    Commit { epoch: u64 },
    /// A commit that removed this member: it is no longer in the room (and reads nothing
    /// more of it).
    Removed,
}

/// One member's view of one room (an MLS group). A clone copies the group state but shares
/// the client's random stream (a draw by either advances both): for benches that start each
/// sample from the same state, not for a second member.
#[derive(Clone)]
pub struct Room {
    group: mls_rs::group::Group<Config>,
}

impl Room {
    pub fn id(&self) -> &[u8] {
        self.group.group_id()
    }

    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    pub fn members(&self) -> usize {
        self.group.roster().members_iter().count()
    }

    /// This member's leaf index (what others see as an application message's sender).
    pub fn own_index(&self) -> u32 {
        self.group.current_member_index()
    }

    /// The leaf index of the member whose credential is `identity`, if it is in the room.
    pub fn index_of(&self, identity: &[u8]) -> Option<u32> {
        self.group.roster().members_iter().find_map(|m| {
            let basic = m.signing_identity.credential.as_basic()?;
            (basic.identifier() == identity).then_some(m.index)
        })
    }

    /// Adds the owners of `key_packages` in one commit, applies it here, and returns it with
    /// their Welcome (a room with no hub to order commits: its creator's first adds).
    pub fn add(&mut self, key_packages: &[Vec<u8>], now: SimTime) -> Result<Commit, MlsError> {
        let commit = self.propose_add(key_packages, now)?;
        self.merge_pending("add")?;
        Ok(commit)
    }

    /// Removes the members at `indices` in one commit and applies it here.
    pub fn remove(&mut self, indices: &[u32], now: SimTime) -> Result<Commit, MlsError> {
        let commit = self.propose_remove(indices, now)?;
        self.merge_pending("remove")?;
        Ok(commit)
    }

    /// A commit adding the owners of `key_packages`, held pending: under a hub that orders
    /// the room's commits, it takes effect here when it comes back from the hub (`receive`
    /// applies it), and is dropped if the hub applies another commit to this epoch first
    /// (`receive` of that one drops it; the member proposes again in the new epoch).
    pub fn propose_add(
        &mut self,
        key_packages: &[Vec<u8>],
        now: SimTime,
    ) -> Result<Commit, MlsError> {
        let mut builder = self.group.commit_builder();
        for kp in key_packages {
            builder = builder
                .add_member(decode("add", kp)?)
                .map_err(protocol("add"))?;
        }
        let output = builder
            .commit_time(mls_time(now))
            .build()
            .map_err(protocol("add"))?;
        encoded(output, "add")
    }

    /// A commit removing the members at `indices`, held pending (see [`Room::propose_add`]).
    pub fn propose_remove(&mut self, indices: &[u32], now: SimTime) -> Result<Commit, MlsError> {
        let mut builder = self.group.commit_builder();
        for &i in indices {
            builder = builder.remove_member(i).map_err(protocol("remove"))?;
        }
        let output = builder
            .commit_time(mls_time(now))
            .build()
            .map_err(protocol("remove"))?;
        encoded(output, "remove")
    }

    /// Whether this member has a commit of its own waiting for the hub's order.
    pub fn has_pending(&self) -> bool {
        self.group.has_pending_commit()
    }

    /// Drops this member's pending commit (the hub refused it).
    pub fn discard_pending(&mut self) {
        self.group.clear_pending_commit();
    }

    fn merge_pending(&mut self, op: &'static str) -> Result<(), MlsError> {
        self.group.apply_pending_commit().map_err(protocol(op))?;
        Ok(())
    }

    /// Encrypts an application message to the room's current epoch.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, MlsError> {
        let message = self
            .group
            .encrypt_application_message(plaintext, Vec::new())
            .map_err(protocol("encrypt"))?;
        encode("encrypt", &message)
    }

    /// Reads a message of the room: an application message, another member's commit (which
    /// drops a pending commit of this member's for the same epoch), or this member's own
    /// pending commit back from the hub (which applies it).
    pub fn receive(&mut self, bytes: &[u8], now: SimTime) -> Result<Received, MlsError> {
        let message = decode("receive", bytes)?;
        let received = self
            .group
            .process_incoming_message_with_time(message, mls_time(now))
            .map_err(protocol("receive"))?;
        match received {
            ReceivedMessage::ApplicationMessage(app) => Ok(Received::Application {
                sender: app.sender_index,
                plaintext: app.data().to_vec(),
            }),
            ReceivedMessage::Commit(c) => Ok(match c.effect {
                CommitEffect::Removed { .. } => Received::Removed,
                _ => Received::Commit {
                    epoch: self.group.current_epoch(),
                },
            }),
            _ => Err(MlsError::Unexpected {
                op: "receive",
                expected: "an application message or a commit",
            }),
        }
    }
}

/// A commit as bytes: the commit and its Welcome.
fn encoded(output: mls_rs::group::CommitOutput, op: &'static str) -> Result<Commit, MlsError> {
    let welcome = match output.welcome_messages.first() {
        Some(w) => Some(encode(op, w)?),
        None => None,
    };
    Ok(Commit {
        commit: encode(op, &output.commit_message)?,
        welcome,
    })
}

#[cfg(test)]
mod tests;
