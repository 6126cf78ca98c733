//! The key directory (hosted by the gatekeeper): each device's signed prekey and pool of
//! one-time prekeys. A fetch consumes one one-time prekey; a drained pool serves the signed
//! prekey alone (weaker forward secrecy for that session's first message, as libsignal does);
//! the owner refills while online when the pool runs low.

use crate::wire::DeviceId;

/// What a bundle fetch returns, as the model needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleServed {
    pub device: DeviceId,
    /// The one-time prekey id handed out, if the pool had one.
    pub one_time_prekey: Option<u32>,
    /// Whether the pool is now below the refill threshold ("prekeys low" notice to the owner).
    pub low: bool,
}

#[derive(Clone, Debug)]
pub struct KeyDirectory {
    /// Per device: one-time prekey ids available, as a half-open range `next..end`.
    pools: Vec<(u32, u32)>,
    refill_below: u32,
    pub bundles_served: u64,
    pub bundles_without_one_time: u64,
}

impl KeyDirectory {
    pub fn new(devices: usize, initial: u32, refill_below: u32) -> Self {
        KeyDirectory {
            pools: vec![(0, initial); devices],
            refill_below,
            bundles_served: 0,
            bundles_without_one_time: 0,
        }
    }

    /// Whether the pool is below the refill threshold.
    pub fn is_low(&self, d: DeviceId) -> bool {
        self.pool_len(d) < self.refill_below
    }

    pub fn pool_len(&self, d: DeviceId) -> u32 {
        let (next, end) = self.pools[d.index()];
        end - next
    }

    pub fn fetch(&mut self, d: DeviceId) -> BundleServed {
        let pool = &mut self.pools[d.index()];
        self.bundles_served += 1;
        let one_time_prekey = if pool.0 < pool.1 {
            pool.0 += 1;
            Some(pool.0 - 1)
        } else {
            self.bundles_without_one_time += 1;
            None
        };
        BundleServed {
            device: d,
            one_time_prekey,
            low: pool.1 - pool.0 < self.refill_below,
        }
    }

    /// The owner uploads `count` fresh one-time prekeys.
    pub fn upload(&mut self, d: DeviceId, count: u32) {
        let pool = &mut self.pools[d.index()];
        pool.1 = pool.1.saturating_add(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_pool_serves_signed_prekey_only_until_refilled() {
        let mut k = KeyDirectory::new(2, 2, 1);
        let d = DeviceId(1);
        assert_eq!(k.fetch(d).one_time_prekey, Some(0));
        let second = k.fetch(d);
        assert_eq!(second.one_time_prekey, Some(1));
        assert!(second.low);
        assert_eq!(k.fetch(d).one_time_prekey, None);
        k.upload(d, 5);
        assert_eq!(k.fetch(d).one_time_prekey, Some(2));
        assert_eq!(k.pool_len(d), 4);
        assert_eq!(k.bundles_without_one_time, 1);
    }
}
