//! The deterministic driver's side of media (the nodes are in `nodes/media/`): it owns every
//! device's media client, every provider's store and the gatekeeper's proxy, and the three
//! things no node should hold:
//!
//! - the **files**: a media message's file is drawn from the run's seed (its own stream per
//!   blob) and encrypted for real in real crypto; modeled crypto draws and keeps nothing;
//! - the **vault** of real blob bytes (real crypto only), keyed by blob id: the uploader's copy
//!   until the store has it, then the store's, until the first recipient device has verified
//!   and decrypted it. From then on the vault keeps only the secret that opened it: opening is a
//!   pure function of the bytes and the secret, so another device whose parsed secret is the
//!   same byte for byte gets the same verdict (and a different secret cannot open the blob).
//!   A video is thus held once, for seconds, not per frame copy nor per recipient device, and
//!   hashed once per device kind of work that differs, not per identical repetition. Each
//!   device is still charged its own decryption;
//! - the **model table**: per media message, the public part of its pointer (24 bytes, until its
//!   blob is dropped). Modeled crypto has no plaintext to parse, so the table stands for what it
//!   would say; real crypto parses the pointer from the decrypted plaintext and must agree.
//!
//! Real and modeled crypto take the same decisions from the same model (sizes from
//! [`pointer::blob_len`], costs from the cost table), so their summaries are identical; real
//! crypto additionally verifies and decrypts every fetched blob and counts what it checked.

use crate::directory::Directory;
use crate::e2ee::attachment;
use crate::engine::{RngTree, SimRng, SimTime};
use crate::metrics::media::{MediaCounters, MediaStats};
use crate::nodes::device::GroupSend;
use crate::nodes::keyring::{Keyring, Op};
use crate::nodes::media::store::Change;
use crate::nodes::media::{
    self, pointer, Done, Download, MediaClient, MediaProxy, MediaStore, Opened, Pointer, Secret,
    Upload,
};
use crate::nodes::{Addr, Effects};
use crate::scenario::{ContentKind, CryptoMode};
use crate::wire::{BlobId, DeviceId, Frame, MediaFrame, MsgId, ProviderId, UserId};
use std::collections::BTreeMap;

/// Bound on pointers parsed from decrypted plaintexts whose message has not shown yet (a
/// message is held at most until its reorder gap is given up). Past it a pointer is not kept
/// and its download is charged but not verified.
const INBOX_MAX: usize = 65_536;

/// How much of a stored blob the metadata-isolation tap copies: the file's first bytes hold
/// the canary, so its absence there shows the store holds ciphertext.
pub const TAP_BLOB_PREFIX: usize = 4_096;

/// Bound on the file buffer kept between files (a larger one is freed after use).
const FILE_BUFFER_KEPT_MAX: usize = 64 << 20;

/// Fills a file with noise from `seed` (SplitMix64, Steele et al. 2014): reproducible and
/// incompressible, which is all a file's content must be here, at a fraction of a ChaCha
/// stream's cost per byte (the seed itself comes from the blob's ChaCha stream).
fn fill_noise(file: &mut [u8], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut chunks = file.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&next().to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let word = next().to_le_bytes();
    rest.copy_from_slice(&word[..rest.len()]);
}

/// The public part of a media message's pointer: what a recipient acts on, in both modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MediaRef {
    blob: BlobId,
    host: ProviderId,
    blob_len: u32,
    content: ContentKind,
}

impl MediaRef {
    fn of(p: &Pointer) -> Self {
        MediaRef {
            blob: p.blob,
            host: p.host,
            blob_len: p.blob_len,
            content: p.content,
        }
    }
}

/// A blob in the vault: its bytes until a recipient device opened them, then the secret that did.
enum Held {
    Bytes(Box<[u8]>),
    Opened(Secret),
}

/// A media message as its sender composes it.
pub struct MediaDraft {
    pub msg: MsgId,
    pub device: DeviceId,
    pub to_user: UserId,
    /// The message plaintext, pointer included.
    pub body: Vec<u8>,
    pub pointer: Pointer,
    /// The attachment encryption's CPU time: the upload starts after it.
    pub encrypt_ns: u64,
    /// A group message: its members (`msg` is the first member's record, the others follow
    /// in a row); `None` for 1:1.
    pub group: Option<GroupSend>,
}

