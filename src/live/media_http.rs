//! The live media service over real HTTP/1.1 (hyper), as a messenger's CDN works: each
//! provider's media store keeps encrypted blobs (`PUT /blobs/<id>` stores one, `GET /blobs/<id>`
//! returns it), and the gatekeeper's media proxy relays a download from another provider's store
//! (`GET /proxy/<provider>/blobs/<id>`), so that a device only ever talks to its own provider and
//! the proxy. Stores hold ciphertext only: the client encrypts a blob with its attachment key
//! before the upload and checks the digest after the download (`e2ee::attachment`). Every byte
//! the proxy relays passes the plaintext inspector, as the gateway's transport buffers do.
//!
//! Bounded against strangers: a blob at most [`BLOB_BYTES_MAX`], a store at most
//! [`STORE_BYTES_MAX`] (past it the oldest blobs expire, as a CDN's do after their retention:
//! a server that lives through many load runs keeps storing), [`CONNECTIONS_MAX`] connections
//! per listener, 5 s to send the request head and 10 s for its body.

use super::conn::Inspector;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Bound on one blob (live runs send scaled-down media: see the schedule).
pub const BLOB_BYTES_MAX: usize = 1 << 20;
/// Bound on what one store holds.
pub const STORE_BYTES_MAX: u64 = 256 << 20;
/// Bound on open connections per listener; one past it is closed at once.
pub const CONNECTIONS_MAX: usize = 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a transfer failed, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum MediaHttpError {
    #[error("media host {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("media host {0}: {1}")]
    Http(SocketAddr, hyper::Error),
    #[error("media host {at} answered {status} to {method} {path}")]
    Status {
        at: SocketAddr,
        method: &'static str,
        path: String,
        status: StatusCode,
    },
    #[error("media host {0}: a body over {BLOB_BYTES_MAX} bytes")]
    TooLarge(SocketAddr),
    #[error("media host {0}: no answer within {1:?}")]
    Timeout(SocketAddr, Duration),
}

/// One provider's blobs, in memory, oldest first out.
#[derive(Debug, Default)]
pub struct MediaStore {
    blobs: Mutex<Blobs>,
    bytes: AtomicU64,
    /// Blobs expired to make room for newer ones.
    pub expired: AtomicU64,
    /// Requests answered, per outcome, for the run's report.
    pub stored: AtomicU64,
    pub served: AtomicU64,
    pub refused: AtomicU64,
}

