use super::*;
use crate::engine::RngTree;

fn client(seed: u64, name: &str, id: u64) -> Client {
    Client::new(name.as_bytes(), RngTree::new(seed).stream("mls", id)).expect("client")
}

fn at(s: u64) -> SimTime {
    SimTime::from_nanos(s * 1_000_000_000)
}

/// A room's life: created, two members added in one commit, messages both ways, one member
/// removed. Returns every byte that crossed, in order.
fn room_life(seed: u64) -> Vec<Vec<u8>> {
    let (alice, bob, carol) = (
        client(seed, "alice", 0),
        client(seed, "bob", 1),
        client(seed, "carol", 2),
    );
    let mut wire = Vec::new();
    let mut a = alice.create_room(b"room-1", at(1)).expect("create");
    assert_eq!((a.members(), a.epoch()), (1, 0));
    let kps = vec![
        bob.key_package(at(1)).expect("kp"),
        carol.key_package(at(1)).expect("kp"),
    ];
    wire.extend(kps.iter().cloned());
    let add = a.add(&kps, at(2)).expect("add");
    assert_eq!((a.members(), a.epoch()), (3, 1));
    let welcome = add
        .welcome
        .clone()
        .expect("a Welcome for the added members");
    wire.extend([add.commit.clone(), welcome.clone()]);
    let mut b = bob.join(&welcome, at(3)).expect("bob joins");
    let mut c = carol.join(&welcome, at(3)).expect("carol joins");
    assert_eq!((b.epoch(), c.epoch(), b.members()), (1, 1, 3));
    assert_eq!(b.id(), b"room-1");

    let hello = a.encrypt(b"hello, room").expect("encrypt");
    wire.push(hello.clone());
    for m in [&mut b, &mut c] {
        assert_eq!(
            m.receive(&hello, at(4)).expect("read"),
            Received::Application {
                sender: a.own_index(),
                plaintext: b"hello, room".to_vec()
            }
        );
    }
    let reply = b.encrypt(b"hi from bob").expect("encrypt");
    wire.push(reply.clone());
    assert!(matches!(
        a.receive(&reply, at(5)).expect("read"),
        Received::Application { sender, .. } if sender == b.own_index()
    ));
    c.receive(&reply, at(5)).expect("carol reads bob");

    // Carol leaves: her index from the roster, the commit read by bob, not by her.
    let carol_index = a.index_of(b"carol").expect("carol is a member");
    let remove = a.remove(&[carol_index], at(6)).expect("remove");
    assert_eq!(remove.welcome, None);
    wire.push(remove.commit.clone());
    assert_eq!(
        b.receive(&remove.commit, at(7)).expect("bob applies"),
        Received::Commit { epoch: 2 }
    );
    assert_eq!(
        (a.members(), b.members(), a.index_of(b"carol")),
        (2, 2, None)
    );
    let after = a.encrypt(b"carol is gone").expect("encrypt");
    wire.push(after.clone());
    assert!(matches!(
        b.receive(&after, at(8)),
        Ok(Received::Application { .. })
    ));
    // Carol learns from the commit that she is out, and cannot read the new epoch.
    assert_eq!(c.receive(&remove.commit, at(7)), Ok(Received::Removed));
    assert!(c.receive(&after, at(8)).is_err());
    wire
}

#[test]
fn a_room_adds_talks_and_removes() {
    let wire = room_life(7);
    assert_eq!(wire.len(), 8);
}

/// Every byte of a room's life is a function of the seed: no draw from the operating system
/// (key generation, HPKE ephemerals, path secrets). A read of the machine's clock would not
/// show here (both lives run within a second); it shows where a lifetime is checked, since
/// MLS's clock starts in 2000 (`EPOCH_UNIX_S`): a commit validated against the machine's date
/// finds its key packages expired (tried: a commit built without its time fails these tests).
#[test]
fn a_room_is_byte_identical_for_one_seed_and_differs_for_another() {
    assert_eq!(room_life(11), room_life(11));
    let (x, y) = (room_life(11), room_life(12));
    assert_eq!(x.len(), y.len());
    assert!(x.iter().zip(&y).all(|(a, b)| a != b));
}

#[test]
fn lifetimes_are_stamped_from_the_simulated_clock() {
    let kp = client(3, "dora", 0).key_package(at(100)).expect("kp");
    let not_before = (EPOCH_UNIX_S + 100).to_be_bytes();
    let not_after = (EPOCH_UNIX_S + 100 + KEY_PACKAGE_LIFETIME_S).to_be_bytes();
    let stamp = [not_before, not_after].concat();
    assert!(
        kp.windows(16).any(|w| w == stamp.as_slice()),
        "the key package's lifetime is [sim 100 s, + {KEY_PACKAGE_LIFETIME_S} s]"
    );
}

