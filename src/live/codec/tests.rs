//! Round trips and refusals of the live wire format.

use super::*;
use crate::wire::{BlobId, GroupId, GroupPayload, MsgId, ProviderId, UserId};

fn ciphertext(bytes: Option<&[u8]>) -> Ciphertext {
    Ciphertext {
        len: 9,
        bytes: bytes.map(|b| b.to_vec().into_boxed_slice()),
        seal: Default::default(),
    }
}

fn submission(bytes: Option<&[u8]>) -> Submission {
    Submission {
        msg: MsgId(7),
        from_user: UserId(1),
        from_device: DeviceId(2),
        to_user: UserId(3),
        seq: 5,
        sent_at: SimTime::from_nanos(6),
        payload: Payload::Direct(smallvec::smallvec![(DeviceId(4), ciphertext(bytes))]),
    }
}

fn delivery(bytes: Option<&[u8]>) -> Delivery {
    Delivery {
        copy: CopyId::direct(MsgId(7)),
        from_user: UserId(1),
        from_device: DeviceId(2),
        to_user: UserId(3),
        to_device: DeviceId(4),
        seq: 5,
        retry: 0,
        sent_at: SimTime::from_nanos(6),
        ciphertext: ciphertext(bytes),
        group: None,
        key_distribution: None,
    }
}

fn group_submission() -> Submission {
    Submission {
        payload: Payload::Group(Box::new(GroupPayload {
            group: GroupId(11),
            hub: crate::wire::ProviderId(0),
            shared: ciphertext(Some(b"sender key message")),
            distributions: vec![
                (DeviceId(4), ciphertext(Some(b"skdm for 4"))),
                (DeviceId(8), ciphertext(None)),
            ],
            members: vec![(UserId(3), 0), (UserId(7), 12), (UserId(9), u32::MAX)].into(),
        })),
        ..submission(None)
    }
}

fn group_delivery(distribution: bool) -> Delivery {
    Delivery {
        copy: CopyId {
            msg: MsgId(7),
            member: 2,
        },
        group: Some(GroupId(11)),
        key_distribution: distribution.then(|| Box::new(ciphertext(Some(b"skdm")))),
        ..delivery(Some(b"sender key message"))
    }
}

#[test]
fn every_frame_kind_round_trips() {
    let (copy, device, user) = (CopyId::direct(MsgId(1)), DeviceId(2), UserId(3));
    let member = CopyId {
        msg: MsgId(1),
        member: 40,
    };
    let msg = copy.msg;
    let frames = vec![
        Frame::Submit(Box::new(group_submission())),
        Frame::Deliver(Box::new(group_delivery(true))),
        Frame::Deliver(Box::new(group_delivery(false))),
        Frame::DeliverAck {
            copy: member,
            device,
            from_user: user,
            to_user: UserId(9),
        },
        Frame::Submit(Box::new(submission(Some(b"abc")))),
        Frame::Submit(Box::new(submission(None))),
        Frame::Deliver(Box::new(delivery(None))),
        Frame::Deliver(Box::new(delivery(Some(b"xyz")))),
        Frame::SubmitAck {
            copy,
            device,
            resend: 0,
        },
        Frame::RetryReceipt {
            copy,
            requester: device,
            sender: device,
            sender_user: user,
            attempt: 2,
        },
        Frame::Refused {
            copy,
            device,
            to_user: user,
            reason: Refusal::Unreachable,
        },
        Frame::DeliverAck {
            copy,
            device,
            from_user: user,
            to_user: UserId(9),
        },
        Frame::Connect { device, epoch: 3 },
        Frame::ConnectAck { device, epoch: 3 },
        Frame::Disconnect { device, epoch: 3 },
        Frame::PushRequest { device },
        Frame::Push { device },
        Frame::Bounced { copy, device },
        Frame::Throttle {
            device,
            until: SimTime::from_secs(2),
        },
        Frame::Receipt {
            msg,
            kind: ReceiptKind::Read,
            from_user: user,
            to_user: user,
            to_device: None,
        },
    ];
    let blob = BlobId(77);
    let media = [
        MediaFrame::Upload {
            blob,
            device,
            attempt: 1,
            len: 5_000,
            fetches: 3,
        },
        MediaFrame::UploadAck {
            blob,
            device,
            attempt: 1,
        },
        MediaFrame::Fetch {
            blob,
            host: ProviderId(2),
            device,
            attempt: 0,
        },
        MediaFrame::Data {
            blob,
            device,
            attempt: 0,
            len: 5_000,
        },
        MediaFrame::Error {
            blob,
            device,
            attempt: 7,
        },
        MediaFrame::Delete { blob, device },
    ];
    let frames: Vec<Frame> = frames
        .into_iter()
        .chain(media.into_iter().map(Frame::Media))
        .collect();
    let mut buf = Vec::new();
    let recs: Vec<Record> = frames
        .into_iter()
        .map(|frame| Record {
            from: Addr::Device(DeviceId(1)),
            to: Addr::Adapter(ProviderId(2)),
            frame,
        })
        .collect();
    for r in &recs {
        encode(r, &mut buf);
    }
    let mut at = 0;
    for r in &recs {
        let (got, used) = decode(&buf[at..]).unwrap().unwrap();
        assert_eq!(&got, r);
        at += used;
    }
    assert_eq!(at, buf.len());
    assert_eq!(decode(&buf[..3]), Ok(None));
}

