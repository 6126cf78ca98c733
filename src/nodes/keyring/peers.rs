//! What a device knows of each peer device: the identity generation it last saw, and the
//! session with it, if one is up. One sorted map of 12-byte entries instead of a session map
//! and a seen-identity map (20 bytes a peer): a run holds one per device pair that ever spoke,
//! tens of millions at scale. A session is always built for the generation seen last (both
//! are written together), so the session needs no generation of its own.

use crate::collections::vec_map::VecMap;

/// A session as the model sees it: which identity generation of the peer it was built for.
/// Its real record, which only real crypto has, is kept apart (`DeviceState::records`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Session {
    pub(super) peer_generation: u32,
    /// The next message still carries the prekey header (no reply received yet).
    pub(super) prekey_pending: bool,
    /// A retry receipt asked for a new session: the next message starts one.
    pub(super) renew: bool,
}

const SESSION: u8 = 1;
const PREKEY_PENDING: u8 = 2;
const RENEW: u8 = 4;

#[derive(Clone, Copy, Debug)]
struct Peer {
    /// The identity generation seen last.
    generation: u32,
    /// `SESSION` when one is up, with its `PREKEY_PENDING` and `RENEW`.
    session: u8,
}

#[derive(Debug, Default)]
pub(super) struct Peers(VecMap<u32, Peer>);

impl Peers {
    /// This device has seen `peer`'s identity (whether or not a session is up).
    pub(super) fn knows(&self, peer: u32) -> bool {
        self.0.contains_key(&peer)
    }

    /// Records `peer`'s identity generation as seen; returns the one seen before.
    pub(super) fn see(&mut self, peer: u32, generation: u32) -> Option<u32> {
        let mut fresh = false;
        let p = self.0.get_or_insert_with(peer, || {
            fresh = true;
            Peer {
                generation,
                session: 0,
            }
        });
        let before = std::mem::replace(&mut p.generation, generation);
        (!fresh).then_some(before)
    }

    pub(super) fn session(&self, peer: u32) -> Option<Session> {
        let p = self.0.get(&peer).filter(|p| p.session & SESSION != 0)?;
        Some(Session {
            peer_generation: p.generation,
            prekey_pending: p.session & PREKEY_PENDING != 0,
            renew: p.session & RENEW != 0,
        })
    }

    /// Puts `s` up as the session with `peer`, whose identity was just seen at the generation
    /// it is built for (see [`Peers::see`]).
    pub(super) fn insert_session(&mut self, peer: u32, s: Session) {
        let p = self.0.get_mut(&peer);
        let Some(p) = p.filter(|p| p.generation == s.peer_generation) else {
            panic!("a session is built for the identity generation seen last");
        };
        p.session = SESSION
            | if s.prekey_pending { PREKEY_PENDING } else { 0 }
            | if s.renew { RENEW } else { 0 };
    }

    /// The session with `peer`, if one is up, starts over at its next message.
    pub(super) fn renew(&mut self, peer: u32) {
        if let Some(p) = self.0.get_mut(&peer).filter(|p| p.session & SESSION != 0) {
            p.session |= RENEW;
        }
    }

    /// The peer answered on the session: later messages carry no prekey header.
    pub(super) fn confirm(&mut self, peer: u32) {
        if let Some(p) = self.0.get_mut(&peer).filter(|p| p.session & SESSION != 0) {
            p.session &= !PREKEY_PENDING;
        }
    }

    /// A reinstall: every session goes; the identities seen stay.
    pub(super) fn drop_sessions(&mut self) {
        for p in self.0.values_mut() {
            p.session = 0;
        }
    }

    /// A cache hint for the first entries (see [`crate::engine::prefetch`]).
    pub(super) fn prefetch(&self) {
        self.0.prefetch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two maps this replaces, side by side with it through a peer's life: seen, a
    /// session, renewed, confirmed, a reinstall of this device, a new identity of the peer.
    #[test]
    fn one_map_answers_as_the_session_and_seen_identity_maps_did() {
        let mut peers = Peers::default();
        let (mut sessions, mut seen) = (VecMap::<u32, Session>::new(), VecMap::<u32, u32>::new());
        let s = |g, prekey_pending, renew| Session {
            peer_generation: g,
            prekey_pending,
            renew,
        };
        let check = |peers: &Peers, sessions: &VecMap<u32, Session>, seen: &VecMap<u32, u32>| {
            for p in 0..4 {
                assert_eq!(peers.session(p), sessions.get(&p).copied(), "peer {p}");
                assert_eq!(peers.knows(p), seen.contains_key(&p), "peer {p}");
            }
        };
        assert_eq!((peers.see(2, 0), seen.insert(2, 0)), (None, None));
        peers.insert_session(2, s(0, true, false));
        sessions.insert(2, s(0, true, false));
        check(&peers, &sessions, &seen);
        peers.renew(2);
        sessions.get_mut(&2).unwrap().renew = true;
        peers.renew(3);
        peers.confirm(3);
        check(&peers, &sessions, &seen);
        peers.confirm(2);
        sessions.get_mut(&2).unwrap().prekey_pending = false;
        check(&peers, &sessions, &seen);
        peers.drop_sessions();
        sessions.clear();
        check(&peers, &sessions, &seen);
        peers.renew(2);
        check(&peers, &sessions, &seen);
        assert_eq!((peers.see(2, 1), seen.insert(2, 1)), (Some(0), Some(0)));
        peers.insert_session(2, s(1, false, false));
        sessions.insert(2, s(1, false, false));
        check(&peers, &sessions, &seen);
        assert_eq!(std::mem::size_of::<(u32, Peer)>(), 12);
    }

    #[test]
    #[should_panic(expected = "the identity generation seen last")]
    fn a_session_for_an_identity_not_seen_is_a_bug() {
        let mut peers = Peers::default();
        peers.see(1, 3);
        peers.insert_session(
            1,
            Session {
                peer_generation: 2,
                prekey_pending: false,
                renew: false,
            },
        );
    }
}
