//! The users' inboxes. The gatekeeper's rollout lets each user keep chats with other apps'
//! users in a separate third-party inbox or in one combined inbox with their other chats
//! (`[[provider]] separate_inbox`). What a user sees differs: a separate inbox has its own
//! unread badge and is opened less often, so a third-party message there is read later (and
//! answered later). This module counts, per inbox, the messages shown on users' primary
//! devices, those read, the unread badge (at the end, and the largest any one user's inbox
//! reached) and the time from shown to first read.
//!
//! Kept only when the scenario names `separate_inbox` (on any provider, even at 0); summary.json
//! then has an `inbox` object and `[expect]` accepts `inbox.<main|third_party>.<key>`.

use crate::engine::SimTime;
#[cfg(test)]
use crate::scenario::{INBOXES, INBOX_COUNTS, INBOX_LATENCIES};
use crate::wire::{MsgId, UserId};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where a message shows on its recipient's primary device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbox {
    /// The chat list: native chats, and third-party ones for a user with a combined inbox.
    Main = 0,
    /// The separate third-party inbox (only users who chose one have it).
    ThirdParty = 1,
}

/// One inbox's figures in summary.json.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct InboxCounters {
    /// Messages shown in it (on the recipient's primary device; a group message once per
    /// member).
    pub shown: u64,
    /// Of those, read by the end.
    pub read: u64,
    /// Shown and not read when the run ended, over all users.
    pub unread_at_end: u64,
    /// The largest unread badge any one user's inbox reached.
    pub unread_max: u64,
    /// From shown to read, ms: the median, the 99th percentile and the mean.
    pub first_read_p50: f64,
    pub first_read_p99: f64,
    pub first_read_mean: f64,
}

impl InboxCounters {
    fn metric(&self, key: &str) -> Option<f64> {
        let v = match key {
            "shown" => self.shown,
            "read" => self.read,
            "unread_at_end" => self.unread_at_end,
            "unread_max" => self.unread_max,
            "first_read_p50" => return Some(self.first_read_p50),
            "first_read_p99" => return Some(self.first_read_p99),
            "first_read_mean" => return Some(self.first_read_mean),
            _ => return None,
        };
        Some(v as f64)
    }
}

/// summary.json's `inbox`: how many users chose each kind of inbox, and each inbox's figures.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct InboxSummary {
    pub users_separate: u64,
    pub users_combined: u64,
    pub main: InboxCounters,
    pub third_party: InboxCounters,
}

impl InboxSummary {
    /// The value of `inbox.<key>` (`third_party.first_read_p99`; durations in ms).
    pub fn metric(&self, key: &str) -> Option<f64> {
        match key.split_once('.')? {
            ("main", k) => self.main.metric(k),
            ("third_party", k) => self.third_party.metric(k),
            _ => None,
        }
    }
}

/// One inbox's running counts.
#[derive(Debug)]
struct Running {
    shown: u64,
    read: u64,
    unread_max: u32,
    first_read: Histogram<u64>,
}

impl Running {
    fn new() -> Self {
        Running {
            shown: 0,
            read: 0,
            unread_max: 0,
            first_read: Histogram::new(3).expect("3 significant figures is a valid precision"),
        }
    }
}

/// The inboxes of a run, as messages show and are read.
#[derive(Debug)]
pub struct Inboxes {
    /// Per user: keeps third-party chats in a separate inbox.
    separate: Vec<bool>,
    /// Per user and inbox: the unread badge.
    unread: Vec<[u32; 2]>,
    /// Shown messages whose read is scheduled: when they showed, where, and to whom.
    waiting: BTreeMap<MsgId, (SimTime, Inbox, UserId)>,
    boxes: [Running; 2],
}

impl Inboxes {
    /// `separate[u]`: user `u` chose a separate third-party inbox.
    pub fn new(separate: Vec<bool>) -> Self {
        let unread = vec![[0; 2]; separate.len()];
        Inboxes {
            separate,
            unread,
            waiting: BTreeMap::new(),
            boxes: [Running::new(), Running::new()],
        }
    }

    /// Where a message shows for `user`: `third_party` when the chat is with another app's
    /// user (for a group, any member of another provider).
    pub fn inbox_of(&self, user: UserId, third_party: bool) -> Inbox {
        if third_party && self.separate[user.index()] {
            Inbox::ThirdParty
        } else {
            Inbox::Main
        }
    }

