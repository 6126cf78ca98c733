//! The simulated world and its event loop handler.

use super::cpu::Cpu;
use super::media::{MediaDraft, MediaWorld};
use super::timers::TimerFifo;
use super::transport::{side_of, InFlight, Links, Slab};
use crate::directory::Directory;
use crate::directory::PartnerLink;
use crate::engine::prefetch::prefetch;
use crate::engine::{
    self, EventQueue, Limits, RngTree, Scheduler, SimRng, SimTime, StopReason, World,
};
use crate::faults::{self, Edge};
use crate::metrics::checker::{self, FaultWindow};
use crate::metrics::feed::LedgerFeed;
use crate::metrics::ledger::NewMessage;
use crate::metrics::summary::{RunFacts, Utilization};
use crate::metrics::{IntervalLatency, Ledger, LedgerEvent, PathKind, Sample, Summary, TimeSeries};
use crate::net::latency::{exponential_ns, unit};
use crate::net::{LinkEffect, LinkModel, Partitions, Transit};
use crate::nodes::adapter::Adapter;
use crate::nodes::buggify::Bugs;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::device::{Device, DeviceConfig, GroupSend};
use crate::nodes::gateway::Gateway;
use crate::nodes::keyring::{CostTable, Keyring, Op};
use crate::nodes::mailbox::MailboxConfig;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::{Addr, Effects, Output, TimerKind};
use crate::scenario::{
    AdapterMode, ContentKind, CryptoMode, Endpoint, FaultKind, HopClass, Scenario,
};
use crate::wire::{DeviceId, Frame, GroupId, MediaFrame, MsgId, ProviderId, UserId};
use crate::workload::Workload;
use std::collections::BTreeMap;

mod media_hooks;

/// Everything that can happen.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A frame lands at its destination's input (before its CPU queue). `to` repeats the
    /// frame's destination so that the prefetch hook can ask for the destination's state
    /// before the frame itself has been read.
    Arrive {
        slot: u32,
        to: Addr,
    },
    /// The destination's CPU finished a frame: the node handles it now.
    Processed(u32),
    Timer {
        node: Addr,
        timer: TimerKind,
    },
    /// A frame a node held back (shaping) leaves now.
    Emit(u32),
    /// Retry timers of the initial delay are due (see [`TimerFifo`]).
    RetryTimersDue,
    /// The prekey-drain adversary fetches bundles (once a second while its fault lasts).
    DrainTick {
        index: u16,
        fetches: u32,
    },
    /// The next Poisson arrival of the workload.
    Compose,
    Reply {
        from: UserId,
        to: UserId,
    },
    /// A member answers in a group.
    GroupReply {
        from: UserId,
        group: GroupId,
    },
    Read {
        msg: MsgId,
        device: DeviceId,
    },
    /// A device's connectivity flips (churn).
    Churn(DeviceId),
    Fault {
        index: u16,
        edge: Edge,
    },
    /// End of a timeseries interval.
    Sample,
    /// The send window closes: churn stops and every device comes online to drain.
    DrainStart,
}

/// Largest plaintext buffer kept for the next message (a text's largest body is 64 KiB).
const SPARE_PLAINTEXT_MAX: usize = 128 * 1024;

/// Bound on the ledger records reserved up front (a scenario's rate can be anything).
const EXPECTED_MESSAGES_MAX: f64 = 32e6;

/// About how many messages a run writes: the Poisson arrivals and their answers, before group
/// fan-out and surges (the ledger grows past it if needed).
fn expected_messages(s: &Scenario) -> usize {
    let users: f64 = s.providers.iter().map(|p| f64::from(p.users)).sum();
    let hours = s.run.duration_ns as f64 / 3.6e12;
    let arrivals = users * s.workload.messages_per_user_hour * hours;
    let n = arrivals * (1.0 + s.workload.reply_probability) * 1.05;
    n.clamp(0.0, EXPECTED_MESSAGES_MAX) as usize
}

/// Which frames `--trace` logs: all of them, or those of one message.
#[derive(Clone, Copy, Debug)]
pub enum TraceFilter {
    All,
    Msg(MsgId),
}

impl TraceFilter {
    fn matches(&self, f: &Frame) -> bool {
        match self {
            TraceFilter::All => true,
            TraceFilter::Msg(m) => f.msg() == Some(*m),
        }
    }
    fn matches_ledger(&self, e: &LedgerEvent) -> bool {
        match self {
            TraceFilter::All => true,
            TraceFilter::Msg(m) => format!("{e:?}").contains(&format!("msg: MsgId({})", m.0)),
        }
    }
}

/// What a run produced.
pub struct RunResult {
    pub summary: Summary,
    pub timeseries: TimeSeries,
    pub ledger: Ledger,
    pub stop: StopReason,
    /// `--trace` output: one JSON object per line.
    pub trace: Vec<String>,
    /// Deliveries whose decrypted plaintext matched what the sender wrote (real crypto only;
    /// kept out of summary.json, which is the same in real and modeled mode).
    pub verified_plaintexts: u64,
    /// Simulated CPU time charged for crypto, from the cost table.
    pub crypto_charged_ns: u64,
    /// The random word every plaintext of the run carries.
    pub canary: u64,
    /// With `RunOptions::tap`: each frame the gateway, adapters, partner servers, media stores
    /// and the media proxy handled, as its debug text followed by the raw ciphertext bytes it
    /// carried (for an upload: the first bytes of the stored blob).
    pub tapped: Vec<Vec<u8>>,
    /// Media blobs whose pointer (parsed from the decrypted plaintext) and bytes verified and
    /// decrypted on the recipient device (real crypto only; kept out of summary.json).
    pub media_verified: u64,
    /// Blobs really decrypted: the first verifying device of each; the other devices' pointers
    /// are compared with the secret that opened it (sim/media.rs).
    pub media_blobs_opened: u64,
    /// Real crypto disagreeing with the model about a media pointer or blob (a bug if not 0).
    pub media_disagreed: u64,
}

struct Nodes {
    devices: Vec<Device>,
    chat: ChatServer,
    gateway: Gateway,
    /// Indexed by provider; `None` for the gatekeeper and direct-mode partners.
    adapters: Vec<Option<Adapter>>,
    /// Indexed by provider; `None` for the gatekeeper.
    partner_servers: Vec<Option<PartnerServer>>,
}

/// Per server node: its CPU and whether it is up.
struct Servers {
    chat: Cpu,
    gateway: Cpu,
    adapters: Vec<Cpu>,
    partner_servers: Vec<Cpu>,
    chat_down: bool,
    gateway_down: bool,
    provider_down: Vec<bool>,
}

struct Sim {
    s: Scenario,
    tree: RngTree,
    dir: Directory,
    nodes: Nodes,
    servers: Servers,
    device_cfg: DeviceConfig,
    /// Outbox retries and redeliveries armed with the initial delay: almost all are cancelled
    /// by the ack, and kept out of the event queue they cost nothing more.
    retry_timers: TimerFifo,
    links: Links,
    link_models: [LinkModel; 4],
    partitions: Partitions,
    frames: Slab,
    ledger: LedgerFeed,
    series: TimeSeries,
    workload: Workload,
    net_rng: SimRng,
    churn_rng: SimRng,
    fx: Effects,
    send_end: SimTime,
    drained: bool,
    /// Mean online and offline spell lengths, ns.
    churn_means: (f64, f64),
    interval_sent: u64,
    interval_shown: u64,
    replay_rejected: u64,
    work: BTreeMap<&'static str, u64>,
    frame_counts: FrameCounts,
    bugs: Bugs,
    /// Devices' Signal state and the key directory's prekey pools.
    keys: Keyring,
    /// A random word every plaintext carries (metadata-isolation tests look for it).
    pub canary: u64,
    plaintexts_made: u64,
    /// The last plaintext's buffer, for the next one: a plaintext lives only while it is
    /// sealed, and at ten million messages its allocation showed.
    spare_plaintext: Vec<u8>,
    /// The sender and recipient the next workload arrival is expected to pick (a cache hint).
    next_pair: Option<(UserId, UserId)>,
    tap: bool,
    tapped: Vec<Vec<u8>>,
    /// Victims per prekey-drain fault.
    drained_victims: BTreeMap<usize, Vec<DeviceId>>,
    /// Active surge factors (the workload's rate is multiplied by each).
    surges: Vec<f64>,
    /// Per provider: active push-loss rates.
    push_loss: Vec<Vec<f64>>,
    /// `--trace`: which frames to log, and the log (JSON lines).
    trace: Option<TraceFilter>,
    pub trace_lines: Vec<String>,
    /// Users affected per toggle fault, for the heal.
    toggled: BTreeMap<usize, Vec<UserId>>,
    /// Group messages by first message id: their group and member count (member `k` of a
    /// group message has id `first + k`).
    group_sends: BTreeMap<u64, (GroupId, u32)>,
    /// Media stores, the media proxy, devices' media transfers (sim/media.rs).
    media: MediaWorld,
}

