//! The gatekeeper's media proxy: the one door for media between providers, as the interop
//! gateway is for messages. A gatekeeper device fetches a partner-hosted blob through it, and a
//! partner device fetches any other provider's blob through it (by way of its adapter when its
//! provider is proxied). It relays a fetch to the host's store and the answer back, and sees
//! what a store sees: a blob id, a length, which device asks. No key, no content type.
//!
//! When a relayed hop fails (a partition, the host down, a lost transfer), the proxy notices
//! after [`super::DETECT_NS`] and answers the device with an error (an HTTP 502), so that the
//! device backs off and retries.

use super::super::{Addr, Effects};
use crate::directory::Directory;
use crate::wire::{DeviceId, Frame, MediaFrame};

#[derive(Clone, Debug, Default)]
pub struct MediaProxy {
    /// Fetches relayed to a host store.
    pub relayed: u64,
    /// Blob bytes relayed back towards devices.
    pub relayed_bytes: u64,
    /// Relays that failed on the way (answered with an error).
    pub upstream_failures: u64,
}

/// The next hop from the proxy back to `device`: the device itself (a gatekeeper device, or a
/// direct-mode partner device), or its provider's adapter.
pub fn back_route(dir: &Directory, device: DeviceId) -> Addr {
    let p = dir.provider_of_device(device);
    if dir.is_gatekeeper(p) {
        return Addr::Device(device);
    }
    match dir.partner_link(p) {
        crate::directory::PartnerLink::Proxied => Addr::Adapter(p),
        crate::directory::PartnerLink::Direct => Addr::Device(device),
    }
}

impl MediaProxy {
    /// A fetch from a device (or an adapter) goes to its host's store; an answer from a store
    /// goes back towards its device.
    pub fn handle_frame(
        &mut self,
        from: Addr,
        frame: MediaFrame,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        match frame {
            MediaFrame::Fetch { host, .. } if !matches!(from, Addr::MediaStore(_)) => {
                self.relayed += 1;
                fx.send(Addr::MediaStore(host), Frame::Media(frame));
            }
            MediaFrame::Data { device, len, .. } if matches!(from, Addr::MediaStore(_)) => {
                self.relayed_bytes += len as u64;
                fx.send(back_route(dir, device), Frame::Media(frame));
            }
            MediaFrame::Error { device, .. } if matches!(from, Addr::MediaStore(_)) => {
                fx.send(back_route(dir, device), Frame::Media(frame));
            }
            // Uploads go to the uploader's own store, never through the proxy.
            _ => {}
        }
    }

    /// A hop the proxy relayed failed: after noticing, answer the device with an error.
    pub fn upstream_failed(&mut self, frame: MediaFrame, dir: &Directory, fx: &mut Effects) {
        self.upstream_failures += 1;
        let device = frame.device();
        let error = MediaFrame::Error {
            blob: frame.blob(),
            device,
            attempt: frame.attempt(),
        };
        fx.send_after(
            super::DETECT_NS,
            back_route(dir, device),
            Frame::Media(error),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PartnerLink;
    use crate::nodes::Output;
    use crate::wire::{BlobId, ProviderId};

    /// Gatekeeper users 0-1, a proxied partner's user 2, a direct partner's user 3.
    fn dir() -> Directory {
        Directory::new(
            &[2, 1, 1],
            vec![
                PartnerLink::Proxied,
                PartnerLink::Proxied,
                PartnerLink::Direct,
            ],
            &[1, 1, 1, 1],
            vec![true; 4],
        )
    }

    #[test]
    fn relays_fetches_to_the_host_and_answers_back_the_interop_way() {
        let d = dir();
        let mut proxy = MediaProxy::default();
        let mut fx = Effects::default();
        let blob = BlobId(3);
        let fetch = |device| MediaFrame::Fetch {
            blob,
            host: ProviderId(1),
            device: DeviceId(device),
            attempt: 0,
        };
        proxy.handle_frame(Addr::Device(DeviceId(0)), fetch(0), &d, &mut fx);
        let data = |device| MediaFrame::Data {
            blob,
            device: DeviceId(device),
            attempt: 0,
            len: 500,
        };
        for dev in [0, 2, 3] {
            proxy.handle_frame(Addr::MediaStore(ProviderId(1)), data(dev), &d, &mut fx);
        }
        let to: Vec<Addr> = fx
            .outputs
            .iter()
            .map(|o| match o {
                Output::Send { to, .. } => *to,
                _ => Addr::Gateway,
            })
            .collect();
        assert_eq!(
            to,
            vec![
                Addr::MediaStore(ProviderId(1)),
                Addr::Device(DeviceId(0)),
                Addr::Adapter(ProviderId(1)),
                Addr::Device(DeviceId(3)),
            ]
        );
        assert_eq!((proxy.relayed, proxy.relayed_bytes), (1, 1_500));
    }

    #[test]
    fn a_failed_hop_becomes_an_error_after_the_detection_delay() {
        let d = dir();
        let mut proxy = MediaProxy::default();
        let mut fx = Effects::default();
        let lost = MediaFrame::Data {
            blob: BlobId(1),
            device: DeviceId(2),
            attempt: 4,
            len: 10,
        };
        proxy.upstream_failed(lost, &d, &mut fx);
        let expected = Output::SendAfter {
            delay_ns: super::super::DETECT_NS,
            to: Addr::Adapter(ProviderId(1)),
            frame: Frame::Media(MediaFrame::Error {
                blob: BlobId(1),
                device: DeviceId(2),
                attempt: 4,
            }),
        };
        assert_eq!(fx.outputs, vec![expected]);
    }
}
