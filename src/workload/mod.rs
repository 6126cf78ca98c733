//! The workload: who talks to whom (a contact graph, mostly inside a provider, a
//! `cross_provider` share across), when (one Poisson process at the total rate, each arrival
//! picking its sender uniformly: the superposition of per-user Poisson processes), what (the
//! content mix, with a size per kind), conversational replies, so that ratchets turn, and a
//! `groups.share` of messages written to group chats.

pub mod groups;

use crate::directory::Directory;
use crate::engine::{RngTree, SimRng};
use crate::net::latency::{chance, exponential_ns, unit, LatencySampler};
use crate::scenario::{ContentKind, Latency, Scenario};
use crate::wire::{GroupId, UserId};
use groups::Groups;
use rand::Rng;
use std::collections::VecDeque;

/// How many arrivals ahead senders and contacts are drawn: the contact-list entry an arrival
/// reads is asked for (a cache hint) that many arrivals before, instead of being a miss that
/// the event loop waits on (at a million users the contact graph is tens of megabytes).
const PICKS_AHEAD: usize = 4;

/// An arrival's draw from the `workload/pairs` stream: whether it goes to a group, and its
/// sender and contact (used when it is not a group message).
#[derive(Clone, Copy, Debug)]
struct Pick {
    group: bool,
    from: UserId,
    /// Index of the contact in `Workload::contacts`.
    contact: usize,
}

/// One message the workload wants sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draft {
    pub from: UserId,
    /// The recipient of a 1:1 message (for a group message: the sender itself).
    pub to: UserId,
    /// A group message: the group (its members are the recipients).
    pub group: Option<GroupId>,
    pub content: ContentKind,
    /// Bytes of the plaintext message body (for media: the attachment pointer and caption).
    pub body_bytes: u32,
    /// Bytes of the media blob, 0 for text.
    pub media_bytes: u64,
}

/// Body and media size distributions per content kind (medians from public messaging
/// statistics, rounded; a long lognormal tail).
fn size_models() -> [(Latency, Option<Latency>); 5] {
    // Latency is a convenient (median, p99) lognormal in integer units; here the unit is bytes.
    let ln = |median_ns, p99_ns| Latency::Lognormal { median_ns, p99_ns };
    [
        (ln(60, 900), None),                             // text
        (ln(160, 400), Some(ln(150_000, 1_500_000))),    // image
        (ln(140, 300), Some(ln(40_000, 400_000))),       // voice
        (ln(160, 400), Some(ln(4_000_000, 40_000_000))), // video
        (ln(180, 400), Some(ln(500_000, 20_000_000))),   // file
    ]
}

pub struct Workload {
    /// Contacts of user `u` at `contacts[u * k .. (u + 1) * k]`.
    contacts: Vec<u32>,
    contacts_per_user: usize,
    users: u32,
    /// Mean gap between two arrivals of the whole population, in ns.
    mean_gap_ns: f64,
    /// Cumulative content weights in `ContentKind::ALL` order.
    content_cdf: [f64; 5],
    sizes: [(LatencySampler, Option<LatencySampler>); 5],
    reply_probability: f64,
    reply_delay_mean_ns: f64,
    read_probability: f64,
    cross_provider: f64,
    /// `[workload] media_bytes_max`.
    media_bytes_max: u64,
    groups_share: f64,
    group_leave: f64,
    pub groups: Groups,
    /// Membership changes (each re-keys the group).
    pub group_leaves: u64,
    arrivals: SimRng,
    /// Each arrival's group-or-not, sender and contact: a stream of their own, drawn
    /// [`PICKS_AHEAD`] arrivals early (nothing else draws from it, so drawing early changes
    /// nothing).
    pairs: SimRng,
    picks: VecDeque<Pick>,
    /// Contents and sizes (of arrivals and replies alike), and groups.
    choices: SimRng,
    reactions: SimRng,
}

