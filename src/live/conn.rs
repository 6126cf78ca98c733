//! One TCP connection between two live tasks: a reader task that turns bytes into [`Record`]
//! batches for its owner's inbox, and a writer task that batches outgoing records into
//! transport messages (length-prefixed; sealed with Noise AES-GCM on the gateway's links).
//! Everything is bounded: the outgoing queue (a full queue drops, the protocol's retries
//! recover), a transport message (64 KiB), a record, the time a peer may stay silent or leave
//! a message half sent, and the memory an idle connection holds (at most 16 KiB).

use super::abuse::{Abuse, AbuseKind, Limits};
use super::codec::{self, Record};
use super::noise::{NOISE_MSG_MAX, NOISE_TAG_LEN};
use snow::StatelessTransportState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Bound on records queued for one connection's writer.
pub const CONN_QUEUE_MAX: usize = 65_536;
/// Bound on a transport message's plaintext: a Noise message less its tag. A plaintext link
/// refuses a longer message too, so both links carry the same records.
pub const MSG_PLAIN_MAX: usize = NOISE_MSG_MAX - NOISE_TAG_LEN;
/// Bytes the writer gathers before one `write_all`.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;
/// The longest a connection stays quiet: its peer may close a connection silent for longer
/// than its own idle bound (`serve --idle-timeout`, at least 5 s).
const KEEPALIVE_MAX: std::time::Duration = std::time::Duration::from_secs(2);
/// A reader's first buffer, allocated when the first bytes arrive.
const READ_BUF_FIRST: usize = 4 * 1024;
/// A reader's largest buffer: one whole transport message with its length (a busy connection
/// grows to it, so that one `recv` takes many messages).
const READ_BUF_MAX: usize = 2 + NOISE_MSG_MAX;
/// What an idle connection may keep of its buffers, at most: its reader keeps up to 8 KiB
/// (more is given back before it waits), its writer up to 4 KiB for each of its two buffers.
pub const IDLE_BUF_MAX: usize = READ_IDLE_MAX + 2 * WRITE_IDLE_MAX;
const READ_IDLE_MAX: usize = 8 * 1024;
const WRITE_IDLE_MAX: usize = 4 * 1024;

pub type ConnId = u64;

/// What reaches a task's inbox from its connections.
pub enum Inbound {
    /// A connection is up; `tx` queues records to send on it.
    Opened(ConnId, mpsc::Sender<Record>),
    Records(ConnId, Vec<Record>),
    Closed(ConnId),
}

/// How a connection's bytes are protected.
#[derive(Clone)]
pub enum Cipher {
    Plain,
    Noise(Arc<StatelessTransportState>),
}

