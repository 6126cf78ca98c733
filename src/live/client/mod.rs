//! A load-generator shard: the client devices of a slice of the users (the simulator's own
//! sans-IO [`Device`] nodes: outbox, retries, dedup, ordering), real Signal encryption before
//! a message leaves and decryption when it arrives, and the open-model send loop: each arrival
//! goes at its scheduled time whatever the system is doing; one that is already later than
//! `lag_max` is dropped and counted, never sent late in silence.

mod media;
mod pacer;
mod receive;
mod send;

pub use media::{MediaEnds, MediaReport};

use super::clock::Clock;
use super::codec::{self, Record};
use super::conn::{self, Inbound};
use super::crypto::Crypto;
use super::ledger::histogram;
use super::node::{dial, Dial, Shared, INBOX_MAX, REDIAL_NS};
use super::schedule::Arrival;
use crate::engine::SimTime;
use crate::nodes::device::{Device, DeviceConfig, DeviceCtx, GroupSend};
use crate::nodes::dispatch::{self, NodeMut};
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::Keyring;
use crate::nodes::{Addr, Effects, Output, TimerKind};
use crate::wire::DeviceId;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a shard measured.
pub struct ShardReport {
    /// How late each arrival went out (ns).
    pub lag: Histogram<u64>,
    pub sent: u64,
    /// Arrivals dropped because they were more than `lag_max` behind schedule.
    pub dropped_arrivals: u64,
    pub outbox_full: u64,
    pub decrypt_failures: u64,
    /// Group copies that came before their sender's key (not acked: sent again later).
    pub sender_key_missing: u64,
    /// Decrypted plaintexts that carried the marker and their own message id.
    pub plaintext_verified: u64,
    pub encrypted: u64,
    pub sessions_started: u64,
    pub unroutable: u64,
    /// Frames of another load run that reached this run's devices (a copy queued for an
    /// earlier install, say): acked when a delivery, so the server lets it go, never shown.
    pub foreign_frames: u64,
    /// Frames the shard's devices received: the work items of the load generator's host, as
    /// `validate` models it.
    pub frames_in: u64,
    /// The batches those frames came in: a connection's reader hands the shard every frame one
    /// read of its socket held.
    pub reads_in: u64,
    pub media: MediaReport,
}

pub struct Shard {
    sh: Shared,
    devices: Vec<Option<Device>>,
    cfg: DeviceConfig,
    crypto: Crypto,
    arrivals: Vec<Arrival>,
    /// The group messages' sends, indexed by [`Arrival::group`].
    groups: Arc<[GroupSend]>,
    /// Group messages sent and not acked yet (remote servers only): first id -> send index.
    groups_unacked: BTreeMap<u64, u32>,
    cursor: usize,
    /// Arrivals taken and already reported to `arrivals_pending`.
    taken_reported: usize,
    lag_max_ns: u64,
    marker: Vec<u8>,
    /// Bit per message id: already decrypted here (a redelivered copy is not decrypted twice:
    /// the ratchet would refuse the replay; the device's dedup then suppresses it).
    decrypted: Vec<u64>,
    dials: Vec<Dial>,
    routes: BTreeMap<Addr, mpsc::Sender<Record>>,
    inbox_tx: mpsc::Sender<Inbound>,
    inbox: mpsc::Receiver<Inbound>,
    /// Connection id -> the server it reaches.
    conn_of: BTreeMap<u64, usize>,
    /// Per dial: connected at least once (a later connection is a reconnection).
    ever_connected: Vec<bool>,
    timers: BTreeMap<(SimTime, u64), (DeviceId, Option<TimerKind>)>,
    timer_seq: u64,
    fx: Effects,
    /// Passes every copy through: this driver does its Signal work itself.
    keys: Keyring,
    /// The prekey pools devices top up when they come online.
    key_directory: KeyDirectory,
    report: ShardReport,
    plain: Vec<u8>,
    precrypted: Vec<Option<Box<[u8]>>>,
    /// Where the media services listen (`None`: no media in this run).
    media: Option<MediaEnds>,
    media_tx: mpsc::UnboundedSender<media::MediaDone>,
    media_rx: mpsc::UnboundedReceiver<media::MediaDone>,
    /// Attachment keys.
    media_rng: crate::engine::SimRng,
    media_report: MediaReport,
    remote: bool,
}

