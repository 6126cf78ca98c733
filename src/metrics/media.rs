//! Media transfer counters and the media download latency, as summary.json and `[expect]` name
//! them (`media_uploads`, `media_download_p99`, ...). Nodes and the driver add to
//! [`MediaStats`] as transfers happen; [`MediaStats::summary`] turns it into the flat
//! [`MediaCounters`] of summary.json. The same in real and modeled crypto: nothing here depends
//! on blob bytes.

use hdrhistogram::Histogram;
use serde::Serialize;

/// The media part of summary.json (flattened into the top level, beside `sent` and
/// `delivered`). Latencies in ms, from the message shown on a device to its blob downloaded,
/// verified and decrypted there.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MediaCounters {
    /// Blobs stored by a media store (a repeated upload of a stored blob counts once).
    pub media_uploads: u64,
    pub media_bytes_uploaded: u64,
    /// Upload attempts after the first (a lost transfer, a store down).
    pub media_upload_retries: u64,
    /// Uploads given up after the attempt bound: their message was never sent.
    pub media_upload_failures: u64,
    /// Blobs downloaded, verified and decrypted, one per recipient device.
    pub media_downloads: u64,
    pub media_bytes_downloaded: u64,
    /// The part of `media_downloads` (and of its bytes) that came from another provider's
    /// store through the gatekeeper's media proxy.
    pub media_downloads_via_proxy: u64,
    pub media_bytes_downloaded_via_proxy: u64,
    /// Blob bytes the media proxy relayed, whether or not the rest of the way succeeded.
    pub media_proxy_bytes: u64,
    /// Download attempts after the first.
    pub media_download_retries: u64,
    /// Downloads given up after the attempt bound (the user sees "download failed").
    pub media_download_failures: u64,
    /// Blobs whose digest or MAC did not verify (each retried; 0 unless something tampered).
    pub media_verify_failures: u64,
    /// Uploads and downloads still under way when the run ended.
    pub media_transfers_pending: u64,
    pub media_download_p50: f64,
    pub media_download_p99: f64,
    pub media_download_max: f64,
    /// The group messages' share of the above (`[expect]`'s `group.media_*`); absent when no
    /// group message carried media.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_media: Option<GroupMediaCounters>,
}

/// Media of group messages: one blob per message, uploaded once by its sender and fetched by
/// every member's devices. Part of the totals of [`MediaCounters`] too.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GroupMediaCounters {
    /// Group messages whose blob was stored (their upload acked).
    pub media_uploads: u64,
    /// Blobs downloaded, verified and decrypted by members' devices, and their bytes.
    pub media_downloads: u64,
    pub media_bytes_downloaded: u64,
    /// The part of the downloads that crossed the gatekeeper's media proxy.
    pub media_downloads_via_proxy: u64,
    /// From the message shown on a member's device to its blob decrypted there, ms.
    pub media_download_p50: f64,
    pub media_download_p99: f64,
    pub media_download_max: f64,
}

impl GroupMediaCounters {
    /// The value of `group.<key>` (latencies in ms); `None` for a key not kept per group.
    pub fn metric(&self, key: &str) -> Option<f64> {
        let v = match key {
            "media_uploads" => self.media_uploads,
            "media_downloads" => self.media_downloads,
            "media_bytes_downloaded" => self.media_bytes_downloaded,
            "media_downloads_via_proxy" => self.media_downloads_via_proxy,
            "media_download_p50" => return Some(self.media_download_p50),
            "media_download_p99" => return Some(self.media_download_p99),
            "media_download_max" => return Some(self.media_download_max),
            _ => return None,
        };
        Some(v as f64)
    }
}

/// The media latencies (rendered as durations in verdicts; scenario/expect.rs checks that its
/// list agrees).
pub const LATENCY_KEYS: [&str; 3] = [
    "media_download_p50",
    "media_download_p99",
    "media_download_max",
];

