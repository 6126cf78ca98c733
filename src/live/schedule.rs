//! The open model: every arrival is computed before the run starts (when, who to whom, how
//! big), so that the generator never waits on the system to decide when to send next. Latency
//! is then measured from each arrival's intended time, which corrects coordinated omission.

use crate::directory::Directory;
use crate::engine::{RngTree, SimTime};
use crate::metrics::ledger::NewMessage;
use crate::metrics::{Ledger, PathKind};
use crate::net::latency::exponential_ns;
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
    pub msg: MsgId,
    pub at: SimTime,
    pub from: UserId,
    pub to: UserId,
    pub body_bytes: u32,
}

/// The whole plan: arrivals in time order and the ledger with one record per arrival.
pub struct Schedule {
    pub arrivals: Vec<Arrival>,
    pub ledger: Ledger,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the load plans {0:.0} messages, over the bound of {ARRIVALS_MAX}: lower the rate or the duration")]
    TooMany(f64),
    #[error("the target rate must be positive and finite (got {0})")]
    Rate(f64),
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
        // Live load sends 1:1 messages only: group fan-out is not in the live servers yet.
        let d = workload.draft_direct();
        let at = SimTime::from_nanos(t_ns);
        let body_bytes = d.body_bytes.min(BODY_BYTES_MAX);
        let path = if dir.is_interop(d.from, d.to) {
            PathKind::Interop
        } else {
            PathKind::Native
        };
        let device = dir.primary_device(d.from);
        let content: ContentKind = d.content;
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
        });
    }
    Ok(Schedule { arrivals, ledger })
}

/// The part of `plan` that load generator `k` of `n` sends: the arrivals from its users (those
/// whose device index is `k` mod `n`), each recipient moved to the nearest user of the same
/// slice so that each generator sees both ends of its messages (its ledger is complete).
/// Message ids are renumbered densely; distinct sender devices keep them apart at the servers.
pub fn slice(plan: &Schedule, dir: &Directory, k: u32, n: u32) -> Schedule {
    let n = n.max(1);
    let users = dir.users() as u32;
    let mut ledger = Ledger::new();
    let mut arrivals = Vec::new();
    for a in &plan.arrivals {
        if dir.primary_device(a.from).0 % n != k {
            continue;
        }
        let mut to = a.to.0 - a.to.0 % n + k;
        if to >= users {
            to = to.saturating_sub(n);
        }
        let to = UserId(to);
        if to == a.from || dir.primary_device(to).0 % n != k {
            continue;
        }
        let Some(r) = plan.ledger.record(a.msg) else {
            continue;
        };
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
    Schedule { arrivals, ledger }
}
