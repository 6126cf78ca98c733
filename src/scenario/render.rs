//! The resolved scenario written back out: `to_toml` (every default filled in, in the syntax the
//! parser accepts, so `check` shows what a run will really use) and `hash` (a short identity of
//! the resolved scenario for result files).

use std::fmt::Write;

use sha2::{Digest, Sha256};

use super::expect::is_latency;
use super::model::*;
use crate::engine::time::format_duration_ns;

/// Hex characters of the SHA-256 kept in [`hash`].
pub const HASH_HEX_LEN: usize = 16;

/// The first 16 hex characters of the SHA-256 of the resolved scenario's canonical JSON.
///
/// `e2ee.crypto` is left out: real and modeled crypto run the same simulated system and, by
/// contract, give the same results, so they share a hash (and a summary.json).
pub fn hash(s: &Scenario) -> String {
    let mut canonical = s.clone();
    canonical.e2ee.crypto = CryptoMode::Real;
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex.truncate(HASH_HEX_LEN);
    hex
}

/// The resolved scenario as TOML; `parse(&to_toml(s), ..)` gives `s` back.
pub fn to_toml(s: &Scenario) -> String {
    let mut out = String::new();
    run(&mut out, &s.run);
    for p in &s.providers {
        provider(&mut out, p);
    }
    if s.topology.design != Design::Hub {
        out.push_str("\n[topology]\n");
        line(&mut out, "design", quote(s.topology.design.key()));
    }
    network(&mut out, &s.network);
    workload(&mut out, &s.workload);
    capacity(&mut out, &s.capacity);
    let e = &s.e2ee;
    out.push_str("\n[e2ee]\n");
    let protocol = match e.protocol {
        Protocol::X3dh => "x3dh",
        Protocol::Pqxdh => "pqxdh",
    };
    let crypto = match e.crypto {
        CryptoMode::Real => "real",
        CryptoMode::Modeled => "modeled",
    };
    line(&mut out, "protocol", quote(protocol));
    line(&mut out, "crypto", quote(crypto));
    if e.sessions == SessionSetup::Established {
        line(&mut out, "sessions", quote("established"));
    }
    line(&mut out, "one_time_prekeys", e.one_time_prekeys.to_string());
    line(
        &mut out,
        "prekey_refill_below",
        e.prekey_refill_below.to_string(),
    );
    e2ee_limits(&mut out, e);
    devices(&mut out, &s.devices);
    for f in &s.faults {
        fault(&mut out, f, &s.providers);
    }
    if let Some(sw) = &s.swarm {
        out.push_str("\n[swarm]\n");
        line(&mut out, "intensity", float(sw.intensity));
        let kinds: Vec<String> = sw.kinds.iter().map(|k| quote(k)).collect();
        line(&mut out, "kinds", format!("[{}]", kinds.join(", ")));
    }
    if !s.expect.is_empty() {
        out.push_str("\n[expect]\n");
        for e in &s.expect {
            expectation(&mut out, e);
        }
    }
    if let Some(sw) = &s.sweep {
        sweep(&mut out, sw);
    }
    if let Some(p) = &s.plan {
        plan(&mut out, p);
    }
    out
}

fn plan(out: &mut String, p: &CapacityPlan) {
    out.push_str("\n[plan]\n");
    let keys: Vec<String> = p.solve.iter().map(|k| quote(&k.key)).collect();
    let number = |k: &PlanKnob, x: f64| match k.target.is_integer() {
        true => format!("{}", x as u64),
        false => float(x),
    };
    let ranges: Vec<String> = p
        .solve
        .iter()
        .map(|k| inline(&[("min", number(k, k.min)), ("max", number(k, k.max))]))
        .collect();
    let pairs: Vec<(&str, String)> = keys.iter().map(String::as_str).zip(ranges).collect();
    line(out, "solve", inline(&pairs));
    line(out, "seeds", p.seeds.to_string());
    line(out, "confidence", float(p.confidence));
    line(out, "slice", p.slice.to_string());
    let load = [("users", float(p.load_users)), ("rate", float(p.load_rate))];
    line(out, "load", inline(&load));
    out.push_str("\n[plan.slo]\n");
    for e in &p.slo {
        expectation(out, e);
    }
}

