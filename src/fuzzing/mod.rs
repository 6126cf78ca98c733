//! The properties every decoder of untrusted bytes must hold, written once and run twice: by the
//! cargo-fuzz targets in `fuzz/` (millions of inputs, nightly, by hand) and by the proptest
//! suites beside each decoder (a few hundred inputs, stable, in `cargo test`). Each function takes
//! arbitrary bytes and panics if, and only if, a property fails:
//! - the decoder returns (a value or an error), never panics;
//! - a decoded value encodes back to the same bytes where the format is canonical, and where it
//!   is not (protobuf admits several encodings of one message) decodes back to itself.
//!
//! Hidden from the docs: it is test support, public only so that the fuzz crate can call it.

use std::sync::OnceLock;

use crate::e2ee::keys::{IdentityKeyPair, PublicKey};
use crate::e2ee::wire::{
    proto, MacInput, PreKeyHeader, PreKeySignalMessage, SenderKeyDistributionMessage,
    SenderKeyMessage, SignalMessage,
};
use crate::engine::RngTree;
use crate::live::codec;
use crate::live::noise::{self, HandshakeRead, NoiseKeys};
use prost::Message;

/// The scenario parser and the cost-table parser: a scenario that parses renders (`to_toml`) to
/// text that parses to the same scenario.
pub fn scenario(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::scenario::cost_table::parse_file(source, "fuzz-costs.toml");
    let Ok(parsed) = crate::scenario::parse(source, "fuzz.toml") else {
        return;
    };
    let text = crate::scenario::to_toml(&parsed);
    match crate::scenario::parse(&text, "fuzz.toml") {
        Ok(back) => assert_eq!(back, parsed, "to_toml gives the scenario back:\n{text}"),
        Err(e) => panic!("to_toml of a parsed scenario does not parse: {e}\n{text}"),
    }
}

/// The Signal wire decoders; the first byte picks one, the rest is its input.
pub fn wire(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => public_key(bytes),
        1 => signal_message(bytes),
        2 => prekey_message(bytes),
        3 => sender_key_message(bytes),
        _ => distribution_message(bytes),
    }
}

/// A public key has one encoding.
fn public_key(bytes: &[u8]) {
    if let Ok(key) = PublicKey::deserialize(bytes) {
        assert_eq!(key.serialize().as_slice(), bytes, "a public key re-encodes");
    }
}

/// The MAC key and identities a re-encoded message is MAC'd with: any will do, the decoder does
/// not check MACs.
fn mac_input() -> (PublicKey, [u8; 32]) {
    (PublicKey::from_bytes([9; 32]), [7; 32])
}

/// The body is protobuf (several encodings of one value), the MAC covers the received bytes:
/// decode(encode(v)) == v.
fn signal_message(bytes: &[u8]) {
    let Ok(v) = SignalMessage::deserialize(bytes) else {
        return;
    };
    let (identity, mac_key) = mac_input();
    let mac = MacInput {
        sender_identity: &identity,
        receiver_identity: &identity,
        mac_key: &mac_key,
    };
    let counters = (v.counter, v.previous_counter);
    let w = SignalMessage::new(
        v.version,
        v.ratchet_key,
        counters,
        v.ciphertext.clone(),
        &mac,
    );
    let back = SignalMessage::deserialize(w.serialized()).expect("an encoded message decodes");
    assert_eq!(back, w, "an encoded message decodes to itself");
    assert_eq!(
        (
            w.version,
            w.ratchet_key,
            w.counter,
            w.previous_counter,
            &w.ciphertext
        ),
        (
            v.version,
            v.ratchet_key,
            v.counter,
            v.previous_counter,
            &v.ciphertext
        ),
        "re-encoding keeps every field"
    );
}

/// The decoder refuses non-canonical protobuf, so the encoding is the input itself, except that
/// an absent registration id decodes as 0 (as libsignal does) and re-encodes as an explicit 0.
fn prekey_message(bytes: &[u8]) {
    let Ok(v) = PreKeySignalMessage::deserialize(bytes) else {
        return;
    };
    let header = PreKeyHeader {
        registration_id: v.registration_id,
        pre_key_id: v.pre_key_id,
        signed_pre_key_id: v.signed_pre_key_id,
        kem: v.kem.clone(),
        base_key: v.base_key,
        identity_key: v.identity_key,
    };
    let w = PreKeySignalMessage::new(header, v.message.clone());
    let back = PreKeySignalMessage::deserialize(w.serialized()).expect("an encoded one decodes");
    assert_eq!(back, w, "an encoded prekey message decodes to itself");
    let body = proto::PreKeySignalMessage::decode(&bytes[1..]).expect("it decoded above");
    if body.registration_id.is_some() {
        assert_eq!(
            w.serialized(),
            bytes,
            "a prekey message re-encodes to its bytes"
        );
    }
}

