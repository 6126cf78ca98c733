//! What changes with the interop design beyond the routing: a scenario switched to the other
//! design, and which faults have nothing to act on under MIMI.

use super::model::{Design, Endpoint, FaultKind, HopClass, Scenario};

impl Scenario {
    /// Runs the scenario under `design` (a sweep's `topology.design`): everything else means
    /// the same under both. A MIMI run without its own `provider_provider` link uses the
    /// gateway-partner link's spec (see [`Network::link`](super::model::Network::link)); a hub
    /// run has no such link.
    pub fn set_design(&mut self, design: Design) {
        self.topology.design = design;
        if design == Design::Hub {
            self.network.provider_provider = None;
        }
    }
}

impl FaultKind {
    /// Whether the fault acts on what a MIMI run does not use for messages: the gatekeeper's
    /// gateway (a partition or crash naming it) or the hub design's interop links. Such a fault
    /// does nothing to MIMI's messages (`run` says so).
    pub fn idle_under_mimi(&self) -> bool {
        let gateway = |e: &Endpoint| *e == Endpoint::Gateway;
        let hub_link = |l: &HopClass| {
            matches!(
                l,
                HopClass::ServerGateway | HopClass::GatewayPartner | HopClass::AdapterServer
            )
        };
        match self {
            FaultKind::Partition { a, b, .. } => gateway(a) || gateway(b),
            FaultKind::Crash { node, .. } | FaultKind::Slow { node, .. } => gateway(node),
            FaultKind::Loss { link, .. }
            | FaultKind::Duplicate { link, .. }
            | FaultKind::Reorder { link, .. }
            | FaultKind::Tamper { link, .. }
            | FaultKind::Replay { link, .. } => hub_link(link),
            _ => false,
        }
    }
}