impl Sim {
    fn trace_frame(&mut self, now: SimTime, what: &str, from: Addr, to: Addr, frame: &Frame) {
        if self.trace.is_some_and(|t| t.matches(frame)) {
            let line = format!(
                "{{\"t_ns\":{},\"event\":\"{}\",\"from\":\"{:?}\",\"to\":\"{:?}\",\"frame\":{:?}}}",
                now.as_nanos(),
                what,
                from,
                to,
                format!("{frame:?}")
            );
            self.trace_lines.push(line);
        }
    }

    fn count(&mut self, key: &'static str, n: u64) {
        *self.work.entry(key).or_insert(0) += n;
    }

    /// Folds the per-frame counters into `work`, as if each frame had been counted there.
    fn flush_frame_counts(&mut self) {
        let c = std::mem::take(&mut self.frame_counts);
        for hop in HopClass::ALL {
            if c.hop_used[hop.index()] {
                let key = match hop {
                    HopClass::ClientServer => "bytes_client_server",
                    HopClass::ServerGateway => "bytes_server_gateway",
                    HopClass::GatewayPartner => "bytes_gateway_partner",
                    HopClass::AdapterServer => "bytes_adapter_server",
                };
                self.count(key, c.bytes[hop.index()]);
            }
        }
        if c.frames_sent > 0 {
            self.count("frames_sent", c.frames_sent);
        }
    }
}

/// Counters bumped for every frame sent, kept out of the `work` map (a string-keyed lookup per
/// frame was a few percent of a run).
#[derive(Default)]
struct FrameCounts {
    bytes: [u64; 4],
    hop_used: [bool; 4],
    frames_sent: u64,
}

fn build_directory(s: &Scenario, tree: &RngTree) -> Directory {
    let mut rng = tree.stream("directory", 0);
    let provider_users: Vec<u32> = s.providers.iter().map(|p| p.users).collect();
    let links = s
        .providers
        .iter()
        .map(|p| {
            if p.adapter == AdapterMode::Direct {
                PartnerLink::Direct
            } else {
                PartnerLink::Proxied
            }
        })
        .collect();
    let mut devices = Vec::new();
    let mut enlisted = Vec::new();
    for p in &s.providers {
        for _ in 0..p.users {
            let span = (p.devices_max - p.devices_min) as u64 + 1;
            devices.push(p.devices_min + (rand::Rng::next_u64(&mut rng) % span) as u8);
            enlisted.push(unit(&mut rng) < p.opt_in);
        }
    }
    Directory::new(&provider_users, links, &devices, enlisted)
}

impl Sim {
    fn new(s: Scenario, bugs: Bugs) -> Self {
        let tree = RngTree::new(s.run.seed);
        let dir = build_directory(&s, &tree);
        let owners = dir.owners();
        let frames_in_flight = dir.devices() + dir.devices() / 4;
        let d = &s.devices;
        let device_cfg = DeviceConfig {
            retry_initial_ns: d.retry_initial_ns,
            retry_max_ns: d.retry_max_ns,
            outbox_max: d.outbox_max,
            // Long enough for the slowest redelivery to fill a gap.
            reorder_hold_ns: (2 * d.retry_max_ns).max(30_000_000_000),
            reorder_held_max: 256,
            plaintext_cache_max: d.plaintext_cache as usize,
            bugs: Bugs::NONE,
        };
        let mailbox = MailboxConfig {
            offline_ttl_ns: d.offline_ttl_ns,
            redeliver_initial_ns: d.retry_initial_ns,
            redeliver_max_ns: d.retry_max_ns,
            dedup_window_max: 4096,
            window_max: 32,
            break_ordering: bugs.break_ordering,
        };
        let providers = s.providers.len();
        let devices = (0..dir.devices() as u32)
            .map(|i| Device::new(DeviceId(i), &dir, &device_cfg))
            .collect();
        let adapters = (0..providers)
            .map(|p| {
                (p > 0 && s.providers[p].adapter == AdapterMode::Proxied)
                    .then(|| Adapter::new(ProviderId(p as u32)))
            })
            .collect();
        let partner_servers = (0..providers)
            .map(|p| (p > 0).then(|| PartnerServer::new(ProviderId(p as u32), &dir, mailbox)))
            .collect();
        let nodes = Nodes {
            devices,
            chat: ChatServer::new(&dir, mailbox),
            gateway: Gateway::new(providers, s.capacity.gateway.rate_limit_per_partner),
            adapters,
            partner_servers,
        };
        let servers = Servers {
            chat: Cpu::new(&s.capacity.chat_server),
            gateway: Cpu::new(&s.capacity.gateway),
            adapters: (0..providers)
                .map(|_| Cpu::new(&s.capacity.adapter))
                .collect(),
            partner_servers: (0..providers)
                .map(|_| Cpu::new(&s.capacity.chat_server))
                .collect(),
            chat_down: false,
            gateway_down: false,
            provider_down: vec![false; providers],
        };
        let share = d.online_share.clamp(0.0, 1.0);
        let on = d.online_mean_ns as f64;
        let off = if share >= 1.0 {
            0.0
        } else {
            on * (1.0 - share) / share.max(1e-9)
        };
        let link_models = HopClass::ALL.map(|h| LinkModel::new(s.network.link(h)));
        let dir_devices = dir.devices();
        let canary = rand::Rng::next_u64(&mut tree.stream("canary", 0));
        Sim {
            media: MediaWorld::new(providers, s.e2ee.crypto, &tree, canary),
            workload: Workload::new(&s, &dir, &tree),
            links: Links::new(dir.devices(), providers),
            partitions: Partitions::new(providers),
            net_rng: tree.stream("net", 0),
            churn_rng: tree.stream("churn", 0),
            series: TimeSeries::new(s.run.interval_ns as f64 / 1e9),
            send_end: SimTime::from_nanos(s.run.duration_ns),
            churn_means: (on, off),
            tree,
            dir,
            nodes,
            servers,
            retry_timers: TimerFifo::new(device_cfg.retry_initial_ns),
            device_cfg,
            link_models,
            frames: Slab::with_capacity(frames_in_flight),
            ledger: LedgerFeed::new(expected_messages(&s), owners),
            fx: Effects::default(),
            drained: false,
            interval_sent: 0,
            interval_shown: 0,
            replay_rejected: 0,
            work: BTreeMap::new(),
            frame_counts: FrameCounts::default(),
            toggled: BTreeMap::new(),
            group_sends: BTreeMap::new(),
            trace: None,
            trace_lines: Vec::new(),
            surges: Vec::new(),
            bugs: Bugs::NONE,
            keys: Keyring::new(
                dir_devices,
                s.e2ee.crypto,
                s.e2ee.protocol,
                s.run.seed,
                CostTable::default().with_overrides(&s.e2ee.cost_table),
                s.e2ee.one_time_prekeys,
                s.e2ee.prekey_refill_below,
            )
            .with_bundle_fetch_limit(s.e2ee.bundle_fetch_limit),
            canary,
            plaintexts_made: 0,
            spare_plaintext: Vec::new(),
            next_pair: None,
            drained_victims: BTreeMap::new(),
            tap: false,
            tapped: Vec::new(),
            push_loss: vec![Vec::new(); providers],
            s,
        }
    }

