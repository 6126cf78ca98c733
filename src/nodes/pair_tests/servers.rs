//! Forwarding by the servers: the hub refuses what may not cross, reaches partner devices
//! through the gateway (and wakes them through their partner server), drops what the gateway
//! bounces, sends sync copies and receipts to the sender's devices and fans a group message
//! out; a partner server carries its native chats; the adapter carries a proxied partner's
//! traffic both ways.

use super::*;
use crate::metrics::LedgerEvent;
use crate::nodes::pair::{Kind, PartnerLink, Setup};
use crate::wire::{GroupId, MsgId, ProviderId, ReceiptKind};

const PARTNER: ProviderId = ProviderId(1);
const PS: Addr = Addr::PartnerServer(PARTNER);
const GW: Addr = Addr::Gateway;

/// In the interop setups below: `A` of gatekeeper user `UA`, and the partner's first device
/// and user.
const P: DeviceId = DeviceId(1);
const UP: UserId = UserId(1);

/// `A` and a partner device `P` (linked by `link`), both connected, with every server.
fn interop(link: PartnerLink) -> Pair {
    let s = Setup::interop(&[1], &[1], link);
    let front = match link {
        PartnerLink::Direct => vec![],
        PartnerLink::Proxied => vec![Addr::Adapter(PARTNER)],
    };
    let mut nodes = vec![dev(A), dev(P), HUB, GW, PS];
    nodes.extend(front);
    let mut p = s.build(&nodes);
    p.connect(&[A, P]);
    assert!(
        p.timers_of(dev(P)).is_empty(),
        "P is connected to both its servers"
    );
    p
}

fn path(p: &Pair, since: crate::nodes::pair::Mark, msg: MsgId) -> Vec<(Kind, Addr, Addr)> {
    p.sent_since(since)
        .iter()
        .filter(|h| h.msg() == Some(msg))
        .map(|h| (h.kind(), h.from, h.to))
        .collect()
}