#[test]
fn garbage_and_foreign_messages_are_errors_not_panics() {
    let alice = client(5, "alice", 0);
    let mut room = alice.create_room(b"r", at(0)).expect("create");
    assert!(matches!(
        room.receive(b"not mls", at(1)),
        Err(MlsError::Malformed { op: "receive", .. })
    ));
    assert!(matches!(
        alice.join(&[0u8; 3], at(1)),
        Err(MlsError::Malformed { op: "join", .. })
    ));
    // A message of another room of the same client.
    let mut other = alice.create_room(b"other", at(0)).expect("create");
    let foreign = other.encrypt(b"x").expect("encrypt");
    assert!(room.receive(&foreign, at(1)).is_err());
    // A key package is not a Welcome.
    let kp = client(5, "bob", 1).key_package(at(0)).expect("kp");
    assert!(alice.join(&kp, at(1)).is_err());
}

/// RFC 9420's crypto-basics test vector for our suite (cipher suite 1), from the MLS working
/// group's interop repository (mlswg/mls-implementations, test-vectors/crypto-basics.json),
/// computed through the simulator's provider: each labeled construction of RFC 9420 section 5
/// built on the provider's hash, KDF, signature and HPKE.
mod crypto_basics {
    use super::super::crypto::{Entropy, SimMlsCrypto, SUITE};
    use crate::engine::SimRng;
    use mls_rs::{CipherSuiteProvider, CryptoProvider};
    use mls_rs_core::crypto::{
        HpkeCiphertext, HpkePublicKey, HpkeSecretKey, SignaturePublicKey, SignatureSecretKey,
    };
    use rand::SeedableRng;

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/mls/crypto-basics-suite1.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("the vector file")).expect("JSON")
    }

    fn hex(v: &serde_json::Value, key: &str) -> Vec<u8> {
        hex::decode(v[key].as_str().expect(key)).expect("hex")
    }

    /// An opaque<V> of RFC 9420 section 2.1.2: a variable-length size, then the bytes.
    fn opaque(out: &mut Vec<u8>, bytes: &[u8]) {
        let n = bytes.len();
        match n {
            0..=63 => out.push(n as u8),
            64..=16_383 => out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes()),
            _ => out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes()),
        }
        out.extend_from_slice(bytes);
    }

    fn labeled(label: &str, context: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        opaque(&mut out, format!("MLS 1.0 {label}").as_bytes());
        opaque(&mut out, context);
        out
    }

    fn expand_with_label(
        cs: &impl CipherSuiteProvider,
        secret: &[u8],
        label: &str,
        context: &[u8],
        length: u16,
    ) -> Vec<u8> {
        let mut info = length.to_be_bytes().to_vec();
        info.extend(labeled(label, context));
        cs.kdf_expand(secret, &info, length as usize)
            .expect("expand")
            .to_vec()
    }

    #[test]
    fn the_providers_primitives_give_the_rfc_9420_vector() {
        let v = vector();
        assert_eq!(v["cipher_suite"], 1);
        let cs = SimMlsCrypto::new(Entropy::new(SimRng::seed_from_u64(0)))
            .cipher_suite_provider(SUITE)
            .expect("suite 1");

        let r = &v["ref_hash"];
        let mut input = Vec::new();
        opaque(&mut input, r["label"].as_str().unwrap().as_bytes());
        opaque(&mut input, &hex(r, "value"));
        assert_eq!(cs.hash(&input).unwrap(), hex(r, "out"), "RefHash");

        let e = &v["expand_with_label"];
        let out = expand_with_label(
            &cs,
            &hex(e, "secret"),
            e["label"].as_str().unwrap(),
            &hex(e, "context"),
            e["length"].as_u64().unwrap() as u16,
        );
        assert_eq!(out, hex(e, "out"), "ExpandWithLabel");

        let d = &v["derive_secret"];
        let out = expand_with_label(
            &cs,
            &hex(d, "secret"),
            d["label"].as_str().unwrap(),
            b"",
            32,
        );
        assert_eq!(out, hex(d, "out"), "DeriveSecret");

        let t = &v["derive_tree_secret"];
        let generation = t["generation"].as_u64().unwrap() as u32;
        let out = expand_with_label(
            &cs,
            &hex(t, "secret"),
            t["label"].as_str().unwrap(),
            &generation.to_be_bytes(),
            t["length"].as_u64().unwrap() as u16,
        );
        assert_eq!(out, hex(t, "out"), "DeriveTreeSecret");

        // Ed25519 signatures are deterministic: ours must be the vector's, and verify.
        let s = &v["sign_with_label"];
        let seed: [u8; 32] = hex(s, "priv").try_into().expect("a 32-byte seed");
        let secret = SignatureSecretKey::new(
            ed25519_dalek::SigningKey::from_bytes(&seed)
                .to_keypair_bytes()
                .to_vec(),
        );
        let public = cs.signature_key_derive_public(&secret).unwrap();
        assert_eq!(public, SignaturePublicKey::new(hex(s, "pub")));
        let content = labeled(s["label"].as_str().unwrap(), &hex(s, "content"));
        assert_eq!(cs.sign(&secret, &content).unwrap(), hex(s, "signature"));
        cs.verify(&public, &hex(s, "signature"), &content)
            .expect("SignWithLabel verifies");

        // HPKE: open the vector's ciphertext with its key; a seal of ours opens too.
        let h = &v["encrypt_with_label"];
        let info = labeled(h["label"].as_str().unwrap(), &hex(h, "context"));
        let (sk, pk) = (
            HpkeSecretKey::from(hex(h, "priv")),
            HpkePublicKey::from(hex(h, "pub")),
        );
        let sealed = HpkeCiphertext {
            kem_output: hex(h, "kem_output"),
            ciphertext: hex(h, "ciphertext"),
        };
        let opened = cs.hpke_open(&sealed, &sk, &pk, &info, None).unwrap();
        assert_eq!(opened.to_vec(), hex(h, "plaintext"), "EncryptWithLabel");
        let ours = cs.hpke_seal(&pk, &info, None, b"round trip").unwrap();
        let back = cs.hpke_open(&ours, &sk, &pk, &info, None).unwrap();
        assert_eq!(back.to_vec(), b"round trip");
    }
}

