//! Backpressure across the gateway (`Gateway::admit`, `Mailbox::throttle`, the device's
//! `Throttle`): the per-partner shaper delays a burst, then refuses and throttles the device;
//! a throttled device's later frames are refused too; the device and the hub hold off until
//! the throttle ends and then resend in order.

use super::*;
use crate::nodes::pair::{Kind, PartnerLink, Setup, S};
use crate::nodes::TimerKind;
use crate::wire::{CopyId, Frame, MsgId};

const GW: Addr = Addr::Gateway;

/// Eight partner devices (1 to 8) each write one message to gatekeeper user 0 at once, with
/// a rate limit of one message a second per partner (and a second of burst); the gateway has
/// handled the eight Submits. Returns the gateway's reactions, in order.
fn burst() -> (Pair, Vec<crate::nodes::pair::Reaction>) {
    let mut s = Setup::interop(&[1], &[1; 8], PartnerLink::Direct);
    s.rate_limit_per_partner = Some(1.0);
    let partners: Vec<DeviceId> = (1..=8).map(DeviceId).collect();
    let mut nodes: Vec<Addr> = partners.iter().map(|&d| dev(d)).collect();
    nodes.extend([HUB, GW, Addr::PartnerServer(crate::wire::ProviderId(1))]);
    let mut p = s.build(&nodes);
    p.connect(&partners);
    for &d in &partners {
        p.send(d, UA);
    }
    let reactions = (0..8).map(|_| p.deliver()).collect();
    (p, reactions)
}

#[test]
fn the_gateway_shapes_a_partners_burst_then_throttles_the_device() {
    let (p, reactions) = burst();
    let what: Vec<_> = reactions
        .iter()
        .map(|r| {
            assert_eq!((r.node, r.sent.len()), (GW, 1));
            let h = &r.sent[0];
            (h.kind(), h.to, h.at.as_nanos() / S)
        })
        .collect();
    let mut expected: Vec<_> = (0..7).map(|i| (Kind::Submit, HUB, i.max(1) - 1)).collect();
    expected.push((Kind::Throttle, dev(DeviceId(8)), 0));
    assert_eq!(
        what, expected,
        "two at once, five delayed 1 to 5 s, the eighth refused"
    );
    assert_eq!(reactions[7].sent[0].until(), Some(secs(2)));
    assert_eq!(
        p.gateway_counts(),
        (5, 1, 0),
        "(shaped, rate limited, refused)"
    );
}

#[test]
fn a_throttled_devices_next_submission_is_refused_until_the_throttle_ends() {
    let (mut p, _) = burst();
    let d8 = DeviceId(8);
    p.drop_where(|h| h.to == dev(d8)); // the Throttle is lost: d8 retries at 1 s
    p.run_until(secs(1));
    let throttles: Vec<_> = p
        .sent(Kind::Throttle)
        .iter()
        .filter(|h| h.device() == Some(d8))
        .map(|h| (h.sent_at, h.until()))
        .collect();
    assert_eq!(
        throttles,
        vec![(secs(0), Some(secs(2))), (secs(1), Some(secs(2)))],
        "refused again, the throttle not extended"
    );
    let crossed = p
        .sent(Kind::Submit)
        .iter()
        .any(|h| h.from == GW && h.device() == Some(d8));
    assert!(!crossed);
}

#[test]
fn a_throttled_device_holds_its_outbox_until_the_throttle_ends() {
    let s = Setup::interop(&[1], &[1], PartnerLink::Direct);
    let pd = DeviceId(1);
    let mut p = s.build(&[
        dev(pd),
        HUB,
        GW,
        Addr::PartnerServer(crate::wire::ProviderId(1)),
    ]);
    p.connect(&[pd]);
    let (m1, m2) = (p.send(pd, UA), p.send(pd, UA));
    while !p.in_flight()[0].is(Kind::SubmitAck) || p.in_flight()[0].to != dev(pd) {
        p.deliver();
    }
    let until = secs(2);
    p.inject(GW, dev(pd), Frame::Throttle { device: pd, until });
    p.swap_next(); // the Throttle first
    let throttle = p.deliver();
    assert_eq!(throttle.armed, vec![(until, TimerKind::OutboxRetry)]);
    let ack = p.deliver();
    assert_eq!(ack.node, dev(pd));
    assert!(ack.sent.is_empty(), "throttled: the next message waits");
    p.run_until(until);
    let submits: Vec<(MsgId, _)> = p
        .sent(Kind::Submit)
        .iter()
        .filter(|h| h.from == dev(pd))
        .map(|h| (h.msg().expect("a message"), h.sent_at))
        .collect();
    assert_eq!(
        submits,
        vec![(m1, secs(0)), (m2, until)],
        "not at 1 s, when the retry was first due"
    );
}

