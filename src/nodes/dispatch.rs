//! The one routing of an input to the node it is for, shared by both drivers: the simulator's
//! world (`sim/world/hop.rs`) and live mode's tasks (`live/node.rs` for the servers,
//! `live/client.rs` for the devices). Each driver holds its nodes its own way (the simulator
//! in vectors indexed by address, a live task owns one server) and lends the one an input is
//! for as a [`NodeMut`]; what each node kind is handed, and with what, is decided here once.
//!
//! Media frames are not routed here: their nodes (media clients, stores, the proxy) live in
//! the simulator's media world (`sim/media.rs`), which live mode does not run.

use super::adapter::Adapter;
use super::chat_server::ChatServer;
use super::device::{Device, DeviceConfig, DeviceCtx};
use super::gateway::Gateway;
use super::key_directory::KeyDirectory;
use super::keyring::Keyring;
use super::partner_server::PartnerServer;
use super::{Addr, Effects, TimerKind};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::wire::Frame;

/// One node of any kind, borrowed from the driver that owns it. A device comes with its
/// configuration, the key ring holding its Signal state and the key directory it fetches
/// bundles from and refills (what its [`DeviceCtx`] holds beside the time, the directory and
/// the effects); a server needs nothing beyond the directory every call gets.
pub enum NodeMut<'a> {
    Device {
        device: &'a mut Device,
        cfg: &'a DeviceConfig,
        keys: &'a mut Keyring,
        key_directory: &'a mut KeyDirectory,
    },
    Chat(&'a mut ChatServer),
    Gateway(&'a mut Gateway),
    Adapter(&'a mut Adapter),
    Partner(&'a mut PartnerServer),
}

/// `frame` from `from` reached `node`. `tampered`: the link altered it on the way; only a
/// device ever gets such a frame (a server's Noise channel refuses it before any handler).
pub fn handle_frame(
    node: NodeMut<'_>,
    now: SimTime,
    from: Addr,
    frame: Frame,
    tampered: bool,
    dir: &Directory,
    fx: &mut Effects,
) {
    match node {
        NodeMut::Device {
            device,
            cfg,
            keys,
            key_directory,
        } => {
            let cx = &mut DeviceCtx {
                now,
                cfg,
                dir,
                keys,
                key_directory,
                fx,
            };
            if let Frame::Push { .. } = frame {
                // A push wakes the app, which connects (an online device stays as it is).
                device.go_online(cx);
            } else {
                device.handle_frame(cx, from, frame, tampered);
            }
        }
        NodeMut::Chat(c) => c.handle_frame(now, frame, dir, fx),
        NodeMut::Gateway(g) => g.handle_frame(now, from, frame, dir, fx),
        NodeMut::Adapter(a) => {
            if let Some(to) = a.handle_frame(from, &frame) {
                fx.send(to, frame);
            }
        }
        NodeMut::Partner(p) => p.handle_frame(now, frame, dir, fx),
    }
}

/// `timer` of `node` fired. The gateway and the adapters arm none.
pub fn handle_timer(
    node: NodeMut<'_>,
    now: SimTime,
    timer: TimerKind,
    dir: &Directory,
    fx: &mut Effects,
) {
    match node {
        NodeMut::Device {
            device,
            cfg,
            keys,
            key_directory,
        } => {
            let cx = &mut DeviceCtx {
                now,
                cfg,
                dir,
                keys,
                key_directory,
                fx,
            };
            device.handle_timer(cx, timer)
        }
        NodeMut::Chat(c) => c.handle_timer(now, timer, dir, fx),
        NodeMut::Partner(p) => p.handle_timer(now, timer, dir, fx),
        NodeMut::Gateway(_) | NodeMut::Adapter(_) => {}
    }
}

/// `node` crashes: what it loses, per kind. Without durable storage a server's queues go; an
/// adapter forgets its counters; the gateway's state is soft (rate limits) and stays. A device
/// does not crash (it goes offline).
pub fn crash(node: NodeMut<'_>, durable: bool) {
    match node {
        NodeMut::Chat(c) => c.crash(durable),
        NodeMut::Partner(p) => p.crash(durable),
        NodeMut::Adapter(a) => *a = Adapter::new(a.provider),
        NodeMut::Gateway(_) | NodeMut::Device { .. } => {}
    }
}

/// `device` is a new install at `node` (live mode: a device of a later load run); returns the
/// copies the node dropped for the old install. Nodes without per-device state keep nothing.
pub fn reinstall(node: NodeMut<'_>, device: crate::wire::DeviceId) -> u64 {
    match node {
        NodeMut::Chat(c) => c.reinstall(device),
        NodeMut::Partner(p) => p.reinstall(device),
        NodeMut::Gateway(_) | NodeMut::Adapter(_) | NodeMut::Device { .. } => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PartnerLink;
    use crate::nodes::buggify::Bugs;
    use crate::wire::DeviceId;

    fn cfg() -> DeviceConfig {
        DeviceConfig {
            retry_initial_ns: 1_000_000_000,
            retry_max_ns: 8_000_000_000,
            outbox_max: 64,
            reorder_hold_ns: 30_000_000_000,
            reorder_held_max: 256,
            plaintext_cache_max: 64,
            bugs: Bugs::NONE,
        }
    }

    /// The simulator used to skip a push to an online device during the drain; the shared
    /// dispatch always wakes the device. The same, because waking an online device does
    /// nothing: this pins it.
    #[test]
    fn a_push_wakes_an_offline_device_and_leaves_an_online_one_as_it_is() {
        let dir = Directory::new(&[1], vec![PartnerLink::Direct], &[1], vec![true]);
        let (cfg, mut keys) = (cfg(), Keyring::external(1));
        let mut key_directory = KeyDirectory::new(1, 100, 10);
        let mut device = Device::new(DeviceId(0), &dir, &cfg);
        let mut fx = Effects::default();
        let mut push = |device: &mut Device, keys: &mut Keyring, fx: &mut Effects| {
            let node = NodeMut::Device {
                device,
                cfg: &cfg,
                keys,
                key_directory: &mut key_directory,
            };
            let frame = Frame::Push {
                device: DeviceId(0),
            };
            handle_frame(
                node,
                SimTime::ZERO,
                Addr::ChatServer,
                frame,
                false,
                &dir,
                fx,
            );
        };
        assert!(!device.is_online());
        push(&mut device, &mut keys, &mut fx);
        assert!(device.is_online());
        assert!(!fx.outputs.is_empty(), "waking up, the device connects");
        fx.outputs.clear();
        push(&mut device, &mut keys, &mut fx);
        assert!(fx.outputs.is_empty() && fx.ledger.is_empty());
    }

    #[test]
    fn the_gateway_and_adapters_arm_no_timers_and_an_adapter_crash_resets_it() {
        let dir = Directory::new(
            &[1, 1],
            vec![PartnerLink::Direct; 2],
            &[1, 1],
            vec![true; 2],
        );
        let mut fx = Effects::default();
        let mut gateway = Gateway::new(2, None);
        let t = TimerKind::ExpirySweep;
        handle_timer(
            NodeMut::Gateway(&mut gateway),
            SimTime::ZERO,
            t,
            &dir,
            &mut fx,
        );
        let mut adapter = Adapter::new(crate::wire::ProviderId(1));
        adapter.translated_up = 3;
        handle_timer(
            NodeMut::Adapter(&mut adapter),
            SimTime::ZERO,
            t,
            &dir,
            &mut fx,
        );
        assert!(fx.outputs.is_empty());
        crash(NodeMut::Adapter(&mut adapter), true);
        assert_eq!(adapter.translated_up, 0);
    }
}
