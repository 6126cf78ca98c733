//! How a run's parts are named on its page: message paths and faults, in the figures
//! (`run`) and in the tables (`run_tables`) alike.

use super::plots;
use crate::engine::time::format_duration_ns;
use crate::metrics::PathKind;
use crate::scenario::{Endpoint, Fault, FaultKind, Provider};

pub fn path_label(p: PathKind) -> &'static str {
    match p {
        PathKind::Native => "same provider",
        PathKind::Interop => "cross provider",
        PathKind::Group => "group",
    }
}

fn endpoint_name(e: &Endpoint, providers: &[Provider]) -> String {
    let name = |i: usize| providers.get(i).map_or("?".to_string(), |p| p.name.clone());
    match e {
        Endpoint::Gateway => "gateway".to_string(),
        Endpoint::Provider(i) => name(*i),
        Endpoint::Clients(i) => format!("{}-clients", name(*i)),
    }
}

/// "partition gateway–haiket", "crash birdychat", "loss 5% gateway_partner".
pub fn fault_label(f: &Fault, providers: &[Provider]) -> String {
    let ep = |e: &Endpoint| endpoint_name(e, providers);
    let pct = |x: f64| format!("{}%", plots::trim_float(x * 100.0));
    match &f.kind {
        FaultKind::Partition { a, b, one_way } => {
            let arrow = if *one_way { "→" } else { "–" };
            format!("partition {}{arrow}{}", ep(a), ep(b))
        }
        FaultKind::Crash { node, durable } => {
            format!(
                "crash {}{}",
                ep(node),
                if *durable { "" } else { " (volatile)" }
            )
        }
        FaultKind::Slow { node, factor } => {
            format!("slow {} ×{}", ep(node), plots::trim_float(*factor))
        }
        FaultKind::Loss { link, rate } => format!("loss {} {}", pct(*rate), link.key()),
        FaultKind::Duplicate { link, rate } => format!("duplicate {} {}", pct(*rate), link.key()),
        FaultKind::Reorder { link, rate } => format!("reorder {} {}", pct(*rate), link.key()),
        FaultKind::Tamper { link, rate } => format!("tamper {} {}", pct(*rate), link.key()),
        FaultKind::Replay { link, rate } => format!("replay {} {}", pct(*rate), link.key()),
        FaultKind::IdentityReset { provider, users } => {
            format!(
                "identity reset {} of {}",
                pct(*users),
                ep(&Endpoint::Provider(*provider))
            )
        }
        FaultKind::Toggle { provider, users } => {
            format!(
                "opt-out {} of {}",
                pct(*users),
                ep(&Endpoint::Provider(*provider))
            )
        }
        FaultKind::Surge { factor } => format!("surge ×{}", plots::trim_float(*factor)),
        FaultKind::ClockSkew {
            node,
            offset_ns,
            behind,
        } => format!(
            "clock skew {} {}{}",
            ep(node),
            if *behind { "-" } else { "+" },
            format_duration_ns(*offset_ns)
        ),
        FaultKind::PushLoss { provider, rate } => {
            format!(
                "push loss {} {}",
                pct(*rate),
                ep(&Endpoint::Provider(*provider))
            )
        }
        FaultKind::PrekeyDrain {
            provider, users, ..
        } => {
            format!(
                "prekey drain {} of {}",
                pct(*users),
                ep(&Endpoint::Provider(*provider))
            )
        }
    }
}
