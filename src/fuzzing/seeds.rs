//! The fuzz targets' seed corpus (`fuzz/seeds/<target>/`): real encodings, so that the fuzzer
//! starts from inputs that get past the first checks. Written by an ignored test, run by hand
//! when a format changes (fuzz/README.md):
//! `cargo test --release --lib fuzzing::seeds -- --ignored`.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;

use crate::e2ee::keys::PublicKey;
use crate::engine::SimTime;
use crate::live::codec::{self, Record};
use crate::live::noise::NoiseKeys;
use crate::nodes::Addr;
use crate::wire::{
    BlobId, Ciphertext, CopyId, Delivery, DeviceId, Frame, GroupId, GroupPayload, MediaFrame,
    MsgId, Payload, ProviderId, ReceiptKind, Submission, UserId,
};

/// Runs one peer over `lines`; its answers.
fn serve(lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    crate::e2ee::peer::serve(lines.join("\n").as_bytes(), &mut out).expect("a Vec takes it");
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("answers are JSON"))
        .collect()
}

fn b64(answer: &Value, field: &str) -> Vec<u8> {
    B64.decode(answer[field].as_str().expect("a string field"))
        .expect("base64")
}

/// Peer sessions (JSON lines) and the Signal messages they carry, plain and PQXDH.
fn peer_and_wire() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut peer, mut wire) = (Vec::new(), Vec::new());
    for pq in [false, true] {
        let bob_init =
            format!(r#"{{"op":"init","name":"bob","registration_id":2,"seed":1,"pqxdh":{pq}}}"#);
        let bob = vec![bob_init.clone(), r#"{"op":"bundle"}"#.to_string()];
        let bundle = serve(&bob)[1].clone();
        let mut bundle_fields = bundle.as_object().expect("an object").clone();
        bundle_fields.remove("ok");
        let alice = vec![
            r#"{"op":"init","name":"alice","registration_id":1,"seed":1}"#.to_string(),
            serde_json::json!({"op": "start", "peer": "bob", "bundle": bundle_fields}).to_string(),
            r#"{"op":"encrypt","peer":"bob","plaintext":"aGk="}"#.to_string(),
            r#"{"op":"group_create","group":"g"}"#.to_string(),
            r#"{"op":"group_encrypt","group":"g","plaintext":"aGk="}"#.to_string(),
        ];
        let answers = serve(&alice);
        let prekey = b64(&answers[2], "body");
        let distribution = b64(&answers[3], "distribution");
        let group = b64(&answers[4], "body");
        let mut bob = bob;
        bob.extend([
            serde_json::json!({"op": "decrypt", "peer": "alice", "type": "prekey", "body": B64.encode(&prekey)}).to_string(),
            r#"{"op":"encrypt","peer":"alice","plaintext":"aGk="}"#.to_string(),
            serde_json::json!({"op": "group_join", "group": "g", "sender": "alice", "distribution": B64.encode(&distribution)}).to_string(),
            serde_json::json!({"op": "group_decrypt", "group": "g", "sender": "alice", "body": B64.encode(&group)}).to_string(),
        ]);
        let answers = serve(&bob);
        assert!(answers.iter().all(|a| a["ok"] == true), "{answers:?}");
        let reply = b64(&answers[3], "body");
        let identity = B64
            .decode(bundle["identity_key"].as_str().expect("a key"))
            .expect("b64");
        assert!(PublicKey::deserialize(&identity).is_ok());
        // The wire target's first byte picks the decoder (fuzzing::wire).
        wire.extend([
            [&[0u8][..], &identity].concat(),
            [&[1u8][..], &reply].concat(),
            [&[2u8][..], &prekey].concat(),
            [&[3u8][..], &group].concat(),
            [&[4u8][..], &distribution].concat(),
        ]);
        peer.extend([alice.join("\n").into_bytes(), bob.join("\n").into_bytes()]);
    }
    (peer, wire)
}

/// One record of every frame kind.
fn codec_records() -> Vec<Vec<u8>> {
    let (copy, device, user) = (CopyId::direct(MsgId(1)), DeviceId(2), UserId(3));
    let ciphertext = Ciphertext {
        len: 3,
        bytes: Some(b"abc".to_vec().into_boxed_slice()),
        seal: Default::default(),
    };
    let submission = Submission {
        msg: MsgId(7),
        from_user: user,
        from_device: device,
        to_user: UserId(4),
        seq: 5,
        sent_at: SimTime::from_nanos(6),
        payload: Payload::Direct(smallvec::smallvec![(DeviceId(4), ciphertext.clone())]),
    };
    let delivery = Delivery {
        copy,
        from_user: user,
        from_device: device,
        to_user: UserId(4),
        to_device: DeviceId(4),
        seq: 5,
        retry: 0,
        sent_at: SimTime::from_nanos(6),
        ciphertext,
        group: None,
        key_distribution: None,
    };
    // A group message as the live wire carries it: the Sender Key ciphertext, a distribution,
    // members with their numbers; a member's copy with its distribution.
    let group = Submission {
        payload: Payload::Group(Box::new(GroupPayload {
            group: GroupId(3),
            hub: crate::wire::ProviderId(0),
            shared: delivery.ciphertext.clone(),
            distributions: vec![(DeviceId(4), delivery.ciphertext.clone())],
            members: vec![(UserId(4), 0), (UserId(6), 2)].into(),
        })),
        ..submission.clone()
    };
    let member_copy = Delivery {
        copy: CopyId {
            msg: copy.msg,
            member: 1,
        },
        group: Some(GroupId(3)),
        key_distribution: Some(Box::new(delivery.ciphertext.clone())),
        ..delivery.clone()
    };
    let blob = BlobId(77);
    let frames = [
        Frame::Submit(Box::new(submission)),
        Frame::Deliver(Box::new(delivery)),
        Frame::Submit(Box::new(group)),
        Frame::Deliver(Box::new(member_copy)),
        Frame::SubmitAck {
            copy,
            device,
            resend: 0,
        },
        Frame::DeliverAck {
            copy,
            device,
            from_user: user,
            to_user: user,
        },
        Frame::Connect { device, epoch: 3 },
        Frame::Throttle {
            device,
            until: SimTime::from_secs(2),
        },
        Frame::Receipt {
            msg: copy.msg,
            kind: ReceiptKind::Read,
            from_user: user,
            to_user: user,
            to_device: Some(device),
        },
        Frame::RetryReceipt {
            copy,
            requester: device,
            sender: device,
            sender_user: user,
            attempt: 1,
        },
        Frame::Media(MediaFrame::Upload {
            blob,
            device,
            attempt: 1,
            len: 5_000,
            fetches: 3,
        }),
        Frame::Media(MediaFrame::Fetch {
            blob,
            host: ProviderId(2),
            device,
            attempt: 0,
        }),
    ];
    let mut out: Vec<Vec<u8>> = frames
        .into_iter()
        .map(|frame| {
            let mut buf = Vec::new();
            codec::encode(
                &Record {
                    from: Addr::Device(device),
                    to: Addr::Gateway,
                    frame,
                },
                &mut buf,
            );
            buf
        })
        .collect();
    for (from, run) in [
        (Addr::Adapter(ProviderId(1)), crate::live::session::RunId(0)),
        (
            Addr::Device(codec::HELLO_DEVICE),
            crate::live::session::RunId(700_000_000_000),
        ),
    ] {
        let mut hello = Vec::new();
        codec::encode(&codec::hello(from, Addr::Gateway, run), &mut hello);
        out.push(hello);
    }
    out
}

/// The three messages of a real XX handshake, each behind the selector of the end that reads it.
fn noise_messages() -> Vec<Vec<u8>> {
    let tree = crate::engine::RngTree::new(1);
    let (gw, client) = (
        NoiseKeys::derive(&tree, "gw", 0),
        NoiseKeys::derive(&tree, "client", 0),
    );
    let mut i = super::noise::builder(&client)
        .expect("params")
        .build_initiator()
        .expect("init");
    let mut r = super::noise::builder(&gw)
        .expect("params")
        .build_responder()
        .expect("resp");
    let (mut buf, mut payload) = (vec![0u8; 1024], vec![0u8; 1024]);
    let mut out = Vec::new();
    for (step, selector) in [0u8, 1, 2].into_iter().enumerate() {
        let (w, rd) = if step % 2 == 0 {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let n = w.write_message(&[], &mut buf).expect("write");
        rd.read_message(&buf[..n], &mut payload).expect("read");
        out.push([&[selector][..], &buf[..n]].concat());
    }
    out
}

fn write(dir: &Path, target: &str, items: &[Vec<u8>]) {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (k, bytes) in items.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{k:02}")), bytes).expect("write a seed");
    }
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand when a format changes"]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("fuzz/seeds");
    let (peer, wire) = peer_and_wire();
    write(&dir, "peer", &peer);
    write(&dir, "wire", &wire);
    write(&dir, "codec", &codec_records());
    write(&dir, "noise", &noise_messages());
    let mut scenarios = Vec::new();
    for folder in [
        "scenarios",
        "tests/data/valid",
        "tests/data/valid/cost_tables",
    ] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("a folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        scenarios.extend(paths.iter().map(|p| std::fs::read(p).expect("read")));
    }
    write(&dir, "scenario", &scenarios);
    for seeds in [
        &peer,
        &wire,
        &codec_records(),
        &noise_messages(),
        &scenarios,
    ] {
        seeds.iter().for_each(|s| assert!(!s.is_empty()));
    }
}
