//! What `validate` aligns between its two runs: a model is validated only against a run with
//! the same inputs, so the simulated copy gets what live can carry and nothing else (see
//! [`aligned`]).

use super::options::LiveOptions;
use super::prepare::live_scenario;
use crate::scenario::Scenario;

/// The scenario both runs use, the live options that match it, and what was aligned.
pub fn aligned(s: &Scenario, opts: &LiveOptions) -> (Scenario, LiveOptions, Vec<String>) {
    let mut notes = vec![
        "one device per user, every device online, no replies and no read receipts (live's schedule is open-loop and its devices send no receipts)"
            .to_string(),
        "the same users and enlistment draws (one directory builder)".to_string(),
    ];
    let mut a = live_scenario(s, opts.users);
    let users: u64 = a.providers.iter().map(|p| p.users as u64).sum();
    if let Some(rate) = opts.rate_per_s {
        a.workload.messages_per_user_hour = rate * 3600.0 / users.max(1) as f64;
    }
    if let Some(d) = opts.duration_ns {
        a.run.duration_ns = d;
    }
    // Live connects every device in its first second and sends after it; the simulated copy
    // connects them over its ramp and leaves that stretch out of the statistics.
    a.run.ramp_ns = super::options::WARMUP_NS.min(a.run.duration_ns / 10);
    a.run.warmup_ns = a.run.ramp_ns;
    notes.push(format!(
        "connection phase: live connects every device, then sends after {:.1} s; the simulator connects them over its first {:.1} s and leaves those out of the statistics",
        super::options::WARMUP_NS as f64 / 1e9,
        a.run.ramp_ns as f64 / 1e9
    ));
    a.devices.online_share = 1.0;
    a.workload.reply_probability = 0.0;
    // Live's devices never send read receipts; left at the scenario's share, the simulated copy
    // carried a receipt back across every hop for most messages (80 % by default), seconds
    // after the message, which live's servers never saw.
    a.workload.read_probability = 0.0;
    if a.workload.groups_share > 0.0 {
        notes.push(format!(
            "group messages in both ({:.0} %): one Sender Key ciphertext per message, its key distributed pairwise, fanned out by the hub (live: real Sender Keys)",
            a.workload.groups_share * 100.0
        ));
    }
    if a.workload.content[0] < 1.0 {
        let bound = super::schedule::MEDIA_BYTES_MAX;
        a.workload.media_bytes_max = a.workload.media_bytes_max.min(u64::from(bound));
        notes.push(format!(
            "media in both ({:.0} % of messages): blobs at most {} KiB (live's bound), uploaded before the message goes, fetched after it shows (live: HTTP stores and proxy on loopback)",
            (1.0 - a.workload.content[0]) * 100.0,
            bound / 1024
        ));
    }
    notes.push(format!(
        "arrivals {} in both",
        match opts.arrivals {
            super::Arrivals::Poisson => "Poisson",
            super::Arrivals::Constant =>
                "evenly spaced (the simulator's are Poisson: expect a lower live p99)",
        }
    ));
    if opts.warm_sessions {
        a.e2ee.sessions = crate::scenario::SessionSetup::Established;
        notes.push(
            "Signal sessions set up before the clock in both (keys, X3DH, a message each way); each message pays its ratchet encrypt and decrypt".into(),
        );
    } else {
        notes.push("Signal sessions set up at each conversation's first message in both".into());
    }
    let o = LiveOptions {
        users: None, // already scaled
        rate_per_s: Some(users as f64 * a.workload.messages_per_user_hour / 3600.0),
        duration_ns: Some(a.run.duration_ns),
        ..opts.clone()
    };
    (a, o, notes)
}
