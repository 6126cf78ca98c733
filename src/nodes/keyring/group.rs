//! Sender Keys: one encryption per group message, with the key distributed to each member
//! device that lacks it over the pairwise session, made anew when the membership moves on.

use super::{Keyring, Op, OpenError, Runner, Sealed, Sealer, SKDM_PLAINTEXT_LEN};
use crate::e2ee::{SenderKeyDistributionMessage, SenderKeyRecord, SenderKeyState};
use crate::scenario::{ContentKind, CryptoMode};
use crate::wire::{Ciphertext, DeviceId, GroupId, SealInfo};
use std::collections::{BTreeMap, BTreeSet};

/// Sender Key states a member keeps per (sender, group), as libsignal does.
const PEER_SENDER_KEYS_MAX: usize = 5;

/// A device's Sender Key state across its groups.
#[derive(Default)]
pub(super) struct GroupKeys {
    /// This device's own key per group.
    own: BTreeMap<u32, OwnSenderKey>,
    /// Keys received per (sender device, group).
    received: BTreeMap<(u32, u32), ReceivedSenderKeys>,
}

/// A device's own Sender Key in one group.
struct OwnSenderKey {
    /// The model's id of the key (run-wide counter); real mode's key carries its own.
    key_id: u32,
    /// The group's membership epoch it was made for: once someone left, it is retired.
    epoch: u32,
    /// Devices it was distributed to.
    holders: BTreeSet<u32>,
    real: Option<Box<SenderKeyState>>,
}

/// What a member holds of one sender's keys in one group: the newest few.
#[derive(Default)]
struct ReceivedSenderKeys {
    /// Model ids, newest first.
    ids: Vec<u32>,
    real: Option<Box<SenderKeyRecord>>,
}

/// A group message as sealed: the Sender Key ciphertext all members get, and a pairwise
/// distribution for each device that lacked the key.
pub struct GroupSealed {
    pub shared: Sealed,
    pub distributions: Vec<(DeviceId, Sealed)>,
    pub ns: u64,
    /// Bytes riding with an MLS message (a commit, Welcomes; see `rooms`): 0 for Sender Keys.
    pub extra_len: u32,
}

impl Keyring {
    /// Encrypts a group message from `by.from` to group `g` (membership `epoch`) once, with
    /// the sender's Sender Key, made on first use and made anew when the membership moved on (a
    /// member left). Each device of `targets` that lacks the key first gets its distribution
    /// message over the pairwise session (set up on first contact, as for a 1:1 message).
    pub fn group_seal(
        &mut self,
        by: &mut Sealer,
        g: GroupId,
        epoch: u32,
        targets: &[DeviceId],
        plaintext: &[u8],
        kind: Option<ContentKind>,
    ) -> GroupSealed {
        let (from, runner) = (by.from, by.runner);
        let mut ns = self.ensure_keys(from, runner);
        let real = self.mode == CryptoMode::Real;
        let current = self.devices[from.index()]
            .groups
            .as_ref()
            .and_then(|k| k.own.get(&g.0))
            .map(|k| k.epoch);
        if current != Some(epoch) {
            if current.is_some() {
                self.counts.sender_key_rotations += 1;
            }
            ns += self.charge(runner, kind, Op::KeyGeneration, 0);
            let key_id = self.next_sender_key;
            self.next_sender_key += 1;
            let state = &mut self.devices[from.index()];
            let fresh = match (real, state.rng.as_mut()) {
                (true, Some(rng)) => Some(Box::new(SenderKeyState::generate(rng.as_mut()))),
                _ => None,
            };
            let own = OwnSenderKey {
                key_id,
                epoch,
                holders: BTreeSet::new(),
                real: fresh,
            };
            state
                .groups
                .get_or_insert_with(Box::default)
                .own
                .insert(g.0, own);
        }
        let lacking: Vec<DeviceId> = {
            let own = self.own_key(from, g);
            targets
                .iter()
                .copied()
                .filter(|d| *d != from && !own.is_some_and(|k| k.holders.contains(&d.0)))
                .collect()
        };
        let skdm = self.distribution_plaintext(from, g);
        let mut distributions = Vec::with_capacity(lacking.len());
        for d in lacking {
            let (bytes, info, n) = self.seal(by, d, &skdm, kind);
            ns += n;
            distributions.push((d, (bytes, info)));
            self.counts.sender_key_distributions += 1;
        }
        self.counts.plaintext_bytes += plaintext.len() as u64;
        ns += self.charge(runner, kind, Op::SenderKeyEncrypt, plaintext.len() as u64);
        let state = &mut self.devices[from.index()];
        let generation = state.generation;
        let rng = state.rng.as_mut();
        let Some(own) = state.groups.as_mut().and_then(|k| k.own.get_mut(&g.0)) else {
            unreachable!("the sender key was just made")
        };
        own.holders.extend(distributions.iter().map(|(d, _)| d.0));
        let bytes = match (own.real.as_mut(), rng) {
            (Some(key), Some(rng)) => key
                .encrypt(plaintext, rng.as_mut())
                .ok()
                .map(|m| m.serialized().to_vec().into_boxed_slice()),
            _ => None,
        };
        let info = SealInfo {
            mls: false,
            prekey: false,
            sender_key: true,
            sender_generation: generation,
            target_generation: own.key_id,
            content: super::content_code(kind),
        };
        GroupSealed {
            shared: (bytes, info),
            distributions,
            ns,
            extra_len: 0,
        }
    }

