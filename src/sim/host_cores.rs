//! The cores of one host, shared by the server nodes on it (`[capacity] host`), or by a load
//! generator's devices (`[capacity] generator`): each node keeps its own queue bound, waits and
//! busy time (`Cpu`), and its frames take these cores. A one-core host's loop works in rounds
//! (`sim::rounds`), and on it a frame pays for the socket read that brought it.

use super::rounds::Rounds;
use crate::engine::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The cores of one host, shared by the nodes on it (`[capacity] host`).
#[derive(Clone, Debug)]
pub struct HostCores {
    free_at: BinaryHeap<Reverse<SimTime>>,
    /// The host's own work on each frame, beside the node's logic.
    pub per_frame_ns: u64,
    /// On a one-core loop, a socket read's price (see [`HostCores::read`]); on several cores,
    /// paid by a frame that finds its core idle, before its own work.
    per_wake_ns: u64,
    /// When the last item served was taken: its core free and awake (a hop trace's mark, where
    /// a live generator reads the frame).
    pub last_taken: SimTime,
    /// The rounds of a one-core host's loop, when its outputs leave at their round's end
    /// (`None`: several cores, each item's outputs leave when it is done).
    rounds: Option<Rounds>,
}

impl HostCores {
    pub fn new(host: &crate::scenario::HostCapacity) -> Self {
        HostCores {
            free_at: vec![Reverse(SimTime::ZERO); host.cores.max(1) as usize].into(),
            per_frame_ns: host.per_frame_ns,
            per_wake_ns: host.per_wake_ns,
            last_taken: SimTime::ZERO,
            rounds: (host.cores <= 1).then(Rounds::default),
        }
    }

    /// A work item of no node's (a device's frame on a load generator's cores) arriving at
    /// `now`: its completion.
    pub fn serve(&mut self, now: SimTime) -> SimTime {
        self.take(now).1
    }

    /// [`HostCores::serve`], and when the item is taken: its core free, and awake after the
    /// wake when it was idle.
    pub fn take(&mut self, now: SimTime) -> (SimTime, SimTime) {
        let (_, done) = self.book(now, self.per_frame_ns, None);
        (self.last_taken, done)
    }

    /// A device's frame from connection `from` (the server that sent it) on a load
    /// generator's cores, priced as [`HostCores::read`] prices it: its completion.
    pub fn serve_read(&mut self, now: SimTime, from: u64) -> SimTime {
        self.read(now, self.per_frame_ns, from).1
    }

    /// An item of `service_ns` that came over connection `conn`: on a one-core loop, the
    /// first of its round from there pays the socket read (`per_wake`), busy or idle (a live
    /// loop reads each ready connection once a round, and a busy one goes round without
    /// parking, so its work follows its reads, not its wakes); on several cores, a wake when
    /// it finds its core idle. Its start and completion.
    pub fn read(&mut self, now: SimTime, service_ns: u64, conn: u64) -> (SimTime, SimTime) {
        self.book(now, service_ns, Some(conn))
    }

    /// An item of `service_ns` on the earliest free core: its start and completion. It pays a
    /// wake first when that core was idle; on a one-core loop, an item from connection `from`
    /// pays the read instead, when it is its round's first from there.
    fn book(&mut self, now: SimTime, service_ns: u64, from: Option<u64>) -> (SimTime, SimTime) {
        let idle = self.free_at.peek().is_none_or(|e| e.0 < now);
        let (read_ns, wake_ns) = match (from, self.rounds.as_mut()) {
            (Some(from), Some(r)) => (
                if r.reads(now, idle, from) {
                    self.per_wake_ns
                } else {
                    0
                },
                0,
            ),
            _ => (0, self.per_wake_ns),
        };
        let (start, done) =
            take_core(&mut self.free_at, now, service_ns + read_ns, wake_ns).unwrap_or((now, now));
        if let Some(r) = &mut self.rounds {
            r.admit(now, done, idle);
        }
        self.last_taken = SimTime::from_nanos(done.as_nanos() - service_ns);
        (start, done)
    }

