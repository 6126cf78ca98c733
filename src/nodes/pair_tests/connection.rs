//! Connections and their epochs (`Mailbox::connect`/`disconnect`, `Device::go_online`): a
//! device counts its connections, the hub tells a late frame of an old connection from the
//! current one, and a Connect is retried until acked.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, Setup};
use crate::nodes::TimerKind;

#[test]
fn a_late_connect_of_a_closed_connection_changes_nothing() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.online(B);
    let connect = p.hold(|h| h.is(Kind::Connect));
    assert_eq!(connect[0].epoch(), Some(1));
    p.offline(B);
    p.deliver(); // Disconnect 1 first
    p.release(connect);
    let late = p.deliver();
    assert_eq!(late.node, HUB);
    assert!(late.sent.is_empty(), "no ConnectAck, nothing sent");
    p.lose(|h| h.is(Kind::Push));
    let m = p.send(A, UB);
    p.deliver_all();
    assert_eq!(
        p.count(|e| *e == LedgerEvent::StoredOffline { msg: m, device: B }),
        1,
        "the hub still takes B for offline"
    );
}

#[test]
fn a_late_disconnect_of_an_old_connection_does_not_close_the_new_one() {
    let mut p = connected();
    p.offline(B);
    let disconnect = p.hold(|h| h.is(Kind::Disconnect));
    p.online(B);
    let connect = p.deliver();
    assert_eq!(connect.sent(Kind::ConnectAck)[0].epoch(), Some(2));
    p.deliver_all();
    p.release(disconnect);
    let late = p.deliver();
    assert!(late.sent.is_empty());
    let m = p.send(A, UB);
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    assert_eq!(
        p.count(|e| matches!(e, LedgerEvent::StoredOffline { .. })),
        0
    );
}

#[test]
fn a_connect_retried_after_a_lost_ack_is_acked_again_without_resending_the_queue() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.connect(&[A]);
    p.lose(|h| h.is(Kind::Push));
    let m = p.send(A, UB);
    p.deliver_all();
    p.heal();
    p.online(B);
    let first = p.deliver();
    assert_eq!(first.count(Kind::ConnectAck), 1);
    assert_eq!(first.count(Kind::Deliver), 1);
    p.drop_where(|h| h.is(Kind::ConnectAck));
    p.deliver_all();
    assert_eq!(p.shown_msgs(B), vec![m]);
    let retry = p.fire_timer();
    assert_eq!((retry.node, p.now()), (dev(B), secs(1)));
    assert_eq!(retry.sent(Kind::Connect)[0].epoch(), Some(1));
    let again = p.deliver();
    assert_eq!(again.count(Kind::ConnectAck), 1);
    assert_eq!(again.count(Kind::Deliver), 0);
    p.deliver();
    assert_eq!(
        p.timer(dev(B), TimerKind::OutboxRetry),
        None,
        "connected: no retry"
    );
}

#[test]
fn a_lost_connect_is_retried_with_backoff_until_acked() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    let online = p.online(A);
    assert_eq!(online.armed, vec![(secs(1), TimerKind::OutboxRetry)]);
    p.drop_next();
    let first = p.fire_timer();
    assert_eq!((first.count(Kind::Connect), p.now()), (1, secs(1)));
    p.drop_next();
    let second = p.fire_timer();
    assert_eq!((second.count(Kind::Connect), p.now()), (1, secs(3)));
    p.deliver();
    let ack = p.deliver();
    assert_eq!(ack.node, dev(A));
    assert_eq!(ack.cancelled, vec![(secs(7), TimerKind::OutboxRetry)]);
    assert!(p.timers_of(dev(A)).is_empty());
}

#[test]
fn a_device_ignores_the_connect_ack_of_an_older_connection() {
    let mut p = two_users(Setup::gatekeeper(&[1, 1]));
    p.online(B);
    p.deliver(); // Connect 1
    let old_ack = p.hold(|h| h.is(Kind::ConnectAck));
    p.offline(B);
    p.online(B);
    p.deliver(); // Disconnect 1
    p.deliver(); // Connect 2
    p.drop_where(|h| h.is(Kind::ConnectAck));
    p.release(old_ack);
    let late = p.deliver();
    assert_eq!(late.node, dev(B));
    assert!(late.cancelled.is_empty(), "still connecting");
    let retry = p.fire_timer();
    assert_eq!(retry.node, dev(B));
    assert_eq!(retry.sent(Kind::Connect)[0].epoch(), Some(2));
}

#[test]
fn a_device_offline_ignores_what_still_arrives() {
    let mut p = connected();
    p.send(A, UB);
    p.deliver(); // the hub sends B its copy
    p.offline(B);
    let arrival = p.deliver_where(|h| h.is(Kind::Deliver));
    assert_eq!(arrival.node, dev(B));
    assert!(arrival.sent.is_empty(), "no ack: the connection is down");
    assert!(arrival.events.is_empty());
    assert_eq!(p.queued(HUB), 1, "the hub keeps it");
}
