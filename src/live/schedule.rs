//! The open model: every arrival is computed before the run starts (when, who to whom, how
//! big), so that the generator never waits on the system to decide when to send next. Latency
//! is then measured from each arrival's intended time, which corrects coordinated omission.

use crate::directory::Directory;
use crate::engine::{RngTree, SimTime};
use crate::metrics::ledger::NewMessage;
use crate::metrics::{Ledger, PathKind};
use crate::net::latency::exponential_ns;
use crate::nodes::device::GroupSend;
use crate::scenario::{ContentKind, Scenario};
use crate::wire::{MsgId, UserId};
use crate::workload::Workload;

/// Bound on the arrivals of one run.
pub const ARRIVALS_MAX: u64 = 20_000_000;
/// Bound on a live message body: one record must fit in a Noise transport message.
pub const BODY_BYTES_MAX: u32 = 8 * 1024;

/// How arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Arrivals {
    /// Evenly spaced at the target rate.
    #[default]
    Constant,
    /// Exponential gaps with the target rate as mean.
    Poisson,
}

/// The target load.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Messages per second at full rate.
    pub rate_per_s: f64,
    pub duration_ns: u64,
    pub arrivals: Arrivals,
    /// The rate climbs linearly from zero to `rate_per_s` over this long, then holds.
    pub ramp_ns: u64,
    /// When the first arrival may go (after the warm-up), ns since the run started.
    pub start_ns: u64,
}

impl Load {
    /// The rate at `t_ns` into the run.
    fn rate_at(&self, t_ns: u64) -> f64 {
        if t_ns >= self.ramp_ns || self.ramp_ns == 0 {
            self.rate_per_s
        } else {
            (self.rate_per_s * t_ns as f64 / self.ramp_ns as f64).max(self.rate_per_s * 0.01)
        }
    }
    /// Arrivals expected over the run.
    pub fn expected(&self) -> f64 {
        let ramp = self.ramp_ns.min(self.duration_ns) as f64 / 1e9;
        self.rate_per_s * ((self.duration_ns as f64 / 1e9) - ramp / 2.0)
    }
}

/// One planned message.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// The message's id; a group message's member `k` is the ledger's message `msg + k`.
    pub msg: MsgId,
    pub at: SimTime,
    pub from: UserId,
    /// The peer of a 1:1 message; the sender itself for a group message.
    pub to: UserId,
    pub body_bytes: u32,
    pub content: ContentKind,
    /// The media blob's plaintext bytes (0 for text): the drawn size, at most
    /// [`MEDIA_BYTES_MAX`].
    pub media_bytes: u32,
    /// A group message: its index in [`Schedule::groups`].
    pub group: Option<u32>,
}

/// Bound on a live media blob: the workload's drawn size is clamped to it, since one machine
/// encrypts, stores, relays, fetches and decrypts every blob of the run.
pub const MEDIA_BYTES_MAX: u32 = 64 * 1024;

/// The whole plan: arrivals in time order, the group messages' sends (group, membership epoch
/// and members, as when the message was written) and the ledger with one record per 1:1
/// arrival and per member of a group arrival.
pub struct Schedule {
    pub arrivals: Vec<Arrival>,
    pub groups: Vec<GroupSend>,
    pub ledger: Ledger,
}

/// Bound on a live group's members but the sender: the first message to a group carries a
/// pairwise-sealed Sender Key distribution per member (about 230 bytes each) in one record.
pub const GROUP_SIZE_MAX: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the load plans {0:.0} messages, over the bound of {ARRIVALS_MAX}: lower the rate or the duration")]
    TooMany(f64),
    #[error("the target rate must be positive and finite (got {0})")]
    Rate(f64),
    #[error("group {group} has {members} members besides the sender; a live group has at most {GROUP_SIZE_MAX} (its first message carries a Sender Key distribution for each in one record): lower [workload] groups.size.max")]
    GroupTooBig { group: u32, members: usize },
}

