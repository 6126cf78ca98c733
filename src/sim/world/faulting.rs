//! The mechanisms the world lends its faults ([`FaultTarget`]): what a fault does at each
//! edge is decided in `faults/act.rs`; here are only the levers it pulls (a partition, a node
//! down, a slow CPU, a link overlay...), and the prekey-drain adversary's ticks.

use super::{Event, Sim};
use crate::engine::{Scheduler, SimTime};
use crate::faults::{self, ActiveFaults, Edge, FaultTarget};
use crate::net::{LinkEffect, Side};
use crate::nodes::dispatch::{self, NodeMut};
use crate::nodes::{Addr, TimerKind};
use crate::scenario::{Endpoint, HopClass};
use crate::sim::cpu::Cpu;
use crate::wire::{DeviceId, ProviderId, UserId};

/// The world as a fault edge sees it: the simulation at the edge's instant, with the queue to
/// schedule what follows (reconnections, the drain's ticks).
struct Levers<'a, 'q> {
    sim: &'a mut Sim,
    now: SimTime,
    sched: &'a mut Scheduler<'q, Event>,
}

impl Sim {
    /// Edge `edge` of fault `index` happens now.
    pub(super) fn fault(
        &mut self,
        now: SimTime,
        index: usize,
        edge: Edge,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let f = self.s.faults[index].clone();
        let tree = self.tree;
        let mut levers = Levers {
            sim: self,
            now,
            sched,
        };
        faults::apply(&mut levers, &tree, index, &f, edge);
    }

    /// The prekey-drain adversary's fetches for one second, while its fault lasts.
    pub(super) fn drain_tick(
        &mut self,
        now: SimTime,
        index: usize,
        fetches: u32,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let Some(victims) = self.faults.drained_victims.get(&index) else {
            return;
        };
        for d in victims {
            for _ in 0..fetches {
                let key_directory = &mut self.key_directory;
                self.keys.drain_one(key_directory, now, index as u32, *d);
            }
        }
        self.obs.count(
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

    /// The CPUs of the server nodes behind a fault endpoint.
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
}

impl FaultTarget for Levers<'_, '_> {
    fn count(&mut self, key: &'static str, n: u64) {
        self.sim.obs.count(key, n);
    }

    fn active(&mut self) -> &mut ActiveFaults {
        &mut self.sim.faults
    }

    fn partition(&mut self, a: Side, b: Side, one_way: bool, cut: bool) {
        let partitions = &mut self.sim.net.partitions;
        if cut {
            partitions.cut(a, b, one_way);
        } else {
            partitions.heal(a, b, one_way);
        }
    }

    fn set_down(&mut self, node: &Endpoint, down: bool) {
        let servers = &mut self.sim.servers;
        match *node {
            Endpoint::Gateway => servers.gateway_down = down,
            Endpoint::Provider(0) => servers.chat_down = down,
            Endpoint::Provider(p) => servers.provider_down[p] = down,
            Endpoint::Clients(_) => {}
        }
        if let (false, true, Endpoint::Provider(p)) = (down, self.sim.dir.is_mimi(), node) {
            // A MIMI server back up resumes its fan-outs (its retry timer fired while down).
            let node = crate::nodes::mimi::server_of(ProviderId(*p as u32));
            let timer = TimerKind::MimiRetry;
            self.sched.at(self.now, Event::Timer { node, timer });
        }
    }

    fn lose_state(&mut self, node: &Endpoint, durable: bool) {
        let (nodes, bugs) = (&mut self.sim.nodes, self.sim.bugs);
        let crashed = match *node {
            Endpoint::Provider(0) => Some(NodeMut::Chat(&mut nodes.chat)),
            Endpoint::Provider(p) => nodes.partner_servers[p].as_mut().map(NodeMut::Partner),
            // The gateway's state is soft; a partner's adapter is not crashed here.
            Endpoint::Gateway | Endpoint::Clients(_) => None,
        };
        if let Some(n) = crashed {
            dispatch::crash(n, durable && !bugs.break_durability);
        }
    }

    fn reconnect_devices(&mut self) {
        let (now, sim) = (self.now, &mut *self.sim);
        for i in 0..sim.nodes.devices.len() {
            if sim.nodes.devices[i].is_online() {
                sim.with_fx(
                    now,
                    Addr::Device(DeviceId(i as u32)),
                    self.sched,
                    |sim, fx| {
                        let (dev, mut cx) = sim.device_cx(DeviceId(i as u32), now, fx);
                        dev.reconnect(&mut cx)
                    },
                );
            }
        }
    }

    fn slow(&mut self, node: &Endpoint, factor: f64) {
        for cpu in self.sim.node_cpus(node) {
            cpu.slow_factor = factor;
        }
    }

    fn link_overlay(&mut self, link: HopClass, effect: LinkEffect, rate: f64, on: bool) {
        let m = &mut self.sim.net.link_models[link.index()];
        if on {
            m.add_overlay(effect, rate);
        } else {
            m.remove_overlay(effect, rate);
        }
    }

    fn skew_clients(&mut self, provider: ProviderId, offset_ns: i64) {
        for d in self.sim.dir.devices_of_provider(provider) {
            self.sim.nodes.devices[d as usize].set_clock_offset(offset_ns);
        }
    }

    fn users_of(&self, provider: ProviderId) -> std::ops::Range<u32> {
        self.sim.dir.users_of(provider)
    }

    fn devices_of(&self, user: UserId) -> impl Iterator<Item = DeviceId> {
        self.sim.dir.devices_of(user)
    }

    fn is_enlisted(&self, user: UserId) -> bool {
        self.sim.dir.is_enlisted(user)
    }

    fn set_enlisted(&mut self, user: UserId, on: bool) {
        self.sim.dir.set_enlisted(user, on);
        if on {
            for d in self.sim.dir.devices_of(user) {
                self.sim.nodes.devices[d.index()].third_party_switched_on();
            }
        }
    }

    fn reset_identity(&mut self, user: UserId) {
        for d in self.sim.dir.devices_of(user) {
            self.sim.keys.reset_identity(d);
        }
    }

    fn start_prekey_drain(&mut self, index: usize, fetches: u32) {
        let tick = Event::DrainTick {
            index: index as u16,
            fetches,
        };
        self.sched.at(self.now, tick);
    }
}