/// Where and when a media frame reaches a device, and what taking it may read or charge: the
/// directory, and the key ring that pays for decrypting a downloaded blob.
pub struct AtDevice<'a> {
    pub now: SimTime,
    pub device: DeviceId,
    /// Whether the device's connection is up: if not, the answer never reaches the app.
    pub online: bool,
    pub dir: &'a Directory,
    pub keys: &'a mut Keyring,
}

pub struct MediaWorld {
    mode: CryptoMode,
    tree: RngTree,
    canary: u64,
    clients: BTreeMap<DeviceId, MediaClient>,
    /// Indexed by provider.
    stores: Vec<MediaStore>,
    proxy: MediaProxy,
    table: BTreeMap<MsgId, MediaRef>,
    /// The same for group messages, by their first member record's id: the number of member
    /// records (ids `first..first + n`), the pointer they share, and the records refused so far
    /// (the server may refuse a copy more than once; each member counts once).
    group_table: BTreeMap<u64, (u32, MediaRef, Vec<MsgId>)>,
    inbox: BTreeMap<(DeviceId, MsgId), Pointer>,
    vault: BTreeMap<BlobId, Held>,
    /// The file being encrypted (real crypto), kept between files so that a large one does not
    /// cost a fresh allocation and page faults each time.
    file: Vec<u8>,
    next_blob: u64,
    pub stats: MediaStats,
    /// Link draws of media transfers: their own stream, so that adding media traffic does not
    /// shift the draws of message frames.
    pub net_rng: SimRng,
    /// Real crypto: downloads whose pointer verified the blob and decrypted it, blobs really
    /// opened (the first verifying device of each), and disagreements with the model (a pointer
    /// or a blob that did not open although the model says it should: a bug).
    pub verified: u64,
    pub blobs_opened: u64,
    pub disagreed: u64,
}

impl MediaWorld {
    pub fn new(providers: usize, mode: CryptoMode, tree: &RngTree, canary: u64) -> Self {
        MediaWorld {
            mode,
            tree: *tree,
            canary,
            clients: BTreeMap::new(),
            stores: (0..providers)
                .map(|p| MediaStore::new(ProviderId(p as u32)))
                .collect(),
            proxy: MediaProxy::default(),
            table: BTreeMap::new(),
            group_table: BTreeMap::new(),
            inbox: BTreeMap::new(),
            vault: BTreeMap::new(),
            file: Vec::new(),
            next_blob: 0,
            stats: MediaStats::default(),
            net_rng: tree.stream("net/media", 0),
            verified: 0,
            blobs_opened: 0,
            disagreed: 0,
        }
    }

    /// The sender's app attaches a file of `media_bytes` to a message: a new blob on the
    /// device's own provider's store, its pointer, and the encryption's cost (charged to the
    /// device). Real crypto draws the file and a media key from the blob's own seeded stream,
    /// encrypts, and keeps the blob in the vault; the file itself is dropped at once.
    pub fn attach(
        &mut self,
        device: DeviceId,
        content: ContentKind,
        media_bytes: u64,
        dir: &Directory,
        keys: &mut Keyring,
    ) -> (Pointer, u64) {
        let blob = BlobId(self.next_blob);
        self.next_blob += 1;
        let plaintext_len = media_bytes.clamp(1, pointer::MEDIA_BYTES_MAX) as u32;
        let runner = media::runner(dir, device);
        let ns = keys.charge_device(
            runner,
            Some(content),
            Op::AttachmentEncrypt,
            plaintext_len as u64,
        );
        let secret = match (self.mode, pointer::media_kind(content)) {
            (CryptoMode::Real, Some(kind)) => self.encrypt_file(blob, kind, plaintext_len),
            _ => Secret::default(),
        };
        let pointer = Pointer {
            host: dir.provider_of_device(device),
            blob,
            blob_len: pointer::blob_len(plaintext_len),
            plaintext_len,
            content,
            secret,
        };
        (pointer, ns)
    }

