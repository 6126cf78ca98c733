//! `interop-sim peer`: one device speaking the JSON-lines protocol of CONFORMANCE.md, so that any
//! other Signal implementation can hold a conversation with ours and the interop claim is tested
//! rather than asserted. One request per line in, one answer per line out, flushed each time.
//! A failed request answers `{"ok":false,"error":...}` and changes nothing (the device and its
//! random stream are staged and committed only on success).
//!
//! Keys come from a ChaCha stream seeded from (`seed`, or 0 without one) and the device's name,
//! registration id and device id: never from the OS. Extension beyond CONFORMANCE.md: `init` may
//! say `"pqxdh":true`; bundles then carry `kem_prekey_id`, `kem_prekey`, `kem_prekey_signature`,
//! and `start` with such a bundle runs PQXDH (message version 4, see `pqxdh.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::error::E2eeError;
use super::keys::PublicKey;
use super::pqxdh::{KemPreKeyPublic, KEM_PUBLIC_KEY_LEN};
use super::wire::{
    version_byte, CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage,
    SignalMessage, VERSION_PQ, VERSION_V3,
};
use super::{
    DeviceKeys, PreKeyBundle, PreKeyStore, SenderKeyRecord, SenderKeyState, SessionRecord,
};
use crate::engine::{RngTree, SimRng};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not initialized: send init first")]
    NotInitialized,
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("no group {0:?} created here")]
    UnknownGroup(String),
    #[error(transparent)]
    Protocol(#[from] E2eeError),
}

type Answer = Result<Map<String, Value>, PeerError>;

/// Bound on one request line: a bundle with a KEM prekey is about 3 KB, so a longer line is
/// refused (answered with an error, the rest of the line skipped) instead of being buffered.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// Serves requests from `input` until end of input: one answer per non-blank line, including
/// lines that are not UTF-8 or longer than [`LINE_BYTES_MAX`] (answered with an error).
pub fn serve(mut input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut peer: Option<Device> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = LINE_BYTES_MAX as u64 + 1;
        if (&mut input).take(limit).read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let too_long = line.len() > LINE_BYTES_MAX && line.last() != Some(&b'\n');
        if too_long {
            skip_line(&mut input)?;
        }
        let Some(answer) = answer_line(&mut peer, &line, too_long) else {
            continue;
        };
        let value = match answer {
            Ok(mut fields) => {
                fields.insert("ok".into(), Value::Bool(true));
                Value::Object(fields)
            }
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        };
        assert!(
            value.get("ok").is_some_and(Value::is_boolean),
            "every answer says whether it succeeded"
        );
        serde_json::to_writer(&mut output, &value)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
}

/// The answer to one line (with its line end), or `None` for a blank line.
fn answer_line(peer: &mut Option<Device>, line: &[u8], too_long: bool) -> Option<Answer> {
    if too_long {
        return Some(Err(bad(&format!(
            "line longer than {LINE_BYTES_MAX} bytes"
        ))));
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return Some(Err(bad("line is not UTF-8")));
    };
    if text.trim().is_empty() {
        return None;
    }
    Some(match serde_json::from_str::<Value>(text) {
        Ok(request) => handle(peer, &request),
        Err(e) => Err(PeerError::BadRequest(format!("not JSON: {e}"))),
    })
}

/// Consumes input up to and including the next line end (or to end of input).
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let (used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buf.len(), false),
        };
        input.consume(used);
        if done {
            return Ok(());
        }
    }
}

