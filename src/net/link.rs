//! One hop class's link model: latency, loss, duplication, reordering, bandwidth behind a
//! bounded queue, and the fault overlays (loss, duplicate, reorder, tamper, replay bursts)
//! that the fault schedule switches on and off.

use super::latency::{chance, unit, Latency, LatencySampler};
use crate::engine::SimTime;
use rand::Rng;
use serde::Serialize;

/// One hop class's link as a scenario sets it (SCENARIOS.md, `[network]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LinkSpec {
    pub latency: Latency,
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
    /// Extra delay drawn for a reordered packet, so that it lands behind later ones.
    pub reorder_delay_ns: u64,
    /// Bytes per second; `None` is unlimited (no serialization delay).
    pub bandwidth_bytes_per_s: Option<u64>,
    /// Bound on bytes waiting for serialization; beyond it the link drops (tail drop).
    pub queue_max_bytes: u64,
    /// How long a directed link instance keeps one latency draw: frames sent meanwhile share
    /// it, as packets on one path share its queues. Drawing per frame and keeping FIFO order
    /// (`0`) makes a busy link's latency the running maximum of its draws, which grows with
    /// the rate the link carries (a partner link at 4,000 frames/s read 27 ms slower at its
    /// median than the same link at 400/s); held draws keep each frame's latency on the
    /// configured distribution at any rate.
    pub latency_hold_ns: u64,
}

/// Per directed link instance: when its transmitter frees up, when its last frame lands, and
/// the latency it holds until when. That is all the state a link needs: queued bytes follow
/// from `tx_free_at`, and FIFO order from `last_arrival`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkState {
    pub tx_free_at: SimTime,
    pub last_arrival: SimTime,
    /// The held latency draw (see [`LinkSpec::latency_hold_ns`]) and when it expires.
    pub held_ns: u64,
    pub held_until: SimTime,
}

/// What happened to a frame handed to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transit {
    Lost,
    /// The bounded transmit queue was full (tail drop).
    QueueFull,
    Arrives {
        at: SimTime,
        /// A second copy lands then (duplication or a replayed frame).
        copy_at: Option<SimTime>,
        /// The copy is a replay of an old frame, not a network duplicate.
        copy_is_replay: bool,
        /// Bytes were flipped in flight: the receiver's MAC check will refuse it.
        tampered: bool,
    },
}

/// Fault overlays: rates added by active faults, one list per effect.
#[derive(Clone, Debug, Default)]
struct Overlays {
    loss: Vec<f64>,
    duplicate: Vec<f64>,
    reorder: Vec<f64>,
    tamper: Vec<f64>,
    replay: Vec<f64>,
}

/// The effect a link fault adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEffect {
    Loss,
    Duplicate,
    Reorder,
    Tamper,
    Replay,
}

/// A hop class's link model, shared by all its instances.
#[derive(Clone, Debug)]
pub struct LinkModel {
    latency: LatencySampler,
    spec: LinkSpec,
    overlays: Overlays,
    // Effective probabilities: the spec's combined with the active overlays.
    loss: f64,
    duplicate: f64,
    reorder: f64,
    tamper: f64,
    replay: f64,
}

/// P(at least one of independent events) = 1 - prod(1 - p).
fn combine(base: f64, extra: &[f64]) -> f64 {
    1.0 - extra.iter().fold(1.0 - base, |acc, p| acc * (1.0 - p))
}

impl LinkModel {
    pub fn new(spec: &LinkSpec) -> Self {
        let mut m = LinkModel {
            latency: LatencySampler::new(&spec.latency),
            spec: *spec,
            overlays: Overlays::default(),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            tamper: 0.0,
            replay: 0.0,
        };
        m.recompute();
        m
    }

    fn recompute(&mut self) {
        let o = &self.overlays;
        self.loss = combine(self.spec.loss, &o.loss);
        self.duplicate = combine(self.spec.duplicate, &o.duplicate);
        self.reorder = combine(self.spec.reorder, &o.reorder);
        self.tamper = combine(0.0, &o.tamper);
        self.replay = combine(0.0, &o.replay);
    }

