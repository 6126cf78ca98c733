//! The load generator's end-to-end encryption: real Signal sessions (X3DH + Double Ratchet,
//! this crate's `e2ee`) per pair of devices. The generator encrypts each message before it
//! leaves and decrypts it on arrival; servers only ever carry the bytes. Kept here, in live/,
//! so that the generator does not depend on how the simulated devices use the same protocol.

use crate::e2ee::{
    DeviceKeys, E2eeError, PreKeyBundle, PreKeySignalMessage, PreKeyStore,
    SenderKeyDistributionMessage, SenderKeyRecord, SenderKeyState, SessionRecord, SignalMessage,
};
use crate::engine::SimRng;
use crate::wire::{DeviceId, GroupId, MsgId};
use rustc_hash::FxHashMap; // determinism: ok (lookups only, never iterated)
use std::collections::BTreeSet;
use std::sync::Arc;

/// First byte of the carried ciphertext: which Signal message follows.
const KIND_SIGNAL: u8 = 0;
const KIND_PREKEY: u8 = 1;

/// The key directory as the generator sees it: every device's published bundle (signed prekey
/// only, so that one bundle serves every initiator).
pub type KeyDirectory = Arc<Vec<PreKeyBundle>>;

/// The sessions and keys of the devices one generator shard holds.
pub struct Crypto {
    /// Own devices' keys, by device index (`None`: another shard's).
    keys: Vec<Option<DeviceKeys>>,
    directory: KeyDirectory,
    /// (own device, peer device) -> session.
    sessions: FxHashMap<(u32, u32), SessionRecord>, // determinism: ok (lookups only)
    /// (own device, group) -> this device's own Sender Key in that group.
    own_sender_keys: FxHashMap<(u32, u32), OwnSenderKey>, // determinism: ok (lookups only)
    /// (own device, sender device, group) -> the senders' keys this device was given.
    sender_keys: FxHashMap<(u32, u32, u32), SenderKeyRecord>, // determinism: ok (lookups only)
    rng: SimRng,
    pub encrypted: u64,
    pub decrypted: u64,
    pub sessions_started: u64,
}

/// A device's own Sender Key in one group: made for a membership epoch (a member who left
/// must not read on, so a new epoch makes a new key), and the member devices it went to.
struct OwnSenderKey {
    epoch: u32,
    state: SenderKeyState,
    distributed: BTreeSet<u32>,
}

/// A group message as its sender's crypto made it: the one Sender Key ciphertext, and the
/// key's distribution message sealed pairwise for each member device that lacked it.
pub struct GroupSealed {
    pub shared: Box<[u8]>,
    pub distributions: Vec<(DeviceId, Box<[u8]>)>,
}

/// The plaintext of message `msg`: a marker the gateway probe looks for, the id, padding.
pub fn plaintext(marker: &[u8], msg: MsgId, body_bytes: u32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(marker);
    out.extend_from_slice(&msg.0.to_le_bytes());
    let len = (body_bytes as usize).max(out.len());
    out.resize(len, b'.');
}

impl Crypto {
    pub fn new(keys: Vec<Option<DeviceKeys>>, directory: KeyDirectory, rng: SimRng) -> Self {
        Crypto {
            keys,
            directory,
            sessions: FxHashMap::default(),
            own_sender_keys: FxHashMap::default(),
            sender_keys: FxHashMap::default(),
            rng,
            encrypted: 0,
            decrypted: 0,
            sessions_started: 0,
        }
    }

    /// Encrypts `plaintext` from `own` to `peer`, starting a session from the peer's bundle
    /// the first time.
    pub fn encrypt(
        &mut self,
        own: DeviceId,
        peer: DeviceId,
        plaintext: &[u8],
    ) -> Result<Box<[u8]>, E2eeError> {
        let keys = self.keys[own.index()]
            .as_ref()
            .ok_or(E2eeError::NoSession)?;
        let record = self.sessions.entry((own.0, peer.0)).or_default();
        if !record.has_current() {
            record.process_prekey_bundle(
                keys.identity(),
                keys.registration_id(),
                &self.directory[peer.index()],
                &mut self.rng,
            )?;
            self.sessions_started += 1;
        }
        let ct = record.encrypt(plaintext)?;
        self.encrypted += 1;
        let kind = if ct.is_prekey() {
            KIND_PREKEY
        } else {
            KIND_SIGNAL
        };
        let body = ct.serialized();
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(kind);
        out.extend_from_slice(body);
        Ok(out.into_boxed_slice())
    }