fn handle(peer: &mut Option<Device>, request: &Value) -> Answer {
    let op = str_field(request, "op")?;
    if op == "init" {
        let (device, identity) = Device::init(request)?;
        *peer = Some(device);
        return Ok(fields(json!({ "identity_key": identity })));
    }
    let device = peer.as_mut().ok_or(PeerError::NotInitialized)?;
    let mut rng = device.rng.clone();
    let answer = match op {
        "bundle" => device.bundle(request, &mut rng),
        "start" => device.start(request, &mut rng),
        "encrypt" => device.encrypt(request),
        "decrypt" => device.decrypt(request, &mut rng),
        "group_create" => device.group_create(request, &mut rng),
        "group_join" => device.group_join(request),
        "group_encrypt" => device.group_encrypt(request, &mut rng),
        "group_decrypt" => device.group_decrypt(request),
        other => Err(PeerError::UnknownOp(other.to_string())),
    }?;
    assert!(
        !answer.contains_key("ok"),
        "a handler leaves \"ok\" to serve"
    );
    device.rng = rng;
    Ok(answer)
}

/// One device: its keys, its random stream, its sessions and group keys (ordered maps, so that
/// nothing depends on hash order).
struct Device {
    keys: DeviceKeys,
    rng: SimRng,
    sessions: BTreeMap<String, SessionRecord>,
    own_groups: BTreeMap<String, SenderKeyState>,
    members: BTreeMap<(String, String), SenderKeyRecord>,
}

