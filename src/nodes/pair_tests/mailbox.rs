//! Store and forward at the hub (`nodes/mailbox.rs`): a submission is accepted once, its copy
//! redelivered until acked, kept for an offline device (one push per backlog), sent one copy
//! per sender stream within the window on connect, expired after the TTL, kept or lost by a
//! crash as its storage says.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, Setup, S};
use crate::nodes::TimerKind;
use crate::wire::MsgId;

fn accepted(msg: MsgId) -> impl Fn(&LedgerEvent) -> bool {
    move |e| matches!(e, LedgerEvent::Accepted { msg: m, .. } if *m == msg)
}

#[test]
fn a_duplicate_submission_is_acked_again_but_fanned_out_once() {
    let mut p = connected();
    let m = p.send(A, UB);
    p.duplicate_next();
    let first = p.deliver();
    assert_eq!(first.node, HUB);
    assert_eq!(first.count(Kind::SubmitAck), 1);
    assert_eq!(first.count(Kind::Deliver), 1);
    let second = p.deliver();
    assert_eq!(second.node, HUB);
    assert_eq!(second.count(Kind::SubmitAck), 1, "the sender needs its ack");
    assert_eq!(second.count(Kind::Deliver), 0, "no second copy");
    assert!(second.events.is_empty());
    assert_eq!(p.count(accepted(m)), 1);
    assert_eq!(p.queued(HUB), 1);
}

#[test]
fn a_submission_retried_after_a_lost_ack_is_not_delivered_twice() {
    let mut p = connected();
    let m = p.send(A, UB);
    p.deliver();
    p.drop_where(|h| h.is(Kind::SubmitAck));
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert_eq!(p.outbox_len(A), 1, "no ack came");
    let retry = p.fire_timer();
    assert_eq!((retry.node, p.now()), (dev(A), secs(1)));
    assert_eq!(retry.count(Kind::Submit), 1);
    p.deliver_all();
    assert_eq!(p.outbox_len(A), 0);
    assert_eq!(p.sent_count(Kind::Deliver), 1);
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert_eq!(p.count(accepted(m)), 1);
}

#[test]
fn an_unacked_copy_is_redelivered_with_doubling_backoff_up_to_the_cap() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.offline_ttl_ns = 3_600 * S; // the TTL sweep stays out of the way
    let mut p = two_users(s);
    p.connect(&[A, B]);
    p.lose(|h| h.is(Kind::Deliver));
    p.send(A, UB);
    p.deliver_all();
    assert_eq!(p.timer(HUB, TimerKind::Redeliver(B)), Some(secs(1)));
    let mut resent_at = Vec::new();
    for _ in 0..5 {
        let r = p.fire_timer();
        assert_eq!(r.node, HUB);
        assert_eq!(r.count(Kind::Deliver), 1);
        resent_at.push(p.now());
    }
    // Delays 1, 2, 4, 8 and then 8 again (retry_max).
    assert_eq!(resent_at, [1, 3, 7, 15, 23].map(secs));
    let sends = p.sends(HUB);
    assert_eq!(
        (sends.first, sends.again),
        (1, 5),
        "one first delivery, five redeliveries"
    );
    assert_eq!(p.timer(HUB, TimerKind::Redeliver(B)), Some(secs(31)));
}

#[test]
fn an_ack_drops_the_copy_and_cancels_the_redelivery() {
    let mut p = connected();
    p.send(A, UB);
    p.deliver();
    assert_eq!(p.queued(HUB), 1);
    assert_eq!(p.timer(HUB, TimerKind::Redeliver(B)), Some(secs(1)));
    p.deliver_where(|h| h.is(Kind::Deliver));
    let ack = p.deliver_where(|h| h.is(Kind::DeliverAck));
    assert_eq!(ack.cancelled, vec![(secs(1), TimerKind::Redeliver(B))]);
    let sends = p.sends(HUB);
    assert_eq!(
        (sends.first, sends.again),
        (1, 0),
        "acked in time: no redelivery"
    );
    assert_eq!(p.queued(HUB), 0);
    assert_eq!(p.timers_of(HUB), vec![(secs(15), TimerKind::ExpirySweep)]);
}

