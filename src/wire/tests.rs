//! The wire types' own invariants: ledger ids of member copies, what a submission counts.
use super::*;

fn ct(len: u32) -> Ciphertext {
    Ciphertext {
        len,
        ..Ciphertext::default()
    }
}

fn submission(payload: Payload) -> Submission {
    Submission {
        msg: MsgId(40),
        from_user: UserId(1),
        from_device: DeviceId(1),
        to_user: UserId(2),
        seq: 0,
        sent_at: SimTime::ZERO,
        payload,
    }
}

#[test]
fn a_member_copy_has_a_ledger_id_of_its_own() {
    assert_eq!(CopyId::direct(MsgId(40)).ledger_id(), MsgId(40));
    let third = CopyId {
        msg: MsgId(40),
        member: 2,
    };
    assert_eq!(third.ledger_id(), MsgId(42));
}

#[test]
fn a_submission_counts_every_ciphertext_it_carries() {
    let direct = submission(Payload::Direct(smallvec::smallvec![
        (DeviceId(2), ct(10)),
        (DeviceId(3), ct(20)),
    ]));
    assert_eq!(direct.payload_len(), 30);
    assert_eq!((direct.resend_key(), direct.device()), (0, DeviceId(1)));
    let group = submission(Payload::Group(Box::new(GroupPayload {
        group: GroupId(0),
        hub: ProviderId(0),
        shared: ct(100),
        distributions: vec![(DeviceId(2), ct(7))],
        members: vec![(UserId(2), 0), (UserId(3), 4)].into(),
    })));
    assert_eq!(group.payload_len(), 107);
    assert_eq!(group.copy_id(), CopyId::direct(MsgId(40)));
    let resend = submission(Payload::Resend(Box::new(Resend {
        attempt: 2,
        member: 1,
        device: DeviceId(5),
        ciphertext: ct(100),
        group: Some(GroupId(0)),
        key_distribution: Some(Box::new(ct(7))),
    })));
    assert_eq!(resend.payload_len(), 107);
    assert_eq!(resend.copy_id().ledger_id(), MsgId(41));
    assert_eq!(resend.resend_key(), (2 << 24) | 6);
    assert_eq!(resend.dedup_key(), (41, (2 << 24) | 6));
    assert_eq!(resend.device(), DeviceId(5));
    let frame = Frame::Submit(Box::new(resend));
    assert_eq!(frame.wire_bytes(), ENVELOPE_OVERHEAD_BYTES + 107);
    assert_eq!(frame.msg(), Some(MsgId(41)));
}
