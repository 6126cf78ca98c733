//! The simulator's MLS (mls-rs, with the run's randomness and clock: src/mls/) against another
//! implementation of RFC 9420, openmls, both ways: a room made by one is joined through its
//! Welcome by a client of the other, and application messages cross in both directions. What
//! crosses is bytes, as between providers.
//!
//! openmls checks key package lifetimes against the machine's clock, so the simulated clock of
//! this test runs at the machine's date (simulated time = now - the MLS epoch of src/mls/).

use interop_sim::engine::{RngTree, SimTime};
use interop_sim::mls::{self, Received};
use openmls::prelude::tls_codec::{DeserializeBytes, Serialize};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The simulated time whose MLS clock reads the machine's.
fn machine_now() -> SimTime {
    #[allow(clippy::disallowed_methods)] // determinism: ok (openmls reads the machine's clock)
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let since = (unix.checked_sub(mls::EPOCH_UNIX_S)).expect("a machine clock after 2000-01-01");
    SimTime::from_nanos(since * 1_000_000_000)
}

/// An openmls client: its provider (keys live in its storage), signer and credential.
struct Olga {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl Olga {
    fn new(name: &str) -> Self {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signer");
        signer.store(provider.storage()).expect("store the signer");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        Olga {
            provider,
            signer,
            credential,
        }
    }

    fn key_package(&self) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("key package");
        MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .expect("encode")
    }

    fn join(&self, welcome: &[u8]) -> MlsGroup {
        let MlsMessageBodyIn::Welcome(welcome) = read(welcome).extract() else {
            panic!("not a Welcome");
        };
        // Commits of mls-rs members come as public messages (as a MIMI hub needs them, to
        // follow the membership), application messages as private ones.
        let config = MlsGroupJoinConfig::builder()
            .wire_format_policy(MIXED_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .build();
        StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .expect("openmls accepts the Welcome")
            .into_group(&self.provider)
            .expect("openmls joins")
    }

    /// Adds the owner of one of our key packages (openmls validates it first) and merges the
    /// commit: the commit and the Welcome, as bytes.
    fn add(&self, group: &mut MlsGroup, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let MlsMessageBodyIn::KeyPackage(kp) = read(key_package).extract() else {
            panic!("not a key package");
        };
        let kp = kp
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .expect("openmls accepts our key package");
        let (commit, welcome, _) = group
            .add_members(&self.provider, &self.signer, &[kp])
            .expect("add");
        group.merge_pending_commit(&self.provider).expect("merge");
        let bytes = |m: MlsMessageOut| m.tls_serialize_detached().expect("encode");
        (bytes(commit), bytes(welcome))
    }

    fn send(&self, group: &mut MlsGroup, text: &[u8]) -> Vec<u8> {
        group
            .create_message(&self.provider, &self.signer, text)
            .expect("encrypt")
            .tls_serialize_detached()
            .expect("encode")
    }

    /// Reads an application message (its plaintext) or merges a commit (`None`).
    fn read(&self, group: &mut MlsGroup, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = read(bytes)
            .try_into_protocol_message()
            .expect("a protocol message");
        let processed = group
            .process_message(&self.provider, message)
            .expect("openmls reads it");
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
            ProcessedMessageContent::StagedCommitMessage(commit) => {
                group
                    .merge_staged_commit(&self.provider, *commit)
                    .expect("merge the commit");
                None
            }
            _ => panic!("expected an application message or a commit"),
        }
    }
}

/// What one of our members reads from an application message (a panic for anything else).
fn plaintext(room: &mut mls::Room, bytes: &[u8], now: SimTime) -> Vec<u8> {
    match room.receive(bytes, now).expect("read") {
        Received::Application { plaintext, .. } => plaintext,
        other => panic!("expected an application message, read {other:?}"),
    }
}

fn read(bytes: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact_bytes(bytes).expect("an MLS message")
}