impl Workload {
    pub fn new(s: &Scenario, dir: &Directory, tree: &RngTree) -> Self {
        let w = &s.workload;
        let k = w.contacts_per_user.max(1) as usize;
        let users = dir.users() as u32;
        let mut graph_rng = tree.stream("workload/contacts", 0);
        let mut contacts = Vec::with_capacity(users as usize * k);
        for u in 0..users {
            for _ in 0..k {
                contacts.push(pick_contact(UserId(u), w.cross_provider, dir, &mut graph_rng).0);
            }
        }
        let rate_per_s = users as f64 * w.messages_per_user_hour / 3600.0;
        let mut acc = 0.0;
        let mut content_cdf = [0.0; 5];
        for (i, p) in w.content.iter().enumerate() {
            acc += p;
            content_cdf[i] = acc;
        }
        // Drawn from their own stream, and only when groups are on, so that scenarios without
        // groups replay exactly as before.
        let groups = if w.groups_share > 0.0 {
            let mut rng = tree.stream("workload/groups", 0);
            Groups::new(
                dir,
                (w.group_size_min, w.group_size_max),
                w.cross_provider,
                &mut rng,
            )
        } else {
            Groups::default()
        };
        let sizes = size_models()
            .map(|(b, m)| (LatencySampler::new(&b), m.as_ref().map(LatencySampler::new)));
        let mut w = Workload {
            contacts,
            contacts_per_user: k,
            users,
            mean_gap_ns: if rate_per_s > 0.0 {
                1e9 / rate_per_s
            } else {
                f64::INFINITY
            },
            content_cdf,
            sizes,
            reply_probability: w.reply_probability,
            reply_delay_mean_ns: w.reply_delay_mean_ns as f64,
            read_probability: w.read_probability,
            cross_provider: w.cross_provider,
            media_bytes_max: w.media_bytes_max,
            groups_share: w.groups_share,
            group_leave: w.group_leave,
            groups,
            group_leaves: 0,
            arrivals: tree.stream("workload/arrivals", 0),
            pairs: tree.stream("workload/pairs", 0),
            picks: VecDeque::with_capacity(PICKS_AHEAD + 1),
            choices: tree.stream("workload/choices", 0),
            reactions: tree.stream("workload/reactions", 0),
        };
        if users > 0 {
            for _ in 0..PICKS_AHEAD {
                let pick = w.draw_pick();
                w.picks.push_back(pick);
            }
        }
        w
    }

    /// The next arrival's pick, with one more drawn at the back.
    fn next_pick(&mut self) -> Pick {
        let pick = self.draw_pick();
        self.picks.push_back(pick);
        self.picks.pop_front().unwrap_or(pick)
    }

    /// Draws a pick and asks for the contact entry it will read.
    fn draw_pick(&mut self) -> Pick {
        let rng = &mut self.pairs;
        let group = self.groups_share > 0.0 && chance(rng, self.groups_share);
        let from = (rng.next_u64() % u64::from(self.users)) as u32;
        let k = self.contacts_per_user;
        let contact = from as usize * k + (rng.next_u64() % k as u64) as usize;
        if let Some(entry) = self.contacts.get(contact) {
            crate::engine::prefetch::prefetch(entry);
        }
        Pick {
            group,
            from: UserId(from),
            contact,
        }
    }

    fn contact(&self, pick: &Pick) -> UserId {
        UserId(self.contacts[pick.contact])
    }

    /// Time to the next arrival anywhere in the population, at `surge` times the scenario's
    /// rate; `None` when nobody sends.
    pub fn next_gap_ns(&mut self, surge: f64) -> Option<u64> {
        let mean = self.mean_gap_ns / surge.max(1e-9);
        mean.is_finite()
            .then(|| exponential_ns(&mut self.arrivals, mean).max(1))
    }

    /// A new conversation message: a uniform sender, one of its contacts, content from the mix;
    /// or, for a `groups.share` of them, a message from a random member to a random group.
    pub fn draft(&mut self, dir: &Directory) -> Draft {
        let pick = self.next_pick();
        if pick.group {
            if let Some((g, from)) = self.groups.pick(&mut self.choices) {
                return self.draft_group(from, g, dir);
            }
        }
        self.draft_to(pick.from, self.contact(&pick))
    }

    /// A 1:1 message: a uniform sender, one of its contacts, content from the mix.
    pub fn draft_direct(&mut self) -> Draft {
        let pick = self.next_pick();
        self.draft_to(pick.from, self.contact(&pick))
    }

    /// The sender and recipient the next [`Workload::draft`] will pick; `None` when it will be
    /// a group message. Drawn already, so the guess is exact: the driver asks for their state
    /// one arrival ahead.
    pub fn peek_pair(&self) -> Option<(UserId, UserId)> {
        self.peek_pair_at(0)
    }

