//! The world built from a validated scenario: the directory, the nodes and their CPUs, the
//! links, the workload and the key ring, each drawing from its own stream of the run's RNG
//! tree; then the events a run starts with.

use super::compose::Traffic;
use super::hop::Transport;
use super::observe::Observer;
use super::{Event, Nodes, Servers, Sim};
use crate::collections::spares::Spares;
use crate::directory::{Directory, PartnerLink, Routing};
use crate::engine::{EventQueue, RngTree, Scheduler, SimTime};
use crate::faults::{self, ActiveFaults};
use crate::metrics::feed::LedgerFeed;
use crate::net::latency::{exponential_ns, unit};
use crate::net::{LinkModel, Partitions};
use crate::nodes::adapter::Adapter;
use crate::nodes::buggify::Bugs;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::device::{Device, DeviceConfig};
use crate::nodes::gateway::Gateway;
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::{CostTable, Keyring};
use crate::nodes::mailbox::MailboxConfig;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::{Addr, Effects};
use crate::scenario::{AdapterMode, Design, HopClass, Scenario, SessionSetup};
use crate::sim::cpu::Cpu;
use crate::sim::host_cores::HostCores;
use crate::sim::media::MediaWorld;
use crate::sim::timers::TimerFifo;
use crate::sim::transport::{Links, Slab};
use crate::wire::{DeviceId, ProviderId};
use crate::workload::Workload;
use std::collections::BTreeMap;

/// Bound on the messages whose parties are reserved up front (a scenario's rate can be
/// anything).
const EXPECTED_MESSAGES_MAX: f64 = 32e6;

/// The run's ledger. It keeps each message's sender and recipient only when something asks
/// for them: a reply or a read (the workload reacts) or a media fetch (any content but text).
fn ledger_feed(s: &Scenario, owners: std::sync::Arc<crate::directory::Owners>) -> LedgerFeed {
    let w = &s.workload;
    let reacts = w.reply_probability > 0.0 || w.read_probability > 0.0;
    let media = w.content[1..].iter().any(|&share| share > 0.0);
    let end = SimTime::from_nanos(s.run.duration_ns);
    let feed = LedgerFeed::new(expected_messages(s), owners, end);
    match reacts || media {
        true => feed,
        false => feed.without_parties(),
    }
}

/// About how many messages a run writes: the Poisson arrivals and their answers, before group
/// fan-out and surges (the parties' vector grows past it if needed).
fn expected_messages(s: &Scenario) -> usize {
    let users: f64 = s.providers.iter().map(|p| f64::from(p.users)).sum();
    let hours = s.run.duration_ns as f64 / 3.6e12;
    let arrivals = users * s.workload.messages_per_user_hour * hours;
    let n = arrivals * (1.0 + s.workload.reply_probability) * 1.05;
    n.clamp(0.0, EXPECTED_MESSAGES_MAX) as usize
}

/// Who is who in a run of `s`: users per provider, devices per user and who enlisted for
/// third-party chats, drawn from the seed. The live driver builds its directory with this
/// too, so that `validate` compares runs of the same users.
pub fn build_directory(s: &Scenario, tree: &RngTree) -> Directory {
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
    let routing = match s.topology.design {
        Design::Hub => Routing::Hub,
        Design::Mimi => Routing::Mimi,
    };
    Directory::new(&provider_users, links, &devices, enlisted).with_routing(routing)
}

