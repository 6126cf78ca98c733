//! Round trips and refusals of the live wire format.

use super::*;

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
        payload: Payload::Direct(vec![(DeviceId(4), ciphertext(bytes))]),
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

#[test]
fn every_frame_kind_round_trips() {
    let (copy, device, user) = (CopyId::direct(MsgId(1)), DeviceId(2), UserId(3));
    let msg = copy.msg;
    let frames = vec![
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
