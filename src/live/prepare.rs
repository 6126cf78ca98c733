//! What a live run builds before its clock starts: the scenario scaled to live's one device
//! per user, the directory and keys, the generator shards with their devices and arrivals, and
//! the Signal sessions of every scheduled conversation (so the run measures steady-state
//! messaging, not a burst of handshakes).

use super::client::ShardSpec;
use super::crypto::{Crypto, KeyDirectory};
use super::schedule;
use crate::directory::Directory;
use crate::e2ee::DeviceKeys;
use crate::engine::RngTree;
use crate::nodes::buggify::Bugs;
use crate::nodes::device::{Device, DeviceConfig, GroupSend};
use crate::scenario::Scenario;
use crate::wire::{DeviceId, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::options::{LiveOptions, Remote};
use super::topology::PLAINTEXT_MARKER;

/// The scenario with live's simplifications: one device per user, users scaled.
pub fn live_scenario(s: &Scenario, users: Option<u32>) -> Scenario {
    let mut s = s.clone();
    let total: u64 = s.providers.iter().map(|p| p.users as u64).sum();
    for p in &mut s.providers {
        if let Some(u) = users {
            p.users = ((p.users as u64 * u as u64) / total.max(1)).max(2) as u32;
        }
        p.devices_min = 1;
        p.devices_max = 1;
    }
    s
}

/// The live directory: the simulator's, of the live scenario (one device per user), so that a
/// live run and its simulated copy in `validate` have the same users enlisted.
pub fn directory(s: &Scenario, tree: &RngTree) -> Directory {
    crate::sim::build_directory(s, tree)
}

/// Every device's keys and the published key directory.
pub(super) fn keys(dir: &Directory, tree: &RngTree) -> (Vec<DeviceKeys>, KeyDirectory) {
    let mut rng = tree.stream("live-keys", 0);
    let mut all = Vec::with_capacity(dir.devices());
    let mut bundles = Vec::with_capacity(dir.devices());
    for i in 0..dir.devices() as u32 {
        let mut k = DeviceKeys::generate(i + 1, 1, &mut rng);
        bundles.push(k.bundle(false, &mut rng));
        all.push(k);
    }
    (all, Arc::new(bundles))
}

/// The generator shards: devices, keys and arrivals split by device (dials come later).
pub(super) fn shard_specs(
    s: &Scenario,
    opts: &LiveOptions,
    dir: &Directory,
    tree: &RngTree,
    all_keys: Vec<DeviceKeys>,
    directory: KeyDirectory,
    plan: &schedule::Schedule,
) -> Vec<ShardSpec> {
    let arrivals = &plan.arrivals;
    let groups: Arc<[GroupSend]> = plan.groups.clone().into();
    let shards = opts.shards.max(1);
    let cfg = DeviceConfig {
        retry_initial_ns: s.devices.retry_initial_ns,
        retry_max_ns: s.devices.retry_max_ns,
        outbox_max: s.devices.outbox_max,
        reorder_hold_ns: (2 * s.devices.retry_max_ns).max(30_000_000_000),
        // The live generator keeps its plaintexts itself (it does its own Signal work).
        plaintext_cache_max: 0,
        reorder_held_max: 256,
        bugs: Bugs::NONE,
    };
    let mut keys_by_shard: Vec<Vec<Option<DeviceKeys>>> = (0..shards)
        .map(|_| (0..dir.devices()).map(|_| None).collect())
        .collect();
    // Which shard holds device d: a load generator k of n holds only the devices = k mod n.
    let (k, n) = opts
        .remote
        .map_or((0, 1), |r| (r.k as usize, r.n.max(1) as usize));
    let owner = |d: usize| (d % n == k).then_some((d / n) % shards);
    for (i, key) in all_keys.into_iter().enumerate() {
        if let Some(j) = owner(i) {
            keys_by_shard[j][i] = Some(key);
        }
    }
    let mine = |j: usize, d: DeviceId| owner(d.index()) == Some(j);
    keys_by_shard
        .into_iter()
        .enumerate()
        .map(|(j, keys)| ShardSpec {
            me: j,
            devices: (0..dir.devices() as u32)
                .map(|i| mine(j, DeviceId(i)).then(|| Device::new(DeviceId(i), dir, &cfg)))
                .collect(),
            cfg,
            crypto: Crypto::new(
                keys,
                directory.clone(),
                tree.stream("live-ratchet", j as u64),
            ),
            arrivals: arrivals
                .iter()
                .filter(|a| mine(j, dir.primary_device(a.from)))
                .copied()
                .collect(),
            lag_max_ns: opts.lag_max_ns,
            groups: groups.clone(),
            marker: PLAINTEXT_MARKER.to_vec(),
            messages: plan.ledger.records().len(),
            dials: Vec::new(),
            precrypted: Vec::new(),
            media: None,
            remote: opts.remote.is_some(),
        })
        .collect()
}

/// Establishes a Signal session for every conversation in the schedule before the clock
/// starts, as between contacts who have talked before: one message each way, encrypted and
/// decrypted for real, the last one in the direction of the conversation's first scheduled
/// message (the sender spoke last). The live run then measures steady-state messaging, not a
/// burst of X3DH handshakes in its first seconds, nor every conversation turning at once: a
/// recipient does its Double Ratchet DH step (three X25519 operations) when the conversation
/// turns, and ending the warm-up the other way round would put one such turn per
/// conversation in the first milliseconds of the run (3,110 of them in live-bench).
pub(super) fn warm_up_sessions(
    specs: &mut [ShardSpec],
    dir: &Directory,
    shards: usize,
    remote: Option<Remote>,
) {
    let (k, n) = remote.map_or((0, 1), |r| (r.k as usize, r.n.max(1) as usize));
    let shard_of = |d: DeviceId| (d.index() % n == k).then_some((d.index() / n) % shards);
    // Per conversation, its first scheduled message: (time, from, to). A group message's
    // Sender Key travels over the sessions between its sender and each member.
    let mut first = BTreeMap::new();
    for spec in specs.iter() {
        for a in &spec.arrivals {
            let x = dir.primary_device(a.from);
            let peers: Vec<UserId> = match a.group {
                Some(i) => spec.groups[i as usize].members.to_vec(),
                None => vec![a.to],
            };
            for to in peers {
                let y = dir.primary_device(to);
                let e = first.entry((x.min(y), x.max(y))).or_insert((a.at, x, y));
                if a.at < e.0 {
                    *e = (a.at, x, y);
                }
            }
        }
    }
    for (_, from, to) in first.into_values() {
        let (Some(i), Some(j)) = (shard_of(from), shard_of(to)) else {
            continue;
        };
        for (a, b, sa, sb) in [(to, from, j, i), (from, to, i, j)] {
            let Ok(ct) = specs[sa].crypto.encrypt(a, b, b"hello") else {
                continue;
            };
            let _ = specs[sb].crypto.decrypt(b, a, &ct);
        }
    }
}

/// Encrypts every shard's messages before the clock starts (one thread per shard), so that
/// the senders' Signal work is off the measured path; recipients still decrypt live.
pub(super) fn precrypt(specs: &mut [ShardSpec], dir: &Directory) {
    std::thread::scope(|scope| {
        for spec in specs.iter_mut() {
            scope.spawn(move || {
                let mut plain = Vec::new();
                spec.precrypted = spec
                    .arrivals
                    .iter()
                    .map(|a| {
                        if a.group.is_some() || a.media_bytes > 0 {
                            // Encrypted at send time (`send_group`, `upload_then_send`).
                            return None;
                        }
                        let (own, peer) = (dir.primary_device(a.from), dir.primary_device(a.to));
                        super::crypto::plaintext(&spec.marker, a.msg, a.body_bytes, &mut plain);
                        spec.crypto.encrypt(own, peer, &plain).ok()
                    })
                    .collect();
            });
        }
    });
}
