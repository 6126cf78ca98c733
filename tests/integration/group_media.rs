//! Media in groups (issue 20): a group message's blob is encrypted and uploaded once by its
//! sender, its key and digest travel inside the Sender Key message, and every member's devices
//! download and verify it, partner members' through the gatekeeper's media proxy; a crash of a
//! partner (and its media store) heals with nothing lost; stores hold only ciphertext.

use crate::root;
use interop_sim::metrics::PathKind;
use interop_sim::report::files::summary_json;
use interop_sim::scenario::{self, ContentKind, CryptoMode, Scenario};
use interop_sim::sim::{run_scenario, run_with, RunOptions};
use std::path::Path;

fn small() -> Scenario {
    let path = root().join("tests/data/scenarios/groups-media-small.toml");
    scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn each_group_blob_is_uploaded_once_and_fetched_by_every_member_device() {
    let s = small();
    let real = run_scenario(&s, &scenario::hash(&s));
    let sm = &real.summary;
    let failed: Vec<_> = sm.expect.iter().filter(|v| !v.ok).collect();
    assert!(sm.passed, "{failed:#?}");
    let c = &sm.counters;
    assert_eq!((c.lost, c.duplicates, c.unreachable), (0, 0, 0), "{c:#?}");
    let m = &sm.media;
    let g = m.group_media.as_ref().expect("group media counted apart");
    // A download per recipient device that showed a group media message: the member records
    // to someone else than the sender (a group's sync copy to the sender's own devices is not
    // fetched), one per shown device slot.
    let media = |k: ContentKind| k != ContentKind::Text;
    let records: Vec<_> = real
        .ledger
        .records()
        .iter()
        .filter(|r| r.path == PathKind::Group && media(r.content) && r.to_user != r.from_user)
        .collect();
    let shown: u64 = records
        .iter()
        .map(|r| r.shown_mask.count_ones() as u64)
        .sum();
    assert_eq!(g.media_downloads, shown, "{g:#?}");
    assert!(
        g.media_uploads >= 20 && g.media_downloads > 20 * g.media_uploads,
        "{g:#?}"
    );
    // One blob per group message, not one per member: the stores stored each once.
    assert!(m.media_uploads >= g.media_uploads);
    assert!(m.media_uploads < g.media_uploads + records.len() as u64 / 20);
    assert!(g.media_downloads_via_proxy > 0 && g.media_downloads_via_proxy < g.media_downloads);
    assert!(
        m.media_downloads > g.media_downloads,
        "1:1 media too, in the totals"
    );
    assert!(0.0 < g.media_download_p50 && g.media_download_p50 <= g.media_download_p99);
    // The crash failed transfers; the retries carried every one through, and every blob's
    // pointer (parsed from the decrypted Sender Key message) verified and opened it.
    assert!(
        m.media_upload_retries + m.media_download_retries > 0,
        "{m:#?}"
    );
    assert_eq!((m.media_download_failures, m.media_verify_failures), (0, 0));
    assert_eq!(m.media_transfers_pending, 0);
    assert_eq!(real.media_verified, m.media_downloads);
    assert_eq!(real.media_disagreed, 0);
    let h = real.media_latency.group.as_ref().expect("a group spectrum");
    assert_eq!(h.len(), g.media_downloads);
    // The same decisions in modeled crypto: the same summary.json.
    let mut modeled = s.clone();
    modeled.e2ee.crypto = CryptoMode::Modeled;
    let modeled = run_scenario(&modeled, &scenario::hash(&s));
    let path = Path::new("summary.json");
    assert_eq!(
        summary_json(&real.summary, path).ok(),
        summary_json(&modeled.summary, path).ok()
    );
}

#[test]
fn group_blobs_in_stores_and_the_proxy_are_ciphertext() {
    let r = run_with(
        &small(),
        "test",
        RunOptions {
            tap: true,
            ..RunOptions::default()
        },
    );
    let canary = r.canary.to_le_bytes();
    let uploads: Vec<&Vec<u8>> = r
        .tapped
        .iter()
        .filter(|f| f.starts_with(b"Media(Upload"))
        .collect();
    let g = r.summary.media.group_media.expect("group media");
    assert!(uploads.len() as u64 >= g.media_uploads);
    for f in r.tapped.iter().filter(|f| f.starts_with(b"Media(")) {
        assert!(!f.windows(8).any(|w| w == canary), "file plaintext tapped");
    }
}

#[test]
fn group_media_expectations_parse_and_misspellings_are_named() {
    let text = std::fs::read_to_string(root().join("scenarios/groups-media.toml")).expect("read");
    let s = scenario::parse(&text, "groups-media.toml").expect("parses");
    assert!(s.expect.iter().any(|e| e.key == "group.media_download_p99"));
    let bad = text.replace(
        "group.media_downloads_via_proxy",
        "group.media_download_via_proxy",
    );
    let err = scenario::parse(&bad, "groups-media.toml").expect_err("unknown key");
    let msg = err.to_string();
    assert!(
        msg.contains("group.media_downloads_via_proxy"),
        "did you mean: {msg}"
    );
}
