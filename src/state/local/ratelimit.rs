//! Request rate limits in this process, with `governor`: per client address
//! (checked before authentication), per user (after it, with per-user overrides for
//! service accounts), and a separate limit on creating batches and sessions.
//!
//! A refused request is answered 429 with `Retry-After` (and counted in the
//! metrics). Limiter state is bounded:
//! [`RateLimits::housekeeping`] drops idle keys periodically, and a keyed limiter
//! that still holds more than `max_tracked_keys` (a flood of distinct addresses) is
//! reset, which at worst gives every key a fresh burst. Time comes from tokio's
//! clock, so tests can pause and advance it.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use async_trait::async_trait;

use crate::config::{RateLimitConfig, RateSpec};
use crate::error::{Limit, RequestError};
use crate::state;

/// governor's clock, driven by tokio's (pausable) time.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type KeyedLimiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, TokioClock, NoOpMiddleware<Duration>>;
type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A governor quota for `rate` requests per second with `burst`; `None` when disabled.
fn quota(rate_per_sec: f64, burst: u32) -> Option<Quota> {
    if rate_per_sec <= 0.0 || burst == 0 {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rate_per_sec);
    Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst)?))
}

/// Whole seconds to wait, at least 1, for `Retry-After`.
fn retry_after(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// A keyed limiter that can be reset when it tracks too many keys.
struct Keyed<K: Hash + Eq + Clone> {
    quota: Quota,
    clock: TokioClock,
    max_keys: usize,
    limiter: RwLock<Arc<KeyedLimiter<K>>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(quota: Quota, clock: &TokioClock, max_keys: usize) -> Self {
        Self {
            quota,
            clock: clock.clone(),
            max_keys,
            limiter: RwLock::new(Arc::new(RateLimiter::new(
                quota,
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ))),
        }
    }

    fn current(&self) -> Arc<KeyedLimiter<K>> {
        self.limiter.read().expect("limiter lock").clone()
    }

    /// `Err(wait)` when `key` is over its limit.
    fn check(&self, key: &K) -> Result<(), Duration> {
        let limiter = self.current();
        let result = limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        if limiter.len() > self.max_keys {
            limiter.retain_recent();
            if limiter.len() > self.max_keys {
                tracing::warn!(
                    keys = limiter.len(),
                    "rate limiter tracks too many keys; resetting it"
                );
                *self.limiter.write().expect("limiter lock") = Arc::new(RateLimiter::new(
                    self.quota,
                    DefaultKeyedStateStore::default(),
                    self.clock.clone(),
                ));
            }
        }
        result
    }

    fn housekeeping(&self) {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current().len()
    }
}

/// Every request rate limit the gateway applies.
pub struct RateLimits {
    per_ip: Option<Keyed<IpAddr>>,
    per_user: Option<Keyed<Arc<str>>>,
    /// Users with their own rate (service accounts).
    overrides: HashMap<String, Option<DirectLimiter>>,
    creates: Option<Keyed<Arc<str>>>,
    clock: TokioClock,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        let clock = TokioClock::default();
        let max = config.max_tracked_keys;
        let overrides = config
            .overrides
            .iter()
            .map(|(user, RateSpec { rps, burst })| {
                let limiter =
                    quota(*rps, *burst).map(|q| RateLimiter::direct_with_clock(q, clock.clone()));
                (user.clone(), limiter)
            })
            .collect();
        Self {
            per_ip: quota(config.per_ip_rps, config.per_ip_burst)
                .map(|q| Keyed::new(q, &clock, max)),
            per_user: quota(config.per_user_rps, config.per_user_burst)
                .map(|q| Keyed::new(q, &clock, max)),
            overrides,
            creates: quota(
                f64::from(config.create_per_user_per_min) / 60.0,
                config.create_per_user_per_min,
            )
            .map(|q| Keyed::new(q, &clock, max)),
            clock,
        }
    }

    fn refuse(&self, limit: Limit, wait: Duration) -> RequestError {
        RequestError::RateLimited {
            limit,
            retry_after_secs: retry_after(wait),
        }
    }

    /// Before authentication: the client address's limit.
    fn check_ip(&self, ip: IpAddr) -> Result<(), RequestError> {
        match &self.per_ip {
            Some(limiter) => limiter
                .check(&ip)
                .map_err(|w| self.refuse(Limit::Address, w)),
            None => Ok(()),
        }
    }

    /// After authentication: the user's limit (or their override).
    fn check_user(&self, user: &Arc<str>) -> Result<(), RequestError> {
        if let Some(own) = self.overrides.get(&**user) {
            return match own {
                Some(limiter) => limiter
                    .check()
                    .map_err(|n| self.refuse(Limit::User, n.wait_time_from(self.clock.now()))),
                None => Ok(()),
            };
        }
        match &self.per_user {
            Some(limiter) => limiter.check(user).map_err(|w| self.refuse(Limit::User, w)),
            None => Ok(()),
        }
    }

    /// Creating a batch or session.
    fn check_create(&self, user: &Arc<str>) -> Result<(), RequestError> {
        match &self.creates {
            Some(limiter) => limiter
                .check(user)
                .map_err(|w| self.refuse(Limit::Create, w)),
            None => Ok(()),
        }
    }

    /// Drops state of keys that are back to a full burst.
    fn housekeeping(&self) {
        for limiter in [&self.per_user, &self.creates].into_iter().flatten() {
            limiter.housekeeping();
        }
        if let Some(limiter) = &self.per_ip {
            limiter.housekeeping();
        }
    }

    /// Keys currently tracked (per address, per user, creations).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize, usize) {
        (
            self.per_ip.as_ref().map_or(0, Keyed::len),
            self.per_user.as_ref().map_or(0, Keyed::len),
            self.creates.as_ref().map_or(0, Keyed::len),
        )
    }
}

