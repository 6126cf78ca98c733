//! The tables of a run's report.html: the scenario in brief, and the counters, throughput and
//! utilization of the summary.

use super::html::{num, Cell, Page};
use super::labels::{fault_label, path_label};
use crate::engine::time::format_duration_ns;
use crate::metrics::{PathKind, Summary};
use crate::scenario::{AdapterMode, Latency, Role, Scenario};

/// `sm` gives what the run measured beside what the scenario configured.
pub fn scenario_section(p: &mut Page, s: &Scenario, sm: &Summary) {
    p.h2("Scenario");
    let w = &s.workload;
    let users: u64 = s.providers.iter().map(|p| p.users as u64).sum();
    let pct = |x: f64| super::plots::trim_float(x * 100.0);
    p.raw(&format!(
        "<p>{} users; each sends {} messages an hour ({} messages/s offered in all), {}% of conversations across providers, {}% in groups. Sends for {}, then drains for {}; one timeseries row per {}.</p>",
        users,
        num(w.messages_per_user_hour),
        super::plots::trim_float(users as f64 * w.messages_per_user_hour / 3600.0),
        pct(w.cross_provider),
        pct(w.groups_share),
        format_duration_ns(s.run.duration_ns),
        format_duration_ns(s.run.drain_ns),
        format_duration_ns(s.run.interval_ns),
    ));
    p.raw(&format!(
        "<p>On top of that rate, a recipient answers {}% of the 1:1 messages it is shown (a group's members share that chance), after {} on average, and reads {}% (a read receipt follows, after 5 s on average). Measured, replies included: {} messages composed, {} messages/s over the {} send window.</p>",
        pct(w.reply_probability),
        format_duration_ns(w.reply_delay_mean_ns),
        pct(w.read_probability),
        sm.counters.sent,
        num(sm.counters.sent as f64 / (s.run.duration_ns as f64 / 1e9).max(1e-9)),
        format_duration_ns(s.run.duration_ns),
    ));
    let rows: Vec<Vec<Cell>> = s
        .providers
        .iter()
        .map(|pr| {
            let devices = if pr.devices_min == pr.devices_max {
                pr.devices_min.to_string()
            } else {
                format!("{}–{}", pr.devices_min, pr.devices_max)
            };
            let role = match pr.role {
                Role::Gatekeeper => "gatekeeper",
                Role::Partner => "partner",
            };
            let adapter = match (pr.role, pr.adapter) {
                (Role::Gatekeeper, _) => "–",
                (_, AdapterMode::Proxied) => "proxied",
                (_, AdapterMode::Direct) => "direct",
            };
            vec![
                pr.name.as_str().into(),
                role.into(),
                pr.users.to_string().into(),
                devices.into(),
                format!("{}%", super::plots::trim_float(pr.opt_in * 100.0)).into(),
                adapter.into(),
            ]
        })
        .collect();
    p.table(
        &[
            "provider",
            "role",
            "users",
            "devices per user",
            "opted in",
            "adapter",
        ],
        &rows,
    );
    if s.topology.design != crate::scenario::Design::Hub {
        p.para(
            "meta",
            &format!(
                "Interop design: {} (each client talks to its own provider's server; a room's hub provider fans its messages out to the others over provider_provider).",
                s.topology.design.key()
            ),
        );
    }
    let links: Vec<Vec<Cell>> = s
        .topology
        .design
        .hop_classes()
        .iter()
        .map(|h| {
            let l = s.network.link(*h);
            vec![
                h.key().into(),
                latency_text(&l.latency).into(),
                format!("{}%", super::plots::trim_float(l.loss * 100.0)).into(),
                l.bandwidth_bytes_per_s
                    .map_or("unlimited".to_string(), |b| format!("{b} B/s"))
                    .into(),
            ]
        })
        .collect();
    p.table(&["link", "latency", "loss", "bandwidth"], &links);
    let c = &s.capacity;
    let caps: Vec<Vec<Cell>> = [
        ("gateway", &c.gateway),
        ("chat_server", &c.chat_server),
        ("adapter", &c.adapter),
    ]
    .iter()
    .map(|(n, k)| {
        vec![
            (*n).into(),
            k.cores.to_string().into(),
            format_duration_ns(k.per_message_ns).into(),
            k.queue_max.to_string().into(),
            k.rate_limit_per_partner
                .map_or("–".to_string(), |r| format!("{}/s", num(r)))
                .into(),
        ]
    })
    .collect();
    p.table(
        &[
            "node",
            "cores",
            "per message",
            "queue max",
            "rate limit per partner",
        ],
        &caps,
    );
    // A swarm's faults are drawn from the seed: listed beside the scenario's own, as run.
    let drawn = crate::faults::swarm::materialize(s);
    if drawn.faults.is_empty() {
        p.para("meta", "No faults.");
    } else {
        let rows: Vec<Vec<Cell>> = drawn
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let from = if i < s.faults.len() {
                    "scenario".to_string()
                } else {
                    format!("swarm (seed {})", s.run.seed)
                };
                vec![
                    fault_label(f, &s.providers).into(),
                    readable_duration(f.at_ns).into(),
                    f.for_ns
                        .map_or("to the end".to_string(), readable_duration)
                        .into(),
                    from.into(),
                ]
            })
            .collect();
        p.table(&["fault", "at", "for", "from"], &rows);
    }
}