#[test]
fn an_ack_resets_the_redelivery_backoff() {
    let mut p = connected();
    p.lose(|h| h.is(Kind::Deliver));
    p.send(A, UB);
    p.deliver_all();
    p.fire_timer(); // 1 s
    p.fire_timer(); // 3 s
    p.heal();
    p.fire_timer(); // 7 s: this one arrives
    p.deliver_all();
    assert_eq!(p.queued(HUB), 0);
    p.send(A, UB);
    p.deliver();
    assert_eq!(
        p.timer(HUB, TimerKind::Redeliver(B)),
        Some(secs(8)),
        "back to the first delay"
    );
}

#[test]
fn a_copy_redelivered_after_a_lost_ack_is_acked_again_but_shown_once() {
    let mut p = connected();
    let m = p.send(A, UB);
    p.deliver();
    p.deliver_where(|h| h.is(Kind::Deliver));
    p.drop_where(|h| h.is(Kind::DeliverAck));
    p.deliver_all();
    let redelivery = p.fire_timer();
    assert_eq!((redelivery.node, redelivery.count(Kind::Deliver)), (HUB, 1));
    let again = p.deliver();
    assert_eq!(again.node, dev(B));
    assert_eq!(again.count(Kind::DeliverAck), 1);
    assert!(matches!(
        again.events[..],
        [LedgerEvent::DuplicateSuppressed { msg, device: B }] if msg == m
    ));
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn an_offline_recipient_gets_its_copies_stored_and_one_push() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push));
    let m1 = p.send(A, UB);
    let m2 = p.send(A, UB);
    p.deliver_all();
    let stored: Vec<MsgId> = p
        .ledger()
        .iter()
        .filter_map(|r| match r.event {
            LedgerEvent::StoredOffline { msg, device: B } => Some(msg),
            _ => None,
        })
        .collect();
    assert_eq!(stored, vec![m1, m2]);
    let pushes = p.sent(Kind::Push);
    assert_eq!(pushes.len(), 1, "one push for one backlog");
    assert_eq!(pushes[0].to, dev(B));
    assert_eq!(p.sent_count(Kind::Deliver), 0);
    assert_eq!(p.queued(HUB), 2);
}

#[test]
fn a_push_wakes_the_device_which_connects_and_drains_in_order() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    let sent = [p.send(A, UB), p.send(A, UB), p.send(A, UB)];
    assert!(!p.is_online(B));
    p.deliver_all();
    assert!(p.is_online(B), "the push woke it");
    assert_eq!(
        p.shown(B),
        vec![
            (sent[0], 0, false),
            (sent[1], 1, false),
            (sent[2], 2, false)
        ]
    );
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn copies_from_one_sender_go_out_one_at_a_time() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push));
    let (m1, m2) = (p.send(A, UB), p.send(A, UB));
    p.deliver_all();
    p.heal();
    p.online(B);
    let connect = p.deliver();
    assert_eq!(connect.node, HUB);
    let copies: Vec<_> = connect
        .sent(Kind::Deliver)
        .iter()
        .map(|h| h.msg())
        .collect();
    assert_eq!(copies, vec![Some(m1)], "the window holds 4, the stream 1");
    p.deliver_where(|h| h.is(Kind::Deliver));
    let ack = p.deliver_where(|h| h.is(Kind::DeliverAck));
    let next: Vec<_> = ack.sent(Kind::Deliver).iter().map(|h| h.msg()).collect();
    assert_eq!(next, vec![Some(m2)]);
}

#[test]
fn the_window_bounds_the_copies_in_flight_to_a_device() {
    // Five senders, one recipient (user 5), a window of 4.
    let s = Setup::gatekeeper(&[1; 6]);
    let senders: Vec<DeviceId> = (0..5).map(DeviceId).collect();
    let to = DeviceId(5);
    let mut nodes: Vec<Addr> = senders.iter().map(|&d| dev(d)).collect();
    nodes.extend([dev(to), HUB]);
    let mut p = s.build(&nodes);
    p.connect(&senders);
    p.lose(|h| h.is(Kind::Push));
    let sent: Vec<MsgId> = senders.iter().map(|&d| p.send(d, UserId(5))).collect();
    p.deliver_all();
    p.heal();
    p.online(to);
    let connect = p.deliver();
    let first: Vec<_> = connect
        .sent(Kind::Deliver)
        .iter()
        .map(|h| h.msg())
        .collect();
    assert_eq!(
        first,
        sent[..4].iter().map(|&m| Some(m)).collect::<Vec<_>>()
    );
    p.deliver_where(|h| h.is(Kind::ConnectAck));
    p.deliver(); // the first copy
    let ack = p.deliver_where(|h| h.is(Kind::DeliverAck));
    let next: Vec<_> = ack.sent(Kind::Deliver).iter().map(|h| h.msg()).collect();
    assert_eq!(
        next,
        vec![Some(sent[4])],
        "the fifth enters as the first leaves"
    );
}

