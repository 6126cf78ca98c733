//! Cross-implementation conformance: `interop-sim peer` holds full conversations with an
//! independent libsignal-v3 implementation, python-axolotl (PyPI; the Python port of
//! libaxolotl-java), driven through the same JSON-lines protocol (CONFORMANCE.md) on both sides
//! by `tests/conformance/python-axolotl/peer.py`.
//!
//! The test installs python-axolotl itself on a fresh machine (a venv under
//! `tests/conformance/python-axolotl/.venv`, pinned `requirements.txt`) and fails loudly if it
//! cannot: a conformance claim that silently skips is no claim.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use interop_sim::e2ee::PreKeySignalMessage;
use interop_sim::engine::SimRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

fn axolotl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/python-axolotl")
}

/// The venv's python, installing python-axolotl first if it is missing.
fn axolotl_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let dir = axolotl_dir();
        let python = dir.join(".venv/bin/python");
        let probe = || {
            Command::new(&python)
                .args([
                    "-c",
                    "import axolotl.sessioncipher, axolotl.groups.groupcipher",
                ])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !probe() {
            install_axolotl(&dir);
            assert!(probe(), "python-axolotl installed but does not import");
        }
        python
    })
}

/// Creates the venv with the first Python that can (`$PYTHON`, `python3`, Debian's), then
/// installs the pinned requirements. Any failure panics with the tools' own output.
fn install_axolotl(dir: &Path) {
    let venv = dir.join(".venv");
    let mut candidates: Vec<String> = std::env::var("PYTHON").into_iter().collect();
    candidates.extend(["python3".to_string(), "/usr/bin/python3".to_string()]);
    let mut failures = String::new();
    let created = candidates.iter().any(|python| {
        let result = Command::new(python)
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .output();
        match result {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                failures += &format!("{python}: {}\n", String::from_utf8_lossy(&out.stderr));
                false
            }
            Err(e) => {
                failures += &format!("{python}: {e}\n");
                false
            }
        }
    });
    assert!(
        created,
        "cannot create a Python venv for python-axolotl:\n{failures}"
    );
    run_loud(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--disable-pip-version-check", "--no-input", "-r"])
            .arg(dir.join("requirements.txt")),
    );
}

fn run_loud(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "installing the reference implementation failed: {cmd:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Impl {
    Ours,
    Axolotl,
}

/// One peer process speaking the JSON-lines protocol.
struct Peer {
    name: String,
    kind: Impl,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(kind: Impl, name: &str, registration_id: u32) -> Peer {
        let mut cmd = match kind {
            Impl::Ours => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_interop-sim"));
                c.arg("peer");
                c
            }
            Impl::Axolotl => {
                let mut c = Command::new(axolotl_python());
                c.arg(axolotl_dir().join("peer.py"));
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?} peer: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Peer {
            name: name.into(),
            kind,
            child,
            stdin,
            stdout,
        };
        let init =
            json!({"op": "init", "name": name, "registration_id": registration_id, "seed": 42});
        peer.ok(init);
        peer
    }

    fn call(&mut self, request: &Value) -> Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{:?} answered {line:?}: {e}", self.kind))
    }

    fn ok(&mut self, request: Value) -> Value {
        let answer = self.call(&request);
        assert_eq!(
            answer["ok"],
            json!(true),
            "{:?} {} refused {request}: {answer}",
            self.kind,
            self.name
        );
        answer
    }

    fn refuses(&mut self, request: Value) {
        let answer = self.call(&request);
        assert_eq!(
            answer["ok"],
            json!(false),
            "{:?} {} accepted {request}: {answer}",
            self.kind,
            self.name
        );
    }

    fn bundle(&mut self, one_time: bool) -> Value {
        let mut b = self.ok(json!({"op": "bundle", "one_time": one_time}));
        b.as_object_mut().unwrap().remove("ok");
        b
    }

    fn encrypt(&mut self, to: &str, text: &str) -> Msg {
        let a = self.ok(json!({"op": "encrypt", "peer": to, "plaintext": B64.encode(text)}));
        Msg {
            kind: a["type"].as_str().unwrap().into(),
            body: a["body"].as_str().unwrap().into(),
            text: text.into(),
        }
    }

    fn decrypt_request(&self, from: &str, kind: &str, body: &str) -> Value {
        json!({"op": "decrypt", "peer": from, "type": kind, "body": body})
    }

    fn expect_decrypt(&mut self, from: &str, msg: &Msg) {
        let a = self.ok(self.decrypt_request(from, &msg.kind, &msg.body));
        assert_eq!(
            B64.decode(a["plaintext"].as_str().unwrap()).unwrap(),
            msg.text.as_bytes()
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug)]
struct Msg {
    kind: String,
    body: String,
    text: String,
}