    /// Initial events: device states and churn, the first arrival, faults, sampling, drain.
    fn seed_events(&mut self, q: &mut EventQueue<Event>) {
        let share = self.s.devices.online_share;
        let mut sched = Scheduler::new(SimTime::ZERO, q);
        for i in 0..self.nodes.devices.len() {
            let d = DeviceId(i as u32);
            if unit(&mut self.churn_rng) < share {
                self.with_fx(SimTime::ZERO, Addr::Device(d), &mut sched, |sim, fx| {
                    sim.nodes.devices[i].go_online(
                        SimTime::ZERO,
                        &sim.device_cfg,
                        &sim.dir,
                        &mut sim.keys,
                        fx,
                    )
                });
            }
            if share < 1.0 {
                let online = self.nodes.devices[i].is_online();
                let mean = if online {
                    self.churn_means.0
                } else {
                    self.churn_means.1
                };
                let t = exponential_ns(&mut self.churn_rng, mean);
                if t < self.s.run.duration_ns {
                    sched.at(SimTime::from_nanos(t), Event::Churn(d));
                }
            }
        }
        if let Some(gap) = self.workload.next_gap_ns(1.0) {
            if gap < self.s.run.duration_ns {
                sched.at(SimTime::from_nanos(gap), Event::Compose);
            }
        }
        for (t, i, edge) in faults::edges(&self.s.faults) {
            sched.at(
                t,
                Event::Fault {
                    index: i as u16,
                    edge,
                },
            );
        }
        sched.at(SimTime::from_nanos(self.s.run.interval_ns), Event::Sample);
        sched.at(self.send_end, Event::DrainStart);
    }

    /// Runs `f` with the shared effects buffer, then turns its outputs into events.
    fn with_fx(
        &mut self,
        now: SimTime,
        node: Addr,
        sched: &mut Scheduler<'_, Event>,
        f: impl FnOnce(&mut Sim, &mut Effects),
    ) {
        let mut fx = std::mem::take(&mut self.fx);
        f(self, &mut fx);
        self.apply_effects(now, node, &mut fx, sched);
        self.fx = fx;
    }

    fn apply_effects(
        &mut self,
        now: SimTime,
        node: Addr,
        fx: &mut Effects,
        sched: &mut Scheduler<'_, Event>,
    ) {
        for out in fx.outputs.drain(..) {
            match out {
                Output::Send { to, frame } => self.transmit(now, node, to, frame, sched),
                Output::SendAfter {
                    delay_ns,
                    to,
                    frame,
                } => {
                    let held = InFlight {
                        from: node,
                        to,
                        frame,
                        tampered: false,
                        replay: false,
                    };
                    let slot = self.frames.insert(held);
                    sched.at(now.plus(delay_ns), Event::Emit(slot));
                }
                Output::Timer { at, timer } => {
                    let (taken, wake) = match timer {
                        TimerKind::OutboxRetry | TimerKind::Redeliver(_) => {
                            self.retry_timers.arm(now, at, node, timer)
                        }
                        _ => (false, None),
                    };
                    if let Some(wake) = wake {
                        sched.at(wake, Event::RetryTimersDue);
                    }
                    if !taken {
                        sched.at(at, Event::Timer { node, timer });
                    }
                }
                Output::CancelTimer { at, timer } => self.retry_timers.cancel(at, node, timer),
            }
        }
        for opened in fx.media.drain(..) {
            self.media.opened(opened);
        }
        for ev in fx.ledger.drain(..) {
            if let Some(t) = &self.trace {
                if t.matches_ledger(&ev) {
                    self.trace_lines.push(format!(
                        "{{\"t_ns\":{},\"ledger\":\"{:?}\"}}",
                        now.as_nanos(),
                        ev
                    ));
                }
            }
            self.ledger.apply(now, ev.clone());
            self.media_reacts(now, node, &ev, sched);
            self.react(now, &ev, sched);
        }
    }

    /// The workload's reactions to what users see: replies and reads on the primary device.
    fn react(&mut self, now: SimTime, ev: &LedgerEvent, sched: &mut Scheduler<'_, Event>) {
        let LedgerEvent::Shown { msg, device, .. } = *ev else {
            return;
        };
        self.interval_shown += 1;
        if !self.workload.reacts() || self.dir.device_slot(device) != 0 {
            return;
        }
        let Some((from, to)) = self.ledger.parties(msg) else {
            return;
        };
        if from == to || self.dir.user_of(device) != to {
            return; // a copy on the sender's own other device
        }
        if let Some(delay) = self.workload.read_after_ns() {
            sched.at(now.plus(delay), Event::Read { msg, device });
        }
        let (answer, reply) = match self.group_of(msg) {
            Some((group, recipients)) => (
                self.workload.group_reply_after_ns(recipients),
                Event::GroupReply { from: to, group },
            ),
            None => (
                self.workload.reply_after_ns(),
                Event::Reply { from: to, to: from },
            ),
        };
        if let Some(delay) = answer {
            if now.plus(delay) < self.send_end {
                sched.at(now.plus(delay), reply);
            }
        }
    }

    /// Hands a frame to the link between `from` and `to`.
    fn transmit(
        &mut self,
        now: SimTime,
        from: Addr,
        to: Addr,
        frame: Frame,
        sched: &mut Scheduler<'_, Event>,
    ) {
        if let Frame::Media(m) = frame {
            return self.transmit_media(now, from, to, m, sched);
        }
        let blocked = self.partitioned(from, to);
        if self.trace.is_some() {
            self.trace_frame(
                now,
                if blocked { "blocked" } else { "send" },
                from,
                to,
                &frame,
            );
        }
        if blocked {
            self.count("dropped_partition", 1);
            return;
        }
        if let (Frame::Push { device }, Addr::Device(_)) = (&frame, to) {
            let p = self.dir.provider_of_device(*device).index();
            let lost = self.push_loss[p]
                .iter()
                .any(|&r| crate::net::latency::chance(&mut self.net_rng, r));
            if lost {
                self.count("push_lost", 1);
                return;
            }
        }
        let bytes = frame.wire_bytes();
        let (hop, state) = self.links.route(from, to);
        let model = &self.link_models[hop.index()];
        let transit = if matches!(frame, Frame::Push { .. }) {
            // Push goes through the platform's push service, not the device's connection.
            let mut scratch = crate::net::LinkState::default();
            model.send(&mut scratch, now, bytes, &mut self.net_rng)
        } else {
            model.send(state, now, bytes, &mut self.net_rng)
        };
        // Every frame: plain adds here, folded into `work` at the end (`flush_frame_counts`).
        self.frame_counts.bytes[hop.index()] += bytes as u64;
        self.frame_counts.hop_used[hop.index()] = true;
        self.frame_counts.frames_sent += 1;
        match transit {
            Transit::Lost => self.count("dropped_loss", 1),
            Transit::QueueFull => self.count("dropped_link_queue", 1),
            Transit::Arrives {
                at,
                copy_at,
                copy_is_replay,
                tampered,
            } => {
                if let Some(copy_at) = copy_at {
                    let copy = InFlight {
                        from,
                        to,
                        frame: frame.clone(),
                        tampered: false,
                        replay: copy_is_replay,
                    };
                    let slot = self.frames.insert(copy);
                    sched.at(copy_at, Event::Arrive { slot, to });
                    self.count(
                        if copy_is_replay {
                            "replayed_frames"
                        } else {
                            "duplicated_frames"
                        },
                        1,
                    );
                }
                let slot = self.frames.insert(InFlight {
                    from,
                    to,
                    frame,
                    tampered,
                    replay: false,
                });
                sched.at(at, Event::Arrive { slot, to });
            }
        }
    }

    /// Whether an active partition cuts `from` off from `to`. The sides are looked up only while
    /// a partition is active: each is a directory lookup (a cache miss per device at a million
    /// devices).
    fn partitioned(&self, from: Addr, to: Addr) -> bool {
        self.partitions.any_active()
            && self
                .partitions
                .blocks(side_of(from, &self.dir), side_of(to, &self.dir))
    }

    /// The CPU of a server node; devices have none.
    fn cpu(&mut self, a: Addr) -> Option<&mut Cpu> {
        match a {
            Addr::Device(_) => None,
            Addr::ChatServer => Some(&mut self.servers.chat),
            Addr::Gateway => Some(&mut self.servers.gateway),
            Addr::Adapter(p) => self.servers.adapters.get_mut(p.index()),
            Addr::PartnerServer(p) => self.servers.partner_servers.get_mut(p.index()),
            // Media services are priced by their links' bandwidth, not by a CPU queue.
            Addr::MediaStore(_) | Addr::MediaProxy => None,
        }
    }

    fn is_down(&self, a: Addr) -> bool {
        match a {
            Addr::Device(_) => false,
            Addr::ChatServer => self.servers.chat_down,
            Addr::Gateway => self.servers.gateway_down,
            Addr::Adapter(p) | Addr::PartnerServer(p) => self.servers.provider_down[p.index()],
            // A provider's crash takes its media store down (blobs are durable); the gateway's
            // takes the media proxy beside it.
            Addr::MediaStore(p) if p.0 == 0 => self.servers.chat_down,
            Addr::MediaStore(p) => self.servers.provider_down[p.index()],
            Addr::MediaProxy => self.servers.gateway_down,
        }
    }