#[async_trait]
impl state::RateLimiter for RateLimits {
    async fn check_ip(&self, ip: IpAddr) -> Result<(), RequestError> {
        RateLimits::check_ip(self, ip)
    }

    async fn check_user(&self, user: &Arc<str>) -> Result<(), RequestError> {
        RateLimits::check_user(self, user)
    }

    async fn check_create(&self, user: &Arc<str>) -> Result<(), RequestError> {
        RateLimits::check_create(self, user)
    }

    fn housekeeping(&self) {
        RateLimits::housekeeping(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ip: (f64, u32), user: (f64, u32), creates: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_ip_rps: ip.0,
            per_ip_burst: ip.1,
            per_user_rps: user.0,
            per_user_burst: user.1,
            create_per_user_per_min: creates,
            max_tracked_keys: 1000,
            overrides: HashMap::from([(
                "svc".to_string(),
                RateSpec {
                    rps: 100.0,
                    burst: 100,
                },
            )]),
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after(Duration::from_millis(1)), 1);
        assert_eq!(retry_after(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after(Duration::ZERO), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn user_burst_then_429_then_refill() {
        let limits = RateLimits::new(&config((0.0, 0), (1.0, 3), 0));
        let alice: Arc<str> = Arc::from("alice");
        let bob: Arc<str> = Arc::from("bob");
        for _ in 0..3 {
            limits.check_user(&alice).unwrap();
        }
        match limits.check_user(&alice) {
            Err(RequestError::RateLimited {
                limit: Limit::User,
                retry_after_secs,
            }) => {
                assert_eq!(retry_after_secs, 1)
            }
            other => panic!("{other:?}"),
        }
        limits.check_user(&bob).expect("another user is unaffected");
        tokio::time::advance(Duration::from_secs(1)).await;
        limits
            .check_user(&alice)
            .expect("one token back after a second");
        assert!(limits.check_user(&alice).is_err());
        // The override account has its own, larger allowance.
        let svc: Arc<str> = Arc::from("svc");
        for _ in 0..100 {
            limits.check_user(&svc).unwrap();
        }
        assert!(limits.check_user(&svc).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn address_and_create_limits() {
        let limits = RateLimits::new(&config((2.0, 2), (0.0, 0), 2));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        limits.check_ip(ip).unwrap();
        limits.check_ip(ip).unwrap();
        assert!(limits.check_ip(ip).is_err());
        limits.check_ip("192.0.2.2".parse().unwrap()).unwrap();
        let alice: Arc<str> = Arc::from("alice");
        limits.check_user(&alice).expect("per-user limit disabled");
        limits.check_create(&alice).unwrap();
        limits.check_create(&alice).unwrap();
        match limits.check_create(&alice) {
            Err(RequestError::RateLimited {
                limit: Limit::Create,
                retry_after_secs,
            }) => {
                assert_eq!(retry_after_secs, 30)
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn state_stays_bounded_under_a_flood_of_addresses() {
        let mut c = config((1.0, 1), (0.0, 0), 0);
        c.max_tracked_keys = 100;
        let limits = RateLimits::new(&c);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            let _ = limits.check_ip(ip);
            assert!(limits.tracked().0 <= 101);
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        limits.housekeeping();
        assert_eq!(limits.tracked().0, 0);
    }
}
