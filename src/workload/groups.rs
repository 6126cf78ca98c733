//! Group chats: who is in which group, and how membership changes. Members come from the
//! founder's side of the contact graph (mostly its own provider, a `cross_provider` share
//! across), so groups span providers as conversations do. A member who leaves is replaced by a
//! newcomer (sizes hold) and the group's membership epoch moves on: every sender then re-keys,
//! because a Sender Key the leaver holds must not protect later messages.

use super::pick_contact;
use crate::directory::Directory;
use crate::engine::SimRng;
use crate::net::latency::chance;
use crate::wire::{GroupId, ProviderId, UserId};
use rand::Rng;

/// Draws for a new member before giving up (a tiny population cannot fill a big group).
const DRAWS_PER_MEMBER: u32 = 8;

#[derive(Clone, Debug)]
pub struct Group {
    /// Members in join order; the founder first.
    pub members: Vec<UserId>,
    /// Bumped whenever a member leaves: Sender Keys older than it are retired.
    pub epoch: u32,
    /// The founder's provider: the group's hub under the MIMI design (it stays the hub when
    /// the founder leaves, as a MIMI room's hub does).
    pub hub: ProviderId,
}

#[derive(Clone, Debug, Default)]
pub struct Groups {
    groups: Vec<Group>,
}

impl Groups {
    /// About one group per user's worth of members (`users / mean size` groups), each with a
    /// size uniform in `[min, max]`. Across providers only users who enabled third-party
    /// chats are added (an app cannot add anyone else to an interop group).
    pub fn new(dir: &Directory, (min, max): (u32, u32), cross: f64, rng: &mut SimRng) -> Groups {
        let users = dir.users() as u32;
        if users < 2 {
            return Groups::default();
        }
        let mean = (min as f64 + max as f64) / 2.0;
        let count = ((users as f64 / mean).round() as u32).max(1);
        let mut groups = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let founder = UserId((rng.next_u64() % users as u64) as u32);
            let span = (max - min) as u64 + 1;
            let size = (min as u64 + rng.next_u64() % span).min(users as u64) as usize;
            let mut members = vec![founder];
            let mut draws = 0;
            while members.len() < size && draws < size as u32 * DRAWS_PER_MEMBER {
                draws += 1;
                let u = pick_contact(founder, cross, dir, rng);
                if may_join(&members, u, dir) {
                    members.push(u);
                }
            }
            if members.len() >= 2 {
                let hub = dir.provider_of_user(founder);
                groups.push(Group {
                    members,
                    epoch: 0,
                    hub,
                });
            }
        }
        Groups { groups }
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    pub fn get(&self, g: GroupId) -> &Group {
        &self.groups[g.index()]
    }

    /// A random group and a random member of it as the sender.
    pub fn pick(&self, rng: &mut SimRng) -> Option<(GroupId, UserId)> {
        if self.groups.is_empty() {
            return None;
        }
        let g = (rng.next_u64() % self.groups.len() as u64) as usize;
        let members = &self.groups[g].members;
        let from = members[(rng.next_u64() % members.len() as u64) as usize];
        Some((GroupId(g as u32), from))
    }

    /// With probability `leave`, a member other than `stay` leaves `g` and a newcomer from the
    /// founder's contacts joins. Returns whether membership changed (the epoch moved on).
    pub fn churn(
        &mut self,
        g: GroupId,
        stay: UserId,
        leave: f64,
        cross: f64,
        dir: &Directory,
        rng: &mut SimRng,
    ) -> bool {
        if leave <= 0.0 || !chance(rng, leave) {
            return false;
        }
        let group = &mut self.groups[g.index()];
        let others: Vec<usize> = (0..group.members.len())
            .filter(|&i| group.members[i] != stay)
            .collect();
        if others.is_empty() {
            return false;
        }
        let gone = others[(rng.next_u64() % others.len() as u64) as usize];
        group.members.remove(gone);
        let founder = group.members[0];
        for _ in 0..DRAWS_PER_MEMBER {
            let u = pick_contact(founder, cross, dir, rng);
            if may_join(&group.members, u, dir) {
                group.members.push(u);
                break;
            }
        }
        group.epoch += 1;
        true
    }
}

/// Whether `u` may join a group with `members`: not in it yet, and able to message every
/// member (across providers both ends must have enabled third-party chats).
fn may_join(members: &[UserId], u: UserId, dir: &Directory) -> bool {
    !members.contains(&u) && members.iter().all(|&m| dir.may_message(m, u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PartnerLink;
    use crate::engine::RngTree;

    fn dir() -> Directory {
        Directory::new(
            &[300, 100],
            vec![PartnerLink::Proxied; 2],
            &[1; 400],
            vec![true; 400],
        )
    }

    #[test]
    fn sizes_are_in_range_and_members_distinct() {
        let d = dir();
        let mut rng = RngTree::new(3).stream("t", 0);
        let groups = Groups::new(&d, (3, 10), 0.3, &mut rng);
        assert_eq!(groups.len(), 62, "400 users / mean size 6.5");
        let mut cross = 0;
        for g in 0..groups.len() {
            let m = &groups.get(GroupId(g as u32)).members;
            assert!((3..=10).contains(&m.len()), "size {}", m.len());
            let mut sorted = m.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), m.len(), "members are distinct");
            cross += m.iter().any(|&u| d.is_interop(m[0], u)) as usize;
        }
        assert!(cross > 10, "some groups span providers: {cross}");
    }

    #[test]
    fn churn_replaces_a_member_and_moves_the_epoch() {
        let d = dir();
        let mut rng = RngTree::new(4).stream("t", 0);
        let mut groups = Groups::new(&d, (5, 5), 0.3, &mut rng);
        let g = GroupId(0);
        let before = groups.get(g).members.clone();
        let stay = before[1];
        assert!(groups.churn(g, stay, 1.0, 0.3, &d, &mut rng));
        let after = &groups.get(g).members;
        assert_eq!(after.len(), 5);
        assert!(after.contains(&stay), "the sender never leaves");
        assert_ne!(&before, after);
        assert_eq!(groups.get(g).epoch, 1);
        assert!(!groups.churn(g, stay, 0.0, 0.3, &d, &mut rng));
    }

    #[test]
    fn not_enlisted_users_join_no_interop_group() {
        let d = Directory::new(
            &[50, 50],
            vec![PartnerLink::Proxied; 2],
            &[1; 100],
            (0..100).map(|u| u < 50).collect(), // no partner user enabled interop
        );
        let mut rng = RngTree::new(5).stream("t", 0);
        let groups = Groups::new(&d, (3, 8), 0.5, &mut rng);
        for g in 0..groups.len() {
            let m = &groups.get(GroupId(g as u32)).members;
            assert!(m.iter().all(|&u| !d.is_interop(m[0], u)), "{m:?}");
        }
    }
}
