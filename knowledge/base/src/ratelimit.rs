//! Rate limits (token buckets from `governor`) whose memory stays bounded whatever the callers
//! send: keys are hashed to 64 bits with a per-limiter random key (so a 500 KB e-mail costs what
//! a short one does, and nobody can aim collisions), stale buckets are pruned as checks go by,
//! and past `max_keys` live buckets new keys share one overflow bucket instead of growing the map.
//!
//! On a deployment several servers share, a limit is one for all of them: given a [`RateStore`]
//! ([`Limit::shared`]), its buckets live there instead (the database's `rate_limits`, one row
//! per live key: GCRA, the token bucket as one timestamp), under a SHA-256 of the limit's name
//! and the key.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, RateLimiter};

use crate::error::Error;

/// Checks between two prunings of stale buckets.
const PRUNE_EVERY: u64 = 1024;
/// Live buckets a keyed limit keeps at most by default.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// The bucket keys share once the map is full.
const OVERFLOW: u64 = u64::MAX;

/// `n` per minute (at least one).
pub fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// `n` per hour (at least one), all of them available at once.
pub fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// `n` per day (at least one), all of them available at once.
pub fn per_day(n: u32) -> Quota {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(std::time::Duration::from_secs(86_400) / n.get())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(n)
}

/// The rate-limit error for a wait of `wait`.
fn limited(what: &str, wait: std::time::Duration) -> Error {
    Error::RateLimited {
        message: format!("{what}; retry in {} s", wait.as_secs().max(1)),
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// The rate-limit error for a limiter's "not until" answer.
fn rate_limited(
    what: &str,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> Error {
    limited(
        what,
        not_until.wait_time_from(DefaultClock::default().now()),
    )
}

/// Where the buckets of limits shared by every server of a deployment live.
#[async_trait]
pub trait RateStore: Send + Sync + std::fmt::Debug {
    /// Takes one cell of `key`'s bucket at `now_ms` (a cell comes back every `interval_ms`, at
    /// most `burst` are held): `None` when taken, else how many milliseconds until one is.
    async fn take(
        &self,
        key: &str,
        interval_ms: i64,
        burst: u32,
        now_ms: i64,
    ) -> Result<Option<u64>, Error>;
}

/// A limit's buckets in a [`RateStore`].
#[derive(Debug, Clone)]
struct Shared {
    rates: Arc<dyn RateStore>,
    name: &'static str,
    interval_ms: i64,
    burst: u32,
}

impl Shared {
    fn new(rates: Arc<dyn RateStore>, name: &'static str, quota: Quota) -> Self {
        Self {
            rates,
            name,
            interval_ms: i64::try_from(quota.replenish_interval().as_millis())
                .unwrap_or(i64::MAX)
                .max(1),
            burst: quota.burst_size().get(),
        }
    }

    async fn take(&self, key: &str, what: &str) -> Result<(), Error> {
        let digest = Sha256::new()
            .chain_update(self.name.as_bytes())
            .chain_update([0])
            .chain_update(key.as_bytes())
            .finalize();
        let row = format!("{}:{}", self.name, hex::encode(&digest[..16]));
        match self
            .rates
            .take(&row, self.interval_ms, self.burst, crate::time::now_ms())
            .await?
        {
            None => Ok(()),
            Some(wait_ms) => Err(limited(what, std::time::Duration::from_millis(wait_ms))),
        }
    }
}

/// A limit per key (client address, account, credential).
pub struct KeyedLimit {
    limiter: DefaultKeyedRateLimiter<u64>,
    hasher: RandomState,
    checks: AtomicU64,
    max_keys: usize,
    what: &'static str,
    quota: Quota,
    /// Set on a shared deployment: the buckets live there, not in `limiter`.
    shared: Option<Shared>,
}

impl std::fmt::Debug for KeyedLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimit")
            .field("what", &self.what)
            .field("keys", &self.limiter.len())
            .finish()
    }
}

/// What a client address is limited as: IPv4 (and IPv4 mapped into IPv6) as itself, IPv6 by its
/// /64.
pub fn client_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

impl KeyedLimit {
    /// `what` is the error's message when a key is over its limit.
    pub fn new(quota: Quota, what: &'static str) -> Self {
        Self::with_max_keys(quota, what, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(quota: Quota, what: &'static str, max_keys: usize) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            hasher: RandomState::new(),
            checks: AtomicU64::new(0),
            max_keys: max_keys.max(1),
            what,
            quota,
            shared: None,
        }
    }

    /// The same limit with its buckets in `rates` (when given) under `name`, one for every
    /// server that shares it.
    pub fn shared(mut self, rates: Option<&Arc<dyn RateStore>>, name: &'static str) -> Self {
        self.shared = rates.map(|r| Shared::new(r.clone(), name, self.quota));
        self
    }

    /// Takes one cell from `key`'s bucket, or says how long to wait.
    pub async fn check(&self, key: &str) -> Result<(), Error> {
        match &self.shared {
            Some(shared) => shared.take(key, self.what).await,
            None => self.check_here(key),
        }
    }

    fn check_here(&self, key: &str) -> Result<(), Error> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        let mut hashed = self.hasher.hash_one(key);
        if hashed == OVERFLOW {
            hashed -= 1;
        }
        if self.limiter.len() >= self.max_keys {
            self.prune();
            if self.limiter.len() >= self.max_keys {
                // full of live buckets (a flood): everyone shares one until they go stale
                hashed = OVERFLOW;
            }
        }
        self.limiter
            .check_key(&hashed)
            .map_err(|wait| rate_limited(self.what, wait))
    }

    /// Takes one cell from the bucket of the network a client address stands for: an IPv4
    /// address itself, an IPv6 address its /64 (one subscriber's allocation: a client holds the
    /// whole of it and may hop between its addresses at will).
    pub async fn check_address(&self, address: IpAddr) -> Result<(), Error> {
        self.check(&client_network(address).to_string()).await
    }

    /// Drops the buckets that are full again (indistinguishable from a new key).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Live buckets.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// One limit for everybody together.
pub struct GlobalLimit {
    limiter: DefaultDirectRateLimiter,
    what: &'static str,
    quota: Quota,
    shared: Option<Shared>,
}

impl std::fmt::Debug for GlobalLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalLimit")
            .field("what", &self.what)
            .finish()
    }
}