impl MediaStore {
    /// Stores `blob` under `id`: `Created` when new, `Ok` when the same bytes are there already
    /// (an upload retried after a lost answer), `Conflict` for other bytes under the id. Past
    /// the store's bound the oldest blobs expire first.
    fn put(&self, id: u64, blob: Bytes) -> StatusCode {
        let mut b = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(have) = b.by_id.get(&id) {
            return if *have == blob {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
        }
        let len = blob.len() as u64;
        assert!(len <= BLOB_BYTES_MAX as u64, "the body limit bounds a blob");
        while self.bytes.load(Ordering::Relaxed) + len > STORE_BYTES_MAX {
            let Some(old) = b.order.pop_front() else {
                break;
            };
            if let Some(gone) = b.by_id.remove(&old) {
                self.bytes.fetch_sub(gone.len() as u64, Ordering::Relaxed);
                self.expired.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        b.by_id.insert(id, blob);
        b.order.push_back(id);
        StatusCode::CREATED
    }

    fn get(&self, id: u64) -> Option<Bytes> {
        let b = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        b.by_id.get(&id).cloned()
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Blobs {
    by_id: BTreeMap<u64, Bytes>,
    /// Ids in the order they were stored.
    order: std::collections::VecDeque<u64>,
}

/// What a listener serves.
#[derive(Clone)]
pub enum MediaRole {
    Store(Arc<MediaStore>),
    /// The gatekeeper's proxy: the stores it relays from, by provider index.
    Proxy {
        stores: Arc<BTreeMap<u32, SocketAddr>>,
        inspector: Arc<Inspector>,
        relayed: Arc<AtomicU64>,
    },
}

/// Serves `role` on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, role: MediaRole, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        // Over the bound: the connection is dropped (closed) at once.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let role = role.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let role = role.clone();
                async move { Ok::<_, Infallible>(answer(&role, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// The blob id of `/blobs/<id>`.
fn blob_id(path: &str) -> Option<u64> {
    path.strip_prefix("/blobs/")?.parse().ok()
}

/// The provider and blob id of `/proxy/<provider>/blobs/<id>`.
fn proxied(path: &str) -> Option<(u32, u64)> {
    let rest = path.strip_prefix("/proxy/")?;
    let (provider, blob) = rest.split_once('/')?;
    Some((provider.parse().ok()?, blob_id(&format!("/{blob}"))?))
}

async fn answer(role: &MediaRole, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (role, req.method().clone()) {
        (MediaRole::Store(store), Method::PUT) => {
            let Some(id) = blob_id(&path) else {
                return status(StatusCode::NOT_FOUND);
            };
            let body = Limited::new(req.into_body(), BLOB_BYTES_MAX);
            let code = match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
                Ok(Ok(b)) => store.put(id, b.to_bytes()),
                Ok(Err(_)) => StatusCode::PAYLOAD_TOO_LARGE,
                Err(_) => StatusCode::REQUEST_TIMEOUT,
            };
            let counter = if code.is_success() {
                &store.stored
            } else {
                &store.refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            status(code)
        }
        (MediaRole::Store(store), Method::GET) => match blob_id(&path).and_then(|id| store.get(id))
        {
            Some(blob) => {
                store.served.fetch_add(1, Ordering::Relaxed);
                Response::new(Full::new(blob))
            }
            None => status(StatusCode::NOT_FOUND),
        },
        (
            MediaRole::Proxy {
                stores,
                inspector,
                relayed,
            },
            Method::GET,
        ) => {
            let Some((provider, id)) = proxied(&path) else {
                return status(StatusCode::NOT_FOUND);
            };
            let Some(&at) = stores.get(&provider) else {
                return status(StatusCode::NOT_FOUND);
            };
            match download(at, &format!("/blobs/{id}")).await {
                Ok(blob) => {
                    inspector.scan(&blob);
                    relayed.fetch_add(blob.len() as u64, Ordering::Relaxed);
                    Response::new(Full::new(blob))
                }
                Err(MediaHttpError::Status { status: s, .. }) if s == StatusCode::NOT_FOUND => {
                    status(StatusCode::NOT_FOUND)
                }
                Err(_) => status(StatusCode::BAD_GATEWAY),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// One request on a fresh connection: the media hosts are on loopback, and a fresh connection
/// per transfer keeps the client free of pooling state.
async fn request(
    at: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Bytes, MediaHttpError> {
    let stream = TcpStream::connect(at)
        .await
        .map_err(|e| MediaHttpError::Connect(at, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| MediaHttpError::Http(at, e))?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(hyper::header::HOST, at.to_string())
        .body(Full::new(body))
        .expect("a request of a method, a path and a body is well formed");
    let exchange = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| MediaHttpError::Http(at, e))?;
        let code = resp.status();
        if !code.is_success() {
            return Err(MediaHttpError::Status {
                at,
                method: if method == Method::PUT { "PUT" } else { "GET" },
                path: path.to_string(),
                status: code,
            });
        }
        let body = Limited::new(resp.into_body(), BLOB_BYTES_MAX);
        match body.collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(_) => Err(MediaHttpError::TooLarge(at)),
        }
    };
    tokio::time::timeout(BODY_TIMEOUT, exchange)
        .await
        .map_err(|_| MediaHttpError::Timeout(at, BODY_TIMEOUT))?
}

/// Stores `blob` as `id` at the store `at`.
pub async fn upload(at: SocketAddr, id: u64, blob: Bytes) -> Result<(), MediaHttpError> {
    request(at, Method::PUT, &format!("/blobs/{id}"), blob)
        .await
        .map(|_| ())
}

/// Fetches `path` (`/blobs/<id>` at a store, `/proxy/<provider>/blobs/<id>` at the proxy).
pub async fn download(at: SocketAddr, path: &str) -> Result<Bytes, MediaHttpError> {
    request(at, Method::GET, path, Bytes::new()).await
}

#[cfg(test)]
mod tests;
