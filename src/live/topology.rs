//! Where the live servers listen and who dials whom. One process (`live`) binds every server
//! on ephemeral loopback ports; several processes (`serve`, `load`) agree on a port layout
//! from one base address: chat server = base, gateway = base + 1, partner server p = base + 2p,
//! adapter p = base + 2p + 1; the media services over HTTP: the gatekeeper's media proxy =
//! base + 999, provider p's media store = base + 1000 + p (run with the chat server for the
//! gatekeeper, with partner server p, and with the gateway for the proxy).
//!
//! Links: the chat server and each adapter dial the gateway (Noise); the gateway dials the
//! partner servers; clients dial the chat server, their partner server, their adapter, and
//! (direct-mode partners) the gateway (Noise).

use super::conn::Inspector;
use super::media_http::{self, MediaRole, MediaStore};
use super::node::{spawn_acceptor, Dial, NodeTask, ServerNode, Shared};
use super::LiveError;
use crate::directory::Directory;
use crate::directory::PartnerLink;
use crate::nodes::adapter::Adapter;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::gateway::Gateway;
use crate::nodes::mailbox::MailboxConfig;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::Addr;
use crate::scenario::Scenario;
use crate::wire::ProviderId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The marker every plaintext starts with; the gateway probe looks for it.
pub const PLAINTEXT_MARKER: &[u8] = b"PLAINTEXT-MARKER:interop-sim:";

/// Which servers a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    All,
    Chat,
    Gateway,
    Adapter(u32),
    Partner(u32),
}

impl Role {
    fn runs(self, a: Addr) -> bool {
        match (self, a) {
            (Role::All, _) => true,
            (Role::Chat, Addr::ChatServer) | (Role::Gateway, Addr::Gateway) => true,
            (Role::Adapter(p), Addr::Adapter(q)) | (Role::Partner(p), Addr::PartnerServer(q)) => {
                p == q.0
            }
            (Role::Chat, Addr::MediaStore(p)) => p.0 == 0,
            (Role::Partner(p), Addr::MediaStore(q)) => p == q.0,
            (Role::Gateway, Addr::MediaProxy) => true,
            _ => false,
        }
    }
    /// The node this role names (`None` for `All`).
    pub fn addr(self) -> Option<Addr> {
        match self {
            Role::All => None,
            Role::Chat => Some(Addr::ChatServer),
            Role::Gateway => Some(Addr::Gateway),
            Role::Adapter(p) => Some(Addr::Adapter(ProviderId(p))),
            Role::Partner(p) => Some(Addr::PartnerServer(ProviderId(p))),
        }
    }
}

/// The port layout of a multi-process deployment.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub base: SocketAddr,
}

impl Layout {
    fn offset(a: Addr) -> u16 {
        match a {
            Addr::ChatServer => 0,
            Addr::Gateway => 1,
            Addr::PartnerServer(p) => 2 * p.0 as u16,
            Addr::Adapter(p) => 2 * p.0 as u16 + 1,
            Addr::MediaProxy => 999,
            Addr::MediaStore(p) => 1000 + p.0 as u16,
            Addr::Device(_) => 0,
        }
    }
    pub fn addr_of(&self, a: Addr) -> SocketAddr {
        let mut s = self.base;
        s.set_port(self.base.port().saturating_add(Self::offset(a)));
        s
    }
    /// The layout in which `role` listens at `listen`.
    pub fn around(role: Role, listen: SocketAddr) -> Layout {
        let mut base = listen;
        let off = role.addr().map_or(0, Self::offset);
        base.set_port(listen.port().saturating_sub(off));
        Layout { base }
    }
}

/// The server nodes of the scenario, in start order (partners, adapters, gateway, chat).
pub fn server_addrs(dir: &Directory) -> Vec<Addr> {
    let mut v = Vec::new();
    for p in 1..dir.providers() as u32 {
        v.push(Addr::PartnerServer(ProviderId(p)));
        if dir.partner_link(ProviderId(p)) == PartnerLink::Proxied {
            v.push(Addr::Adapter(ProviderId(p)));
        }
    }
    v.push(Addr::Gateway);
    v.push(Addr::ChatServer);
    v
}

