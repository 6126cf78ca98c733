//! What a test reads of a pair: the clock, the logs of frames and ledger events, timers and
//! the nodes' counters. Reading only; what users and faults do is in `mod.rs`.

use super::*;

impl Pair {
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn mark(&self) -> Mark {
        Mark(self.log.len())
    }
    /// Every frame sent since `m`, in order (delivered, in flight, lost or outside).
    pub fn sent_since(&self, m: Mark) -> &[Hop] {
        &self.log[m.0..]
    }
    /// Every frame of `kind` sent so far.
    pub fn sent(&self, kind: Kind) -> Vec<&Hop> {
        self.log.iter().filter(|h| h.is(kind)).collect()
    }
    pub fn sent_count(&self, kind: Kind) -> usize {
        self.sent(kind).len()
    }
    /// Frames sent to addresses outside the pair.
    pub fn outside(&self) -> &[Hop] {
        &self.outside
    }
    pub fn lost(&self) -> &[Hop] {
        &self.lost
    }
    pub fn in_flight(&self) -> &VecDeque<Hop> {
        &self.link
    }
    pub fn ledger(&self) -> &[Recorded] {
        &self.ledger
    }
    /// How many recorded events match.
    pub fn count(&self, pred: impl Fn(&LedgerEvent) -> bool) -> usize {
        self.ledger.iter().filter(|r| pred(&r.event)).count()
    }
    /// What device `d` showed its user, in order: (message, sequence number, late).
    pub fn shown(&self, d: DeviceId) -> Vec<(MsgId, u32, bool)> {
        self.ledger
            .iter()
            .filter_map(|r| match r.event {
                LedgerEvent::Shown {
                    msg,
                    device,
                    seq,
                    late,
                    ..
                } if device == d => Some((msg, seq, late)),
                _ => None,
            })
            .collect()
    }
    /// The messages device `d` showed, in order.
    pub fn shown_msgs(&self, d: DeviceId) -> Vec<MsgId> {
        self.shown(d).into_iter().map(|(m, _, _)| m).collect()
    }
    /// The digest a device showed for `msg` (real crypto).
    pub fn shown_digest(&self, d: DeviceId, msg: MsgId) -> Option<u64> {
        self.ledger.iter().find_map(|r| match r.event {
            LedgerEvent::Shown {
                msg: m,
                device,
                digest,
                ..
            } if device == d && m == msg => digest,
            _ => None,
        })
    }
    /// The instant `node`'s timer `kind` was last armed for, if it is still armed.
    pub fn timer(&self, node: Addr, kind: TimerKind) -> Option<SimTime> {
        self.timers
            .iter()
            .rev()
            .find(|(n, _, k)| *n == node && *k == kind)
            .map(|(_, at, _)| *at)
    }
    pub fn timers_of(&self, node: Addr) -> Vec<(SimTime, TimerKind)> {
        let mut t: Vec<_> = self
            .timers
            .iter()
            .filter(|(n, _, _)| *n == node)
            .map(|(_, at, k)| (*at, *k))
            .collect();
        t.sort_by_key(|(at, _)| *at);
        t
    }

    // ---- node state, as a test may read it

    pub fn is_online(&self, d: DeviceId) -> bool {
        self.device(d).is_online()
    }
    pub fn outbox_len(&self, d: DeviceId) -> usize {
        self.device(d).outbox_len()
    }
    /// Copies a server holds, waiting for an ack.
    pub fn queued(&self, server: Addr) -> u64 {
        match self.node(server) {
            Node::Chat(c) => c.queued(),
            Node::Partner(p) => p.queued(),
            _ => panic!("{server:?} has no mailbox"),
        }
    }
    /// Deliver frames a server's mailbox sent, first and again.
    pub fn sends(&self, server: Addr) -> crate::nodes::mailbox::Sends {
        match self.node(server) {
            Node::Chat(c) => c.sends(),
            Node::Partner(p) => p.sends(),
            _ => panic!("{server:?} has no mailbox"),
        }
    }
    pub fn pushes_sent(&self, p: ProviderId) -> u64 {
        match self.node(Addr::PartnerServer(p)) {
            Node::Partner(ps) => ps.pushes_sent(),
            _ => unreachable!(),
        }
    }
    /// The gateway's counters: (shaped, rate limited, refused).
    pub fn gateway_counts(&self) -> (u64, u64, u64) {
        match self.node(Addr::Gateway) {
            Node::Gateway(g) => (g.shaped, g.rate_limited, g.refused),
            _ => unreachable!(),
        }
    }
    /// The adapter's counters: (translated up, translated down).
    pub fn adapter_counts(&self, p: ProviderId) -> (u64, u64) {
        match self.node(Addr::Adapter(p)) {
            Node::Adapter(a) => (a.translated_up, a.translated_down),
            _ => unreachable!(),
        }
    }
}
