//! A server node as a tokio task: the same sans-IO node the simulator drives (chat server,
//! gateway, adapter, partner server), fed by its TCP connections, its timers and the wall
//! clock. The task owns the node; connections hand it record batches through a bounded inbox.
//! Routes are learned: a record from `X` on connection `c` teaches "send to `X` on `c`".

use super::abuse::AbuseKind;
use super::clock::Clock;
use super::codec::{self, Record};
use super::conn::{self, Cipher, ConnId, ConnOpts, ConnStats, Inbound, Inspector};
use super::faults::Control;
use super::hops::Stage;
use super::ledger::LedgerSink;
use super::noise::{self, NoiseKeys};
use super::session::{Admit, RunId, Sessions};
use crate::directory::Directory;
use crate::engine::{RngTree, SimTime};
use crate::nodes::adapter::Adapter;
use crate::nodes::chat_server::ChatServer;
use crate::nodes::dispatch::{self, NodeMut};
use crate::nodes::gateway::Gateway;
use crate::nodes::partner_server::PartnerServer;
use crate::nodes::{Addr, Effects, Output, TimerKind};
use crate::wire::Frame;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// Bound on record batches waiting in a node's inbox.
pub const INBOX_MAX: usize = 4096;
/// Bound on pending timers and delayed sends of one node.
pub const TIMERS_MAX: usize = 1_000_000;
/// Pause between two dial attempts.
pub const REDIAL_NS: u64 = 50_000_000;

/// One of the server nodes.
pub enum ServerNode {
    Chat(ChatServer),
    Gateway(Gateway),
    Adapter(Adapter),
    Partner(PartnerServer),
}

impl ServerNode {
    /// The node, lent to the dispatch the simulator shares ([`dispatch`]).
    fn as_node(&mut self) -> NodeMut<'_> {
        match self {
            ServerNode::Chat(c) => NodeMut::Chat(c),
            ServerNode::Gateway(g) => NodeMut::Gateway(g),
            ServerNode::Adapter(a) => NodeMut::Adapter(a),
            ServerNode::Partner(p) => NodeMut::Partner(p),
        }
    }
}

/// A peer a task dials (and redials when the connection drops).
#[derive(Clone, Copy, Debug)]
pub struct Dial {
    pub to: Addr,
    pub at: SocketAddr,
    pub noise: bool,
}

/// What every live task shares.
#[derive(Clone)]
pub struct Shared {
    pub dir: Arc<Directory>,
    pub clock: Clock,
    pub ledger: LedgerSink,
    pub stats: Arc<ConnStats>,
    pub tree: RngTree,
    pub conn_ids: Arc<AtomicU64>,
    /// Partitions in force.
    pub cuts: Arc<super::faults::Cuts>,
    /// Scheduled arrivals not yet taken (sent or dropped) by a generator, and media transfers
    /// under way: the drain waits for both.
    pub arrivals_pending: Arc<AtomicU64>,
    pub shutdown: watch::Receiver<bool>,
    /// The load run this process generates (its shards' hellos name it); 0 in a process that
    /// only serves.
    pub run: RunId,
    /// The traced messages' marks at every stage (see `live::hops`): a load run's, for its
    /// own run only; `None` in a `serve` process, which runs for days and whose marks would
    /// mean nothing without the generator's.
    pub hops: Option<Arc<super::hops::HopTrace>>,
}