/// The media services over HTTP: every provider's store and the gatekeeper's proxy.
pub fn media_addrs(dir: &Directory) -> Vec<Addr> {
    let mut v: Vec<Addr> = (0..dir.providers() as u32)
        .map(|p| Addr::MediaStore(ProviderId(p)))
        .collect();
    v.push(Addr::MediaProxy);
    v
}

/// Running servers and where every server listens.
pub struct Servers {
    pub handles: Vec<tokio::task::JoinHandle<NodeTask>>,
    /// Where every server listens, the media services included.
    pub addrs: BTreeMap<Addr, SocketAddr>,
    /// The media stores this process runs, by provider.
    pub media_stores: BTreeMap<u32, Arc<MediaStore>>,
    /// Blob bytes the media proxy relayed (when this process runs it).
    pub media_relayed: Arc<std::sync::atomic::AtomicU64>,
    pub inspector: Arc<Inspector>,
    /// Where to send each server's faults.
    pub controls: BTreeMap<Addr, tokio::sync::mpsc::Sender<super::faults::Control>>,
}

/// Connections the kernel may hold for a listener before it accepts them: a burst of clients
/// (every device of a load run connecting at once) is queued rather than made to retry its
/// SYN a second later (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

async fn bind(at: SocketAddr) -> Result<(TcpListener, SocketAddr), LiveError> {
    let socket = if at.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    let socket = socket.map_err(LiveError::io("open a listening socket"))?;
    // A restarted server rebinds its port while the last one's connections sit in TIME_WAIT.
    socket
        .set_reuseaddr(true)
        .map_err(LiveError::io("set SO_REUSEADDR"))?;
    socket
        .bind(at)
        .map_err(|source| LiveError::Bind { at, source })?;
    let l = socket
        .listen(LISTEN_BACKLOG)
        .map_err(LiveError::io("listen on a loopback listener"))?;
    let a = l.local_addr().map_err(LiveError::io("local_addr"))?;
    Ok((l, a))
}

/// Binds the listeners of the servers in `servers` that `role` runs (ephemeral loopback ports
/// without a layout), and puts every server's address in `addrs`: where it listens here, or
/// where the layout says another process does.
async fn bind_role(
    servers: Vec<Addr>,
    role: Role,
    layout: Option<Layout>,
    addrs: &mut BTreeMap<Addr, SocketAddr>,
) -> Result<Vec<(Addr, TcpListener)>, LiveError> {
    let ephemeral: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut listeners = Vec::new();
    for a in servers {
        let want = layout.map_or(ephemeral, |l| l.addr_of(a));
        if role.runs(a) {
            let (l, at) = bind(want).await?;
            addrs.insert(a, at);
            listeners.push((a, l));
        } else {
            addrs.insert(a, want);
        }
    }
    Ok(listeners)
}

