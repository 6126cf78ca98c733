//! The one-screen summary printed after a run: counts, percentiles, one line per expectation.

use crate::engine::time::format_duration_ns;
use crate::metrics::summary::trim;
use crate::metrics::{Origin, Summary};
use std::fmt::Write as _;

/// Two lines on media transfers, when the run had any.
fn media_lines(o: &mut String, m: &crate::metrics::media::MediaCounters) {
    if m.media_uploads == 0 && m.media_upload_failures == 0 {
        return;
    }
    let mb = |b: u64| b as f64 / 1e6;
    let _ = writeln!(
        o,
        "media     uploads {} ({:.1} MB)  downloads {} ({:.1} MB, {} via proxy)  proxy {:.1} MB",
        m.media_uploads,
        mb(m.media_bytes_uploaded),
        m.media_downloads,
        mb(m.media_bytes_downloaded),
        m.media_downloads_via_proxy,
        mb(m.media_proxy_bytes)
    );
    let _ = writeln!(
        o,
        "          download p50 {:.1}ms p99 {:.1}ms max {:.1}ms  retries {}/{}  failures {}/{}  pending {}",
        m.media_download_p50,
        m.media_download_p99,
        m.media_download_max,
        m.media_upload_retries,
        m.media_download_retries,
        m.media_upload_failures,
        m.media_download_failures,
        m.media_transfers_pending
    );
}

/// One line per inbox, when the scenario tracks them (`separate_inbox`).
fn inbox_lines(o: &mut String, i: &crate::metrics::inbox::InboxSummary) {
    let rows = [
        ("main", &i.main, i.users_separate + i.users_combined),
        ("third-party", &i.third_party, i.users_separate),
    ];
    for (k, (name, b, users)) in rows.into_iter().enumerate() {
        let _ = writeln!(
            o,
            "{} {name:<11} ({users} users) shown {}  read {}  unread at end {} (one user's most {})  first read p50 {:.1}s p99 {:.1}s",
            if k == 0 { "inbox    " } else { "         " },
            b.shown,
            b.read,
            b.unread_at_end,
            b.unread_max,
            b.first_read_p50 / 1e3,
            b.first_read_p99 / 1e3,
        );
    }
}