impl Shared {
    pub fn next_conn_id(&self) -> ConnId {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// A pending timer or delayed send.
enum Pending {
    Timer(TimerKind),
    Send(Addr, Frame),
    Redial(usize),
}

/// Dials `d` (Noise initiator when the peer is the gateway), starts the connection and says
/// hello for run `run`.
pub async fn dial(
    d: &Dial,
    me: Addr,
    id: ConnId,
    sh: &Shared,
    inbox: mpsc::Sender<Inbound>,
    run: RunId,
) -> Result<mpsc::Sender<Record>, super::LiveError> {
    let mut s = TcpStream::connect(d.at)
        .await
        .map_err(super::LiveError::io("connect"))?;
    let cipher = if d.noise {
        let keys = NoiseKeys::derive(&sh.tree, "initiator", id);
        let hs = noise::handshake(&mut s, true, &keys);
        let t = tokio::time::timeout(sh.stats.limits.handshake, hs)
            .await
            .map_err(|_| super::LiveError::Noise("handshake timed out".into()))??;
        Cipher::Noise(Arc::new(t))
    } else {
        Cipher::Plain
    };
    let opts = ConnOpts {
        inspector: None,
        stats: sh.stats.clone(),
        permit: None,
    };
    let tx = conn::spawn(s, cipher, id, inbox, opts);
    // Introduce ourselves so that the peer can route to us before we send anything else.
    conn::try_send(&tx, codec::hello(me, d.to, run), &sh.stats);
    Ok(tx)
}

/// Accepts connections on `listener` for the task behind `inbox` (Noise responder if `noise`).
pub fn spawn_acceptor(
    listener: TcpListener,
    noise: bool,
    label: &'static str,
    sh: Shared,
    inbox: mpsc::Sender<Inbound>,
    inspector: Option<Arc<Inspector>>,
) {
    let mut shutdown = sh.shutdown.clone();
    let limits = sh.stats.limits;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections_max));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let Ok((mut s, _)) = accepted else { continue };
            // Bounded: past the limit a connection is closed at once.
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                sh.stats.abuse.count(AbuseKind::RefusedConnection);
                continue;
            };
            let (sh, inbox, inspector) = (sh.clone(), inbox.clone(), inspector.clone());
            tokio::spawn(async move {
                let id = sh.next_conn_id();
                let cipher = if noise {
                    let keys = NoiseKeys::derive(&sh.tree, label, 0);
                    let hs = noise::handshake(&mut s, false, &keys);
                    // A bad or silent peer is dropped, its slot freed.
                    match tokio::time::timeout(limits.handshake, hs).await {
                        Ok(Ok(t)) => Cipher::Noise(Arc::new(t)),
                        Ok(Err(_)) => return sh.stats.abuse.count(AbuseKind::HandshakeFailed),
                        Err(_) => return sh.stats.abuse.count(AbuseKind::HandshakeTimeout),
                    }
                } else {
                    Cipher::Plain
                };
                let opts = ConnOpts {
                    inspector,
                    stats: sh.stats.clone(),
                    permit: Some(permit),
                };
                conn::spawn(s, cipher, id, inbox, opts);
            });
        }
    });
}

/// A running server node: its state machine, connections, routes and timers.
pub struct NodeTask {
    pub me: Addr,
    pub node: ServerNode,
    sh: Shared,
    inbox_tx: mpsc::Sender<Inbound>,
    inbox: mpsc::Receiver<Inbound>,
    conns: BTreeMap<ConnId, mpsc::Sender<Record>>,
    routes: BTreeMap<Addr, ConnId>,
    dials: Vec<Dial>,
    /// Per dial: its current connection.
    dialed: Vec<Option<ConnId>>,
    timers: BTreeMap<(SimTime, u64), Pending>,
    timer_seq: u64,
    fx: Effects,
    /// Records with no route (the peer is not connected): dropped, the retries recover.
    pub unroutable: u64,
    control_tx: mpsc::Sender<Control>,
    control: mpsc::Receiver<Control>,
    /// Crashed, until restarted: no connections, no processing.
    down: bool,
    /// The load run each connection's hello named.
    conn_run: BTreeMap<ConnId, RunId>,
    /// Per device, the run it belongs to now.
    sessions: Sessions,
    /// Devices replaced by a later run's install, and the copies dropped with them.
    pub reinstalls: u64,
    pub reinstall_dropped: u64,
    /// Time spent in the node's own logic (handling frames), and the frames it handled.
    pub cost: NodeCost,
}

/// What a live node's own logic cost: wall time inside its frame handler (not the transport,
/// not the ledger), over the message frames and the other frames it handled. `validate` prices
/// the simulated copy's nodes with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct NodeCost {
    pub busy_ns: u64,
    pub message_frames: u64,
    pub other_frames: u64,
    /// Batches of frames its connections' readers handed it: one per socket read that found
    /// frames (a reader takes all a read brings). The host's work follows its reads: a busy
    /// thread goes round without parking, but each round reads each ready connection.
    pub reads: u64,
}

impl NodeCost {
    /// The service time of one message frame, as the simulator prices a node: every other
    /// frame costs a quarter of a message frame (`[capacity] per_message`).
    pub fn per_message_ns(&self) -> Option<u64> {
        let units = self.message_frames as f64 + 0.25 * self.other_frames as f64;
        (self.message_frames > 0).then(|| (self.busy_ns as f64 / units) as u64)
    }
}