/// Plans the arrivals of `load` over the scenario's users and content mix.
pub fn plan(
    s: &Scenario,
    dir: &Directory,
    tree: &RngTree,
    load: &Load,
) -> Result<Schedule, ScheduleError> {
    if !(load.rate_per_s.is_finite() && load.rate_per_s > 0.0) {
        return Err(ScheduleError::Rate(load.rate_per_s));
    }
    let expected = load.expected();
    if expected > ARRIVALS_MAX as f64 {
        return Err(ScheduleError::TooMany(expected));
    }
    let mut workload = Workload::new(s, dir, tree);
    let mut gaps = tree.stream("live-arrivals", 0);
    let mut ledger = Ledger::new();
    let mut arrivals = Vec::with_capacity(expected as usize + 16);
    let mut groups = Vec::new();
    let mut t_ns = load.start_ns;
    let end_ns = load.start_ns.saturating_add(load.duration_ns);
    loop {
        let mean = 1e9 / load.rate_at(t_ns - load.start_ns);
        let gap = match load.arrivals {
            Arrivals::Constant => mean.max(1.0) as u64,
            Arrivals::Poisson => exponential_ns(&mut gaps, mean).max(1),
        };
        t_ns += gap;
        if t_ns >= end_ns || arrivals.len() as u64 >= ARRIVALS_MAX {
            break;
        }
        let d = workload.draft(dir);
        let at = SimTime::from_nanos(t_ns);
        let body_bytes = d.body_bytes.min(BODY_BYTES_MAX);
        let device = dir.primary_device(d.from);
        let content: ContentKind = d.content;
        let media_bytes = d.media_bytes.min(u64::from(MEDIA_BYTES_MAX)) as u32;
        if let Some(g) = d.group {
            // As the simulator writes a group message: one record per member but the sender
            // (live users have one device each: no sync copies).
            let group = workload.groups.get(g);
            let members: Vec<UserId> = group
                .members
                .iter()
                .copied()
                .filter(|&u| u != d.from)
                .collect();
            if members.len() > GROUP_SIZE_MAX {
                return Err(ScheduleError::GroupTooBig {
                    group: g.0,
                    members: members.len(),
                });
            }
            let Some(msg) = create_members(&mut ledger, at, d.from, device, &members, |_| {
                (content, body_bytes)
            }) else {
                continue;
            };
            arrivals.push(Arrival {
                msg,
                at,
                from: d.from,
                to: d.from,
                body_bytes,
                content,
                media_bytes,
                group: Some(groups.len() as u32),
            });
            groups.push(GroupSend {
                group: g,
                epoch: group.epoch,
                hub: group.hub,
                members: members.into(),
            });
            continue;
        }
        let path = if dir.is_interop(d.from, d.to) {
            PathKind::Interop
        } else {
            PathKind::Native
        };
        let message = NewMessage {
            from_user: d.from,
            from_device: device,
            to_user: d.to,
            content,
            path,
            bytes: body_bytes,
            digest: 0,
        };
        let msg = ledger.create(at, message);
        arrivals.push(Arrival {
            msg,
            at,
            from: d.from,
            to: d.to,
            body_bytes,
            content,
            media_bytes,
            group: None,
        });
    }
    Ok(Schedule {
        arrivals,
        groups,
        ledger,
    })
}

/// One ledger record per member of a group message written at `at`, in a row: the first
/// id (the message's), or `None` for no members. `what` gives a member's content and bytes.
fn create_members(
    ledger: &mut Ledger,
    at: SimTime,
    from: UserId,
    from_device: crate::wire::DeviceId,
    members: &[UserId],
    what: impl Fn(UserId) -> (ContentKind, u32),
) -> Option<MsgId> {
    let mut first = None;
    for (k, &to_user) in members.iter().enumerate() {
        let (content, bytes) = what(to_user);
        let message = NewMessage {
            from_user: from,
            from_device,
            to_user,
            content,
            path: PathKind::Group,
            bytes,
            digest: 0,
        };
        let id = ledger.create(at, message);
        let first = *first.get_or_insert(id);
        assert_eq!(
            id.0,
            first.0 + k as u64,
            "a group message's member records are in a row"
        );
    }
    first
}

/// The part of `plan` that load generator `k` of `n` sends: the arrivals from its users (those
/// whose device index is `k` mod `n`), each recipient moved to the nearest user of the same
/// slice so that each generator sees both ends of its messages (its ledger is complete); a
/// group message keeps the members of the slice. Message ids are renumbered densely; distinct
/// sender devices keep them apart at the servers.
pub fn slice(plan: &Schedule, dir: &Directory, k: u32, n: u32) -> Schedule {
    let n = n.max(1);
    let users = dir.users() as u32;
    let mut ledger = Ledger::new();
    let mut arrivals = Vec::new();
    let mut groups = Vec::new();
    let in_slice = |u: UserId| dir.primary_device(u).0 % n == k;
    for a in &plan.arrivals {
        if !in_slice(a.from) {
            continue;
        }
        let Some(r) = plan.ledger.record(a.msg) else {
            continue;
        };
        if let Some(i) = a.group {
            let send = &plan.groups[i as usize];
            let members: Vec<UserId> = send
                .members
                .iter()
                .copied()
                .filter(|&u| in_slice(u))
                .collect();
            let from_device = dir.primary_device(a.from);
            let what = |_| (r.content, a.body_bytes);
            let Some(msg) = create_members(&mut ledger, a.at, a.from, from_device, &members, what)
            else {
                continue;
            };
            arrivals.push(Arrival {
                msg,
                group: Some(groups.len() as u32),
                ..*a
            });
            groups.push(GroupSend {
                members: members.into(),
                ..send.clone()
            });
            continue;
        }
        let mut to = a.to.0 - a.to.0 % n + k;
        if to >= users {
            to = to.saturating_sub(n);
        }
        let to = UserId(to);
        if to == a.from || !in_slice(to) {
            continue;
        }
        let path = if dir.is_interop(a.from, to) {
            PathKind::Interop
        } else {
            PathKind::Native
        };
        let from_device = dir.primary_device(a.from);
        let message = NewMessage {
            from_user: a.from,
            from_device,
            to_user: to,
            content: r.content,
            path,
            bytes: a.body_bytes,
            digest: 0,
        };
        let msg = ledger.create(a.at, message);
        arrivals.push(Arrival { msg, to, ..*a });
    }
    Schedule {
        arrivals,
        groups,
        ledger,
    }
}
