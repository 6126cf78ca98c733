//! The live wire format: how a [`Frame`] travels between live tasks over TCP. One record is
//! `u32 length || from || to || frame`, little endian, with the ciphertext as opaque bytes; a
//! message's routing fields are all a server can read (metadata isolation holds on the wire as
//! it does in the type). Several records go in one write (and in one Noise message).

use super::session::RunId;
use crate::engine::SimTime;
use crate::nodes::Addr;
use crate::wire::{
    Ciphertext, CopyId, Delivery, DeviceId, Frame, MediaFrame, Payload, ReceiptKind, Refusal,
    Submission,
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
    /// A field the encoder always writes as 0 (the id of a one-of-a-kind address, the attempt
    /// of a media delete): anything else would decode to a record that encodes differently.
    #[error("{what} is {value}, not 0")]
    NotZero { what: &'static str, value: u32 },
    #[error("{n} {what} is over the bound of {GROUP_MEMBERS_MAX}")]
    Count { what: &'static str, n: u32 },
    #[error("{0} bytes after the record's last field")]
    Trailing(usize),
}

/// A frame with its hop: who sent it and to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub from: Addr,
    pub to: Addr,
    pub frame: Frame,
}

/// The device id of a hello record: a dialer's first record, which introduces it (its `from`)
/// so that the accepting task can route to it before it sends anything else, and names the
/// load run whose devices speak on the connection (see [`super::session`]).
pub const HELLO_DEVICE: DeviceId = DeviceId(u32::MAX);

/// A hello from `from` to `to` for run `run` (0 on a server's own links). It rides in a
/// Throttle addressed to [`HELLO_DEVICE`], a frame no node ever receives: the run id fits in
/// its 64-bit `until`.
pub fn hello(from: Addr, to: Addr, run: RunId) -> Record {
    Record {
        from,
        to,
        frame: Frame::Throttle {
            device: HELLO_DEVICE,
            until: SimTime::from_nanos(run.0),
        },
    }
}

/// The run a hello names; `None` if `r` is not a hello.
pub fn hello_run(r: &Record) -> Option<RunId> {
    match r.frame {
        Frame::Throttle { device, until } if device == HELLO_DEVICE => {
            Some(RunId(until.as_nanos()))
        }
        _ => None,
    }
}

pub fn is_hello(r: &Record) -> bool {
    hello_run(r).is_some()
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
    if !r.0.is_empty() {
        return Err(CodecError::Trailing(r.0.len()));
    }
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

/// A copy's id: the message and the member's index (0 for a 1:1 message's one recipient).
fn put_copy(out: &mut Vec<u8>, copy: CopyId) {
    put_u64(out, copy.msg.0);
    put_u32(out, copy.member);
}

/// Bound on a live group's members, and on the Sender Key distributions one submission
/// carries (one per member device: live users have one device each). A larger count is a
/// protocol error: the record bound would refuse the frame anyway.
pub const GROUP_MEMBERS_MAX: u32 = 1024;

/// Payload tags of a submission.
const PAYLOAD_DIRECT: u8 = 0;
const PAYLOAD_GROUP: u8 = 1;

/// A submission: the routing fields, then the payload. A live 1:1 message has one ciphertext,
/// for the peer's device (live users have one device each); a group message has the one Sender
/// Key ciphertext, the pairwise-sealed distributions of the key for the member devices that
/// lack it, and the members with their sequence numbers (the server fans out by them).
fn put_submission(out: &mut Vec<u8>, s: &Submission) {
    put_u64(out, s.msg.0);
    put_u32(out, s.from_user.0);
    put_u32(out, s.from_device.0);
    put_u32(out, s.to_user.0);
    put_u32(out, s.seq);
    put_u64(out, s.sent_at.as_nanos());
    match &s.payload {
        Payload::Direct(per_device) => {
            let [(to_device, ciphertext)] = per_device.as_slice() else {
                panic!("a live 1:1 submission has one recipient device")
            };
            out.push(PAYLOAD_DIRECT);
            put_u32(out, to_device.0);
            put_ciphertext(out, ciphertext);
        }
        Payload::Group(g) => {
            assert!(
                g.members.len() <= GROUP_MEMBERS_MAX as usize
                    && g.distributions.len() <= GROUP_MEMBERS_MAX as usize,
                "a live group has at most GROUP_MEMBERS_MAX members"
            );
            out.push(PAYLOAD_GROUP);
            put_u32(out, g.group.0);
            put_ciphertext(out, &g.shared);
            put_u32(out, g.distributions.len() as u32);
            for (d, c) in &g.distributions {
                put_u32(out, d.0);
                put_ciphertext(out, c);
            }
            put_u32(out, g.members.len() as u32);
            for &(u, seq) in g.members.iter() {
                put_u32(out, u.0);
                put_u32(out, seq);
            }
        }
        Payload::Resend(_) => panic!("the live wire carries no re-encryptions"),
    }
}

/// A delivery: the first copy of a 1:1 or group message (live runs send no re-encryptions),
/// with the group and the Sender Key distribution for this device, if any.
fn put_delivery(out: &mut Vec<u8>, d: &Delivery) {
    assert!(d.retry == 0, "the live wire carries first copies only");
    put_copy(out, d.copy);
    put_u32(out, d.from_user.0);
    put_u32(out, d.from_device.0);
    put_u32(out, d.to_user.0);
    put_u32(out, d.to_device.0);
    put_u32(out, d.seq);
    put_u64(out, d.sent_at.as_nanos());
    put_ciphertext(out, &d.ciphertext);
    match d.group {
        Some(g) => {
            assert!(g.0 != u32::MAX, "group id u32::MAX stands for none");
            put_u32(out, g.0);
        }
        None => put_u32(out, u32::MAX),
    }
    match &d.key_distribution {
        Some(c) => {
            out.push(1);
            put_ciphertext(out, c);
        }
        None => out.push(0),
    }
}

fn put_ciphertext(out: &mut Vec<u8>, c: &Ciphertext) {
    put_u32(out, c.len);
    match &c.bytes {
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
        Frame::Submit(s) => put_submission(out, s),
        Frame::Deliver(d) => put_delivery(out, d),
        Frame::SubmitAck { copy, device, .. } | Frame::Bounced { copy, device } => {
            put_copy(out, *copy);
            put_u32(out, device.0);
        }
        Frame::Refused {
            copy,
            device,
            to_user,
            reason: Refusal::Unreachable,
        } => {
            put_copy(out, *copy);
            put_u32(out, device.0);
            put_u32(out, to_user.0);
        }
        Frame::DeliverAck {
            copy,
            device,
            from_user,
            to_user,
        } => {
            put_copy(out, *copy);
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
            copy,
            requester,
            sender,
            sender_user,
            attempt,
        } => {
            put_copy(out, *copy);
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
        Frame::Mimi(_) => panic!("the live wire carries no MIMI frames: live runs the hub design"),
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
            put_u32(out, fetches);
        }
        MediaFrame::Fetch { host, .. } => put_u32(out, host.0),
        MediaFrame::Data { len, .. } => put_u32(out, len),
        MediaFrame::UploadAck { .. } | MediaFrame::Error { .. } | MediaFrame::Delete { .. } => {}
    }
}

mod read;

use read::Reader;

#[cfg(test)]
mod tests;