impl NodeTask {
    pub fn new(me: Addr, node: ServerNode, sh: Shared, dials: Vec<Dial>) -> Self {
        let (inbox_tx, inbox) = mpsc::channel(INBOX_MAX);
        let (control_tx, control) = mpsc::channel(16);
        let n = dials.len();
        let sessions = Sessions::new(sh.dir.devices());
        NodeTask {
            me,
            node,
            sh,
            inbox_tx,
            inbox,
            conns: BTreeMap::new(),
            routes: BTreeMap::new(),
            dials,
            dialed: vec![None; n],
            timers: BTreeMap::new(),
            timer_seq: 0,
            fx: Effects::default(),
            unroutable: 0,
            control_tx,
            control,
            down: false,
            conn_run: BTreeMap::new(),
            sessions,
            reinstalls: 0,
            reinstall_dropped: 0,
            cost: NodeCost::default(),
        }
    }

    /// Where faults are sent.
    pub fn control(&self) -> mpsc::Sender<Control> {
        self.control_tx.clone()
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Crash { durable } => {
                self.down = true;
                // State lost as the simulator's crash loses it.
                dispatch::crash(self.node.as_node(), durable);
                self.conns.clear(); // dropping the senders closes every connection
                self.routes.clear();
                self.timers.retain(|_, p| matches!(p, Pending::Redial(_)));
                self.dialed.iter_mut().for_each(|d| *d = None);
            }
            Control::Restart => {
                self.down = false;
                let at = self.sh.clock.now();
                for i in 0..self.dials.len() {
                    self.push_pending(at, Pending::Redial(i));
                }
            }
        }
    }

    /// The sender that the node's listener hands accepted connections to.
    pub fn inbox(&self) -> mpsc::Sender<Inbound> {
        self.inbox_tx.clone()
    }

    /// Runs until shutdown; returns the node for the report. `ready` fires once the first
    /// dials are done.
    pub async fn run(mut self, ready: tokio::sync::oneshot::Sender<()>) -> Self {
        for i in 0..self.dials.len() {
            self.redial(i).await;
        }
        let _ = ready.send(());
        let mut shutdown = self.sh.shutdown.clone();
        loop {
            let next = self.timers.first_key_value().map(|(k, _)| k.0);
            let wake = self
                .sh
                .clock
                .instant(next.unwrap_or(SimTime::MAX.min(SimTime::from_secs(1 << 30))));
            tokio::select! {
                m = self.inbox.recv() => match m {
                    Some(m) => self.on_inbound(m),
                    None => break,
                },
                _ = tokio::time::sleep_until(wake), if next.is_some() => self.on_timers().await,
                Some(c) = self.control.recv() => self.on_control(c),
                _ = shutdown.changed() => break,
            }
        }
        self
    }

    async fn redial(&mut self, i: usize) {
        let d = self.dials[i];
        if self.down || self.dialed[i].is_some() {
            return;
        }
        if self.sh.cuts.blocks(self.me, d.to, &self.sh.dir) {
            let at = self.sh.clock.now().plus(REDIAL_NS);
            self.push_pending(at, Pending::Redial(i));
            return;
        }
        let id = self.sh.next_conn_id();
        let inbox = self.inbox_tx.clone();
        match dial(&d, self.me, id, &self.sh, inbox, RunId::default()).await {
            Ok(tx) => {
                self.conns.insert(id, tx);
                self.routes.insert(d.to, id);
                self.dialed[i] = Some(id);
            }
            Err(_) => {
                let at = self.sh.clock.now().plus(REDIAL_NS);
                self.push_pending(at, Pending::Redial(i));
            }
        }
    }

    fn push_pending(&mut self, at: SimTime, p: Pending) {
        if self.timers.len() >= TIMERS_MAX {
            return; // bounded: a timer lost here is covered by the peers' retries
        }
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), p);
    }

    fn on_inbound(&mut self, m: Inbound) {
        match m {
            Inbound::Opened(id, tx) => {
                if !self.down {
                    self.conns.insert(id, tx);
                } // else: dropped at once, which closes it (a crashed server refuses)
            }
            Inbound::Closed(id) => {
                self.conns.remove(&id);
                self.conn_run.remove(&id);
                self.routes.retain(|_, c| *c != id);
                if let Some(i) = self.dialed.iter().position(|c| *c == Some(id)) {
                    self.dialed[i] = None;
                    let at = self.sh.clock.now().plus(REDIAL_NS);
                    self.push_pending(at, Pending::Redial(i));
                }
            }
            Inbound::Records(id, recs) => {
                if self.down {
                    return;
                }
                self.cost.reads += 1;
                let now = self.sh.clock.now();
                for rec in recs {
                    if self.sh.cuts.blocks(rec.from, self.me, &self.sh.dir) {
                        if !matches!(rec.from, Addr::Device(_)) {
                            // A partition between two servers drops their connection.
                            self.conns.remove(&id);
                            self.routes.retain(|_, c| *c != id);
                            break;
                        }
                        continue;
                    }
                    if let Some(run) = codec::hello_run(&rec) {
                        self.routes.insert(rec.from, id);
                        self.conn_run.insert(id, run);
                        continue;
                    }
                    // A refused frame teaches no route.
                    if !self.admit(id, &rec) {
                        continue;
                    }
                    self.routes.insert(rec.from, id);
                    if rec.frame.is_message() {
                        self.cost.message_frames += 1;
                        if let (Some(hops), Some(m)) = (&self.sh.hops, rec.frame.msg()) {
                            let index = super::session::RunId::index(m);
                            hops.mark(index, Stage::Node(self.me), now.as_nanos());
                        }
                    } else {
                        self.cost.other_frames += 1;
                    }
                    let started = self.sh.clock.now();
                    let node = self.node.as_node();
                    dispatch::handle_frame(
                        node,
                        now,
                        rec.from,
                        rec.frame,
                        false,
                        &self.sh.dir,
                        &mut self.fx,
                    );
                    self.cost.busy_ns += self.sh.clock.now().since(started);
                }
                self.apply_effects(now);
            }
        }
    }

    /// Whether a record goes on to the node: a device's frame must belong to the run the device
    /// is in now; the first frame of a later run replaces the device's old install first.
    fn admit(&mut self, conn: ConnId, rec: &Record) -> bool {
        let Addr::Device(d) = rec.from else {
            return true; // another server's frame
        };
        let run = self.conn_run.get(&conn).copied().unwrap_or_default();
        match self.sessions.admit(d, run, &rec.frame) {
            Admit::Current => true,
            Admit::NewInstall => {
                self.reinstalls += 1;
                self.reinstall_dropped += dispatch::reinstall(self.node.as_node(), d);
                true
            }
            Admit::Stale => {
                self.sh.stats.abuse.count(AbuseKind::StaleRunFrame);
                false
            }
        }
    }

    async fn on_timers(&mut self) {
        let now = self.sh.clock.now();
        while let Some(entry) = self.timers.first_entry() {
            let at = entry.key().0;
            if at > now {
                break;
            }
            let pending = entry.remove();
            if self.down && !matches!(pending, Pending::Redial(_)) {
                continue;
            }
            match pending {
                // The node sees the instant it armed: it tells a stale timer by it.
                Pending::Timer(t) => {
                    dispatch::handle_timer(self.node.as_node(), at, t, &self.sh.dir, &mut self.fx)
                }
                Pending::Send(to, frame) => self.fx.send(to, frame),
                Pending::Redial(i) => self.redial(i).await,
            }
        }
        self.apply_effects(now);
    }

    fn apply_effects(&mut self, now: SimTime) {
        // The ledger first: a frame sent below may cause an event in another task (a device
        // shows the message) that must not overtake this one (the server accepted it).
        if !self.fx.ledger.is_empty() {
            self.sh.ledger.apply(now, &mut self.fx.ledger);
        }
        let outputs = std::mem::take(&mut self.fx.outputs);
        for o in outputs {
            match o {
                Output::Send { to, frame } => self.send(to, frame),
                Output::SendAfter {
                    delay_ns,
                    to,
                    frame,
                } => self.push_pending(now.plus(delay_ns), Pending::Send(to, frame)),
                Output::Timer { at, timer } => self.push_pending(at, Pending::Timer(timer)),
                // Left to fire: the node ignores a timer it no longer has armed.
                Output::CancelTimer { .. } => {}
            }
        }
    }

    fn send(&mut self, to: Addr, frame: Frame) {
        if self.sh.cuts.blocks(self.me, to, &self.sh.dir) {
            if !matches!(to, Addr::Device(_)) {
                if let Some(c) = self.routes.remove(&to) {
                    self.conns.remove(&c);
                }
            }
            return;
        }
        let tx = self.routes.get(&to).and_then(|c| self.conns.get(c));
        let sent = tx.is_some_and(|tx| {
            let rec = Record {
                from: self.me,
                to,
                frame,
            };
            conn::try_send(tx, rec, &self.sh.stats)
        });
        if !sent {
            self.unroutable += 1;
        }
    }
}
