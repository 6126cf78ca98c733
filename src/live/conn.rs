//! One TCP connection between two live tasks: a reader task that turns bytes into [`Record`]
//! batches for its owner's inbox, and a writer task that batches outgoing records into
//! transport messages (length-prefixed; sealed with Noise AES-GCM on the gateway's links).
//! Everything is bounded: the outgoing queue (a full queue drops, the protocol's retries
//! recover), a transport message (64 KiB), a record.

use super::codec::{self, Record, RECORD_MAX_BYTES};
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
/// A reader's buffer: room for several whole transport messages per `recv`.
const READ_BUF_BYTES: usize = 256 * 1024;

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
    fn scan(&self, buf: &[u8]) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        if self.finder.as_ref().is_some_and(|f| f.find(buf).is_some()) {
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

/// Reads as much as the socket holds into one buffer, opens every complete transport message
/// in it and hands all their records to the owner in one batch: one `recv` per wakeup rather
/// than two per transport message (length, then body), one inbox send per wakeup.
async fn read_loop(
    mut rd: OwnedReadHalf,
    cipher: Cipher,
    id: ConnId,
    inbox: &mpsc::Sender<Inbound>,
    inspector: Option<Arc<Inspector>>,
) -> Option<()> {
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut plain = vec![0u8; NOISE_MSG_MAX];
    let (mut start, mut end) = (0usize, 0usize);
    let mut nonce = 0u64;
    loop {
        let mut recs = Vec::new();
        while let Some(n) = complete_message(&buf[start..end]) {
            let sealed = &buf[start + 2..start + 2 + n];
            let body: &[u8] = match &cipher {
                Cipher::Plain => sealed,
                Cipher::Noise(t) => {
                    let m = t.read_message(nonce, sealed, &mut plain).ok()?;
                    nonce += 1;
                    &plain[..m]
                }
            };
            if let Some(i) = &inspector {
                i.scan(body);
            }
            decode_all(body, &mut recs)?;
            start += 2 + n;
        }
        if !recs.is_empty() {
            inbox.send(Inbound::Records(id, recs)).await.ok()?;
        }
        if start == end {
            (start, end) = (0, 0);
        } else if buf.len() - end < 2 + NOISE_MSG_MAX {
            // Room for one more whole transport message behind the partial one.
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let got = rd.read(&mut buf[end..]).await.ok()?;
        if got == 0 {
            return None;
        }
        end += got;
    }
}

/// The body length of the transport message at the front of `buf`, once it is all there.
fn complete_message(buf: &[u8]) -> Option<usize> {
    let len = buf.get(..2)?;
    let n = u16::from_be_bytes([len[0], len[1]]) as usize;
    (buf.len() >= 2 + n).then_some(n)
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
/// fills while the previous write is in the kernel, and the batches grow by themselves.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Record>,
    cipher: Cipher,
    stats: Arc<ConnStats>,
) {
    let mut nonce = 0u64;
    let mut batch = Vec::with_capacity(MSG_PLAIN_MAX + RECORD_MAX_BYTES + 4);
    let mut out = Vec::with_capacity(WRITE_CHUNK_BYTES + NOISE_MSG_MAX);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
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
        if !batch.is_empty() {
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
                payload: Payload::Direct(vec![(
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
                let _server_tx = spawn(
                    s,
                    scipher,
                    1,
                    inbox_tx,
                    Some(probe.clone()),
                    stats.clone(),
                    None,
                );
                let (dummy_tx, _dummy) = mpsc::channel(64);
                let tx = spawn(c, cipher, 2, dummy_tx, None, stats.clone(), None);
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
