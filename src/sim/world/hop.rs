//! One hop of a frame: a node's outputs become frames on links (`apply_effects`, `transmit`),
//! a frame lands (`arrive`), waits for its node's CPU and is handled (`process`, `dispatch`);
//! and node timers. The links and frames in flight are this file's part, [`Transport`].

use super::on_hosts::connection;
use super::{Event, Nodes, Servers, Sim};
use crate::directory::Directory;
use crate::engine::{Scheduler, SimRng, SimTime};
use crate::metrics::LedgerEvent;
use crate::net::{LinkModel, LinkState, Partitions, Transit};
use crate::nodes::device::DeviceConfig;
use crate::nodes::dispatch::{self, NodeMut};
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::{Keyring, Op};
use crate::nodes::stage::Stage;
use crate::nodes::{Addr, Effects, Output, TimerKind};
use crate::sim::cpu::Cpu;
use crate::sim::timers::ArmedAt;
use crate::sim::transport::{side_of, InFlight, Links, Slab};
use crate::wire::{Frame, MediaFrame};

/// The network between the nodes: links and their models, partitions, and the frames on
/// their way (events carry a slot of `frames`, not the frame).
pub(super) struct Transport {
    pub(super) links: Links,
    /// Per hop class; faults add overlays (loss, duplicates...) to them.
    pub(super) link_models: [LinkModel; 5],
    pub(super) partitions: Partitions,
    pub(super) frames: Slab,
    /// Link draws of message frames (media transfers have their own, in `MediaWorld`).
    pub(super) net_rng: SimRng,
}

impl Transport {
    /// Whether an active partition cuts `from` off from `to`. The sides are looked up only while
    /// a partition is active: each is a directory lookup (a cache miss per device at a million
    /// devices).
    pub(super) fn partitioned(&self, dir: &Directory, from: Addr, to: Addr) -> bool {
        self.partitions.any_active() && self.partitions.blocks(side_of(from, dir), side_of(to, dir))
    }
}

impl Nodes {
    /// The node at `a`, lent to the dispatch both drivers share; `None` for a media service
    /// (its state is in the media world) and for a provider without that node.
    fn get_mut<'a>(
        &'a mut self,
        a: Addr,
        cfg: &'a DeviceConfig,
        keys: &'a mut Keyring,
        key_directory: &'a mut KeyDirectory,
    ) -> Option<NodeMut<'a>> {
        Some(match a {
            Addr::Device(d) => NodeMut::Device {
                device: self.devices.get_mut(d.index())?,
                cfg,
                keys,
                key_directory,
            },
            Addr::ChatServer => NodeMut::Chat(&mut self.chat),
            Addr::Gateway => NodeMut::Gateway(&mut self.gateway),
            Addr::Adapter(p) => NodeMut::Adapter(self.adapters.get_mut(p.index())?.as_mut()?),
            Addr::PartnerServer(p) => {
                NodeMut::Partner(self.partner_servers.get_mut(p.index())?.as_mut()?)
            }
            Addr::MediaStore(_) | Addr::MediaProxy => return None,
        })
    }
}

impl Nodes {
    /// Whether the node keeps a record of this timer that [`ArmedAt`] reads: only such timers
    /// may go to the retry-timer FIFO.
    fn records(node: Addr, timer: TimerKind) -> bool {
        matches!(
            (node, timer),
            (Addr::Device(_), TimerKind::OutboxRetry)
                | (
                    Addr::ChatServer | Addr::PartnerServer(_),
                    TimerKind::Redeliver(_)
                )
        )
    }
}

impl ArmedAt for Nodes {
    /// What the device or the mailbox box keeps of its timer (see [`Nodes::records`]).
    fn armed_at(&self, node: Addr, timer: TimerKind) -> Option<SimTime> {
        match (node, timer) {
            (Addr::Device(d), TimerKind::OutboxRetry) => self.devices.get(d.index())?.retry_due(),
            (Addr::ChatServer, TimerKind::Redeliver(d)) => self.chat.redeliver_due(d),
            (Addr::PartnerServer(p), TimerKind::Redeliver(d)) => self
                .partner_servers
                .get(p.index())?
                .as_ref()?
                .redeliver_due(d),
            _ => None,
        }
    }

