//! `[swarm]`: a fault mix drawn from the seed (FoundationDB's swarm testing): each seed gets a
//! different set of faults, so `run FILE --seeds 1..200` explores many failure combinations.

use toml::de::{DeTable, DeValue};

use super::errors::Ctx;
use super::model::Swarm;
use super::values::*;

/// Fault kinds a swarm may draw: the ones a well-built messenger survives once they heal.
pub const SWARM_KINDS: [&str; 11] = [
    "partition",
    "crash",
    "slow",
    "loss",
    "duplicate",
    "reorder",
    "tamper",
    "replay",
    "push_loss",
    "surge",
    "clock_skew",
];

/// Kinds a swarm draws only when `kinds` names them: user-side events (a reinstall, an opt-in
/// switched off and on) rather than failures of the system, so not in the default mix.
pub const SWARM_KINDS_OPT_IN: [&str; 2] = ["identity_reset", "toggle"];

pub(crate) fn swarm(ctx: &mut Ctx, t: &DeTable<'_>) -> Option<Swarm> {
    let p = "swarm";
    check_keys(ctx, t, p, &["intensity", "kinds"]);
    let intensity = field(ctx, t, p, "intensity", 0.3, probability);
    let kinds = match get(t, "kinds") {
        None => SWARM_KINDS.iter().map(|k| k.to_string()).collect(),
        Some(v) => kinds(ctx, v)?,
    };
    Some(Swarm { intensity, kinds })
}

fn kinds(ctx: &mut Ctx, value: &Value<'_>) -> Option<Vec<String>> {
    let path = "swarm.kinds";
    let DeValue::Array(items) = value.get_ref() else {
        ctx.expected(
            value,
            path,
            "an array of fault kinds, like [\"partition\", \"loss\"]",
        );
        return None;
    };
    if items.is_empty() {
        ctx.expected(value, path, "at least one fault kind");
        return None;
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let all: Vec<&str> = SWARM_KINDS
            .iter()
            .chain(SWARM_KINDS_OPT_IN.iter())
            .copied()
            .collect();
        let k = choice(ctx, item, &format!("{path}[{i}]"), &all)?;
        out.push(all[k].to_string());
    }
    Some(out)
}