    fn arrive(&mut self, now: SimTime, slot: u32, sched: &mut Scheduler<'_, Event>) {
        let Some(f) = self.frames.get(slot) else {
            return;
        };
        let (to, is_message, tampered) = (f.to, f.frame.is_message(), f.tampered);
        if f.replay && !is_message {
            // Control frames ride the Noise channel, whose nonces refuse a replay outright.
            // Message frames are replayed as an attacker would, on a fresh connection, so
            // that the application's dedup and the Signal counters have to catch them.
            self.frames.take(slot);
            self.replay_rejected += 1;
            return;
        }
        if self.is_down(to) {
            if let Some(f) = self.frames.take(slot) {
                self.media_dropped(now, &f, sched);
            }
            self.count("dropped_node_down", 1);
            return;
        }
        if tampered && !matches!(to, Addr::Device(_)) {
            // The Noise transport's AEAD refuses the frame before any handler sees it.
            self.frames.take(slot);
            self.ledger.tamper_detected();
            return;
        }
        let noise_ns = if to == Addr::Gateway {
            self.noise_cost(slot)
        } else {
            0
        };
        let Some(cpu) = self.cpu(to) else {
            return self.process(now, slot, sched);
        };
        let service = cpu.service_ns(is_message) + noise_ns;
        match cpu.admit(now, service) {
            Some(done) => {
                // The frame waits its service time, a few events: enough for the state it
                // reads to come into the cache (the second level follows in `prefetch`).
                self.prefetch_frame_state(slot, false);
                sched.at(done, Event::Processed(slot))
            }
            None => {
                if let Some(f) = self.frames.take(slot) {
                    self.media_dropped(now, &f, sched);
                }
                self.count("dropped_server_queue", 1);
            }
        }
    }

    fn process(&mut self, now: SimTime, slot: u32, sched: &mut Scheduler<'_, Event>) {
        let Some(f) = self.frames.take(slot) else {
            return;
        };
        match (f.to, &f.frame) {
            (Addr::Device(d), Frame::Deliver(_)) => {
                // The device and its keys were asked for one event ago; what they point to is
                // asked for now, all at once, rather than one miss after the other in the
                // handler.
                if let Some(device) = self.nodes.devices.get(d.index()) {
                    device.prefetch_for_receive();
                }
                self.keys.prefetch_sessions(d);
            }
            (Addr::Device(d), Frame::Media(MediaFrame::UploadAck { blob, .. })) => {
                // The stored blob's message is sealed now, for the recipient's devices.
                if let Some(to) = self.media.upload_recipient(d, *blob) {
                    self.prefetch_conversation(self.dir.user_of(d), to);
                    self.prefetch_seal(d, to);
                }
            }
            _ => {}
        }
        if let Some(cpu) = self.cpu(f.to) {
            cpu.complete();
        }
        if self.is_down(f.to) {
            self.media_dropped(now, &f, sched);
            self.count("dropped_node_down", 1);
            return; // crashed while the frame was queued
        }
        let to = f.to;
        if self.tap
            && matches!(
                to,
                Addr::Gateway
                    | Addr::Adapter(_)
                    | Addr::PartnerServer(_)
                    | Addr::MediaStore(_)
                    | Addr::MediaProxy
            )
        {
            let mut tapped = tap_bytes(&f.frame);
            if let Frame::Media(MediaFrame::Upload { blob, .. }) = f.frame {
                tapped.extend_from_slice(self.media.tap_blob(blob).unwrap_or(&[]));
            }
            self.tapped.push(tapped);
        }
        if self.trace.is_some() {
            self.trace_frame(now, "handle", f.from, f.to, &f.frame);
        }
        self.with_fx(now, to, sched, |sim, fx| sim.dispatch(now, f, fx));
    }

    /// Cache hints for what a queued server frame will read when handled: the mailbox state
    /// and, for a submission, the links its copies leave on. Two levels (see
    /// [`crate::nodes::Mailbox::prefetch_frame`]); changes nothing.
    fn prefetch_frame_state(&self, slot: u32, deep: bool) {
        let Some(f) = self.frames.get(slot) else {
            return;
        };
        match f.to {
            Addr::ChatServer => self.nodes.chat.prefetch(&f.frame, &self.dir, deep),
            Addr::PartnerServer(p) => {
                if let Some(Some(ps)) = self.nodes.partner_servers.get(p.index()) {
                    ps.prefetch(&f.frame, &self.dir, deep);
                }
            }
            _ => return,
        }
        if let (false, Frame::Submit(env)) = (deep, &f.frame) {
            self.links.prefetch_device(env.from_device);
            for d in self.dir.devices_of(env.to_user) {
                self.links.prefetch_device(d);
            }
        }
    }

    fn dispatch(&mut self, now: SimTime, f: InFlight, fx: &mut Effects) {
        if let Frame::Media(m) = f.frame {
            return self.dispatch_media(now, f.from, f.to, m, fx);
        }
        let dir = &self.dir;
        let replay = f.replay;
        let before = fx.ledger.len();
        match f.to {
            Addr::Device(d) => {
                let dev = &mut self.nodes.devices[d.index()];
                if let Frame::Push { .. } = f.frame {
                    if !self.drained || !dev.is_online() {
                        dev.go_online(now, &self.device_cfg, dir, &mut self.keys, fx);
                    }
                } else {
                    dev.handle_frame(
                        now,
                        f.from,
                        f.frame,
                        f.tampered,
                        &self.device_cfg,
                        dir,
                        &mut self.keys,
                        fx,
                    );
                }
            }
            Addr::ChatServer => self.nodes.chat.handle_frame(now, f.frame, dir, fx),
            Addr::Gateway => self
                .nodes
                .gateway
                .handle_frame(now, f.from, f.frame, dir, fx),
            Addr::Adapter(p) => {
                if let Some(a) = self.nodes.adapters[p.index()].as_mut() {
                    if let Some(to) = a.handle_frame(f.from, &f.frame) {
                        fx.send(to, f.frame);
                    }
                }
            }
            Addr::PartnerServer(p) => {
                if let Some(ps) = self.nodes.partner_servers[p.index()].as_mut() {
                    ps.handle_frame(now, f.frame, dir, fx);
                }
            }
            Addr::MediaStore(_) | Addr::MediaProxy => {} // media frames only (dispatch_media)
        }
        if replay {
            let effective = fx.ledger[before..]
                .iter()
                .any(|e| matches!(e, LedgerEvent::Shown { .. } | LedgerEvent::Accepted { .. }));
            if !effective {
                self.replay_rejected += 1;
            }
        }
    }

