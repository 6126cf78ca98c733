//! Media (issue 4): blobs encrypted, uploaded to the sender's provider, fetched by every
//! recipient device (across providers through the gatekeeper's media proxy), verified and
//! decrypted; transfers retried through a crash and a partition; the same summary with real and
//! modeled crypto; no store or proxy sees a key, a content type or a file's plaintext.

use crate::root;
use interop_sim::report::files::summary_json;
use interop_sim::scenario::{self, CryptoMode, Scenario};
use interop_sim::sim::{run_scenario, run_with, RunOptions, RunResult};
use std::path::Path;

fn load(rel: &str) -> Scenario {
    scenario::load(&root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn run(s: &Scenario, mode: CryptoMode) -> RunResult {
    let mut s = s.clone();
    s.e2ee.crypto = mode;
    run_scenario(&s, &scenario::hash(&s))
}

#[test]
fn uploads_and_downloads_add_up_through_faults_and_real_equals_modeled() {
    let s = load("tests/data/scenarios/media-small.toml");
    let real = run(&s, CryptoMode::Real);
    let modeled = run(&s, CryptoMode::Modeled);
    let path = Path::new("summary.json");
    assert_eq!(
        summary_json(&real.summary, path).ok(),
        summary_json(&modeled.summary, path).ok(),
        "real and modeled crypto give the same summary.json"
    );
    let m = &real.summary.media;
    let c = &real.summary.counters;
    assert_eq!((c.lost, c.duplicates, c.unreachable), (0, 0, 0));
    assert!(m.media_uploads > 100, "{m:#?}");
    // Every user has two devices and nobody is unreachable: each blob is fetched twice.
    assert_eq!(m.media_downloads, 2 * m.media_uploads, "{m:#?}");
    assert_eq!(m.media_bytes_downloaded, 2 * m.media_bytes_uploaded);
    // Cross-provider media came through the proxy; it relayed at least what arrived that way
    // (more when a relayed transfer died on its last hop and was fetched again).
    assert!(m.media_downloads_via_proxy > 20, "{m:#?}");
    assert!(m.media_bytes_downloaded_via_proxy > 0);
    assert!(m.media_proxy_bytes >= m.media_bytes_downloaded_via_proxy);
    assert!(
        m.media_downloads_via_proxy < m.media_downloads,
        "and native media did not"
    );
    // The crash and the partition failed transfers; retries carried every one through.
    assert!(
        m.media_upload_retries > 0 && m.media_download_retries > 0,
        "{m:#?}"
    );
    assert_eq!((m.media_upload_failures, m.media_download_failures), (0, 0));
    assert_eq!((m.media_verify_failures, m.media_transfers_pending), (0, 0));
    assert!(0.0 < m.media_download_p50 && m.media_download_p50 <= m.media_download_p99);
    // The text messages' path is untouched: every message decrypted to what was sent.
    assert_eq!(
        real.verified_plaintexts,
        real.summary.latency.samples + real.summary.deliveries_in_warmup
    );
    // Real crypto opened every blob for real once, and every download's pointer verified.
    assert_eq!(real.media_verified, m.media_downloads);
    assert_eq!(real.media_blobs_opened, m.media_uploads);
    assert_eq!(real.media_disagreed, 0);
    assert_eq!(modeled.media_verified + modeled.media_blobs_opened, 0);
    // The attachment crypto is counted and priced on the devices, per content kind.
    let crypto = &real.summary.crypto;
    assert!(crypto["gatekeeper_device.attachment_encrypt"] > 0);
    assert!(crypto["partner_device.attachment_decrypt_ns"] > 0);
    assert!(crypto.contains_key("by_message.video.attachment_decrypt"));
}

#[test]
fn media_heavy_meets_its_expectations() {
    // Modeled crypto gives the same summary as real (the test above, and
    // `real_and_modeled_crypto_give_identical_summaries` for media-heavy itself).
    let r = run(&load("scenarios/media-heavy.toml"), CryptoMode::Modeled);
    let s = &r.summary;
    let failed: Vec<_> = s.expect.iter().filter(|v| !v.ok).collect();
    assert!(s.passed, "{failed:#?}");
    assert!(s.media.media_bytes_uploaded > 500_000_000, "{:#?}", s.media);
    assert!(s.work["media_bytes_gateway_partner"] > 0);
}

#[test]
fn text_only_runs_have_no_media() {
    let mut s = load("tests/data/scenarios/small.toml");
    s.workload.content = [1.0, 0.0, 0.0, 0.0, 0.0];
    let r = run_scenario(&s, "test").summary;
    assert_eq!(r.media, Default::default());
    assert!(
        !r.work.keys().any(|k| k.starts_with("media_")),
        "{:?}",
        r.work
    );
    assert!(!r.crypto.keys().any(|k| k.contains("attachment")));
}

#[test]
fn no_key_content_type_or_file_plaintext_reaches_stores_or_the_proxy() {
    let s = load("tests/data/scenarios/media-small.toml");
    let r = run_with(
        &s,
        "test",
        RunOptions {
            tap: true,
            ..RunOptions::default()
        },
    );
    let media: Vec<&Vec<u8>> = r
        .tapped
        .iter()
        .filter(|f| f.starts_with(b"Media("))
        .collect();
    let uploads = media
        .iter()
        .filter(|f| f.starts_with(b"Media(Upload"))
        .count();
    assert!(
        uploads as u64 >= r.summary.media.media_uploads,
        "every upload tapped"
    );
    assert!(media.iter().any(|f| f.starts_with(b"Media(Fetch")));
    // Each file starts with the run's canary: its absence from the stored blobs' first bytes
    // shows that the stores hold ciphertext.
    let canary = r.canary.to_le_bytes();
    let stored: usize = media.iter().map(|f| f.len()).sum();
    assert!(stored > 100 * 4_000, "blob bytes were tapped: {stored}");
    for f in &media {
        assert!(
            !f.windows(8).any(|w| w == canary),
            "file plaintext in a store"
        );
        let text = String::from_utf8_lossy(f);
        let head = text.split(" }").next().unwrap_or("");
        for word in [
            "Image", "Voice", "Video", "File", "key", "sha", "Secret", "Pointer",
        ] {
            assert!(
                !head.contains(word),
                "'{word}' seen by a media node: {head}"
            );
        }
    }
}
