//! Switching third-party chats off and on with messages in flight (the `toggle` fault): a
//! message refused for it uses up no place in its conversation, so the recipient never holds
//! the next one back waiting for it; copies dropped while a user was off leave a gap that
//! user's devices give up on at once when they switch back on.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, PartnerLink, Setup};
use crate::nodes::TimerKind;
use crate::wire::GroupId;

const P: DeviceId = DeviceId(1);
const UP: UserId = UserId(1);

/// Gatekeeper device `A` and partner device `P`, both connected, with every server.
fn interop() -> Pair {
    let s = Setup::interop(&[1], &[1], PartnerLink::Direct);
    let nodes = [
        dev(A),
        dev(P),
        HUB,
        Addr::Gateway,
        Addr::PartnerServer(crate::wire::ProviderId(1)),
    ];
    let mut p = s.build(&nodes);
    p.connect(&[A, P]);
    p
}

/// `P` shows `m` at once, at sequence number `seq`, with no reorder hold armed.
fn shown_at_once(p: &Pair, m: crate::wire::MsgId, seq: u32) {
    assert_eq!(
        p.shown(P).last(),
        Some(&(m, seq, false)),
        "{:?}",
        p.shown(P)
    );
    assert_eq!(
        p.timer(dev(P), TimerKind::ReorderRelease),
        None,
        "nothing held"
    );
}

#[test]
fn a_refused_message_gives_its_number_back() {
    let mut p = interop();
    p.set_enlisted(UP, false);
    let refused = p.send(A, UP);
    p.deliver_all();
    assert_eq!(p.sent_count(Kind::Refused), 1);
    p.set_enlisted(UP, true);
    let m = p.send(A, UP);
    p.deliver_all();
    assert!(refused < m);
    shown_at_once(&p, m, 0);
}

#[test]
fn messages_refused_in_a_row_give_every_number_back() {
    let mut p = interop();
    p.set_enlisted(UA, false); // the sender's side this time
                               // Both are written before the first refusal comes back: the first number cannot be
                               // given back alone (the second holds the next), and both return with the second.
    let first = p.send(A, UP);
    let second = p.send(A, UP);
    p.deliver_all();
    assert_eq!(p.sent_count(Kind::Refused), 2, "{first:?} and {second:?}");
    p.set_enlisted(UA, true);
    let m = p.send(A, UP);
    p.deliver_all();
    shown_at_once(&p, m, 0);
}

#[test]
fn a_number_taken_by_a_delivered_message_is_not_given_back() {
    let mut p = interop();
    let delivered = p.send(A, UP);
    p.deliver_all();
    p.set_enlisted(UP, false);
    p.send(A, UP); // refused: number 1 comes back
    p.deliver_all();
    p.set_enlisted(UP, true);
    let m = p.send(A, UP);
    p.deliver_all();
    assert_eq!(p.shown(P), vec![(delivered, 0, false), (m, 1, false)]);
}

#[test]
fn a_group_member_out_of_reach_uses_up_no_number() {
    let mut p = interop();
    let g = GroupId(0);
    p.set_enlisted(UP, false);
    let m0 = p.send_group(A, g, &[UA, UP]);
    p.deliver_all();
    let refused = crate::wire::CopyId { msg: m0, member: 1 }.ledger_id();
    assert_eq!(
        p.count(|e| *e
            == LedgerEvent::Refused {
                msg: refused,
                to_user: UP
            }),
        1
    );
    p.set_enlisted(UP, true);
    let m1 = p.send_group(A, g, &[UA, UP]);
    p.deliver_all();
    let copy = crate::wire::CopyId { msg: m1, member: 1 }.ledger_id();
    shown_at_once(&p, copy, 0);
}

#[test]
fn a_copy_dropped_while_off_leaves_a_gap_given_up_at_once_when_back_on() {
    let mut p = interop();
    let dropped = p.send(A, UP);
    p.deliver(); // the hub sends the copy to the gateway
    p.set_enlisted(UP, false); // P switches third-party chats off meanwhile
    p.deliver_all();
    let unreachable = LedgerEvent::DeviceUnreachable {
        msg: dropped,
        device: P,
    };
    assert_eq!(p.count(|e| *e == unreachable), 1);
    p.set_enlisted(UP, true);
    let m = p.send(A, UP);
    p.deliver_all();
    shown_at_once(&p, m, 1);
}

#[test]
fn without_a_switch_on_a_gap_is_held_as_before() {
    let mut p = interop();
    let dropped = p.send(A, UP);
    p.deliver();
    p.set_enlisted(UA, false); // the sender switches off: the queued copy bounces
    p.deliver_all();
    assert_eq!(p.shown_msgs(P), vec![]);
    p.set_enlisted(UA, true); // P did not switch: its stream still waits for number 0
    let m = p.send(A, UP);
    p.deliver_all();
    assert!(dropped < m);
    assert!(p.timer(dev(P), TimerKind::ReorderRelease).is_some());
    assert!(p.shown_msgs(P).is_empty());
}
