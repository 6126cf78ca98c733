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
