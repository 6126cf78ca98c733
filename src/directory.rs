//! Who is who: users, their provider, their devices, and whether they enabled third-party
//! chats. Built once from the scenario; nodes read it (a real server would query its user
//! database). Enlistment changes at run time (the `toggle` fault), the rest never does.

use crate::wire::{DeviceId, ProviderId, UserId};
use std::sync::Arc;

/// The partner's transport to the gateway, as nodes need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerLink {
    Proxied,
    Direct,
}

/// How third-party chats travel: the scenario's `[topology] design`, as nodes need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Routing {
    /// Through the gatekeeper's gateway to its chat server, which holds every queue.
    #[default]
    Hub,
    /// MIMI: each client talks to its own provider's server only; a room's hub provider
    /// orders it and hands its messages to the follower providers.
    Mimi,
}

/// Read-mostly facts about users and devices, in dense arrays.
#[derive(Clone, Debug)]
pub struct Directory {
    /// Per provider: its first user and its user count (users are contiguous per provider).
    provider_users: Vec<(u32, u32)>,
    /// Per provider: the transport of its clients (the gatekeeper's entry is unused).
    partner_link: Vec<PartnerLink>,
    /// Per provider: its first user and its first device. A user's or a device's provider is
    /// found in these few words, not in a per-user array: at a million users that array was a
    /// cache miss on nearly every routing decision.
    user_starts: Vec<u32>,
    device_starts: Vec<u32>,
    /// Shared with the ledger's thread.
    owners: Arc<Owners>,
    /// Per user: third-party chats enabled.
    enlisted: Vec<bool>,
    routing: Routing,
}

/// Which user each device belongs to, and its place among the user's devices. Fixed for a
/// run, so the ledger's thread reads it too (see [`crate::metrics::feed`]) rather than the
/// simulation resolving the device of every ledger event, two cache misses each at a million
/// devices, before sending it over.
#[derive(Debug)]
pub struct Owners {
    /// Per user: first device; the user's devices are `first..first_of_next`.
    user_first_device: Vec<u32>,
    /// Per device: its user.
    device_user: Vec<u32>,
}

impl Owners {
    pub fn user_of(&self, d: DeviceId) -> UserId {
        UserId(self.device_user[d.index()])
    }
    /// Position of the device among its user's devices (0 is the primary).
    pub fn slot(&self, d: DeviceId) -> u32 {
        d.0 - self.user_first_device[self.user_of(d).index()]
    }
    /// The device's user and slot, as the ledger wants them.
    pub fn owner(&self, d: DeviceId) -> (UserId, u32) {
        (self.user_of(d), self.slot(d))
    }
}

impl Directory {
    /// `devices_per_user[u]` devices for user `u`; users numbered provider by provider.
    pub fn new(
        provider_users: &[u32],
        partner_link: Vec<PartnerLink>,
        devices_per_user: &[u8],
        enlisted: Vec<bool>,
    ) -> Self {
        let mut ranges = Vec::with_capacity(provider_users.len());
        let mut first = 0u32;
        for &n in provider_users {
            ranges.push((first, n));
            first += n;
        }
        assert_eq!(
            first as usize,
            devices_per_user.len(),
            "one device count per user"
        );
        assert_eq!(
            enlisted.len(),
            devices_per_user.len(),
            "one enlistment flag per user"
        );
        let mut user_first_device = Vec::with_capacity(devices_per_user.len() + 1);
        let mut device_user = Vec::new();
        let mut next = 0u32;
        for (u, &k) in devices_per_user.iter().enumerate() {
            assert!(k >= 1, "every user has a device");
            user_first_device.push(next);
            device_user.extend(std::iter::repeat_n(u as u32, k as usize));
            next += k as u32;
        }
        user_first_device.push(next);
        let user_starts: Vec<u32> = ranges.iter().map(|&(first, _)| first).collect();
        let device_starts = user_starts
            .iter()
            .map(|&u| user_first_device[u as usize])
            .collect();
        Directory {
            provider_users: ranges,
            partner_link,
            user_starts,
            device_starts,
            owners: Arc::new(Owners {
                user_first_device,
                device_user,
            }),
            enlisted,
            routing: Routing::Hub,
        }
    }

    /// The directory of a run whose third-party chats travel by `routing`.
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    pub fn routing(&self) -> Routing {
        self.routing
    }

    pub fn is_mimi(&self) -> bool {
        self.routing == Routing::Mimi
    }