/// The signer of re-encoded group messages (any key will do: the decoder checks no signature).
fn signer() -> &'static IdentityKeyPair {
    static SIGNER: OnceLock<IdentityKeyPair> = OnceLock::new();
    SIGNER.get_or_init(|| IdentityKeyPair::generate(&mut RngTree::new(0).stream("fuzzing", 0)))
}

/// Protobuf body, signature over the received bytes: decode(encode(v)) == v.
fn sender_key_message(bytes: &[u8]) {
    let Ok(v) = SenderKeyMessage::deserialize(bytes) else {
        return;
    };
    let mut rng = RngTree::new(0).stream("fuzzing", 1);
    let w = SenderKeyMessage::new(
        v.key_id,
        v.iteration,
        v.ciphertext.clone(),
        signer(),
        &mut rng,
    );
    let back = SenderKeyMessage::deserialize(w.serialized()).expect("an encoded one decodes");
    assert_eq!(back, w, "an encoded group message decodes to itself");
    assert_eq!(
        (w.key_id, w.iteration, &w.ciphertext),
        (v.key_id, v.iteration, &v.ciphertext),
        "re-encoding keeps every field"
    );
}

/// Protobuf body, no MAC: decode(encode(v)) == v.
fn distribution_message(bytes: &[u8]) {
    let Ok(v) = SenderKeyDistributionMessage::deserialize(bytes) else {
        return;
    };
    let w = SenderKeyDistributionMessage::new(v.key_id, v.iteration, v.chain_key, v.signing_key);
    let back = SenderKeyDistributionMessage::deserialize(w.serialized()).expect("it decodes");
    assert_eq!(back, w, "an encoded distribution message decodes to itself");
    assert_eq!(
        (w.key_id, w.iteration, w.chain_key, w.signing_key),
        (v.key_id, v.iteration, v.chain_key, v.signing_key),
        "re-encoding keeps every field"
    );
}

/// The peer's JSON lines: one answer per non-blank line, each a JSON object saying `ok`.
pub fn peer(data: &[u8]) {
    let mut out = Vec::new();
    crate::e2ee::peer::serve(data, &mut out).expect("writing to a Vec does not fail");
    let answers: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let asked = data
        .split(|&b| b == b'\n')
        .filter(|l| {
            l.len() > crate::e2ee::peer::LINE_BYTES_MAX
                || std::str::from_utf8(l).map_or(true, |s| !s.trim().is_empty())
        })
        .count();
    assert_eq!(answers.len(), asked, "one answer per non-blank line");
    for answer in answers {
        let value: serde_json::Value = serde_json::from_slice(answer).expect("answers are JSON");
        assert!(value["ok"].is_boolean(), "every answer says ok");
    }
}

/// The live codec, as a connection reads it: records off the front until more bytes are needed
/// or an error; the format is canonical, so each record re-encodes to its bytes.
pub fn codec(data: &[u8]) {
    let mut at = 0;
    while let Ok(Some((record, used))) = codec::decode(&data[at..]) {
        assert!(
            used > 0 && at + used <= data.len(),
            "a record is inside the buffer"
        );
        let mut out = Vec::new();
        codec::encode(&record, &mut out);
        assert_eq!(
            out,
            &data[at..at + used],
            "a decoded record re-encodes to its bytes"
        );
        at += used;
    }
}

/// The Noise handshake messages a stranger sends to either end; the first byte picks which.
pub fn noise(data: &[u8]) {
    static KEYS: OnceLock<NoiseKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(|| NoiseKeys::derive(&RngTree::new(1), "gw", 0));
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    let read = match which % 3 {
        0 => HandshakeRead::ResponderFirst,
        1 => HandshakeRead::InitiatorSecond,
        _ => HandshakeRead::ResponderThird,
    };
    let _ = noise::read_handshake_message(keys, read, msg);
}

#[cfg(test)]
mod seeds;

/// The seeds of fuzz target `target` (fuzz/seeds/), for the property tests.
#[cfg(test)]
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Inputs for the property tests of target `target`: arbitrary bytes (which mostly exercise
/// the refusals) or one of its seeds with a few bytes overwritten, inserted or cut off (which
/// mostly decode, and exercise the re-encoding).
#[cfg(test)]
pub(crate) fn inputs(target: &str) -> proptest::strategy::BoxedStrategy<Vec<u8>> {
    use proptest::prelude::*;
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "fuzz/seeds/{target} has seeds");
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 0..4);
    let mutated = (0..seeds.len(), edits).prop_map(move |(k, edits)| {
        let mut bytes = seeds[k].clone();
        for (at, byte, how) in edits {
            let at = at % (bytes.len() + 1);
            match how {
                0 | 1 if at < bytes.len() => bytes[at] = byte,
                2 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        bytes
    });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), mutated].boxed()
}