/// Flips one bit in the last 24 bytes of the authenticated part of a body: for a prekey message,
/// the inner `SignalMessage` (ciphertext and MAC), since libsignal v3 leaves the outer fields
/// (registration id, prekey ids) unauthenticated and implementations differ on re-checking them;
/// for other bodies, the tail itself (MAC or signature).
fn tamper(body: &str, kind: &str, rng: &mut SimRng) -> String {
    let mut bytes = B64.decode(body).unwrap();
    let end = if kind == "prekey" {
        let inner = PreKeySignalMessage::deserialize(&bytes).unwrap();
        let inner = inner.message.serialized();
        let start = bytes.windows(inner.len()).position(|w| w == inner).unwrap();
        start + inner.len()
    } else {
        bytes.len()
    };
    let idx = rng.random_range(end - 24..end);
    bytes[idx] ^= 1 << rng.random_range(0..8);
    B64.encode(bytes)
}

/// Delivers `msg` to `to`: sometimes a tampered copy first (refused), then the genuine message
/// (decrypts), then sometimes a replay (refused).
fn deliver(to: &mut Peer, from: &str, msg: &Msg, rng: &mut SimRng) {
    if rng.random_range(0..5) == 0 {
        let bad = tamper(&msg.body, &msg.kind, rng);
        to.refuses(to.decrypt_request(from, &msg.kind, &bad));
    }
    to.expect_decrypt(from, msg);
    if rng.random_range(0..5) == 0 {
        to.refuses(to.decrypt_request(from, &msg.kind, &msg.body));
    }
}

/// A conversation of `turns` turns with random batch sizes, shuffled delivery within a batch,
/// and messages held back across the next DH ratchet turn.
fn converse(peers: &mut [Peer; 2], first: usize, turns: usize, seed: u64) -> usize {
    let mut rng = SimRng::seed_from_u64(seed);
    let names = [peers[0].name.clone(), peers[1].name.clone()];
    let mut held: Vec<(usize, Msg)> = Vec::new();
    let mut sent = 0;
    for turn in 0..turns {
        let from = (first + turn) % 2;
        let to = 1 - from;
        let count = rng.random_range(1..=4);
        let mut batch: Vec<Msg> = (0..count)
            .map(|i| peers[from].encrypt(&names[to], &format!("{} t{turn} m{i}", names[from])))
            .collect();
        sent += batch.len();
        shuffle(&mut batch, &mut rng);
        // a batch's first delivery goes at once, so that the other side can answer
        let now = batch.remove(0);
        deliver(&mut peers[to], &names[from], &now, &mut rng);
        let earlier: Vec<(usize, Msg)> = std::mem::take(&mut held);
        for msg in batch {
            if rng.random_range(0..4) == 0 {
                held.push((to, msg));
            } else {
                deliver(&mut peers[to], &names[from], &msg, &mut rng);
            }
        }
        for (dest, msg) in earlier {
            deliver(&mut peers[dest], &names[1 - dest], &msg, &mut rng);
        }
    }
    for (dest, msg) in held {
        deliver(&mut peers[dest], &names[1 - dest], &msg, &mut rng);
    }
    sent
}

