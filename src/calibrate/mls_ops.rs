//! The MLS operations of the cost table (the `mimi` design), timed with the simulator's own MLS
//! (src/mls/: mls-rs, the run's randomness). Membership operations are measured in a room of
//! [`MLS_REFERENCE_MEMBERS`]: a batch alternates adds and removes so that the room keeps its
//! size however long the batch is.

use std::hint::black_box;

use super::batch::{text, timed, Batch};
use crate::engine::{RngTree, SimTime};
use crate::mls::{Client, Commit, Room};
use crate::scenario::cost_table::MLS_REFERENCE_MEMBERS;

const NOW: SimTime = SimTime::ZERO;
/// Newcomers' client ids, above the reference room's.
const NEWCOMER_BASE: u64 = 1_000;

fn client(tree: &RngTree, i: u64) -> Result<Client, String> {
    Client::new(format!("device-{i}").as_bytes(), tree.stream("mls", i)).map_err(text)
}

/// A room of `MLS_REFERENCE_MEMBERS`: its creator's view, and a member's (client 1).
fn reference_room(seed: u64) -> Result<(RngTree, Room, Room), String> {
    let tree = RngTree::new(seed);
    let creator = client(&tree, 0)?;
    let others = (1..MLS_REFERENCE_MEMBERS as u64)
        .map(|i| client(&tree, i))
        .collect::<Result<Vec<_>, _>>()?;
    let kps = others
        .iter()
        .map(|c| c.key_package(NOW).map_err(text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut room = creator.create_room(b"calibrate", NOW).map_err(text)?;
    let add = room.add(&kps, NOW).map_err(text)?;
    let welcome = add.welcome.ok_or("an add commit has a Welcome")?;
    let member = others[0].join(&welcome, NOW).map_err(text)?;
    Ok((tree, room, member))
}

/// A membership commit as the other members read it, with the Welcome of an add and the
/// client it was for.
struct Membership {
    commit: Vec<u8>,
    welcome: Option<Vec<u8>>,
    newcomer: Client,
}

/// The `i`-th membership change of a batch: an even one adds the owner of `kp` (newcomer
/// `i`), an odd one removes newcomer `i - 1`, so that the room keeps its size.
fn change(room: &mut Room, i: usize, kp: &[u8]) -> Result<Commit, String> {
    if i.is_multiple_of(2) {
        return room.add(&[kp.to_vec()], NOW).map_err(text);
    }
    let name = format!("device-{}", NEWCOMER_BASE + i as u64 - 1);
    let index = room.index_of(name.as_bytes()).ok_or("the newcomer is in")?;
    room.remove(&[index], NOW).map_err(text)
}

/// Newcomer `i` of a batch and its key package, made before the clock starts.
fn newcomer(tree: &RngTree, i: usize) -> Result<(Client, Vec<u8>), String> {
    let c = client(tree, NEWCOMER_BASE + i as u64)?;
    let kp = c.key_package(NOW).map_err(text)?;
    Ok((c, kp))
}

/// `n` membership changes (see [`change`]) applied by the creator, as the others read them.
fn membership_commits(
    room: &mut Room,
    tree: &RngTree,
    n: usize,
) -> Result<Vec<Membership>, String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (newcomer, kp) = newcomer(tree, i)?;
        let commit = change(room, i, &kp)?;
        out.push(Membership {
            commit: commit.commit,
            welcome: commit.welcome,
            newcomer,
        });
    }
    Ok(out)
}

pub fn key_package(n: usize, _: usize) -> Result<Batch, String> {
    let c = client(&RngTree::new(31), 0)?;
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                black_box(c.key_package(NOW).map_err(text)?);
            }
            Ok(())
        })
    }))
}

pub fn encrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let (_, mut room, _) = reference_room(32)?;
    let plaintext = vec![0x5a; bytes];
    Ok(Box::new(move || {
        timed(|| {
            for _ in 0..n {
                black_box(room.encrypt(&plaintext).map_err(text)?);
            }
            Ok(())
        })
    }))
}

pub fn decrypt(n: usize, bytes: usize) -> Result<Batch, String> {
    let (_, mut room, mut member) = reference_room(33)?;
    let plaintext = vec![0x5a; bytes];
    let sealed = (0..n)
        .map(|_| room.encrypt(&plaintext).map_err(text))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Box::new(move || {
        timed(|| {
            for m in &sealed {
                black_box(member.receive(m, NOW).map_err(text)?);
            }
            Ok(())
        })
    }))
}

pub fn commit(n: usize, _: usize) -> Result<Batch, String> {
    let (tree, mut room, _) = reference_room(34)?;
    let kps = (0..n)
        .map(|i| Ok(newcomer(&tree, i)?.1))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Box::new(move || {
        timed(|| {
            for (i, kp) in kps.iter().enumerate() {
                black_box(change(&mut room, i, kp)?);
            }
            Ok(())
        })
    }))
}

pub fn process_commit(n: usize, _: usize) -> Result<Batch, String> {
    let (tree, mut room, mut member) = reference_room(35)?;
    let commits = membership_commits(&mut room, &tree, n)?;
    Ok(Box::new(move || {
        timed(|| {
            for m in &commits {
                black_box(member.receive(&m.commit, NOW).map_err(text)?);
            }
            Ok(())
        })
    }))
}

pub fn join(n: usize, _: usize) -> Result<Batch, String> {
    let (tree, mut room, _) = reference_room(36)?;
    let commits = membership_commits(&mut room, &tree, 2 * n)?;
    let welcomes: Vec<(Vec<u8>, Client)> = commits
        .into_iter()
        .filter_map(|m| Some((m.welcome?, m.newcomer)))
        .collect();
    Ok(Box::new(move || {
        timed(|| {
            for (welcome, newcomer) in &welcomes {
                black_box(newcomer.join(welcome, NOW).map_err(text)?);
            }
            Ok(())
        })
    }))
}