    /// Decrypts what `peer` sent to `own`. On error nothing changes.
    pub fn decrypt(
        &mut self,
        own: DeviceId,
        peer: DeviceId,
        bytes: &[u8],
    ) -> Result<Vec<u8>, E2eeError> {
        let (&kind, body) = bytes.split_first().ok_or(E2eeError::NoSession)?;
        let keys = self.keys[own.index()]
            .as_mut()
            .ok_or(E2eeError::NoSession)?;
        let record = self.sessions.entry((own.0, peer.0)).or_default();
        let plaintext = if kind == KIND_PREKEY {
            let m = PreKeySignalMessage::deserialize(body)?;
            let d = record.decrypt_prekey(&m, keys, &mut self.rng)?;
            if let Some(id) = d.used_pre_key {
                keys.remove_pre_key(id);
            }
            d.plaintext
        } else {
            let m = SignalMessage::deserialize(body)?;
            record.decrypt(&m, &mut self.rng)?
        };
        self.decrypted += 1;
        Ok(plaintext)
    }

    /// Encrypts a group message from `own` to group `g` once with `own`'s Sender Key (made on
    /// first use, and anew when the membership `epoch` moved on), and seals the key's
    /// distribution message pairwise for each of `targets` that does not have it yet.
    pub fn group_encrypt(
        &mut self,
        own: DeviceId,
        g: GroupId,
        epoch: u32,
        targets: &[DeviceId],
        plaintext: &[u8],
    ) -> Result<GroupSealed, E2eeError> {
        let key = (own.0, g.0);
        let fresh = self
            .own_sender_keys
            .get(&key)
            .is_none_or(|k| k.epoch != epoch);
        if fresh {
            let state = SenderKeyState::generate(&mut self.rng);
            let own_key = OwnSenderKey {
                epoch,
                state,
                distributed: BTreeSet::new(),
            };
            self.own_sender_keys.insert(key, own_key);
        }
        let lacking: Vec<DeviceId> = {
            let k = &self.own_sender_keys[&key];
            targets
                .iter()
                .copied()
                .filter(|t| !k.distributed.contains(&t.0))
                .collect()
        };
        let mut distributions = Vec::with_capacity(lacking.len());
        if !lacking.is_empty() {
            let skdm = self.own_sender_keys[&key].state.distribution_message();
            for t in lacking {
                distributions.push((t, self.encrypt(own, t, skdm.serialized())?));
            }
        }
        let k = self
            .own_sender_keys
            .get_mut(&key)
            .expect("made above when missing");
        k.distributed.extend(distributions.iter().map(|(t, _)| t.0));
        let message = k.state.encrypt(plaintext, &mut self.rng)?;
        self.encrypted += 1;
        Ok(GroupSealed {
            shared: message.serialized().into(),
            distributions,
        })
    }

    /// Forgets that `own`'s Sender Key in group `g` went to `devices`: the message that
    /// carried it was refused before it left.
    pub fn undistribute(&mut self, own: DeviceId, g: GroupId, devices: &[DeviceId]) {
        if let Some(k) = self.own_sender_keys.get_mut(&(own.0, g.0)) {
            for d in devices {
                k.distributed.remove(&d.0);
            }
        }
    }

