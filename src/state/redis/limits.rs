//! Request-rate limits in Redis: GCRA, one script per check, on Redis's clock, so
//! N instances enforce one limit rather than N. When Redis fails or is slow, a
//! check is decided by this instance's own limiter instead (logged, counted in
//! `rate_limit_fallbacks_total{kind}`): for as long as Redis is away each instance
//! allows its own share, which is what one instance would allow alone.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

use super::scripts::{self, Call};
use super::Redis;
use crate::config::{RateLimitConfig, RateSpec};
use crate::error::{Limit, RequestError};
use crate::metrics::{KindLabels, Metrics};
use crate::state::local::ratelimit::RateLimits;
use crate::state::{RateLimiter, StoreError};

/// A limit as the scripts take it: µs between requests on average, and the burst.
pub type Gcra = (u64, u32);

/// The limits in the form the scripts take them; `None` is off.
#[derive(Debug, Clone)]
pub struct Params {
    pub ip: Option<Gcra>,
    pub user: Option<Gcra>,
    pub create: Option<Gcra>,
    /// Users with a rate of their own; `(0, 0)` is no limit.
    pub overrides: Vec<(String, Gcra)>,
}

fn gcra(rps: f64, burst: u32) -> Option<Gcra> {
    (rps > 0.0 && rps.is_finite() && burst > 0)
        .then(|| ((1e6 / rps).round().max(1.0) as u64, burst))
}

impl Params {
    pub fn new(config: &RateLimitConfig) -> Self {
        let create = config.create_per_user_per_min;
        Self {
            ip: gcra(config.per_ip_rps, config.per_ip_burst),
            user: gcra(config.per_user_rps, config.per_user_burst),
            create: gcra(f64::from(create) / 60.0, create),
            overrides: config
                .overrides
                .iter()
                .map(|(user, RateSpec { rps, burst })| {
                    (user.clone(), gcra(*rps, *burst).unwrap_or((0, 0)))
                })
                .collect(),
        }
    }

    /// A user's limit: their override, or the per-user one.
    pub fn user_limit(&self, user: &str) -> Option<Gcra> {
        match self.overrides.iter().find(|(name, _)| name == user) {
            Some((_, (0, _))) => None,
            Some((_, own)) => Some(*own),
            None => self.user,
        }
    }
}

/// Whole seconds to wait for `Retry-After`, at least 1, from µs.
pub fn retry_after_us(wait_us: i64) -> u64 {
    u64::try_from(wait_us)
        .unwrap_or(0)
        .div_ceil(1_000_000)
        .max(1)
}

/// A [`RateLimiter`] in Redis, with this instance's own limiter behind it.
pub struct RedisRateLimits {
    redis: Arc<Redis>,
    params: Params,
    local: RateLimits,
    metrics: Arc<Metrics>,
}

impl RedisRateLimits {
    pub fn new(redis: Arc<Redis>, config: &RateLimitConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            redis,
            params: Params::new(config),
            local: RateLimits::new(config),
            metrics,
        }
    }

    /// Checks `key` against `limit` in Redis; when Redis fails, `local` (this
    /// instance's own limiter) decides.
    async fn decide(
        &self,
        key: String,
        (interval, burst): Gcra,
        limit: Limit,
        local: impl std::future::Future<Output = Result<(), RequestError>>,
    ) -> Result<(), RequestError> {
        let mut call = Call::new(&scripts::LIMIT);
        call.key(key).arg(interval).arg(burst);
        match self.redis.run::<i64>("rate_limit", &call).await {
            Ok(0) => Ok(()),
            Ok(wait) => Err(RequestError::RateLimited {
                limit,
                retry_after_secs: retry_after_us(wait),
            }),
            Err(error) => {
                self.fell_back(limit, &error);
                local.await
            }
        }
    }

    /// Notes that `limit` was decided locally because Redis failed.
    fn fell_back(&self, limit: Limit, error: &StoreError) {
        tracing::warn!(%error, limit = limit.as_str(), "shared rate limits unavailable; this instance's own decides");
        self.metrics
            .rate_limit_fallbacks
            .get_or_create(&KindLabels {
                kind: limit.as_str(),
            })
            .inc();
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimits {
    async fn check_ip(&self, ip: IpAddr) -> Result<(), RequestError> {
        let Some(gcra) = self.params.ip else {
            return Ok(());
        };
        let key = self.redis.key(format_args!("rate:ip:{ip}"));
        self.decide(key, gcra, Limit::Address, self.local.check_ip(ip))
            .await
    }

    async fn check_user(&self, user: &Arc<str>) -> Result<(), RequestError> {
        let Some(gcra) = self.params.user_limit(user) else {
            return Ok(());
        };
        let key = self.redis.key(format_args!("rate:user:{user}"));
        self.decide(key, gcra, Limit::User, self.local.check_user(user))
            .await
    }

    async fn check_create(&self, user: &Arc<str>) -> Result<(), RequestError> {
        let Some(gcra) = self.params.create else {
            return Ok(());
        };
        let key = self.redis.key(format_args!("rate:create:{user}"));
        self.decide(key, gcra, Limit::Create, self.local.check_create(user))
            .await
    }

    fn housekeeping(&self) {
        self.local.housekeeping();
    }

    fn shared(&self) -> Option<&Params> {
        Some(&self.params)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn overrides(pairs: &[(&str, f64, u32)]) -> HashMap<String, RateSpec> {
        pairs
            .iter()
            .map(|(user, rps, burst)| {
                let spec = RateSpec {
                    rps: *rps,
                    burst: *burst,
                };
                ((*user).to_owned(), spec)
            })
            .collect()
    }

    #[test]
    fn limits_become_intervals_and_overrides_replace_the_user_limit() {
        let config = RateLimitConfig {
            per_ip_rps: 100.0,
            per_ip_burst: 200,
            per_user_rps: 0.0,
            create_per_user_per_min: 30,
            overrides: overrides(&[("airflow", 4.0, 8), ("etl", 0.0, 0)]),
            ..RateLimitConfig::default()
        };
        let params = Params::new(&config);
        assert_eq!(params.ip, Some((10_000, 200)));
        assert_eq!(params.create, Some((2_000_000, 30)));
        assert_eq!(params.user_limit("alice"), None, "per-user limit off");
        assert_eq!(params.user_limit("airflow"), Some((250_000, 8)));
        assert_eq!(
            params.user_limit("etl"),
            None,
            "an override of 0 is no limit"
        );
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(retry_after_us(1), 1);
        assert_eq!(retry_after_us(1_000_000), 1);
        assert_eq!(retry_after_us(1_000_001), 2);
        assert_eq!(retry_after_us(-5), 1);
    }
}
