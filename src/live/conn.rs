//! One TCP connection between two live tasks: a reader task that turns bytes into [`Record`]
//! batches for its owner's inbox, and a writer task that batches outgoing records into
//! transport messages (length-prefixed; sealed with Noise AES-GCM on the gateway's links).
//! Everything is bounded: the outgoing queue (a full queue drops, the protocol's retries
//! recover), a transport message (64 KiB), a record.

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
/// Bound on a transport message's plaintext: a Noise message less its tag.
pub const MSG_PLAIN_MAX: usize = NOISE_MSG_MAX - NOISE_TAG_LEN;
/// Bytes the writer gathers before one `write_all`.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;

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
/// that contain `marker`: the test's probe for plaintext in the gateway.
#[derive(Debug, Default)]
pub struct Inspector {
    pub marker: Vec<u8>,
    pub hits: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
}

impl Inspector {
    pub fn new(marker: &[u8]) -> Self {
        Inspector {
            marker: marker.to_vec(),
            ..Inspector::default()
        }
    }
    fn scan(&self, buf: &[u8]) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if !self.marker.is_empty() && buf.windows(self.marker.len()).any(|w| w == self.marker) {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counters shared by all connections of a run.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Records dropped because a writer's queue was full.
    pub dropped_full: AtomicU64,
    pub bytes_out: AtomicU64,
    pub noise_messages: AtomicU64,
}

/// Starts the reader and writer of `stream`; the reader announces the connection to `inbox`.
pub fn spawn(
    stream: TcpStream,
    cipher: Cipher,
    id: ConnId,
    inbox: mpsc::Sender<Inbound>,
    inspector: Option<Arc<Inspector>>,
    stats: Arc<ConnStats>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> mpsc::Sender<Record> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(CONN_QUEUE_MAX);
    tokio::spawn(write_loop(wr, rx, cipher.clone(), stats));
    let opened = tx.clone();
    tokio::spawn(async move {
        if inbox.send(Inbound::Opened(id, opened)).await.is_err() {
            return;
        }
        let _ = read_loop(rd, cipher, id, &inbox, inspector).await;
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

async fn read_loop(
    mut rd: OwnedReadHalf,
    cipher: Cipher,
    id: ConnId,
    inbox: &mpsc::Sender<Inbound>,
    inspector: Option<Arc<Inspector>>,
) -> Option<()> {
    let mut sealed = vec![0u8; NOISE_MSG_MAX];
    let mut plain = vec![0u8; NOISE_MSG_MAX];
    let mut nonce = 0u64;
    loop {
        let mut len = [0u8; 2];
        rd.read_exact(&mut len).await.ok()?;
        let n = u16::from_be_bytes(len) as usize;
        rd.read_exact(&mut sealed[..n]).await.ok()?;
        let body: &[u8] = match &cipher {
            Cipher::Plain => &sealed[..n],
            Cipher::Noise(t) => {
                let m = t.read_message(nonce, &sealed[..n], &mut plain).ok()?;
                nonce += 1;
                &plain[..m]
            }
        };
        if let Some(i) = &inspector {
            i.scan(body);
        }
        let mut recs = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let (rec, used) = codec::decode(&body[at..]).ok()??;
            recs.push(rec);
            at += used;
        }
        inbox.send(Inbound::Records(id, recs)).await.ok()?;
    }
}

/// Seals `batch` into one transport message appended to `out`.
fn seal(cipher: &Cipher, nonce: &mut u64, batch: &[u8], out: &mut Vec<u8>, scratch: &mut [u8]) {
    match cipher {
        Cipher::Plain => {
            out.extend_from_slice(&(batch.len() as u16).to_be_bytes());
            out.extend_from_slice(batch);
        }
        Cipher::Noise(t) => {
            let n = t
                .write_message(*nonce, batch, scratch)
                .expect("a batch is bounded below the Noise message size");
            *nonce += 1;
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&scratch[..n]);
        }
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Record>,
    cipher: Cipher,
    stats: Arc<ConnStats>,
) {
    let mut nonce = 0u64;
    let mut scratch = vec![0u8; NOISE_MSG_MAX];
    let mut batch = Vec::with_capacity(MSG_PLAIN_MAX);
    let mut one = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(WRITE_CHUNK_BYTES + NOISE_MSG_MAX);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(rec) = next {
            one.clear();
            codec::encode(&rec, &mut one);
            if batch.len() + one.len() > MSG_PLAIN_MAX {
                seal(&cipher, &mut nonce, &batch, &mut out, &mut scratch);
                batch.clear();
            }
            batch.extend_from_slice(&one);
            next = if out.len() < WRITE_CHUNK_BYTES {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            seal(&cipher, &mut nonce, &batch, &mut out, &mut scratch);
            batch.clear();
        }
        if matches!(cipher, Cipher::Noise(_)) {
            stats.noise_messages.fetch_add(1, Ordering::Relaxed);
        }
        stats
            .bytes_out
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        if wr.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}
