//! The four message types exactly as libsignal (v3) serializes them: a version byte, a protobuf
//! body (prost derive structs written by hand from libsignal's `wire.proto`, field numbers
//! included, so no protoc or build.rs), then a MAC or signature. Parsing is total: any byte
//! string yields a message or an `E2eeError`.
//!
//! PQXDH sessions use the same layout with version byte 0x44 and the two extra
//! `PreKeySignalMessage` fields libsignal reserves for the KEM (7: KEM prekey id, 8: KEM
//! ciphertext); see `pqxdh.rs`.

use prost::Message;

use super::error::{E2eeError, Result};
use super::kdf::{ct_eq, hmac_sha256};
use super::keys::{IdentityKeyPair, PublicKey};
use rand_core::CryptoRng;

/// Message version 3 (X3DH sessions): high nibble = message version, low nibble = current version.
pub const VERSION_V3: u8 = 3;
/// Message version 4: our PQXDH sessions (same ratchet, KEM fields in the prekey message).
pub const VERSION_PQ: u8 = 4;
pub const MAC_LEN: usize = 8;
pub const SIGNATURE_LEN: usize = 64;

pub const fn version_byte(version: u8) -> u8 {
    (version << 4) | version
}

fn check_version(byte: u8) -> Result<u8> {
    match byte >> 4 {
        v @ (VERSION_V3 | VERSION_PQ) => Ok(v),
        _ => Err(E2eeError::Version(byte)),
    }
}

pub mod proto {
    //! libsignal `wire.proto` (proto2), v3 field numbers; sender-key messages in the v3 layout.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SignalMessage {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub ratchet_key: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "2")]
        pub counter: Option<u32>,
        #[prost(uint32, optional, tag = "3")]
        pub previous_counter: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub ciphertext: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PreKeySignalMessage {
        #[prost(uint32, optional, tag = "5")]
        pub registration_id: Option<u32>,
        #[prost(uint32, optional, tag = "1")]
        pub pre_key_id: Option<u32>,
        #[prost(uint32, optional, tag = "6")]
        pub signed_pre_key_id: Option<u32>,
        #[prost(uint32, optional, tag = "7")]
        pub kem_pre_key_id: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "8")]
        pub kem_ciphertext: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub base_key: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub identity_key: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub message: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SenderKeyMessage {
        #[prost(uint32, optional, tag = "1")]
        pub id: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub iteration: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub ciphertext: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SenderKeyDistributionMessage {
        #[prost(uint32, optional, tag = "1")]
        pub id: Option<u32>,
        #[prost(uint32, optional, tag = "2")]
        pub iteration: Option<u32>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub chain_key: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub signing_key: Option<Vec<u8>>,
    }
}

fn need<T>(field: Option<T>, what: &'static str) -> Result<T> {
    field.ok_or(E2eeError::Decode(what))
}

fn key32(bytes: Vec<u8>, what: &'static str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| E2eeError::Decode(what))
}

/// A Double Ratchet message: 0x33 || protobuf || 8-byte MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    pub version: u8,
    pub ratchet_key: PublicKey,
    pub counter: u32,
    pub previous_counter: u32,
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

/// The identities and key a MAC binds: sender identity, receiver identity, MAC key.
pub struct MacInput<'a> {
    pub sender_identity: &'a PublicKey,
    pub receiver_identity: &'a PublicKey,
    pub mac_key: &'a [u8; 32],
}

impl SignalMessage {
    pub fn new(
        version: u8,
        ratchet_key: PublicKey,
        counters: (u32, u32),
        ciphertext: Vec<u8>,
        mac: &MacInput<'_>,
    ) -> Self {
        assert!(
            matches!(version, VERSION_V3 | VERSION_PQ),
            "a SignalMessage is built with a known version"
        );
        let body = proto::SignalMessage {
            ratchet_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counters.0),
            previous_counter: Some(counters.1),
            ciphertext: Some(ciphertext.clone()),
        };
        let len = 1 + body.encoded_len() + MAC_LEN;
        let mut serialized = Vec::with_capacity(len);
        serialized.push(version_byte(version));
        body.encode(&mut serialized).expect("Vec grows as needed");
        let tag = compute_mac(mac, &serialized);
        serialized.extend_from_slice(&tag);
        assert!(
            serialized.len() == len,
            "a SignalMessage is version byte, body and MAC"
        );
        let (counter, previous_counter) = counters;
        SignalMessage {
            version,
            ratchet_key,
            counter,
            previous_counter,
            ciphertext,
            serialized,
        }
    }

    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let (&first, rest) = bytes.split_first().ok_or(E2eeError::Decode("empty"))?;
        let version = check_version(first)?;
        if rest.len() < MAC_LEN {
            return Err(E2eeError::Decode("shorter than its MAC"));
        }
        let body = proto::SignalMessage::decode(&rest[..rest.len() - MAC_LEN])
            .map_err(|_| E2eeError::Decode("protobuf"))?;
        let ratchet_key = PublicKey::deserialize(&need(body.ratchet_key, "ratchet key")?)?;
        let message = SignalMessage {
            version,
            ratchet_key,
            counter: need(body.counter, "counter")?,
            previous_counter: body.previous_counter.unwrap_or(0),
            ciphertext: need(body.ciphertext, "ciphertext")?,
            serialized: bytes.to_vec(),
        };
        // What `verify_mac` relies on, checked above.
        assert!(
            message.serialized.len() > MAC_LEN,
            "a decoded SignalMessage holds its version byte and MAC"
        );
        Ok(message)
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// Constant-time check of the truncated HMAC.
    pub fn verify_mac(&self, mac: &MacInput<'_>) -> bool {
        assert!(
            self.serialized.len() > MAC_LEN,
            "a SignalMessage holds its version byte and MAC"
        );
        let split = self.serialized.len() - MAC_LEN;
        let expected = compute_mac(mac, &self.serialized[..split]);
        ct_eq(&expected, &self.serialized[split..])
    }
}