impl Device {
    fn init(request: &Value) -> Result<(Device, String), PeerError> {
        let name = str_field(request, "name")?;
        let registration_id = u32_field(request, "registration_id")?;
        let device_id = opt_u32(request, "device_id")?.unwrap_or(1);
        let seed = request
            .get("seed")
            .map(|v| v.as_u64().ok_or_else(|| bad("seed is not a u64")))
            .transpose()?;
        let stream_id = (u64::from(registration_id) << 32) | u64::from(device_id);
        let mut rng =
            RngTree::new(seed.unwrap_or(0)).stream(&format!("e2ee/peer/{name}"), stream_id);
        let mut keys = DeviceKeys::generate(registration_id, device_id, &mut rng);
        if request
            .get("pqxdh")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            keys.enable_pqxdh(&mut rng);
        }
        let identity = B64.encode(keys.identity().public_key().serialize());
        assert!(
            identity.len() == 44,
            "an identity key is 33 bytes, 44 in base64"
        );
        let device = Device {
            keys,
            rng,
            sessions: BTreeMap::new(),
            own_groups: BTreeMap::new(),
            members: BTreeMap::new(),
        };
        Ok((device, identity))
    }

    fn bundle(&mut self, request: &Value, rng: &mut SimRng) -> Answer {
        let one_time = request
            .get("one_time")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(bundle_to_json(&self.keys.bundle(one_time, rng)))
    }

    fn start(&mut self, request: &Value, rng: &mut SimRng) -> Answer {
        let peer = str_field(request, "peer")?;
        let bundle = bundle_from_json(request.get("bundle").ok_or_else(|| bad("missing bundle"))?)?;
        let mut record = self.sessions.get(peer).cloned().unwrap_or_default();
        record.process_prekey_bundle(
            self.keys.identity(),
            self.keys.registration_id(),
            &bundle,
            rng,
        )?;
        assert!(
            record.has_current(),
            "a processed bundle leaves a current session"
        );
        self.sessions.insert(peer.to_string(), record);
        Ok(Map::new())
    }

    fn encrypt(&mut self, request: &Value) -> Answer {
        let plaintext = b64_field(request, "plaintext")?;
        let record = self
            .sessions
            .get_mut(str_field(request, "peer")?)
            .ok_or(E2eeError::NoSession)?;
        let message = record.encrypt(&plaintext)?;
        assert!(
            matches!(
                message.serialized().first().map(|b| b >> 4),
                Some(VERSION_V3 | VERSION_PQ)
            ),
            "an encrypted message starts with a known version byte"
        );
        let kind = match message {
            CiphertextMessage::PreKey(_) => "prekey",
            CiphertextMessage::Signal(_) => "message",
        };
        Ok(fields(
            json!({ "type": kind, "body": B64.encode(message.serialized()) }),
        ))
    }

    fn decrypt(&mut self, request: &Value, rng: &mut SimRng) -> Answer {
        let peer = str_field(request, "peer")?;
        let body = b64_field(request, "body")?;
        let plaintext = match str_field(request, "type")? {
            "prekey" => {
                let message = PreKeySignalMessage::deserialize(&body)?;
                let mut record = self.sessions.get(peer).cloned().unwrap_or_default();
                let out = record.decrypt_prekey(&message, &self.keys, rng)?;
                if let Some(id) = out.used_pre_key {
                    self.keys.remove_pre_key(id);
                }
                self.sessions.insert(peer.to_string(), record);
                out.plaintext
            }
            "message" => {
                let message = SignalMessage::deserialize(&body)?;
                let record = self.sessions.get_mut(peer).ok_or(E2eeError::NoSession)?;
                record.decrypt(&message, rng)?
            }
            other => {
                return Err(bad(&format!(
                    "type {other:?} is neither prekey nor message"
                )))
            }
        };
        assert!(
            self.sessions
                .get(peer)
                .is_some_and(SessionRecord::has_current),
            "a decrypted message leaves a current session with its sender"
        );
        Ok(fields(json!({ "plaintext": B64.encode(plaintext) })))
    }

    fn group_create(&mut self, request: &Value, rng: &mut SimRng) -> Answer {
        let group = str_field(request, "group")?;
        let state = SenderKeyState::generate(rng);
        let distribution = B64.encode(state.distribution_message().serialized());
        self.own_groups.insert(group.to_string(), state);
        Ok(fields(json!({ "distribution": distribution })))
    }

    fn group_join(&mut self, request: &Value) -> Answer {
        let group = str_field(request, "group")?;
        let sender = str_field(request, "sender")?;
        let message =
            SenderKeyDistributionMessage::deserialize(&b64_field(request, "distribution")?)?;
        let key = (group.to_string(), sender.to_string());
        let record = self.members.entry(key).or_default();
        record.add(SenderKeyState::from_distribution(&message));
        assert!(
            record.newest_mut().is_some(),
            "a joined sender has a newest key"
        );
        Ok(Map::new())
    }

    fn group_encrypt(&mut self, request: &Value, rng: &mut SimRng) -> Answer {
        let group = str_field(request, "group")?;
        let plaintext = b64_field(request, "plaintext")?;
        let state = self
            .own_groups
            .get_mut(group)
            .ok_or_else(|| PeerError::UnknownGroup(group.into()))?;
        let message = state.encrypt(&plaintext, rng)?;
        assert!(
            message.serialized().first() == Some(&version_byte(VERSION_V3)),
            "a group message is a v3 one"
        );
        Ok(fields(json!({ "body": B64.encode(message.serialized()) })))
    }

    fn group_decrypt(&mut self, request: &Value) -> Answer {
        let key = (
            str_field(request, "group")?.to_string(),
            str_field(request, "sender")?.to_string(),
        );
        let body = b64_field(request, "body")?;
        let record = self.members.get_mut(&key).ok_or(E2eeError::NoSenderKey)?;
        let plaintext = record.decrypt(&body)?;
        assert!(
            record.newest_mut().is_some(),
            "a sender whose message decrypted has a key"
        );
        Ok(fields(json!({ "plaintext": B64.encode(plaintext) })))
    }
}

fn bundle_to_json(b: &PreKeyBundle) -> Map<String, Value> {
    let mut out = fields(json!({
        "registration_id": b.registration_id,
        "device_id": b.device_id,
        "identity_key": B64.encode(b.identity_key.serialize()),
        "signed_prekey_id": b.signed_pre_key_id,
        "signed_prekey": B64.encode(b.signed_pre_key.serialize()),
        "signed_prekey_signature": B64.encode(b.signed_pre_key_signature),
    }));
    if let Some((id, key)) = &b.pre_key {
        out.insert("prekey_id".into(), json!(id));
        out.insert("prekey".into(), json!(B64.encode(key.serialize())));
    }
    if let Some(kem) = &b.kem_pre_key {
        out.insert("kem_prekey_id".into(), json!(kem.id));
        out.insert("kem_prekey".into(), json!(B64.encode(kem.encoded())));
        out.insert(
            "kem_prekey_signature".into(),
            json!(B64.encode(kem.signature)),
        );
    }
    assert!(
        out.len() >= 6 && out.contains_key("kem_prekey") == b.kem_pre_key.is_some(),
        "a bundle has its six required fields, and KEM ones exactly for PQXDH"
    );
    out
}

