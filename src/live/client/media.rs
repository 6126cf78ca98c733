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
use crate::metrics::media::{GroupMediaCounters, MediaCounters, MediaLatency};
use crate::nodes::media::pointer::{self, Pointer, Secret};
use crate::wire::{BlobId, DeviceId, MsgId};
use bytes::Bytes;
use hdrhistogram::Histogram;
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

/// What a shard's media did.
#[derive(Debug)]
pub struct MediaReport {
    pub counters: MediaCounters,
    pub group: GroupMediaCounters,
    /// From the message shown to its blob verified and decrypted (ns): every download, 1:1
    /// messages' and group messages'.
    pub latency: Histogram<u64>,
    pub direct_latency: Histogram<u64>,
    pub group_latency: Histogram<u64>,
    /// Blobs that decrypted to their own message's marker and id.
    pub verified: u64,
}

impl Default for MediaReport {
    fn default() -> Self {
        MediaReport {
            counters: MediaCounters::default(),
            group: GroupMediaCounters::default(),
            latency: crate::live::ledger::histogram(),
            direct_latency: crate::live::ledger::histogram(),
            group_latency: crate::live::ledger::histogram(),
            verified: 0,
        }
    }
}

impl MediaReport {
    /// Adds another shard's.
    pub fn add(&mut self, o: &MediaReport) {
        let (c, g) = (&mut self.counters, &mut self.group);
        let (oc, og) = (&o.counters, &o.group);
        c.media_uploads += oc.media_uploads;
        c.media_bytes_uploaded += oc.media_bytes_uploaded;
        c.media_upload_retries += oc.media_upload_retries;
        c.media_upload_failures += oc.media_upload_failures;
        c.media_downloads += oc.media_downloads;
        c.media_bytes_downloaded += oc.media_bytes_downloaded;
        c.media_downloads_via_proxy += oc.media_downloads_via_proxy;
        c.media_bytes_downloaded_via_proxy += oc.media_bytes_downloaded_via_proxy;
        c.media_download_retries += oc.media_download_retries;
        c.media_download_failures += oc.media_download_failures;
        c.media_verify_failures += oc.media_verify_failures;
        c.media_transfers_pending += oc.media_transfers_pending;
        g.media_uploads += og.media_uploads;
        g.media_downloads += og.media_downloads;
        g.media_bytes_downloaded += og.media_bytes_downloaded;
        g.media_downloads_via_proxy += og.media_downloads_via_proxy;
        let _ = self.latency.add(&o.latency);
        let _ = self.direct_latency.add(&o.direct_latency);
        let _ = self.group_latency.add(&o.group_latency);
        self.verified += o.verified;
    }

    /// The summary's media counters (latencies in ms) and the report's spectra; `proxy_bytes`
    /// is what the proxy relayed.
    pub fn finish(mut self, proxy_bytes: u64) -> (MediaCounters, MediaLatency) {
        let ms = |h: &Histogram<u64>, q: f64| match h.len() {
            0 => 0.0,
            _ => h.value_at_quantile(q) as f64 / 1e6,
        };
        let c = &mut self.counters;
        c.media_proxy_bytes = proxy_bytes;
        (c.media_download_p50, c.media_download_p99) =
            (ms(&self.latency, 0.5), ms(&self.latency, 0.99));
        c.media_download_max = ms(&self.latency, 1.0);
        let g = &mut self.group;
        (g.media_download_p50, g.media_download_p99) =
            (ms(&self.group_latency, 0.5), ms(&self.group_latency, 0.99));
        g.media_download_max = ms(&self.group_latency, 1.0);
        let grouped = g.media_uploads + g.media_downloads > 0;
        c.group_media = grouped.then(|| g.clone());
        let latency = MediaLatency {
            direct: (!self.direct_latency.is_empty()).then_some(self.direct_latency),
            group: (!self.group_latency.is_empty()).then_some(self.group_latency),
        };
        (self.counters, latency)
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
        self.media_report.counters.media_transfers_pending += 1;
        self.sh.arrivals_pending.fetch_add(1, Ordering::SeqCst);
    }

    /// A transfer ended: an uploaded blob's message goes now; a downloaded blob is checked.
    pub(super) fn on_media(&mut self, done: MediaDone) {
        let now = self.clock().now();
        // After what it leads to is in the ledger (the message sent below).
        let pending = self.sh.arrivals_pending.clone();
        let _release = Release(&pending);
        let r = &mut self.media_report;
        r.counters.media_transfers_pending = r.counters.media_transfers_pending.saturating_sub(1);
        match done {
            MediaDone::Uploaded {
                arrival,
                pointer,
                attempts,
                ok,
            } => {
                r.counters.media_upload_retries += u64::from(attempts - 1);
                if !ok {
                    // The message is never sent: the ledger shows it unsent.
                    r.counters.media_upload_failures += 1;
                    return;
                }
                r.counters.media_uploads += 1;
                r.counters.media_bytes_uploaded += u64::from(pointer.blob_len);
                if arrival.group.is_some() {
                    r.group.media_uploads += 1;
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
                r.counters.media_download_retries += u64::from(attempts - 1);
                let Some(blob) = blob else {
                    r.counters.media_download_failures += 1;
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
                    r.counters.media_verify_failures += 1;
                    return;
                };
                let named = plain.starts_with(&self.marker)
                    && plain[self.marker.len()..].starts_with(&msg.0.to_le_bytes());
                r.verified += u64::from(named);
                let bytes = blob.len() as u64;
                let c = &mut r.counters;
                c.media_downloads += 1;
                c.media_bytes_downloaded += bytes;
                if via_proxy {
                    c.media_downloads_via_proxy += 1;
                    c.media_bytes_downloaded_via_proxy += bytes;
                }
                let ns = now.since(shown).max(1);
                if group {
                    let g = &mut r.group;
                    g.media_downloads += 1;
                    g.media_bytes_downloaded += bytes;
                    g.media_downloads_via_proxy += u64::from(via_proxy);
                    let _ = r.group_latency.record(ns);
                } else {
                    let _ = r.direct_latency.record(ns);
                }
                let _ = r.latency.record(ns);
            }
        }
    }
}