/// HMAC-SHA256(mac key, sender identity (33) || receiver identity (33) || version || protobuf),
/// truncated to 8 bytes.
fn compute_mac(mac: &MacInput<'_>, versioned_body: &[u8]) -> [u8; MAC_LEN] {
    // Built by `SignalMessage::new`, or decoded past `check_version`.
    assert!(
        matches!(
            versioned_body.first().map(|b| b >> 4),
            Some(VERSION_V3 | VERSION_PQ)
        ),
        "a MAC'd body starts with a known version byte"
    );
    let full = hmac_sha256(
        mac.mac_key,
        &[
            &mac.sender_identity.serialize(),
            &mac.receiver_identity.serialize(),
            versioned_body,
        ],
    );
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

/// The first messages of a session carry what the responder needs to run X3DH / PQXDH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    pub version: u8,
    pub registration_id: u32,
    pub pre_key_id: Option<u32>,
    pub signed_pre_key_id: u32,
    pub kem: Option<(u32, Vec<u8>)>,
    pub base_key: PublicKey,
    pub identity_key: PublicKey,
    pub message: SignalMessage,
    serialized: Vec<u8>,
}

/// The fields of a prekey message other than the inner message, as the initiator keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeyHeader {
    pub registration_id: u32,
    pub pre_key_id: Option<u32>,
    pub signed_pre_key_id: u32,
    pub kem: Option<(u32, Vec<u8>)>,
    pub base_key: PublicKey,
    pub identity_key: PublicKey,
}

impl PreKeySignalMessage {
    pub fn new(header: PreKeyHeader, message: SignalMessage) -> Self {
        assert!(
            header.kem.is_some() == (message.version == VERSION_PQ),
            "a prekey message carries KEM fields exactly in PQXDH sessions"
        );
        let (kem_pre_key_id, kem_ciphertext) = match &header.kem {
            Some((id, ct)) => (Some(*id), Some(ct.clone())),
            None => (None, None),
        };
        let body = proto::PreKeySignalMessage {
            registration_id: Some(header.registration_id),
            pre_key_id: header.pre_key_id,
            signed_pre_key_id: Some(header.signed_pre_key_id),
            kem_pre_key_id,
            kem_ciphertext,
            base_key: Some(header.base_key.serialize().to_vec()),
            identity_key: Some(header.identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
        };
        let mut serialized = vec![version_byte(message.version)];
        body.encode(&mut serialized).expect("Vec grows as needed");
        PreKeySignalMessage {
            version: message.version,
            registration_id: header.registration_id,
            pre_key_id: header.pre_key_id,
            signed_pre_key_id: header.signed_pre_key_id,
            kem: header.kem,
            base_key: header.base_key,
            identity_key: header.identity_key,
            message,
            serialized,
        }
    }

    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let (&first, rest) = bytes.split_first().ok_or(E2eeError::Decode("empty"))?;
        let version = check_version(first)?;
        let body =
            proto::PreKeySignalMessage::decode(rest).map_err(|_| E2eeError::Decode("protobuf"))?;
        // Only the inner message is MAC'd: refusing non-canonical encodings (unknown or repeated
        // fields, padded varints) means a flipped tag or length cannot pass unnoticed.
        if body.encode_to_vec() != rest {
            return Err(E2eeError::Decode("non-canonical protobuf"));
        }
        let message = SignalMessage::deserialize(&need(body.message, "inner message")?)?;
        if message.serialized.first() != Some(&first) {
            return Err(E2eeError::Decode("outer and inner version bytes differ"));
        }
        let kem = match (body.kem_pre_key_id, body.kem_ciphertext) {
            (Some(id), Some(ct)) if version == VERSION_PQ => Some((id, ct)),
            (None, None) if version == VERSION_V3 => None,
            _ => return Err(E2eeError::Decode("KEM fields do not match the version")),
        };
        assert!(
            message.version == version,
            "a prekey message and its inner message share a version"
        );
        Ok(PreKeySignalMessage {
            version,
            registration_id: body.registration_id.unwrap_or(0),
            pre_key_id: body.pre_key_id,
            signed_pre_key_id: need(body.signed_pre_key_id, "signed prekey id")?,
            kem,
            base_key: PublicKey::deserialize(&need(body.base_key, "base key")?)?,
            identity_key: PublicKey::deserialize(&need(body.identity_key, "identity key")?)?,
            message,
            serialized: bytes.to_vec(),
        })
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// A Sender Keys group message: 0x33 || protobuf {id, iteration, ciphertext} || XEdDSA signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyMessage {
    pub key_id: u32,
    pub iteration: u32,
    pub ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SenderKeyMessage {
    pub fn new(
        key_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        signer: &IdentityKeyPair,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let body = proto::SenderKeyMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            ciphertext: Some(ciphertext.clone()),
        };
        let len = 1 + body.encoded_len() + SIGNATURE_LEN;
        let mut serialized = Vec::with_capacity(len);
        serialized.push(version_byte(VERSION_V3));
        body.encode(&mut serialized).expect("Vec grows as needed");
        let signature = signer.sign(&[&serialized], rng);
        serialized.extend_from_slice(&signature);
        assert!(
            serialized.len() == len,
            "a SenderKeyMessage is version byte, body and signature"
        );
        SenderKeyMessage {
            key_id,
            iteration,
            ciphertext,
            serialized,
        }
    }

    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let (&first, rest) = bytes.split_first().ok_or(E2eeError::Decode("empty"))?;
        if check_version(first)? != VERSION_V3 {
            return Err(E2eeError::Version(first));
        }
        if rest.len() < SIGNATURE_LEN {
            return Err(E2eeError::Decode("shorter than its signature"));
        }
        let body = proto::SenderKeyMessage::decode(&rest[..rest.len() - SIGNATURE_LEN])
            .map_err(|_| E2eeError::Decode("protobuf"))?;
        let message = SenderKeyMessage {
            key_id: need(body.id, "key id")?,
            iteration: need(body.iteration, "iteration")?,
            ciphertext: need(body.ciphertext, "ciphertext")?,
            serialized: bytes.to_vec(),
        };
        // What `verify_signature_with` relies on, checked above.
        assert!(
            message.serialized.len() > SIGNATURE_LEN,
            "a decoded SenderKeyMessage holds its version byte and signature"
        );
        Ok(message)
    }