proptest::proptest! {
    /// Any bytes: records decode off the front or an error says why, never a panic, and each
    /// decoded record re-encodes to its bytes (the format is canonical; `fuzzing::codec`).
    #[test]
    fn arbitrary_bytes_decode_to_records_that_re_encode(bytes in crate::fuzzing::inputs("codec")) {
        crate::fuzzing::codec(&bytes);
    }
}

/// Regression (cargo-fuzz `codec`, fuzz/artifacts crash-4f365f8d): a length prefix of 16 over a
/// 15-byte Push record decoded, the extra byte ignored, so the record re-encoded to 19 bytes, not
/// 20. A record's length now covers its fields exactly.
#[test]
fn group_counts_over_the_bound_and_unknown_flags_are_refused() {
    let mut g = group_submission();
    if let Payload::Group(p) = &mut g.payload {
        p.members = vec![(UserId(1), 0); GROUP_MEMBERS_MAX as usize].into();
    }
    let rec = |frame| Record {
        from: Addr::Device(DeviceId(2)),
        to: Addr::ChatServer,
        frame,
    };
    let mut out = Vec::new();
    encode(&rec(Frame::Submit(Box::new(g))), &mut out);
    assert!(
        decode(&out).is_ok_and(|r| r.is_some()),
        "the bound itself passes"
    );
    // One more member than the bound: the count field is the last u32 before the members.
    let count_at = out.len() - 8 * GROUP_MEMBERS_MAX as usize - 4;
    out[count_at..count_at + 4].copy_from_slice(&(GROUP_MEMBERS_MAX + 1).to_le_bytes());
    assert_eq!(
        decode(&out),
        Err(CodecError::Count {
            what: "group members",
            n: GROUP_MEMBERS_MAX + 1
        })
    );
    let mut out = Vec::new();
    encode(
        &rec(Frame::Deliver(Box::new(group_delivery(false)))),
        &mut out,
    );
    *out.last_mut()
        .expect("a delivery ends with its distribution flag") = 2;
    assert_eq!(
        decode(&out),
        Err(CodecError::Tag {
            what: "key distribution flag",
            tag: 2
        })
    );
}

#[test]
fn regression_trailing_bytes_in_a_record_are_refused() {
    let bytes = [
        16, 0, 0, 0, 5, 5, 5, 65, 0, 5, 5, 5, 69, 68, 11, 0, 0, 0, 0, 0,
    ];
    assert_eq!(decode(&bytes), Err(CodecError::Trailing(1)));
}

/// Regression (cargo-fuzz `codec`, crash-2de223ca): the gateway's address (tag 3) carried id
/// 0x40000 and decoded as `Addr::Gateway`, which encodes with id 0.
#[test]
fn regression_one_of_a_kind_address_with_an_id_is_refused() {
    let bytes = [
        15, 0, 0, 0, 1, 1, 206, 43, 0, 3, 0, 0, 4, 0, 8, 0, 0, 0, 15, 0,
    ];
    assert_eq!(
        decode(&bytes),
        Err(CodecError::NotZero {
            what: "id of a one-of-a-kind address",
            value: 0x40000
        })
    );
}

/// Regression (cargo-fuzz `codec`, crash-f67b7ab0): receipt kind byte 9 decoded as Delivered,
/// which encodes as 0.
#[test]
fn regression_unknown_receipt_kind_is_refused() {
    let bytes = [
        49, 0, 0, 0, 5, 5, 5, 5, 82, 5, 91, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
        9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 5, 5,
        5, 4, 1, 0, 69, 254, 4, 26, 246, 155,
    ];
    assert_eq!(
        decode(&bytes),
        Err(CodecError::Tag {
            what: "receipt kind",
            tag: 9
        })
    );
}

/// Found while reading the decoder for the three above (not by the fuzzer): a media delete's
/// attempt byte was read and dropped, so attempt 3 re-encoded as 0.
#[test]
fn media_delete_with_an_attempt_is_refused() {
    let rec = Record {
        from: Addr::Device(DeviceId(1)),
        to: Addr::MediaProxy,
        frame: Frame::Media(MediaFrame::Delete {
            blob: BlobId(5),
            device: DeviceId(1),
        }),
    };
    let mut bytes = Vec::new();
    encode(&rec, &mut bytes);
    assert_eq!(decode(&bytes), Ok(Some((rec, bytes.len()))));
    let attempt_at = bytes.len() - 1;
    assert_eq!(
        bytes[attempt_at], 0,
        "the attempt is the delete's last byte"
    );
    bytes[attempt_at] = 3;
    assert_eq!(
        decode(&bytes),
        Err(CodecError::NotZero {
            what: "attempt of a media delete",
            value: 3
        })
    );
}