impl GlobalLimit {
    pub fn new(quota: Quota, what: &'static str) -> Self {
        Self {
            limiter: RateLimiter::direct(quota),
            what,
            quota,
            shared: None,
        }
    }

    /// The same limit kept in `rates` (when given) under `name`, one for every server.
    pub fn shared(mut self, rates: Option<&Arc<dyn RateStore>>, name: &'static str) -> Self {
        self.shared = rates.map(|r| Shared::new(r.clone(), name, self.quota));
        self
    }

    pub async fn check(&self) -> Result<(), Error> {
        match &self.shared {
            Some(shared) => shared.take("", self.what).await,
            None => self
                .limiter
                .check()
                .map_err(|wait| rate_limited(self.what, wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[tokio::test]
    async fn keys_have_their_own_buckets_and_big_keys_cost_nothing_more() {
        let limit = KeyedLimit::new(per_minute(2), "too many");
        let big = "x".repeat(500_000);
        assert!(limit.check(&big).await.is_ok());
        assert!(limit.check(&big).await.is_ok());
        let err = limit.check(&big).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(err.retry_after().is_some_and(|s| (1..=60).contains(&s)));
        assert!(limit.check("another").await.is_ok());
        assert_eq!(limit.len(), 2);
    }

    #[tokio::test]
    async fn an_ipv6_client_is_one_bucket_however_many_addresses_of_its_64_it_uses() {
        let limit = KeyedLimit::new(per_minute(3), "too many");
        let addr = |s: &str| s.parse::<IpAddr>().unwrap();
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            assert!(limit.check_address(addr(host)).await.is_ok(), "{host}");
        }
        let err = limit
            .check_address(addr("2001:db8:1:2:abcd::1"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        // the next /64, and IPv4 clients, have their own
        assert!(limit.check_address(addr("2001:db8:1:3::1")).await.is_ok());
        assert!(limit.check_address(addr("192.0.2.1")).await.is_ok());
        // an IPv4 address mapped into IPv6 is that IPv4 client
        assert_eq!(client_network(addr("::ffff:192.0.2.1")), addr("192.0.2.1"));
        assert_eq!(
            client_network(addr("2001:db8:1:2:3:4:5:6")),
            addr("2001:db8:1:2::")
        );
    }

    #[tokio::test]
    async fn a_flood_of_distinct_keys_stays_within_the_cap() {
        let limit = KeyedLimit::with_max_keys(per_minute(10), "too many", 1_000);
        for i in 0..50_000u32 {
            let _ = limit.check(&i.to_string()).await;
        }
        assert!(limit.len() <= 1_001, "{} buckets", limit.len());
        // the flood's overflow shares one bucket: it is soon refused as a whole
        let mut refused = false;
        for i in 0..20u32 {
            refused |= limit.check(&(1_000_000 + i).to_string()).await.is_err();
        }
        assert!(refused);
    }

    #[tokio::test]
    async fn stale_buckets_are_pruned() {
        // one cell a millisecond: a bucket is full again almost at once
        let quota = Quota::with_period(std::time::Duration::from_millis(1)).unwrap();
        let limit = KeyedLimit::new(quota, "too many");
        for i in 0..500u32 {
            let _ = limit.check(&i.to_string()).await;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        limit.prune();
        assert!(limit.is_empty(), "{} buckets left", limit.len());
    }

    #[tokio::test]
    async fn a_global_limit_is_shared() {
        let limit = GlobalLimit::new(per_hour(3), "busy");
        for _ in 0..3 {
            limit.check().await.unwrap();
        }
        assert_eq!(
            limit.check().await.unwrap_err().code(),
            ErrorCode::RateLimited
        );
    }
}