    /// Checks the signature with the sender's prepared key (no per-message point
    /// decompression).
    pub fn verify_signature_with(&self, key: &super::xeddsa::VerifyingKey) -> bool {
        assert!(
            self.serialized.len() > SIGNATURE_LEN,
            "a SenderKeyMessage holds its version byte and signature"
        );
        let (body, sig) = self
            .serialized
            .split_at(self.serialized.len() - SIGNATURE_LEN);
        match <&[u8; SIGNATURE_LEN]>::try_from(sig) {
            Ok(sig) => key.verify(&[body], sig),
            Err(_) => false,
        }
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Hands a sender's chain key and signing key to a group member (over a 1:1 session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    pub key_id: u32,
    pub iteration: u32,
    pub chain_key: [u8; 32],
    pub signing_key: PublicKey,
    serialized: Vec<u8>,
}

impl SenderKeyDistributionMessage {
    pub fn new(key_id: u32, iteration: u32, chain_key: [u8; 32], signing_key: PublicKey) -> Self {
        let body = proto::SenderKeyDistributionMessage {
            id: Some(key_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        };
        let mut serialized = vec![version_byte(VERSION_V3)];
        body.encode(&mut serialized).expect("Vec grows as needed");
        SenderKeyDistributionMessage {
            key_id,
            iteration,
            chain_key,
            signing_key,
            serialized,
        }
    }

    pub fn deserialize(bytes: &[u8]) -> Result<Self> {
        let (&first, rest) = bytes.split_first().ok_or(E2eeError::Decode("empty"))?;
        if check_version(first)? != VERSION_V3 {
            return Err(E2eeError::Version(first));
        }
        let body = proto::SenderKeyDistributionMessage::decode(rest)
            .map_err(|_| E2eeError::Decode("protobuf"))?;
        let message = SenderKeyDistributionMessage {
            key_id: need(body.id, "key id")?,
            iteration: need(body.iteration, "iteration")?,
            chain_key: key32(need(body.chain_key, "chain key")?, "chain key length")?,
            signing_key: PublicKey::deserialize(&need(body.signing_key, "signing key")?)?,
            serialized: bytes.to_vec(),
        };
        // What `SenderKeyState::from_distribution` relies on, checked above.
        assert!(
            message.serialized.first().map(|b| b >> 4) == Some(VERSION_V3),
            "a decoded distribution message is a v3 one"
        );
        Ok(message)
    }

    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// What a 1:1 encryption produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    Signal(SignalMessage),
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    pub fn serialized(&self) -> &[u8] {
        match self {
            CiphertextMessage::Signal(m) => m.serialized(),
            CiphertextMessage::PreKey(m) => m.serialized(),
        }
    }
    pub fn is_prekey(&self) -> bool {
        matches!(self, CiphertextMessage::PreKey(_))
    }
}