fn bundle_from_json(v: &Value) -> Result<PreKeyBundle, PeerError> {
    let pre_key = match (
        opt_u32(v, "prekey_id")?,
        v.get("prekey").filter(|p| !p.is_null()),
    ) {
        (Some(id), Some(_)) => Some((id, key_field(v, "prekey")?)),
        (None, None) => None,
        _ => return Err(bad("prekey_id and prekey go together")),
    };
    let kem_pre_key = match opt_u32(v, "kem_prekey_id")? {
        Some(id) => Some(KemPreKeyPublic::from_parts(
            id,
            b64_field(v, "kem_prekey")?,
            sig_field(v, "kem_prekey_signature")?,
        )?),
        None => None,
    };
    assert!(
        kem_pre_key
            .as_ref()
            .is_none_or(|k| k.encoded().len() == 1 + KEM_PUBLIC_KEY_LEN),
        "a parsed KEM prekey has the shape from_parts checked"
    );
    Ok(PreKeyBundle {
        registration_id: u32_field(v, "registration_id")?,
        device_id: opt_u32(v, "device_id")?.unwrap_or(1),
        pre_key,
        signed_pre_key_id: u32_field(v, "signed_prekey_id")?,
        signed_pre_key: key_field(v, "signed_prekey")?,
        signed_pre_key_signature: sig_field(v, "signed_prekey_signature")?,
        identity_key: key_field(v, "identity_key")?,
        kem_pre_key,
    })
}

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn bad(what: &str) -> PeerError {
    PeerError::BadRequest(what.to_string())
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, PeerError> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("missing string field {name:?}")))
}

fn opt_u32(v: &Value, name: &str) -> Result<Option<u32>, PeerError> {
    assert!(!name.is_empty(), "a field is asked for by name");
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad(&format!("field {name:?} is not a u32"))),
    }
}

fn u32_field(v: &Value, name: &str) -> Result<u32, PeerError> {
    opt_u32(v, name)?.ok_or_else(|| bad(&format!("missing field {name:?}")))
}

fn b64_field(v: &Value, name: &str) -> Result<Vec<u8>, PeerError> {
    B64.decode(str_field(v, name)?)
        .map_err(|_| bad(&format!("field {name:?} is not base64")))
}

fn key_field(v: &Value, name: &str) -> Result<PublicKey, PeerError> {
    Ok(PublicKey::deserialize(&b64_field(v, name)?)?)
}

