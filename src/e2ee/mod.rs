//! The Signal protocol, wire-compatible with libsignal message version 3 (as WhatsApp runs it),
//! so that the simulator's devices really encrypt every message and the interop claim ("partners
//! run the same protocol") is checkable against other implementations (`peer`, CONFORMANCE.md).
//! It is ours, on audited primitives (dalek, RustCrypto, libcrux), because libsignal is AGPL,
//! git-only and no longer speaks v3, and the Olm/MLS crates draw keys from the OS: here every
//! random draw comes from a caller-supplied `CryptoRng` (the run's seeded ChaCha stream), so a
//! run is reproducible from its seed.
//!
//! # API for device nodes
//! - Keys: [`IdentityKeyPair::generate`], [`KeyPair`], [`PublicKey`] (33-byte encoding, 0x05).
//! - Prekeys: [`DeviceKeys`] (identity, signed prekey, one-time prekeys, optional ML-KEM prekey)
//!   makes [`PreKeyBundle`]s and answers the responder's lookups ([`PreKeyStore`]).
//! - 1:1: [`SessionRecord::process_prekey_bundle`] (X3DH, or PQXDH when the bundle carries a KEM
//!   prekey), [`SessionRecord::encrypt`] -> [`CiphertextMessage`], [`SessionRecord::decrypt`]
//!   (`SignalMessage`) and [`SessionRecord::decrypt_prekey`] (`PreKeySignalMessage`; the caller
//!   deletes the one-time prekey it reports used).
//! - Groups: [`SenderKeyState::generate`], its distribution message, [`SenderKeyRecord`].
//! - Media: [`attachment::encrypt`] / [`attachment::decrypt`].
//!
//! Every failure is an [`E2eeError`]; a refused message leaves every state as it was (decryption
//! is staged and committed only on success). Secrets are zeroized on drop. Sending draws nothing
//! in v3 (the ratchet key is drawn when a reply turns the ratchet), so `encrypt` takes no RNG;
//! session setup, decryption (a new ratchet key), sender keys (signatures) and key generation do.
//!
//! Bounds, from libsignal's consts.rs: `ratchet::SKIPPED_KEYS_MAX` (2,000 skipped message keys
//! per chain), `ratchet::FORWARD_JUMP_MAX` (25,000), `ratchet::RECEIVER_CHAINS_MAX` (5),
//! `record::ARCHIVED_STATES_MAX` (40 earlier states), `sender_keys::SENDER_KEY_STATES_MAX` (5).
//!
//! Wire: exactly libsignal v3 (see `wire`). PQXDH sessions are our documented extension: version
//! byte 0x44, KEM fields 7 and 8 in the prekey message (see `pqxdh`).
//!
//! # Files
//! `keys`/`xeddsa` (Curve25519, XEdDSA), `kdf` (HKDF, HMAC, AES-CBC), `chain` (root and chain
//! key schedule), `x3dh`/`pqxdh` (handshakes), `ratchet` (one session state), `record` (states
//! of one peer, session setup), `store` (own keys), `sender_keys`, `attachment`, `wire`
//! (libsignal's serialization), `peer` (the JSON-lines conformance driver).

pub mod attachment;
pub mod chain;
mod curve_backend;
pub mod error;
pub mod kdf;
pub mod keys;
pub mod peer;
pub mod pqxdh;
pub mod ratchet;
pub mod record;
pub mod sender_keys;
pub mod store;
mod twin_hash;
pub mod wire;
pub mod x3dh;
pub mod xeddsa;

#[cfg(test)]
mod tests;

pub use error::{E2eeError, Result};
pub use keys::{IdentityKeyPair, KeyPair, PrivateKey, PublicKey};
pub use record::{PreKeyDecrypted, SessionRecord};
pub use sender_keys::{SenderKeyRecord, SenderKeyState};
pub use store::{DeviceKeys, PreKeyStore};
pub use wire::{
    CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage,
    SignalMessage,
};
pub use x3dh::PreKeyBundle;
