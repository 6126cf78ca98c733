//! MLS rooms as the MIMI design prices them (`crypto = "modeled"`): one encryption per message
//! for the whole room, commits when the membership moves on, Welcomes for joiners, key packages
//! consumed from the key directory like one-time prekeys. Real MLS (`crate::mls`) measured the
//! prices in the cost table; here the model decides who pays which operation when.
//!
//! The model, per room: the hub has a commit for one membership epoch. A device that sends in
//! a room with none creates it (a commit adding every member device, each from one of its key
//! packages). A sender whose membership epoch is newer than the room's commits the change and
//! carries the commit with its message. A member that reads a message of an epoch newer than it
//! knows processes that epoch's commit first, or joins from its Welcome if it was never in the
//! room. A sender that wanted to commit an epoch someone else committed first, before that
//! commit reached it, lost the race: its commit is refused by the hub, it processes the
//! winner's and encrypts its message again (counted as a commit conflict; the extra round trip
//! to the hub is not modeled).

use super::{Keyring, Op, Runner, Sealer};
use crate::scenario::ContentKind;
use crate::wire::{DeviceId, GroupId, SealInfo, UserId};
use std::collections::BTreeMap;

/// A room: a 1:1 chat (a two-member room, its users in id order) or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Room {
    Direct(UserId, UserId),
    Group(GroupId),
}

impl Room {
    /// The 1:1 room of `a` and `b`, whichever of the two writes.
    pub fn direct(a: UserId, b: UserId) -> Room {
        Room::Direct(a.min(b), a.max(b))
    }
}

/// Bytes an MLS commit adds to the message it rides with, for a room of `members` devices:
/// the signed commit and its update path (one HPKE ciphertext per level of the ratchet tree),
/// plus a Welcome per added device when the room is made. Measured with `crate::mls` at 2, 32
/// and 128 members within a factor of two (see the test below).
pub fn commit_len(members: usize, added: usize) -> u32 {
    let levels = usize::BITS - members.max(1).leading_zeros();
    let commit = 400 + 120 * levels as usize;
    let welcome = if added > 0 { 600 + 520 * added } else { 0 };
    u32::try_from(commit + welcome).unwrap_or(u32::MAX)
}

/// The modeled size of an MLS application message with `plaintext_len` bytes: the private
/// message framing, its AEAD tag and the sender's encrypted data (about 90 bytes), padded to
/// 16 bytes.
pub fn mls_len(plaintext_len: usize) -> u32 {
    let padded = (plaintext_len as u32).div_ceil(16) * 16;
    padded + 90
}

/// Every room's committed epoch, and how far each member device has caught up.
#[derive(Default)]
pub(super) struct Rooms {
    committed: BTreeMap<Room, u32>,
    known: BTreeMap<(DeviceId, Room), u32>,
}

/// A message to seal in a room: the room, the membership epoch the sender writes in, the
/// room's member devices (the sender's included or not), and the plaintext's size and kind.
pub struct RoomSend<'a> {
    pub room: Room,
    pub epoch: u32,
    pub members: &'a [DeviceId],
    pub plaintext_len: usize,
    pub kind: Option<ContentKind>,
}

/// A room message as sealed: what the receivers' model needs, the bytes the message carries
/// beyond the application message (a commit, Welcomes) and the CPU time charged.
pub struct RoomSealed {
    pub info: SealInfo,
    pub extra_len: u32,
    pub ns: u64,
}

impl Keyring {
    /// Prices MLS for the MIMI design (see the module doc); off by default.
    pub fn with_mls_rooms(mut self, on: bool) -> Self {
        self.rooms = on.then(Box::default);
        self
    }

    /// Whether devices seal with MLS (the MIMI design) rather than Signal.
    pub fn is_mls(&self) -> bool {
        self.rooms.is_some()
    }

