//! Outputs timed by the cores that run them (`[capacity] host` and `generator`): a frame a
//! node sends leaves when its round of the host's loop ends (`sim::rounds`), and a new
//! message's frame is marked when the generator composed it.

use super::{Servers, Sim};
use crate::engine::SimTime;
use crate::nodes::{Addr, Output};
use crate::wire::Frame;

impl Servers {
    /// When a frame `out` that `from` sends at `now` is written: on a one-core host, at the
    /// end of the round of its loop that did the work (`sim::rounds`: a live connection's
    /// writer task runs after the frames taken in that round); a device's on the load
    /// generator's (`[capacity] generator`), a server node's on the host's (`[capacity]
    /// host`). `None` (the frame leaves as the node said) without those cores, and for media
    /// frames (their links price them).
    pub(super) fn release(&mut self, from: Addr, now: SimTime, out: &Output) -> Option<SimTime> {
        let frame = match out {
            Output::Send { frame, .. } | Output::SendAfter { frame, .. } => frame,
            _ => return None,
        };
        if matches!(frame, Frame::Media(_)) {
            return None;
        }
        let cores = match from {
            Addr::Device(_) => self.generator.as_mut()?,
            Addr::MediaStore(_) | Addr::MediaProxy => return None,
            _ => self.host.as_mut()?,
        };
        // A device's new message is composed as the generator takes it (`Sim::arrival`).
        let taken = self.composing;
        Some(cores.release(now, taken))
    }
}

impl Sim {
    /// An output of `node` on a host's or generator's cores: leaving when written (see
    /// `Servers::release`), and a new message's frame marked when composed.
    pub(super) fn on_host(&mut self, now: SimTime, node: Addr, out: Output) -> Output {
        if let (true, Output::Send { frame, .. } | Output::SendAfter { frame, .. }) =
            (self.servers.composing, &out)
        {
            self.mark_composed(now, frame);
        }
        match self.servers.release(node, now, &out) {
            Some(leaves) => after(leaves.since(now), out),
            None => out,
        }
    }
}

/// The live connection a frame from `from` to the server node `to` comes over, as a word for
/// the host's rounds (`HostCores::read`: each is read once a round): one per pair of server
/// nodes, and one per server for all the load generator's devices (one shard's, `validate`'s
/// default).
pub(super) fn connection(from: Addr, to: Addr) -> u64 {
    // Kind and provider of each end: `Addr::code` puts the kind above bit 40.
    let end = |a: Addr| match a {
        Addr::Device(_) => 1 << 16,
        a => (a.code() >> 40) << 16 | (a.code() & 0xffff),
    };
    end(from) << 32 | end(to)
}

/// A frame written `write_ns` from now: it leaves then, or after its own delay when that is
/// later. Other outputs pass as they are.
fn after(write_ns: u64, out: Output) -> Output {
    match out {
        Output::Send { to, frame } => Output::SendAfter {
            delay_ns: write_ns,
            to,
            frame,
        },
        Output::SendAfter {
            delay_ns,
            to,
            frame,
        } => Output::SendAfter {
            delay_ns: delay_ns.max(write_ns),
            to,
            frame,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DeviceId, ProviderId};

    /// One connection per pair of server nodes and direction; the devices share one per
    /// server.
    #[test]
    fn a_connection_per_server_pair_and_one_for_the_devices() {
        let (d1, d2) = (Addr::Device(DeviceId(1)), Addr::Device(DeviceId(70_000)));
        let chat = Addr::ChatServer;
        let (p1, p2) = (
            Addr::PartnerServer(ProviderId(1)),
            Addr::PartnerServer(ProviderId(2)),
        );
        assert_eq!(connection(d1, chat), connection(d2, chat));
        assert_ne!(connection(d1, chat), connection(d1, p1));
        assert_ne!(
            connection(chat, Addr::Gateway),
            connection(Addr::Gateway, chat)
        );
        assert_ne!(
            connection(Addr::Adapter(ProviderId(1)), p1),
            connection(Addr::Adapter(ProviderId(2)), p2)
        );
        assert_ne!(
            connection(p1, Addr::Adapter(ProviderId(1))),
            connection(p2, Addr::Adapter(ProviderId(1)))
        );
    }
}
