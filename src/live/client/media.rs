//! A shard's media, over the live media services' HTTP (`live::media_http`): a media message's
//! blob is encrypted with a fresh attachment key and uploaded to the sender's provider's store
//! before the message goes (its latency includes the upload, as in the simulator); the pointer
//! (host, blob id, key, digests) travels inside the Signal message. A recipient that decrypted
//! a pointer fetches the blob (from its own provider's store, or from another provider's through
//! the gatekeeper's proxy), checks both digests and the MAC, decrypts it and checks its marker.

use super::Shard;
use crate::e2ee::attachment;
use crate::engine::SimTime;
use crate::live::crypto;
use crate::live::media_http;
use crate::live::schedule::Arrival;
use crate::metrics::media::{MediaCounters, MediaLatency, MediaStats};
use crate::nodes::media::pointer::{self, Pointer, Secret};
use crate::wire::{BlobId, DeviceId, MsgId};
use bytes::Bytes;
use rand::Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Gives back one pending count when dropped.
struct Release<'a>(&'a AtomicU64);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Attempts per transfer before it is given up (a store restarting, a refused connection).
const ATTEMPTS_MAX: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Runs `transfer` until it succeeds or [`ATTEMPTS_MAX`] attempts failed: its result, if any,
/// and the attempts made.
async fn with_retries<T, F: std::future::Future<Output = Result<T, media_http::MediaHttpError>>>(
    mut transfer: impl FnMut() -> F,
) -> (Option<T>, u32) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match transfer().await {
            Ok(t) => return (Some(t), attempts),
            Err(_) if attempts < ATTEMPTS_MAX => tokio::time::sleep(RETRY_AFTER).await,
            Err(_) => return (None, attempts),
        }
    }
}

/// Where the media services listen.
#[derive(Clone, Debug)]
pub struct MediaEnds {
    /// Each provider's store, by provider index.
    pub stores: BTreeMap<u32, SocketAddr>,
    pub proxy: SocketAddr,
}

/// A transfer task's end, back in the shard's loop.
pub enum MediaDone {
    Uploaded {
        arrival: Arrival,
        pointer: Pointer,
        attempts: u32,
        ok: bool,
    },
    Downloaded {
        /// The message the blob belongs to (a group message's first id).
        msg: MsgId,
        pointer: Pointer,
        group: bool,
        via_proxy: bool,
        /// When the message was shown (decrypted), for the download latency.
        shown: SimTime,
        attempts: u32,
        blob: Option<Bytes>,
    },
}

/// What a shard's media did: the simulator's media counters and download latencies, the
/// transfers under way, and the blobs that decrypted to their own message.
#[derive(Debug, Default)]
pub struct MediaReport {
    pub stats: MediaStats,
    pub pending: u64,
    pub verified: u64,
}

impl MediaReport {
    /// Adds another shard's.
    pub fn add(&mut self, o: &MediaReport) {
        self.stats.merge(&o.stats);
        self.pending += o.pending;
        self.verified += o.verified;
    }

    /// The summary's media counters and the report's spectra; `proxy_bytes` is what the proxy
    /// relayed.
    pub fn finish(self, proxy_bytes: u64) -> (MediaCounters, MediaLatency) {
        let mut c = self.stats.summary(self.pending);
        c.media_proxy_bytes = proxy_bytes;
        (c, self.stats.latencies())
    }
}

impl Shard {
    /// A media arrival: its blob is encrypted and uploaded first; the message follows once the
    /// store has it ([`Shard::on_media`]). `false` when the arrival carries no media (or this
    /// run has no media services): the caller sends it as it is.
    pub(super) fn upload_then_send(&mut self, a: Arrival) -> bool {
        let kind = pointer::media_kind(a.content);
        let (Some(kind), Some(ends)) = (kind, &self.media) else {
            return false;
        };
        let host = self.sh.dir.provider_of_user(a.from);
        let Some(&store) = ends.stores.get(&host.0) else {
            return false;
        };
        let mut plain = Vec::new();
        crypto::plaintext(&self.marker, a.msg, a.media_bytes, &mut plain);
        let mut media_key = [0u8; 32];
        self.media_rng.fill_bytes(&mut media_key);
        let blob = attachment::encrypt(&media_key, kind, &plain);
        // One id per message and run: a second load run against the same store stores anew.
        let id = self.sh.run.tag(a.msg).0;
        let pointer = Pointer {
            host,
            blob: BlobId(id),
            blob_len: blob.blob.len() as u32,
            plaintext_len: plain.len() as u32,
            content: a.content,
            secret: Secret {
                media_key,
                plaintext_sha256: blob.plaintext_sha256,
                blob_sha256: blob.blob_sha256,
            },
        };
        let (tx, bytes) = (self.media_tx.clone(), Bytes::from(blob.blob));
        self.transfer_started();
        tokio::spawn(async move {
            let (done, attempts) =
                with_retries(|| media_http::upload(store, id, bytes.clone())).await;
            let _ = tx.send(MediaDone::Uploaded {
                arrival: a,
                pointer,
                attempts,
                ok: done.is_some(),
            });
        });
        true
    }

