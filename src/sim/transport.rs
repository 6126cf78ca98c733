//! Frames in flight: which link a frame takes between two nodes, which partition side each
//! node sits on, and a slab of frames so that events carry a `u32` instead of a frame.

use crate::directory::Directory;
use crate::net::{LinkState, Side};
use crate::nodes::Addr;
use crate::scenario::HopClass;
use crate::wire::Frame;

/// A frame on its way, with what the link did to it.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub from: Addr,
    pub to: Addr,
    pub frame: Frame,
    pub tampered: bool,
    pub replay: bool,
}

/// Frames in flight, addressed by slot; freed slots are reused (no allocation in steady state).
#[derive(Default)]
pub struct Slab {
    slots: Vec<Option<InFlight>>,
    free: Vec<u32>,
}

impl Slab {
    /// Room for `frames` in flight. Every device connects at the start of a run, so a large
    /// run begins with one frame in flight per device: growing to that by doubling copied the
    /// slab into fresh memory each time (4 % of a 90 s, 1 M-user run).
    pub fn with_capacity(frames: usize) -> Self {
        let mut slots = Vec::new();
        // An optimisation only: on failure the slab grows on demand.
        let _ = slots.try_reserve_exact(frames);
        Slab {
            slots,
            free: Vec::new(),
        }
    }

    pub fn insert(&mut self, f: InFlight) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(f);
            i
        } else {
            self.slots.push(Some(f));
            (self.slots.len() - 1) as u32
        }
    }
    /// A cache hint for slot `i` (see [`crate::engine::prefetch`]).
    #[inline]
    pub fn prefetch(&self, i: u32) {
        if let Some(slot) = self.slots.get(i as usize) {
            crate::engine::prefetch::prefetch(slot);
        }
    }
    pub fn get(&self, i: u32) -> Option<&InFlight> {
        self.slots.get(i as usize)?.as_ref()
    }
    /// Every frame still in flight (on a link, in a CPU queue or held back), in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &InFlight> {
        self.slots.iter().flatten()
    }
    pub fn take(&mut self, i: u32) -> Option<InFlight> {
        let f = self.slots.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some(f)
    }
}

/// The provider of a server address (the chat server is the gatekeeper's, provider 0).
fn server_provider(a: Addr) -> usize {
    match a {
        Addr::PartnerServer(p) => p.index(),
        _ => 0,
    }
}

/// The partition side a node sits on.
pub fn side_of(a: Addr, dir: &Directory) -> Side {
    match a {
        Addr::Device(d) => Side::Clients(dir.provider_of_device(d).index()),
        Addr::ChatServer => Side::Servers(0),
        Addr::Gateway => Side::Gateway,
        Addr::Adapter(p) | Addr::PartnerServer(p) | Addr::MediaStore(p) => Side::Servers(p.index()),
        // The media proxy stands at the gatekeeper's edge, beside the interop gateway.
        Addr::MediaProxy => Side::Gateway,
    }
}

/// Directed link instances: one pair per device access link, one for chat server <-> gateway,
/// one pair per partner for gateway <-> partner and adapter <-> partner server.
pub struct Links {
    device: Vec<[LinkState; 2]>,
    server_gateway: [LinkState; 2],
    gateway_partner: Vec<[LinkState; 2]>,
    adapter_server: Vec<[LinkState; 2]>,
    /// Media transfers ride connections of their own (to a media host), so a blob never queues
    /// behind or ahead of messages: one pair per device, one per partner between the media proxy
    /// and that partner (its store or its adapter), one for the proxy and the gatekeeper's store.
    /// The devices' media links are made at the first media frame: a text-only run has none
    /// (64 bytes a device, most of a large run's link memory).
    media_device: Vec<[LinkState; 2]>,
    devices: usize,
    media_partner: Vec<[LinkState; 2]>,
    media_internal: [LinkState; 2],
    /// Under the MIMI design: one pair per two providers' servers, `[lower to higher,
    /// higher to lower]`, at `lower * providers + higher`.
    provider_provider: Vec<[LinkState; 2]>,
    providers: usize,
}

const UP: usize = 0;
const DOWN: usize = 1;

impl Links {
    pub fn new(devices: usize, providers: usize) -> Self {
        Links {
            device: vec![[LinkState::default(); 2]; devices],
            server_gateway: [LinkState::default(); 2],
            gateway_partner: vec![[LinkState::default(); 2]; providers],
            adapter_server: vec![[LinkState::default(); 2]; providers],
            media_device: Vec::new(),
            devices,
            media_partner: vec![[LinkState::default(); 2]; providers],
            media_internal: [LinkState::default(); 2],
            provider_provider: Vec::new(),
            providers,
        }
    }

    /// Links between every two providers' servers (the MIMI design).
    pub fn with_provider_links(mut self) -> Self {
        let n = self.providers;
        self.provider_provider = vec![[LinkState::default(); 2]; n * n];
        self
    }

