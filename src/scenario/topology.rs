//! How the providers reach each other: the interop design a run models (`[topology]`) and the
//! hop classes of the network between its nodes. Here, apart from the rest of the scenario's
//! types, so that the scenario model, the link models' parser and the sweep keys read one
//! definition.

use serde::Serialize;

/// `[topology]`: the interop design a run models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub design: Design,
}

impl Topology {
    pub fn is_hub(&self) -> bool {
        self.design == Design::Hub
    }
}

/// How providers reach each other's users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// The gatekeeper's interop gateway (the DMA design the seed models): partner clients
    /// speak the gatekeeper's protocol to its gateway; the gatekeeper's chat server holds every
    /// third-party chat's queue; Signal pairwise sessions and Sender Keys.
    #[default]
    Hub,
    /// MIMI (draft-ietf-mimi-protocol): every client talks to its own provider only; providers
    /// talk to each other over `provider_provider`; each chat is an MLS room whose hub provider
    /// orders it and fans its messages out to the follower providers, which queue for their
    /// own devices.
    Mimi,
}

impl Design {
    pub const ALL: [Design; 2] = [Design::Hub, Design::Mimi];
    pub fn key(self) -> &'static str {
        match self {
            Design::Hub => "hub",
            Design::Mimi => "mimi",
        }
    }
    /// The hop classes a run under this design has links for (a `provider_provider` link
    /// exists only between MIMI providers).
    pub fn hop_classes(self) -> &'static [HopClass] {
        match self {
            Design::Hub => &HopClass::ALL,
            Design::Mimi => &HopClass::EVERY,
        }
    }
}

/// The hop classes of SCENARIOS.md, plus the adapter hop inside a proxied partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopClass {
    ClientServer,
    ServerGateway,
    GatewayPartner,
    /// Partner adapter <-> partner server (push, enlistment), inside the partner.
    AdapterServer,
    /// One provider's server <-> another's, under the MIMI design only.
    ProviderProvider,
}

impl HopClass {
    pub const ALL: [HopClass; 4] = [
        HopClass::ClientServer,
        HopClass::ServerGateway,
        HopClass::GatewayPartner,
        HopClass::AdapterServer,
    ];
    /// Every hop class, `provider_provider` (MIMI only) last.
    pub const EVERY: [HopClass; 5] = [
        HopClass::ClientServer,
        HopClass::ServerGateway,
        HopClass::GatewayPartner,
        HopClass::AdapterServer,
        HopClass::ProviderProvider,
    ];
    pub fn key(self) -> &'static str {
        match self {
            HopClass::ClientServer => "client_server",
            HopClass::ServerGateway => "server_gateway",
            HopClass::GatewayPartner => "gateway_partner",
            HopClass::AdapterServer => "adapter_server",
            HopClass::ProviderProvider => "provider_provider",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}
