//! Live faults, from the scenario's `[[fault]]` list: a partition refuses and drops the
//! connections between two roles for its window; a crash takes a server task down (every
//! connection dropped, every new one refused, state lost as the simulator's crash loses it)
//! and restarts it when the window ends. Other fault kinds are the simulator's only and are
//! reported as skipped. Times count from the start of the sending window.

use super::clock::Clock;
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::checker::FaultWindow;
use crate::nodes::Addr;
use crate::scenario::{Endpoint, Fault, FaultKind, Scenario};
use crate::wire::ProviderId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What a fault tells a server task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Crash: drop every connection, refuse new ones, lose state (`durable`: keep stored
    /// messages).
    Crash {
        durable: bool,
    },
    Restart,
}

/// The partitions in force, checked on every send, receive and dial.
#[derive(Debug, Default)]
pub struct Cuts {
    any: AtomicBool,
    active: Mutex<Vec<(Endpoint, Endpoint, bool)>>,
}

/// Whether `a` is one of the nodes `e` names.
fn member(e: &Endpoint, a: Addr, dir: &Directory) -> bool {
    match (e, a) {
        (Endpoint::Gateway, Addr::Gateway) => true,
        (Endpoint::Provider(0), Addr::ChatServer) => true,
        (Endpoint::Provider(p), Addr::Adapter(q) | Addr::PartnerServer(q)) => *p as u32 == q.0,
        (Endpoint::Clients(p), Addr::Device(d)) => {
            d.index() < dir.devices() && dir.provider_of_device(d).index() == *p
        }
        _ => false,
    }
}

impl Cuts {
    /// Whether traffic from `from` to `to` is cut now.
    pub fn blocks(&self, from: Addr, to: Addr, dir: &Directory) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.iter().any(|(a, b, one_way)| {
            (member(a, from, dir) && member(b, to, dir))
                || (!one_way && member(b, from, dir) && member(a, to, dir))
        })
    }
    fn set(&self, cut: (Endpoint, Endpoint, bool), on: bool) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            active.push(cut);
        } else if let Some(i) = active.iter().position(|c| *c == cut) {
            active.remove(i);
        }
        self.any.store(!active.is_empty(), Ordering::Relaxed);
    }
}

/// The server a crash fault names.
pub fn crash_target(node: &Endpoint, dir: &Directory) -> Option<Addr> {
    match *node {
        Endpoint::Gateway => Some(Addr::Gateway),
        Endpoint::Provider(0) => Some(Addr::ChatServer),
        Endpoint::Provider(p) => Some(match dir.partner_link(ProviderId(p as u32)) {
            crate::directory::PartnerLink::Proxied => Addr::Adapter(ProviderId(p as u32)),
            crate::directory::PartnerLink::Direct => Addr::PartnerServer(ProviderId(p as u32)),
        }),
        Endpoint::Clients(_) => None,
    }
}

fn live_kind(k: &FaultKind) -> bool {
    matches!(
        k,
        FaultKind::Partition { .. }
            | FaultKind::Crash {
                node: Endpoint::Gateway | Endpoint::Provider(_),
                ..
            }
    )
}

/// The faults live mode plays, as the checker's windows (times from the run's start).
pub fn windows(s: &Scenario, start_ns: u64) -> (Vec<FaultWindow>, usize) {
    let mut skipped = 0;
    let mut out = Vec::new();
    for f in &s.faults {
        if !live_kind(&f.kind) {
            skipped += 1;
            continue;
        }
        out.push(FaultWindow {
            label: format!("{:?}", f.kind),
            at_ns: start_ns + f.at_ns,
            end_ns: f.end_ns().map(|e| start_ns + e),
        });
    }
    (out, skipped)
}

/// Plays the scenario's faults against the running tasks.
pub fn spawn_controller(
    faults: Vec<Fault>,
    start_ns: u64,
    clock: Clock,
    cuts: Arc<Cuts>,
    controls: BTreeMap<Addr, mpsc::Sender<Control>>,
    dir: Arc<Directory>,
) {
    // (time, order, fault index, start?)
    let mut edges: Vec<(u64, usize, bool)> = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        if !live_kind(&f.kind) {
            continue;
        }
        edges.push((start_ns + f.at_ns, i, true));
        if let Some(e) = f.end_ns() {
            edges.push((start_ns + e, i, false));
        }
    }
    edges.sort();
    tokio::spawn(async move {
        for (at, i, start) in edges {
            tokio::time::sleep_until(clock.instant(SimTime::from_nanos(at))).await;
            match &faults[i].kind {
                FaultKind::Partition { a, b, one_way } => {
                    cuts.set((a.clone(), b.clone(), *one_way), start)
                }
                FaultKind::Crash { node, durable } => {
                    let Some(target) = crash_target(node, &dir) else {
                        continue;
                    };
                    let durable = *durable;
                    if let Some(tx) = controls.get(&target) {
                        let c = if start {
                            Control::Crash { durable }
                        } else {
                            Control::Restart
                        };
                        let _ = tx.send(c).await;
                    }
                }
                _ => {}
            }
        }
    });
}