    /// Device `d` decrypted message `msg` and found `pointer` in it: the blob is fetched.
    pub(super) fn fetch(&mut self, d: DeviceId, msg: MsgId, pointer: Pointer, group: bool) {
        let Some(ends) = &self.media else { return };
        let own = self.sh.dir.provider_of_device(d);
        let via_proxy = own != pointer.host;
        let (at, path) = if via_proxy {
            let path = format!("/proxy/{}/blobs/{}", pointer.host.0, pointer.blob.0);
            (ends.proxy, path)
        } else {
            let Some(&store) = ends.stores.get(&own.0) else {
                return;
            };
            (store, format!("/blobs/{}", pointer.blob.0))
        };
        let (tx, shown) = (self.media_tx.clone(), self.clock().now());
        self.transfer_started();
        tokio::spawn(async move {
            let (blob, attempts) = with_retries(|| media_http::download(at, &path)).await;
            let _ = tx.send(MediaDone::Downloaded {
                msg,
                pointer,
                group,
                via_proxy,
                shown,
                attempts,
                blob,
            });
        });
    }

    /// A transfer under way holds the run's drain, as an arrival not yet sent does.
    fn transfer_started(&mut self) {
        self.media_report.pending += 1;
        self.sh.arrivals_pending.fetch_add(1, Ordering::SeqCst);
    }

    /// A transfer ended: an uploaded blob's message goes now; a downloaded blob is checked.
    pub(super) fn on_media(&mut self, done: MediaDone) {
        let now = self.clock().now();
        // After what it leads to is in the ledger (the message sent below).
        let pending = self.sh.arrivals_pending.clone();
        let _release = Release(&pending);
        let r = &mut self.media_report;
        r.pending = r.pending.saturating_sub(1);
        match done {
            MediaDone::Uploaded {
                arrival,
                pointer,
                attempts,
                ok,
            } => {
                r.stats.counters.media_upload_retries += u64::from(attempts - 1);
                if !ok {
                    // The message is never sent: the ledger shows it unsent.
                    r.stats.counters.media_upload_failures += 1;
                    return;
                }
                r.stats.counters.media_uploads += 1;
                r.stats.counters.media_bytes_uploaded += u64::from(pointer.blob_len);
                if arrival.group.is_some() {
                    r.stats.group_uploaded();
                }
                self.send_message(now, arrival, None, Some(&pointer));
            }
            MediaDone::Downloaded {
                msg,
                pointer,
                group,
                via_proxy,
                shown,
                attempts,
                blob,
            } => {
                r.stats.counters.media_download_retries += u64::from(attempts - 1);
                let Some(blob) = blob else {
                    r.stats.counters.media_download_failures += 1;
                    return;
                };
                let Some(kind) = pointer::media_kind(pointer.content) else {
                    return;
                };
                let s = &pointer.secret;
                let opened = attachment::decrypt(
                    &s.media_key,
                    kind,
                    &blob,
                    &s.blob_sha256,
                    &s.plaintext_sha256,
                );
                let Ok(plain) = opened else {
                    r.stats.counters.media_verify_failures += 1;
                    return;
                };
                let named = plain.starts_with(&self.marker)
                    && plain[self.marker.len()..].starts_with(&msg.0.to_le_bytes());
                r.verified += u64::from(named);
                let bytes = blob.len() as u64;
                r.stats
                    .downloaded(bytes, via_proxy, now.since(shown), group);
            }
        }
    }
}