    fn encrypt_file(
        &mut self,
        blob: BlobId,
        kind: attachment::MediaKind,
        plaintext_len: u32,
    ) -> Secret {
        let mut rng = self.tree.stream("media/file", blob.0);
        let mut media_key = [0u8; 32];
        rand::Rng::fill_bytes(&mut rng, &mut media_key);
        // The file: the run's canary (so the isolation test can look for it in what stores
        // hold), then seeded noise, as incompressible as real media.
        let file = &mut self.file;
        file.resize(plaintext_len as usize, 0);
        fill_noise(file, rand::Rng::next_u64(&mut rng));
        let n = file.len().min(8);
        file[..n].copy_from_slice(&self.canary.to_le_bytes()[..n]);
        let enc = attachment::encrypt(&media_key, kind, file);
        if file.capacity() > FILE_BUFFER_KEPT_MAX {
            *file = Vec::new(); // a rare huge file: give its memory back
        }
        assert_eq!(
            enc.blob.len() as u32,
            pointer::blob_len(plaintext_len),
            "the modeled blob size is the real one"
        );
        self.vault
            .insert(blob, Held::Bytes(enc.blob.into_boxed_slice()));

        Secret {
            media_key,
            plaintext_sha256: enc.plaintext_sha256,
            blob_sha256: enc.blob_sha256,
        }
    }

    /// The message waits for its blob to be stored: the upload starts once encrypted.
    pub fn begin_upload(
        &mut self,
        draft: MediaDraft,
        fetches: u32,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let p = draft.pointer;
        match &draft.group {
            Some(g) => {
                let records = g.members.len() as u32;
                self.group_table
                    .insert(draft.msg.0, (records, MediaRef::of(&p), Vec::new()));
            }
            None => {
                self.table.insert(draft.msg, MediaRef::of(&p));
            }
        }
        // Held until the blob is stored, thousands at once at scale: not in a kept buffer much
        // larger than it (the plaintext buffers are reused, see `Traffic::keep_spare`).
        let mut body = draft.body;
        if body.capacity() > 2 * body.len() + 64 {
            body.shrink_to_fit();
        }
        let up = Upload {
            blob: p.blob,
            msg: draft.msg,
            to_user: draft.to_user,
            content: p.content,
            body,
            len: p.blob_len,
            fetches,
            group: draft.group,
        };
        self.client(draft.device)
            .upload(up, draft.encrypt_ns, dir, fx);
    }

    /// The recipient of the message waiting for `device`'s upload of `blob`: a cache hint's
    /// input (the upload's ack seals the message for that user's devices).
    pub fn upload_recipient(&self, device: DeviceId, blob: BlobId) -> Option<UserId> {
        self.clients.get(&device)?.upload_recipient(blob)
    }

    fn client(&mut self, d: DeviceId) -> &mut MediaClient {
        self.clients.entry(d).or_insert_with(|| MediaClient::new(d))
    }

    /// Whether `msg` carries an attachment.
    pub fn has(&self, msg: MsgId) -> bool {
        self.media_of(msg).is_some()
    }

    /// The attachment of `msg` (a 1:1 message, or one member's record of a group message),
    /// and for a group's, the first member record's id (its key in `group_table`).
    fn media_of(&self, msg: MsgId) -> Option<(MediaRef, Option<u64>)> {
        if let Some(r) = self.table.get(&msg) {
            return Some((*r, None));
        }
        let (&first, &(records, r, _)) = self.group_table.range(..=msg.0).next_back()?;
        (msg.0 < first + records as u64).then_some((r, Some(first)))
    }

    /// A device decrypted a media message (real crypto): keep its pointer until it shows.
    pub fn opened(&mut self, o: Opened) {
        if self.inbox.len() < INBOX_MAX {
            self.inbox.insert((o.device, o.msg), o.pointer);
        }
    }