    /// When the outputs of an item done at `t` (taken at `t`, with `taken`) leave: at the end
    /// of its round on a one-core host ([`Rounds`]), else at once.
    pub fn release(&mut self, t: SimTime, taken: bool) -> SimTime {
        self.rounds.as_mut().map_or(t, |r| r.end_of(t, taken))
    }
}

/// The earliest free core of `pool` serves an item arriving at `now` for `service_ns`, after
/// `wake_ns` when that core was idle: its start and completion (`None` only for a pool of no
/// cores, which no constructor makes).
pub(super) fn take_core(
    pool: &mut BinaryHeap<Reverse<SimTime>>,
    now: SimTime,
    service_ns: u64,
    wake_ns: u64,
) -> Option<(SimTime, SimTime)> {
    let mut earliest = pool.peek_mut()?;
    // A core that finishes its last item just as this one comes is still awake.
    let idle = earliest.0 < now;
    let start = earliest.0.max(now);
    let done = start.plus(service_ns + if idle { wake_ns } else { 0 });
    *earliest = Reverse(done);
    Some((start, done))
}

/// One core, 100 ns a frame, 1,000 ns a wake (a read on a one-core loop): the tests' host.
#[cfg(test)]
pub(super) const ONE_CORE: crate::scenario::HostCapacity = crate::scenario::HostCapacity {
    cores: 1,
    per_frame_ns: 100,
    per_wake_ns: 1_000,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    /// On one core, the outputs of an item leave at the end of its round: the frames that
    /// came during a round are taken together in the next, and leave together when its last is
    /// done; on several cores, each item's leave when it is done.
    #[test]
    fn on_one_core_outputs_leave_at_the_end_of_their_round() {
        let one = ONE_CORE;
        let mut g = HostCores::new(&one);
        // Idle at 0: woken, the first item alone in its round (done at 1,110).
        assert_eq!(g.take(t(10)), (t(1_010), t(1_110)));
        // Two items during it: the next round, taken at 1,110 and 1,210.
        assert_eq!(g.take(t(500)), (t(1_110), t(1_210)));
        assert_eq!(g.take(t(900)), (t(1_210), t(1_310)));
        assert_eq!(
            g.release(t(1_110), false),
            t(1_110),
            "the first round's own end"
        );
        assert_eq!(
            g.release(t(1_110), true),
            t(1_310),
            "taken at 1,110: the next round"
        );
        assert_eq!(
            g.release(t(1_210), false),
            t(1_310),
            "waits for the round's last"
        );
        assert_eq!(g.release(t(1_310), false), t(1_310));
        let mut two = HostCores::new(&crate::scenario::HostCapacity { cores: 2, ..one });
        two.take(t(10));
        let (_, done) = two.take(t(500));
        assert_eq!(two.release(done, false), done, "several cores: no rounds");
    }

    /// On a one-core loop, a round reads each connection once: the first frame from a
    /// connection pays the read, busy or idle; one coming over a connection that the round in
    /// progress reads is taken by that read and pays only its own work.
    #[test]
    fn a_round_reads_each_connection_once() {
        let mut g = HostCores::new(&ONE_CORE);
        let (chat, gateway) = (
            crate::nodes::Addr::ChatServer.code(),
            crate::nodes::Addr::Gateway.code(),
        );
        assert_eq!(
            g.serve_read(t(10), chat),
            t(1_110),
            "idle: a read and the frame"
        );
        // During that round, which reads chat: chat's frames ride its read, the gateway's
        // pays one in the next round.
        assert_eq!(g.serve_read(t(200), chat), t(1_210));
        assert_eq!(g.serve_read(t(300), chat), t(1_310));
        assert_eq!(g.serve_read(t(400), gateway), t(2_410));
        assert_eq!(
            g.release(t(1_210), false),
            t(2_410),
            "one round: its last frame"
        );
        // During that round, which reads the gateway: chat pays a read again, the gateway
        // rides it.
        assert_eq!(g.serve_read(t(1_500), chat), t(3_510));
        assert_eq!(g.serve_read(t(1_600), gateway), t(3_610));
    }
}