fn sig_field(v: &Value, name: &str) -> Result<[u8; 64], PeerError> {
    b64_field(v, name)?
        .try_into()
        .map_err(|_| bad(&format!("field {name:?} is not 64 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests: &[&str]) -> Vec<Value> {
        let input = requests.join("\n");
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Same requests, same answers: keys come from the seed (or 0) and the device's names only.
    #[test]
    fn deterministic_with_and_without_seed() {
        for init in [
            r#"{"op":"init","name":"alice","registration_id":1234,"seed":7}"#,
            r#"{"op":"init","name":"alice","registration_id":1234}"#,
        ] {
            let requests = [
                init,
                r#"{"op":"bundle"}"#,
                r#"{"op":"group_create","group":"g"}"#,
            ];
            let first = run(&requests);
            assert_eq!(first, run(&requests));
            assert!(first.iter().all(|a| a["ok"] == json!(true)), "{first:?}");
        }
        let other = run(&[r#"{"op":"init","name":"bob","registration_id":1234,"seed":7}"#]);
        let alice = run(&[r#"{"op":"init","name":"alice","registration_id":1234,"seed":7}"#]);
        assert_ne!(other[0]["identity_key"], alice[0]["identity_key"]);
    }

    #[test]
    fn failures_answer_and_keep_serving() {
        let answers = run(&[
            r#"{"op":"bundle"}"#,
            r#"{"op":"init","name":"alice"}"#,
            r#"{"op":"init","name":"alice","registration_id":1}"#,
            r#"{"op":"encrypt","peer":"bob","plaintext":"aGk="}"#,
            r#"{"op":"decrypt","peer":"bob","type":"message","body":"not base64!"}"#,
            r#"{"op":"decrypt","peer":"bob","type":"other","body":"aGk="}"#,
            r#"{"op":"group_encrypt","group":"none","plaintext":"aGk="}"#,
            r#"{"op":"group_decrypt","group":"g","sender":"x","body":"aGk="}"#,
            r#"{"op":"fly"}"#,
            r#"[1,2]"#,
            r#"{"op":"bundle","one_time":false}"#,
        ]);
        let ok: Vec<bool> = answers.iter().map(|a| a["ok"] == json!(true)).collect();
        let expected = [
            false, false, true, false, false, false, false, false, false, false, true,
        ];
        assert_eq!(ok, expected, "{answers:?}");
        assert!(answers
            .iter()
            .all(|a| a["ok"] == json!(true) || a["error"].is_string()));
        assert!(answers[10].get("prekey").is_none());
    }

    proptest::proptest! {
        /// Any line gets exactly one JSON answer and the peer keeps serving.
        #[test]
        fn any_line_gets_one_answer(line in "[ -~]{0,80}", body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let decrypt = json!({"op": "decrypt", "peer": "bob", "type": "prekey", "body": B64.encode(&body)}).to_string();
            let init = r#"{"op":"init","name":"alice","registration_id":1}"#;
            let requests = [init, line.as_str(), decrypt.as_str(), r#"{"op":"bundle"}"#];
            let answers = run(&requests);
            let non_empty = requests.iter().filter(|r| !r.trim().is_empty()).count();
            proptest::prop_assert_eq!(answers.len(), non_empty);
            proptest::prop_assert_eq!(&answers[answers.len() - 1]["ok"], &json!(true));
        }
    }

    /// Regression (cargo-fuzz `peer`, crash-0138cb4b and 56 more): a line that is not UTF-8
    /// ended `serve` with an I/O error, so the peer stopped answering; it is now answered with
    /// an error and the next line is served.
    #[test]
    fn regression_a_line_that_is_not_utf8_is_answered() {
        let input = b"\xff\xfe\n{\"op\":\"init\",\"name\":\"a\",\"registration_id\":1}\n";
        let mut out = Vec::new();
        serve(&input[..], &mut out).unwrap();
        let answers: Vec<Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0]["ok"], json!(false));
        assert_eq!(answers[1]["ok"], json!(true));
    }

    /// A line over the bound is answered with an error without being buffered whole, and the
    /// peer goes on with the next line.
    #[test]
    fn an_over_long_line_is_refused_and_skipped() {
        let mut input = vec![b'x'; 3 * LINE_BYTES_MAX];
        input.extend_from_slice(b"\n{\"op\":\"bundle\"}\n");
        let mut out = Vec::new();
        serve(&input[..], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let answers: Vec<&str> = text.lines().collect();
        assert_eq!(answers.len(), 2, "{text}");
        assert!(answers[0].contains("longer than"), "{}", answers[0]);
        assert!(answers[1].contains("not initialized"), "{}", answers[1]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// Any bytes in: one JSON answer per non-blank line, never a panic (`fuzzing::peer`).
        #[test]
        fn any_bytes_get_one_answer_per_line(bytes in crate::fuzzing::inputs("peer")) {
            crate::fuzzing::peer(&bytes);
        }
    }
}