/// The hub's order, as MIMI has it: two members commit to one epoch at once; the hub takes
/// the first and fans it out to everyone, its sender included; the second member's commit is
/// refused, it reads the winner's, and proposes again in the new epoch. Every member ends in
/// one state (one epoch, one roster, messages readable by all).
#[test]
fn two_commits_to_one_epoch_one_wins_and_the_loser_retries() {
    let names = ["alice", "bob", "carol", "dave"];
    let clients: Vec<Client> = (0..4).map(|i| client(21, names[i], i as u64)).collect();
    let mut alice = clients[0].create_room(b"race", at(0)).expect("create");
    let w = alice
        .add(&[clients[1].key_package(at(0)).expect("kp")], at(0))
        .expect("add bob")
        .welcome
        .expect("welcome");
    let mut bob = clients[1].join(&w, at(0)).expect("bob joins");
    assert_eq!((alice.epoch(), bob.epoch()), (1, 1));

    // Both commit to epoch 1: alice adds carol, bob adds dave.
    let mine = alice
        .propose_add(&[clients[2].key_package(at(1)).expect("kp")], at(1))
        .expect("alice proposes");
    let theirs = bob
        .propose_add(&[clients[3].key_package(at(1)).expect("kp")], at(1))
        .expect("bob proposes");
    assert!(alice.has_pending() && bob.has_pending());
    assert_eq!(
        (alice.epoch(), bob.epoch()),
        (1, 1),
        "nothing applied before the hub"
    );

    // The hub orders alice's first: both read it; alice's applies, bob's pending one is gone.
    assert_eq!(
        alice.receive(&mine.commit, at(2)).expect("own"),
        Received::Commit { epoch: 2 }
    );
    assert_eq!(
        bob.receive(&mine.commit, at(2)).expect("winner"),
        Received::Commit { epoch: 2 }
    );
    assert!(!alice.has_pending() && !bob.has_pending());
    // The refused commit is for a past epoch: no member can apply it.
    assert!(alice.receive(&theirs.commit, at(2)).is_err());
    let mut carol = clients[2]
        .join(&mine.welcome.expect("welcome"), at(2))
        .expect("carol joins");

    // Bob proposes again, now in epoch 2, and the hub takes it.
    let retry = bob
        .propose_add(&[clients[3].key_package(at(3)).expect("kp")], at(3))
        .expect("bob retries");
    for (room, label) in [
        (&mut alice, "alice"),
        (&mut bob, "bob"),
        (&mut carol, "carol"),
    ] {
        assert_eq!(
            room.receive(&retry.commit, at(4)).expect(label),
            Received::Commit { epoch: 3 },
            "{label}"
        );
    }
    let mut dave = clients[3]
        .join(&retry.welcome.expect("welcome"), at(4))
        .expect("dave joins");
    let rooms = [&mut alice, &mut bob, &mut carol, &mut dave];
    assert!(rooms.iter().all(|r| r.epoch() == 3 && r.members() == 4));
    let [alice, bob, carol, dave] = rooms;
    let m = dave.encrypt(b"all four").expect("encrypt");
    for r in [alice, bob, carol] {
        assert!(matches!(
            r.receive(&m, at(5)).expect("read"),
            Received::Application { plaintext, .. } if plaintext == b"all four"
        ));
    }
}
