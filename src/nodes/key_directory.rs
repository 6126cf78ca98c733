//! The key directory (hosted by the gatekeeper): each device's signed prekey and pool of
//! one-time prekeys. A fetch consumes one one-time prekey; a drained pool serves the signed
//! prekey alone (weaker forward secrecy for that session's first message, as libsignal does);
//! the owner refills while online when the pool runs low.
//!
//! Fetches are rate-limited as Signal's server limits them: a token bucket per (requesting
//! device, fetched device), `[e2ee] bundle_fetch_burst` permits that refill at
//! `bundle_fetch_per_hour` (Signal's 6, one every 10 minutes). A prekey-drain adversary fetches
//! the same victims over and over: its excess fetches are refused and draw nothing, so the
//! pools drain at the refill rate at most.
//!
//! The adversary's excess fetches are refused. An honest device fetches a peer device's bundle
//! once per session (again only when a retry receipt or a reinstall renews it), so at Signal's
//! figures it never meets the limit (no CI scenario does). When it does (a tighter limit, many
//! renewals), its fetch gets the permit's wait back, as Signal's Retry-After: the client waits
//! that long, fetches, and its message leaves that much later (`crypto.bundle_fetch_wait_ns`,
//! `bundle_fetches_limited_honest`). The device's outbox sends in order, so its later messages
//! wait behind that one: a client with a queue per conversation would let other conversations
//! pass, so the model overstates the delay to them.

use crate::collections::tat_table::TatTable;
use crate::engine::SimTime;
use crate::scenario::BundleFetchLimit;
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

/// Who asks for a bundle, for the rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Requester {
    Device(DeviceId),
    /// The prekey-drain adversary of fault `index`: one account of its own.
    Adversary(u32),
}

/// A refused fetch: the same pair may fetch again after `retry_after_ns` (Retry-After).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_ns: u64,
}

#[derive(Clone, Debug)]
pub struct KeyDirectory {
    /// Per device: one-time prekey ids available, as a half-open range `next..end`.
    pools: Vec<(u32, u32)>,
    /// A refill tops a pool up to this many (the initial pool size: Signal uploads 100).
    refill_batch: u32,
    refill_below: u32,
    /// `None`: fetches are not limited.
    limiter: Option<FetchLimiter>,
    pub bundles_served: u64,
    pub bundles_without_one_time: u64,
}

impl KeyDirectory {
    pub fn new(devices: usize, initial: u32, refill_below: u32) -> Self {
        KeyDirectory {
            pools: vec![(0, initial); devices],
            refill_batch: initial,
            refill_below,
            limiter: None,
            bundles_served: 0,
            bundles_without_one_time: 0,
        }
    }

    /// Rate-limits bundle fetches (`None`: unlimited).
    pub fn with_fetch_limit(mut self, limit: Option<BundleFetchLimit>) -> Self {
        self.set_fetch_limit(limit);
        self
    }

    /// Limits fetches from now on (`None`: unlimited).
    pub fn set_fetch_limit(&mut self, limit: Option<BundleFetchLimit>) {
        self.limiter = limit.map(FetchLimiter::new);
    }

    /// A fetch of `d`'s bundle by `requester` at `now`, refused over the limit.
    pub fn fetch_limited(
        &mut self,
        now: SimTime,
        requester: Requester,
        d: DeviceId,
    ) -> Result<BundleServed, Limited> {
        if let Some(l) = self.limiter.as_mut() {
            let retry_after_ns = l.wait_ns(now, (requester, d));
            if retry_after_ns > 0 {
                return Err(Limited { retry_after_ns });
            }
            l.take(now, (requester, d));
        }
        Ok(self.fetch(d))
    }

    /// An honest client's fetch: booked in its bucket and served. Returns the bundle and how
    /// long the client waits for the permit first (0 within the limit; see the module doc).
    pub fn fetch_honest(
        &mut self,
        now: SimTime,
        requester: Requester,
        d: DeviceId,
    ) -> (BundleServed, u64) {
        let mut wait_ns = 0;
        if let Some(l) = self.limiter.as_mut() {
            wait_ns = l.wait_ns(now, (requester, d));
            l.take(now, (requester, d));
        }
        (self.fetch(d), wait_ns)
    }

    /// A cache hint for the limiter's entry of an honest fetch of `d`'s bundle by device
    /// `from` (see [`crate::engine::prefetch`]).
    pub fn prefetch_fetch(&self, from: DeviceId, d: DeviceId) {
        if let Some(l) = &self.limiter {
            l.tat.prefetch(pair_key(Requester::Device(from), d));
        }
    }

