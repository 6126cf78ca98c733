//! Borrowing one node of the pair, and a device with its context, the way the drivers lend
//! theirs to the shared dispatch.

use super::{Node, Pair};
use crate::nodes::device::{Device, DeviceConfig, DeviceCtx};
use crate::nodes::dispatch::NodeMut;
use crate::nodes::key_directory::KeyDirectory;
use crate::nodes::keyring::Keyring;
use crate::nodes::{Addr, Effects};
use crate::wire::DeviceId;

pub(super) fn node_mut(nodes: &mut [(Addr, Node)], a: Addr) -> &mut Node {
    &mut nodes
        .iter_mut()
        .find(|(n, _)| *n == a)
        .unwrap_or_else(|| panic!("{a:?} is not in the pair"))
        .1
}

/// Node `a`, lent to the shared dispatch (`nodes/dispatch.rs`) the way the drivers lend theirs.
pub(super) fn lend<'a>(
    nodes: &'a mut [(Addr, Node)],
    cfg: &'a DeviceConfig,
    keys: &'a mut Keyring,
    key_directory: &'a mut KeyDirectory,
    a: Addr,
) -> NodeMut<'a> {
    match node_mut(nodes, a) {
        Node::Device(device) => NodeMut::Device {
            device,
            cfg,
            keys,
            key_directory,
        },
        Node::Chat(c) => NodeMut::Chat(c),
        Node::Gateway(g) => NodeMut::Gateway(g),
        Node::Partner(p) => NodeMut::Partner(p),
        Node::Adapter(a) => NodeMut::Adapter(a),
    }
}

impl Pair {
    /// Device `d`, and what its inputs need ([`DeviceCtx`]) borrowed beside it.
    pub(super) fn device_cx<'a>(
        &'a mut self,
        d: DeviceId,
        fx: &'a mut Effects,
    ) -> (&'a mut Device, DeviceCtx<'a>) {
        let cx = DeviceCtx {
            now: self.now,
            cfg: &self.device_cfg,
            dir: &self.dir,
            keys: &mut self.keys,
            key_directory: &mut self.key_directory,
            fx,
        };
        (device_mut(&mut self.nodes, d), cx)
    }
}

pub(super) fn device_mut(nodes: &mut [(Addr, Node)], d: DeviceId) -> &mut Device {
    match node_mut(nodes, Addr::Device(d)) {
        Node::Device(dev) => dev,
        _ => unreachable!(),
    }
}