/// Looks at every decrypted transport message a task holds (its buffers) and counts those
/// that contain `marker`: the test's probe for plaintext in the gateway. Every byte is
/// searched (memchr's two-way search, not a compare at every offset).
#[derive(Debug, Default)]
pub struct Inspector {
    pub marker: Vec<u8>,
    finder: Option<memchr::memmem::Finder<'static>>,
    pub hits: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

impl Inspector {
    pub fn new(marker: &[u8]) -> Self {
        Inspector {
            marker: marker.to_vec(),
            finder: (!marker.is_empty()).then(|| memchr::memmem::Finder::new(marker).into_owned()),
            ..Inspector::default()
        }
    }
    pub(super) fn scan(&self, buf: &[u8]) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if self.finder.as_ref().is_some_and(|f| f.find(buf).is_some()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counters and bounds shared by all connections of a process.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Records dropped because a writer's queue was full.
    pub dropped_full: AtomicU64,
    pub bytes_out: AtomicU64,
    pub noise_messages: AtomicU64,
    /// Connections open now, and the most open at once.
    pub open: AtomicU64,
    pub open_peak: AtomicU64,
    /// Connections closed so far: a burst that opens and closes between two looks at `open`
    /// still shows here.
    pub closed: AtomicU64,
    pub abuse: Abuse,
    pub limits: Limits,
}

impl ConnStats {
    pub fn with_limits(limits: Limits) -> Self {
        ConnStats {
            limits,
            ..ConnStats::default()
        }
    }
}

/// What else a connection needs: who inspects its plaintext, the shared counters, and the
/// listener's slot it holds (given back when it closes).
pub struct ConnOpts {
    pub inspector: Option<Arc<Inspector>>,
    pub stats: Arc<ConnStats>,
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Starts the reader and writer of `stream`; the reader announces the connection to `inbox`.
pub fn spawn(
    stream: TcpStream,
    cipher: Cipher,
    id: ConnId,
    inbox: mpsc::Sender<Inbound>,
    o: ConnOpts,
) -> mpsc::Sender<Record> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(CONN_QUEUE_MAX);
    let stats = o.stats;
    tokio::spawn(write_loop(wr, rx, cipher.clone(), stats.clone()));
    let opened = tx.clone();
    let (inspector, permit) = (o.inspector, o.permit);
    tokio::spawn(async move {
        if inbox.send(Inbound::Opened(id, opened)).await.is_err() {
            return;
        }
        let now = stats.open.fetch_add(1, Ordering::Relaxed) + 1;
        stats.open_peak.fetch_max(now, Ordering::Relaxed);
        let mut r = Reader {
            rd,
            cipher,
            inspector,
            stats: &stats,
            buf: Vec::new(),
            plain: Vec::new(),
            start: 0,
            end: 0,
            nonce: 0,
        };
        if let Err(Some(abuse)) = r.run(id, &inbox).await {
            stats.abuse.count(abuse);
        }
        drop(r);
        stats.open.fetch_sub(1, Ordering::Relaxed);
        stats.closed.fetch_add(1, Ordering::Relaxed);
        let _ = inbox.send(Inbound::Closed(id)).await;
        drop(permit); // the listener may accept another connection
    });
    tx
}

/// Queues a record on a connection without waiting: a full or closed queue drops it (counted).
pub fn try_send(tx: &mpsc::Sender<Record>, rec: Record, stats: &ConnStats) -> bool {
    match tx.try_send(rec) {
        Ok(()) => true,
        Err(_) => {
            stats.dropped_full.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// A connection's reading half and its buffers: `buf[start..end]` holds bytes received and not
/// yet taken. Buffers are allocated when bytes arrive, grow to the transport message in hand
/// (never past one whole message), and shrink to [`IDLE_BUF_MAX`] when the peer goes quiet.
struct Reader<'a> {
    rd: OwnedReadHalf,
    cipher: Cipher,
    inspector: Option<Arc<Inspector>>,
    stats: &'a ConnStats,
    buf: Vec<u8>,
    plain: Vec<u8>,
    start: usize,
    end: usize,
    nonce: u64,
}

/// Why a reader stopped: `None` for an orderly close (the peer's, or its owner gone), else the
/// abuse that closed it.
type Stop = Option<AbuseKind>;

impl Reader<'_> {
    /// Reads as much as the socket holds, opens every complete transport message in it and
    /// hands all their records to the owner in one batch: one `recv` per wakeup rather than two
    /// per transport message (length, then body), one inbox send per wakeup.
    async fn run(&mut self, id: ConnId, inbox: &mpsc::Sender<Inbound>) -> Result<(), Stop> {
        let limits = self.stats.limits;
        let body_max = match self.cipher {
            Cipher::Plain => MSG_PLAIN_MAX,
            Cipher::Noise(_) => NOISE_MSG_MAX,
        };
        let mut partial_since: Option<tokio::time::Instant> = None;
        loop {
            let mut recs = Vec::new();
            while let Some(n) = message_len(&self.buf[self.start..self.end]) {
                if n > body_max {
                    return Err(Some(AbuseKind::OversizeFrame));
                }
                if self.end - self.start < 2 + n {
                    break;
                }
                self.open(self.start + 2, n, &mut recs)?;
                self.start += 2 + n;
            }
            if !recs.is_empty() {
                inbox
                    .send(Inbound::Records(id, recs))
                    .await
                    .map_err(|_| None)?;
            }
            let waiting = if self.start == self.end {
                (self.start, self.end) = (0, 0);
                partial_since = None;
                if self.wait_quiet(limits.idle).await? {
                    continue; // bytes taken while checking for them
                }
                limits.idle
            } else {
                let since = *partial_since.get_or_insert_with(tokio::time::Instant::now);
                self.make_room();
                limits.frame.saturating_sub(since.elapsed())
            };
            let read = self.rd.read(&mut self.buf[self.end..]);
            let got = match tokio::time::timeout(waiting, read).await {
                Err(_) if self.start == self.end => return Err(Some(AbuseKind::IdleTimeout)),
                Err(_) => return Err(Some(AbuseKind::StalledFrame)),
                Ok(Err(_)) | Ok(Ok(0)) => return Err(None),
                Ok(Ok(got)) => got,
            };
            self.end += got;
            if self.end == self.buf.len() && self.buf.len() < READ_BUF_MAX {
                // A read that fills the buffer: the peer is busy, take more per read.
                let len = (self.buf.len() * 2).min(READ_BUF_MAX);
                self.buf.resize(len, 0);
            }
        }
    }

    /// Opens the transport message at `buf[at..at + n]` and decodes its records into `recs`.
    fn open(&mut self, at: usize, n: usize, recs: &mut Vec<Record>) -> Result<(), Stop> {
        let sealed = &self.buf[at..at + n];
        let body: &[u8] = match &self.cipher {
            Cipher::Plain => sealed,
            Cipher::Noise(t) => {
                if self.plain.len() < n {
                    self.plain.resize(n, 0);
                }
                let m = t
                    .read_message(self.nonce, sealed, &mut self.plain)
                    .map_err(|_| Some(AbuseKind::Garbage))?;
                self.nonce += 1;
                &self.plain[..m]
            }
        };
        if let Some(i) = &self.inspector {
            i.scan(body);
        }
        decode_all(body, recs).ok_or(Some(AbuseKind::Garbage))
    }

    /// Between messages: gives back what an idle connection need not hold, waits (at most
    /// `idle`) until bytes arrive, and has a buffer ready for them. `true`: bytes were read
    /// on the way (into `buf[..end]`).
    async fn wait_quiet(&mut self, idle: std::time::Duration) -> Result<bool, Stop> {
        if self.buf.len() + self.plain.len() > READ_IDLE_MAX {
            match self.rd.try_read(&mut self.buf) {
                Ok(0) => return Err(None),
                Ok(got) => {
                    self.end = got;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    (self.buf, self.plain) = (Vec::new(), Vec::new());
                }
                Err(_) => return Err(None),
            }
        }
        if self.buf.is_empty() {
            match tokio::time::timeout(idle, self.rd.readable()).await {
                Err(_) => return Err(Some(AbuseKind::IdleTimeout)),
                Ok(Err(_)) => return Err(None),
                Ok(Ok(())) => self.buf = vec![0; READ_BUF_FIRST],
            }
        }
        Ok(false)
    }

    /// Room behind a partial message for the rest of it: moved to the front, the buffer grown
    /// to the whole message if it is longer.
    fn make_room(&mut self) {
        let want = message_len(&self.buf[self.start..self.end]).map_or(2, |n| 2 + n);
        if self.buf.len() - self.start < want || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
    }
}

/// The body length of the transport message at the front of `buf`, once its length is there.
fn message_len(buf: &[u8]) -> Option<usize> {
    let len = buf.get(..2)?;
    Some(u16::from_be_bytes([len[0], len[1]]) as usize)
}

/// Decodes every record of one transport message; `None` on a malformed one (the connection
/// is dropped).
fn decode_all(body: &[u8], recs: &mut Vec<Record>) -> Option<()> {
    let mut at = 0;
    while at < body.len() {
        let (rec, used) = codec::decode(&body[at..]).ok()??;
        recs.push(rec);
        at += used;
    }
    Some(())
}

/// Seals `batch` into one transport message appended to `out` (encrypted straight into it).
fn seal(cipher: &Cipher, nonce: &mut u64, batch: &[u8], out: &mut Vec<u8>, stats: &ConnStats) {
    debug_assert!(batch.len() <= MSG_PLAIN_MAX);
    match cipher {
        Cipher::Plain => {
            out.extend_from_slice(&(batch.len() as u16).to_be_bytes());
            out.extend_from_slice(batch);
        }
        Cipher::Noise(t) => {
            let at = out.len();
            out.resize(at + 2 + batch.len() + NOISE_TAG_LEN, 0);
            let n = t
                .write_message(*nonce, batch, &mut out[at + 2..])
                .expect("a batch is bounded below the Noise message size");
            *nonce += 1;
            out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
            out.truncate(at + 2 + n);
            stats.noise_messages.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Takes records off the queue into transport messages until the queue is empty or a write's
/// worth of bytes is gathered, then writes them with one `write_all`: under load the queue
/// fills while the previous write is in the kernel, and the batches grow by themselves. A
/// connection with nothing to say sends an empty transport message (a keepalive) at a third
/// of the idle bound (every 2 s at most), so that the peer's idle timeout closes only the
/// silent.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Record>,
    cipher: Cipher,
    stats: Arc<ConnStats>,
) {
    let mut nonce = 0u64;
    let mut batch = Vec::new();
    let mut out = Vec::new();
    let keepalive = (stats.limits.idle / 3).min(KEEPALIVE_MAX);
    loop {
        let first = match tokio::time::timeout(keepalive, rx.recv()).await {
            Ok(Some(rec)) => Some(rec),
            Ok(None) => return,
            Err(_) => None, // quiet: the empty message below keeps the connection
        };
        let mut next = first;
        while let Some(rec) = next {
            let mark = batch.len();
            codec::encode(&rec, &mut batch);
            if batch.len() > MSG_PLAIN_MAX {
                assert!(mark > 0, "a record is bounded below a transport message");
                // This record opens the next transport message.
                seal(&cipher, &mut nonce, &batch[..mark], &mut out, &stats);
                batch.drain(..mark);
            }
            next = if out.len() < WRITE_CHUNK_BYTES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() || out.is_empty() {
            seal(&cipher, &mut nonce, &batch, &mut out, &stats);
            batch.clear();
        }
        stats
            .bytes_out
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        if wr.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        if rx.is_empty() && out.capacity().max(batch.capacity()) > WRITE_IDLE_MAX {
            // Quiet now: an idle connection holds little.
            (out, batch) = (Vec::new(), Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{RngTree, SimTime};
    use crate::live::noise::{handshake, NoiseKeys};
    use crate::nodes::Addr;
    use crate::wire::{Ciphertext, DeviceId, Frame, MsgId, Payload, Submission, UserId};
    use tokio::net::TcpListener;

    fn record(i: u64, body_bytes: usize) -> Record {
        let bytes = vec![(i % 251) as u8; body_bytes].into_boxed_slice();
        Record {
            from: Addr::Device(DeviceId(1)),
            to: Addr::ChatServer,
            frame: Frame::Submit(Box::new(Submission {
                msg: MsgId(i),
                from_user: UserId(1),
                from_device: DeviceId(1),
                to_user: UserId(2),
                seq: i as u32,
                sent_at: SimTime::from_nanos(i),
                payload: Payload::Direct(smallvec::smallvec![(
                    DeviceId(2),
                    Ciphertext {
                        len: body_bytes as u32,
                        bytes: Some(bytes),
                        seal: Default::default(),
                    },
                )]),
            })),
        }
    }

    #[test]
    fn inspector_finds_the_marker_anywhere_and_only_there() {
        let i = Inspector::new(b"MARK");
        i.scan(b"....MARK....");
        i.scan(b"MAR");
        i.scan(b"xMARxMARK");
        i.scan(b"");
        assert_eq!(i.hits.load(Ordering::Relaxed), 2);
        assert_eq!(i.messages.load(Ordering::Relaxed), 4);
    }

    /// Records in, the same records out, in order, across many transport messages and partial
    /// reads (5 MB through 64 KiB messages and a 256 KiB read buffer), plain and under Noise.
    #[test]
    fn records_cross_a_connection_in_order_plain_and_noise() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for noise in [false, true] {
            rt.block_on(async {
                let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let at = l.local_addr().unwrap();
                let tree = RngTree::new(3);
                let t2 = tree;
                let server = tokio::spawn(async move {
                    let (mut s, _) = l.accept().await.unwrap();
                    let cipher = if noise {
                        let k = NoiseKeys::derive(&t2, "gw", 0);
                        Cipher::Noise(Arc::new(handshake(&mut s, false, &k).await.unwrap()))
                    } else {
                        Cipher::Plain
                    };
                    (s, cipher)
                });
                let mut c = TcpStream::connect(at).await.unwrap();
                let cipher = if noise {
                    let k = NoiseKeys::derive(&tree, "client", 0);
                    Cipher::Noise(Arc::new(handshake(&mut c, true, &k).await.unwrap()))
                } else {
                    Cipher::Plain
                };
                let (s, scipher) = server.await.unwrap();
                let stats = Arc::new(ConnStats::default());
                let (inbox_tx, mut inbox) = mpsc::channel(64);
                let probe = Arc::new(Inspector::new(b"never-there"));
                let opts = |inspector| ConnOpts {
                    inspector,
                    stats: stats.clone(),
                    permit: None,
                };
                let _server_tx = spawn(s, scipher, 1, inbox_tx, opts(Some(probe.clone())));
                let (dummy_tx, _dummy) = mpsc::channel(64);
                let tx = spawn(c, cipher, 2, dummy_tx, opts(None));
                let n = 5_000u64;
                let sender = tokio::spawn(async move {
                    for i in 0..n {
                        tx.send(record(i, 1000 + (i as usize % 7) * 100))
                            .await
                            .unwrap();
                    }
                    tx
                });
                let mut next = 0u64;
                while next < n {
                    match inbox.recv().await.unwrap() {
                        Inbound::Records(1, recs) => {
                            for r in recs {
                                assert_eq!(r, record(next, 1000 + (next as usize % 7) * 100));
                                next += 1;
                            }
                        }
                        Inbound::Opened(..) => {}
                        _ => panic!("unexpected inbound"),
                    }
                }
                let _tx = sender.await.unwrap();
                assert!(probe.messages.load(Ordering::Relaxed) >= 5_000_000 / 65_535);
                assert_eq!(probe.hits.load(Ordering::Relaxed), 0);
                if noise {
                    assert!(stats.noise_messages.load(Ordering::Relaxed) >= 76);
                }
            });
        }
    }
}