    fn prefetch(&self, node: Addr, timer: TimerKind) {
        match (node, timer) {
            (Addr::Device(d), TimerKind::OutboxRetry) => {
                if let Some(device) = self.devices.get(d.index()) {
                    device.prefetch_retry_due()
                }
            }
            (Addr::ChatServer, TimerKind::Redeliver(d)) => self.chat.prefetch_redeliver_due(d),
            (Addr::PartnerServer(p), TimerKind::Redeliver(d)) => {
                if let Some(Some(server)) = self.partner_servers.get(p.index()) {
                    server.prefetch_redeliver_due(d)
                }
            }
            _ => {}
        }
    }
}

impl Servers {
    /// The CPU of a server node; devices have none.
    fn cpu(&mut self, a: Addr) -> Option<&mut Cpu> {
        match a {
            Addr::Device(_) => None,
            Addr::ChatServer => Some(&mut self.chat),
            Addr::Gateway => Some(&mut self.gateway),
            Addr::Adapter(p) => self.adapters.get_mut(p.index()),
            Addr::PartnerServer(p) => self.partner_servers.get_mut(p.index()),
            // Media services are priced by their links' bandwidth, not by a CPU queue.
            Addr::MediaStore(_) | Addr::MediaProxy => None,
        }
    }

    /// Admits a frame for `a`: a server node on its cores or the host's (`[capacity] host`),
    /// its service the node's price plus `extra_ns` and the host's own work; a device on the
    /// load generator's cores when the scenario has them. `None`: `a` waits for no core; else
    /// the frame's completion, or `Some(None)` when the node's queue is full.
    fn admit(
        &mut self,
        from: Addr,
        a: Addr,
        now: SimTime,
        extra_ns: u64,
        is_message: bool,
    ) -> Option<Option<SimTime>> {
        if let (Addr::Device(_), Some(g)) = (a, self.generator.as_mut()) {
            return Some(Some(g.serve_read(now, from.code())));
        }
        // Out and back in only when there is a host: `take` of `None` still copies the
        // option's whole size, once per frame.
        let mut host = if self.host.is_some() {
            self.host.take()
        } else {
            None
        };
        let admitted = self.cpu(a).map(|cpu| {
            let own = host.as_ref().map_or(0, |h| h.per_frame_ns);
            let service = cpu.service_ns(is_message) + extra_ns + own;
            let on = host.as_mut().map(|h| (h, connection(from, a)));
            cpu.admit_frame_on(on, now, service, is_message)
        });
        if host.is_some() {
            self.host = host;
        }
        admitted
    }

    /// When the frame last admitted for `a` was taken (its core free and awake).
    fn last_taken(&mut self, a: Addr) -> SimTime {
        match (a, self.generator.as_ref()) {
            (Addr::Device(_), Some(g)) => g.last_taken,
            _ => self.cpu(a).map_or(SimTime::ZERO, |c| c.last_taken),
        }
    }

    pub(super) fn is_down(&self, a: Addr) -> bool {
        match a {
            Addr::Device(_) => false,
            Addr::ChatServer => self.chat_down,
            Addr::Gateway => self.gateway_down,
            Addr::Adapter(p) | Addr::PartnerServer(p) => self.provider_down[p.index()],
            // A provider's crash takes its media store down (blobs are durable); the gateway's
            // takes the media proxy beside it.
            Addr::MediaStore(p) if p.0 == 0 => self.chat_down,
            Addr::MediaStore(p) => self.provider_down[p.index()],
            Addr::MediaProxy => self.gateway_down,
        }
    }
}

