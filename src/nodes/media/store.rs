//! A provider's media store: the blob host its users upload to. It keeps a blob until every
//! recipient device the uploader announced has fetched it (a real host keeps media for a TTL;
//! dropping it once fetched keeps memory flat in long runs), answers fetches with the blob or a
//! "not found", and never learns what a blob is: it holds ciphertext, a length and a count.
//! Blobs are durable (replicated object storage): a crash makes the store unreachable for its
//! duration but loses nothing.

use super::super::{Addr, Effects};
use crate::wire::{BlobId, DeviceId, Frame, MediaFrame, ProviderId};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Stored {
    uploader: DeviceId,
    len: u32,
    /// Recipient devices that will fetch it (a 1:1 recipient's devices, or a group's).
    fetches: u32,
    /// Which of them completed a fetch, sorted: a device that fetches again counts once.
    fetched_by: Vec<DeviceId>,
}

#[derive(Clone, Debug)]
pub struct MediaStore {
    provider: ProviderId,
    blobs: BTreeMap<BlobId, Stored>,
    pub uploads: u64,
    pub bytes_uploaded: u64,
    /// Fetches answered with the blob, and with "not found".
    pub served: u64,
    pub not_found: u64,
}

/// What a frame did to the store's blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new blob.
    New,
    /// The blob was there already (a retried upload whose ack was lost).
    Again,
    /// Its uploader deleted it.
    Deleted,
}

impl MediaStore {
    pub fn new(provider: ProviderId) -> Self {
        MediaStore {
            provider,
            blobs: BTreeMap::new(),
            uploads: 0,
            bytes_uploaded: 0,
            served: 0,
            not_found: 0,
        }
    }

    // ---- getters

    pub fn provider(&self) -> ProviderId {
        self.provider
    }
    pub fn holds(&self, blob: BlobId) -> bool {
        self.blobs.contains_key(&blob)
    }
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    // ---- inputs

    /// A media frame from `from` (a device, or the media proxy). Answers go back to `from`.
    /// Returns what it did to the blobs, for the driver (which keeps real bytes beside them).
    pub fn handle_frame(
        &mut self,
        from: Addr,
        frame: MediaFrame,
        fx: &mut Effects,
    ) -> Option<Change> {
        match frame {
            MediaFrame::Upload {
                blob,
                device,
                attempt,
                len,
                fetches,
            } => {
                let outcome = match self.blobs.entry(blob) {
                    Entry::Occupied(_) => Change::Again,
                    Entry::Vacant(slot) => {
                        slot.insert(Stored {
                            uploader: device,
                            len,
                            fetches,
                            fetched_by: Vec::new(),
                        });
                        self.uploads += 1;
                        self.bytes_uploaded += len as u64;
                        Change::New
                    }
                };
                let ack = MediaFrame::UploadAck {
                    blob,
                    device,
                    attempt,
                };
                fx.send(from, Frame::Media(ack));
                Some(outcome)
            }
            MediaFrame::Fetch {
                blob,
                device,
                attempt,
                ..
            } => {
                let answer = match self.blobs.get(&blob) {
                    Some(s) => {
                        self.served += 1;
                        MediaFrame::Data {
                            blob,
                            device,
                            attempt,
                            len: s.len,
                        }
                    }
                    None => {
                        self.not_found += 1;
                        MediaFrame::Error {
                            blob,
                            device,
                            attempt,
                        }
                    }
                };
                fx.send(from, Frame::Media(answer));
                None
            }
            // Only its uploader deletes a blob (the others who hold its id only fetch it).
            MediaFrame::Delete { blob, device } => {
                let own = self.blobs.get(&blob).is_some_and(|s| s.uploader == device);
                (own && self.blobs.remove(&blob).is_some()).then_some(Change::Deleted)
            }
            // Answers never come to a store.
            MediaFrame::UploadAck { .. } | MediaFrame::Data { .. } | MediaFrame::Error { .. } => {
                None
            }
        }
    }

    // ---- mutators

    /// Recipient `device` completed its fetch of `blob`; the transfer's end is what the host
    /// sees of it. Returns `true` when that was the last expected fetch and the blob is gone.
    pub fn fetched(&mut self, blob: BlobId, device: DeviceId) -> bool {
        let Some(s) = self.blobs.get_mut(&blob) else {
            return false;
        };
        if let Err(at) = s.fetched_by.binary_search(&device) {
            s.fetched_by.insert(at, device);
        }
        self.drop_if_done(blob)
    }

    /// `devices` of the announced fetchers never will (a group member the server refused):
    /// the blob is not kept for them. Returns `true` when the blob is gone.
    pub fn expect_fewer(&mut self, blob: BlobId, devices: u32) -> bool {
        let Some(s) = self.blobs.get_mut(&blob) else {
            return false;
        };
        s.fetches = s.fetches.saturating_sub(devices);
        self.drop_if_done(blob)
    }

