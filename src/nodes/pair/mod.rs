//! A hand-driven harness for protocol tests (quinn-proto's `tests/util.rs` `Pair`): a few
//! sans-IO nodes, a fake link between them and a fake clock, moved one frame or one timer at a
//! time. The simulator's driver (`sim/world`) hides the protocol under links, CPU queues and
//! workload; here a test says "deliver the next frame", "lose it", "let the next timer fire" and
//! reads what each node sent, armed and recorded.
//!
//! Every call into a node's API lives in this file, so that a change of a node's signature
//! (a context struct, a split module) is mended here and not in every test: tests speak the
//! harness's vocabulary only ([`Setup`], [`Pair`], [`Hop`], [`Kind`], [`Reaction`]).
//!
//! How it drives, as the simulator does (`sim/world/hop.rs`): frames, timers and crashes reach
//! their node through the drivers' shared dispatch (`nodes/dispatch.rs`); a frame sent to a
//! node of the harness waits on the link until a test delivers it; a frame to any other
//! address is only logged (`outside`); timers fire in time order, cancelled ones never, stale
//! ones reach the node (which ignores them). The clock only moves forward, to a delivered
//! frame's arrival time or to a fired timer's instant, and never past an armed timer without
//! firing it.

use super::adapter::Adapter;
use super::chat_server::ChatServer;
use super::device::{Device, DeviceConfig, GroupSend};
use super::dispatch::{self};
use super::gateway::Gateway;
use super::key_directory::KeyDirectory;
use super::keyring::Keyring;
use super::partner_server::PartnerServer;
use super::{Addr, Effects, Output, TimerKind};
use crate::directory::Directory;
pub use crate::directory::PartnerLink;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::scenario::ContentKind;
use crate::wire::{DeviceId, Frame, GroupId, MsgId, ProviderId, UserId};
use std::collections::VecDeque;
use std::sync::Arc;

mod frames;
mod inspect;
mod lending;
mod setup;
pub use frames::{digest, Hop, Kind, Mark, Reaction, Recorded};
use lending::lend;
pub use setup::Setup;

pub const S: u64 = 1_000_000_000;

enum Node {
    Device(Box<Device>),
    Chat(ChatServer),
    Gateway(Gateway),
    Partner(PartnerServer),
    Adapter(Adapter),
}

type LossRule = Box<dyn Fn(&Hop) -> bool>;

/// Nodes, the link between them, their timers and the clock.
pub struct Pair {
    now: SimTime,
    dir: Directory,
    keys: Keyring,
    key_directory: KeyDirectory,
    device_cfg: DeviceConfig,
    nodes: Vec<(Addr, Node)>,
    /// Frames in flight between nodes of the pair, in arrival order (unless a test reordered).
    link: VecDeque<Hop>,
    /// Armed timers: node, instant, kind (several of a kind when a node re-armed).
    timers: Vec<(Addr, SimTime, TimerKind)>,
    /// Every frame any node sent, in order.
    log: Vec<Hop>,
    /// Frames sent to addresses outside the pair.
    outside: Vec<Hop>,
    /// Frames the loss rules took.
    lost: Vec<Hop>,
    loss: Vec<LossRule>,
    ledger: Vec<Recorded>,
    next_hop: u64,
    next_msg: u64,
    latency_ns: u64,
    steps: u32,
    steps_max: u32,
}

impl Pair {
    // ---- what users and faults do (what tests read of a pair: inspect.rs)

    /// The user on `d` writes to `to` (32 bytes of text). Panics if the outbox is full.
    pub fn send(&mut self, d: DeviceId, to: UserId) -> MsgId {
        self.try_send(d, to, &[7; 32])
            .expect("the outbox took the message")
    }

    /// The user on `d` writes `plaintext` to `to`; `None` if the app refused it (outbox full).
    pub fn try_send(&mut self, d: DeviceId, to: UserId, plaintext: &[u8]) -> Option<MsgId> {
        let msg = MsgId(self.next_msg);
        let mut fx = Effects::default();
        let (dev, mut cx) = self.device_cx(d, &mut fx);
        let taken = dev.compose(&mut cx, msg, to, plaintext, ContentKind::Text);
        self.apply(Addr::Device(d), fx);
        taken.then(|| {
            self.next_msg += 1;
            msg
        })
    }