    /// Encrypts a message from `by.from` in `room` at membership `epoch`, for the room's
    /// `members` devices (the sender's included or not): creates the room, commits a membership
    /// change, or catches up first, as the module doc says. `sibling` tells the sender's own
    /// other devices.
    pub fn room_seal(
        &mut self,
        by: &mut Sealer,
        send: RoomSend,
        sibling: impl Fn(DeviceId) -> bool,
    ) -> RoomSealed {
        let RoomSend {
            room,
            epoch,
            members,
            plaintext_len,
            kind,
        } = send;
        let (from, runner) = (by.from, by.runner);
        let mut ns = self.ensure_keys(from, runner);
        let Some(rooms) = self.rooms.as_mut() else {
            panic!("room_seal needs MLS rooms (the MIMI design)")
        };
        let committed = rooms.committed.get(&room).copied();
        let known = rooms.known.get(&(from, room)).copied();
        let mut extra_len = 0;
        let mut ops: Vec<Op> = Vec::with_capacity(3);
        let mut added = Vec::new();
        match committed {
            None => {
                // A new room: one commit adds every other member device from a key package.
                added.extend(members.iter().copied().filter(|&d| d != from));
                ops.push(Op::MlsCommit);
                rooms.committed.insert(room, epoch);
                extra_len = commit_len(members.len(), added.len());
            }
            Some(c) if c < epoch => {
                if known.is_some_and(|k| k < c) {
                    ops.push(Op::MlsProcessCommit);
                }
                ops.push(Op::MlsCommit);
                rooms.committed.insert(room, epoch);
                // The change adds a newcomer (a member left, one joined): its Welcome too.
                extra_len = commit_len(members.len(), 1);
                self.counts.mls_membership_commits += 1;
            }
            Some(c) => match known {
                None => ops.push(Op::MlsJoin),
                Some(k) if k < c && c == epoch && epoch > 0 => {
                    // It saw the change and committed it too; the hub had the other first.
                    ops.extend([Op::MlsCommit, Op::MlsProcessCommit, Op::MlsEncrypt]);
                    self.counts.mls_commit_conflicts += 1;
                }
                Some(k) if k < c => ops.push(Op::MlsProcessCommit),
                Some(_) => {}
            },
        }
        let epoch_now = committed.map_or(epoch, |c| c.max(epoch));
        if let Some(rooms) = self.rooms.as_mut() {
            rooms.known.insert((from, room), epoch_now);
        }
        for d in added {
            // Key packages are the MLS one-time prekeys: consumed from the same pool, under
            // the same anti-drain limit per pair, except the creator's own other devices'
            // (its own account's, which MLS needs once per room).
            if sibling(d) {
                let served = by.directory.fetch(d);
                if served.one_time_prekey.is_none() {
                    self.counts.bundles_without_one_time += 1;
                }
                continue;
            }
            // Without a one-time one, its last-resort key package.
            self.fetch_bundle(by, d);
        }
        for op in ops {
            ns += self.charge(runner, kind, op, 0);
        }
        self.counts.plaintext_bytes += plaintext_len as u64;
        ns += self.charge(runner, kind, Op::MlsEncrypt, plaintext_len as u64);
        let info = SealInfo {
            mls: true,
            sender_generation: self.devices[from.index()].generation,
            target_generation: epoch_now,
            content: super::content_code(kind),
            ..SealInfo::default()
        };
        RoomSealed {
            info,
            extra_len,
            ns,
        }
    }

    /// Decrypts at `to` a message of `room` sealed at the epoch in `info`: a device never in
    /// the room joins from its Welcome, one behind processes the commit, then it decrypts
    /// `len` bytes. Modeled MLS refuses nothing.
    pub fn room_open(
        &mut self,
        to: DeviceId,
        room: Room,
        info: SealInfo,
        len: u32,
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> u64 {
        let kind = kind.or(super::content_of(info.content));
        let mut ns = self.ensure_keys(to, runner);
        let Some(rooms) = self.rooms.as_mut() else {
            panic!("room_open needs MLS rooms (the MIMI design)")
        };
        let epoch = info.target_generation;
        let known = rooms.known.get(&(to, room)).copied();
        let op = match known {
            None => Some(Op::MlsJoin),
            Some(k) if k < epoch => Some(Op::MlsProcessCommit),
            Some(_) => None,
        };
        rooms
            .known
            .insert((to, room), known.map_or(epoch, |k| k.max(epoch)));
        if let Some(op) = op {
            ns += self.charge(runner, kind, op, 0);
        }
        ns + self.charge(runner, kind, Op::MlsDecrypt, u64::from(len))
    }

    /// A reinstall left every room: the device joins again from a Welcome when it next reads.
    pub(super) fn leave_rooms(&mut self, d: DeviceId) {
        if let Some(rooms) = self.rooms.as_mut() {
            rooms.known.retain(|(dev, _), _| *dev != d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The modeled sizes against real MLS (`crate::mls`): a room made in one commit adding
    /// `n - 1` members, with its Welcome, and an application message, each within a factor of
    /// two.
    #[test]
    fn modeled_sizes_are_within_a_factor_of_two_of_real_mls() {
        use crate::engine::{RngTree, SimTime};
        use crate::mls::Client;
        let tree = RngTree::new(7);
        let now = SimTime::ZERO;
        for n in [2usize, 8, 32] {
            let clients: Vec<Client> = (0..n)
                .map(|i| {
                    let id = format!("d{i}");
                    Client::new(id.as_bytes(), tree.stream("mls-size", i as u64)).expect("client")
                })
                .collect();
            let packages: Vec<Vec<u8>> = clients[1..]
                .iter()
                .map(|c| c.key_package(now).expect("a key package"))
                .collect();
            let mut room = clients[0].create_room(b"room", now).expect("a room");
            let made = room.add(&packages, now).expect("an add");
            let real = made.commit.len() + made.welcome.as_ref().map_or(0, Vec::len);
            let modeled = commit_len(n, n - 1) as usize;
            eprintln!("{n} members: a real commit and Welcome {real} B, modeled {modeled} B");
            assert!(
                real <= 2 * modeled && modeled <= 2 * real,
                "{real} vs {modeled}"
            );
            let ct = room.encrypt(&[0u8; 100]).expect("encrypt");
            let m = mls_len(100) as usize;
            assert!(
                ct.len() <= 2 * m && m <= 2 * ct.len(),
                "{} vs {m}",
                ct.len()
            );
        }
    }
}
