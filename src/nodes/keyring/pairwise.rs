//! Pairwise Signal messages: a session per (device, peer device), set up with X3DH (or PQXDH)
//! from the peer's bundle on first contact, then the Double Ratchet for every message. The
//! model decides whether a message opens; real mode performs the work and must agree.

use super::{Keyring, Op, OpenError, Runner, Sealer, Session};
use crate::e2ee::{PreKeySignalMessage, SessionRecord, SignalMessage};
use crate::nodes::key_directory::Requester;
use crate::scenario::{ContentKind, CryptoMode, Protocol};
use crate::wire::{Ciphertext, DeviceId, SealInfo};

impl Keyring {
    /// `by.from` fetches `to`'s bundle (or, under MIMI, its key package) as an honest client:
    /// over the key directory's limit it waits for the permit (the server's Retry-After) and
    /// fetches then, so its message leaves that much later (not CPU time; see
    /// [`Keyring::take_wait`]). Returns whether a one-time prekey (key package) came with it.
    pub(super) fn fetch_bundle(&mut self, by: &mut Sealer, to: DeviceId) -> bool {
        let requester = Requester::Device(by.from);
        let (served, wait_ns) = by.directory.fetch_honest(by.now, requester, to);
        if wait_ns > 0 {
            self.counts.bundle_fetches_limited_honest += 1;
            self.counts.bundle_fetch_wait_ns += wait_ns;
            // The seals of one message wait side by side: it leaves after the longest.
            self.pending_wait_ns = self.pending_wait_ns.max(wait_ns);
        }
        if served.one_time_prekey.is_none() {
            self.counts.bundles_without_one_time += 1;
        }
        served.one_time_prekey.is_some()
    }

    /// Encrypts `plaintext` from `by.from` to `to`, setting up a session on first contact (the
    /// bundle comes from the key directory: `one_time` says whether it had a one-time prekey).
    /// Returns the bytes (real mode), what the receiver's model needs, and the CPU time charged.
    /// `by.now` books the bundle fetch in the key directory's rate limit; a wait for its permit
    /// is kept for [`Keyring::take_wait`].
    pub fn seal(
        &mut self,
        by: &mut Sealer,
        to: DeviceId,
        plaintext: &[u8],
        kind: Option<ContentKind>,
    ) -> (Option<Box<[u8]>>, SealInfo, u64) {
        let (from, runner) = (by.from, by.runner);
        if self.established && !self.devices[from.index()].peers.knows(to.0) {
            self.establish(from, to, runner);
        }
        let mut ns = self.ensure_keys(from, runner);
        // A stale session (the peer reinstalled) is only found out through a retry receipt.
        let current = self.devices[from.index()].peers.session(to.0);
        if current.is_none_or(|s| s.renew) {
            // Over the key directory's limit, the client waits for the permit (the server's
            // Retry-After) and fetches then: the message leaves that much later, and the wait
            // is not CPU time.
            let one_time = self.fetch_bundle(by, to);
            ns += self.start_session(from, to, kind, runner, one_time);
        }
        self.counts.plaintext_bytes += plaintext.len() as u64;
        ns += self.charge(runner, kind, Op::RatchetEncrypt, plaintext.len() as u64);
        let sender_generation = self.devices[from.index()].generation;
        let state = &mut self.devices[from.index()];
        let Some(session) = state.peers.session(to.0) else {
            unreachable!("a session was just set up")
        };
        let info = SealInfo {
            mls: false,
            prekey: session.prekey_pending,
            sender_key: false,
            sender_generation,
            target_generation: session.peer_generation,
            content: super::content_code(kind),
        };
        let bytes = state
            .record_mut(to.0)
            .and_then(|r| r.encrypt(plaintext).ok())
            .map(|m| m.serialized().to_vec().into_boxed_slice());
        (bytes, info, ns)
    }

