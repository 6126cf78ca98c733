//! Load runs as sessions, so that one `serve` process serves any number of successive or
//! concurrent load generators. Each generator run draws a [`RunId`] (milliseconds since
//! 2025-01-01 when it started: a later run has a larger id); its shards announce it in the hello
//! that opens every connection, and every message id its devices put on the wire carries it in
//! the high bits. The run's devices are new installs of the same accounts.
//!
//! A server ([`Sessions`]) keeps, per device, the run it last heard from. A frame from a later
//! run replaces the old install (the node forgets the device's queue, epoch and dedup memory);
//! a frame from an earlier run, or one whose message id names another run than its connection,
//! is refused and counted: a late frame of a finished run or a replay. Within a run, replays are
//! refused as before, by the servers' dedup of message ids.

use crate::wire::{DeviceId, Frame, MsgId};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a wire message id that number the message within its run (16.7 M messages a run).
pub const MSG_INDEX_BITS: u32 = 24;
const INDEX_MASK: u64 = (1 << MSG_INDEX_BITS) - 1;

/// 2025-01-01T00:00:00Z, in Unix milliseconds: run ids count from there (2^40 ms last to 2059).
const EPOCH_UNIX_MS: u64 = 1_735_689_600_000;

/// A load run's identity on the wire; 0 on a server's own links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunId(pub u64);

/// The last run id drawn in this process: two runs started in the same millisecond stay apart.
static LAST_RUN: AtomicU64 = AtomicU64::new(0);

impl RunId {
    /// A new run's id: the wall clock in milliseconds since 2025, larger than any drawn before
    /// in this process.
    #[allow(clippy::disallowed_methods)] // live mode: a run's id is when it started
    pub fn fresh() -> RunId {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            .saturating_sub(EPOCH_UNIX_MS)
            .max(1);
        let prev = LAST_RUN.fetch_max(ms, Ordering::SeqCst);
        let id = if ms > prev {
            ms
        } else {
            LAST_RUN.fetch_add(1, Ordering::SeqCst) + 1
        };
        RunId(id & ((1 << (64 - MSG_INDEX_BITS)) - 1))
    }

    /// The run a wire message id belongs to.
    pub fn of(m: MsgId) -> RunId {
        RunId(m.0 >> MSG_INDEX_BITS)
    }

    /// The wire id of this run's message `m`.
    pub fn tag(self, m: MsgId) -> MsgId {
        assert!(
            m.0 <= INDEX_MASK,
            "a live run numbers at most 2^24 messages"
        );
        MsgId(self.0 << MSG_INDEX_BITS | m.0)
    }

    /// A wire id's message index, whatever its run.
    pub fn index(m: MsgId) -> u64 {
        m.0 & INDEX_MASK
    }

    /// This run's message behind wire id `m`; `None` if `m` belongs to another run.
    pub fn untag(self, m: MsgId) -> Option<MsgId> {
        (RunId::of(m) == self).then_some(MsgId(Self::index(m)))
    }

    /// Puts this run's tag on every message id in `frame` (a frame a device sends).
    pub fn tag_frame(self, frame: &mut Frame) {
        for_each_msg(frame, |m| {
            *m = self.tag(*m);
            true
        });
    }

    /// Takes this run's tag off every message id in `frame` (a frame a device receives);
    /// `false` if one belongs to another run (the frame is not for this run's devices).
    pub fn untag_frame(self, frame: &mut Frame) -> bool {
        for_each_msg(frame, |m| match self.untag(*m) {
            Some(local) => {
                *m = local;
                true
            }
            None => false,
        })
    }
}

/// Applies `f` to every message id of `frame` until it returns `false`.
fn for_each_msg(frame: &mut Frame, mut f: impl FnMut(&mut MsgId) -> bool) -> bool {
    match frame {
        Frame::Submit(s) => f(&mut s.msg),
        Frame::Deliver(d) => f(&mut d.copy.msg),
        Frame::SubmitAck { copy, .. }
        | Frame::Refused { copy, .. }
        | Frame::DeliverAck { copy, .. }
        | Frame::Bounced { copy, .. }
        | Frame::RetryReceipt { copy, .. } => f(&mut copy.msg),
        Frame::Receipt { msg, .. } => f(msg),
        Frame::Mimi(_) => true,
        Frame::Connect { .. }
        | Frame::ConnectAck { .. }
        | Frame::Disconnect { .. }
        | Frame::PushRequest { .. }
        | Frame::Throttle { .. }
        | Frame::Push { .. }
        | Frame::Media(_) => true,
    }
}