    /// Decrypts a group message `sender` sent to `own` in group `g`: first the Sender Key
    /// distribution it carries for `own`, if any (over the pairwise session), then the shared
    /// ciphertext. On error the message's own state changes are not kept (a distribution that
    /// decrypted is: it is the sender's key either way).
    pub fn group_decrypt(
        &mut self,
        own: DeviceId,
        sender: DeviceId,
        g: GroupId,
        distribution: Option<&[u8]>,
        shared: &[u8],
    ) -> Result<Vec<u8>, E2eeError> {
        let key = (own.0, sender.0, g.0);
        if let Some(sealed) = distribution {
            match self.decrypt(own, sender, sealed) {
                Ok(skdm) => {
                    let message = SenderKeyDistributionMessage::deserialize(&skdm)?;
                    self.sender_keys
                        .entry(key)
                        .or_default()
                        .add(SenderKeyState::from_distribution(&message));
                }
                // A copy sent again whose distribution this device already opened: the
                // pairwise ratchet refuses the replay, and the key it carried is here.
                Err(_) if self.sender_keys.contains_key(&key) => {}
                Err(e) => return Err(e),
            }
        }
        let record = self
            .sender_keys
            .get_mut(&key)
            .ok_or(E2eeError::NoSenderKey)?;
        let plaintext = record.decrypt(shared)?;
        self.decrypted += 1;
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RngTree;

    /// Three devices' keys and bundles, one `Crypto` holding them all (as a shard does).
    fn crypto() -> Crypto {
        let tree = RngTree::new(7);
        let mut rng = tree.stream("test-keys", 0);
        let mut keys = Vec::new();
        let mut bundles = Vec::new();
        for i in 0..3u32 {
            let mut k = DeviceKeys::generate(i + 1, 1, &mut rng);
            bundles.push(k.bundle(false, &mut rng));
            keys.push(Some(k));
        }
        Crypto::new(keys, Arc::new(bundles), tree.stream("test-crypto", 0))
    }

    #[test]
    fn group_messages_distribute_the_key_once_per_epoch_and_decrypt() {
        let mut c = crypto();
        let (a, b, d) = (DeviceId(0), DeviceId(1), DeviceId(2));
        let g = GroupId(5);
        let first = c.group_encrypt(a, g, 0, &[b, d], b"one").unwrap();
        assert_eq!(first.distributions.len(), 2, "both members lack the key");
        let second = c.group_encrypt(a, g, 0, &[b, d], b"two").unwrap();
        assert!(second.distributions.is_empty(), "sent once per epoch");
        let dist = |s: &GroupSealed, to: DeviceId| {
            s.distributions
                .iter()
                .find(|(t, _)| *t == to)
                .map(|(_, c)| c.to_vec())
        };
        // b reads the second message first: without the key it cannot, and nothing changes.
        assert!(c.group_decrypt(b, a, g, None, &second.shared).is_err());
        let d1 = dist(&first, b);
        assert_eq!(
            c.group_decrypt(b, a, g, d1.as_deref(), &first.shared)
                .unwrap(),
            b"one"
        );
        assert_eq!(
            c.group_decrypt(b, a, g, None, &second.shared).unwrap(),
            b"two"
        );
        // A copy sent again with its distribution: the key is known, the message a replay.
        assert!(c
            .group_decrypt(b, a, g, d1.as_deref(), &first.shared)
            .is_err());
        // A message refused before it left takes its distributions back with it.
        c.undistribute(a, g, &[d]);
        let again = c
            .group_encrypt(a, g, 0, &[b, d], b"two and a half")
            .unwrap();
        assert_eq!(
            again.distributions.len(),
            1,
            "d gets the key with the next message"
        );
        // A member left (epoch 1): a new key, distributed again to those who stay.
        let third = c.group_encrypt(a, g, 1, &[d], b"three").unwrap();
        assert_eq!(third.distributions.len(), 1);
        assert!(
            c.group_decrypt(b, a, g, None, &third.shared).is_err(),
            "the member who left cannot read the new epoch"
        );
        let d0 = dist(&first, d);
        assert_eq!(
            c.group_decrypt(d, a, g, d0.as_deref(), &first.shared)
                .unwrap(),
            b"one"
        );
        let d3 = dist(&third, d);
        assert_eq!(
            c.group_decrypt(d, a, g, d3.as_deref(), &third.shared)
                .unwrap(),
            b"three"
        );
    }
}
