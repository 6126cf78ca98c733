//! How a fault acts: what each fault kind does when it starts and when it heals, written
//! against the few mechanisms a world offers ([`FaultTarget`]). It sits beside the schedule so
//! that a new fault kind is one arm of [`apply`] here (and, if it needs a mechanism the world
//! does not offer yet, one trait method); the simulator's driver only provides the mechanisms.

use super::{pick_users, side, Edge};
use crate::engine::RngTree;
use crate::net::{LinkEffect, Side};
use crate::scenario::{Endpoint, Fault, FaultKind, HopClass};
use crate::wire::{DeviceId, ProviderId, UserId};
use std::collections::BTreeMap;

/// The primitive mechanisms a world lends its faults. Each does one thing to the world and
/// decides nothing: which of them a fault uses, and when, is [`apply`]'s business.
pub trait FaultTarget {
    /// Adds `n` to the run's `work` counter `key`.
    fn count(&mut self, key: &'static str, n: u64);
    /// What the active faults hold for as long as they last (the world reads it too).
    fn active(&mut self) -> &mut ActiveFaults;
    /// Cuts (or heals) the partition between sides `a` and `b`.
    fn partition(&mut self, a: Side, b: Side, one_way: bool, cut: bool);
    /// Takes the server nodes behind `node` down (frames to them are dropped), or back up.
    fn set_down(&mut self, node: &Endpoint, down: bool);
    /// The server nodes behind `node` crash: without durable storage their queues are lost.
    fn lose_state(&mut self, node: &Endpoint, durable: bool);
    /// Every online device reconnects (after a server came back).
    fn reconnect_devices(&mut self);
    /// Sets the slow-down factor of the CPUs behind `node` (1 is normal speed).
    fn slow(&mut self, node: &Endpoint, factor: f64);
    /// Adds (or removes) an effect at `rate` on every link of class `link`.
    fn link_overlay(&mut self, link: HopClass, effect: LinkEffect, rate: f64, on: bool);
    /// Sets the clock offset of every device of `provider`.
    fn skew_clients(&mut self, provider: ProviderId, offset_ns: i64);
    /// The users of `provider`, as a range of ids.
    fn users_of(&self, provider: ProviderId) -> std::ops::Range<u32>;
    /// The devices of `user`.
    fn devices_of(&self, user: UserId) -> impl Iterator<Item = DeviceId>;
    /// Whether `user` takes part in interop (third-party chats).
    fn is_enlisted(&self, user: UserId) -> bool;
    fn set_enlisted(&mut self, user: UserId, on: bool);
    /// A reinstall: a new identity on every device of `user`.
    fn reset_identity(&mut self, user: UserId);
    /// Starts the prekey-drain adversary of fault `index`: `fetches` per victim device now,
    /// and every second while its victims are in [`ActiveFaults`].
    fn start_prekey_drain(&mut self, index: usize, fetches: u32);
}

/// What active faults hold until they heal: the effects the world reads while they last
/// (surges, push loss, drain victims) and what a heal must undo (toggled users).
#[derive(Default)]
pub struct ActiveFaults {
    /// Victims per prekey-drain fault.
    pub drained_victims: BTreeMap<usize, Vec<DeviceId>>,
    /// Active surge factors (the workload's rate is multiplied by each).
    pub surges: Vec<f64>,
    /// Per provider: active push-loss rates.
    pub push_loss: Vec<Vec<f64>>,
    /// Users affected per toggle fault, for the heal.
    pub toggled: BTreeMap<usize, Vec<UserId>>,
}

impl ActiveFaults {
    pub fn new(providers: usize) -> Self {
        ActiveFaults {
            push_loss: vec![Vec::new(); providers],
            ..ActiveFaults::default()
        }
    }