    /// A message showed on a device: if it carries media, the device fetches the blob. Real
    /// crypto reads the pointer it parsed from the plaintext; the model table says the same.
    pub fn shown(
        &mut self,
        now: SimTime,
        msg: MsgId,
        device: DeviceId,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        let Some((model, group)) = self.media_of(msg) else {
            return;
        };
        let parsed = self.inbox.remove(&(device, msg));
        let agrees = |p: &Pointer| {
            MediaRef::of(p) == model && p.blob_len == pointer::blob_len(p.plaintext_len)
        };
        if self.mode == CryptoMode::Real && parsed.is_some_and(|p| !agrees(&p)) {
            self.disagreed += 1;
        }
        let down = Download {
            blob: model.blob,
            msg,
            host: model.host,
            len: model.blob_len,
            content: model.content,
            shown_at: now,
            secret: parsed.map(|p| Box::new(p.secret)),
            group: group.is_some(),
        };
        self.client(device).download(down, dir, fx);
    }

    /// A media frame reached a device. Returns an upload whose blob is now stored: its message
    /// is sealed and sent next.
    pub fn at_device(
        &mut self,
        at: AtDevice<'_>,
        frame: MediaFrame,
        fx: &mut Effects,
    ) -> Option<Upload> {
        let AtDevice {
            now,
            device,
            online,
            dir,
            keys,
        } = at;
        let client = self.clients.get_mut(&device)?;
        if !online {
            // The connection is down: the answer never reaches the app, which retries later.
            client.interrupted(now, frame, fx);
            return None;
        }
        let done = client.handle_frame(now, frame, fx);
        self.forget_if_idle(device);
        match done? {
            Done::Uploaded(up) => Some(up),
            Done::Downloaded(down) => {
                self.downloaded(now, device, down, dir, keys);
                None
            }
        }
    }

    /// A blob arrived: charge, verify and decrypt (real crypto), count, and tell the host the
    /// fetch completed (the last expected fetch drops the blob).
    fn downloaded(
        &mut self,
        now: SimTime,
        device: DeviceId,
        down: Download,
        dir: &Directory,
        keys: &mut Keyring,
    ) {
        let runner = media::runner(dir, device);
        let ns = keys.charge_device(
            runner,
            Some(down.content),
            Op::AttachmentDecrypt,
            down.len as u64,
        );
        if self.mode == CryptoMode::Real {
            if let Some(secret) = down.secret.as_deref() {
                if self.open(down.blob, secret, down.content) {
                    self.verified += 1;
                } else {
                    // The model says it opens: a disagreement is a bug, shown in the summary.
                    self.disagreed += 1;
                    self.stats.counters.media_verify_failures += 1;
                    return;
                }
            }
        }
        let via_proxy = down.host != dir.provider_of_device(device);
        let latency_ns = now.plus(ns).since(down.shown_at);
        self.stats
            .downloaded(down.len as u64, via_proxy, latency_ns, down.group);
        let host = &mut self.stores[down.host.index()];
        if host.fetched(down.blob, device) {
            self.forget_blob(down.blob, down.msg);
        }
    }

    /// The store dropped `blob` (every expected fetch done): its bytes and its message's
    /// pointer are forgotten.
    fn forget_blob(&mut self, blob: BlobId, msg: MsgId) {
        self.vault.remove(&blob);
        if self.table.remove(&msg).is_none() {
            if let Some((_, Some(first))) = self.media_of(msg) {
                self.group_table.remove(&first);
            }
        }
    }

    /// Whether `secret` opens the blob (real crypto): really, the first time; after that by
    /// comparison with the secret that did (see the module doc), the bytes being gone.
    fn open(&mut self, blob: BlobId, secret: &Secret, content: ContentKind) -> bool {
        match self.vault.get(&blob) {
            Some(Held::Bytes(bytes)) => {
                if !media::open_blob(secret, content, bytes) {
                    return false;
                }
                self.blobs_opened += 1;
                self.vault.insert(blob, Held::Opened(*secret));
                true
            }
            Some(Held::Opened(opened_with)) => opened_with == secret,
            None => false,
        }
    }

    fn forget_if_idle(&mut self, device: DeviceId) {
        if self.clients.get(&device).is_some_and(MediaClient::is_idle) {
            self.clients.remove(&device);
        }
    }

    /// A media frame reached provider `p`'s store.
    pub fn at_store(&mut self, p: ProviderId, from: Addr, frame: MediaFrame, fx: &mut Effects) {
        if let Some(store) = self.stores.get_mut(p.index()) {
            match (store.handle_frame(from, frame, fx), frame) {
                (Some(Change::New), MediaFrame::Upload { len, .. }) => {
                    self.stats.counters.media_uploads += 1;
                    self.stats.counters.media_bytes_uploaded += len as u64;
                }
                (Some(Change::Deleted), _) => {
                    self.vault.remove(&frame.blob());
                }
                _ => {}
            }
        }
    }