    pub fn providers(&self) -> usize {
        self.provider_users.len()
    }
    pub fn users(&self) -> usize {
        self.owners.user_first_device.len() - 1
    }
    pub fn devices(&self) -> usize {
        self.owners.device_user.len()
    }
    pub fn provider_of_user(&self, u: UserId) -> ProviderId {
        debug_assert!(u.index() < self.users());
        provider_at(&self.user_starts, u.0)
    }
    pub fn provider_of_device(&self, d: DeviceId) -> ProviderId {
        debug_assert!(d.index() < self.devices());
        provider_at(&self.device_starts, d.0)
    }
    pub fn user_of(&self, d: DeviceId) -> UserId {
        self.owners.user_of(d)
    }
    pub fn devices_of(&self, u: UserId) -> impl Iterator<Item = DeviceId> + Clone {
        (self.owners.user_first_device[u.index()]..self.owners.user_first_device[u.index() + 1])
            .map(DeviceId)
    }
    pub fn device_count(&self, u: UserId) -> u32 {
        self.owners.user_first_device[u.index() + 1] - self.owners.user_first_device[u.index()]
    }
    /// The user's primary device (the phone): the one that answers and reads.
    pub fn primary_device(&self, u: UserId) -> DeviceId {
        DeviceId(self.owners.user_first_device[u.index()])
    }
    /// Position of the device among its user's devices (0 is the primary).
    pub fn device_slot(&self, d: DeviceId) -> u32 {
        self.owners.slot(d)
    }
    /// A cache hint for the user's device range (see [`crate::engine::prefetch`]).
    pub fn prefetch_user(&self, u: UserId) {
        if let Some(first) = self.owners.user_first_device.get(u.index()) {
            crate::engine::prefetch::prefetch(first);
        }
    }
    /// The device's user and slot, as a ledger wants them.
    pub fn owner(&self, d: DeviceId) -> (UserId, u32) {
        self.owners.owner(d)
    }
    /// The device-to-user map, to share with another thread.
    pub fn owners(&self) -> Arc<Owners> {
        Arc::clone(&self.owners)
    }
    /// Users of provider `p`, as a contiguous range of ids.
    pub fn users_of(&self, p: ProviderId) -> std::ops::Range<u32> {
        let (first, n) = self.provider_users[p.index()];
        first..first + n
    }
    /// Devices of provider `p`, as a contiguous range of ids.
    pub fn devices_of_provider(&self, p: ProviderId) -> std::ops::Range<u32> {
        let users = self.users_of(p);
        self.owners.user_first_device[users.start as usize]
            ..self.owners.user_first_device[users.end as usize]
    }
    pub fn partner_link(&self, p: ProviderId) -> PartnerLink {
        self.partner_link[p.index()]
    }
    pub fn is_gatekeeper(&self, p: ProviderId) -> bool {
        p.0 == 0
    }
    pub fn is_enlisted(&self, u: UserId) -> bool {
        self.enlisted[u.index()]
    }
    pub fn set_enlisted(&mut self, u: UserId, on: bool) {
        self.enlisted[u.index()] = on;
    }
    /// Whether a message from `a` to `b` crosses providers.
    pub fn is_interop(&self, a: UserId, b: UserId) -> bool {
        self.provider_of_user(a) != self.provider_of_user(b)
    }
    /// Whether `a` may message `b`: same provider always; across providers only when both
    /// enabled third-party chats.
    pub fn may_message(&self, a: UserId, b: UserId) -> bool {
        !self.is_interop(a, b) || (self.is_enlisted(a) && self.is_enlisted(b))
    }
}

/// The provider whose range, starting at its entry in `starts` (ascending), holds `id`. A
/// provider without users starts where the next one does, and the last of equal starts wins:
/// the one the id belongs to.
fn provider_at(starts: &[u32], id: u32) -> ProviderId {
    ProviderId(starts.partition_point(|&s| s <= id).saturating_sub(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_ranges() {
        let d = Directory::new(
            &[2, 1],
            vec![PartnerLink::Proxied; 2],
            &[1, 3, 2],
            vec![true, true, false],
        );
        assert_eq!(d.devices(), 6);
        assert_eq!(
            d.devices_of(UserId(1)).collect::<Vec<_>>(),
            vec![DeviceId(1), DeviceId(2), DeviceId(3)]
        );
        assert_eq!(d.devices_of_provider(ProviderId(1)), 4..6);
        assert_eq!(d.provider_of_device(DeviceId(5)), ProviderId(1));
        assert_eq!(d.device_slot(DeviceId(3)), 2);
        assert!(!d.may_message(UserId(0), UserId(2)));
        assert!(d.may_message(UserId(0), UserId(1)));
    }

    #[test]
    fn providers_are_found_from_their_ranges_even_around_an_empty_one() {
        let d = Directory::new(
            &[2, 0, 3, 1],
            vec![PartnerLink::Proxied; 4],
            &[1, 2, 1, 3, 1, 2],
            vec![true; 6],
        );
        let by_user: Vec<u32> = (0..6).map(|u| d.provider_of_user(UserId(u)).0).collect();
        assert_eq!(by_user, [0, 0, 2, 2, 2, 3]);
        let by_device: Vec<u32> = (0..d.devices() as u32)
            .map(|x| d.provider_of_device(DeviceId(x)).0)
            .collect();
        assert_eq!(by_device, [0, 0, 0, 2, 2, 2, 2, 2, 3, 3]);
        for p in 0..4 {
            for x in d.devices_of_provider(ProviderId(p)) {
                assert_eq!(d.provider_of_device(DeviceId(x)), ProviderId(p));
            }
        }
        assert!(d.is_interop(UserId(1), UserId(2)));
        assert!(!d.is_interop(UserId(2), UserId(4)));
    }
}