impl Sim {
    /// Runs `f` with the shared effects buffer, then turns its outputs into events.
    pub(super) fn with_fx(
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
        // Only a scenario with a host's or a generator's cores times its outputs by them.
        let on_hosts = self.servers.host.is_some() || self.servers.generator.is_some();
        for out in fx.outputs.drain(..) {
            let out = if on_hosts {
                self.on_host(now, node, out)
            } else {
                out
            };
            match out {
                // BUGGIFY never_ack: the servers' acks vanish as they leave.
                Output::Send {
                    frame: Frame::SubmitAck { .. },
                    ..
                } if self.bugs.never_ack => {}
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
                    let slot = self.net.frames.insert(held);
                    sched.at(now.plus(delay_ns), Event::Emit(slot));
                }
                // BUGGIFY never_retry: a device's outbox retry is never armed.
                Output::Timer {
                    timer: TimerKind::OutboxRetry,
                    ..
                } if self.bugs.never_retry && matches!(node, Addr::Device(_)) => {}
                Output::Timer { at, timer } => {
                    let (taken, wake) = if Nodes::records(node, timer) {
                        self.retry_timers.arm(now, at, node, timer, &self.nodes)
                    } else {
                        (false, None)
                    };
                    if let Some(wake) = wake {
                        sched.at(wake, Event::RetryTimersDue);
                    }
                    if !taken {
                        sched.at(at, Event::Timer { node, timer });
                    }
                }
                // The node has forgotten the instant: its entry in the FIFO, or its event, finds
                // the node stale (see `TimerFifo`).
                Output::CancelTimer { .. } => {}
            }
        }
        for opened in fx.media.drain(..) {
            self.media.opened(opened);
        }
        for ev in fx.ledger.drain(..) {
            self.obs.trace_ledger(now, &ev);
            self.ledger.apply(now, ev.clone());
            self.media_reacts(now, node, &ev, sched);
            self.react(now, &ev, sched);
        }
    }

    /// A held-back frame leaves its node now.
    pub(super) fn emit(&mut self, now: SimTime, slot: u32, sched: &mut Scheduler<'_, Event>) {
        if let Some(f) = self.net.frames.take(slot) {
            self.transmit(now, f.from, f.to, f.frame, sched);
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
        let blocked = self.net.partitioned(&self.dir, from, to);
        if self.obs.trace.is_some() {
            self.obs.trace_frame(
                now,
                if blocked { "blocked" } else { "send" },
                from,
                to,
                &frame,
            );
        }
        if blocked {
            self.obs.count("dropped_partition", 1);
            return;
        }
        if let (Frame::Push { device }, Addr::Device(_)) = (&frame, to) {
            let p = self.dir.provider_of_device(*device).index();
            let lost = self.faults.push_loss[p]
                .iter()
                .any(|&r| crate::net::latency::chance(&mut self.net.net_rng, r));
            if lost {
                self.obs.count("push_lost", 1);
                return;
            }
        }
        // With the load generator's cores, a new message's frame was marked when composed
        // (`mark_composed`), earlier: the first mark of a stage counts.
        if let (Frame::Submit(s), Addr::Device(_)) = (&frame, from) {
            self.mark_hop(s.copy_id().ledger_id(), Stage::Queued, now);
        }
        let net = &mut self.net;
        let bytes = frame.wire_bytes();
        let (hop, state) = net.links.route(from, to);
        let model = &net.link_models[hop.index()];
        let transit = if matches!(frame, Frame::Push { .. }) {
            // Push goes through the platform's push service, not the device's connection.
            let mut scratch = LinkState::default();
            model.send(&mut scratch, now, bytes, &mut net.net_rng)
        } else {
            model.send(state, now, bytes, &mut net.net_rng)
        };
        self.obs.count_frame(hop, bytes);
        match transit {
            Transit::Lost => self.obs.count("dropped_loss", 1),
            Transit::QueueFull => self.obs.count("dropped_link_queue", 1),
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
                    let slot = self.net.frames.insert(copy);
                    sched.at(copy_at, Event::Arrive { slot, to });
                    self.obs.count(
                        if copy_is_replay {
                            "replayed_frames"
                        } else {
                            "duplicated_frames"
                        },
                        1,
                    );
                }
                let slot = self.net.frames.insert(InFlight {
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

    pub(super) fn is_down(&self, a: Addr) -> bool {
        self.servers.is_down(a)
    }

    pub(super) fn arrive(&mut self, now: SimTime, slot: u32, sched: &mut Scheduler<'_, Event>) {
        let Some(f) = self.net.frames.get(slot) else {
            return;
        };
        let (to, is_message, tampered) = (f.to, f.frame.is_message(), f.tampered);
        if f.replay && !is_message {
            // Control frames ride the Noise channel, whose nonces refuse a replay outright.
            // Message frames are replayed as an attacker would, on a fresh connection, so
            // that the application's dedup and the Signal counters have to catch them.
            self.net.frames.take(slot);
            self.obs.replay_rejected += 1;
            return;
        }
        if self.is_down(to) {
            if let Some(f) = self.net.frames.take(slot) {
                self.media_dropped(now, &f, sched);
            }
            self.obs.count("dropped_node_down", 1);
            return;
        }
        if tampered && !matches!(to, Addr::Device(_)) {
            // The Noise transport's AEAD refuses the frame before any handler sees it.
            self.net.frames.take(slot);
            self.ledger.tamper_detected();
            return;
        }
        let noise_ns = if to == Addr::Gateway {
            self.noise_cost(slot)
        } else {
            0
        };
        let from = self.net.frames.get(slot).map_or(to, |f| f.from);
        let Some(admitted) = self.servers.admit(from, to, now, noise_ns, is_message) else {
            self.mark_taken(slot, now);
            return self.process(now, slot, sched);
        };
        match admitted {
            Some(done) => {
                if self.hop_marks.is_some() {
                    let taken = self.servers.last_taken(to);
                    self.mark_taken(slot, taken);
                }
                // The frame waits its service time, a few events: enough for the state it
                // reads to come into the cache (the second level follows in `prefetch`).
                self.prefetch_frame_state(slot, false);
                sched.at(done, Event::Processed(slot))
            }
            None => {
                if let Some(f) = self.net.frames.take(slot) {
                    self.media_dropped(now, &f, sched);
                }
                self.obs.count("dropped_server_queue", 1);
            }
        }
    }

    /// The gateway's transport cost for a frame: a Noise handshake when a partner device
    /// connects, an AEAD (decrypt on the way in, encrypt on the way out) for every frame on a
    /// partner connection. Charged to the gateway's CPU; counted as crypto work.
    fn noise_cost(&mut self, slot: u32) -> u64 {
        let Some(f) = self.net.frames.get(slot) else {
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

    pub(super) fn process(&mut self, now: SimTime, slot: u32, sched: &mut Scheduler<'_, Event>) {
        let Some(f) = self.net.frames.take(slot) else {
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
        if let Some(cpu) = self.servers.cpu(f.to) {
            cpu.complete();
        }
        if self.is_down(f.to) {
            self.media_dropped(now, &f, sched);
            self.obs.count("dropped_node_down", 1);
            return; // crashed while the frame was queued
        }
        let to = f.to;
        self.obs.tap(to, &f.frame, &self.media);
        self.obs.metadata.see(to, &f.frame, &self.dir);
        if self.obs.trace.is_some() {
            self.obs.trace_frame(now, "handle", f.from, f.to, &f.frame);
        }
        self.with_fx(now, to, sched, |sim, fx| sim.dispatch(now, f, fx));
    }

    /// Cache hints for what a queued server frame will read when handled: the mailbox state
    /// and, for a submission, the links its copies leave on. Two levels (see
    /// [`crate::nodes::Mailbox::prefetch_frame`]); changes nothing.
    pub(super) fn prefetch_frame_state(&self, slot: u32, deep: bool) {
        let Some(f) = self.net.frames.get(slot) else {
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
            self.net.links.prefetch_device(env.from_device);
            for d in self.dir.devices_of(env.to_user) {
                self.net.links.prefetch_device(d);
            }
        }
    }

    fn dispatch(&mut self, now: SimTime, f: InFlight, fx: &mut Effects) {
        if let Frame::Media(m) = f.frame {
            return self.dispatch_media(now, f.from, f.to, m, fx);
        }
        let replay = f.replay;
        let before = fx.ledger.len();
        // Media stores and the proxy take media frames only (`dispatch_media`).
        let (cfg, keys, key_directory) =
            (&self.device_cfg, &mut self.keys, &mut self.key_directory);
        if let Some(node) = self.nodes.get_mut(f.to, cfg, keys, key_directory) {
            dispatch::handle_frame(node, now, f.from, f.frame, f.tampered, &self.dir, fx);
        }
        if replay {
            let effective = fx.ledger[before..]
                .iter()
                .any(|e| matches!(e, LedgerEvent::Shown { .. } | LedgerEvent::Accepted { .. }));
            if !effective {
                self.obs.replay_rejected += 1;
            }
        }
    }

    /// Retry timers of the initial delay that came due, handled in the order they were armed.
    pub(super) fn retry_timers_due(&mut self, now: SimTime, sched: &mut Scheduler<'_, Event>) {
        for (node, timer) in self.retry_timers.take_due(now, &self.nodes) {
            self.with_fx(now, node, sched, |sim, fx| sim.timer(now, node, timer, fx));
        }
        if let Some(wake) = self.retry_timers.rewake(&self.nodes) {
            sched.at(wake, Event::RetryTimersDue);
        }
    }

    pub(super) fn timer(&mut self, now: SimTime, node: Addr, timer: TimerKind, fx: &mut Effects) {
        if self.is_down(node) {
            return;
        }
        if let (TimerKind::MediaRetry, Addr::Device(d)) = (timer, node) {
            let online = self.nodes.devices[d.index()].is_online();
            return self.media.timer(now, d, online, &self.dir, fx);
        }
        let (cfg, keys, key_directory) =
            (&self.device_cfg, &mut self.keys, &mut self.key_directory);
        if let Some(n) = self.nodes.get_mut(node, cfg, keys, key_directory) {
            dispatch::handle_timer(n, now, timer, &self.dir, fx);
        }
    }
}
