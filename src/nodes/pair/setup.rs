//! The world a pair test builds: providers, users, devices and the knobs protocol tests turn.

use super::{Node, Pair, S};
use crate::directory::Directory;
use crate::directory::PartnerLink;
use crate::engine::SimTime;
use crate::nodes::adapter::Adapter;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::device::{Device, DeviceConfig};
use crate::nodes::gateway::Gateway;
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::{CostTable, Keyring};
use crate::nodes::mailbox::MailboxConfig;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::Addr;
use crate::scenario::{CryptoMode, Protocol};
use std::collections::{BTreeMap, VecDeque};

/// The world a test builds: who exists, and the few knobs protocol tests turn. Users are
/// numbered provider by provider (gatekeeper first), devices user by user.
#[derive(Clone, Debug)]
pub struct Setup {
    pub provider_users: Vec<u32>,
    pub links: Vec<PartnerLink>,
    pub devices_per_user: Vec<u8>,
    pub enlisted: Vec<bool>,
    /// Real Signal crypto (slow) instead of the model.
    pub real_crypto: bool,
    /// Device outbox retry and server redelivery: first delay and cap.
    pub retry_initial_ns: u64,
    pub retry_max_ns: u64,
    pub outbox_max: u32,
    pub reorder_hold_ns: u64,
    pub reorder_held_max: usize,
    pub plaintext_cache_max: usize,
    pub offline_ttl_ns: u64,
    pub dedup_window_max: usize,
    pub window_max: usize,
    /// The servers send several copies per sender stream at once (the mailbox's BUGGIFY
    /// switch): the way to hand a device copies out of order.
    pub unordered_servers: bool,
    pub rate_limit_per_partner: Option<f64>,
    /// The key directory's limit on bundle fetches (`None`: unlimited).
    pub bundle_fetch_limit: Option<crate::scenario::BundleFetchLimit>,
    /// Added to every frame's send time to give its arrival time.
    pub latency_ns: u64,
    /// Bound on deliveries plus timer firings over the pair's life.
    pub steps_max: u32,
}

impl Setup {
    /// The gatekeeper alone: one user per entry, with that many devices.
    pub fn gatekeeper(devices_per_user: &[u8]) -> Setup {
        Setup::providers(&[devices_per_user], PartnerLink::Direct)
    }

    /// The gatekeeper's users, then one partner's (provider 1) reaching the gateway by `link`;
    /// every user enabled third-party chats.
    pub fn interop(gatekeeper: &[u8], partner: &[u8], link: PartnerLink) -> Setup {
        Setup::providers(&[gatekeeper, partner], link)
    }

    fn providers(per_provider: &[&[u8]], link: PartnerLink) -> Setup {
        let devices_per_user: Vec<u8> = per_provider.concat();
        Setup {
            provider_users: per_provider.iter().map(|p| p.len() as u32).collect(),
            links: vec![link; per_provider.len()],
            enlisted: vec![true; devices_per_user.len()],
            devices_per_user,
            real_crypto: false,
            retry_initial_ns: S,
            retry_max_ns: 8 * S,
            outbox_max: 8,
            reorder_hold_ns: 30 * S,
            reorder_held_max: 4,
            plaintext_cache_max: 8,
            offline_ttl_ns: 60 * S,
            dedup_window_max: 16,
            window_max: 4,
            unordered_servers: false,
            rate_limit_per_partner: None,
            bundle_fetch_limit: None,
            latency_ns: 0,
            steps_max: 10_000,
        }
    }

    /// The pair with these nodes, all devices offline, the clock at zero.
    pub fn build(self, nodes: &[Addr]) -> Pair {
        let dir = Directory::new(
            &self.provider_users,
            self.links.clone(),
            &self.devices_per_user,
            self.enlisted.clone(),
        );
        let device_cfg = DeviceConfig {
            retry_initial_ns: self.retry_initial_ns,
            retry_max_ns: self.retry_max_ns,
            outbox_max: self.outbox_max,
            reorder_hold_ns: self.reorder_hold_ns,
            reorder_held_max: self.reorder_held_max,
            plaintext_cache_max: self.plaintext_cache_max,
            bugs: crate::nodes::buggify::Bugs::NONE,
        };
        let mailbox_cfg = MailboxConfig {
            offline_ttl_ns: self.offline_ttl_ns,
            redeliver_initial_ns: self.retry_initial_ns,
            redeliver_max_ns: self.retry_max_ns,
            dedup_window_max: self.dedup_window_max,
            window_max: self.window_max,
            break_ordering: self.unordered_servers,
        };
        let mode = if self.real_crypto {
            CryptoMode::Real
        } else {
            CryptoMode::Modeled
        };
        // Free crypto: a sealed message goes out at once, so that times in tests are round.
        let costs = CostTable {
            ops: BTreeMap::new(),
        };
        let keys = Keyring::new(dir.devices(), mode, Protocol::X3dh, 17, costs);
        let key_directory =
            KeyDirectory::new(dir.devices(), 100, 10).with_fetch_limit(self.bundle_fetch_limit);
        let providers = dir.providers();
        let nodes = nodes
            .iter()
            .map(|&a| {
                let node = match a {
                    Addr::Device(d) => Node::Device(Box::new(Device::new(d, &dir, &device_cfg))),
                    Addr::ChatServer => Node::Chat(ChatServer::new(&dir, mailbox_cfg)),
                    Addr::Gateway => {
                        Node::Gateway(Gateway::new(providers, self.rate_limit_per_partner))
                    }
                    Addr::PartnerServer(p) => {
                        Node::Partner(PartnerServer::new(p, &dir, mailbox_cfg))
                    }
                    Addr::Adapter(p) => Node::Adapter(Adapter::new(p)),
                    Addr::MediaStore(_) | Addr::MediaProxy => panic!("no media nodes in a pair"),
                };
                (a, node)
            })
            .collect();
        Pair {
            now: SimTime::ZERO,
            dir,
            keys,
            key_directory,
            device_cfg,
            nodes,
            link: VecDeque::new(),
            timers: Vec::new(),
            log: Vec::new(),
            outside: Vec::new(),
            lost: Vec::new(),
            loss: Vec::new(),
            ledger: Vec::new(),
            next_hop: 0,
            next_msg: 1,
            latency_ns: self.latency_ns,
            steps: 0,
            steps_max: self.steps_max,
        }
    }
}
