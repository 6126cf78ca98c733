//! The gatekeeper's interop gateway: the one door between partners and the hub. It checks
//! enlistment (both ends enabled third-party chats), rate-limits each partner, and routes. It
//! sees routing fields only: the [`Submission`](crate::wire::Submission)s and
//! [`Delivery`](crate::wire::Delivery)s it forwards carry no content type and no plaintext. Its CPU queue and backpressure live in the driver's capacity
//! model, like every server's.

use super::{Addr, Effects};
use crate::directory::Directory;
use crate::engine::SimTime;
use crate::metrics::LedgerEvent;
use crate::wire::{DeviceId, Frame, ProviderId, Refusal};
use std::collections::BTreeMap;

/// A per-partner rate limit as a generic cell rate algorithm: integer nanoseconds, no float
/// drift, one word of state.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Nanoseconds of credit one message costs.
    interval_ns: u64,
    /// How far ahead of now the theoretical arrival time may run (the burst allowance).
    burst_ns: u64,
    tat: SimTime,
}

impl RateLimit {
    /// `per_s` messages per second with a one-second burst.
    pub fn new(per_s: f64) -> Self {
        let interval_ns = if per_s > 0.0 {
            (1e9 / per_s).max(1.0) as u64
        } else {
            u64::MAX
        };
        RateLimit {
            interval_ns,
            burst_ns: 1_000_000_000,
            tat: SimTime::ZERO,
        }
    }
    /// Admits one message at `now`, or refuses it.
    /// Admits one message at `now`: `Some(delay)` passes it after `delay` ns (shaping, in
    /// order: later admissions never overtake earlier ones), `None` refuses it because the
    /// shaping delay would pass `delay_max_ns` (the bounded queue is full).
    pub fn admit(&mut self, now: SimTime, delay_max_ns: u64) -> Option<u64> {
        let tat = self.tat.max(now);
        let delay = tat.since(now).saturating_sub(self.burst_ns);
        if delay > delay_max_ns {
            return None;
        }
        self.tat = tat.plus(self.interval_ns);
        Some(delay)
    }
}

/// How long a device stays throttled after the shaper refused one of its frames.
pub const THROTTLE_NS: u64 = 2_000_000_000;

/// Bound on how long the per-partner shaper holds a frame before it refuses new ones.
pub const SHAPING_DELAY_MAX_NS: u64 = 5_000_000_000;

#[derive(Clone, Debug)]
pub struct Gateway {
    /// Indexed by provider; the gatekeeper's entry is unused.
    limits: Vec<Option<RateLimit>>,
    pub rate_limited: u64,
    /// Frames held back by the shaper (delayed, not dropped).
    pub shaped: u64,
    /// Devices whose traffic the shaper refused, until when: later frames of that device are
    /// refused too, so that none overtakes the refused one (order survives backpressure).
    /// Bounded by the devices in the run; expired entries go on the next refusal.
    throttled: BTreeMap<DeviceId, SimTime>,
    pub refused: u64,
}

impl Gateway {
    pub fn new(providers: usize, rate_limit_per_partner: Option<f64>) -> Self {
        Gateway {
            limits: vec![rate_limit_per_partner.map(RateLimit::new); providers],
            rate_limited: 0,
            shaped: 0,
            throttled: BTreeMap::new(),
            refused: 0,
        }
    }

    /// The partner-side address of a partner device: its adapter, or the device itself.
    pub fn partner_route(dir: &Directory, d: DeviceId) -> Addr {
        let p = dir.provider_of_device(d);
        match dir.partner_link(p) {
            crate::directory::PartnerLink::Proxied => Addr::Adapter(p),
            crate::directory::PartnerLink::Direct => Addr::Device(d),
        }
    }

    /// Applies partner `p`'s rate limit: the delay to hold the frame for, or `None` when the
    /// partner's shaping queue is full (the frame is dropped; the sender's retry brings it back).
    fn admit(&mut self, p: ProviderId, d: DeviceId, now: SimTime) -> Option<u64> {
        if self.throttled.get(&d).is_some_and(|&until| until > now) {
            self.rate_limited += 1;
            return None;
        }
        let Some(limit) = self.limits[p.index()].as_mut() else {
            return Some(0);
        };
        let admitted = limit.admit(now, SHAPING_DELAY_MAX_NS);
        match admitted {
            None => {
                self.rate_limited += 1;
                self.throttled.retain(|_, until| *until > now);
                self.throttled.insert(d, now.plus(THROTTLE_NS));
            }
            Some(d) if d > 0 => self.shaped += 1,
            Some(_) => {}
        }
        admitted
    }

    /// A frame from `from`. Frames from the chat server go out to partners; frames from a
    /// partner (its adapter or, in direct mode, its device) go in to the chat server.
    pub fn handle_frame(
        &mut self,
        now: SimTime,
        from: Addr,
        frame: Frame,
        dir: &Directory,
        fx: &mut Effects,
    ) {
        if from == Addr::ChatServer {
            self.outbound(now, frame, dir, fx);
        } else {
            self.inbound(now, frame, dir, fx);
        }
    }

