//! The simulated world: the driver's state, grouped into parts, and the event loop handler that
//! hands each event to the file that knows about it:
//!
//! - `build.rs`: the world built from the scenario, and its first events;
//! - `hop.rs`: one hop of a frame (emit, transmit, arrive, CPU, handle) and node timers; its
//!   part is [`hop::Transport`];
//! - `compose.rs`: the workload (messages, replies, reads, churn, drain); its part is
//!   [`compose::Traffic`];
//! - `observe.rs`: trace, taps, counters, sampling and the summary; its part is
//!   [`observe::Observer`];
//! - `faulting.rs`: the mechanisms faults use ([`crate::faults::FaultTarget`]); what a fault
//!   does is decided in `faults/`, the active faults' state is [`crate::faults::ActiveFaults`];
//! - `media_hooks.rs`: where media messages and frames join the paths above;
//! - `on_hosts.rs`: outputs timed by the rounds of a host's or the load generator's cores;
//! - `hop_marks.rs`: the traced messages' stages, for `validate`'s step-by-step comparison.

mod build;
mod compose;
mod faulting;
mod hop;
mod hop_marks;
mod inboxes;
mod media_hooks;
mod metadata;
mod observe;
mod on_hosts;

use super::cpu::Cpu;
use super::host_cores::HostCores;
use super::media::MediaWorld;
use super::timers::TimerFifo;
use crate::directory::Directory;
use crate::engine::prefetch::prefetch;
use crate::engine::{self, EventQueue, Limits, RngTree, Scheduler, SimTime, World};
use crate::faults::{ActiveFaults, Edge};
use crate::metrics::feed::LedgerFeed;
use crate::metrics::RunResult;
use crate::nodes::adapter::Adapter;
use crate::nodes::buggify::Bugs;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::device::{Device, DeviceConfig, DeviceCtx};
use crate::nodes::gateway::Gateway;
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::Keyring;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::{Addr, Effects, TimerKind};
use crate::scenario::Scenario;
use crate::wire::{DeviceId, GroupId, MsgId, UserId};
use compose::Traffic;
use hop::Transport;
use observe::Observer;

pub use build::build_directory;
pub use observe::TraceFilter;

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
    /// The load generator's core takes a 1:1 arrival that waited for it.
    Send {
        from: UserId,
        to: UserId,
    },
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
    /// The cores every server node shares (`[capacity] host`); `None`: each has its own.
    host: Option<HostCores>,
    /// The cores every device shares (`[capacity] generator`); `None`: each has its own.
    generator: Option<HostCores>,
    /// The load generator is composing a message it took just now (its item on the
    /// generator's cores begins, rather than ends, now).
    composing: bool,
    chat_down: bool,
    gateway_down: bool,
    provider_down: Vec<bool>,
}

/// The driver's state. The nodes, the directory and the key ring are shared by every file;
/// the rest is in parts, each kept by the file that works on it.
struct Sim {
    s: Scenario,
    tree: RngTree,
    dir: Directory,
    nodes: Nodes,
    servers: Servers,
    device_cfg: DeviceConfig,
    /// Devices' Signal state.
    keys: Keyring,
    /// The gatekeeper's key directory: prekey pools and the bundle-fetch limiter.
    key_directory: KeyDirectory,
    bugs: Bugs,
    /// The effects buffer every node call writes into (see [`Sim::with_fx`]).
    fx: Effects,
    /// Outbox retries and redeliveries armed with the initial delay: almost all are cancelled
    /// by the ack, and kept out of the event queue they cost nothing more.
    retry_timers: TimerFifo,
    /// Links, partitions and the frames on their way (hop.rs).
    net: Transport,
    ledger: LedgerFeed,
    /// The workload and what composing messages keeps between them (compose.rs).
    traffic: Traffic,
    /// What the active faults hold (see `faults/act.rs`).
    faults: ActiveFaults,
    /// Trace, taps, counters and the time series (observe.rs).
    obs: Observer,
    /// Media stores, the media proxy, devices' media transfers (sim/media.rs).
    media: MediaWorld,
    /// The traced messages' stages (`RunOptions::hops`; hop_marks.rs).
    hop_marks: Option<hop_marks::HopMarks>,
}

impl Sim {
    /// Device `d`, and what its inputs need ([`DeviceCtx`]) borrowed beside it.
    fn device_cx<'a>(
        &'a mut self,
        d: DeviceId,
        now: SimTime,
        fx: &'a mut Effects,
    ) -> (&'a mut Device, DeviceCtx<'a>) {
        let cx = DeviceCtx {
            now,
            cfg: &self.device_cfg,
            dir: &self.dir,
            keys: &mut self.keys,
            key_directory: &mut self.key_directory,
            fx,
        };
        (&mut self.nodes.devices[d.index()], cx)
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
            Event::Emit(slot) => self.emit(now, slot, sched),
            Event::Processed(slot) => self.process(now, slot, sched),
            Event::Timer { node, timer } => {
                self.with_fx(now, node, sched, |sim, fx| sim.timer(now, node, timer, fx))
            }
            Event::RetryTimersDue => self.retry_timers_due(now, sched),
            Event::Compose => self.arrival(now, sched),
            Event::Send { from, to } => self.send_taken(now, from, to, sched),
            Event::Reply { from, to } => self.compose(now, from, to, sched),
            Event::GroupReply { from, group } => self.group_reply(now, from, group, sched),
            Event::Read { msg, device } => self.read(now, msg, device, sched),
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
                self.net.frames.prefetch(slot);
                if let Some(device) = self.nodes.devices.get(d.index()) {
                    prefetch(device);
                }
                self.keys.prefetch(d);
                self.net.links.prefetch_device(d);
            }
            Event::Processed(slot) => self.prefetch_frame_state(slot, true),
            Event::Arrive { slot, .. } | Event::Emit(slot) => self.net.frames.prefetch(slot),
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
                if let Some((from, to)) = self.traffic.next_pair {
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
            Event::Send { from, to } => (15 << 60) ^ ((from.0 as u64) << 24) ^ to.0 as u64,
        }
    }
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
    /// Record one message in 64 stage by stage (`RunResult::hops`), as a live run does.
    pub hops: bool,
}

/// Runs a scenario with options.
pub fn run_with(s: &Scenario, scenario_hash: &str, options: RunOptions) -> RunResult {
    let s = &crate::faults::swarm::materialize(s);
    let mut sim = Sim::new(s.clone(), options.bugs);
    sim.obs.trace = options.trace;
    sim.device_cfg.bugs = options.bugs;
    sim.bugs = options.bugs;
    sim.obs.tap = options.tap;
    if options.hops {
        sim.hop_marks = Some(Default::default());
    }
    let mut q = EventQueue::new();
    sim.seed_events(&mut q);
    let limits = Limits {
        events_max: s.run.events_max,
        time_max: SimTime::from_nanos(s.run.duration_ns.saturating_add(s.run.drain_ns)),
    };
    let outcome = engine::run(&mut sim, &mut q, limits);
    let result = sim.finish(outcome, scenario_hash.to_string());
    // Freed here, on the thread that allocated it. A thread of its own for the drop (as
    // before) made every free a cross-thread free, which this thread then paid for in the
    // allocator's page collection while it wrote the results: a 1 M-user run spent 1.3 s
    // after its last event that way, 0.7 s with the drop here (perf, two runs each).
    drop((sim, q));
    result
}