fn dials_of(a: Addr, dir: &Directory, addrs: &BTreeMap<Addr, SocketAddr>) -> Vec<Dial> {
    let gw = Dial {
        to: Addr::Gateway,
        at: addrs[&Addr::Gateway],
        noise: true,
    };
    match a {
        Addr::ChatServer | Addr::Adapter(_) => vec![gw],
        Addr::Gateway => (1..dir.providers() as u32)
            .map(|p| Addr::PartnerServer(ProviderId(p)))
            .map(|to| Dial {
                to,
                at: addrs[&to],
                noise: false,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn node(a: Addr, s: &Scenario, dir: &Directory, mailbox: MailboxConfig) -> ServerNode {
    match a {
        Addr::ChatServer => ServerNode::Chat(ChatServer::new(dir, mailbox)),
        Addr::Gateway => ServerNode::Gateway(Gateway::new(
            s.providers.len(),
            s.capacity.gateway.rate_limit_per_partner,
        )),
        Addr::Adapter(p) => ServerNode::Adapter(Adapter::new(p)),
        Addr::PartnerServer(p) => ServerNode::Partner(PartnerServer::new(p, dir, mailbox)),
        Addr::Device(_) => unreachable!("devices are clients, not servers"),
        Addr::MediaStore(_) | Addr::MediaProxy => {
            unreachable!("media services are HTTP servers (media_http), not nodes")
        }
    }
}

/// Starts the servers `role` names: on ephemeral ports without a layout, on the layout's
/// ports with one. Returns once their first dials are done.
pub async fn start_servers(
    s: &Scenario,
    sh: &Shared,
    role: Role,
    layout: Option<Layout>,
) -> Result<Servers, LiveError> {
    let dir = &sh.dir;
    let d = &s.devices;
    let mailbox = MailboxConfig {
        offline_ttl_ns: d.offline_ttl_ns,
        redeliver_initial_ns: d.retry_initial_ns,
        redeliver_max_ns: d.retry_max_ns,
        dedup_window_max: 4096,
        window_max: 32,
        break_ordering: false,
    };
    let mut addrs = BTreeMap::new();
    let listeners = bind_role(server_addrs(dir), role, layout, &mut addrs).await?;
    let inspector = Arc::new(Inspector::new(PLAINTEXT_MARKER));
    let mut handles = Vec::new();
    let mut ready = Vec::new();
    let mut controls = BTreeMap::new();
    for (a, l) in listeners {
        let task = NodeTask::new(
            a,
            node(a, s, dir, mailbox),
            sh.clone(),
            dials_of(a, dir, &addrs),
        );
        controls.insert(a, task.control());
        let noise = a == Addr::Gateway;
        let probe = noise.then(|| inspector.clone());
        spawn_acceptor(l, noise, "gateway", sh.clone(), task.inbox(), probe);
        let (tx, rx) = tokio::sync::oneshot::channel();
        ready.push(rx);
        handles.push(tokio::spawn(task.run(tx)));
    }
    for r in ready {
        let _ = r.await;
    }
    let (media_stores, media_relayed) =
        start_media(sh, role, layout, &mut addrs, &inspector).await?;
    Ok(Servers {
        handles,
        addrs,
        media_stores,
        media_relayed,
        inspector,
        controls,
    })
}

/// Binds and starts the media services `role` runs (every provider's store, the proxy), and
/// adds every media service's address to `addrs`. The proxy's relayed bytes go through the
/// plaintext inspector, as the gateway's transport buffers do.
async fn start_media(
    sh: &Shared,
    role: Role,
    layout: Option<Layout>,
    addrs: &mut BTreeMap<Addr, SocketAddr>,
    inspector: &Arc<Inspector>,
) -> Result<
    (
        BTreeMap<u32, Arc<MediaStore>>,
        Arc<std::sync::atomic::AtomicU64>,
    ),
    LiveError,
> {
    let listeners = bind_role(media_addrs(&sh.dir), role, layout, addrs).await?;
    let mut stores = BTreeMap::new();
    let relayed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (a, l) in listeners {
        let served = match a {
            Addr::MediaStore(p) => {
                let store = Arc::new(MediaStore::default());
                stores.insert(p.0, store.clone());
                MediaRole::Store(store)
            }
            _ => MediaRole::Proxy {
                stores: Arc::new(
                    (addrs.iter())
                        .filter_map(|(a, at)| match a {
                            Addr::MediaStore(p) => Some((p.0, *at)),
                            _ => None,
                        })
                        .collect(),
                ),
                inspector: inspector.clone(),
                relayed: relayed.clone(),
            },
        };
        tokio::spawn(media_http::serve(l, served, sh.shutdown.clone()));
    }
    Ok((stores, relayed))
}

/// What a load-generator shard dials.
pub fn client_dials(addrs: &BTreeMap<Addr, SocketAddr>, dir: &Directory) -> Vec<Dial> {
    let mut dials: Vec<Dial> = server_addrs(dir)
        .into_iter()
        .filter(|a| *a != Addr::Gateway)
        .map(|to| Dial {
            to,
            at: addrs[&to],
            noise: false,
        })
        .collect();
    let direct =
        (1..dir.providers() as u32).any(|p| dir.partner_link(ProviderId(p)) == PartnerLink::Direct);
    if direct {
        dials.push(Dial {
            to: Addr::Gateway,
            at: addrs[&Addr::Gateway],
            noise: true,
        });
    }
    dials
}
