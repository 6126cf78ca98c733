//! The decoding half of the live wire format: a record's bytes back into a [`Frame`], refusing
//! what the encoder never writes (so that every decoded record encodes to its own bytes).

use super::{CodecError, GROUP_MEMBERS_MAX, PAYLOAD_DIRECT, PAYLOAD_GROUP};
use crate::engine::SimTime;
use crate::nodes::Addr;
use crate::wire::{
    BlobId, Ciphertext, CopyId, Delivery, DeviceId, Frame, GroupId, GroupPayload, MediaFrame,
    MsgId, Payload, ProviderId, ReceiptKind, Refusal, Submission, UserId,
};

pub(super) struct Reader<'a>(pub(super) &'a [u8]);

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
    pub(super) fn addr(&mut self) -> Result<Addr, CodecError> {
        let tag = self.u8()?;
        let id = self.u32()?;
        if matches!(tag, 2 | 3 | 7) && id != 0 {
            return Err(CodecError::NotZero {
                what: "id of a one-of-a-kind address",
                value: id,
            });
        }
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
    fn copy(&mut self) -> Result<CopyId, CodecError> {
        Ok(CopyId {
            msg: MsgId(self.u64()?),
            member: self.u32()?,
        })
    }
    /// A count of group members or distributions, within [`GROUP_MEMBERS_MAX`].
    fn count(&mut self, what: &'static str) -> Result<usize, CodecError> {
        let n = self.u32()?;
        if n > GROUP_MEMBERS_MAX {
            return Err(CodecError::Count { what, n });
        }
        Ok(n as usize)
    }
    fn submission(&mut self) -> Result<Submission, CodecError> {
        let msg = MsgId(self.u64()?);
        let from_user = UserId(self.u32()?);
        let from_device = DeviceId(self.u32()?);
        let to_user = UserId(self.u32()?);
        let seq = self.u32()?;
        let sent_at = SimTime::from_nanos(self.u64()?);
        let payload = match self.u8()? {
            PAYLOAD_DIRECT => {
                let to_device = DeviceId(self.u32()?);
                Payload::Direct(smallvec::smallvec![(to_device, self.ciphertext()?)])
            }
            PAYLOAD_GROUP => {
                let group = GroupId(self.u32()?);
                let shared = self.ciphertext()?;
                let n = self.count("key distributions")?;
                let mut distributions = Vec::with_capacity(n);
                for _ in 0..n {
                    distributions.push((DeviceId(self.u32()?), self.ciphertext()?));
                }
                let n = self.count("group members")?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push((UserId(self.u32()?), self.u32()?));
                }
                Payload::Group(Box::new(GroupPayload {
                    group,
                    // Live runs model the hub design, whose routing never reads it.
                    hub: crate::wire::ProviderId(0),
                    shared,
                    distributions,
                    members: members.into(),
                }))
            }
            tag => {
                return Err(CodecError::Tag {
                    what: "submission payload",
                    tag,
                })
            }
        };
        Ok(Submission {
            msg,
            from_user,
            from_device,
            to_user,
            seq,
            sent_at,
            payload,
        })
    }
    fn delivery(&mut self) -> Result<Delivery, CodecError> {
        Ok(Delivery {
            copy: self.copy()?,
            from_user: UserId(self.u32()?),
            from_device: DeviceId(self.u32()?),
            to_user: UserId(self.u32()?),
            to_device: DeviceId(self.u32()?),
            seq: self.u32()?,
            retry: 0,
            sent_at: SimTime::from_nanos(self.u64()?),
            ciphertext: self.ciphertext()?,
            group: match self.u32()? {
                u32::MAX => None,
                g => Some(GroupId(g)),
            },
            key_distribution: match self.u8()? {
                0 => None,
                1 => Some(Box::new(self.ciphertext()?)),
                tag => {
                    return Err(CodecError::Tag {
                        what: "key distribution flag",
                        tag,
                    })
                }
            },
        })
    }
    fn ciphertext(&mut self) -> Result<Ciphertext, CodecError> {
        let len = self.u32()?;
        let n = self.u32()?;
        let bytes = if n == u32::MAX {
            None
        } else {
            Some(self.take(n as usize)?.to_vec().into_boxed_slice())
        };
        Ok(Ciphertext {
            len,
            bytes,
            seal: Default::default(),
        })
    }
    pub(super) fn frame(&mut self) -> Result<Frame, CodecError> {
        let tag = self.u8()?;
        let copy_device = |r: &mut Self| -> Result<(CopyId, DeviceId), CodecError> {
            Ok((r.copy()?, DeviceId(r.u32()?)))
        };
        Ok(match tag {
            1 => Frame::Submit(Box::new(self.submission()?)),
            4 => Frame::Deliver(Box::new(self.delivery()?)),
            2 => {
                let (copy, device) = copy_device(self)?;
                // Live runs send no re-encryptions: every submission is the original copy.
                Frame::SubmitAck {
                    copy,
                    device,
                    resend: 0,
                }
            }
            10 => {
                let (copy, device) = copy_device(self)?;
                Frame::Bounced { copy, device }
            }
            3 => {
                let (copy, device) = copy_device(self)?;
                Frame::Refused {
                    copy,
                    device,
                    to_user: UserId(self.u32()?),
                    reason: Refusal::Unreachable,
                }
            }
            5 => {
                let (copy, device) = copy_device(self)?;
                Frame::DeliverAck {
                    copy,
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
                copy: self.copy()?,
                requester: DeviceId(self.u32()?),
                sender: DeviceId(self.u32()?),
                sender_user: UserId(self.u32()?),
                attempt: self.u8()?,
            },
            9 => Frame::Receipt {
                msg: MsgId(self.u64()?),
                kind: match self.u8()? {
                    0 => ReceiptKind::Delivered,
                    1 => ReceiptKind::Read,
                    tag => {
                        return Err(CodecError::Tag {
                            what: "receipt kind",
                            tag,
                        })
                    }
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
                fetches: self.u32()?,
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
            6 if attempt == 0 => MediaFrame::Delete { blob, device },
            6 => {
                return Err(CodecError::NotZero {
                    what: "attempt of a media delete",
                    value: u32::from(attempt),
                })
            }
            tag => {
                return Err(CodecError::Tag {
                    what: "media frame",
                    tag,
                })
            }
        })
    }
}