#[test]
fn the_hub_holds_a_throttled_device_off_and_resends_its_window_in_order() {
    // Gatekeeper users 0 and 1 (A, B) write to partner user 2 (device 2), whose gateway and
    // device are played by the test.
    let s = Setup::interop(&[1, 1], &[1], PartnerLink::Direct);
    let pd = DeviceId(2);
    let mut p = s.build(&[dev(A), dev(B), HUB]);
    p.connect(&[A, B]);
    p.inject(
        GW,
        HUB,
        Frame::Connect {
            device: pd,
            epoch: 1,
        },
    );
    p.deliver();
    let a0 = p.send(A, UserId(2));
    p.deliver_all();
    assert!(p
        .outside()
        .iter()
        .any(|h| h.is_for(Kind::Deliver, a0) && h.to == GW));
    let until = secs(2);
    p.inject(GW, HUB, Frame::Throttle { device: pd, until });
    let throttle = p.deliver();
    assert_eq!(throttle.armed, vec![(until, TimerKind::Redeliver(pd))]);
    let b0 = p.send(B, UserId(2));
    let held = p.deliver();
    assert_eq!(held.node, HUB);
    assert_eq!(held.count(Kind::Deliver), 0, "paused");
    p.deliver_all();
    p.run_until(secs(1)); // the redelivery first armed for 1 s finds the pause
    assert!(p.sent(Kind::Deliver).iter().all(|h| h.msg() == Some(a0)));
    assert_eq!(p.sent_count(Kind::Deliver), 1);
    let resume = p.fire_timer();
    assert_eq!((resume.node, p.now()), (HUB, until));
    let resent: Vec<_> = resume.sent(Kind::Deliver).iter().map(|h| h.msg()).collect();
    assert_eq!(resent, vec![Some(a0), Some(b0)], "in queue order");
}

/// After a throttle ends, the copies the redelivery timer resent are in flight: the next ack
/// does not send them again (it did: a duplicate Deliver across the gateway that spent the
/// partner's rate).
#[test]
fn copies_resent_after_a_throttle_are_not_sent_again_by_the_next_ack() {
    let s = Setup::interop(&[1, 1], &[1], PartnerLink::Direct);
    let pd = DeviceId(2);
    let mut p = s.build(&[dev(A), dev(B), HUB]);
    p.connect(&[A, B]);
    p.inject(
        GW,
        HUB,
        Frame::Connect {
            device: pd,
            epoch: 1,
        },
    );
    p.deliver();
    let a0 = p.send(A, UserId(2));
    p.deliver_all();
    p.inject(
        GW,
        HUB,
        Frame::Throttle {
            device: pd,
            until: secs(2),
        },
    );
    p.deliver();
    let b0 = p.send(B, UserId(2));
    p.deliver_all();
    p.run_until(secs(2)); // the throttle ends: a0 and b0 go out again
    assert_eq!(p.sent_count(Kind::Deliver), 3);
    let ack = Frame::DeliverAck {
        copy: CopyId::direct(a0),
        device: pd,
        from_user: UA,
        to_user: UserId(2),
    };
    p.inject(GW, HUB, ack);
    let acked = p.deliver();
    let again: Vec<_> = acked.sent(Kind::Deliver).iter().map(|h| h.msg()).collect();
    assert!(
        !again.contains(&Some(b0)),
        "b0 is in flight already: {again:?}"
    );
}