    fn compose(
        &mut self,
        now: SimTime,
        from: UserId,
        to: UserId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        if self.next_pair != Some((from, to)) {
            // Not guessed at the previous arrival (a reply, or a wrong guess): ask now.
            self.prefetch_conversation(from, to);
        }
        let draft = self.workload.draft_to(from, to);
        let path = if self.dir.is_interop(from, to) {
            PathKind::Interop
        } else {
            PathKind::Native
        };
        let device = self.device_in_hand(now, from, sched);
        let bytes = draft
            .body_bytes
            .saturating_add(draft.media_bytes.min(u32::MAX as u64) as u32);
        let attached = self.attach(device, &draft);
        let plaintext = self.plaintext_with(draft.content, draft.body_bytes, attached.as_ref());
        let digest = self.digest(&plaintext);
        let msg = self.ledger.create(
            now,
            NewMessage {
                from_user: from,
                from_device: device,
                to_user: to,
                content: draft.content,
                path,
                bytes,
                digest,
            },
        );
        self.interval_sent += 1;
        if let Some((pointer, encrypt_ns)) = attached {
            let draft = MediaDraft {
                msg,
                device,
                to_user: to,
                body: plaintext,
                pointer,
                encrypt_ns,
            };
            return self.upload_then_send(now, draft, sched);
        }
        let mut accepted = true;
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            let (cfg, dir, keys) = (&sim.device_cfg, &sim.dir, &mut sim.keys);
            accepted = sim.nodes.devices[device.index()].compose(
                now,
                msg,
                to,
                &plaintext,
                draft.content,
                cfg,
                dir,
                keys,
                fx,
            );
        });
        if !accepted {
            self.count("outbox_full", 1);
        }
        self.keep_spare(plaintext);
    }

    /// Asks for the state a message from `from` to `to` reads (both users' devices and keys,
    /// the recipients' prekey pools, the sender's uplink) all at once: at a million devices
    /// these are cache misses, and one after the other they made up much of a message's cost.
    fn prefetch_conversation(&self, from: UserId, to: UserId) {
        for d in self.dir.devices_of(from) {
            if let Some(device) = self.nodes.devices.get(d.index()) {
                prefetch(device);
            }
            self.keys.prefetch(d);
            self.links.prefetch_device(d);
        }
        for d in self.dir.devices_of(to) {
            self.keys.prefetch(d);
            self.keys.prefetch_directory(d);
        }
    }

    /// The second level of sealing a message on `device` for `to`: the device's sequence
    /// numbers, outbox and sessions, and the fetch limiter's entries for a new session with
    /// each of `to`'s devices. Call it once the first level ([`Sim::prefetch_conversation`])
    /// is in the cache.
    fn prefetch_seal(&self, device: DeviceId, to: UserId) {
        if let Some(d) = self.nodes.devices.get(device.index()) {
            d.prefetch_for_send();
        }
        self.keys.prefetch_sessions(device);
        for peer in self.dir.devices_of(to) {
            self.keys.prefetch_fetch(device, peer);
        }
    }

    /// The device in the user's hand: the first one online, else the phone. Writing a message
    /// means the app is open: an offline phone connects first.
    fn device_in_hand(
        &mut self,
        now: SimTime,
        user: UserId,
        sched: &mut Scheduler<'_, Event>,
    ) -> DeviceId {
        let device = self
            .dir
            .devices_of(user)
            .find(|d| self.nodes.devices[d.index()].is_online())
            .unwrap_or(self.dir.primary_device(user));
        if !self.nodes.devices[device.index()].is_online() {
            self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
                sim.nodes.devices[device.index()].go_online(
                    now,
                    &sim.device_cfg,
                    &sim.dir,
                    &mut sim.keys,
                    fx,
                )
            });
        }
        device
    }

    /// The group a message was written to, if any, and its number of recipients.
    fn group_of(&self, msg: MsgId) -> Option<(GroupId, u32)> {
        let (&first, &(group, members)) = self.group_sends.range(..=msg.0).next_back()?;
        (msg.0 < first + members as u64).then_some((group, members))
    }

    /// A member writes to a group: one ledger record per recipient member (ids in a row), the
    /// sender's other devices counting as one more recipient, since they get the message too.
    fn compose_group(
        &mut self,
        now: SimTime,
        draft: crate::workload::Draft,
        g: GroupId,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let from = draft.from;
        let group = self.workload.groups.get(g);
        let epoch = group.epoch;
        let mut members: Vec<UserId> = group
            .members
            .iter()
            .copied()
            .filter(|&u| u != from)
            .collect();
        if self.dir.device_count(from) > 1 {
            members.push(from);
        }
        if members.is_empty() {
            return;
        }
        let device = self.device_in_hand(now, from, sched);
        let bytes = draft
            .body_bytes
            .saturating_add(draft.media_bytes.min(u32::MAX as u64) as u32);
        let plaintext = self.plaintext(draft.content, draft.body_bytes);
        let digest = self.digest(&plaintext);
        let (content, path) = (draft.content, PathKind::Group);
        let first = members
            .iter()
            .map(|&to_user| {
                let message = NewMessage {
                    from_user: from,
                    from_device: device,
                    to_user,
                    content,
                    path,
                    bytes,
                    digest,
                };
                self.ledger.create(now, message)
            })
            .min()
            .unwrap_or(MsgId(0));
        self.group_sends.insert(first.0, (g, members.len() as u32));
        self.interval_sent += members.len() as u64;
        self.count("group_sends", 1);
        let send = GroupSend {
            group: g,
            epoch,
            members: members.into(),
        };
        let mut accepted = true;
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            let (cfg, dir, keys) = (&sim.device_cfg, &sim.dir, &mut sim.keys);
            let dev = &mut sim.nodes.devices[device.index()];
            accepted =
                dev.compose_group(now, first, &send, &plaintext, content, cfg, dir, keys, fx);
        });
        if !accepted {
            self.count("outbox_full", 1);
        }
        self.keep_spare(plaintext);
    }

    /// A message body as an app would serialize it: its content type, the run's canary (so a
    /// test can prove no plaintext leaks into the gateway, adapters or partner servers), a
    /// counter that makes every plaintext unique, and filler up to the drawn size.
    /// Keeps a sealed plaintext's buffer for the next message (not a huge one).
    fn keep_spare(&mut self, plaintext: Vec<u8>) {
        if plaintext.capacity() <= SPARE_PLAINTEXT_MAX {
            self.spare_plaintext = plaintext;
        }
    }

    /// The digest the ledger checks a shown plaintext against. Only real crypto shows one
    /// (modeled decryption yields no bytes to compare), so modeled runs skip the hash: at a
    /// million users it was a sixth of a message's compose cost.
    fn digest(&self, plaintext: &[u8]) -> u64 {
        match self.keys.mode() {
            CryptoMode::Real => crate::nodes::device::digest(plaintext),
            CryptoMode::Modeled => 0,
        }
    }

    fn plaintext(&mut self, content: ContentKind, body_bytes: u32) -> Vec<u8> {
        self.plaintexts_made += 1;
        let mut p = std::mem::take(&mut self.spare_plaintext);
        p.clear();
        p.reserve(body_bytes as usize + 32);
        p.push(content as u8);
        p.extend_from_slice(content.key().as_bytes());
        p.extend_from_slice(&self.canary.to_le_bytes());
        p.extend_from_slice(&self.plaintexts_made.to_le_bytes());
        p.resize(p.len().max(body_bytes as usize), b'.');
        p
    }

    fn churn(&mut self, now: SimTime, d: DeviceId, sched: &mut Scheduler<'_, Event>) {
        if self.drained {
            return;
        }
        let online = self.nodes.devices[d.index()].is_online();
        self.with_fx(now, Addr::Device(d), sched, |sim, fx| {
            let dev = &mut sim.nodes.devices[d.index()];
            if online {
                dev.go_offline(&sim.dir, fx);
            } else {
                dev.go_online(now, &sim.device_cfg, &sim.dir, &mut sim.keys, fx);
            }
        });
        let mean = if online {
            self.churn_means.1
        } else {
            self.churn_means.0
        };
        let t = now.plus(exponential_ns(&mut self.churn_rng, mean).max(1));
        if t < self.send_end {
            sched.at(t, Event::Churn(d));
        }
    }

    fn drain_start(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        self.drained = true;
        for i in 0..self.nodes.devices.len() {
            if !self.nodes.devices[i].is_online() {
                self.with_fx(now, Addr::Device(DeviceId(i as u32)), sched, |sim, fx| {
                    sim.nodes.devices[i].go_online(
                        now,
                        &sim.device_cfg,
                        &sim.dir,
                        &mut sim.keys,
                        fx,
                    )
                });
            }
        }
    }

    fn sample(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        let interval = self.s.run.interval_ns;
        let offline_queue = self.nodes.chat.queued()
            + self
                .nodes
                .partner_servers
                .iter()
                .flatten()
                .map(|p| p.queued())
                .sum::<u64>();
        let adapters_util = {
            let n = self.servers.adapters.len().max(1);
            let mut acc = 0.0;
            for c in self.servers.adapters.iter_mut() {
                acc += c.take_interval_utilization(interval);
            }
            acc / n as f64
        };
        for c in self.servers.partner_servers.iter_mut() {
            c.take_interval_utilization(interval);
        }
        let row = Sample {
            t_s: now.as_secs_f64(),
            sent: std::mem::take(&mut self.interval_sent),
            delivered: std::mem::take(&mut self.interval_shown),
            // The ledger fills these in (`LedgerFeed::sample`).
            in_flight: 0,
            offline_queue,
            gateway_queue: self.servers.gateway.in_system(),
            gateway_utilization: self.servers.gateway.take_interval_utilization(interval),
            chat_server_utilization: self.servers.chat.take_interval_utilization(interval),
            adapter_utilization: adapters_util,
            latency: IntervalLatency::default(),
        };
        self.series.rows.push(row);
        self.ledger.sample();
        let next = now.plus(interval);
        if next.as_nanos() <= self.s.run.duration_ns + self.s.run.drain_ns {
            sched.at(next, Event::Sample);
        }
    }
}