fn shuffle<T>(items: &mut [T], rng: &mut SimRng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}

/// `initiator` fetches `responder`'s bundle, starts a session, and they converse.
fn session_test(initiator: Impl, responder: Impl, one_time: bool, seed: u64) {
    let mut peers = [
        Peer::spawn(initiator, "alice", 1001),
        Peer::spawn(responder, "bob", 2002),
    ];
    let bundle = peers[1].bundle(one_time);
    peers[0].ok(json!({"op": "start", "peer": "bob", "bundle": bundle}));
    let delivered = converse(&mut peers, 0, 40, seed);
    assert!(
        delivered >= 60,
        "only {delivered} messages: the conversation is too small to mean much"
    );
}

#[test]
fn ours_initiates_axolotl_responds() {
    session_test(Impl::Ours, Impl::Axolotl, true, 1);
}

#[test]
fn axolotl_initiates_ours_responds() {
    session_test(Impl::Axolotl, Impl::Ours, true, 2);
}

#[test]
fn without_one_time_prekey_both_roles() {
    session_test(Impl::Ours, Impl::Axolotl, false, 3);
    session_test(Impl::Axolotl, Impl::Ours, false, 4);
}

#[test]
fn ours_with_ours() {
    session_test(Impl::Ours, Impl::Ours, true, 5);
}

/// Long gaps within one chain (hundreds of skipped keys), delivered newest first then backwards,
/// in both directions.
#[test]
fn large_gaps_both_directions() {
    for (a, b) in [(Impl::Ours, Impl::Axolotl), (Impl::Axolotl, Impl::Ours)] {
        let mut peers = [Peer::spawn(a, "alice", 1001), Peer::spawn(b, "bob", 2002)];
        let bundle = peers[1].bundle(true);
        peers[0].ok(json!({"op": "start", "peer": "bob", "bundle": bundle}));
        let hello = peers[0].encrypt("bob", "hello");
        peers[1].expect_decrypt("alice", &hello);
        for (from, to) in [(1usize, 0usize), (0, 1)] {
            let (sender, receiver) = (peers[from].name.clone(), peers[to].name.clone());
            let msgs: Vec<Msg> = (0..300)
                .map(|i| peers[from].encrypt(&receiver, &format!("gap {i}")))
                .collect();
            for msg in msgs.iter().rev() {
                peers[to].expect_decrypt(&sender, msg);
            }
        }
    }
}

/// PQXDH (our extension, message version 4) between two of our peers.
#[test]
fn pqxdh_ours_with_ours() {
    let mut peers = [
        Peer::spawn(Impl::Ours, "alice", 1001),
        Peer::spawn(Impl::Ours, "bob", 2002),
    ];
    peers[1].ok(
        json!({"op": "init", "name": "bob", "registration_id": 2002, "seed": 42, "pqxdh": true}),
    );
    let bundle = peers[1].bundle(true);
    assert!(
        bundle["kem_prekey"].is_string(),
        "PQ bundle carries a KEM prekey: {bundle}"
    );
    peers[0].ok(json!({"op": "start", "peer": "bob", "bundle": bundle}));
    let first = peers[0].encrypt("bob", "pq hello");
    assert_eq!(
        B64.decode(&first.body).unwrap()[0],
        0x44,
        "PQXDH messages are version 4"
    );
    peers[1].expect_decrypt("alice", &first);
    let _ = converse(&mut peers, 1, 10, 8);
}

/// Both sides open a session at once; both keep both runs and converge on one.
#[test]
fn simultaneous_initiation_converges() {
    for (a, b) in [(Impl::Ours, Impl::Axolotl), (Impl::Axolotl, Impl::Ours)] {
        let mut peers = [Peer::spawn(a, "alice", 1001), Peer::spawn(b, "bob", 2002)];
        let bundles = [peers[0].bundle(true), peers[1].bundle(true)];
        peers[0].ok(json!({"op": "start", "peer": "bob", "bundle": bundles[1]}));
        peers[1].ok(json!({"op": "start", "peer": "alice", "bundle": bundles[0]}));
        let from_alice = peers[0].encrypt("bob", "alice first");
        let from_bob = peers[1].encrypt("alice", "bob first");
        peers[1].expect_decrypt("alice", &from_alice);
        peers[0].expect_decrypt("bob", &from_bob);
        let _ = converse(&mut peers, 0, 12, 6);
    }
}