    fn start_session(
        &mut self,
        from: DeviceId,
        to: DeviceId,
        kind: Option<ContentKind>,
        runner: Runner,
        one_time: bool,
    ) -> u64 {
        let peer_runner = runner; // the responder's keys are made on its own account, below
        let mut ns = self.ensure_keys(to, peer_runner);
        let op = if self.protocol == Protocol::Pqxdh {
            Op::PqxdhInitiate
        } else {
            Op::X3dhInitiate
        };
        ns += self.charge(runner, kind, op, 0);
        let peer_generation = self.devices[to.index()].generation;
        let real = if self.mode == CryptoMode::Real {
            let archived = self.devices[from.index()].take_record(to.0);
            self.real_session(from, to, one_time, archived)
        } else {
            None
        };
        let prev = self.devices[from.index()].peers.see(to.0, peer_generation);
        if prev.is_some_and(|g| g != peer_generation) {
            self.security_code_changed += 1;
        }
        let state = &mut self.devices[from.index()];
        state.peers.insert_session(
            to.0,
            Session {
                peer_generation,
                prekey_pending: true,
                renew: false,
            },
        );
        state.set_record(to.0, real);
        ns
    }

    /// The session of a conversation that existed before the clock started (`sessions =
    /// "established"`): both devices keyed, X3DH done, a message each way, so that neither
    /// side sends a prekey header. Off the books: nothing charged, nothing counted, no one-time
    /// prekey taken from the key directory. Real mode does the real handshake, so that the
    /// records on both sides are the ones a real exchange leaves.
    fn establish(&mut self, from: DeviceId, to: DeviceId, runner: Runner) {
        let counts = self.counts.clone();
        self.ensure_keys(from, runner);
        self.ensure_keys(to, runner);
        self.start_session(from, to, None, runner, false);
        let generation = self.devices[from.index()].generation;
        self.devices[to.index()].peers.see(from.0, generation);
        let real = (self.mode == CryptoMode::Real).then(|| Box::new(SessionRecord::new()));
        let state = &mut self.devices[to.index()];
        state.set_record(from.0, real);
        state.peers.insert_session(
            from.0,
            Session {
                peer_generation: generation,
                prekey_pending: false,
                renew: false,
            },
        );
        if self.mode == CryptoMode::Real && from != to {
            let hello = self.real_encrypt(from, to);
            let opened = hello.and_then(|b| self.real_open(to, from, &b, true));
            let reply = opened.and_then(|_| self.real_encrypt(to, from));
            let confirmed = reply.and_then(|b| self.real_open(from, to, &b, false));
            assert!(
                confirmed.is_some(),
                "a session set up before the clock opens both ways"
            );
        }
        self.confirm(from, to);
        self.counts = counts;
    }

    /// Real mode: `from`'s next message to `to` on their session.
    fn real_encrypt(&mut self, from: DeviceId, to: DeviceId) -> Option<Vec<u8>> {
        let state = &mut self.devices[from.index()];
        state.peers.session(to.0)?;
        let m = state.record_mut(to.0)?.encrypt(b"hello").ok()?;
        Some(m.serialized().to_vec())
    }

    /// Real X3DH/PQXDH with the peer's published bundle.
    fn real_session(
        &mut self,
        from: DeviceId,
        to: DeviceId,
        one_time: bool,
        archived: Option<Box<SessionRecord>>,
    ) -> Option<Box<SessionRecord>> {
        let (lo, hi) = (from.index().min(to.index()), from.index().max(to.index()));
        if lo == hi {
            return None;
        }
        let (left, right) = self.devices.split_at_mut(hi);
        let (a, b) = (&mut left[lo], &mut right[0]);
        let (me, peer) = if from.index() < to.index() {
            (a, b)
        } else {
            (b, a)
        };
        let peer_rng = peer.rng.as_mut()?;
        let bundle = peer.keys.as_mut()?.bundle(one_time, peer_rng);
        let keys = me.keys.as_ref()?;
        let rng = me.rng.as_mut()?;
        let mut record = archived.unwrap_or_default();
        use crate::e2ee::PreKeyStore;
        let verified = bundle.verify_remembered(&mut self.prekeys_seen).ok()?;
        record
            .process_verified_bundle(keys.identity(), keys.registration_id(), verified, rng)
            .ok()?;
        Some(record)
    }