    /// `msg` showed on `user`'s primary device in `inbox`; `read_scheduled`: the user will read
    /// it (the workload drew a read).
    pub fn shown(
        &mut self,
        now: SimTime,
        msg: MsgId,
        user: UserId,
        inbox: Inbox,
        read_scheduled: bool,
    ) {
        if self.waiting.contains_key(&msg) {
            return; // shown twice (a duplicate): one badge
        }
        let b = &mut self.boxes[inbox as usize];
        b.shown += 1;
        let badge = &mut self.unread[user.index()][inbox as usize];
        *badge += 1;
        b.unread_max = b.unread_max.max(*badge);
        if read_scheduled {
            self.waiting.insert(msg, (now, inbox, user));
        }
    }

    /// The user read `msg`.
    pub fn read(&mut self, now: SimTime, msg: MsgId) {
        let Some((shown, inbox, user)) = self.waiting.remove(&msg) else {
            return;
        };
        let b = &mut self.boxes[inbox as usize];
        b.read += 1;
        let badge = &mut self.unread[user.index()][inbox as usize];
        assert!(*badge > 0, "a read message was counted unread");
        *badge -= 1;
        let _ = b.first_read.record(now.as_nanos() - shown.as_nanos());
    }

    pub fn summary(&self) -> InboxSummary {
        let separate = self.separate.iter().filter(|&&s| s).count() as u64;
        let counters = |i: usize| {
            let b = &self.boxes[i];
            let h = &b.first_read;
            let ms = |ns: f64| ns / 1e6;
            let unread_at_end = self.unread.iter().map(|u| u[i] as u64).sum();
            InboxCounters {
                shown: b.shown,
                read: b.read,
                unread_at_end,
                unread_max: b.unread_max as u64,
                first_read_p50: ms(h.value_at_quantile(0.5) as f64),
                first_read_p99: ms(h.value_at_quantile(0.99) as f64),
                first_read_mean: if h.is_empty() { 0.0 } else { ms(h.mean()) },
            }
        };
        InboxSummary {
            users_separate: separate,
            users_combined: self.separate.len() as u64 - separate,
            main: counters(Inbox::Main as usize),
            third_party: counters(Inbox::ThirdParty as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn badges_count_per_user_and_inbox_and_reads_take_them_down() {
        // User 0 keeps a separate inbox, user 1 a combined one.
        let mut i = Inboxes::new(vec![true, false]);
        let (u0, u1) = (UserId(0), UserId(1));
        assert_eq!(i.inbox_of(u0, true), Inbox::ThirdParty);
        assert_eq!(i.inbox_of(u0, false), Inbox::Main);
        assert_eq!(i.inbox_of(u1, true), Inbox::Main);
        let t = SimTime::from_nanos;
        i.shown(t(S), MsgId(1), u0, Inbox::ThirdParty, true);
        i.shown(t(S), MsgId(2), u0, Inbox::ThirdParty, false);
        i.shown(t(2 * S), MsgId(3), u1, Inbox::Main, true);
        i.shown(t(2 * S), MsgId(3), u1, Inbox::Main, true); // a duplicate shows once
        i.read(t(11 * S), MsgId(1));
        i.read(t(3 * S), MsgId(3));
        i.read(t(4 * S), MsgId(3)); // read once
        let s = i.summary();
        assert_eq!((s.users_separate, s.users_combined), (1, 1));
        let tp = &s.third_party;
        assert_eq!(
            (tp.shown, tp.read, tp.unread_at_end, tp.unread_max),
            (2, 1, 1, 2)
        );
        assert!((tp.first_read_p50 - 10_000.0).abs() < 10.0, "{tp:?}");
        let main = &s.main;
        assert_eq!(
            (main.shown, main.read, main.unread_at_end, main.unread_max),
            (1, 1, 0, 1)
        );
        assert!((main.first_read_mean - 1_000.0).abs() < 1.0, "{main:?}");
        assert_eq!(s.metric("third_party.unread_max"), Some(2.0));
        assert_eq!(s.metric("main.first_read_mean"), Some(main.first_read_mean));
        assert_eq!(s.metric("other.shown"), None);
        assert_eq!(s.metric("main.nothing"), None);
        for k in INBOX_COUNTS.iter().chain(&INBOX_LATENCIES) {
            for b in INBOXES {
                assert!(s.metric(&format!("{b}.{k}")).is_some(), "{b}.{k}");
            }
        }
    }
}
