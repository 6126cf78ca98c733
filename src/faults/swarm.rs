//! Drawing a swarm's faults from the seed. Every drawn fault heals before the workload stops,
//! so the run's drain is where liveness is judged.

use crate::engine::{RngTree, SimRng};
use crate::net::latency::unit;
use crate::scenario::{Endpoint, Fault, FaultKind, HopClass, Scenario, Swarm};
use rand::Rng;

const S: u64 = 1_000_000_000;

/// The faults a swarm adds to `s` for its seed.
pub fn draw(s: &Scenario, swarm: &Swarm) -> Vec<Fault> {
    let mut rng = RngTree::new(s.run.seed).stream("faults/swarm", 0);
    let count = 1 + (swarm.intensity * 8.0).round() as usize;
    let duration = s.run.duration_ns;
    (0..count)
        .filter_map(|_| {
            let kind = &swarm.kinds[pick(&mut rng, swarm.kinds.len())];
            let at_ns = (unit(&mut rng) * duration as f64 * 0.8) as u64;
            let for_max = duration.saturating_sub(at_ns).min(120 * S);
            let for_ns = ((10.0 + unit(&mut rng) * 80.0) * (0.5 + swarm.intensity) * 1e9) as u64;
            let for_ns = for_ns.min(for_max).max(1);
            let kind = draw_kind(kind, s, swarm.intensity, &mut rng)?;
            (at_ns < duration).then_some(Fault {
                at_ns,
                for_ns: Some(for_ns),
                kind,
            })
        })
        .collect()
}

fn pick(rng: &mut SimRng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn endpoint(rng: &mut SimRng, providers: usize, clients: bool) -> Endpoint {
    let choices = 1 + providers * if clients { 2 } else { 1 };
    match pick(rng, choices) {
        0 => Endpoint::Gateway,
        i if i <= providers => Endpoint::Provider(i - 1),
        i => Endpoint::Clients(i - 1 - providers),
    }
}

fn draw_kind(kind: &str, s: &Scenario, intensity: f64, rng: &mut SimRng) -> Option<FaultKind> {
    let providers = s.providers.len();
    let links = [
        HopClass::ClientServer,
        HopClass::ServerGateway,
        HopClass::GatewayPartner,
    ];
    let link = links[pick(rng, links.len())];
    let rate = (intensity * 0.3 * unit(rng)).clamp(0.001, 1.0);
    Some(match kind {
        "partition" => {
            let a = endpoint(rng, providers, true);
            let b = endpoint(rng, providers, true);
            if a == b {
                return None;
            }
            FaultKind::Partition {
                a,
                b,
                one_way: unit(rng) < 0.3,
            }
        }
        "crash" => FaultKind::Crash {
            node: endpoint(rng, providers, false),
            durable: true,
        },
        "slow" => FaultKind::Slow {
            node: endpoint(rng, providers, false),
            factor: 2.0 + 8.0 * unit(rng),
        },
        "loss" => FaultKind::Loss { link, rate },
        "duplicate" => FaultKind::Duplicate { link, rate },
        "reorder" => FaultKind::Reorder { link, rate },
        "tamper" => FaultKind::Tamper { link, rate },
        "replay" => FaultKind::Replay { link, rate },
        "push_loss" => FaultKind::PushLoss {
            provider: pick(rng, providers),
            rate: intensity.clamp(0.0, 1.0),
        },
        "surge" => FaultKind::Surge {
            factor: 1.0 + 9.0 * intensity * unit(rng),
        },
        "clock_skew" => FaultKind::ClockSkew {
            node: Endpoint::Clients(pick(rng, providers)),
            offset_ns: (unit(rng) * 600.0 * 1e9) as u64,
            behind: unit(rng) < 0.5,
        },
        "identity_reset" => FaultKind::IdentityReset {
            provider: pick(rng, providers),
            users: (intensity * 0.3 * unit(rng)).clamp(0.01, 1.0),
        },
        "toggle" => FaultKind::Toggle {
            provider: pick(rng, providers),
            users: (intensity * 0.3 * unit(rng)).clamp(0.01, 1.0),
        },
        _ => return None,
    })
}

/// The scenario with its swarm drawn into explicit faults (and the swarm table removed), so
/// that a run, a replay and a shrink all see the same fault list.
pub fn materialize(s: &Scenario) -> Scenario {
    let mut out = s.clone();
    if let Some(swarm) = &s.swarm {
        out.faults.extend(draw(s, swarm));
        out.swarm = None;
    }
    out
}