fn sweep(out: &mut String, sw: &Sweep) {
    out.push_str("\n[sweep]\n");
    line(out, "repeats", sw.repeats.to_string());
    let keys: Vec<String> = sw.axes.iter().map(|a| quote(&a.key)).collect();
    let pairs: Vec<(&str, String)> = sw
        .axes
        .iter()
        .zip(&keys)
        .map(|(a, k)| {
            let values: Vec<String> = a
                .values
                .iter()
                .map(|v| match *v {
                    SweepValue::Number(x) if a.target.is_integer() => format!("{}", x as u64),
                    SweepValue::Number(x) => float(x),
                    SweepValue::Duration(ns) => dur(ns),
                    SweepValue::Design(d) => quote(d.key()),
                })
                .collect();
            (k.as_str(), format!("[{}]", values.join(", ")))
        })
        .collect();
    line(out, "grid", inline(&pairs));
}

fn line(out: &mut String, key: &str, value: String) {
    let _ = writeln!(out, "{key} = {value}");
}

fn dur(ns: DurationNs) -> String {
    quote(&format_duration_ns(ns))
}

/// A float that TOML reads back bit for bit (`{:?}` prints the shortest round-trip form).
fn float(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x:?}")
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn inline(pairs: &[(&str, String)]) -> String {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", body.join(", "))
}

fn run(out: &mut String, r: &RunSpec) {
    out.push_str("[run]\n");
    line(out, "name", quote(&r.name));
    line(out, "seed", r.seed.to_string());
    line(out, "duration", dur(r.duration_ns));
    line(out, "drain", dur(r.drain_ns));
    line(out, "interval", dur(r.interval_ns));
    line(out, "ramp", dur(r.ramp_ns));
    line(out, "warmup", dur(r.warmup_ns));
    line(out, "events_max", r.events_max.to_string());
}

fn provider(out: &mut String, p: &Provider) {
    out.push_str("\n[[provider]]\n");
    line(out, "name", quote(&p.name));
    let role = match p.role {
        Role::Gatekeeper => "gatekeeper",
        Role::Partner => "partner",
    };
    line(out, "role", quote(role));
    line(out, "users", p.users.to_string());
    let devices = if p.devices_min == p.devices_max {
        p.devices_min.to_string()
    } else {
        inline(&[
            ("min", p.devices_min.to_string()),
            ("max", p.devices_max.to_string()),
        ])
    };
    line(out, "devices_per_user", devices);
    line(out, "opt_in", float(p.opt_in));
    if let Some(share) = p.separate_inbox {
        line(out, "separate_inbox", float(share));
    }
    let adapter = match p.adapter {
        AdapterMode::Proxied => "proxied",
        AdapterMode::Direct => "direct",
    };
    line(out, "adapter", quote(adapter));
}

fn latency(l: &Latency) -> String {
    let (dist, a, b) = match *l {
        Latency::Constant { value_ns } => ("constant", ("value", dur(value_ns)), None),
        Latency::Uniform { min_ns, max_ns } => {
            ("uniform", ("min", dur(min_ns)), Some(("max", dur(max_ns))))
        }
        Latency::Normal { mean_ns, stddev_ns } => (
            "normal",
            ("mean", dur(mean_ns)),
            Some(("stddev", dur(stddev_ns))),
        ),
        Latency::Lognormal { median_ns, p99_ns } => (
            "lognormal",
            ("median", dur(median_ns)),
            Some(("p99", dur(p99_ns))),
        ),
        Latency::Pareto { min_ns, alpha } => (
            "pareto",
            ("min", dur(min_ns)),
            Some(("alpha", float(alpha))),
        ),
    };
    let mut pairs = vec![("dist", quote(dist)), a];
    pairs.extend(b);
    inline(&pairs)
}

fn network(out: &mut String, n: &Network) {
    out.push_str("\n[network]\n");
    let mimi = n
        .provider_provider
        .is_some()
        .then_some(HopClass::ProviderProvider);
    for hop in HopClass::ALL.into_iter().chain(mimi) {
        let l = n.link(hop);
        let mut pairs = vec![
            ("latency", latency(&l.latency)),
            ("loss", float(l.loss)),
            ("duplicate", float(l.duplicate)),
            ("reorder", float(l.reorder)),
            ("reorder_delay", dur(l.reorder_delay_ns)),
        ];
        if let Some(bandwidth) = l.bandwidth_bytes_per_s {
            pairs.push(("bandwidth", bandwidth.to_string()));
        }
        pairs.push(("queue_max_bytes", l.queue_max_bytes.to_string()));
        pairs.push(("latency_hold", dur(l.latency_hold_ns)));
        line(out, hop.key(), inline(&pairs));
    }
}

