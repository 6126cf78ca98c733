//! One error enum for the Signal stack: every decode and decrypt failure is a typed value, so a
//! hostile byte string can only ever produce an `Err`, never a panic, and callers (the device
//! node, the peer driver) can record *why* a message was refused.

use thiserror::Error;

/// Why a key, message or session operation was refused. A refused operation never changes state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum E2eeError {
    #[error("bad public key encoding: {0}")]
    BadKey(&'static str),
    #[error("malformed message: {0}")]
    Decode(&'static str),
    #[error("unsupported message version byte {0:#04x}")]
    Version(u8),
    #[error("signature verification failed")]
    BadSignature,
    #[error("message authentication code mismatch")]
    BadMac,
    #[error("ciphertext does not decrypt (bad length or padding)")]
    BadCiphertext,
    #[error("duplicate message: counter {0} was already received")]
    Duplicate(u32),
    #[error("message counter {counter} jumps more than {max_jump} past the chain")]
    TooFarAhead { counter: u32, max_jump: u32 },
    #[error("no session with this peer")]
    NoSession,
    #[error("no session state matches this message")]
    NoMatchingState,
    #[error("unknown one-time prekey id {0}")]
    UnknownPreKey(u32),
    #[error("unknown signed prekey id {0}")]
    UnknownSignedPreKey(u32),
    #[error("unknown KEM prekey id {0}")]
    UnknownKemPreKey(u32),
    #[error("PQXDH message or bundle is missing its KEM part")]
    MissingKem,
    #[error("unknown sender key id {0}")]
    UnknownSenderKey(u32),
    #[error("no sender key for this group and sender")]
    NoSenderKey,
}

pub type Result<T> = std::result::Result<T, E2eeError>;