    /// The hop class and link instance a media frame from `from` to `to` takes (see the field
    /// docs: its own connections, the same hop classes as messages).
    pub fn route_media(&mut self, from: Addr, to: Addr) -> (HopClass, &mut LinkState) {
        use Addr::*;
        if self.media_device.is_empty() && matches!((from, to), (Device(_), _) | (_, Device(_))) {
            self.media_device = vec![[LinkState::default(); 2]; self.devices];
        }
        match (from, to) {
            (Device(d), _) => (
                HopClass::ClientServer,
                &mut self.media_device[d.index()][UP],
            ),
            (_, Device(d)) => (
                HopClass::ClientServer,
                &mut self.media_device[d.index()][DOWN],
            ),
            (MediaProxy, MediaStore(p)) | (MediaProxy, Adapter(p)) if p.0 != 0 => (
                HopClass::GatewayPartner,
                &mut self.media_partner[p.index()][DOWN],
            ),
            (MediaStore(p), MediaProxy) | (Adapter(p), MediaProxy) if p.0 != 0 => (
                HopClass::GatewayPartner,
                &mut self.media_partner[p.index()][UP],
            ),
            (MediaProxy, _) => (HopClass::ServerGateway, &mut self.media_internal[UP]),
            _ => (HopClass::ServerGateway, &mut self.media_internal[DOWN]),
        }
    }

    /// The hop class and the link instance a frame from `from` to `to` takes.
    /// A cache hint for device `d`'s link state (see [`crate::engine::prefetch`]).
    pub fn prefetch_device(&self, d: crate::wire::DeviceId) {
        if let Some(state) = self.device.get(d.index()) {
            crate::engine::prefetch::prefetch(state);
        }
    }

    pub fn route(&mut self, from: Addr, to: Addr) -> (HopClass, &mut LinkState) {
        use Addr::*;
        match (from, to) {
            (Device(d), _) => (HopClass::ClientServer, &mut self.device[d.index()][UP]),
            (_, Device(d)) => (HopClass::ClientServer, &mut self.device[d.index()][DOWN]),
            (ChatServer, Gateway) => (HopClass::ServerGateway, &mut self.server_gateway[UP]),
            (Gateway, ChatServer) => (HopClass::ServerGateway, &mut self.server_gateway[DOWN]),
            (Gateway, Adapter(p)) | (Gateway, PartnerServer(p)) => (
                HopClass::GatewayPartner,
                &mut self.gateway_partner[p.index()][DOWN],
            ),
            (Adapter(p), Gateway) | (PartnerServer(p), Gateway) => (
                HopClass::GatewayPartner,
                &mut self.gateway_partner[p.index()][UP],
            ),
            (Adapter(p), PartnerServer(_)) => (
                HopClass::AdapterServer,
                &mut self.adapter_server[p.index()][UP],
            ),
            (PartnerServer(p), Adapter(_)) => (
                HopClass::AdapterServer,
                &mut self.adapter_server[p.index()][DOWN],
            ),
            (ChatServer | PartnerServer(_), ChatServer | PartnerServer(_))
                if !self.provider_provider.is_empty() =>
            {
                let (a, b) = (server_provider(from), server_provider(to));
                let (low, high, way) = if a < b { (a, b, UP) } else { (b, a, DOWN) };
                let i = low * self.providers + high;
                (
                    HopClass::ProviderProvider,
                    &mut self.provider_provider[i][way],
                )
            }
            // Any other pair has no direct link in the modeled topology; route over the
            // server-gateway class rather than panic (a node bug shows up in the counters).
            _ => (HopClass::ServerGateway, &mut self.server_gateway[UP]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The devices' media links are made at the first media frame, whichever way it goes;
    /// message frames make none.
    #[test]
    fn media_links_are_made_at_the_first_media_frame() {
        use crate::wire::DeviceId;
        let mut links = Links::new(3, 2);
        links.route(Addr::Device(DeviceId(2)), Addr::ChatServer);
        assert!(
            links.media_device.is_empty(),
            "a message frame makes no media link"
        );
        let (class, _) = links.route_media(Addr::MediaProxy, Addr::Device(DeviceId(2)));
        assert_eq!(class, HopClass::ClientServer);
        assert_eq!(links.media_device.len(), 3);
        links
            .route_media(Addr::Device(DeviceId(0)), Addr::MediaProxy)
            .1
            .held_ns = 7;
        assert_eq!(links.media_device[0][UP].held_ns, 7);
    }

    /// Frames are moved through the slab and the handlers by value millions of times a
    /// second: message frames box their envelope so that every frame stays this small.
    #[test]
    fn frames_in_flight_stay_small() {
        let (frame, in_flight) = (
            std::mem::size_of::<Frame>(),
            std::mem::size_of::<InFlight>(),
        );
        assert!(
            frame <= 32 && in_flight <= 64,
            "Frame {frame} bytes, InFlight {in_flight}"
        );
    }
}
