//! A device's outbox (`Device::compose`, `acked`, the outbox retry): one message in flight per
//! uplink, retried with backoff until the server acks, bounded, kept while offline; and what a
//! device does with a tampered copy.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, Setup};
use crate::nodes::TimerKind;

#[test]
fn messages_on_one_uplink_go_one_at_a_time_in_order() {
    let mut p = connected();
    let sent = [p.send(A, UB), p.send(A, UB), p.send(A, UB)];
    assert_eq!(p.in_flight().len(), 1, "stop and wait");
    assert_eq!(p.in_flight()[0].msg(), Some(sent[0]));
    p.deliver(); // the hub has the first
    let ack = p.deliver_where(|h| h.is(Kind::SubmitAck));
    assert_eq!(ack.node, dev(A));
    let next = ack.sent(Kind::Submit);
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].msg(), next[0].seq()), (Some(sent[1]), Some(1)));
    p.deliver_all();
    assert_eq!(p.outbox_len(A), 0);
    let seqs: Vec<_> = p.shown(B).iter().map(|&(m, seq, _)| (m, seq)).collect();
    assert_eq!(seqs, vec![(sent[0], 0), (sent[1], 1), (sent[2], 2)]);
}

#[test]
fn a_lost_submission_is_retried_with_backoff_and_the_timer_goes_with_the_ack() {
    let mut p = connected();
    p.lose(|h| h.is(Kind::Submit));
    let m = p.send(A, UB);
    let mut resent_at = Vec::new();
    for _ in 0..2 {
        let r = p.fire_timer();
        assert_eq!((r.node, r.count(Kind::Submit)), (dev(A), 1));
        resent_at.push(p.now());
    }
    p.heal();
    let third = p.fire_timer();
    resent_at.push(p.now());
    assert_eq!(third.count(Kind::Submit), 1);
    assert_eq!(resent_at, [1, 3, 7].map(secs));
    p.deliver(); // the hub has it
    let ack = p.deliver_where(|h| h.is(Kind::SubmitAck));
    assert_eq!(ack.cancelled, vec![(secs(15), TimerKind::OutboxRetry)]);
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert!(p.timers_of(dev(A)).is_empty());
}

#[test]
fn a_full_outbox_refuses_new_messages() {
    let mut s = Setup::gatekeeper(&[1, 1]);
    s.outbox_max = 2;
    let mut p = two_users(s);
    assert!(p.try_send(A, UB, b"one").is_some());
    assert!(p.try_send(A, UB, b"two").is_some());
    assert_eq!(p.try_send(A, UB, b"three"), None);
    assert_eq!(p.outbox_len(A), 2);
}

#[test]
fn messages_written_offline_wait_and_go_oldest_first_on_connect() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[B]);
    let (m1, m2) = (p.send(A, UB), p.send(A, UB));
    assert!(p.in_flight().is_empty(), "offline: nothing goes");
    let online = p.online(A);
    let kinds: Vec<_> = online.sent.iter().map(|h| (h.kind(), h.msg())).collect();
    assert_eq!(kinds, vec![(Kind::Connect, None), (Kind::Submit, Some(m1))]);
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m1, m2]);
    assert_eq!(p.outbox_len(A), 0);
}

#[test]
fn a_tampered_copy_is_refused_unacked_and_comes_again() {
    let mut p = connected();
    let m = p.send(A, UB);
    p.deliver(); // the hub sends B its copy
    p.tamper_next();
    let tampered = p.deliver();
    assert_eq!(tampered.node, dev(B));
    assert_eq!(
        tampered.events,
        vec![LedgerEvent::TamperDetected { msg: m, device: B }]
    );
    assert!(
        tampered.sent.is_empty(),
        "no ack for a frame that failed its MAC"
    );
    p.deliver_all();
    assert_eq!(p.queued(HUB), 1);
    let redelivery = p.fire_timer();
    assert_eq!((redelivery.node, redelivery.count(Kind::Deliver)), (HUB, 1));
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert_eq!(p.queued(HUB), 0);
}