fn workload(out: &mut String, w: &Workload) {
    out.push_str("\n[workload]\n");
    line(
        out,
        "messages_per_user_hour",
        float(w.messages_per_user_hour),
    );
    line(out, "cross_provider", float(w.cross_provider));
    let content: Vec<(&str, String)> = ContentKind::ALL
        .iter()
        .map(|k| (k.key(), float(w.content[*k as usize])))
        .collect();
    line(out, "content", inline(&content));
    let size = inline(&[
        ("min", w.group_size_min.to_string()),
        ("max", w.group_size_max.to_string()),
    ]);
    let groups = [
        ("share", float(w.groups_share)),
        ("size", size),
        ("leave", float(w.group_leave)),
    ];
    line(out, "groups", inline(&groups));
    // Written only when set: every scenario hash from before the key stays what it was.
    if w.media_bytes_max != super::model::MEDIA_BYTES_MAX {
        line(out, "media_bytes_max", w.media_bytes_max.to_string());
    }
    line(out, "contacts_per_user", w.contacts_per_user.to_string());
    line(out, "reply_probability", float(w.reply_probability));
    line(out, "reply_delay", dur(w.reply_delay_mean_ns));
    line(out, "read_probability", float(w.read_probability));
    if w.separate_inbox_delay_ns != SEPARATE_INBOX_DELAY_NS {
        line(out, "separate_inbox_delay", dur(w.separate_inbox_delay_ns));
    }
}

fn capacity(out: &mut String, c: &Capacity) {
    out.push_str("\n[capacity]\n");
    for (key, n, is_gateway) in [
        ("gateway", &c.gateway, true),
        ("chat_server", &c.chat_server, false),
        ("adapter", &c.adapter, false),
    ] {
        let mut pairs = vec![
            ("cores", n.cores.to_string()),
            ("per_message", dur(n.per_message_ns)),
            ("queue_max", n.queue_max.to_string()),
        ];
        if is_gateway {
            let limit = n
                .rate_limit_per_partner
                .map_or_else(|| quote("unlimited"), float);
            pairs.push(("rate_limit_per_partner", limit));
        }
        if n.control_queue == ControlQueue::Separate {
            pairs.push(("control_queue", quote("separate")));
        }
        line(out, key, inline(&pairs));
    }
    for (key, host) in [("host", &c.host), ("generator", &c.generator)] {
        if let Some(h) = host {
            let pairs = [
                ("cores", h.cores.to_string()),
                ("per_frame", dur(h.per_frame_ns)),
                ("per_wake", dur(h.per_wake_ns)),
            ];
            line(out, key, inline(&pairs));
        }
    }
}

/// The bundle-fetch limit, and the cost table inline (its content, not the path it came from:
/// the rendered scenario is read again from other directories).
fn e2ee_limits(out: &mut String, e: &E2ee) {
    match e.bundle_fetch_limit {
        Some(limit) => {
            line(out, "bundle_fetch_burst", limit.burst.to_string());
            line(out, "bundle_fetch_per_hour", float(limit.per_hour));
        }
        None => line(out, "bundle_fetch_per_hour", quote("unlimited")),
    }
    if !e.cost_table.is_empty() {
        let ops: Vec<(&str, String)> = e
            .cost_table
            .iter()
            .map(|(op, c)| {
                let price = inline(&[
                    ("fixed_ns", c.fixed_ns.to_string()),
                    ("per_kib_ns", c.per_kib_ns.to_string()),
                ]);
                (op.key(), price)
            })
            .collect();
        line(out, "cost_table", inline(&ops));
    }
}

fn devices(out: &mut String, d: &Devices) {
    out.push_str("\n[devices]\n");
    line(out, "online_share", float(d.online_share));
    line(out, "online_mean", dur(d.online_mean_ns));
    line(out, "offline_ttl", dur(d.offline_ttl_ns));
    line(out, "retry_initial", dur(d.retry_initial_ns));
    line(out, "retry_max", dur(d.retry_max_ns));
    line(out, "outbox_max", d.outbox_max.to_string());
    line(out, "plaintext_cache", d.plaintext_cache.to_string());
}

fn endpoint(e: &Endpoint, providers: &[Provider]) -> String {
    let name = |i: usize| {
        providers
            .get(i)
            .map_or("?", |p| p.name.as_str())
            .to_string()
    };
    quote(&match e {
        Endpoint::Gateway => "gateway".to_string(),
        Endpoint::Provider(i) => name(*i),
        Endpoint::Clients(i) => format!("{}-clients", name(*i)),
    })
}

