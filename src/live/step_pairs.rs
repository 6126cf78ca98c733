//! Each step of a traced message's way as the simulated copy and the live run took it, side by
//! side (`metrics::hops`): where the two part, the end-to-end error comes from. Shown, not
//! judged: `validate`'s verdict stays on what a planner reads, the end-to-end figures.

use crate::metrics::hops::Step;
use serde::Serialize;

/// One step (from one stage to the next) in either run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepPair {
    pub from: String,
    pub to: String,
    /// `None`: the run did not take this step (or traced none that did).
    pub sim: Option<Step>,
    pub live: Option<Step>,
}

impl StepPair {
    /// (live - sim) / sim of the step's p50; `None` without both, or when the model says 0.
    pub fn p50_error(&self) -> Option<f64> {
        let (s, l) = (self.sim.as_ref()?, self.live.as_ref()?);
        (s.p50_ms > 0.0).then(|| (l.p50_ms - s.p50_ms) / s.p50_ms)
    }
}

/// The steps of both runs, paired by their stages: in the live run's order, then the steps only
/// the simulated copy took.
pub fn pair(sim: &[Step], live: &[Step]) -> Vec<StepPair> {
    let same = |a: &Step, b: &Step| a.from == b.from && a.to == b.to;
    let mut pairs: Vec<StepPair> = live
        .iter()
        .map(|l| StepPair {
            from: l.from.clone(),
            to: l.to.clone(),
            sim: sim.iter().find(|s| same(s, l)).cloned(),
            live: Some(l.clone()),
        })
        .collect();
    pairs.extend(
        sim.iter()
            .filter(|s| !live.iter().any(|l| same(s, l)))
            .map(|s| StepPair {
                from: s.from.clone(),
                to: s.to.clone(),
                sim: Some(s.clone()),
                live: None,
            }),
    );
    pairs
}

fn ms(step: Option<&Step>, f: impl Fn(&Step) -> f64) -> String {
    step.map_or("-".to_string(), |s| format!("{:.3}", f(s)))
}

/// Per step: from, to, p50 sim, p50 live, p50 error, p99 sim, p99 live, messages (sim / live).
pub fn cells(pairs: &[StepPair]) -> Vec<[String; 8]> {
    pairs
        .iter()
        .map(|p| {
            let (s, l) = (p.sim.as_ref(), p.live.as_ref());
            let n = |x: Option<&Step>| x.map_or("-".to_string(), |x| x.samples.to_string());
            [
                p.from.clone(),
                p.to.clone(),
                ms(s, |x| x.p50_ms),
                ms(l, |x| x.p50_ms),
                p.p50_error()
                    .map_or("n/a".to_string(), |e| format!("{:+.0} %", e * 100.0)),
                ms(s, |x| x.p99_ms),
                ms(l, |x| x.p99_ms),
                format!("{} / {}", n(s), n(l)),
            ]
        })
        .collect()
}

/// validate.txt's lines, one per step.
pub fn lines(pairs: &[StepPair]) -> Vec<String> {
    cells(pairs)
        .into_iter()
        .map(|[from, to, s50, l50, e, s99, l99, n]| {
            format!(
                "{from} -> {to}: p50 {s50} / {l50} ms ({e}), p99 {s99} / {l99} ms, {n} messages"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(from: &str, to: &str, p50: f64, samples: u64) -> Step {
        Step {
            from: from.into(),
            to: to.into(),
            samples,
            p50_ms: p50,
            p99_ms: p50 * 4.0,
            mean_ms: p50,
        }
    }

    /// Steps pair by their stages whatever order each run lists them in; a step only one run
    /// took keeps its place with a dash for the other; the error is the live p50's against the
    /// model's.
    #[test]
    fn steps_pair_by_their_stages_and_show_what_one_run_lacks() {
        let live = [
            step("send", "queued", 0.010, 100),
            step("queued", "chat_server", 0.200, 100),
            step("chat_server", "delivered", 0.150, 99),
        ];
        let sim = [
            step("queued", "chat_server", 0.100, 120),
            step("send", "queued", 0.010, 120),
            step("chat_server", "gateway", 0.050, 30),
        ];
        let pairs = pair(&sim, &live);
        let names: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.from.as_str(), p.to.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("send", "queued"),
                ("queued", "chat_server"),
                ("chat_server", "delivered"),
                ("chat_server", "gateway"),
            ]
        );
        assert_eq!(pairs[1].p50_error(), Some(1.0));
        assert_eq!(pairs[2].p50_error(), None, "the model did not take it");
        assert_eq!(
            lines(&pairs)[1],
            "queued -> chat_server: p50 0.100 / 0.200 ms (+100 %), p99 0.400 / 0.800 ms, 120 / 100 messages"
        );
        assert_eq!(
            lines(&pairs)[3],
            "chat_server -> gateway: p50 0.050 / - ms (n/a), p99 0.200 / - ms, 30 / - messages"
        );
    }
}