    fn overlay(&mut self, effect: LinkEffect) -> &mut Vec<f64> {
        match effect {
            LinkEffect::Loss => &mut self.overlays.loss,
            LinkEffect::Duplicate => &mut self.overlays.duplicate,
            LinkEffect::Reorder => &mut self.overlays.reorder,
            LinkEffect::Tamper => &mut self.overlays.tamper,
            LinkEffect::Replay => &mut self.overlays.replay,
        }
    }

    /// A fault starts adding `rate` of `effect`.
    pub fn add_overlay(&mut self, effect: LinkEffect, rate: f64) {
        self.overlay(effect).push(rate);
        self.recompute();
    }

    /// The fault that added `rate` of `effect` heals.
    pub fn remove_overlay(&mut self, effect: LinkEffect, rate: f64) {
        let list = self.overlay(effect);
        if let Some(i) = list.iter().position(|r| *r == rate) {
            list.remove(i);
        }
        self.recompute();
    }

    /// Sends `bytes` over the directed instance `state` at `now`.
    ///
    /// Order of effects: the transmit queue (tail drop past `queue_max_bytes`), serialization at
    /// the link's bandwidth, loss, propagation latency (the held draw, or a new one when it has
    /// expired), FIFO unless reordered, then duplication, replay and tampering. Random draws
    /// happen only for features whose probability is non-zero, so a clean link consumes one
    /// draw per hold (its latency).
    pub fn send<R: Rng + ?Sized>(
        &self,
        state: &mut LinkState,
        now: SimTime,
        bytes: u32,
        rng: &mut R,
    ) -> Transit {
        let tx_start = now.max(state.tx_free_at);
        let mut tx_done = tx_start;
        if let Some(bw) = self.spec.bandwidth_bytes_per_s {
            let backlog_bytes = (tx_start.since(now) as u128 * bw as u128 / 1_000_000_000) as u64;
            if backlog_bytes + bytes as u64 > self.spec.queue_max_bytes {
                return Transit::QueueFull;
            }
            tx_done = tx_start.plus((bytes as u128 * 1_000_000_000 / bw.max(1) as u128) as u64);
            state.tx_free_at = tx_done;
        }
        if chance(rng, self.loss) {
            return Transit::Lost;
        }
        if tx_done >= state.held_until {
            state.held_ns = self.latency.sample(rng);
            state.held_until = tx_done.plus(self.spec.latency_hold_ns);
        }
        let mut at = tx_done.plus(state.held_ns);
        if chance(rng, self.reorder) {
            at = at.plus((unit(rng) * self.spec.reorder_delay_ns as f64) as u64);
        } else {
            at = at.max(state.last_arrival);
            state.last_arrival = at;
        }
        let mut copy_at = None;
        let mut copy_is_replay = false;
        if chance(rng, self.duplicate) {
            copy_at = Some(at.plus(self.latency.sample(rng) / 4));
        } else if chance(rng, self.replay) {
            // A replayed frame comes back well after the original.
            copy_at = Some(at.plus(self.latency.sample(rng).max(1_000_000) * 10));
            copy_is_replay = true;
        }
        let tampered = chance(rng, self.tamper);
        Transit::Arrives {
            at,
            copy_at,
            copy_is_replay,
            tampered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RngTree;
    use crate::scenario::Latency;

    fn spec(latency_ns: u64) -> LinkSpec {
        LinkSpec {
            latency: Latency::Constant {
                value_ns: latency_ns,
            },
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ns: 0,
            bandwidth_bytes_per_s: None,
            queue_max_bytes: 1 << 20,
            latency_hold_ns: 0,
        }
    }

    /// Median of the latency frames see on one link instance sent at `gap_ns` apart for 500 s
    /// (500 holds of 1 s).
    fn median_latency_ms(hold_ns: u64, gap_ns: u64) -> f64 {
        let mut s = spec(0);
        s.latency = Latency::Lognormal {
            median_ns: 15_000_000,
            p99_ns: 60_000_000,
        };
        s.latency_hold_ns = hold_ns;
        let m = LinkModel::new(&s);
        let mut st = LinkState::default();
        let mut rng = RngTree::new(3).stream("t", 0);
        let mut seen: Vec<u64> = (0..500_000_000_000 / gap_ns)
            .filter_map(|i| {
                let now = SimTime::from_nanos(i * gap_ns);
                match m.send(&mut st, now, 100, &mut rng) {
                    Transit::Arrives { at, .. } => Some(at.since(now)),
                    _ => None,
                }
            })
            .collect();
        seen.sort_unstable();
        seen[seen.len() / 2] as f64 / 1e6
    }

    #[test]
    fn a_busy_link_keeps_its_latency_distribution_when_draws_are_held() {
        // 20 frames/s and 4,000 frames/s on one lognormal link (median 15 ms, p99 60 ms).
        let (quiet, busy) = (
            median_latency_ms(1_000_000_000, 50_000_000),
            median_latency_ms(1_000_000_000, 250_000),
        );
        assert!((quiet - 15.0).abs() < 1.5, "quiet {quiet} ms");
        assert!((busy - 15.0).abs() < 1.5, "busy {busy} ms");
        // Drawn per frame, FIFO makes the busy link's latency the running maximum of its draws.
        let per_frame = median_latency_ms(0, 250_000);
        assert!(
            per_frame > 40.0,
            "per-frame draws at 4,000/s: {per_frame} ms"
        );
        assert!((median_latency_ms(0, 50_000_000) - 15.0).abs() < 1.5);
    }

    #[test]
    fn bandwidth_serializes_and_bounded_queue_drops() {
        let mut s = spec(1_000);
        s.bandwidth_bytes_per_s = Some(1_000_000); // 1 byte per us
        s.queue_max_bytes = 2_500;
        let m = LinkModel::new(&s);
        let mut st = LinkState::default();
        let mut rng = RngTree::new(1).stream("t", 0);
        let t0 = SimTime::ZERO;
        let first = m.send(&mut st, t0, 1_000, &mut rng);
        assert_eq!(
            first,
            Transit::Arrives {
                at: SimTime::from_nanos(1_001_000),
                copy_at: None,
                copy_is_replay: false,
                tampered: false
            }
        );
        let second = m.send(&mut st, t0, 1_000, &mut rng);
        assert!(
            matches!(second, Transit::Arrives { at, .. } if at == SimTime::from_nanos(2_001_000))
        );
        let _third = m.send(&mut st, t0, 500, &mut rng);
        assert_eq!(m.send(&mut st, t0, 1_000, &mut rng), Transit::QueueFull);
    }

    #[test]
    fn loss_overlay_applies_and_heals() {
        let mut m = LinkModel::new(&spec(10));
        let mut st = LinkState::default();
        let mut rng = RngTree::new(1).stream("t", 0);
        m.add_overlay(LinkEffect::Loss, 1.0);
        assert_eq!(m.send(&mut st, SimTime::ZERO, 10, &mut rng), Transit::Lost);
        m.remove_overlay(LinkEffect::Loss, 1.0);
        assert!(matches!(
            m.send(&mut st, SimTime::ZERO, 10, &mut rng),
            Transit::Arrives { .. }
        ));
    }

    #[test]
    fn fifo_without_reorder() {
        let mut s = spec(0);
        s.latency = Latency::Uniform {
            min_ns: 0,
            max_ns: 1_000_000,
        };
        let m = LinkModel::new(&s);
        let mut st = LinkState::default();
        let mut rng = RngTree::new(9).stream("t", 0);
        let mut last = SimTime::ZERO;
        for i in 0..1_000 {
            if let Transit::Arrives { at, .. } =
                m.send(&mut st, SimTime::from_nanos(i * 10), 10, &mut rng)
            {
                assert!(at >= last);
                last = at;
            }
        }
    }
}