#[test]
fn an_openmls_client_joins_our_room_and_talks() {
    let now = machine_now();
    let alice = mls::Client::new(b"alice", RngTree::new(1).stream("mls", 0)).expect("client");
    let olga = Olga::new("olga");
    let mut room = alice.create_room(b"room-a", now).expect("create");
    let add = room
        .add(&[olga.key_package()], now)
        .expect("add openmls's key package");
    let mut group = olga.join(&add.welcome.expect("a Welcome"));
    assert_eq!(group.epoch().as_u64(), room.epoch());
    assert_eq!(group.members().count(), 2);

    let hello = room.encrypt(b"hello from mls-rs").expect("encrypt");
    assert_eq!(
        olga.read(&mut group, &hello).as_deref(),
        Some(&b"hello from mls-rs"[..])
    );
    let reply = olga.send(&mut group, b"hello from openmls");
    assert_eq!(
        room.receive(&reply, now).expect("mls-rs reads openmls"),
        Received::Application {
            sender: room.index_of(b"olga").expect("olga is a member"),
            plaintext: b"hello from openmls".to_vec()
        }
    );

    // A new epoch: alice adds carol; openmls follows the commit, then all three talk.
    let carol = mls::Client::new(b"carol", RngTree::new(1).stream("mls", 1)).expect("client");
    let add = room
        .add(&[carol.key_package(now).expect("kp")], now)
        .expect("add carol");
    assert_eq!(olga.read(&mut group, &add.commit), None);
    assert_eq!((group.epoch().as_u64(), room.epoch()), (2, 2));
    let mut carols = carol
        .join(&add.welcome.expect("a Welcome"), now)
        .expect("carol joins");
    let from_olga = olga.send(&mut group, b"epoch two");
    for r in [&mut room, &mut carols] {
        assert_eq!(plaintext(r, &from_olga, now), b"epoch two");
    }
    let from_carol = carols.encrypt(b"hi both").expect("encrypt");
    assert_eq!(
        olga.read(&mut group, &from_carol).as_deref(),
        Some(&b"hi both"[..])
    );
}

#[test]
fn we_join_an_openmls_room_and_talk() {
    let now = machine_now();
    let olga = Olga::new("olga");
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .build();
    let mut group = MlsGroup::new(
        &olga.provider,
        &olga.signer,
        &config,
        olga.credential.clone(),
    )
    .expect("openmls group");
    let bob = mls::Client::new(b"bob", RngTree::new(2).stream("mls", 0)).expect("client");
    let (_commit, welcome) = olga.add(&mut group, &bob.key_package(now).expect("kp"));
    let mut room = bob
        .join(&welcome, now)
        .expect("mls-rs joins openmls's room");
    assert_eq!((room.epoch(), room.members()), (group.epoch().as_u64(), 2));

    let hello = olga.send(&mut group, b"welcome, bob");
    assert_eq!(plaintext(&mut room, &hello, now), b"welcome, bob");
    let reply = room.encrypt(b"thanks, olga").expect("encrypt");
    assert_eq!(
        olga.read(&mut group, &reply).as_deref(),
        Some(&b"thanks, olga"[..])
    );

    // openmls commits (as a private message, its default) and we follow: olga adds dave,
    // another of ours; bob reads the commit, dave joins, both read olga.
    let dave = mls::Client::new(b"dave", RngTree::new(2).stream("mls", 1)).expect("client");
    let (commit, welcome) = olga.add(&mut group, &dave.key_package(now).expect("kp"));
    assert_eq!(
        room.receive(&commit, now)
            .expect("bob follows openmls's commit"),
        Received::Commit { epoch: 2 }
    );
    let mut daves = dave.join(&welcome, now).expect("dave joins");
    let hello = olga.send(&mut group, b"three of us");
    for r in [&mut room, &mut daves] {
        assert_eq!(plaintext(r, &hello, now), b"three of us");
    }
}
