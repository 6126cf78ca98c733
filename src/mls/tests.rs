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
    // Carol, one epoch behind and no longer a member, cannot read the new epoch.
    assert!(c.receive(&after, at(8)).is_err());
    wire
}

#[test]
fn a_room_adds_talks_and_removes() {
    let wire = room_life(7);
    assert_eq!(wire.len(), 8);
}

/// Every byte of a room's life is a function of the seed: no draw from the operating system
/// (key generation, HPKE ephemerals, path secrets) and no reading of the machine's clock.
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
