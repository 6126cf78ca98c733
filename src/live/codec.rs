//! The live wire format: how a [`Frame`] travels between live tasks over TCP. One record is
//! `u32 length || from || to || frame`, little endian, with the ciphertext as opaque bytes; the
//! envelope's routing fields are all a server can read (metadata isolation holds on the wire as
//! it does in the type). Several records go in one write (and in one Noise message).

use crate::engine::SimTime;
use crate::nodes::Addr;
use crate::wire::{
    BlobId, Ciphertext, DeviceId, Envelope, Frame, MediaFrame, MsgId, ProviderId, ReceiptKind,
    Refusal, UserId,
};

/// Bound on one encoded record; a larger length prefix is a protocol error.
pub const RECORD_MAX_BYTES: usize = 60_000;

/// Why bytes did not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("record truncated")]
    Truncated,
    #[error("record of {0} bytes is over the bound")]
    TooLong(usize),
    #[error("unknown {what} tag {tag}")]
    Tag { what: &'static str, tag: u8 },
}

/// A frame with its hop: who sent it and to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub from: Addr,
    pub to: Addr,
    pub frame: Frame,
}

/// The device id of a hello record: a dialer's first record, which only introduces it (its
/// `from`) so that the accepting task can route to it before it sends anything else.
pub const HELLO_DEVICE: DeviceId = DeviceId(u32::MAX);

pub fn hello(from: Addr, to: Addr) -> Record {
    Record {
        from,
        to,
        frame: Frame::Disconnect {
            device: HELLO_DEVICE,
            epoch: 0,
        },
    }
}

pub fn is_hello(r: &Record) -> bool {
    matches!(r.frame, Frame::Disconnect { device, .. } if device == HELLO_DEVICE)
}