    fn outbound(&mut self, now: SimTime, frame: Frame, dir: &Directory, fx: &mut Effects) {
        match frame {
            Frame::Deliver(delivery) => {
                let d = delivery.to_device;
                if !dir.may_message(delivery.from_user, delivery.to_user) {
                    self.refused += 1;
                    fx.send(
                        Addr::ChatServer,
                        Frame::Bounced {
                            copy: delivery.copy,
                            device: d,
                        },
                    );
                    return;
                }
                let Some(delay) = self.admit(dir.provider_of_device(d), d, now) else {
                    // Backpressure: the hub holds this device's copies until the throttle ends.
                    let until = self.throttled.get(&d).copied().unwrap_or(now);
                    fx.send(Addr::ChatServer, Frame::Throttle { device: d, until });
                    return;
                };
                let msg = delivery.copy.ledger_id();
                fx.record(LedgerEvent::CrossedGateway { msg });
                fx.send_after(delay, Self::partner_route(dir, d), Frame::Deliver(delivery));
            }
            Frame::PushRequest { device } => {
                fx.send(
                    Addr::PartnerServer(dir.provider_of_device(device)),
                    Frame::PushRequest { device },
                );
            }
            Frame::SubmitAck { device, .. }
            | Frame::Refused { device, .. }
            | Frame::ConnectAck { device, .. } => {
                fx.send(Self::partner_route(dir, device), frame);
            }
            Frame::Receipt {
                to_device: Some(d), ..
            } => fx.send(Self::partner_route(dir, d), frame),
            Frame::RetryReceipt { sender, .. } => fx.send(Self::partner_route(dir, sender), frame),
            _ => {}
        }
    }

    fn inbound(&mut self, now: SimTime, frame: Frame, dir: &Directory, fx: &mut Effects) {
        match frame {
            Frame::Submit(s) => {
                let back = Self::partner_route(dir, s.from_device);
                if !dir.may_message(s.from_user, s.to_user) {
                    self.refused += 1;
                    let refusal = Frame::Refused {
                        copy: s.copy_id(),
                        device: s.from_device,
                        to_user: s.to_user,
                        reason: Refusal::Unreachable,
                    };
                    fx.send(back, refusal);
                    return;
                }
                let from = s.from_device;
                let Some(delay) = self.admit(dir.provider_of_device(from), from, now) else {
                    // Backpressure: the device holds its outbox until the throttle ends.
                    let until = self.throttled.get(&from).copied().unwrap_or(now);
                    fx.send(
                        Self::partner_route(dir, from),
                        Frame::Throttle {
                            device: from,
                            until,
                        },
                    );
                    return;
                };
                let msg = s.copy_id().ledger_id();
                fx.record(LedgerEvent::CrossedGateway { msg });
                fx.send_after(delay, Addr::ChatServer, Frame::Submit(s));
            }
            Frame::DeliverAck { .. }
            | Frame::RetryReceipt { .. }
            | Frame::Connect { .. }
            | Frame::Disconnect { .. }
            | Frame::Receipt { .. } => fx.send(Addr::ChatServer, frame),
            _ => {}
        }
    }
}

/// The partner's adapter (proxied mode): one upstream connection per client, translating the
/// partner's native frames to the gatekeeper's stanzas and back. In the model the translation
/// is a CPU cost (the capacity model's `adapter.per_message`); the frame itself passes as is.
pub fn adapter_route(from: Addr, frame: &Frame) -> Option<Addr> {
    match from {
        Addr::Device(_) => Some(Addr::Gateway),
        Addr::Gateway => match frame {
            Frame::Deliver(delivery) => Some(Addr::Device(delivery.to_device)),
            Frame::SubmitAck { device, .. }
            | Frame::Refused { device, .. }
            | Frame::ConnectAck { device, .. }
            | Frame::Throttle { device, .. } => Some(Addr::Device(*device)),
            Frame::Receipt { to_device, .. } => to_device.map(Addr::Device),
            Frame::RetryReceipt { sender, .. } => Some(Addr::Device(*sender)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_admits_the_burst_then_the_rate() {
        let mut l = RateLimit::new(10.0); // 100 ms per message, 1 s burst
        let t0 = SimTime::from_secs(5);
        let admitted = (0..30).filter(|_| l.admit(t0, 0) == Some(0)).count();
        assert_eq!(admitted, 11, "one second of burst plus the first message");
        assert_eq!(l.admit(t0.plus(50_000_000), 0), None);
        assert_eq!(
            l.admit(t0.plus(50_000_000), u64::MAX),
            Some(50_000_000),
            "shaped: held back, not dropped"
        );
        assert!(l.admit(t0.plus(300_000_000), 0).is_some());
    }
}