impl MediaCounters {
    /// The value of a media key as `[expect]` names it (latencies in ms).
    pub fn metric(&self, key: &str) -> Option<f64> {
        let v = match key {
            "media_uploads" => self.media_uploads,
            "media_bytes_uploaded" => self.media_bytes_uploaded,
            "media_upload_retries" => self.media_upload_retries,
            "media_upload_failures" => self.media_upload_failures,
            "media_downloads" => self.media_downloads,
            "media_bytes_downloaded" => self.media_bytes_downloaded,
            "media_downloads_via_proxy" => self.media_downloads_via_proxy,
            "media_bytes_downloaded_via_proxy" => self.media_bytes_downloaded_via_proxy,
            "media_proxy_bytes" => self.media_proxy_bytes,
            "media_download_retries" => self.media_download_retries,
            "media_download_failures" => self.media_download_failures,
            "media_verify_failures" => self.media_verify_failures,
            "media_transfers_pending" => self.media_transfers_pending,
            "media_download_p50" => return Some(self.media_download_p50),
            "media_download_p99" => return Some(self.media_download_p99),
            "media_download_max" => return Some(self.media_download_max),
            _ => return None,
        };
        Some(v as f64)
    }

    /// The value of `group.<key>`: 0 when no group message carried media.
    pub fn group_metric(&self, key: &str) -> Option<f64> {
        let none = GroupMediaCounters::default();
        self.group_media.as_ref().unwrap_or(&none).metric(key)
    }
}

/// The media download latency histograms of a run, for the report's spectrum.
#[derive(Clone, Debug, Default)]
pub struct MediaLatency {
    pub direct: Option<Histogram<u64>>,
    pub group: Option<Histogram<u64>>,
}

/// Running media counters of a run and its download latencies (ns).
#[derive(Debug)]
pub struct MediaStats {
    pub counters: MediaCounters,
    latency: Histogram<u64>,
    /// Group messages' part, kept once one carried media.
    group: Option<(GroupMediaCounters, Histogram<u64>)>,
}

impl Default for MediaStats {
    fn default() -> Self {
        MediaStats {
            counters: MediaCounters::default(),
            // 3 significant digits, auto-resizing: any latency fits.
            latency: histogram(),
            group: None,
        }
    }
}

/// 3 significant digits, auto-resizing: any latency fits.
fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

impl MediaStats {
    fn group(&mut self) -> &mut (GroupMediaCounters, Histogram<u64>) {
        self.group
            .get_or_insert_with(|| (GroupMediaCounters::default(), histogram()))
    }

    /// The download latency histograms (each `None` when it holds nothing): 1:1 messages', and
    /// group messages'. The first also holds the group's (the totals count every download).
    pub fn latencies(&self) -> MediaLatency {
        let some = |h: &Histogram<u64>| (!h.is_empty()).then(|| h.clone());
        let group = self.group.as_ref().and_then(|(_, h)| some(h));
        let direct = some(&self.latency).map(|mut all| {
            if let Some(g) = &group {
                // What is left once the group downloads are taken out: 1:1 downloads.
                let _ = all.subtract(g);
            }
            all
        });
        MediaLatency {
            direct: direct.filter(|h| !h.is_empty()),
            group,
        }
    }

    /// A group message's blob was stored: its message goes out next.
    pub fn group_uploaded(&mut self) {
        self.group().0.media_uploads += 1;
    }

    /// A blob downloaded and decrypted on a device, `latency_ns` after its message showed there;
    /// `group` when the message was a group's.
    pub fn downloaded(&mut self, bytes: u64, via_proxy: bool, latency_ns: u64, group: bool) {
        if group {
            let (g, h) = self.group();
            g.media_downloads += 1;
            g.media_bytes_downloaded += bytes;
            g.media_downloads_via_proxy += via_proxy as u64;
            let _ = h.record(latency_ns.max(1));
        }
        let c = &mut self.counters;
        c.media_downloads += 1;
        c.media_bytes_downloaded += bytes;
        if via_proxy {
            c.media_downloads_via_proxy += 1;
            c.media_bytes_downloaded_via_proxy += bytes;
        }
        // Auto-resizing histograms accept any u64; record cannot fail.
        let _ = self.latency.record(latency_ns.max(1));
    }

