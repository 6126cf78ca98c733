//! The media service over real sockets: stores and the proxy on loopback, uploads and
//! downloads, the proxy's inspection, and the answers to what a client must not do.

use super::*;

struct Hosts {
    stores: Vec<(Arc<MediaStore>, SocketAddr)>,
    proxy: SocketAddr,
    inspector: Arc<Inspector>,
    relayed: Arc<AtomicU64>,
    _stop: watch::Sender<bool>,
}

/// Two providers' stores (0: the gatekeeper's, 1: a partner's) and the gatekeeper's proxy.
async fn hosts(marker: &[u8]) -> Hosts {
    let (stop, shutdown) = watch::channel(false);
    let mut stores = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback bind");
        let at = l.local_addr().expect("bound");
        let store = Arc::new(MediaStore::default());
        tokio::spawn(serve(l, MediaRole::Store(store.clone()), shutdown.clone()));
        stores.push((store, at));
    }
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback bind");
    let proxy = l.local_addr().expect("bound");
    let inspector = Arc::new(Inspector::new(marker));
    let relayed = Arc::new(AtomicU64::new(0));
    let role = MediaRole::Proxy {
        stores: Arc::new(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u32, s.1))
                .collect(),
        ),
        inspector: inspector.clone(),
        relayed: relayed.clone(),
    };
    tokio::spawn(serve(l, role, shutdown));
    Hosts {
        stores,
        proxy,
        inspector,
        relayed,
        _stop: stop,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn code(r: Result<impl Sized, MediaHttpError>) -> Option<StatusCode> {
    match r {
        Err(MediaHttpError::Status { status, .. }) => Some(status),
        _ => None,
    }
}

#[test]
fn blobs_go_up_to_a_store_and_come_down_directly_and_through_the_proxy() {
    runtime().block_on(async {
        let h = hosts(b"CANARY").await;
        let (partner, at) = (&h.stores[1].0, h.stores[1].1);
        let blob = Bytes::from(vec![7u8; 300_000]);
        upload(at, 42, blob.clone()).await.expect("stored");
        assert_eq!(partner.bytes(), 300_000);
        // A retry of the same upload (its answer was lost) is fine; other bytes are not.
        upload(at, 42, blob.clone())
            .await
            .expect("the same bytes again");
        let other = upload(at, 42, Bytes::from_static(b"else")).await;
        assert_eq!(code(other), Some(StatusCode::CONFLICT));
        assert_eq!(download(at, "/blobs/42").await.expect("direct"), blob);
        let via = download(h.proxy, "/proxy/1/blobs/42")
            .await
            .expect("proxied");
        assert_eq!(via, blob);
        assert_eq!(h.relayed.load(Ordering::Relaxed), 300_000);
        assert_eq!(h.inspector.hits.load(Ordering::Relaxed), 0);
        assert_eq!(
            code(download(at, "/blobs/43").await),
            Some(StatusCode::NOT_FOUND)
        );
        let missing = download(h.proxy, "/proxy/1/blobs/43").await;
        assert_eq!(code(missing), Some(StatusCode::NOT_FOUND));
        let unknown = download(h.proxy, "/proxy/9/blobs/42").await;
        assert_eq!(code(unknown), Some(StatusCode::NOT_FOUND));
        assert_eq!(h.stores[0].0.bytes(), 0, "the other store holds nothing");
    });
}

#[test]
fn the_proxy_inspects_what_it_relays() {
    runtime().block_on(async {
        let h = hosts(b"CANARY").await;
        let at = h.stores[0].1;
        // A blob that was not encrypted: the proxy's inspection finds the marker in it.
        upload(at, 1, Bytes::from_static(b"xxCANARYxx"))
            .await
            .expect("stored");
        download(h.proxy, "/proxy/0/blobs/1")
            .await
            .expect("proxied");
        assert_eq!(h.inspector.hits.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn oversize_blobs_wrong_methods_and_bad_paths_are_refused() {
    runtime().block_on(async {
        let h = hosts(b"CANARY").await;
        let at = h.stores[0].1;
        let big = Bytes::from(vec![0u8; BLOB_BYTES_MAX + 1]);
        let r = upload(at, 5, big).await;
        // Refused with 413; the server may close before the client has written it all.
        assert!(
            matches!(
                r,
                Err(MediaHttpError::Status {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    ..
                }) | Err(MediaHttpError::Http(..))
            ),
            "an upload over the bound: {r:?}"
        );
        assert_eq!(h.stores[0].0.bytes(), 0);
        assert_eq!(
            code(download(at, "/nothing").await),
            Some(StatusCode::NOT_FOUND)
        );
        let put_at_proxy = upload(h.proxy, 5, Bytes::from_static(b"x")).await;
        assert_eq!(code(put_at_proxy), Some(StatusCode::METHOD_NOT_ALLOWED));
        assert_eq!(
            code(download(h.proxy, "/proxy/x/blobs/1").await),
            Some(StatusCode::NOT_FOUND)
        );
    });
}

#[test]
fn a_full_store_expires_its_oldest_blobs() {
    let store = MediaStore::default();
    let chunk = Bytes::from(vec![1u8; BLOB_BYTES_MAX]);
    let fits = STORE_BYTES_MAX / BLOB_BYTES_MAX as u64;
    for id in 0..fits {
        assert_eq!(store.put(id, chunk.clone()), StatusCode::CREATED);
    }
    assert_eq!(store.bytes(), STORE_BYTES_MAX);
    assert_eq!(store.put(fits, chunk), StatusCode::CREATED);
    assert_eq!(store.bytes(), STORE_BYTES_MAX, "still within the bound");
    assert_eq!(store.expired.load(Ordering::Relaxed), 1);
    assert!(store.get(0).is_none(), "the oldest went first");
    assert!(store.get(1).is_some() && store.get(fits).is_some());
}