/// Group messages both ways, out of order, with tampered and replayed copies refused.
#[test]
fn sender_keys_both_ways() {
    let mut peers = [
        Peer::spawn(Impl::Ours, "alice", 1001),
        Peer::spawn(Impl::Axolotl, "bob", 2002),
    ];
    let mut rng = SimRng::seed_from_u64(7);
    for (sender, receiver) in [(0usize, 1usize), (1, 0)] {
        let sender_name = peers[sender].name.clone();
        let dist =
            peers[sender].ok(json!({"op": "group_create", "group": "g1"}))["distribution"].clone();
        peers[receiver].ok(
            json!({"op": "group_join", "group": "g1", "sender": sender_name, "distribution": dist}),
        );
        let mut msgs: Vec<(String, String)> = (0..30)
            .map(|i| {
                let text = format!("{sender_name} group message {i}");
                let a = peers[sender].ok(
                    json!({"op": "group_encrypt", "group": "g1", "plaintext": B64.encode(&text)}),
                );
                (text, a["body"].as_str().unwrap().to_string())
            })
            .collect();
        shuffle(&mut msgs, &mut rng);
        for (text, body) in msgs {
            let request = |body: &str| json!({"op": "group_decrypt", "group": "g1", "sender": sender_name, "body": body});
            if rng.random_range(0..3) == 0 {
                peers[receiver].refuses(request(&tamper(&body, "group", &mut rng)));
            }
            let a = peers[receiver].ok(request(&body));
            assert_eq!(
                B64.decode(a["plaintext"].as_str().unwrap()).unwrap(),
                text.as_bytes()
            );
            peers[receiver].refuses(request(&body));
        }
    }
}

/// What every conforming peer must refuse, and keep serving after.
#[test]
fn refusals_leave_the_peer_serving() {
    for kind in [Impl::Ours, Impl::Axolotl] {
        let mut alice = Peer::spawn(Impl::Ours, "alice", 1001);
        let mut bob = Peer::spawn(kind, "bob", 2002);
        let mut bundle = bob.bundle(true);
        let mut sig = B64
            .decode(bundle["signed_prekey_signature"].as_str().unwrap())
            .unwrap();
        sig[10] ^= 4;
        let good = bundle.clone();
        bundle["signed_prekey_signature"] = json!(B64.encode(sig));
        alice.refuses(json!({"op": "start", "peer": "bob", "bundle": bundle}));
        bob.ok(json!({"op": "start", "peer": "alice", "bundle": alice.bundle(true)}));
        let first = bob.encrypt("alice", "hello");
        // a body for an unknown session, and garbage, are refused
        alice.refuses(alice.decrypt_request("carol", "message", &first.body));
        alice.refuses(alice.decrypt_request("bob", "message", &B64.encode([0x33, 1, 2, 3])));
        alice.refuses(alice.decrypt_request("bob", "prekey", &B64.encode([0x33])));
        alice.expect_decrypt("bob", &first);
        alice.refuses(alice.decrypt_request("bob", "prekey", &first.body));
        let reply = alice.encrypt("bob", "hi");
        bob.expect_decrypt("alice", &reply);
        drop(good);
    }
    let mut ours = Peer::spawn(Impl::Ours, "x", 1);
    writeln!(ours.stdin, "not json").unwrap();
    let mut line = String::new();
    ours.stdin.flush().unwrap();
    ours.stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\":false"), "{line}");
    ours.refuses(json!({"op": "nope"}));
    ours.ok(json!({"op": "bundle"}));
}
