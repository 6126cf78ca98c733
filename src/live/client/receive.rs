//! A shard's receiving side: records from the servers reach their devices, deliveries are
//! decrypted once (1:1 or group), and frames of another run are answered and dropped.

use super::Shard;
use crate::e2ee::E2eeError;
use crate::engine::SimTime;
use crate::live::codec::{self, Record};
use crate::live::conn::{self, Inbound};
use crate::live::node::REDIAL_NS;
use crate::metrics::LedgerEvent;
use crate::nodes::dispatch::{self, NodeMut};
use crate::nodes::media::pointer::Pointer;
use crate::nodes::Addr;
use crate::wire::{Delivery, DeviceId, Frame};

impl Shard {
    pub(super) fn on_inbound(&mut self, m: Inbound) {
        match m {
            Inbound::Opened(..) => {}
            Inbound::Closed(id) => {
                if let Some(i) = self.conn_of.remove(&id) {
                    self.routes.remove(&self.dials[i].to);
                    let at = self.clock().now().plus(REDIAL_NS);
                    self.push_timer(at, DeviceId(i as u32), None);
                }
            }
            Inbound::Records(_, recs) => {
                self.report.frames_in += recs.len() as u64;
                self.report.reads_in += 1;
                let now = self.clock().now();
                for rec in recs {
                    self.on_record(now, rec);
                }
            }
        }
    }

    pub(super) fn on_record(&mut self, now: SimTime, mut rec: Record) {
        let Addr::Device(d) = rec.to else { return };
        if codec::is_hello(&rec) || self.devices.get(d.index()).is_none_or(|x| x.is_none()) {
            return;
        }
        if self.sh.cuts.blocks(rec.from, rec.to, &self.sh.dir) {
            return;
        }
        if !self.sh.run.untag_frame(&mut rec.frame) {
            return self.on_foreign(d, rec);
        }
        if let Frame::Deliver(delivery) = &rec.frame {
            if !self.open(d, delivery) {
                return; // not acked: the server sends it again
            }
            if let Some(hops) = &self.sh.hops {
                let msg = delivery.copy.ledger_id().0;
                hops.mark(msg, crate::live::hops::Stage::Delivered, now.as_nanos());
            }
        }
        if let (Frame::SubmitAck { copy, .. }, true) = (&rec.frame, self.remote) {
            self.accepted_remotely(*copy, d);
        }
        let node = NodeMut::Device {
            device: self.devices[d.index()].as_mut().expect("checked above"),
            cfg: &self.cfg,
            keys: &mut self.keys,
            key_directory: &mut self.key_directory,
        };
        dispatch::handle_frame(
            node,
            now,
            rec.from,
            rec.frame,
            false,
            &self.sh.dir,
            &mut self.fx,
        );
        self.apply_effects(now, d);
    }

    /// A frame of another run for device `d`: a delivery is acked as it came (so that the
    /// server stops sending it) and dropped; anything else is dropped.
    pub(super) fn on_foreign(&mut self, d: DeviceId, rec: Record) {
        self.report.foreign_frames += 1;
        if let Frame::Deliver(delivery) = rec.frame {
            let ack = Record {
                from: Addr::Device(d),
                to: rec.from,
                frame: Frame::DeliverAck {
                    copy: delivery.copy,
                    device: d,
                    from_user: delivery.from_user,
                    to_user: delivery.to_user,
                },
            };
            if let Some(tx) = self.routes.get(&rec.from) {
                conn::try_send(tx, ack, &self.sh.stats);
            }
        }
    }

    /// Decrypts a delivered message once; `false` if it does not decrypt. The plaintext names
    /// the message (a group message's first id, which every member's copy shares).
    pub(super) fn open(&mut self, d: DeviceId, delivery: &Delivery) -> bool {
        let msg = delivery.copy.ledger_id();
        let i = msg.0 as usize;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.decrypted.get(word).is_some_and(|w| w & bit != 0) {
            return true;
        }
        let Some(bytes) = delivery.ciphertext.bytes.as_deref() else {
            self.report.decrypt_failures += 1;
            return false;
        };
        let opened = match delivery.group {
            Some(g) => {
                let distribution =
                    (delivery.key_distribution.as_ref()).and_then(|c| c.bytes.as_deref());
                let sender = delivery.from_device;
                self.crypto.group_decrypt(d, sender, g, distribution, bytes)
            }
            None => self.crypto.decrypt(d, delivery.from_device, bytes),
        };
        match opened {
            Ok(p) => {
                let named = delivery.copy.msg.0.to_le_bytes();
                if p.starts_with(&self.marker) && p[self.marker.len()..].starts_with(&named) {
                    self.report.plaintext_verified += 1;
                }
                if let Some(w) = self.decrypted.get_mut(word) {
                    *w |= bit;
                }
                if let Some(pointer) = Pointer::from_tail(&p) {
                    let group = delivery.group.is_some();
                    self.fetch(d, delivery.copy.msg, pointer, group);
                }
                true
            }
            // A group copy whose sender's key this device was not given yet (the distribution
            // rides an earlier copy, which a redelivery can overtake): not tampering. Not acked,
            // so the server sends it again; the earlier copy brings the key meanwhile.
            Err(E2eeError::NoSenderKey | E2eeError::UnknownSenderKey(_)) => {
                self.report.sender_key_missing += 1;
                false
            }
            Err(_) => {
                self.report.decrypt_failures += 1;
                self.fx
                    .record(LedgerEvent::TamperDetected { msg, device: d });
                false
            }
        }
    }
}