/// `scenario_file` is the file the user ran, for the "reproduce with" line.
pub fn render(s: &Summary, out_dir: &str, scenario_file: &str) -> String {
    let c = &s.counters;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "interop-sim {}  scenario {}  seed {}  hash {}",
        s.version, s.scenario, s.seed, s.scenario_hash
    );
    let _ = writeln!(
        o,
        "events {}  simulated {:.1}s  fingerprint {}",
        s.events_processed, s.end_time_s, s.fingerprint
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "messages  sent {}  delivered {}  lost {}  duplicates {}  out_of_order {}",
        c.sent, c.delivered, c.lost, c.duplicates, c.out_of_order
    );
    let _ = writeln!(
        o,
        "          unreachable {}  expired {}  unsent {}  decrypt_failures {}  delivered_ratio {:.4}",
        c.unreachable, c.expired, c.unsent, c.decrypt_failures, c.delivered_ratio
    );
    let _ = writeln!(
        o,
        "          failed {} (lost + decrypt_failures + unsent + queued_at_end {})",
        c.failed, c.queued_at_end
    );
    let _ = writeln!(
        o,
        "latency   {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p99", "p999", "max"
    );
    let mut row = |name: &str, l: &crate::metrics::summary::Latency| {
        let _ = writeln!(
            o,
            "          {:>9} {:>7.1}ms {:>7.1}ms {:>7.1}ms {:>7.1}ms  ({} deliveries)",
            name, l.delivered_p50, l.delivered_p99, l.delivered_p999, l.delivered_max, l.samples
        );
    };
    row("all", &s.latency);
    for (name, p) in &s.paths {
        if p.latency.samples > 0 {
            row(name, &p.latency);
        }
    }
    if s.warmup_s > 0.0 {
        let _ = writeln!(
            o,
            "          warm-up: messages composed in the first {}s left out ({} deliveries; counted above), and utilization's first {}s",
            trim(s.warmup_s),
            s.deliveries_in_warmup,
            trim(s.warmup_s)
        );
    }
    media_lines(&mut o, &s.media);
    if let Some(i) = &s.inbox {
        inbox_lines(&mut o, i);
    }
    let window = format_duration_ns((s.send_window_s * 1e9).round() as u64);
    let _ = writeln!(
        o,
        "throughput  over the {window} send window: messages delivered/s mean {:.1} peak {:.1}; device deliveries/s mean {:.1} peak {:.1}",
        s.messages_delivered_per_s_mean,
        s.messages_delivered_per_s_peak,
        s.device_deliveries_per_s_mean,
        s.device_deliveries_per_s_peak
    );
    for note in s.retry_storm_notes() {
        let _ = writeln!(o, "retries   RETRY STORM? {note}");
    }
    let util: Vec<String> = s
        .nodes
        .iter()
        .map(|(k, u)| {
            format!(
                "{k} {}/{}",
                percent(u.utilization_mean),
                percent(u.utilization_peak)
            )
        })
        .collect();
    let _ = writeln!(o, "utilization (mean/peak)  {}", util.join("  "));
    let waits: Vec<String> = s
        .nodes
        .iter()
        .map(|(k, u)| format!("{k} {}", wait(u.message_wait_mean_us)))
        .collect();
    let _ = writeln!(o, "core wait (mean, message frames)  {}", waits.join("  "));
    let _ = writeln!(o, "liveness  {}", s.liveness.verdict);
    for v in s.violations.iter().take(5) {
        let _ = writeln!(
            o,
            "  {} msg {} [{}] {} at {:.1}s: {}",
            v.kind, v.msg, v.path, v.conversation, v.created_s, v.hops
        );
        if !v.faults_active.is_empty() {
            let _ = writeln!(o, "      faults active: {}", v.faults_active.join("; "));
        }
    }
    if s.violations.len() > 5 {
        let _ = writeln!(
            o,
            "  ... {} more in summary.json (violations)",
            s.violations.len() - 5
        );
    }
    let _ = writeln!(o);
    if s.expect.is_empty() {
        let _ = writeln!(o, "expect    (no [expect] block)");
    }
    for v in &s.expect {
        let value = v.value.map_or("not measured".to_string(), trim);
        let (indent, note) = match &v.origin {
            Origin::Named => ("", String::new()),
            Origin::PerPathKind { from } if v.ok => ("  ", format!("; per path kind, from {from}")),
            Origin::PerPathKind { from } => (
                "  ",
                format!(
                    "; per path kind, from {from}: name {} in [expect] to give it its own bound",
                    v.key
                ),
            ),
            Origin::Always => (
                "",
                "; always checked, name it in [expect] to change the bound".to_string(),
            ),
        };
        let _ = writeln!(
            o,
            "{indent}{}  {} = {} (expected {}{note})",
            if v.ok { "PASS" } else { "FAIL" },
            v.key,
            value,
            v.bound,
        );
    }
    let _ = writeln!(
        o,
        "\n{}  results in {}",
        if s.passed { "PASSED" } else { "FAILED" },
        out_dir
    );
    if !s.passed {
        let _ = writeln!(
            o,
            "reproduce with: interop-sim run {scenario_file} --seed {}",
            s.seed
        );
    }
    o
}

/// A busy share as a percentage with two significant digits below 1 % (a lightly loaded node
/// reads 0.021 %, not 0.0 %), one decimal above.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 {
        "0 %".to_string()
    } else if p < 0.1 {
        format!("{p:.3} %")
    } else if p < 1.0 {
        format!("{p:.2} %")
    } else {
        format!("{p:.1} %")
    }
}

/// A mean wait for a core: µs below a millisecond, then ms.
fn wait(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.1} ms", us / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn a_light_load_is_not_rounded_to_nothing() {
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(0.000_207), "0.021 %");
        assert_eq!(percent(0.004_5), "0.45 %");
        assert_eq!(percent(0.295), "29.5 %");
        assert_eq!(percent(1.0), "100.0 %");
    }
}