    /// The user on `d` writes to a group: member `k` of `members` gets message `first + k`.
    pub fn send_group(&mut self, d: DeviceId, group: GroupId, members: &[UserId]) -> MsgId {
        let msg = MsgId(self.next_msg);
        let send = GroupSend {
            hub: crate::wire::ProviderId(0),
            group,
            epoch: 0,
            members: Arc::from(members),
        };
        let mut fx = Effects::default();
        let (dev, mut cx) = self.device_cx(d, &mut fx);
        let taken = dev.compose_group(&mut cx, msg, &send, &[7; 32], ContentKind::Text);
        assert!(taken, "the outbox took the group message");
        self.apply(Addr::Device(d), fx);
        self.next_msg += members.len() as u64;
        msg
    }

    /// The user on `d` reads `msg` from `sender`: a read receipt goes back.
    pub fn read(&mut self, d: DeviceId, msg: MsgId, sender: UserId) -> Reaction {
        let mut fx = Effects::default();
        let (dev, mut cx) = self.device_cx(d, &mut fx);
        dev.read(&mut cx, msg, sender);
        self.apply(Addr::Device(d), fx)
    }

    pub fn online(&mut self, d: DeviceId) -> Reaction {
        let mut fx = Effects::default();
        let (dev, mut cx) = self.device_cx(d, &mut fx);
        dev.go_online(&mut cx);
        self.apply(Addr::Device(d), fx)
    }

    pub fn offline(&mut self, d: DeviceId) -> Reaction {
        let mut fx = Effects::default();
        let (dev, mut cx) = self.device_cx(d, &mut fx);
        dev.go_offline(&mut cx);
        self.apply(Addr::Device(d), fx)
    }

    /// Brings the devices online and lets every frame arrive (no timer fires).
    pub fn connect(&mut self, devices: &[DeviceId]) {
        for &d in devices {
            self.online(d);
        }
        self.deliver_all();
    }

    /// A reinstall: the device's identity and sessions are new; its peers do not know yet.
    pub fn reinstall(&mut self, d: DeviceId) {
        self.keys.reset_identity(d);
    }

    /// `server` crashes (what it loses per kind is the dispatch's; `durable` keeps a mailbox's
    /// queues) and its armed timers go with it.
    pub fn crash(&mut self, server: Addr, durable: bool) {
        let node = lend(
            &mut self.nodes,
            &self.device_cfg,
            &mut self.keys,
            &mut self.key_directory,
            server,
        );
        dispatch::crash(node, durable);
        self.timers.retain(|(n, _, _)| *n != server);
    }

    /// The crashed server is back: every online device of the pair reconnects to its servers
    /// (the simulator reconnects them all at once, too).
    pub fn restart(&mut self) {
        let devices: Vec<DeviceId> = self
            .nodes
            .iter()
            .filter_map(|(a, n)| match (a, n) {
                (Addr::Device(d), Node::Device(dev)) if dev.is_online() => Some(*d),
                _ => None,
            })
            .collect();
        for d in devices {
            let mut fx = Effects::default();
            let (dev, mut cx) = self.device_cx(d, &mut fx);
            dev.reconnect(&mut cx);
            self.apply(Addr::Device(d), fx);
        }
    }

    /// The user switches third-party chats on or off (the `toggle` fault): the directory
    /// changes, and the user's devices in the pair learn of a switch on, as the simulator's do.
    pub fn set_enlisted(&mut self, u: UserId, on: bool) {
        self.dir.set_enlisted(u, on);
        if on {
            for d in self.dir.devices_of(u) {
                if self.nodes.iter().any(|(a, _)| *a == Addr::Device(d)) {
                    lending::device_mut(&mut self.nodes, d).third_party_switched_on();
                }
            }
        }
    }

    // ---- the link

    /// Puts a frame on the link as if `from` had sent it now.
    pub fn inject(&mut self, from: Addr, to: Addr, frame: Frame) {
        let hop = self.hop(from, to, frame, 0);
        self.route(hop);
    }

    /// Delivers the first frame on the link (moving the clock to its arrival if later).
    pub fn deliver(&mut self) -> Reaction {
        let hop = self.link.pop_front().expect("a frame in flight");
        self.arrive(hop)
    }