impl Sim {
    fn fault(&mut self, now: SimTime, index: usize, edge: Edge, sched: &mut Scheduler<'_, Event>) {
        let f = self.s.faults[index].clone();
        let start = edge == Edge::Start;
        self.count(
            if start {
                "faults_started"
            } else {
                "faults_healed"
            },
            1,
        );
        match &f.kind {
            FaultKind::Partition { a, b, one_way } => {
                let (a, b) = (faults::side(a), faults::side(b));
                if start {
                    self.partitions.cut(a, b, *one_way);
                } else {
                    self.partitions.heal(a, b, *one_way);
                }
            }
            FaultKind::Crash { node, durable } => self.crash(now, node, *durable, start, sched),
            FaultKind::Slow { node, factor } => {
                let factor = if start { *factor } else { 1.0 };
                for cpu in self.node_cpus(node) {
                    cpu.slow_factor = factor;
                }
            }
            FaultKind::Loss { link, rate } => self.overlay(*link, LinkEffect::Loss, *rate, start),
            FaultKind::Duplicate { link, rate } => {
                self.overlay(*link, LinkEffect::Duplicate, *rate, start)
            }
            FaultKind::Reorder { link, rate } => {
                self.overlay(*link, LinkEffect::Reorder, *rate, start)
            }
            FaultKind::Tamper { link, rate } => {
                self.overlay(*link, LinkEffect::Tamper, *rate, start)
            }
            FaultKind::Replay { link, rate } => {
                self.overlay(*link, LinkEffect::Replay, *rate, start)
            }
            FaultKind::Toggle { provider, users } => self.toggle(index, *provider, *users, start),
            FaultKind::Surge { factor } => {
                if start {
                    self.surges.push(*factor);
                } else if let Some(i) = self.surges.iter().position(|f| f == factor) {
                    self.surges.remove(i);
                }
            }
            FaultKind::ClockSkew {
                node,
                offset_ns,
                behind,
            } => {
                let offset = if *behind {
                    -(*offset_ns as i64)
                } else {
                    *offset_ns as i64
                };
                let offset = if start { offset } else { 0 };
                if let Endpoint::Clients(p) = node {
                    for d in self.dir.devices_of_provider(ProviderId(*p as u32)) {
                        self.nodes.devices[d as usize].set_clock_offset(offset);
                    }
                }
                // Servers stamp nothing the model reads: their skew changes no behaviour.
            }
            FaultKind::PushLoss { provider, rate } => {
                let list = &mut self.push_loss[*provider];
                if start {
                    list.push(*rate);
                } else if let Some(i) = list.iter().position(|r| r == rate) {
                    list.remove(i);
                }
            }
            FaultKind::PrekeyDrain {
                provider,
                users,
                rate,
            } => {
                if start {
                    let range = self.dir.users_of(ProviderId(*provider as u32));
                    let victims: Vec<DeviceId> =
                        faults::pick_users(&self.tree, index, range, *users)
                            .into_iter()
                            .flat_map(|u| self.dir.devices_of(u))
                            .collect();
                    self.drained_victims.insert(index, victims);
                    let per_tick = rate.ceil().max(1.0) as u64;
                    sched.at(
                        now,
                        Event::DrainTick {
                            index: index as u16,
                            fetches: per_tick as u32,
                        },
                    );
                } else {
                    self.drained_victims.remove(&index);
                }
            }
            FaultKind::IdentityReset { provider, users } => {
                // Reinstalls: a new identity on every device of the picked users; their peers
                // find out through retry receipts and the new prekey messages.
                if start {
                    let range = self.dir.users_of(ProviderId(*provider as u32));
                    let picked = faults::pick_users(&self.tree, index, range, *users);
                    self.count("identity_resets", picked.len() as u64);
                    for u in picked {
                        for d in self.dir.devices_of(u) {
                            self.keys.reset_identity(d);
                        }
                    }
                }
            }
        }
    }

    fn overlay(&mut self, link: HopClass, effect: LinkEffect, rate: f64, start: bool) {
        let m = &mut self.link_models[link.index()];
        if start {
            m.add_overlay(effect, rate);
        } else {
            m.remove_overlay(effect, rate);
        }
    }

    fn node_cpus(&mut self, node: &Endpoint) -> Vec<&mut Cpu> {
        match *node {
            Endpoint::Gateway => vec![&mut self.servers.gateway],
            Endpoint::Provider(0) => vec![&mut self.servers.chat],
            Endpoint::Provider(p) => {
                let (a, ps) = (
                    &mut self.servers.adapters,
                    &mut self.servers.partner_servers,
                );
                a.get_mut(p).into_iter().chain(ps.get_mut(p)).collect()
            }
            Endpoint::Clients(_) => Vec::new(),
        }
    }

    /// A crash takes a node down (frames to it are dropped); without durable storage its
    /// queues are lost. On restart, the devices connected through it reconnect.
    fn crash(
        &mut self,
        now: SimTime,
        node: &Endpoint,
        durable: bool,
        start: bool,
        sched: &mut Scheduler<'_, Event>,
    ) {
        match *node {
            Endpoint::Gateway => self.servers.gateway_down = start,
            Endpoint::Provider(0) => {
                self.servers.chat_down = start;
                if start {
                    self.nodes
                        .chat
                        .crash(durable && !self.bugs.break_durability);
                }
            }
            Endpoint::Provider(p) => {
                self.servers.provider_down[p] = start;
                if start {
                    if let Some(ps) = self.nodes.partner_servers[p].as_mut() {
                        ps.crash(durable && !self.bugs.break_durability);
                    }
                }
            }
            Endpoint::Clients(_) => {}
        }
        if !start {
            for i in 0..self.nodes.devices.len() {
                if self.nodes.devices[i].is_online() {
                    self.with_fx(now, Addr::Device(DeviceId(i as u32)), sched, |sim, fx| {
                        sim.nodes.devices[i].reconnect(now, &sim.dir, fx)
                    });
                }
            }
        }
    }

    fn toggle(&mut self, index: usize, provider: usize, share: f64, start: bool) {
        if start {
            let range = self.dir.users_of(ProviderId(provider as u32));
            let users: Vec<UserId> = faults::pick_users(&self.tree, index, range, share)
                .into_iter()
                .filter(|u| self.dir.is_enlisted(*u))
                .collect();
            for u in &users {
                self.dir.set_enlisted(*u, false);
            }
            self.count("users_toggled_off", users.len() as u64);
            self.toggled.insert(index, users);
        } else if let Some(users) = self.toggled.remove(&index) {
            for u in users {
                self.dir.set_enlisted(u, true);
            }
        }
    }
}

impl Sim {
    /// The gateway's transport cost for a frame: a Noise handshake when a partner device
    /// connects, an AEAD (decrypt on the way in, encrypt on the way out) for every frame on a
    /// partner connection. Charged to the gateway's CPU; counted as crypto work.
    fn noise_cost(&mut self, slot: u32) -> u64 {
        let Some(f) = self.frames.get(slot) else {
            return 0;
        };
        let bytes = f.frame.wire_bytes() as u64;
        let handshake = matches!(f.frame, Frame::Connect { .. }) && f.from != Addr::ChatServer;
        let mut ns = self.keys.charge_gateway(Op::NoiseAead, bytes);
        if handshake {
            ns += self.keys.charge_gateway(Op::NoiseHandshake, 0);
        }
        ns
    }

    /// The prekey-drain adversary's fetches for one second, while its fault lasts.
    fn drain_tick(
        &mut self,
        now: SimTime,
        index: usize,
        fetches: u32,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let Some(victims) = self.drained_victims.get(&index) else {
            return;
        };
        for d in victims {
            for _ in 0..fetches {
                self.keys.drain_one(now, index as u32, *d);
            }
        }
        self.count(
            "prekey_drain_fetches",
            victims.len() as u64 * fetches as u64,
        );
        sched.at(
            now.plus(1_000_000_000),
            Event::DrainTick {
                index: index as u16,
                fetches,
            },
        );
    }