fn fault(out: &mut String, f: &Fault, providers: &[Provider]) {
    out.push_str("\n[[fault]]\n");
    line(out, "at", dur(f.at_ns));
    if let Some(for_ns) = f.for_ns {
        line(out, "for", dur(for_ns));
    }
    let provider = |i: usize| endpoint(&Endpoint::Provider(i), providers);
    let (kind, pairs): (&str, Vec<(&str, String)>) = match &f.kind {
        FaultKind::Partition { a, b, one_way } => (
            "partition",
            vec![
                (
                    "between",
                    format!("[{}, {}]", endpoint(a, providers), endpoint(b, providers)),
                ),
                ("one_way", one_way.to_string()),
            ],
        ),
        FaultKind::Crash { node, durable } => (
            "crash",
            vec![
                ("node", endpoint(node, providers)),
                ("durable", durable.to_string()),
            ],
        ),
        FaultKind::Slow { node, factor } => (
            "slow",
            vec![
                ("node", endpoint(node, providers)),
                ("factor", float(*factor)),
            ],
        ),
        FaultKind::Loss { link, rate } => ("loss", link_rate(*link, *rate)),
        FaultKind::Duplicate { link, rate } => ("duplicate", link_rate(*link, *rate)),
        FaultKind::Reorder { link, rate } => ("reorder", link_rate(*link, *rate)),
        FaultKind::Tamper { link, rate } => ("tamper", link_rate(*link, *rate)),
        FaultKind::Replay { link, rate } => ("replay", link_rate(*link, *rate)),
        FaultKind::IdentityReset { provider: p, users } => (
            "identity_reset",
            vec![("provider", provider(*p)), ("users", float(*users))],
        ),
        FaultKind::Surge { factor } => ("surge", vec![("factor", float(*factor))]),
        FaultKind::ClockSkew {
            node,
            offset_ns,
            behind,
        } => (
            "clock_skew",
            vec![
                ("node", endpoint(node, providers)),
                ("offset", dur(*offset_ns)),
                ("behind", behind.to_string()),
            ],
        ),
        FaultKind::PushLoss { provider: p, rate } => (
            "push_loss",
            vec![("provider", provider(*p)), ("rate", float(*rate))],
        ),
        FaultKind::PrekeyDrain {
            provider: p,
            users,
            rate,
        } => (
            "prekey_drain",
            vec![
                ("provider", provider(*p)),
                ("users", float(*users)),
                ("rate", float(*rate)),
            ],
        ),
        FaultKind::Toggle { provider: p, users } => (
            "toggle",
            vec![("provider", provider(*p)), ("users", float(*users))],
        ),
    };
    line(out, "kind", quote(kind));
    for (key, value) in pairs {
        line(out, key, value);
    }
}

fn link_rate(link: HopClass, rate: f64) -> Vec<(&'static str, String)> {
    vec![("link", quote(link.key())), ("rate", float(rate))]
}

fn expectation(out: &mut String, e: &Expectation) {
    let (side, x) = match e.bound {
        Bound::AtMost(x) => ("max", x),
        Bound::AtLeast(x) => ("min", x),
    };
    let value = if is_latency(&e.key) && x >= 0.0 && x.fract() == 0.0 && x < u64::MAX as f64 {
        dur(x as u64)
    } else {
        float(x)
    };
    line(out, &e.key, inline(&[(side, value)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_back_bit_for_bit() {
        for x in [
            0.0,
            1.0,
            0.1,
            0.7,
            1e-7,
            1e20,
            123456.789,
            f64::MIN_POSITIVE,
            5e-324,
            0.1 + 0.2,
        ] {
            let text = format!("x = {}", float(x));
            let table: toml::Table = toml::from_str(&text).expect("valid TOML");
            assert_eq!(table["x"].as_float(), Some(x), "{text}");
        }
    }

    #[test]
    fn strings_are_escaped() {
        let s = "a\"b\\c\nd\u{1}é";
        let table: toml::Table = toml::from_str(&format!("x = {}", quote(s))).expect("valid TOML");
        assert_eq!(table["x"].as_str(), Some(s));
    }

    #[test]
    fn hash_is_short_hex_and_changes_with_the_scenario() {
        let text = "[[provider]]\nname = \"g\"\nrole = \"gatekeeper\"\nusers = 1\n\
                    [[provider]]\nname = \"p\"\nrole = \"partner\"\nusers = 1\n";
        let a = crate::scenario::parse(text, "a.toml").expect("valid");
        let mut b = a.clone();
        b.run.seed += 1;
        assert_eq!(hash(&a).len(), HASH_HEX_LEN);
        assert_eq!(hash(&a), hash(&a.clone()));
        assert_ne!(hash(&a), hash(&b));
    }
}