    /// Delivers the first frame on the link that matches, ahead of the others.
    pub fn deliver_where(&mut self, pred: impl Fn(&Hop) -> bool) -> Reaction {
        let i = self.position(pred);
        let hop = self.link.remove(i).expect("in range");
        self.arrive(hop)
    }

    /// Delivers frames until none is in flight (no timer fires); returns how many.
    pub fn deliver_all(&mut self) -> usize {
        let mut n = 0;
        while !self.link.is_empty() {
            self.deliver();
            n += 1;
        }
        n
    }

    /// Loses the first frame on the link.
    pub fn drop_next(&mut self) -> Hop {
        self.link.pop_front().expect("a frame in flight")
    }

    /// Loses every frame in flight that matches; returns them.
    pub fn drop_where(&mut self, pred: impl Fn(&Hop) -> bool) -> Vec<Hop> {
        self.hold(pred)
    }

    /// Sends the first frame twice (the copy right behind it).
    pub fn duplicate_next(&mut self) {
        let mut copy = self.link.front().expect("a frame in flight").clone();
        copy.id = self.next_id();
        self.link.insert(1, copy);
    }

    /// The second frame in flight overtakes the first.
    pub fn swap_next(&mut self) {
        assert!(self.link.len() >= 2, "two frames in flight");
        self.link.swap(0, 1);
        let (a, b) = (self.link[0].at, self.link[1].at);
        self.link[0].at = a.min(b);
    }

    /// Flips bits of the first frame in flight (its MAC will fail).
    pub fn tamper_next(&mut self) {
        self.link.front_mut().expect("a frame in flight").tampered = true;
    }

    /// Takes the matching frames off the link (a test gives them back with [`Pair::release`]).
    pub fn hold(&mut self, pred: impl Fn(&Hop) -> bool) -> Vec<Hop> {
        let (held, kept): (Vec<Hop>, Vec<Hop>) =
            std::mem::take(&mut self.link).into_iter().partition(pred);
        self.link = kept.into();
        held
    }

    /// Puts held frames back on the link, behind what is there, arriving now at the earliest.
    pub fn release(&mut self, held: Vec<Hop>) {
        for mut hop in held {
            hop.at = hop.at.max(self.now);
            self.link.push_back(hop);
        }
    }

    /// From now on, every frame sent that matches is lost (until [`Pair::heal`]).
    pub fn lose(&mut self, rule: impl Fn(&Hop) -> bool + 'static) {
        self.loss.push(Box::new(rule));
    }
    pub fn heal(&mut self) {
        self.loss.clear();
    }

    // ---- time

    /// The earliest armed timer: its node, instant and kind.
    pub fn next_timer(&self) -> Option<(Addr, SimTime, TimerKind)> {
        self.timers.iter().min_by_key(|(_, at, _)| *at).copied()
    }

    /// Jumps the clock to the earliest armed timer and fires it (frames in flight wait).
    pub fn fire_timer(&mut self) -> Reaction {
        let i = (0..self.timers.len())
            .min_by_key(|&i| self.timers[i].1)
            .expect("a timer armed");
        let (node, at, kind) = self.timers.remove(i);
        self.fire(node, at, kind)
    }

    fn fire(&mut self, node: Addr, at: SimTime, kind: TimerKind) -> Reaction {
        self.step();
        self.now = self.now.max(at);
        let mut fx = Effects::default();
        let to = lend(
            &mut self.nodes,
            &self.device_cfg,
            &mut self.keys,
            &mut self.key_directory,
            node,
        );
        dispatch::handle_timer(to, self.now, kind, &self.dir, &mut fx);
        self.apply(node, fx)
    }