    /// Every fault's window with a readable label, for the checker's evidence.
    fn fault_windows(&self) -> Vec<FaultWindow> {
        use crate::engine::time::format_duration_ns as d;
        let name = |e: &Endpoint| match e {
            Endpoint::Gateway => "gateway".to_string(),
            Endpoint::Provider(p) => self.s.providers[*p].name.clone(),
            Endpoint::Clients(p) => format!("{}-clients", self.s.providers[*p].name),
        };
        let pname = |p: &usize| self.s.providers[*p].name.clone();
        self.s
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let what = match &f.kind {
                    FaultKind::Partition { a, b, one_way } => {
                        format!(
                            "partition {} {} {}",
                            name(a),
                            if *one_way { "->" } else { "<->" },
                            name(b)
                        )
                    }
                    FaultKind::Crash { node, durable } => {
                        format!(
                            "crash {} ({})",
                            name(node),
                            if *durable { "durable" } else { "volatile" }
                        )
                    }
                    FaultKind::Slow { node, factor } => format!("slow {} x{factor}", name(node)),
                    FaultKind::Loss { link, rate } => format!("loss {} {rate}", link.key()),
                    FaultKind::Duplicate { link, rate } => {
                        format!("duplicate {} {rate}", link.key())
                    }
                    FaultKind::Reorder { link, rate } => format!("reorder {} {rate}", link.key()),
                    FaultKind::Tamper { link, rate } => format!("tamper {} {rate}", link.key()),
                    FaultKind::Replay { link, rate } => format!("replay {} {rate}", link.key()),
                    FaultKind::IdentityReset { provider, users } => {
                        format!("identity_reset {} {users}", pname(provider))
                    }
                    FaultKind::Toggle { provider, users } => {
                        format!("toggle {} {users}", pname(provider))
                    }
                    FaultKind::Surge { factor } => format!("surge x{factor}"),
                    FaultKind::ClockSkew {
                        node,
                        offset_ns,
                        behind,
                    } => {
                        format!(
                            "clock_skew {} {}{}",
                            name(node),
                            if *behind { "-" } else { "+" },
                            d(*offset_ns)
                        )
                    }
                    FaultKind::PushLoss { provider, rate } => {
                        format!("push_loss {} {rate}", pname(provider))
                    }
                    FaultKind::PrekeyDrain { provider, .. } => {
                        format!("prekey_drain {}", pname(provider))
                    }
                };
                let window = match f.end_ns() {
                    Some(end) => format!("{}..{}", d(f.at_ns), d(end)),
                    None => format!("{}..end", d(f.at_ns)),
                };
                // A reinstall is one instant: it has healed once it happened.
                let one_shot = matches!(f.kind, FaultKind::IdentityReset { .. });
                FaultWindow {
                    label: format!("fault[{i}] {what} at {window}"),
                    at_ns: f.at_ns,
                    end_ns: f.end_ns().or(one_shot.then_some(f.at_ns)),
                }
            })
            .collect()
    }
}

impl World for Sim {
    type Event = Event;

    fn handle(&mut self, now: SimTime, event: Event, sched: &mut Scheduler<'_, Event>) {
        match event {
            Event::Arrive { slot, .. } => self.arrive(now, slot, sched),
            Event::DrainTick { index, fetches } => {
                self.drain_tick(now, index as usize, fetches, sched)
            }
            Event::Emit(slot) => {
                if let Some(f) = self.frames.take(slot) {
                    self.transmit(now, f.from, f.to, f.frame, sched);
                }
            }
            Event::Processed(slot) => self.process(now, slot, sched),
            Event::Timer { node, timer } => {
                self.with_fx(now, node, sched, |sim, fx| sim.timer(now, node, timer, fx))
            }
            Event::RetryTimersDue => {
                for (node, timer) in self.retry_timers.take_due(now) {
                    self.with_fx(now, node, sched, |sim, fx| sim.timer(now, node, timer, fx));
                }
                if let Some(wake) = self.retry_timers.rewake() {
                    sched.at(wake, Event::RetryTimersDue);
                }
            }
            Event::Compose => {
                let d = self.workload.draft(&self.dir);
                match d.group {
                    Some(g) => self.compose_group(now, d, g, sched),
                    None => self.compose(now, d.from, d.to, sched),
                }
                // The next arrival's pair, guessed now: its state comes into the cache while
                // the events before it run (see `prefetch`).
                self.next_pair = self.workload.peek_pair();
                if let Some((from, to)) = self.next_pair {
                    self.prefetch_conversation(from, to);
                }
                // Two arrivals further, the users' device ranges, which the conversation hint
                // above reads first.
                if let Some((from, to)) = self.workload.peek_pair_at(2) {
                    self.dir.prefetch_user(from);
                    self.dir.prefetch_user(to);
                }
                let surge: f64 = self.surges.iter().product();
                if let Some(gap) = self.workload.next_gap_ns(surge) {
                    if now.plus(gap) < self.send_end {
                        sched.at(now.plus(gap), Event::Compose);
                    }
                }
            }
            Event::Reply { from, to } => self.compose(now, from, to, sched),
            Event::GroupReply { from, group } => {
                // A member who left since does not answer.
                if self.workload.groups.get(group).members.contains(&from) {
                    let d = self.workload.draft_group(from, group, &self.dir);
                    self.compose_group(now, d, group, sched);
                }
            }
            Event::Read { msg, device } => {
                let Some(sender) = self.ledger.parties(msg).map(|(from, _)| from) else {
                    return;
                };
                self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
                    sim.nodes.devices[device.index()].read(msg, sender, &sim.dir, fx)
                });
            }
            Event::Churn(d) => self.churn(now, d, sched),
            Event::Fault { index, edge } => self.fault(now, index as usize, edge, sched),
            Event::Sample => self.sample(now, sched),
            Event::DrainStart => self.drain_start(now, sched),
        }
    }

    const PREFETCH: bool = true;

    /// Asks the cache for what the next event reads first (its frame's slot; a device's state,
    /// keys and uplink; a timer's device), so that at a million devices those misses overlap
    /// the current event instead of following it.
    fn prefetch(&self, next: &Event) {
        match *next {
            Event::Arrive {
                slot,
                to: Addr::Device(d),
            } => {
                // A device's frame reads the device, its keys and (for its ack) its uplink:
                // ask for all of them at once instead of one miss after the other.
                self.frames.prefetch(slot);
                if let Some(device) = self.nodes.devices.get(d.index()) {
                    prefetch(device);
                }
                self.keys.prefetch(d);
                self.links.prefetch_device(d);
            }
            Event::Processed(slot) => self.prefetch_frame_state(slot, true),
            Event::Arrive { slot, .. } | Event::Emit(slot) => self.frames.prefetch(slot),
            Event::Timer {
                node: Addr::Device(d),
                ..
            } => {
                if let Some(device) = self.nodes.devices.get(d.index()) {
                    prefetch(device);
                }
            }
            Event::Compose => {
                // The second level of the guessed pair's state: the sender's device and keys
                // were asked for at the previous arrival and are in the cache by now. The
                // sender is usually the phone (see `device_in_hand`).
                if let Some((from, to)) = self.next_pair {
                    self.prefetch_seal(self.dir.primary_device(from), to);
                }
            }
            _ => {}
        }
    }

    fn fingerprint_word(&self, event: &Event) -> u64 {
        match *event {
            // The slot stands for the frame: slots are handed out deterministically, and reading
            // the frame itself here would cost a cache miss per event.
            Event::Arrive { slot, .. } => (1 << 60) ^ slot as u64,
            Event::Processed(slot) => (2 << 60) ^ slot as u64,
            Event::Emit(slot) => (11 << 60) ^ slot as u64,
            Event::DrainTick { index, .. } => (12 << 60) ^ index as u64,
            Event::Timer { node, timer } => (3 << 60) ^ node.code() ^ timer.code().rotate_left(17),
            Event::Compose => 4 << 60,
            Event::Reply { from, to } => (5 << 60) ^ ((from.0 as u64) << 24) ^ to.0 as u64,
            Event::GroupReply { from, group } => {
                (13 << 60) ^ ((from.0 as u64) << 24) ^ group.0 as u64
            }
            Event::Read { msg, device } => (6 << 60) ^ (msg.0 << 20) ^ device.0 as u64,
            Event::Churn(d) => (7 << 60) ^ d.0 as u64,
            Event::Fault { index, .. } => (8 << 60) ^ index as u64,
            Event::Sample => 9 << 60,
            Event::DrainStart => 10 << 60,
            Event::RetryTimersDue => 14 << 60,
        }
    }
}

