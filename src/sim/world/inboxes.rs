//! Where the users' inbox choice (`[[provider]] separate_inbox`) joins the workload: a message
//! shown on a recipient's primary device lands in their main or third-party inbox
//! ([`crate::metrics::inbox`] counts both); a user with a separate third-party inbox opens it
//! only after a while (`[workload] separate_inbox_delay`), so their read and answer of a
//! third-party message come that much later. Absent unless the scenario names `separate_inbox`:
//! then nothing here draws a number, and runs are what they were.

use super::compose::Traffic;
use crate::directory::Directory;
use crate::engine::{RngTree, SimRng, SimTime};
use crate::metrics::inbox::{Inbox, Inboxes};
use crate::net::latency::{exponential_ns, unit};
use crate::scenario::Scenario;
use crate::wire::{MsgId, UserId};

pub(super) struct InboxWorld {
    pub(super) inboxes: Inboxes,
    /// When a separate inbox is opened: its own stream, so that the choice leaves every other
    /// draw of the run (replies, reads, churn) as it was.
    rng: SimRng,
    delay_mean_ns: f64,
}

impl InboxWorld {
    pub(super) fn new(s: &Scenario, tree: &RngTree) -> Option<Self> {
        if s.providers.iter().all(|p| p.separate_inbox.is_none()) {
            return None;
        }
        let mut choice = tree.stream("inbox/choice", 0);
        let mut separate = Vec::new();
        for p in &s.providers {
            let share = p.separate_inbox.unwrap_or(0.0);
            separate.extend((0..p.users).map(|_| unit(&mut choice) < share));
        }
        Some(InboxWorld {
            inboxes: Inboxes::new(separate),
            rng: tree.stream("inbox/opened", 0),
            delay_mean_ns: s.workload.separate_inbox_delay_ns as f64,
        })
    }

    /// How long after it showed the user opens the inbox a message landed in.
    fn opened_after_ns(&mut self, inbox: Inbox) -> u64 {
        match inbox {
            Inbox::Main => 0,
            Inbox::ThirdParty => exponential_ns(&mut self.rng, self.delay_mean_ns),
        }
    }
}

impl Traffic {
    /// `msg` from `from` showed on `to`'s primary device: files it in `to`'s inbox and returns
    /// the inbox and how much later `to` opens it (0 without inbox tracking).
    pub(super) fn file_in_inbox(
        &mut self,
        msg: MsgId,
        from: UserId,
        to: UserId,
        dir: &Directory,
    ) -> (Option<Inbox>, u64) {
        let group = self.group_of(msg).map(|(g, _)| g);
        let Some(world) = self.inbox.as_mut() else {
            return (None, 0);
        };
        let home = dir.provider_of_user(to);
        let third_party = match group {
            Some(g) => {
                let members = &self.workload.groups.get(g).members;
                members.iter().any(|&m| dir.provider_of_user(m) != home)
            }
            None => dir.provider_of_user(from) != home,
        };
        let inbox = world.inboxes.inbox_of(to, third_party);
        (Some(inbox), world.opened_after_ns(inbox))
    }

    /// Counts `msg` as shown in `inbox` of `to` (after [`Traffic::file_in_inbox`]).
    pub(super) fn shown_in_inbox(
        &mut self,
        now: SimTime,
        msg: MsgId,
        to: UserId,
        inbox: Option<Inbox>,
        read_scheduled: bool,
    ) {
        if let (Some(world), Some(inbox)) = (self.inbox.as_mut(), inbox) {
            world.inboxes.shown(now, msg, to, inbox, read_scheduled);
        }
    }

    /// The user read `msg`.
    pub(super) fn read_in_inbox(&mut self, now: SimTime, msg: MsgId) {
        if let Some(world) = self.inbox.as_mut() {
            world.inboxes.read(now, msg);
        }
    }
}