    /// The factor the workload's arrival rate is multiplied by.
    pub fn surge_factor(&self) -> f64 {
        self.surges.iter().product()
    }
}

/// Applies edge `edge` of fault `index` (`fault`) to the world `w`. User-level faults pick their
/// users from the fault's own stream of `tree`.
pub fn apply(w: &mut impl FaultTarget, tree: &RngTree, index: usize, fault: &Fault, edge: Edge) {
    let start = edge == Edge::Start;
    w.count(
        if start {
            "faults_started"
        } else {
            "faults_healed"
        },
        1,
    );
    match &fault.kind {
        FaultKind::Partition { a, b, one_way } => w.partition(side(a), side(b), *one_way, start),
        FaultKind::Crash { node, durable } => {
            // A crash takes a node down; on restart, the devices connected through it
            // reconnect.
            w.set_down(node, start);
            if start {
                w.lose_state(node, *durable);
            } else {
                w.reconnect_devices();
            }
        }
        FaultKind::Slow { node, factor } => w.slow(node, if start { *factor } else { 1.0 }),
        FaultKind::Loss { link, rate } => w.link_overlay(*link, LinkEffect::Loss, *rate, start),
        FaultKind::Duplicate { link, rate } => {
            w.link_overlay(*link, LinkEffect::Duplicate, *rate, start)
        }
        FaultKind::Reorder { link, rate } => {
            w.link_overlay(*link, LinkEffect::Reorder, *rate, start)
        }
        FaultKind::Tamper { link, rate } => w.link_overlay(*link, LinkEffect::Tamper, *rate, start),
        FaultKind::Replay { link, rate } => w.link_overlay(*link, LinkEffect::Replay, *rate, start),
        FaultKind::Toggle { provider, users } => toggle(w, tree, index, *provider, *users, start),
        FaultKind::Surge { factor } => {
            let surges = &mut w.active().surges;
            if start {
                surges.push(*factor);
            } else if let Some(i) = surges.iter().position(|f| f == factor) {
                surges.remove(i);
            }
        }
        FaultKind::ClockSkew {
            node,
            offset_ns,
            behind,
        } => {
            let offset = if *behind {
                -(*offset_ns as i64)
            } else {
                *offset_ns as i64
            };
            let offset = if start { offset } else { 0 };
            if let Endpoint::Clients(p) = node {
                w.skew_clients(ProviderId(*p as u32), offset);
            }
            // Servers stamp nothing the model reads: their skew changes no behaviour.
        }
        FaultKind::PushLoss { provider, rate } => {
            let list = &mut w.active().push_loss[*provider];
            if start {
                list.push(*rate);
            } else if let Some(i) = list.iter().position(|r| r == rate) {
                list.remove(i);
            }
        }
        FaultKind::PrekeyDrain {
            provider,
            users,
            rate,
        } => {
            if start {
                let range = w.users_of(ProviderId(*provider as u32));
                let victims: Vec<DeviceId> = pick_users(tree, index, range, *users)
                    .into_iter()
                    .flat_map(|u| w.devices_of(u))
                    .collect();
                w.active().drained_victims.insert(index, victims);
                let per_tick = rate.ceil().max(1.0) as u64;
                w.start_prekey_drain(index, per_tick as u32);
            } else {
                w.active().drained_victims.remove(&index);
            }
        }
        FaultKind::IdentityReset { provider, users } => {
            // Reinstalls: a new identity on every device of the picked users; their peers
            // find out through retry receipts and the new prekey messages.
            if start {
                let range = w.users_of(ProviderId(*provider as u32));
                let picked = pick_users(tree, index, range, *users);
                w.count("identity_resets", picked.len() as u64);
                for u in picked {
                    w.reset_identity(u);
                }
            }
        }
    }
}

/// Some of a provider's enlisted users opt out of interop for the fault's length.
fn toggle(
    w: &mut impl FaultTarget,
    tree: &RngTree,
    index: usize,
    provider: usize,
    share: f64,
    start: bool,
) {
    if start {
        let range = w.users_of(ProviderId(provider as u32));
        let users: Vec<UserId> = pick_users(tree, index, range, share)
            .into_iter()
            .filter(|u| w.is_enlisted(*u))
            .collect();
        for u in &users {
            w.set_enlisted(*u, false);
        }
        w.count("users_toggled_off", users.len() as u64);
        w.active().toggled.insert(index, users);
    } else if let Some(users) = w.active().toggled.remove(&index) {
        for u in users {
            w.set_enlisted(u, true);
        }
    }
}