    /// The pair of the arrival `ahead` arrivals after the next one (while it is drawn: up to
    /// `PICKS_AHEAD - 1`), for cache hints further ahead.
    pub fn peek_pair_at(&self, ahead: usize) -> Option<(UserId, UserId)> {
        let pick = self.picks.get(ahead)?;
        (!pick.group).then(|| (pick.from, self.contact(pick)))
    }

    /// A group message from member `from`. Membership may change just before (a member
    /// leaves, `groups.leave`), which re-keys the group.
    pub fn draft_group(&mut self, from: UserId, g: GroupId, dir: &Directory) -> Draft {
        let (leave, cross) = (self.group_leave, self.cross_provider);
        if self
            .groups
            .churn(g, from, leave, cross, dir, &mut self.reactions)
        {
            self.group_leaves += 1;
        }
        Draft {
            group: Some(g),
            ..self.draft_to(from, from)
        }
    }

    /// A message from `from` to `to` (a reply) with content drawn from the mix.
    pub fn draft_to(&mut self, from: UserId, to: UserId) -> Draft {
        let x = unit(&mut self.choices);
        let i = self.content_cdf.iter().position(|&c| x < c).unwrap_or(0);
        let content = ContentKind::ALL[i];
        let (body, media) = &self.sizes[i];
        let body_bytes = body.sample(&mut self.choices).clamp(1, 65_536) as u32;
        let media_bytes = media.map_or(0, |m| m.sample(&mut self.choices).max(1));
        // Below the default the bound applies here; at it, the media pointer's own cap does.
        let media_bytes = match self.media_bytes_max < crate::scenario::MEDIA_BYTES_MAX {
            true => media_bytes.min(self.media_bytes_max),
            false => media_bytes,
        };
        Draft {
            from,
            to,
            group: None,
            content,
            body_bytes,
            media_bytes,
        }
    }

    /// Whether a shown message can draw any reaction (a reply or a read): when not, the
    /// reactions draw nothing and the driver need not look up who sent it.
    pub fn reacts(&self) -> bool {
        self.reply_probability > 0.0 || self.read_probability > 0.0
    }

    /// Whether the recipient answers a shown message, and after how long.
    pub fn reply_after_ns(&mut self) -> Option<u64> {
        self.answer_after_ns(self.reply_probability)
    }

    /// Whether one of `recipients` members answers a group message it was shown: each with a
    /// `1 / recipients` share of the reply probability, so that a group message draws as many
    /// answers on average as a 1:1 message (each member answering everything would make every
    /// group message breed more than one, without end).
    pub fn group_reply_after_ns(&mut self, recipients: u32) -> Option<u64> {
        self.answer_after_ns(self.reply_probability / recipients.max(1) as f64)
    }

    fn answer_after_ns(&mut self, p: f64) -> Option<u64> {
        chance(&mut self.reactions, p)
            .then(|| exponential_ns(&mut self.reactions, self.reply_delay_mean_ns).max(1))
    }

    /// Whether the recipient reads a shown message (a read receipt follows), and when.
    pub fn read_after_ns(&mut self) -> Option<u64> {
        chance(&mut self.reactions, self.read_probability)
            .then(|| exponential_ns(&mut self.reactions, 5e9).max(1))
    }
}

/// One contact of `u`: across providers with probability `cross`, else inside `u`'s provider.
pub(crate) fn pick_contact(u: UserId, cross: f64, dir: &Directory, rng: &mut SimRng) -> UserId {
    let own = dir.provider_of_user(u);
    let own_users = dir.users_of(own);
    let others = dir.users() as u32 - (own_users.end - own_users.start);
    let go_cross = others > 0 && (own_users.end - own_users.start < 2 || chance(rng, cross));
    if go_cross {
        // Uniform over users of other providers: skip over the own range.
        let mut i = (rng.next_u64() % others as u64) as u32;
        if i >= own_users.start {
            i += own_users.end - own_users.start;
        }
        return UserId(i);
    }
    if own_users.end - own_users.start < 2 {
        return u; // a lone user with nobody else anywhere talks to themselves
    }
    let n = own_users.end - own_users.start - 1;
    let mut i = own_users.start + (rng.next_u64() % n as u64) as u32;
    if i >= u.0 {
        i += 1;
    }
    UserId(i)
}