/// A duration as written (`30s`, `250ms`) when it is whole milliseconds, else in seconds to
/// the millisecond (a swarm draws its faults' times to the nanosecond).
fn readable_duration(ns: u64) -> String {
    if ns.is_multiple_of(1_000_000) {
        format_duration_ns(ns)
    } else {
        format!("{:.3}s", ns as f64 / 1e9)
    }
}

/// Media transfers, when the run had any: uploads and downloads with their bytes, what came
/// through the media proxy, retries and failures, and the download latency.
fn media_table(p: &mut Page, m: &crate::metrics::media::MediaCounters) {
    if m.media_uploads == 0 && m.media_upload_failures == 0 {
        return;
    }
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    let rows: Vec<Vec<Cell>> = vec![
        vec![
            "upload".into(),
            m.media_uploads.to_string().into(),
            mb(m.media_bytes_uploaded).into(),
            m.media_upload_retries.to_string().into(),
            m.media_upload_failures.to_string().into(),
        ],
        vec![
            "download".into(),
            m.media_downloads.to_string().into(),
            mb(m.media_bytes_downloaded).into(),
            m.media_download_retries.to_string().into(),
            m.media_download_failures.to_string().into(),
        ],
        vec![
            "… through the media proxy".into(),
            m.media_downloads_via_proxy.to_string().into(),
            mb(m.media_bytes_downloaded_via_proxy).into(),
            "".into(),
            "".into(),
        ],
    ];
    p.table(&["media", "blobs", "bytes", "retries", "given up"], &rows);
    p.raw(&format!(
        "<p>Media download (shown → blob verified and decrypted): p50 {} ms, p99 {} ms, max {} ms. The media proxy relayed {}; {} transfers were still under way at the end.</p>",
        num(m.media_download_p50),
        num(m.media_download_p99),
        num(m.media_download_max),
        mb(m.media_proxy_bytes),
        m.media_transfers_pending
    ));
}

fn latency_text(l: &Latency) -> String {
    let d = |ns: u64| format_duration_ns(ns);
    match *l {
        Latency::Constant { value_ns } => d(value_ns),
        Latency::Uniform { min_ns, max_ns } => format!("uniform {}–{}", d(min_ns), d(max_ns)),
        Latency::Normal { mean_ns, stddev_ns } => {
            format!("normal {} ± {}", d(mean_ns), d(stddev_ns))
        }
        Latency::Lognormal { median_ns, p99_ns } => {
            format!("lognormal median {}, p99 {}", d(median_ns), d(p99_ns))
        }
        Latency::Pareto { min_ns, alpha } => format!("pareto min {}, α {}", d(min_ns), alpha),
    }
}

pub fn counters_section(p: &mut Page, sm: &Summary) {
    p.h2("Outcomes");
    let header = [
        "path kind",
        "sent",
        "delivered",
        "unreachable",
        "expired",
        "lost",
        "unsent",
        "duplicates",
        "delivered ratio",
    ];
    let row = |label: &str, c: &crate::metrics::summary::Counters| -> Vec<Cell> {
        vec![
            label.into(),
            c.sent.to_string().into(),
            c.delivered.to_string().into(),
            c.unreachable.to_string().into(),
            c.expired.to_string().into(),
            c.lost.to_string().into(),
            c.unsent.to_string().into(),
            c.duplicates.to_string().into(),
            format!("{:.4}", c.delivered_ratio).into(),
        ]
    };
    let mut rows = vec![row("all", &sm.counters)];
    for k in PathKind::ALL {
        if let Some(ps) = sm.paths.get(k.key()) {
            rows.push(row(path_label(k), &ps.counters));
        }
    }
    p.table(&header, &rows);
    let window = format_duration_ns((sm.send_window_s * 1e9).round() as u64);
    p.raw(&format!(
        "<p>Throughput over the {window} send window (the drain after it is left out of both): {} messages delivered/s mean, {} peak (per interval; a message counts once, when its last device shows it); {} device deliveries/s mean, {} peak (each device's copy counts). Out of order {}, decrypt failures {}, tamper detected {}, replays rejected {}, duplicates suppressed {}, read {}.</p>",
        num(sm.messages_delivered_per_s_mean),
        num(sm.messages_delivered_per_s_peak),
        num(sm.device_deliveries_per_s_mean),
        num(sm.device_deliveries_per_s_peak),
        sm.counters.out_of_order,
        sm.counters.decrypt_failures,
        sm.tamper_detected,
        sm.replay_rejected,
        sm.duplicates_suppressed,
        sm.read
    ));
    media_table(p, &sm.media);
    let util: Vec<Vec<Cell>> = sm
        .nodes
        .iter()
        .map(|(k, u)| {
            vec![
                k.as_str().into(),
                super::screen::percent(u.utilization_mean).into(),
                super::screen::percent(u.utilization_peak).into(),
            ]
        })
        .collect();
    p.table(&["node", "utilization mean", "utilization peak"], &util);
}