impl Sim {
    pub(super) fn new(s: Scenario, bugs: Bugs) -> Self {
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
        // On a shared host a node's frames run on any of the host's cores: its queue bound
        // and its busy share count those.
        let cpu = |cap: &crate::scenario::NodeCapacity| match &s.capacity.host {
            Some(h) => Cpu::new(
                &crate::scenario::NodeCapacity {
                    cores: h.cores,
                    ..*cap
                },
                &s.run,
            ),
            None => Cpu::new(cap, &s.run),
        };
        let servers = Servers {
            chat: cpu(&s.capacity.chat_server),
            gateway: cpu(&s.capacity.gateway),
            adapters: (0..providers).map(|_| cpu(&s.capacity.adapter)).collect(),
            partner_servers: (0..providers)
                .map(|_| cpu(&s.capacity.chat_server))
                .collect(),
            host: s.capacity.host.as_ref().map(HostCores::new),
            generator: s.capacity.generator.as_ref().map(HostCores::new),
            composing: false,
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
        let dir_devices = dir.devices();
        let canary = rand::Rng::next_u64(&mut tree.stream("canary", 0));
        Sim {
            media: MediaWorld::new(providers, s.e2ee.crypto, &tree, canary),
            traffic: Traffic {
                workload: Workload::new(&s, &dir, &tree),
                churn_rng: tree.stream("churn", 0),
                churn_means: (on, off),
                send_end: SimTime::from_nanos(s.run.duration_ns),
                drained: false,
                canary,
                plaintexts_made: 0,
                spare_plaintexts: Spares::default(),
                next_pair: None,
                group_sends: BTreeMap::new(),
                inbox: super::inboxes::InboxWorld::new(&s, &tree),
            },
            net: Transport {
                links: if dir.is_mimi() {
                    Links::new(dir.devices(), providers).with_provider_links()
                } else {
                    Links::new(dir.devices(), providers)
                },
                link_models: HopClass::EVERY.map(|h| LinkModel::new(s.network.link(h))),
                partitions: Partitions::new(providers),
                frames: Slab::with_capacity(frames_in_flight),
                net_rng: tree.stream("net", 0),
            },
            obs: Observer::new(s.run.interval_ns),
            hop_marks: None,
            faults: ActiveFaults::new(providers),
            tree,
            dir,
            nodes,
            servers,
            retry_timers: TimerFifo::new(device_cfg.retry_initial_ns),
            device_cfg,
            ledger: ledger_feed(&s, owners),
            fx: Effects::default(),
            bugs: Bugs::NONE,
            keys: Keyring::new(
                dir_devices,
                s.e2ee.crypto,
                s.e2ee.protocol,
                s.run.seed,
                CostTable::default().with_overrides(&s.e2ee.cost_table),
            )
            .with_established_sessions(s.e2ee.sessions == SessionSetup::Established)
            .with_mls_rooms(s.topology.design == Design::Mimi),
            key_directory: KeyDirectory::new(
                dir_devices,
                s.e2ee.one_time_prekeys,
                s.e2ee.prekey_refill_below,
            )
            .with_fetch_limit(s.e2ee.bundle_fetch_limit),
            s,
        }
    }

    /// Initial events: device states and churn, the first arrival, faults, sampling, drain.
    pub(super) fn seed_events(&mut self, q: &mut EventQueue<Event>) {
        let share = self.s.devices.online_share;
        let ramp_ns = self.s.run.ramp_ns;
        let mut ramp_rng = self.tree.stream("ramp", 0);
        self.ledger
            .set_warmup(SimTime::from_nanos(self.s.run.warmup_ns));
        let mut sched = Scheduler::new(SimTime::ZERO, q);
        for i in 0..self.nodes.devices.len() {
            let d = DeviceId(i as u32);
            let starts_online = unit(&mut self.traffic.churn_rng) < share;
            if starts_online && ramp_ns > 0 {
                // Offline until its connect instant in the ramp; the churn event that connects
                // it draws its first online period.
                let at = (unit(&mut ramp_rng) * ramp_ns as f64) as u64;
                sched.at(SimTime::from_nanos(at), Event::Churn(d));
                continue;
            }
            if starts_online {
                self.with_fx(SimTime::ZERO, Addr::Device(d), &mut sched, |sim, fx| {
                    let (dev, mut cx) = sim.device_cx(d, SimTime::ZERO, fx);
                    dev.go_online(&mut cx)
                });
            }
            if share < 1.0 {
                let online = self.nodes.devices[i].is_online();
                let mean = if online {
                    self.traffic.churn_means.0
                } else {
                    self.traffic.churn_means.1
                };
                let t = exponential_ns(&mut self.traffic.churn_rng, mean);
                if t < self.s.run.duration_ns {
                    sched.at(SimTime::from_nanos(t), Event::Churn(d));
                }
            }
        }
        if let Some(gap) = self.traffic.workload.next_gap_ns(1.0) {
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
        sched.at(self.traffic.send_end, Event::DrainStart);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run keeps each message's sender and recipient exactly when something can ask: a
    /// reply or a read, or media to fetch.
    #[test]
    fn the_ledger_keeps_parties_only_for_runs_that_ask() {
        let keeps = |workload: &str| {
            let src = format!(
                "[run]\nname = \"t\"\nduration = \"1s\"\n\n[[provider]]\nname = \"a\"\nrole = \"gatekeeper\"\nusers = 2\n\n[[provider]]\nname = \"b\"\nrole = \"partner\"\nusers = 2\n\n[workload]\n{workload}\n"
            );
            let s = crate::scenario::parse(&src, "t.toml").expect("a valid scenario");
            let dir = build_directory(&s, &RngTree::new(1));
            let mut feed = ledger_feed(&s, dir.owners());
            let msg = crate::metrics::ledger::NewMessage {
                from_user: crate::wire::UserId(0),
                from_device: crate::wire::DeviceId(0),
                to_user: crate::wire::UserId(1),
                content: crate::scenario::ContentKind::Text,
                path: crate::metrics::PathKind::Native,
                bytes: 1,
                digest: 0,
            };
            let id = feed.create(SimTime::ZERO, msg);
            feed.parties(id).is_some()
        };
        let text = "content = { text = 1.0 }";
        assert!(!keeps(&format!(
            "{text}\nreply_probability = 0.0\nread_probability = 0.0"
        )));
        assert!(keeps(&format!(
            "{text}\nreply_probability = 0.1\nread_probability = 0.0"
        )));
        assert!(keeps(&format!(
            "{text}\nreply_probability = 0.0\nread_probability = 0.1"
        )));
        assert!(keeps(
            "content = { text = 0.9, file = 0.1 }\nreply_probability = 0.0\nread_probability = 0.0"
        ));
    }
}
