//! Where the users' inbox choice (`[[provider]] separate_inbox`) joins the workload: a message
//! shown on a recipient's primary device lands in their main or third-party inbox
//! ([`crate::metrics::inbox`] counts both); a user with a separate third-party inbox opens it
//! only after a while (`[workload] separate_inbox_delay`), so their read and answer of a
//! third-party message come that much later. Absent unless the scenario names `separate_inbox`:
//! then nothing here draws a number, and runs are what they were.

use crate::directory::Directory;
use crate::engine::{RngTree, SimRng};
use crate::metrics::inbox::{Inbox, Inboxes};
use crate::net::latency::{exponential_ns, unit};
use crate::scenario::Scenario;
use crate::wire::UserId;

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

impl InboxWorld {
    /// A message from `from` showed on `to`'s primary device (`group`: the members of its group,
    /// if it is a group message): the inbox it lands in, and how much later `to` opens it.
    pub(super) fn file(
        &mut self,
        from: UserId,
        to: UserId,
        group: Option<&[UserId]>,
        dir: &Directory,
    ) -> (Inbox, u64) {
        let home = dir.provider_of_user(to);
        let third_party = match group {
            Some(members) => members.iter().any(|&m| dir.provider_of_user(m) != home),
            None => dir.provider_of_user(from) != home,
        };
        let inbox = self.inboxes.inbox_of(to, third_party);
        (inbox, self.opened_after_ns(inbox))
    }
}
