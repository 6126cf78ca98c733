//! What each provider's infrastructure learns about who talks to whom, counted from the frames
//! its servers handle (not asserted from the design): under the hub design the gatekeeper's
//! gateway and chat server route every third-party chat; under MIMI a room's hub provider
//! routes its rooms' messages and each follower its own members' share. A provider "sees" the
//! sender and each recipient of a message submission or fan-out that one of its servers
//! handles (chat server, partner server, adapter; the gateway is the gatekeeper's).
//!
//! Counted per provider: distinct (sender, recipient) user pairs with at least one user of
//! another provider (`pairs`), of which the pairs where neither user is its own
//! (`third_party_pairs`: two other providers' users), and distinct users of other providers
//! (`foreign_users`). Message contents stay opaque to every server (the metadata-isolation
//! test); this is what the routing fields alone give away.

use crate::directory::Directory;
use crate::nodes::Addr;
use crate::wire::{Frame, MimiFrame, Payload, Submission, UserId};

/// Pairs and users seen, per provider; sorted and deduplicated when they have doubled, so that
/// memory follows the distinct count rather than the traffic.
#[derive(Default)]
pub(super) struct MetadataSeen {
    per_provider: Vec<Seen>,
}

#[derive(Default)]
struct Seen {
    pairs: Vec<u64>,
    pairs_deduped: usize,
    users: Vec<u32>,
    users_deduped: usize,
}

fn dedup<T: Ord>(v: &mut Vec<T>, deduped: &mut usize) {
    v.sort_unstable();
    v.dedup();
    *deduped = v.len();
}

impl Seen {
    fn pair(&mut self, a: UserId, b: UserId) {
        let (lo, hi) = (a.0.min(b.0), a.0.max(b.0));
        self.pairs.push(u64::from(lo) << 32 | u64::from(hi));
        if self.pairs.len() >= 2 * self.pairs_deduped.max(1024) {
            dedup(&mut self.pairs, &mut self.pairs_deduped);
        }
    }
    fn user(&mut self, u: UserId) {
        self.users.push(u.0);
        if self.users.len() >= 2 * self.users_deduped.max(1024) {
            dedup(&mut self.users, &mut self.users_deduped);
        }
    }
}

/// The provider operating the server at `a`, if it is a server that routes messages.
fn operator(a: Addr, dir: &Directory) -> Option<usize> {
    match a {
        Addr::ChatServer | Addr::Gateway => Some(0),
        Addr::Adapter(p) | Addr::PartnerServer(p) => {
            Some(p.index()).filter(|&p| p < dir.providers())
        }
        Addr::Device(_) | Addr::MediaStore(_) | Addr::MediaProxy => None,
    }
}

impl MetadataSeen {
    /// `frame` is handled at `to`.
    pub(super) fn see(&mut self, to: Addr, frame: &Frame, dir: &Directory) {
        let s = match frame {
            Frame::Submit(s) => s,
            Frame::Mimi(MimiFrame::Fanout { submission, .. }) => submission,
            _ => return,
        };
        let Some(p) = operator(to, dir) else { return };
        if self.per_provider.len() < dir.providers() {
            self.per_provider
                .resize_with(dir.providers(), Seen::default);
        }
        let seen = &mut self.per_provider[p];
        for to_user in recipients(s) {
            let own = |u: UserId| dir.provider_of_user(u).index() == p;
            let (own_from, own_to) = (own(s.from_user), own(to_user));
            if own_from && own_to {
                continue;
            }
            seen.pair(s.from_user, to_user);
            for (u, mine) in [(s.from_user, own_from), (to_user, own_to)] {
                if !mine {
                    seen.user(u);
                }
            }
        }
    }

    /// Per provider: (pairs, third-party pairs, foreign users), all distinct.
    pub(super) fn finish(mut self, dir: &Directory) -> Vec<(u64, u64, u64)> {
        self.per_provider
            .resize_with(dir.providers(), Seen::default);
        self.per_provider
            .iter_mut()
            .enumerate()
            .map(|(p, s)| {
                dedup(&mut s.pairs, &mut s.pairs_deduped);
                dedup(&mut s.users, &mut s.users_deduped);
                let own = |u: u64| dir.provider_of_user(UserId(u as u32)).index() == p;
                let third = s
                    .pairs
                    .iter()
                    .filter(|&&k| !own(k >> 32) && !own(k & 0xffff_ffff))
                    .count();
                (s.pairs.len() as u64, third as u64, s.users.len() as u64)
            })
            .collect()
    }
}

/// The users a submission is addressed to: the peer, or a group's members.
fn recipients(s: &Submission) -> impl Iterator<Item = UserId> + '_ {
    let (one, group) = match &s.payload {
        Payload::Direct(_) => (Some(s.to_user), None),
        Payload::Group(g) => (None, Some(g.members.iter().map(|&(u, _)| u))),
        Payload::Resend(_) => (None, None),
    };
    one.into_iter().chain(group.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PartnerLink;
    use crate::engine::SimTime;
    use crate::wire::{Ciphertext, DeviceId, MsgId, ProviderId};

    fn submit(from: u32, to: u32) -> Frame {
        Frame::Submit(Box::new(Submission {
            msg: MsgId(1),
            from_user: UserId(from),
            from_device: DeviceId(from),
            to_user: UserId(to),
            seq: 0,
            sent_at: SimTime::ZERO,
            payload: Payload::Direct(smallvec::smallvec![(DeviceId(to), Ciphertext::default())]),
        }))
    }

    /// Three providers of two users each (users 0-1, 2-3, 4-5; one device each).
    #[test]
    fn each_provider_counts_what_its_servers_routed() {
        let dir = Directory::new(
            &[2, 2, 2],
            vec![PartnerLink::Proxied; 3],
            &[1; 6],
            vec![true; 6],
        );
        let mut seen = MetadataSeen::default();
        // The gatekeeper's chat server routes a partner-to-partner chat and a native one.
        seen.see(Addr::ChatServer, &submit(2, 4), &dir);
        seen.see(Addr::ChatServer, &submit(0, 1), &dir);
        // Its gateway sees the first again: counted once.
        seen.see(Addr::Gateway, &submit(4, 2), &dir);
        // Partner 1's adapter carries its user's chat with a gatekeeper user.
        seen.see(Addr::Adapter(ProviderId(1)), &submit(3, 0), &dir);
        // A device's frames are nobody's infrastructure.
        seen.see(Addr::Device(DeviceId(5)), &submit(5, 0), &dir);
        assert_eq!(seen.finish(&dir), [(1, 1, 2), (1, 0, 1), (0, 0, 0)]);
    }
}