    /// Decrypts at `to` what `from` sealed. The model decides; real mode must agree. The
    /// ratchet's work is charged by the ciphertext's modeled length.
    pub fn open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        ct: &Ciphertext,
        kind: Option<ContentKind>,
        runner: Runner,
    ) -> Result<(Option<Vec<u8>>, u64), OpenError> {
        let (bytes, info, plaintext_len) = (ct.bytes.as_deref(), ct.seal, u64::from(ct.len));
        if self.external {
            return Ok((None, 0));
        }
        // Decrypted, the message says what it carries: its work is filed under that kind.
        let kind = kind.or(super::content_of(info.content));
        let mut ns = self.ensure_keys(to, runner);
        let my_generation = self.devices[to.index()].generation;
        if info.target_generation != my_generation {
            return Err(OpenError::StaleSession);
        }
        let has_session = self.devices[to.index()]
            .peers
            .session(from.0)
            .is_some_and(|s| s.peer_generation == info.sender_generation);
        if !has_session && !info.prekey {
            return Err(OpenError::NoSession);
        }
        if info.prekey && !has_session {
            let op = if self.protocol == Protocol::Pqxdh {
                Op::PqxdhRespond
            } else {
                Op::X3dhRespond
            };
            ns += self.charge(runner, kind, op, 0);
            let prev = self.devices[to.index()]
                .peers
                .see(from.0, info.sender_generation);
            if prev.is_some_and(|g| g != info.sender_generation) {
                self.security_code_changed += 1;
            }
            let state = &mut self.devices[to.index()];
            state.peers.insert_session(
                from.0,
                Session {
                    peer_generation: info.sender_generation,
                    prekey_pending: false,
                    renew: false,
                },
            );
            // Real crypto only (`real_open` makes it on demand too); a record per session was
            // gigabytes at a million devices with modeled crypto.
            let real = (self.mode == CryptoMode::Real).then(|| Box::new(SessionRecord::new()));
            state.set_record(from.0, real);
        }
        ns += self.charge(runner, kind, Op::RatchetDecrypt, plaintext_len);
        let plaintext = match (self.mode, bytes) {
            (CryptoMode::Real, Some(b)) => Some(
                self.real_open(to, from, b, info.prekey)
                    .ok_or(OpenError::Refused)?,
            ),
            (CryptoMode::Real, None) => return Err(OpenError::Refused),
            (CryptoMode::Modeled, _) => None,
        };
        // Having heard from `from`, this device's own messages to it need no prekey header.
        self.confirm(to, from);
        Ok((plaintext, ns))
    }

    fn real_open(
        &mut self,
        to: DeviceId,
        from: DeviceId,
        bytes: &[u8],
        prekey: bool,
    ) -> Option<Vec<u8>> {
        let me = &mut self.devices[to.index()];
        let rng = me.rng.as_mut()?;
        let keys = me.keys.as_ref()?;
        me.peers.session(from.0)?;
        let record = me
            .records
            .get_or_insert_with(Box::default)
            .get_or_insert_with(from.0, || Box::new(SessionRecord::new()));
        if prekey {
            let msg = PreKeySignalMessage::deserialize(bytes).ok()?;
            let out = record.decrypt_prekey(&msg, keys.as_ref(), rng).ok()?;
            if let (Some(id), Some(keys)) = (out.used_pre_key, me.keys.as_mut()) {
                keys.remove_pre_key(id);
            }
            Some(out.plaintext)
        } else {
            let msg = SignalMessage::deserialize(bytes).ok()?;
            record.decrypt(&msg, rng).ok()
        }
    }

    /// The sender heard back from `peer` on this session: later messages carry no prekey header.
    pub fn confirm(&mut self, d: DeviceId, peer: DeviceId) {
        self.devices[d.index()].peers.confirm(peer.0);
    }
}