    /// Runs frames and timers in time order (a frame first at a tie) up to `until`, then sets
    /// the clock there. Returns how many steps it took.
    pub fn run_until(&mut self, until: SimTime) -> u32 {
        let start = self.steps;
        loop {
            let frame = self.link.front().map(|h| h.at.max(self.now));
            let timer = self.next_timer().map(|(_, at, _)| at);
            match (frame, timer) {
                (Some(f), t) if f <= until && t.is_none_or(|t| f <= t) => {
                    self.deliver();
                }
                (_, Some(t)) if t <= until => {
                    self.fire_timer();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
        self.steps - start
    }

    // ---- inside

    fn step(&mut self) {
        self.steps += 1;
        assert!(
            self.steps <= self.steps_max,
            "the pair took more than {} steps",
            self.steps_max
        );
    }

    fn next_id(&mut self) -> u64 {
        self.next_hop += 1;
        self.next_hop
    }

    fn position(&self, pred: impl Fn(&Hop) -> bool) -> usize {
        self.link
            .iter()
            .position(pred)
            .expect("a matching frame in flight")
    }

    fn node(&self, a: Addr) -> &Node {
        &self
            .nodes
            .iter()
            .find(|(n, _)| *n == a)
            .unwrap_or_else(|| panic!("{a:?} is not in the pair"))
            .1
    }

    fn device(&self, d: DeviceId) -> &Device {
        match self.node(Addr::Device(d)) {
            Node::Device(dev) => dev,
            _ => unreachable!(),
        }
    }

    fn has(&self, a: Addr) -> bool {
        self.nodes.iter().any(|(n, _)| *n == a)
    }

    fn hop(&mut self, from: Addr, to: Addr, frame: Frame, delay_ns: u64) -> Hop {
        Hop {
            from,
            to,
            frame,
            sent_at: self.now,
            at: self.now.plus(delay_ns + self.latency_ns),
            tampered: false,
            id: self.next_id(),
        }
    }

    /// Logs a sent frame and puts it where it goes: lost, outside, or on the link in arrival
    /// order.
    fn route(&mut self, hop: Hop) {
        self.log.push(hop.clone());
        if self.loss.iter().any(|rule| rule(&hop)) {
            self.lost.push(hop);
        } else if !self.has(hop.to) {
            self.outside.push(hop);
        } else {
            let i = self.link.partition_point(|h| h.at <= hop.at);
            self.link.insert(i, hop);
        }
    }

    /// Hands a frame to its node, as the simulator's `dispatch` does.
    fn arrive(&mut self, hop: Hop) -> Reaction {
        self.step();
        if let Some((node, at, kind)) = self.next_timer().filter(|t| t.1 < hop.at) {
            panic!(
                "{:?} arrives at {} after {node:?}'s {kind:?} at {at}: run_until, or fire it first",
                hop.kind(),
                hop.at
            );
        }
        self.now = self.now.max(hop.at);
        let (now, to) = (self.now, hop.to);
        let mut fx = Effects::default();
        let node = lend(
            &mut self.nodes,
            &self.device_cfg,
            &mut self.keys,
            &mut self.key_directory,
            to,
        );
        let (from, dir) = (hop.from, &self.dir);
        dispatch::handle_frame(node, now, from, hop.frame, hop.tampered, dir, &mut fx);
        self.apply(to, fx)
    }

    /// Takes a node's effects: frames onto the link, timers armed or cancelled, events logged.
    fn apply(&mut self, node: Addr, fx: Effects) -> Reaction {
        let mut r = Reaction {
            node,
            sent: Vec::new(),
            events: Vec::new(),
            armed: Vec::new(),
            cancelled: Vec::new(),
        };
        for out in fx.outputs {
            match out {
                Output::Send { to, frame } => {
                    let hop = self.hop(node, to, frame, 0);
                    r.sent.push(hop.clone());
                    self.route(hop);
                }
                Output::SendAfter {
                    delay_ns,
                    to,
                    frame,
                } => {
                    let hop = self.hop(node, to, frame, delay_ns);
                    r.sent.push(hop.clone());
                    self.route(hop);
                }
                Output::Timer { at, timer } => {
                    assert!(at >= self.now, "{node:?} armed {timer:?} in the past");
                    self.timers.push((node, at, timer));
                    r.armed.push((at, timer));
                }
                Output::CancelTimer { at, timer } => {
                    self.timers
                        .retain(|&(n, t, k)| !(n == node && t == at && k == timer));
                    r.cancelled.push((at, timer));
                }
            }
        }
        for event in fx.ledger {
            self.ledger.push(Recorded {
                at: self.now,
                node,
                event: event.clone(),
            });
            r.events.push(event);
        }
        r
    }
}