    /// A cache hint for device `d`'s pool (see [`crate::engine::prefetch`]).
    pub fn prefetch(&self, d: DeviceId) {
        if let Some(pool) = self.pools.get(d.index()) {
            crate::engine::prefetch::prefetch(pool);
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

    /// The owner of `d` is online: it tops its pool up to a full batch when it runs low
    /// (Signal's defaults: a batch of 100 when fewer than 10 are left). Returns how many it
    /// uploaded, `None` when the pool was not low.
    pub fn refill(&mut self, d: DeviceId) -> Option<u32> {
        if !self.is_low(d) {
            return None;
        }
        let missing = self.refill_batch.saturating_sub(self.pool_len(d));
        self.upload(d, missing);
        Some(missing)
    }

    /// The owner uploads `count` fresh one-time prekeys.
    pub fn upload(&mut self, d: DeviceId, count: u32) {
        let pool = &mut self.pools[d.index()];
        pool.1 = pool.1.saturating_add(count);
    }
}

/// Bound below which the limiter's table is never pruned (pruning is amortized over as many
/// fetches as the table holds).
const PRUNE_LEN_MIN: usize = 4096;

/// Token buckets as GCRA (the generic cell rate algorithm): per pair one instant, the
/// theoretical arrival time (TAT), at which the bucket is full again. Integer nanoseconds of
/// simulated time only. A pair whose TAT has passed has a full bucket, the same as a pair never
/// seen, so such entries are pruned: the table holds only pairs that fetched within the last
/// refill interval, not one entry per session ever set up.
#[derive(Clone, Debug)]
struct FetchLimiter {
    /// Time to earn one permit.
    emission_ns: u64,
    /// How far the TAT may run ahead of now: `(burst - 1) * emission_ns`.
    tolerance_ns: u64,
    /// Per pair (see [`pair_key`]): at a million devices every session start adds one, so the
    /// table is flat and its slots can be asked for ahead ([`KeyDirectory::prefetch_fetch`]).
    tat: TatTable,
    prune_at: usize,
}

/// A (requester, device) pair as the limiter's nonzero table key: the requester in the high
/// half (an adversary with the top bit set), the device in the low half, plus one. Device ids
/// and adversary indexes stay below 2^31 (a device's state is hundreds of bytes: 2^31 of them
/// would not fit in memory), so no two pairs share a key and none is 0.
fn pair_key(requester: Requester, d: DeviceId) -> u64 {
    const ADVERSARY: u64 = 1 << 31;
    let high = match requester {
        Requester::Device(r) => u64::from(r.0 & 0x7fff_ffff),
        Requester::Adversary(i) => ADVERSARY | u64::from(i & 0x7fff_ffff),
    };
    (high << 32 | u64::from(d.0 & 0x7fff_ffff)) + 1
}

impl FetchLimiter {
    fn new(limit: BundleFetchLimit) -> Self {
        const NS_PER_HOUR: f64 = 3.6e12;
        let burst = u64::from(limit.burst.max(1));
        // "Never" (a rate of 0) is an interval no run reaches that still cannot overflow.
        let never_ns = u64::MAX / 4 / burst;
        let emission_ns = if limit.per_hour > 0.0 {
            ((NS_PER_HOUR / limit.per_hour).round() as u64).clamp(1, never_ns)
        } else {
            never_ns
        };
        FetchLimiter {
            emission_ns,
            tolerance_ns: emission_ns * (burst - 1),
            tat: TatTable::default(),
            prune_at: PRUNE_LEN_MIN,
        }
    }

    /// The pair's TAT as of `now` (a full bucket's is `now`).
    fn tat_ns(&self, now: u64, pair: &(Requester, DeviceId)) -> u64 {
        let key = pair_key(pair.0, pair.1);
        self.tat.get(key).map_or(now, |t| t.max(now))
    }

    /// How long the pair has to wait at `now` for its next permit (0: it has one).
    fn wait_ns(&self, now: SimTime, pair: (Requester, DeviceId)) -> u64 {
        let now = now.as_nanos();
        let allowed_at = self.tat_ns(now, &pair).saturating_sub(self.tolerance_ns);
        allowed_at.saturating_sub(now)
    }

    /// Takes the pair's next permit: now, or (over the limit) the one still to come.
    fn take(&mut self, now: SimTime, pair: (Requester, DeviceId)) {
        let now = now.as_nanos();
        let tat = self.tat_ns(now, &pair).saturating_add(self.emission_ns);
        self.tat.insert(pair_key(pair.0, pair.1), tat);
        if self.tat.len() >= self.prune_at {
            // A rebuild writes a whole new table: worth it only when a quarter of the entries
            // or more have expired. (With Signal's limit, 6 an hour, almost none expire within
            // a short run, and a rebuild of a 1 M-user run's table was 1.7 % of its time.)
            let live = self.tat.count(|t| t > now);
            if live * 4 <= self.tat.len() * 3 {
                self.tat.retain(|t| t > now);
            }
            self.prune_at = (2 * self.tat.len()).max(PRUNE_LEN_MIN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000_000;

    fn at(minutes: u64) -> SimTime {
        SimTime::from_nanos(minutes * MIN)
    }

    #[test]
    fn signal_limit_allows_a_burst_of_six_then_one_per_ten_minutes() {
        let mut k = KeyDirectory::new(2, 100, 10);
        k.set_fetch_limit(Some(BundleFetchLimit::SIGNAL));
        let adversary = Requester::Adversary(0);
        let victim = DeviceId(1);
        for _ in 0..6 {
            assert!(k.fetch_limited(at(0), adversary, victim).is_ok());
        }
        let refused = k.fetch_limited(at(0), adversary, victim);
        assert_eq!(
            refused,
            Err(Limited {
                retry_after_ns: 10 * MIN
            })
        );
        assert!(k.fetch_limited(at(5), adversary, victim).is_err());
        assert!(k.fetch_limited(at(10), adversary, victim).is_ok());
        assert!(k.fetch_limited(at(10), adversary, victim).is_err());
        // Another requester, or another device, has a bucket of its own.
        assert!(k
            .fetch_limited(at(10), Requester::Device(DeviceId(0)), victim)
            .is_ok());
        assert!(k.fetch_limited(at(10), adversary, DeviceId(0)).is_ok());
        assert_eq!(k.pool_len(victim), 100 - 8, "refused fetches draw nothing");
    }

    #[test]
    fn an_honest_fetch_over_the_limit_is_served_and_says_how_long_it_would_wait() {
        let mut k = KeyDirectory::new(2, 100, 10);
        k.set_fetch_limit(Some(BundleFetchLimit {
            burst: 1,
            per_hour: 6.0,
        }));
        let me = Requester::Device(DeviceId(0));
        assert_eq!(k.fetch_honest(at(0), me, DeviceId(1)).1, 0);
        assert_eq!(k.fetch_honest(at(0), me, DeviceId(1)).1, 10 * MIN);
        assert_eq!(k.fetch_honest(at(0), me, DeviceId(1)).1, 20 * MIN);
        assert_eq!(k.fetch_honest(at(60), me, DeviceId(1)).1, 0);
    }

    #[test]
    fn a_rate_of_zero_gives_the_burst_once_and_unlimited_gives_everything() {
        let mut k = KeyDirectory::new(1, 1000, 10);
        k.set_fetch_limit(Some(BundleFetchLimit {
            burst: 2,
            per_hour: 0.0,
        }));
        let a = Requester::Adversary(3);
        assert!(k.fetch_limited(at(0), a, DeviceId(0)).is_ok());
        assert!(k.fetch_limited(at(0), a, DeviceId(0)).is_ok());
        assert!(k.fetch_limited(at(100_000), a, DeviceId(0)).is_err());
        k.set_fetch_limit(None);
        for _ in 0..500 {
            assert!(k.fetch_limited(at(0), a, DeviceId(0)).is_ok());
        }
    }

    #[test]
    fn pair_keys_tell_requesters_apart_and_are_never_zero() {
        let d = |i| DeviceId(i);
        let keys = [
            pair_key(Requester::Device(d(5)), d(7)),
            pair_key(Requester::Adversary(5), d(7)),
            pair_key(Requester::Device(d(7)), d(5)),
            pair_key(Requester::Device(d(0)), d(0)),
            pair_key(Requester::Adversary(0x7fff_ffff), d(0x7fff_ffff)),
        ];
        let distinct: std::collections::BTreeSet<u64> = keys.iter().copied().collect();
        assert_eq!(distinct.len(), keys.len());
        assert!(keys.iter().all(|&k| k != 0));
    }

    #[test]
    fn pruning_forgets_only_full_buckets() {
        let mut l = FetchLimiter::new(BundleFetchLimit::SIGNAL);
        let pair = |r: u32, d: u32| (Requester::Adversary(r), DeviceId(d));
        for d in 0..(PRUNE_LEN_MIN as u32 - 1) {
            l.take(at(0), pair(0, d));
        }
        // Fetched once at 0, those buckets are full again at 10 minutes: the next insertion
        // reaches the bound and prunes them.
        l.take(at(11), pair(1, 0));
        assert_eq!(l.tat.len(), 1);
        for _ in 0..6 {
            assert_eq!(l.wait_ns(at(11), pair(0, 0)), 0);
            l.take(at(11), pair(0, 0));
        }
        assert_eq!(l.wait_ns(at(11), pair(0, 0)), 10 * MIN);
    }

    #[test]
    fn a_prune_that_would_free_little_keeps_the_table() {
        let mut l = FetchLimiter::new(BundleFetchLimit::SIGNAL);
        let pair = |r: u32, d: u32| (Requester::Adversary(r), DeviceId(d));
        l.take(at(0), pair(0, 0));
        for d in 1..(PRUNE_LEN_MIN as u32 - 1) {
            l.take(at(11), pair(0, d));
        }
        l.take(at(11), pair(1, 0));
        assert_eq!(
            l.tat.len(),
            PRUNE_LEN_MIN,
            "one expired entry in 4096 is not worth a rebuild"
        );
        assert_eq!(l.prune_at, 2 * PRUNE_LEN_MIN);
        // The expired entry still reads as a full bucket, as a pruned one would.
        assert_eq!(l.wait_ns(at(11), pair(0, 0)), 0);
        assert_eq!(l.wait_ns(at(11), pair(0, 1)), 0, "burst 6: 5 permits left");
    }

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