/// What a server does with a device's frame, given the run of the connection it came on.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// The device's current run: handle it.
    Current,
    /// The first frame of a later run: the node replaces the device's old install, then
    /// handles it.
    NewInstall,
    /// A frame of an earlier run than the device's current one, or whose message id names
    /// another run than its connection: refused.
    Stale,
}

/// Per device, the latest run a server heard from it.
#[derive(Debug)]
pub struct Sessions {
    run_of: Vec<RunId>,
}

impl Sessions {
    pub fn new(devices: usize) -> Self {
        Sessions {
            run_of: vec![RunId(0); devices],
        }
    }

    /// Judges `frame` from `device`, arrived on a connection of run `run`, and moves the
    /// device to `run` when it is a later one.
    pub fn admit(&mut self, device: DeviceId, run: RunId, frame: &Frame) -> Admit {
        if frame.msg().is_some_and(|m| RunId::of(m) != run) {
            return Admit::Stale;
        }
        let Some(current) = self.run_of.get_mut(device.index()) else {
            return Admit::Current; // not a device of this run: the node refuses it
        };
        match run.cmp(current) {
            std::cmp::Ordering::Equal => Admit::Current,
            std::cmp::Ordering::Less => Admit::Stale,
            std::cmp::Ordering::Greater => {
                let first = *current == RunId(0);
                *current = run;
                if first {
                    Admit::Current
                } else {
                    Admit::NewInstall
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CopyId;

    #[test]
    fn run_ids_grow_and_tags_round_trip() {
        let (a, b) = (RunId::fresh(), RunId::fresh());
        assert!(b > a, "a later run has a larger id");
        let wire = b.tag(MsgId(77));
        assert_eq!(RunId::of(wire), b);
        assert_eq!(b.untag(wire), Some(MsgId(77)));
        assert_eq!(a.untag(wire), None, "another run's id is not ours");
        let mut f = Frame::DeliverAck {
            copy: CopyId::direct(MsgId(5)),
            device: DeviceId(1),
            from_user: crate::wire::UserId(0),
            to_user: crate::wire::UserId(1),
        };
        b.tag_frame(&mut f);
        assert_eq!(f.msg(), Some(b.tag(MsgId(5))));
        assert!(!a.untag_frame(&mut f.clone()));
        assert!(b.untag_frame(&mut f));
        assert_eq!(f.msg(), Some(MsgId(5)));
    }

    #[test]
    fn a_later_run_replaces_the_install_and_an_earlier_one_is_refused() {
        let (r1, r2) = (RunId(10), RunId(20));
        let d = DeviceId(3);
        let connect = Frame::Connect {
            device: d,
            epoch: 1,
        };
        let ack = |run: RunId| Frame::DeliverAck {
            copy: CopyId::direct(run.tag(MsgId(1))),
            device: d,
            from_user: crate::wire::UserId(0),
            to_user: crate::wire::UserId(1),
        };
        let mut s = Sessions::new(8);
        assert_eq!(s.admit(d, r1, &connect), Admit::Current, "the first run");
        assert_eq!(s.admit(d, r1, &ack(r1)), Admit::Current);
        assert_eq!(s.admit(d, r2, &connect), Admit::NewInstall);
        assert_eq!(s.admit(d, r2, &ack(r2)), Admit::Current);
        assert_eq!(
            s.admit(d, r1, &ack(r1)),
            Admit::Stale,
            "a late frame of run 1"
        );
        assert_eq!(
            s.admit(d, r2, &ack(r1)),
            Admit::Stale,
            "run 1's frame replayed on a run-2 connection"
        );
        assert_eq!(s.admit(DeviceId(99), r1, &connect), Admit::Current);
    }
}