    /// Adds another's counts and latencies (the live load generator's shards, each with its
    /// own). `media_transfers_pending` is the caller's: `summary` takes it.
    pub fn merge(&mut self, o: &MediaStats) {
        let (c, oc) = (&mut self.counters, &o.counters);
        c.media_uploads += oc.media_uploads;
        c.media_bytes_uploaded += oc.media_bytes_uploaded;
        c.media_upload_retries += oc.media_upload_retries;
        c.media_upload_failures += oc.media_upload_failures;
        c.media_downloads += oc.media_downloads;
        c.media_bytes_downloaded += oc.media_bytes_downloaded;
        c.media_downloads_via_proxy += oc.media_downloads_via_proxy;
        c.media_bytes_downloaded_via_proxy += oc.media_bytes_downloaded_via_proxy;
        c.media_proxy_bytes += oc.media_proxy_bytes;
        c.media_download_retries += oc.media_download_retries;
        c.media_download_failures += oc.media_download_failures;
        c.media_verify_failures += oc.media_verify_failures;
        let _ = self.latency.add(&o.latency);
        if let Some((og, oh)) = &o.group {
            let (g, h) = self.group();
            g.media_uploads += og.media_uploads;
            g.media_downloads += og.media_downloads;
            g.media_bytes_downloaded += og.media_bytes_downloaded;
            g.media_downloads_via_proxy += og.media_downloads_via_proxy;
            let _ = h.add(oh);
        }
    }

    /// The summary.json part, with the transfers still under way at the end.
    pub fn summary(&self, pending: u64) -> MediaCounters {
        let mut c = self.counters.clone();
        c.media_transfers_pending = pending;
        if let Some(q) = percentiles_ms(&self.latency) {
            (
                c.media_download_p50,
                c.media_download_p99,
                c.media_download_max,
            ) = q;
        }
        c.group_media = self.group.as_ref().map(|(g, h)| {
            let mut g = g.clone();
            if let Some(q) = percentiles_ms(h) {
                (
                    g.media_download_p50,
                    g.media_download_p99,
                    g.media_download_max,
                ) = q;
            }
            g
        });
        c
    }
}

/// p50, p99 and max of a histogram of ns, in ms; `None` when it is empty.
fn percentiles_ms(h: &Histogram<u64>) -> Option<(f64, f64, f64)> {
    let ms = |ns: u64| ns as f64 / 1e6;
    (!h.is_empty()).then(|| {
        (
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_add_up_and_percentiles_come_from_the_histogram() {
        let mut s = MediaStats::default();
        s.downloaded(1_000, false, 2_000_000, false);
        s.downloaded(3_000, true, 4_000_000, false);
        assert_eq!(
            s.summary(1).group_media,
            None,
            "no group media: nothing shown"
        );
        s.downloaded(3_000, true, 8_000_000, true);
        s.group_uploaded();
        let c = s.summary(1);
        let g = c.group_media.clone().expect("a group download");
        assert_eq!((g.media_uploads, g.media_downloads), (1, 1));
        assert_eq!(g.media_downloads_via_proxy, 1);
        assert!((g.media_download_p99 - 8.0).abs() < 0.01);
        assert_eq!(c.group_metric("media_downloads"), Some(1.0));
        assert_eq!(c.media_downloads, 3, "group downloads count in the totals");
        s = MediaStats::default();
        s.downloaded(1_000, false, 2_000_000, false);
        s.downloaded(3_000, true, 4_000_000, false);
        let c = s.summary(1);
        assert_eq!(c.media_downloads, 2);
        assert_eq!(c.media_bytes_downloaded, 4_000);
        assert_eq!(c.media_bytes_downloaded_via_proxy, 3_000);
        assert_eq!(c.media_transfers_pending, 1);
        assert!((c.media_download_max - 4.0).abs() < 0.01);
        assert_eq!(c.metric("media_bytes_downloaded"), Some(4_000.0));
        assert_eq!(c.metric("media_bogus"), None);
    }
}