#[test]
fn a_message_to_a_user_without_third_party_chats_is_refused() {
    let mut s = Setup::interop(&[1], &[1], PartnerLink::Direct);
    s.enlisted[UP.index()] = false;
    let mut p = s.build(&[dev(A), HUB]);
    p.connect(&[A]);
    let m = p.send(A, UP);
    let hub = p.deliver();
    let sent: Vec<_> = hub.sent.iter().map(|h| (h.kind(), h.to)).collect();
    assert_eq!(sent, vec![(Kind::Refused, dev(A))]);
    let back = p.deliver();
    assert_eq!(
        back.events,
        vec![LedgerEvent::Refused {
            msg: m,
            to_user: UP
        }]
    );
    assert_eq!(p.outbox_len(A), 0, "refused for good: no retry");
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn the_hub_reaches_a_partner_device_through_the_gateway_and_hears_back_the_same_way() {
    let mut p = interop(PartnerLink::Direct);
    let mark = p.mark();
    let m = p.send(A, UP);
    p.deliver_all();
    assert_eq!(
        path(&p, mark, m),
        vec![
            (Kind::Submit, dev(A), HUB),
            (Kind::Deliver, HUB, GW),
            (Kind::SubmitAck, HUB, dev(A)),
            (Kind::Deliver, GW, dev(P)),
            (Kind::DeliverAck, dev(P), GW),
            (Kind::DeliverAck, GW, HUB),
        ]
    );
    assert_eq!(p.count(|e| *e == LedgerEvent::CrossedGateway { msg: m }), 1);
    assert_eq!(p.shown_msgs(P), vec![m]);
    assert_eq!(p.queued(HUB), 0);
}

#[test]
fn an_offline_partner_device_is_woken_through_its_partner_server() {
    let s = Setup::interop(&[1], &[1], PartnerLink::Direct);
    let mut p = s.build(&[dev(A), dev(P), HUB, GW, PS]);
    p.connect(&[A]);
    let mark = p.mark();
    let m = p.send(A, UP);
    p.deliver_all();
    let wake: Vec<_> = p
        .sent_since(mark)
        .iter()
        .filter(|h| h.is(Kind::PushRequest) || h.is(Kind::Push))
        .map(|h| (h.kind(), h.from, h.to))
        .collect();
    assert_eq!(
        wake,
        vec![
            (Kind::PushRequest, HUB, GW),
            (Kind::PushRequest, GW, PS),
            (Kind::Push, PS, dev(P)),
        ]
    );
    assert_eq!(p.pushes_sent(PARTNER), 1);
    assert_eq!(p.shown_msgs(P), vec![m]);
}

#[test]
fn a_copy_the_gateway_bounces_is_dropped_as_unreachable() {
    let mut p = interop(PartnerLink::Direct);
    let m = p.send(A, UP);
    p.deliver(); // the hub sends the copy to the gateway
    p.set_enlisted(UP, false); // P switches third-party chats off meanwhile
    let gw = p.deliver();
    let sent: Vec<_> = gw.sent.iter().map(|h| (h.kind(), h.to)).collect();
    assert_eq!(sent, vec![(Kind::Bounced, HUB)]);
    p.deliver_all();
    let unreachable = LedgerEvent::DeviceUnreachable { msg: m, device: P };
    assert_eq!(p.count(|e| *e == unreachable), 1);
    assert_eq!(p.queued(HUB), 0);
    assert_eq!(p.gateway_counts().2, 1);
    assert!(p.shown_msgs(P).is_empty());
}

#[test]
fn the_gateway_refuses_a_partner_submission_when_a_side_has_not_enlisted() {
    let mut s = Setup::interop(&[1], &[1], PartnerLink::Direct);
    s.enlisted[UA.index()] = false;
    let mut p = s.build(&[dev(A), dev(P), HUB, GW, PS]);
    p.connect(&[A, P]);
    let m = p.send(P, UA);
    let gw = p.deliver();
    assert_eq!(gw.node, GW);
    let sent: Vec<_> = gw.sent.iter().map(|h| (h.kind(), h.to)).collect();
    assert_eq!(sent, vec![(Kind::Refused, dev(P))]);
    p.deliver_all();
    assert_eq!(
        p.count(|e| *e
            == LedgerEvent::Refused {
                msg: m,
                to_user: UA
            }),
        1
    );
    assert_eq!(p.outbox_len(P), 0);
    assert!(
        p.sent(Kind::Submit).iter().all(|h| h.to == GW),
        "the hub never saw it"
    );
}

#[test]
fn sync_copies_reach_the_senders_other_devices() {
    // User 0 has A and B; user 1 has C.
    let mut p = Setup::gatekeeper(&[2, 1]).build(&[dev(A), dev(B), dev(C), HUB]);
    p.connect(&[A, B, C]);
    let m = p.send(A, UserId(1));
    let hub = p.deliver();
    let copies: Vec<_> = hub.sent(Kind::Deliver).iter().map(|h| h.to).collect();
    assert_eq!(copies, vec![dev(C), dev(B)]);
    assert_eq!(
        hub.events,
        vec![LedgerEvent::Accepted {
            msg: m,
            devices: 0b1,
            sync: 0b10
        }]
    );
    p.deliver_all();
    assert_eq!((p.shown_msgs(C), p.shown_msgs(B)), (vec![m], vec![m]));
}

#[test]
fn a_read_receipt_reaches_the_senders_connected_devices_only() {
    let mut p = Setup::gatekeeper(&[2, 1]).build(&[dev(A), dev(B), dev(C), HUB]);
    p.connect(&[A, C]);
    p.lose(|h| h.is(Kind::Push)); // B stays offline
    let m = p.send(A, UserId(1));
    p.deliver_all();
    let read = p.read(C, m, UA);
    assert_eq!(read.events, vec![LedgerEvent::Read { msg: m }]);
    let hub = p.deliver();
    let to: Vec<_> = hub.sent(Kind::Receipt).iter().map(|h| h.to).collect();
    assert_eq!(to, vec![dev(A)], "B is offline: best effort");
    let seen = p.deliver();
    assert_eq!(
        seen.events,
        vec![LedgerEvent::ReceiptSeen {
            msg: m,
            kind: ReceiptKind::Read,
            device: A
        }]
    );
}

#[test]
fn a_group_message_fans_out_with_one_id_per_member() {
    let mut p = Setup::gatekeeper(&[1, 1, 1]).build(&[dev(A), dev(B), dev(C), HUB]);
    p.connect(&[A, B, C]);
    let m = p.send_group(A, GroupId(0), &[UB, UC]);
    let hub = p.deliver();
    let copies: Vec<_> = hub
        .sent(Kind::Deliver)
        .iter()
        .map(|h| (h.to, h.msg(), h.seq()))
        .collect();
    let second = MsgId(m.0 + 1);
    assert_eq!(
        copies,
        vec![(dev(B), Some(m), Some(0)), (dev(C), Some(second), Some(0))]
    );
    let accepted: Vec<_> = hub
        .events
        .iter()
        .filter_map(|e| match e {
            LedgerEvent::Accepted { msg, .. } => Some(*msg),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, vec![m, second]);
    p.deliver_all();
    assert_eq!((p.shown_msgs(B), p.shown_msgs(C)), (vec![m], vec![second]));
}

#[test]
fn a_partner_server_carries_its_native_chats_alone() {
    // Partner users 1 and 2 (devices 1 and 2) write to each other.
    let s = Setup::interop(&[1], &[1, 1], PartnerLink::Direct);
    let (p1, p2) = (DeviceId(1), DeviceId(2));
    let mut p = s.build(&[dev(p1), dev(p2), HUB, GW, PS]);
    p.connect(&[p1, p2]);
    let mark = p.mark();
    let m = p.send(p1, UserId(2));
    p.deliver_all();
    assert_eq!(
        path(&p, mark, m),
        vec![
            (Kind::Submit, dev(p1), PS),
            (Kind::Deliver, PS, dev(p2)),
            (Kind::SubmitAck, PS, dev(p1)),
            (Kind::DeliverAck, dev(p2), PS),
        ]
    );
    assert_eq!(p.shown_msgs(p2), vec![m]);
    assert_eq!(p.queued(PS), 0);
    assert_eq!(
        p.count(|e| matches!(e, LedgerEvent::CrossedGateway { .. })),
        0
    );
}

#[test]
fn a_partner_server_pushes_its_offline_device_and_drains_on_connect() {
    let s = Setup::interop(&[1], &[1, 1], PartnerLink::Direct);
    let (p1, p2) = (DeviceId(1), DeviceId(2));
    let mut p = s.build(&[dev(p1), dev(p2), HUB, GW, PS]);
    p.connect(&[p1]);
    let (m1, m2) = (p.send(p1, UserId(2)), p.send(p1, UserId(2)));
    let submit = p.deliver();
    assert_eq!(submit.count(Kind::Push), 1);
    assert!(submit.events.contains(&LedgerEvent::StoredOffline {
        msg: m1,
        device: p2
    }));
    p.deliver_all();
    assert_eq!(p.pushes_sent(PARTNER), 1, "one push for the backlog");
    assert_eq!(p.shown_msgs(p2), vec![m1, m2]);
    assert_eq!(p.queued(PS), 0);
}

#[test]
fn the_adapter_carries_a_proxied_partners_traffic_both_ways() {
    let mut p = interop(PartnerLink::Proxied);
    let connected = p.adapter_counts(PARTNER);
    assert_eq!(connected, (1, 1), "the Connect up, its ack down");
    let mark = p.mark();
    let m = p.send(A, UP);
    p.deliver_all();
    let reply = p.send(P, UA);
    p.deliver_all();
    let down: Vec<_> = path(&p, mark, m)
        .into_iter()
        .filter(|(k, _, _)| *k == Kind::Deliver)
        .collect();
    let adapter = Addr::Adapter(PARTNER);
    assert_eq!(
        down,
        vec![
            (Kind::Deliver, HUB, GW),
            (Kind::Deliver, GW, adapter),
            (Kind::Deliver, adapter, dev(P)),
        ]
    );
    let up: Vec<_> = path(&p, mark, reply)
        .into_iter()
        .filter(|(k, _, _)| *k == Kind::Submit)
        .collect();
    assert_eq!(
        up,
        vec![
            (Kind::Submit, dev(P), adapter),
            (Kind::Submit, adapter, GW),
            (Kind::Submit, GW, HUB),
        ]
    );
    // Up: the ack of `m` and the reply; down: `m` and the reply's SubmitAck.
    assert_eq!(p.adapter_counts(PARTNER), (3, 3));
    assert_eq!((p.shown_msgs(P), p.shown_msgs(A)), (vec![m], vec![reply]));
}