    /// The membership epoch `d`'s current Sender Key in `g` was made for.
    pub fn sender_key_epoch(&self, d: DeviceId, g: GroupId) -> Option<u32> {
        self.own_key(d, g).map(|k| k.epoch)
    }

    fn own_key(&self, d: DeviceId, g: GroupId) -> Option<&OwnSenderKey> {
        self.devices[d.index()].groups.as_ref()?.own.get(&g.0)
    }

    /// The distribution message of `from`'s key in `g`, padded to [`SKDM_PLAINTEXT_LEN`]
    /// (zeros in modeled crypto).
    fn distribution_plaintext(&self, from: DeviceId, g: GroupId) -> Vec<u8> {
        let mut out = vec![0u8; SKDM_PLAINTEXT_LEN];
        if let Some(real) = self.own_key(from, g).and_then(|k| k.real.as_ref()) {
            let m = real.distribution_message();
            let bytes = m.serialized();
            if bytes.len() < SKDM_PLAINTEXT_LEN {
                out[0] = bytes.len() as u8;
                out[1..=bytes.len()].copy_from_slice(bytes);
            }
        }
        out
    }

    /// A member asked `from` to send `msg` again (it could not decrypt): the member gets the
    /// key's distribution again with the re-encryption.
    pub fn forget_holder(&mut self, from: DeviceId, g: GroupId, member: DeviceId) {
        let own = self.devices[from.index()]
            .groups
            .as_mut()
            .and_then(|k| k.own.get_mut(&g.0));
        if let Some(own) = own {
            own.holders.remove(&member.0);
        }
    }

    /// Takes in a Sender Key distribution that arrived (and decrypted) at `to`: the key of
    /// `from` in `g` with the model id `key_id`; `plaintext` is the decrypted distribution in
    /// real crypto.
    pub fn install_sender_key(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        g: GroupId,
        key_id: u32,
        plaintext: Option<&[u8]>,
    ) {
        let keys = self.devices[to.index()]
            .groups
            .get_or_insert_with(Box::default);
        let held = keys.received.entry((from.0, g.0)).or_default();
        held.ids.retain(|&k| k != key_id);
        held.ids.insert(0, key_id);
        held.ids.truncate(PEER_SENDER_KEYS_MAX);
        let parsed = plaintext
            .and_then(|p| p.split_first())
            .and_then(|(&n, rest)| rest.get(..n as usize))
            .and_then(|b| SenderKeyDistributionMessage::deserialize(b).ok());
        if let Some(m) = parsed {
            held.real.get_or_insert_with(Box::default).add(
                SenderKeyState::from_distribution_shared(&m, &mut self.verifiers),
            );
        }
    }

    /// Decrypts at `to` the Sender Key ciphertext `from` sent to `g`. The model decides (does
    /// `to` hold the key it names?); real mode must agree. The work is charged by the
    /// ciphertext's modeled length.
    pub fn group_open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        g: GroupId,
        ct: &Ciphertext,
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> Result<(Option<Vec<u8>>, u64), OpenError> {
        let (bytes, info, len) = (ct.bytes.as_deref(), ct.seal, u64::from(ct.len));
        if self.external {
            return Ok((None, 0));
        }
        // Decrypted, the message says what it carries: its work is filed under that kind.
        let kind = kind.or(super::content_of(info.content));
        let mut ns = self.ensure_keys(to, runner);
        let held = self.devices[to.index()]
            .groups
            .as_mut()
            .and_then(|k| k.received.get_mut(&(from.0, g.0)));
        let Some(held) = held.filter(|h| h.ids.contains(&info.target_generation)) else {
            return Err(OpenError::NoSenderKey);
        };
        let plaintext = match (self.mode, bytes, held.real.as_mut()) {
            (CryptoMode::Real, Some(b), Some(record)) => {
                Some(record.decrypt(b).map_err(|_| OpenError::Refused)?)
            }
            (CryptoMode::Real, _, _) => return Err(OpenError::Refused),
            (CryptoMode::Modeled, _, _) => None,
        };
        ns += self.charge(runner, kind, Op::SenderKeyDecrypt, len);
        Ok((plaintext, ns))
    }
}
