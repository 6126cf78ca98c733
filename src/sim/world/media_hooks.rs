//! The world's media hooks: where a media message is composed, where media frames travel,
//! land and get lost. Kept apart from the other files of `world/` so that the message path there
//! stays as it was; the media state itself is in `sim/media.rs`, the nodes in `nodes/media/`.

use super::{Event, Sim};
use crate::engine::{Scheduler, SimTime};
use crate::metrics::LedgerEvent;
use crate::net::Transit;
use crate::nodes::media::{self, pointer, Pointer, POINTER_LEN};
use crate::nodes::{Addr, Effects};
use crate::scenario::{ContentKind, HopClass};
use crate::sim::media::{AtDevice, MediaDraft};
use crate::sim::transport::InFlight;
use crate::wire::{DeviceId, Frame, MediaFrame};
use crate::workload::Draft;

impl Sim {
    /// A media draft's attachment: its pointer and the encryption's cost; `None` for text.
    pub(super) fn attach(&mut self, device: DeviceId, draft: &Draft) -> Option<(Pointer, u64)> {
        pointer::media_kind(draft.content)?;
        let (dir, keys) = (&self.dir, &mut self.keys);
        Some(
            self.media
                .attach(device, draft.content, draft.media_bytes, dir, keys),
        )
    }

    /// The plaintext of a message: for media, the body less the pointer's size, then the
    /// pointer, so that it is as long as the workload drew (or just long enough to hold both).
    pub(super) fn plaintext_with(
        &mut self,
        content: ContentKind,
        body_bytes: u32,
        attached: Option<&(Pointer, u64)>,
    ) -> Vec<u8> {
        let Some((p, _)) = attached else {
            return self.traffic.plaintext(content, body_bytes);
        };
        let mut plaintext = self
            .traffic
            .plaintext(content, body_bytes.saturating_sub(POINTER_LEN as u32));
        pointer::embed(&mut plaintext, p);
        plaintext
    }

