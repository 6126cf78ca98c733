//! `bench pipeline`: the 1:1 text pipeline measured whole, as a user runs it (the first wave's
//! lesson: the queue bench ran 43 M events/s while whole runs did about 1.2 M). It runs
//! `scenarios/scale-1m-text.toml` cut down to a population (10 k and 100 k users by default),
//! each in a process of its own so that the peak memory is that run's, and reports CPU seconds
//! beside wall seconds, events, events per message, simulated messages per CPU-second and the
//! peak RSS. Machine figures: printed and written for a person to compare before and after a
//! change, never gated in a test.

use super::BenchError;
use crate::scenario::Scenario;
use serde::Serialize;
use serde_json::Value;

/// The populations measured when none are given.
pub const DEFAULT_USERS: [u32; 2] = [10_000, 100_000];

/// `base` with `users` users, spread over its providers in their proportions (each keeps at
/// least one); everything else as written.
pub fn scaled(base: &Scenario, users: u32) -> Result<Scenario, BenchError> {
    let total: u64 = base.providers.iter().map(|p| p.users as u64).sum();
    if total == 0 || users == 0 {
        return Err(BenchError::Scenario(format!(
            "bench pipeline: cannot scale {} users to {users}",
            total
        )));
    }
    let mut s = base.clone();
    for p in &mut s.providers {
        let share = p.users as f64 / total as f64;
        p.users = ((share * users as f64).round() as u32).max(1);
    }
    s.run.name = format!("{}-{}", base.run.name, users);
    Ok(s)
}

/// One population's figures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PipelinePoint {
    pub users: u32,
    /// Messages composed (summary.json's `sent`).
    pub messages: u64,
    pub events: u64,
    pub wall_s: f64,
    /// User + system CPU time of the run's process.
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub events_per_message: f64,
    pub messages_per_cpu_s: f64,
}

/// The figures of a finished run from its summary.json and perf.json.
pub fn point(users: u32, summary: &Value, perf: &Value) -> Result<PipelinePoint, BenchError> {
    let field = |v: &Value, file: &str, key: &str| {
        v[key].as_f64().ok_or_else(|| BenchError::BadFile {
            path: file.into(),
            message: format!("no number `{key}`"),
        })
    };
    let messages = field(summary, "summary.json", "sent")? as u64;
    let events = field(summary, "summary.json", "events_processed")? as u64;
    let cpu_s = field(perf, "perf.json", "cpu_s")?;
    Ok(PipelinePoint {
        users,
        messages,
        events,
        wall_s: field(perf, "perf.json", "wall_s")?,
        cpu_s,
        peak_rss_mib: field(perf, "perf.json", "peak_rss_mib")?,
        events_per_message: events as f64 / (messages.max(1) as f64),
        messages_per_cpu_s: messages as f64 / cpu_s.max(0.01),
    })
}

/// The table the command prints.
pub fn table(points: &[PipelinePoint]) -> Vec<String> {
    let mut lines = vec![format!(
        "{:>9} {:>10} {:>11} {:>8} {:>8} {:>10} {:>12} {:>14}",
        "users", "messages", "events", "wall s", "CPU s", "peak MiB", "events/msg", "msg per CPU-s"
    )];
    for p in points {
        lines.push(format!(
            "{:>9} {:>10} {:>11} {:>8.2} {:>8.2} {:>10.1} {:>12.2} {:>14.0}",
            p.users,
            p.messages,
            p.events,
            p.wall_s,
            p.cpu_s,
            p.peak_rss_mib,
            p.events_per_message,
            p.messages_per_cpu_s
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_keeps_the_providers_proportions_and_names_the_size() {
        let text = "[run]\nname = \"p\"\nduration = \"1m\"\n\
            [[provider]]\nname = \"a\"\nrole = \"gatekeeper\"\nusers = 800\n\
            [[provider]]\nname = \"b\"\nrole = \"partner\"\nusers = 200\n";
        let base = crate::scenario::parse(text, "p.toml").expect("valid");
        let s = scaled(&base, 10_000).expect("scales");
        let users: Vec<u32> = s.providers.iter().map(|p| p.users).collect();
        assert_eq!(users, vec![8_000, 2_000]);
        assert_eq!(s.run.name, "p-10000");
        assert_eq!(scaled(&base, 1).expect("tiny").providers[1].users, 1);
        assert!(scaled(&base, 0).is_err());
    }

    #[test]
    fn figures_come_from_the_result_files_and_missing_ones_are_named() {
        let summary = serde_json::json!({ "sent": 1000, "events_processed": 10_500 });
        let perf = serde_json::json!({ "wall_s": 2.5, "cpu_s": 2.0, "peak_rss_mib": 100.0 });
        let p = point(10, &summary, &perf).expect("complete");
        assert_eq!((p.messages, p.events), (1000, 10_500));
        assert!((p.events_per_message - 10.5).abs() < 1e-9);
        assert!((p.messages_per_cpu_s - 500.0).abs() < 1e-9);
        assert_eq!(table(&[p]).len(), 2);
        let err = point(10, &summary, &serde_json::json!({ "wall_s": 1.0 })).expect_err("no cpu");
        assert!(err.to_string().contains("cpu_s"), "{err}");
    }
}