/// The ciphertext size of a Signal message carrying `body_bytes` of plaintext: the protobuf
/// content padded to AES blocks, plus the SignalMessage framing (version byte, ratchet key,
/// counters, 8-byte MAC: about 53 bytes).
pub fn signal_ciphertext_len(body_bytes: u32) -> u32 {
    let padded = (body_bytes + 16) / 16 * 16;
    padded + 53
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PartnerLink;

    #[test]
    fn cross_share_is_respected() {
        let dir = Directory::new(
            &[800, 200],
            vec![PartnerLink::Proxied; 2],
            &[1; 1000],
            vec![true; 1000],
        );
        let mut rng = RngTree::new(5).stream("t", 0);
        let n = 20_000;
        let cross = (0..n)
            .filter(|i| {
                let u = UserId(i % 1000);
                let c = pick_contact(u, 0.3, &dir, &mut rng);
                assert_ne!(c, u);
                dir.is_interop(u, c)
            })
            .count();
        let share = cross as f64 / n as f64;
        assert!((share - 0.3).abs() < 0.02, "cross share {share}");
    }

    /// The baseline scenario's workload over 1000 single-device users of two providers.
    fn baseline_with_one_device_each() -> (Scenario, Directory) {
        let source = include_str!("../../scenarios/baseline.toml");
        let s = crate::scenario::parse(source, "baseline.toml").expect("baseline parses");
        let dir = Directory::new(
            &[800, 200],
            vec![PartnerLink::Proxied; 2],
            &[1; 1000],
            vec![true; 1000],
        );
        (s, dir)
    }

    #[test]
    fn replies_between_arrivals_do_not_move_their_senders_and_recipients() {
        let (s, dir) = baseline_with_one_device_each();
        let arrivals = |replies: bool| {
            let mut w = Workload::new(&s, &dir, &RngTree::new(3));
            (0..300)
                .map(|_| {
                    if replies {
                        w.draft_to(UserId(1), UserId(2));
                    }
                    let d = w.draft(&dir);
                    d.group.map_or(Some((d.from, d.to)), |_| None)
                })
                .collect::<Vec<_>>()
        };
        let (quiet, chatty) = (arrivals(false), arrivals(true));
        assert_eq!(quiet, chatty);
        assert!(quiet.iter().flatten().count() > 150, "mostly 1:1 messages");
    }

    #[test]
    fn media_bytes_max_bounds_every_blob_and_moves_no_other_draw() {
        let (mut s, dir) = baseline_with_one_device_each();
        let drafts = |s: &Scenario| {
            let mut w = Workload::new(s, &dir, &RngTree::new(4));
            (0..2_000).map(|_| w.draft(&dir)).collect::<Vec<_>>()
        };
        let free = drafts(&s);
        s.workload.media_bytes_max = 65_536;
        let bounded = drafts(&s);
        assert!(
            free.iter().any(|d| d.media_bytes > 65_536),
            "some blobs are larger unbounded"
        );
        for (f, b) in free.iter().zip(&bounded) {
            assert_eq!(
                (f.from, f.to, f.content, f.body_bytes),
                (b.from, b.to, b.content, b.body_bytes)
            );
            assert_eq!(b.media_bytes, f.media_bytes.min(65_536));
        }
    }

    #[test]
    fn peek_pair_names_the_next_direct_draft() {
        let (s, dir) = baseline_with_one_device_each();
        let mut w = Workload::new(&s, &dir, &RngTree::new(9));
        let mut guessed = 0;
        for _ in 0..500 {
            let guess = w.peek_pair();
            let d = w.draft(&dir);
            match guess {
                Some(pair) => {
                    assert_eq!((d.from, d.to), pair);
                    assert!(d.group.is_none());
                    guessed += 1;
                }
                None => assert!(d.group.is_some(), "no guess only for a group message"),
            }
        }
        assert!(guessed > 250, "{guessed} of 500 drafts guessed");
    }

    #[test]
    fn ciphertext_len_pads_to_blocks() {
        assert_eq!(signal_ciphertext_len(0), 16 + 53);
        assert_eq!(signal_ciphertext_len(15), 16 + 53);
        assert_eq!(signal_ciphertext_len(16), 32 + 53);
    }
}