/// Appends one record (length-prefixed) to `out`.
pub fn encode(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    put_addr(out, rec.from);
    put_addr(out, rec.to);
    put_frame(out, &rec.frame);
    let len = (out.len() - start - 4) as u32;
    debug_assert!((len as usize) <= RECORD_MAX_BYTES, "record over the bound");
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Splits one record off the front of `buf`: `Ok(None)` when more bytes are needed.
pub fn decode(buf: &[u8]) -> Result<Option<(Record, usize)>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > RECORD_MAX_BYTES {
        return Err(CodecError::TooLong(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let mut r = Reader(&buf[4..4 + len]);
    let from = r.addr()?;
    let to = r.addr()?;
    let frame = r.frame()?;
    Ok(Some((Record { from, to, frame }, 4 + len)))
}

fn put_addr(out: &mut Vec<u8>, a: Addr) {
    let (tag, id) = match a {
        Addr::Device(d) => (1, d.0),
        Addr::ChatServer => (2, 0),
        Addr::Gateway => (3, 0),
        Addr::Adapter(p) => (4, p.0),
        Addr::PartnerServer(p) => (5, p.0),
        Addr::MediaStore(p) => (6, p.0),
        Addr::MediaProxy => (7, 0),
    };
    out.push(tag);
    out.extend_from_slice(&id.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_envelope(out: &mut Vec<u8>, e: &Envelope) {
    put_u64(out, e.msg.0);
    put_u32(out, e.from_user.0);
    put_u32(out, e.from_device.0);
    put_u32(out, e.to_user.0);
    put_u32(out, e.to_device.map_or(u32::MAX, |d| d.0));
    put_u32(out, e.seq);
    put_u64(out, e.sent_at.as_nanos());
    put_u32(out, e.ciphertext.len);
    match &e.ciphertext.bytes {
        Some(b) => {
            put_u32(out, b.len() as u32);
            out.extend_from_slice(b);
        }
        None => put_u32(out, u32::MAX),
    }
}

fn put_frame(out: &mut Vec<u8>, f: &Frame) {
    out.push(f.kind_code() as u8);
    match f {
        Frame::Submit(e) | Frame::Deliver(e) => put_envelope(out, e),
        Frame::SubmitAck { msg, device, .. } | Frame::Bounced { msg, device } => {
            put_u64(out, msg.0);
            put_u32(out, device.0);
        }
        Frame::Refused {
            msg,
            device,
            to_user,
            reason: Refusal::Unreachable,
        } => {
            put_u64(out, msg.0);
            put_u32(out, device.0);
            put_u32(out, to_user.0);
        }
        Frame::DeliverAck {
            msg,
            device,
            from_user,
            to_user,
        } => {
            put_u64(out, msg.0);
            put_u32(out, device.0);
            put_u32(out, from_user.0);
            put_u32(out, to_user.0);
        }
        Frame::Connect { device, epoch }
        | Frame::ConnectAck { device, epoch }
        | Frame::Disconnect { device, epoch } => {
            put_u32(out, device.0);
            put_u32(out, *epoch);
        }
        Frame::PushRequest { device } | Frame::Push { device } => put_u32(out, device.0),
        Frame::Throttle { device, until } => {
            put_u32(out, device.0);
            put_u64(out, until.as_nanos());
        }
        Frame::RetryReceipt {
            msg,
            requester,
            sender,
            sender_user,
            attempt,
        } => {
            put_u64(out, msg.0);
            put_u32(out, requester.0);
            put_u32(out, sender.0);
            put_u32(out, sender_user.0);
            out.push(*attempt);
        }
        Frame::Receipt {
            msg,
            kind,
            from_user,
            to_user,
            to_device,
        } => {
            put_u64(out, msg.0);
            out.push(matches!(kind, ReceiptKind::Read) as u8);
            put_u32(out, from_user.0);
            put_u32(out, to_user.0);
            put_u32(out, to_device.map_or(u32::MAX, |d| d.0));
        }
        Frame::Media(m) => put_media(out, m),
    }
}

/// A media frame: its kind, the fields every kind has, then the kind's own.
fn put_media(out: &mut Vec<u8>, m: &MediaFrame) {
    out.push(m.kind_code());
    put_u64(out, m.blob().0);
    put_u32(out, m.device().0);
    out.push(m.attempt());
    match *m {
        MediaFrame::Upload { len, fetches, .. } => {
            put_u32(out, len);
            out.push(fetches);
        }
        MediaFrame::Fetch { host, .. } => put_u32(out, host.0),
        MediaFrame::Data { len, .. } => put_u32(out, len),
        MediaFrame::UploadAck { .. } | MediaFrame::Error { .. } | MediaFrame::Delete { .. } => {}
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn device_opt(&mut self) -> Result<Option<DeviceId>, CodecError> {
        let v = self.u32()?;
        Ok((v != u32::MAX).then_some(DeviceId(v)))
    }
    fn addr(&mut self) -> Result<Addr, CodecError> {
        let tag = self.u8()?;
        let id = self.u32()?;
        Ok(match tag {
            1 => Addr::Device(DeviceId(id)),
            2 => Addr::ChatServer,
            3 => Addr::Gateway,
            4 => Addr::Adapter(ProviderId(id)),
            5 => Addr::PartnerServer(ProviderId(id)),
            6 => Addr::MediaStore(ProviderId(id)),
            7 => Addr::MediaProxy,
            tag => {
                return Err(CodecError::Tag {
                    what: "address",
                    tag,
                })
            }
        })
    }
    fn envelope(&mut self) -> Result<Envelope, CodecError> {
        let msg = MsgId(self.u64()?);
        let from_user = UserId(self.u32()?);
        let from_device = DeviceId(self.u32()?);
        let to_user = UserId(self.u32()?);
        let to_device = self.device_opt()?;
        let seq = self.u32()?;
        let sent_at = SimTime::from_nanos(self.u64()?);
        let len = self.u32()?;
        let n = self.u32()?;
        let bytes = if n == u32::MAX {
            None
        } else {
            Some(self.take(n as usize)?.to_vec().into_boxed_slice())
        };
        Ok(Envelope {
            msg,
            from_user,
            from_device,
            to_user,
            to_device,
            seq,
            retry: 0,
            sent_at,
            ciphertext: Ciphertext {
                len,
                bytes,
                seal: Default::default(),
            },
            per_device: Vec::new(),
            group: None,
            members: None,
        })
    }
    fn frame(&mut self) -> Result<Frame, CodecError> {
        let tag = self.u8()?;
        let msg_device = |r: &mut Self| -> Result<(MsgId, DeviceId), CodecError> {
            Ok((MsgId(r.u64()?), DeviceId(r.u32()?)))
        };
        Ok(match tag {
            1 => Frame::Submit(Box::new(self.envelope()?)),
            4 => Frame::Deliver(Box::new(self.envelope()?)),
            2 => {
                let (msg, device) = msg_device(self)?;
                // Live runs send no re-encryptions: every submission is the original copy.
                Frame::SubmitAck {
                    msg,
                    device,
                    copy: 0,
                }
            }
            10 => {
                let (msg, device) = msg_device(self)?;
                Frame::Bounced { msg, device }
            }
            3 => {
                let (msg, device) = msg_device(self)?;
                Frame::Refused {
                    msg,
                    device,
                    to_user: UserId(self.u32()?),
                    reason: Refusal::Unreachable,
                }
            }
            5 => {
                let (msg, device) = msg_device(self)?;
                Frame::DeliverAck {
                    msg,
                    device,
                    from_user: UserId(self.u32()?),
                    to_user: UserId(self.u32()?),
                }
            }
            6 | 7 | 12 => {
                let device = DeviceId(self.u32()?);
                let epoch = self.u32()?;
                match tag {
                    6 => Frame::Connect { device, epoch },
                    7 => Frame::Disconnect { device, epoch },
                    _ => Frame::ConnectAck { device, epoch },
                }
            }
            8 => Frame::PushRequest {
                device: DeviceId(self.u32()?),
            },
            11 => Frame::Push {
                device: DeviceId(self.u32()?),
            },
            13 => Frame::Throttle {
                device: DeviceId(self.u32()?),
                until: SimTime::from_nanos(self.u64()?),
            },
            14 => Frame::RetryReceipt {
                msg: MsgId(self.u64()?),
                requester: DeviceId(self.u32()?),
                sender: DeviceId(self.u32()?),
                sender_user: UserId(self.u32()?),
                attempt: self.u8()?,
            },
            9 => Frame::Receipt {
                msg: MsgId(self.u64()?),
                kind: if self.u8()? == 1 {
                    ReceiptKind::Read
                } else {
                    ReceiptKind::Delivered
                },
                from_user: UserId(self.u32()?),
                to_user: UserId(self.u32()?),
                to_device: self.device_opt()?,
            },
            15 => Frame::Media(self.media()?),
            tag => return Err(CodecError::Tag { what: "frame", tag }),
        })
    }
    fn media(&mut self) -> Result<MediaFrame, CodecError> {
        let kind = self.u8()?;
        let blob = BlobId(self.u64()?);
        let device = DeviceId(self.u32()?);
        let attempt = self.u8()?;
        Ok(match kind {
            1 => MediaFrame::Upload {
                blob,
                device,
                attempt,
                len: self.u32()?,
                fetches: self.u8()?,
            },
            2 => MediaFrame::UploadAck {
                blob,
                device,
                attempt,
            },
            3 => MediaFrame::Fetch {
                blob,
                host: ProviderId(self.u32()?),
                device,
                attempt,
            },
            4 => MediaFrame::Data {
                blob,
                device,
                attempt,
                len: self.u32()?,
            },
            5 => MediaFrame::Error {
                blob,
                device,
                attempt,
            },
            6 => MediaFrame::Delete { blob, device },
            tag => {
                return Err(CodecError::Tag {
                    what: "media frame",
                    tag,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(bytes: Option<&[u8]>) -> Envelope {
        Envelope {
            msg: MsgId(7),
            from_user: UserId(1),
            from_device: DeviceId(2),
            to_user: UserId(3),
            to_device: Some(DeviceId(4)),
            seq: 5,
            retry: 0,
            sent_at: SimTime::from_nanos(6),
            ciphertext: Ciphertext {
                len: 9,
                bytes: bytes.map(|b| b.to_vec().into_boxed_slice()),
                seal: Default::default(),
            },
            per_device: Vec::new(),
            group: None,
            members: None,
        }
    }

    #[test]
    fn every_frame_kind_round_trips() {
        let (msg, device, user) = (MsgId(1), DeviceId(2), UserId(3));
        let frames = vec![
            Frame::Submit(Box::new(env(Some(b"abc")))),
            Frame::Deliver(Box::new(env(None))),
            Frame::SubmitAck {
                msg,
                device,
                copy: 0,
            },
            Frame::RetryReceipt {
                msg,
                requester: device,
                sender: device,
                sender_user: user,
                attempt: 2,
            },
            Frame::Refused {
                msg,
                device,
                to_user: user,
                reason: Refusal::Unreachable,
            },
            Frame::DeliverAck {
                msg,
                device,
                from_user: user,
                to_user: UserId(9),
            },
            Frame::Connect { device, epoch: 3 },
            Frame::ConnectAck { device, epoch: 3 },
            Frame::Disconnect { device, epoch: 3 },
            Frame::PushRequest { device },
            Frame::Push { device },
            Frame::Bounced { msg, device },
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
}