/// How a shard is set up.
pub struct ShardSpec {
    /// This shard's index (for its RNG stream and the report).
    pub me: usize,
    pub devices: Vec<Option<Device>>,
    pub cfg: DeviceConfig,
    pub crypto: Crypto,
    pub arrivals: Vec<Arrival>,
    pub groups: Arc<[GroupSend]>,
    pub lag_max_ns: u64,
    pub marker: Vec<u8>,
    /// Ledger records of the run (a group message has one per member).
    pub messages: usize,
    pub dials: Vec<Dial>,
    /// Per arrival, its ciphertext encrypted ahead (empty: encrypt at send time).
    pub precrypted: Vec<Option<Box<[u8]>>>,
    /// Where the media services listen, set with the dials (`None`: the run sends no media).
    pub media: Option<MediaEnds>,
    /// The servers run in other processes, whose ledger events this one never sees: a
    /// SubmitAck stands for the chat server's `Accepted`.
    pub remote: bool,
}

impl Shard {
    pub fn new(spec: ShardSpec, sh: Shared) -> Self {
        let devices_in_run = sh.dir.devices();
        let (inbox_tx, inbox) = mpsc::channel(INBOX_MAX);
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let media_rng = sh.tree.stream("live-media", spec.me as u64);
        Shard {
            sh,
            devices: spec.devices,
            cfg: spec.cfg,
            crypto: spec.crypto,
            arrivals: spec.arrivals,
            groups: spec.groups,
            groups_unacked: BTreeMap::new(),
            cursor: 0,
            taken_reported: 0,
            lag_max_ns: spec.lag_max_ns,
            marker: spec.marker,
            decrypted: vec![0; spec.messages.div_ceil(64)],
            dials: spec.dials,
            routes: BTreeMap::new(),
            inbox_tx,
            inbox,
            conn_of: BTreeMap::new(),
            ever_connected: Vec::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            fx: Effects::default(),
            keys: Keyring::external(devices_in_run),
            // Signal's defaults: 100 one-time prekeys, refilled when fewer than 10 are left.
            key_directory: KeyDirectory::new(devices_in_run, 100, 10),
            report: ShardReport {
                lag: histogram(),
                sent: 0,
                dropped_arrivals: 0,
                outbox_full: 0,
                decrypt_failures: 0,
                sender_key_missing: 0,
                plaintext_verified: 0,
                encrypted: 0,
                sessions_started: 0,
                unroutable: 0,
                foreign_frames: 0,
                frames_in: 0,
                reads_in: 0,
                media: MediaReport::default(),
            },
            plain: Vec::with_capacity(16 * 1024),
            precrypted: spec.precrypted,
            media: spec.media,
            media_tx,
            media_rx,
            media_rng,
            media_report: MediaReport::default(),
            remote: spec.remote,
        }
    }

    /// Device `d` if this shard drives it, and what its inputs need, borrowed beside it.
    fn device_cx(&mut self, d: DeviceId, now: SimTime) -> Option<(&mut Device, DeviceCtx<'_>)> {
        let dev = self.devices[d.index()].as_mut()?;
        let cx = DeviceCtx {
            now,
            cfg: &self.cfg,
            dir: &self.sh.dir,
            keys: &mut self.keys,
            key_directory: &mut self.key_directory,
            fx: &mut self.fx,
        };
        Some((dev, cx))
    }

    fn clock(&self) -> Clock {
        self.sh.clock
    }

    /// Connects to every server, brings the devices online, then runs the send loop until
    /// shutdown.
    pub async fn run(mut self) -> ShardReport {
        self.ever_connected = vec![false; self.dials.len()];
        for i in 0..self.dials.len() {
            self.connect(i).await;
        }
        let now = self.clock().now();
        for i in 0..self.devices.len() {
            let d = DeviceId(i as u32);
            if let Some((dev, mut cx)) = self.device_cx(d, now) {
                dev.go_online(&mut cx);
                self.apply_effects(now, d);
            }
        }
        let mut shutdown = self.sh.shutdown.clone();
        let times = self.arrivals.iter().map(|a| a.at);
        let mut pacer = pacer::Pacer::start(times, self.clock());
        loop {
            pacer.arm(self.arrivals.get(self.cursor).map(|a| a.at));
            let next_timer = self.timers.first_key_value().map(|(k, _)| k.0);
            let wake = self
                .clock()
                .instant(next_timer.unwrap_or(SimTime::from_secs(1 << 30)));
            tokio::select! {
                biased;
                m = self.inbox.recv() => match m {
                    Some(m) => self.on_inbound(m),
                    None => break,
                },
                Some(done) = self.media_rx.recv() => self.on_media(done),
                _ = pacer.due() => self.on_wake().await,
                _ = tokio::time::sleep_until(wake), if next_timer.is_some() => self.on_wake().await,
                _ = shutdown.changed() => break,
            }
            self.flush_sent();
        }
        pacer.stop();
        self.report.media = std::mem::take(&mut self.media_report);
        self.report.encrypted = self.crypto.encrypted;
        self.report.sessions_started = self.crypto.sessions_started;
        self.report
    }

