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
}

/// Running media counters of a run and its download latencies (ns).
#[derive(Debug)]
pub struct MediaStats {
    pub counters: MediaCounters,
    latency: Histogram<u64>,
}

impl Default for MediaStats {
    fn default() -> Self {
        MediaStats {
            counters: MediaCounters::default(),
            // 3 significant digits, auto-resizing: any latency fits.
            latency: Histogram::new(3).expect("3 significant figures is a valid precision"),
        }
    }
}

impl MediaStats {
    /// A blob downloaded and decrypted on a device, `latency_ns` after its message showed there.
    pub fn downloaded(&mut self, bytes: u64, via_proxy: bool, latency_ns: u64) {
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

    /// The summary.json part, with the transfers still under way at the end.
    pub fn summary(&self, pending: u64) -> MediaCounters {
        let mut c = self.counters.clone();
        c.media_transfers_pending = pending;
        let h = &self.latency;
        if !h.is_empty() {
            let ms = |ns: u64| ns as f64 / 1e6;
            c.media_download_p50 = ms(h.value_at_quantile(0.50));
            c.media_download_p99 = ms(h.value_at_quantile(0.99));
            c.media_download_max = ms(h.max());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_add_up_and_percentiles_come_from_the_histogram() {
        let mut s = MediaStats::default();
        s.downloaded(1_000, false, 2_000_000);
        s.downloaded(3_000, true, 4_000_000);
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