    fn drop_if_done(&mut self, blob: BlobId) -> bool {
        let done = self
            .blobs
            .get(&blob)
            .is_some_and(|s| s.fetched_by.len() as u64 >= s.fetches as u64);
        if done {
            self.blobs.remove(&blob);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(fx: &mut Effects) -> Vec<(Addr, MediaFrame)> {
        fx.outputs
            .drain(..)
            .filter_map(|o| match o {
                crate::nodes::Output::Send {
                    to,
                    frame: Frame::Media(m),
                } => Some((to, m)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn stores_once_serves_then_drops_after_every_fetch() {
        let mut s = MediaStore::new(ProviderId(1));
        let mut fx = Effects::default();
        let (blob, up, down) = (BlobId(5), DeviceId(1), DeviceId(9));
        let upload = MediaFrame::Upload {
            blob,
            device: up,
            attempt: 0,
            len: 1_000,
            fetches: 2,
        };
        let me = Addr::Device(up);
        assert_eq!(s.handle_frame(me, upload, &mut fx), Some(Change::New));
        assert_eq!(s.handle_frame(me, upload, &mut fx), Some(Change::Again));
        assert_eq!((s.uploads, s.bytes_uploaded), (1, 1_000), "counted once");
        let acks = answers(&mut fx);
        assert_eq!(acks.len(), 2, "a repeated upload is acked again");
        assert!(acks.iter().all(|(to, _)| *to == me));
        let fetch = MediaFrame::Fetch {
            blob,
            host: ProviderId(1),
            device: down,
            attempt: 3,
        };
        s.handle_frame(Addr::MediaProxy, fetch, &mut fx);
        let data = MediaFrame::Data {
            blob,
            device: down,
            attempt: 3,
            len: 1_000,
        };
        assert_eq!(answers(&mut fx), vec![(Addr::MediaProxy, data)]);
        assert!(!s.fetched(blob, DeviceId(20)));
        assert!(
            !s.fetched(blob, DeviceId(20)),
            "the same device twice counts once"
        );
        assert!(
            s.fetched(blob, DeviceId(21)),
            "the second device was the last"
        );
        assert!(!s.holds(blob));
        s.handle_frame(Addr::Device(down), fetch, &mut fx);
        let gone = MediaFrame::Error {
            blob,
            device: down,
            attempt: 3,
        };
        assert_eq!(answers(&mut fx), vec![(Addr::Device(down), gone)]);
        assert_eq!(s.not_found, 1);
        assert!(
            !s.fetched(BlobId(77), DeviceId(40)),
            "unknown blob: no panic"
        );
    }

    #[test]
    fn a_group_blob_waits_for_every_member_device_but_not_the_refused() {
        let mut s = MediaStore::new(ProviderId(0));
        let mut fx = Effects::default();
        let blob = BlobId(9);
        let upload = MediaFrame::Upload {
            blob,
            device: DeviceId(0),
            attempt: 0,
            len: 10,
            fetches: 300,
        };
        s.handle_frame(Addr::Device(DeviceId(0)), upload, &mut fx);
        for d in 1..=296 {
            assert!(!s.fetched(blob, DeviceId(d)), "more than 255 fetchers");
        }
        assert!(!s.expect_fewer(blob, 3), "one fetch still to come");
        assert!(s.fetched(blob, DeviceId(297)), "the last member device");
        assert!(!s.holds(blob));
        assert!(!s.expect_fewer(blob, 1), "gone already: nothing to do");
    }

    #[test]
    fn only_the_uploader_deletes() {
        let mut s = MediaStore::new(ProviderId(0));
        let mut fx = Effects::default();
        let (blob, up) = (BlobId(1), DeviceId(4));
        let upload = MediaFrame::Upload {
            blob,
            device: up,
            attempt: 0,
            len: 10,
            fetches: 1,
        };
        s.handle_frame(Addr::Device(up), upload, &mut fx);
        let by = |device| MediaFrame::Delete { blob, device };
        let other = DeviceId(5);
        assert_eq!(
            s.handle_frame(Addr::Device(other), by(other), &mut fx),
            None
        );
        assert!(s.holds(blob));
        let deleted = s.handle_frame(Addr::Device(up), by(up), &mut fx);
        assert_eq!(deleted, Some(Change::Deleted));
        assert!(!s.holds(blob) && s.blob_count() == 0);
        assert_eq!(
            s.handle_frame(Addr::Device(up), by(up), &mut fx),
            None,
            "once"
        );
    }
}