impl Sim {
    fn timer(&mut self, now: SimTime, node: Addr, timer: TimerKind, fx: &mut Effects) {
        if self.is_down(node) {
            return;
        }
        if let (TimerKind::MediaRetry, Addr::Device(d)) = (timer, node) {
            let online = self.nodes.devices[d.index()].is_online();
            return self.media.timer(now, d, online, &self.dir, fx);
        }
        match node {
            Addr::Device(d) => self.nodes.devices[d.index()].handle_timer(
                now,
                timer,
                &self.device_cfg,
                &self.dir,
                fx,
            ),
            Addr::ChatServer => self.nodes.chat.handle_timer(now, timer, &self.dir, fx),
            Addr::PartnerServer(p) => {
                if let Some(ps) = self.nodes.partner_servers[p.index()].as_mut() {
                    ps.handle_timer(now, timer, fx);
                }
            }
            Addr::Gateway | Addr::Adapter(_) | Addr::MediaStore(_) | Addr::MediaProxy => {}
        }
    }

    /// The run's results. Takes what they need out of the simulation and leaves the rest of
    /// its state for the caller to drop.
    fn finish(&mut self, outcome: engine::RunOutcome, scenario_hash: String) -> RunResult {
        let kept = self.ledger.finish();
        for (row, (in_flight, latency)) in self.series.rows.iter_mut().zip(kept.samples) {
            row.in_flight = in_flight;
            row.latency = latency;
        }
        let ledger = kept.ledger;
        let elapsed = outcome.end_time.as_nanos().max(1);
        let util = |c: &Cpu| Utilization {
            utilization_mean: c.mean_utilization(elapsed),
            utilization_peak: c.peak_utilization,
        };
        let mut nodes = BTreeMap::new();
        nodes.insert("gateway".to_string(), util(&self.servers.gateway));
        nodes.insert("chat_server".to_string(), util(&self.servers.chat));
        let adapters: Vec<&Cpu> = self
            .servers
            .adapters
            .iter()
            .enumerate()
            .filter(|(p, _)| self.nodes.adapters[*p].is_some())
            .map(|(_, c)| c)
            .collect();
        if !adapters.is_empty() {
            let n = adapters.len() as f64;
            nodes.insert(
                "adapter".to_string(),
                Utilization {
                    utilization_mean: adapters
                        .iter()
                        .map(|c| c.mean_utilization(elapsed))
                        .sum::<f64>()
                        / n,
                    utilization_peak: adapters
                        .iter()
                        .map(|c| c.peak_utilization)
                        .fold(0.0, f64::max),
                },
            );
        }
        self.flush_frame_counts();
        let rejected = self.servers.gateway.rejected;
        self.count("gateway_queue_rejected", rejected);
        let rl = self.nodes.gateway.rate_limited;
        self.count("gateway_rate_limited", rl);
        let shaped = self.nodes.gateway.shaped;
        self.count("gateway_shaped", shaped);
        let refused = self.nodes.gateway.refused;
        self.count("gateway_refused", refused);
        let pushes: u64 = self
            .nodes
            .partner_servers
            .iter()
            .flatten()
            .map(|p| p.pushes_sent())
            .sum();
        self.count("partner_pushes", pushes);
        let (sync, synced) = ledger.records().iter().fold((0, 0), |(a, b), r| {
            (
                a + r.sync_mask.count_ones() as u64,
                b + (r.synced_mask & r.sync_mask).count_ones() as u64,
            )
        });
        if sync > 0 {
            self.count("sync_copies", sync);
            self.count("sync_copies_shown", synced);
        }
        if self.workload.group_leaves > 0 {
            let leaves = self.workload.group_leaves;
            self.count("group_leaves", leaves);
        }
        self.count("events_processed", outcome.events_processed);
        let upstream = self.media.proxy_upstream_failures();
        if upstream > 0 {
            self.count("media_proxy_upstream_failures", upstream);
        }
        let windows = self.fault_windows();
        let dir = &self.dir;
        let names: Vec<String> = self.s.providers.iter().map(|p| p.name.clone()).collect();
        let user = |u: UserId| format!("user {} ({})", u.0, names[dir.provider_of_user(u).index()]);
        let end_ns = outcome.end_time.as_nanos();
        let violations = checker::violations(&ledger, &windows, &user, end_ns);
        let liveness = checker::liveness(&ledger, &windows, end_ns);
        let mut crypto = self.keys.counts.flatten();
        crypto.insert(
            "security_code_changed".to_string(),
            self.keys.security_code_changed,
        );
        crypto.insert(
            "decrypt_failed_events".to_string(),
            ledger.counts.decrypt_failed_events,
        );
        let facts = RunFacts {
            crypto,
            media: self.media.summary(),
            violations,
            liveness,
            scenario: self.s.run.name.clone(),
            scenario_hash,
            seed: self.s.run.seed,
            fingerprint: outcome.fingerprint.hex(),
            events_processed: outcome.events_processed,
            end_time_s: outcome.end_time.as_secs_f64(),
            send_window_s: self.s.run.duration_ns as f64 / 1e9,
            delivered_per_s_peak: self.series.delivered_per_s_peak(),
            replay_rejected: self.replay_rejected,
            nodes,
            work: self.work.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let summary = Summary::build(&ledger, facts, &self.s.expect);
        RunResult {
            verified_plaintexts: ledger.counts.verified,
            media_verified: self.media.verified,
            media_blobs_opened: self.media.blobs_opened,
            media_disagreed: self.media.disagreed,
            canary: self.canary,
            tapped: std::mem::take(&mut self.tapped),
            crypto_charged_ns: self.keys.counts.by_node().values().map(|(_, ns)| ns).sum(),
            summary,
            timeseries: std::mem::take(&mut self.series),
            ledger,
            stop: outcome.stop,
            trace: std::mem::take(&mut self.trace_lines),
        }
    }
}

/// A frame as an infrastructure node sees it: its debug text and every ciphertext byte.
fn tap_bytes(frame: &Frame) -> Vec<u8> {
    let mut out = format!("{frame:?}").into_bytes();
    if let Frame::Submit(e) | Frame::Deliver(e) = frame {
        let cts = std::iter::once(&e.ciphertext).chain(e.per_device.iter().map(|(_, c)| c));
        for c in cts {
            out.extend_from_slice(c.bytes.as_deref().unwrap_or(&[]));
        }
    }
    out
}

/// Runs a validated scenario to the end of its drain.
pub fn run_scenario(s: &Scenario, scenario_hash: &str) -> RunResult {
    run_with(s, scenario_hash, RunOptions::default())
}

/// Runs a scenario and logs the frames `trace` selects.
pub fn run_traced(s: &Scenario, scenario_hash: &str, trace: Option<TraceFilter>) -> RunResult {
    run_with(
        s,
        scenario_hash,
        RunOptions {
            trace,
            ..RunOptions::default()
        },
    )
}

/// How to run, beyond the scenario itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    pub trace: Option<TraceFilter>,
    /// Deliberate bugs; only test builds can turn them on.
    pub bugs: Bugs,
    /// Keep a copy of everything the gateway, the adapters and the partner servers handle
    /// (`RunResult::tapped`), for metadata-isolation tests.
    pub tap: bool,
}

/// Runs a scenario with options.
pub fn run_with(s: &Scenario, scenario_hash: &str, options: RunOptions) -> RunResult {
    let s = &crate::faults::swarm::materialize(s);
    let mut sim = Sim::new(s.clone(), options.bugs);
    sim.trace = options.trace;
    sim.device_cfg.bugs = options.bugs;
    sim.bugs = options.bugs;
    sim.tap = options.tap;
    let mut q = EventQueue::new();
    sim.seed_events(&mut q);
    let limits = Limits {
        events_max: s.run.events_max,
        time_max: SimTime::from_nanos(s.run.duration_ns.saturating_add(s.run.drain_ns)),
    };
    let outcome = engine::run(&mut sim, &mut q, limits);
    let result = sim.finish(outcome, scenario_hash.to_string());
    drop_aside((sim, q));
    result
}

/// Drops a finished run's state on a thread of its own: freeing a million devices' state
/// takes about a second, which the caller spends writing results instead. Nothing observable
/// depends on when memory is freed.
fn drop_aside<T: Send + 'static>(state: T) {
    if std::thread::Builder::new()
        .name("drop-sim".into())
        .spawn(move || drop(state))
        .is_err()
    {
        // No thread to spare: the state was moved into the failed closure and dropped here.
    }
}