    async fn connect(&mut self, i: usize) {
        let d = self.dials[i];
        let id = self.sh.next_conn_id();
        // The hello comes from the shard; devices then speak for themselves.
        let me = Addr::Device(codec::HELLO_DEVICE);
        let inbox = self.inbox_tx.clone();
        match dial(&d, me, id, &self.sh, inbox, self.sh.run).await {
            Ok(tx) => {
                let again = self.ever_connected[i];
                self.ever_connected[i] = true;
                self.routes.insert(d.to, tx);
                self.conn_of.insert(id, i);
                if again {
                    // The server came back: every device connects again (a real client
                    // reconnects when its socket drops).
                    let now = self.clock().now();
                    for j in 0..self.devices.len() {
                        let d = DeviceId(j as u32);
                        if let Some((dev, mut cx)) = self.device_cx(d, now) {
                            dev.reconnect(&mut cx);
                            self.apply_effects(now, d);
                        }
                    }
                }
            }
            Err(_) => {
                let at = self.clock().now().plus(REDIAL_NS);
                self.push_timer(at, DeviceId(i as u32), None);
            }
        }
    }

    fn push_timer(&mut self, at: SimTime, d: DeviceId, t: Option<TimerKind>) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), (d, t));
    }

    /// Reports the arrivals taken since the last call (the drain waits for all of them).
    fn flush_sent(&mut self) {
        let taken = (self.cursor - self.taken_reported) as u64;
        if taken > 0 {
            // After the ledger knows of them: the drain checks the ledger once this is zero.
            self.sh
                .arrivals_pending
                .fetch_sub(taken, std::sync::atomic::Ordering::SeqCst);
            self.taken_reported = self.cursor;
        }
    }

    async fn on_wake(&mut self) {
        let now = self.clock().now();
        while let Some(a) = self.arrivals.get(self.cursor).copied() {
            if a.at > now {
                break;
            }
            let i = self.cursor;
            self.cursor += 1;
            let ahead = self.precrypted.get_mut(i).map(|c| c.take());
            self.send_arrival(now, a, ahead);
            if self.cursor - self.taken_reported >= 256 {
                self.flush_sent();
            }
        }
        while let Some(entry) = self.timers.first_entry() {
            let at = entry.key().0;
            if at > now {
                break;
            }
            let (d, t) = entry.remove();
            match t {
                Some(t) => {
                    if let Some(device) = self.devices[d.index()].as_mut() {
                        let (cfg, keys) = (&self.cfg, &mut self.keys);
                        let key_directory = &mut self.key_directory;
                        let node = NodeMut::Device {
                            device,
                            cfg,
                            keys,
                            key_directory,
                        };
                        // The device sees the instant it armed: it tells a stale timer by it.
                        dispatch::handle_timer(node, at, t, &self.sh.dir, &mut self.fx);
                        self.apply_effects(at, d);
                    }
                }
                None => self.connect(d.index()).await,
            }
        }
    }

    fn apply_effects(&mut self, now: SimTime, d: DeviceId) {
        // The ledger first (see the server task's `apply_effects`).
        if !self.fx.ledger.is_empty() {
            self.sh.ledger.apply(now, &mut self.fx.ledger);
        }
        let outputs = std::mem::take(&mut self.fx.outputs);
        for o in outputs {
            match o {
                Output::Send { to, mut frame } | Output::SendAfter { to, mut frame, .. } => {
                    if self.sh.cuts.blocks(Addr::Device(d), to, &self.sh.dir) {
                        continue;
                    }
                    self.sh.run.tag_frame(&mut frame);
                    let rec = Record {
                        from: Addr::Device(d),
                        to,
                        frame,
                    };
                    let sent = self
                        .routes
                        .get(&to)
                        .is_some_and(|tx| conn::try_send(tx, rec, &self.sh.stats));
                    if !sent {
                        self.report.unroutable += 1;
                    }
                }
                Output::Timer { at, timer } => self.push_timer(at, d, Some(timer)),
                // Left to fire: the device ignores a timer it no longer has armed.
                Output::CancelTimer { .. } => {}
            }
        }
    }
}