    /// The server refused a media message for good (its recipient has not enabled third-party
    /// chats): nobody will fetch its blob, so the sender's app deletes it from its store.
    /// A group member's record refused this way only takes that member's devices off the
    /// fetches the store waits for (`recipient_devices`): the other members still fetch.
    pub fn refused(
        &mut self,
        msg: MsgId,
        device: DeviceId,
        recipient_devices: u32,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        if let Some((r, Some(first))) = self.media_of(msg) {
            let refused = self.group_table.get_mut(&first).map(|(_, _, v)| v);
            match refused {
                Some(v) if !v.contains(&msg) => v.push(msg),
                _ => return, // refused before: its devices were taken off then
            }
            if self.stores[r.host.index()].expect_fewer(r.blob, recipient_devices) {
                self.forget_blob(r.blob, msg);
            }
            return;
        }
        let Some(p) = self.table.remove(&msg) else {
            return;
        };
        let delete = MediaFrame::Delete {
            blob: p.blob,
            device,
        };
        fx.send(media::upload_route(dir, device), Frame::Media(delete));
    }

    /// A media frame reached the gatekeeper's media proxy.
    pub fn at_proxy(&mut self, from: Addr, frame: MediaFrame, dir: &Directory, fx: &mut Effects) {
        let before = self.proxy.relayed_bytes;
        self.proxy.handle_frame(from, frame, dir, fx);
        self.stats.counters.media_proxy_bytes += self.proxy.relayed_bytes - before;
    }

    /// A media frame reached a proxied partner's adapter, which relays it.
    pub fn at_adapter(&mut self, from: Addr, frame: MediaFrame, fx: &mut Effects) {
        if let Some(to) = media::adapter_route(from, &frame) {
            fx.send(to, Frame::Media(frame));
        }
    }

    /// A media frame was lost on the way (partition, node down, link loss, refused by TLS):
    /// `waiter` (see [`media::waiter`]) notices after the detection delay. A device retries;
    /// a relay (the proxy, an adapter) answers its device with an error.
    pub fn lost(
        &mut self,
        now: SimTime,
        waiter: Addr,
        frame: MediaFrame,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        match waiter {
            Addr::Device(d) => {
                if let Some(c) = self.clients.get_mut(&d) {
                    c.failed(now, frame.blob(), frame.attempt(), media::DETECT_NS, fx);
                }
            }
            Addr::MediaProxy => self.proxy.upstream_failed(frame, dir, fx),
            Addr::Adapter(_) => {
                let error = MediaFrame::Error {
                    blob: frame.blob(),
                    device: frame.device(),
                    attempt: frame.attempt(),
                };
                let to = Addr::Device(frame.device());
                fx.send_after(media::DETECT_NS, to, Frame::Media(error));
            }
            _ => {}
        }
    }

    /// A device's media retry timer.
    pub fn timer(
        &mut self,
        now: SimTime,
        device: DeviceId,
        online: bool,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        if let Some(c) = self.clients.get_mut(&device) {
            c.handle_timer(now, online, dir, &mut self.stats.counters, fx);
        }
        self.forget_if_idle(device);
    }

    /// The first bytes of a stored blob (real crypto), for the metadata-isolation tap.
    pub fn tap_blob(&self, blob: BlobId) -> Option<&[u8]> {
        match self.vault.get(&blob)? {
            Held::Bytes(b) => Some(&b[..b.len().min(TAP_BLOB_PREFIX)]),
            Held::Opened(_) => None,
        }
    }

    /// Relays the media proxy could not complete (answered with an error), for `work`.
    pub fn proxy_upstream_failures(&self) -> u64 {
        self.proxy.upstream_failures
    }

    /// The media part of summary.json.
    pub fn summary(&self) -> MediaCounters {
        let pending = self.clients.values().map(|c| c.pending() as u64).sum();
        self.stats.summary(pending)
    }
}
