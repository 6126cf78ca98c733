//! A device's reorder buffer (`Device::receive`, `release_expired_gaps`): per sender stream,
//! a copy ahead of a gap is held until the gap fills or the hold runs out, the bound on held
//! copies shows them at once, and a gap filled late still shows.
//!
//! The hub keeps order itself (one copy in flight per stream), so these tests run it with
//! `unordered_servers` (several copies per stream at once) and reorder the link by hand.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, Setup, S};
use crate::nodes::TimerKind;
use crate::wire::MsgId;

/// `B` offline while `senders` each write to `UB` (in that order); then `B` connects and the
/// hub's copies (several per stream) are in flight to it, in queue order.
/// (One device per user.)
fn copies_in_flight(mut s: Setup, senders: &[DeviceId]) -> (Pair, Vec<MsgId>) {
    s.unordered_servers = true;
    let users = s.devices_per_user.len() as u32;
    let mut nodes: Vec<Addr> = (0..users).map(|d| dev(DeviceId(d))).collect();
    nodes.push(HUB);
    let mut p = s.build(&nodes);
    let mut others: Vec<DeviceId> = senders.to_vec();
    others.dedup();
    p.connect(&others);
    p.lose(|h| h.is(Kind::Push));
    let sent = senders.iter().map(|&d| p.send(d, UB)).collect();
    p.deliver_all();
    p.heal();
    p.online(B);
    p.deliver(); // the Connect: the hub sends the whole queue
    let ack = p.deliver();
    assert!(ack.cancelled.contains(&(secs(1), TimerKind::OutboxRetry)));
    (p, sent)
}

#[test]
fn a_copy_ahead_of_a_gap_is_held_until_the_gap_fills() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1]), &[A, A]);
    p.swap_next();
    let ahead = p.deliver();
    assert_eq!(ahead.node, dev(B));
    assert_eq!(ahead.count(Kind::DeliverAck), 1, "held, but acked");
    assert!(ahead.events.is_empty(), "not shown yet");
    assert_eq!(ahead.armed, vec![(secs(30), TimerKind::ReorderRelease)]);
    p.deliver();
    assert_eq!(p.shown(B), vec![(m[0], 0, false), (m[1], 1, false)]);
}

#[test]
fn a_gap_that_outlives_the_hold_is_skipped_and_shown_when_it_comes() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1]), &[A, A]);
    let first = m[0];
    p.lose(move |h| h.is_for(Kind::Deliver, first));
    p.drop_where(|h| h.is_for(Kind::Deliver, first));
    p.deliver_all();
    p.run_until(SimTime::from_nanos(30 * S - 1));
    assert!(
        p.shown(B).is_empty(),
        "held while redeliveries at 1, 3, 7, 15, 23 s are lost"
    );
    p.run_until(secs(30));
    assert_eq!(p.shown(B), vec![(m[1], 1, false)], "the hold ran out");
    p.heal();
    p.run_until(secs(31)); // the next redelivery
    assert_eq!(p.shown(B), vec![(m[1], 1, false), (m[0], 0, false)]);
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn the_bound_on_held_copies_shows_them_at_once() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.reorder_held_max = 2;
    let (mut p, m) = copies_in_flight(s, &[A, A, A, A]);
    p.drop_where(|h| h.msg() == Some(m[0]));
    p.deliver();
    p.deliver();
    assert!(p.shown(B).is_empty(), "two held, within the bound");
    p.deliver();
    assert_eq!(
        p.shown(B),
        vec![(m[1], 1, false), (m[2], 2, false), (m[3], 3, false)]
    );
    assert_eq!(p.now(), secs(0), "no timer needed");
}

#[test]
fn a_duplicate_of_a_held_copy_is_suppressed() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1]), &[A, A]);
    p.swap_next();
    p.duplicate_next();
    p.deliver();
    let dup = p.deliver();
    assert_eq!(
        dup.events,
        vec![LedgerEvent::DuplicateSuppressed {
            msg: m[1],
            device: B
        }]
    );
    p.deliver();
    assert_eq!(p.shown_msgs(B), vec![m[0], m[1]]);
}

#[test]
fn the_hold_restarts_while_the_device_is_offline() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1]), &[A, A]);
    p.drop_where(|h| h.msg() == Some(m[0]));
    p.deliver(); // the second copy: held
    p.lose(|h| h.is(Kind::Push));
    p.offline(B);
    p.run_until(secs(30));
    assert!(p.shown(B).is_empty(), "nothing fills a gap offline");
    assert_eq!(p.timer(dev(B), TimerKind::ReorderRelease), Some(secs(60)));
    p.heal();
    p.online(B);
    p.deliver_all();
    assert_eq!(
        p.shown_msgs(B),
        vec![m[0], m[1]],
        "back online, the gap filled"
    );
}

#[test]
fn a_gap_in_one_senders_stream_holds_back_no_other_sender() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1, 1]), &[A, A, C]);
    // Queue order at the hub: A's first, C's, A's second.
    p.drop_where(|h| h.msg() == Some(m[0]));
    p.deliver_all();
    assert_eq!(p.shown(B), vec![(m[2], 0, false)]);
    assert!(
        p.timer(dev(B), TimerKind::ReorderRelease).is_some(),
        "A's second is held"
    );
}

#[test]
#[ignore = "bug: the hold is counted from when the lowest held copy arrived, not from when \
            the gap first held a copy back (`release_expired_gaps` reads the first held \
            entry's time), so a copy that arrives later below the one held first extends the \
            hold past `reorder_hold_ns`"]
fn the_hold_counts_from_the_first_copy_the_gap_held_back() {
    let (mut p, m) = copies_in_flight(Setup::gatekeeper(&[1, 1]), &[A, A, A]);
    let (m0, m1) = (m[0], m[1]);
    p.lose(move |h| h.is(Kind::Deliver) && (h.msg() == Some(m0) || h.msg() == Some(m1)));
    p.drop_where(|h| h.msg() == Some(m0));
    let late = p.hold(|h| h.msg() == Some(m1));
    p.deliver(); // m2: held at 0 s
    p.run_until(secs(20));
    p.release(late);
    p.deliver(); // m1: held at 20 s, below m2
    p.heal();
    p.lose(move |h| h.msg() == Some(m0) && h.is(Kind::Deliver));
    p.run_until(secs(30));
    assert_eq!(
        p.shown_msgs(B),
        vec![m1, m[2]],
        "the gap at 0 has held m2 back for 30 s"
    );
}