    /// The media message waits for its blob to be stored; then it is sealed and sent like any
    /// message ([`Sim::dispatch_media`]). Its delivery latency includes the upload.
    pub(super) fn upload_then_send(
        &mut self,
        now: SimTime,
        draft: MediaDraft,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let device = draft.device;
        // The devices that will fetch the blob: the recipient's, or every member's but the
        // sender's own (its other devices, like a 1:1 sender's, show its copy without it).
        let fetches = match &draft.group {
            None => self.dir.device_count(draft.to_user),
            Some(g) => g
                .members
                .iter()
                .filter(|&&m| m != draft.to_user)
                .map(|&m| self.dir.device_count(m))
                .sum(),
        };
        self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
            sim.media.begin_upload(draft, fetches, &sim.dir, fx)
        });
    }

    /// What the media side does about what users see: a shown media message's blob is
    /// fetched; a refused one's is deleted by its sender.
    pub(super) fn media_reacts(
        &mut self,
        now: SimTime,
        node: Addr,
        ev: &LedgerEvent,
        sched: &mut Scheduler<'_, Event>,
    ) {
        match (ev, node) {
            (&LedgerEvent::Shown { msg, device, .. }, _) => {
                if !self.media.has(msg) {
                    return; // asked first: the sender and recipient are a cache miss away
                }
                // The recipient's devices fetch the blob; the sender's other devices (sync
                // copies) are not counted among the fetches the store waits for.
                let Some((from, to)) = self.ledger.parties(msg) else {
                    return;
                };
                let user = self.dir.user_of(device);
                if user != to || user == from {
                    return; // a copy on the sender's own device (a group's sync copy)
                }
                self.with_fx(now, Addr::Device(device), sched, |sim, fx| {
                    sim.media.shown(now, msg, device, &sim.dir, fx)
                });
            }
            (&LedgerEvent::Refused { msg, .. }, Addr::Device(d)) => {
                let recipient = self.ledger.parties(msg).map(|(_, to)| to);
                let devices = recipient.map_or(0, |u| self.dir.device_count(u));
                self.with_fx(now, node, sched, |sim, fx| {
                    sim.media.refused(msg, d, devices, &sim.dir, fx)
                });
            }
            _ => {}
        }
    }

    /// A media frame reached the node it was sent to.
    pub(super) fn dispatch_media(
        &mut self,
        now: SimTime,
        from: Addr,
        to: Addr,
        m: MediaFrame,
        fx: &mut Effects,
    ) {
        match to {
            Addr::Device(d) => {
                let online = self.nodes.devices[d.index()].is_online();
                let at = AtDevice {
                    now,
                    device: d,
                    online,
                    dir: &self.dir,
                    keys: &mut self.keys,
                };
                let Some(up) = self.media.at_device(at, m, fx) else {
                    return;
                };
                // The blob is stored: the message is sealed and enters the outbox.
                if up.group.is_some() {
                    self.media.stats.group_uploaded();
                }
                let (dev, mut cx) = self.device_cx(d, now, fx);
                let accepted = match &up.group {
                    Some(g) => dev.compose_group(&mut cx, up.msg, g, &up.body, up.content),
                    None => dev.compose(&mut cx, up.msg, up.to_user, &up.body, up.content),
                };
                if !accepted {
                    self.obs.count("outbox_full", 1);
                }
                self.traffic.keep_spare(up.body);
            }
            Addr::MediaStore(p) => self.media.at_store(p, from, m, fx),
            Addr::MediaProxy => self.media.at_proxy(from, m, &self.dir, fx),
            Addr::Adapter(p) if self.nodes.adapters[p.index()].is_some() => {
                self.media.at_adapter(from, m, fx)
            }
            _ => {}
        }
    }

    /// Hands a media frame to its own connection (sim/transport.rs, `route_media`): a transfer
    /// rides TCP and TLS, so the link's duplicates and replays are absorbed and a tampered
    /// transfer is refused (lost); loss, partitions and bandwidth apply as to messages.
    pub(super) fn transmit_media(
        &mut self,
        now: SimTime,
        from: Addr,
        to: Addr,
        m: MediaFrame,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let frame = Frame::Media(m);
        let blocked = self.net.partitioned(&self.dir, from, to);
        if self.obs.trace.is_some() {
            let what = if blocked { "blocked" } else { "send" };
            self.obs.trace_frame(now, what, from, to, &frame);
        }
        if blocked {
            self.obs.count("media_dropped", 1);
            return self.media_lost(now, from, to, m, sched);
        }
        let bytes = frame.wire_bytes();
        let (hop, state) = self.net.links.route_media(from, to);
        let model = &self.net.link_models[hop.index()];
        let transit = model.send(state, now, bytes, &mut self.media.net_rng);
        let key = match hop {
            HopClass::ClientServer => "media_bytes_client_server",
            HopClass::ServerGateway => "media_bytes_server_gateway",
            HopClass::GatewayPartner => "media_bytes_gateway_partner",
            HopClass::AdapterServer => "media_bytes_adapter_server",
            HopClass::ProviderProvider => "media_bytes_provider_provider",
        };
        self.obs.count(key, bytes as u64);
        self.obs.count("media_frames_sent", 1);
        match transit {
            Transit::Arrives {
                at,
                tampered: false,
                ..
            } => {
                let f = InFlight {
                    from,
                    to,
                    frame,
                    tampered: false,
                    replay: false,
                };
                let slot = self.net.frames.insert(f);
                sched.at(at, Event::Arrive { slot, to });
            }
            Transit::Arrives { .. } | Transit::Lost | Transit::QueueFull => {
                self.obs.count("media_dropped", 1);
                self.media_lost(now, from, to, m, sched);
            }
        }
    }

    /// A frame was dropped (node down, queue full): if it was a media frame, whoever waits on
    /// it notices.
    pub(super) fn media_dropped(
        &mut self,
        now: SimTime,
        f: &InFlight,
        sched: &mut Scheduler<'_, Event>,
    ) {
        if let Frame::Media(m) = f.frame {
            self.media_lost(now, f.from, f.to, m, sched);
        }
    }

    /// The party waiting on a lost media frame notices (sim/media.rs, `lost`). A relay that is
    /// down itself notices nothing: its device does, as its connection to the relay died.
    fn media_lost(
        &mut self,
        now: SimTime,
        from: Addr,
        to: Addr,
        m: MediaFrame,
        sched: &mut Scheduler<'_, Event>,
    ) {
        let mut waiter = media::waiter(from, to, &m);
        if !matches!(waiter, Addr::Device(_)) && self.is_down(waiter) {
            waiter = Addr::Device(m.device());
        }
        self.with_fx(now, waiter, sched, |sim, fx| {
            sim.media.lost(now, waiter, m, &sim.dir, fx)
        });
    }
}