#[test]
fn offline_copies_expire_after_the_ttl() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push));
    let m = p.send(A, UB);
    p.deliver_all();
    p.run_until(secs(59));
    assert_eq!(p.queued(HUB), 1, "sweeps at 15, 30 and 45 s leave it");
    p.run_until(secs(60));
    let expired: Vec<_> = p
        .ledger()
        .iter()
        .filter(|r| matches!(r.event, LedgerEvent::Expired { device: B, .. }))
        .map(|r| (r.event.clone(), r.at))
        .collect();
    assert_eq!(
        expired,
        vec![(LedgerEvent::Expired { msg: m, device: B }, secs(60))]
    );
    assert_eq!(p.queued(HUB), 0);
    assert!(p.timers_of(HUB).is_empty(), "nothing queued, no sweep");
}

#[test]
fn the_ttl_sweep_runs_every_quarter_ttl_but_at_most_every_second() {
    for (ttl_s, sweep_ns) in [(60, 15 * S), (2, S)] {
        let mut s = Setup::gatekeeper(&[1, 1]);
        s.offline_ttl_ns = ttl_s * S;
        let mut p = two_users(s);
        p.connect(&[A]);
        p.send(A, UB);
        let submit = p.deliver();
        assert!(submit
            .armed
            .contains(&(SimTime::from_nanos(sweep_ns), TimerKind::ExpirySweep)));
    }
}

/// The hub crashes with a copy for the offline `B` queued and `A`'s ack lost; `A` reconnects
/// and submits again.
fn crash_with_a_copy_queued(durable: bool) -> (Pair, MsgId) {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push) || h.is(Kind::SubmitAck));
    let m = p.send(A, UB);
    p.deliver_all();
    assert_eq!(p.queued(HUB), 1);
    p.crash(HUB, durable);
    p.restart();
    p.deliver_all();
    (p, m)
}

#[test]
fn a_durable_crash_keeps_the_queue_and_the_dedup_memory() {
    let (mut p, m) = crash_with_a_copy_queued(true);
    assert_eq!(p.sent_count(Kind::Submit), 2, "resubmitted on reconnect");
    assert_eq!(p.count(accepted(m)), 1);
    assert_eq!(p.queued(HUB), 1);
    p.heal();
    p.online(B);
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
}

#[test]
fn a_crash_without_durable_storage_loses_the_queue_and_the_dedup_memory() {
    let (p, m) = crash_with_a_copy_queued(false);
    assert_eq!(p.sent_count(Kind::Submit), 2);
    assert_eq!(p.count(accepted(m)), 2, "accepted anew: the hub forgot it");
    assert_eq!(
        p.queued(HUB),
        1,
        "the first copy is gone, the second queued"
    );
}

#[test]
fn a_device_leaving_with_a_copy_in_flight_is_pushed_back() {
    let mut p = connected();
    let m = p.send(A, UB);
    p.deliver();
    p.drop_where(|h| h.is(Kind::Deliver));
    p.offline(B);
    let disconnect = p.deliver_where(|h| h.is(Kind::Disconnect));
    assert_eq!(disconnect.count(Kind::Push), 1);
    p.deliver_all();
    assert!(p.is_online(B));
    assert_eq!(p.shown_msgs(B), vec![m]);
}

#[test]
fn a_device_leaving_with_nothing_queued_is_not_pushed() {
    let mut p = connected();
    p.send(A, UB);
    p.deliver_all();
    p.offline(B);
    let disconnect = p.deliver();
    assert_eq!(disconnect.node, HUB);
    assert!(disconnect.sent.is_empty());
}

#[test]
#[ignore = "bug: a durable crash clears the hub's sweep timer (`lose_connections` sets \
            `sweep_at` to None) and only a new enqueue arms it again, so copies kept through \
            the crash never expire while nothing new arrives"]
fn a_copy_kept_through_a_durable_crash_still_expires_after_the_ttl() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push));
    let m = p.send(A, UB);
    p.deliver_all();
    p.crash(HUB, true);
    p.restart();
    p.deliver_all();
    p.run_until(secs(120));
    assert_eq!(
        p.count(|e| *e == LedgerEvent::Expired { msg: m, device: B }),
        1
    );
    assert_eq!(p.queued(HUB), 0);
}
