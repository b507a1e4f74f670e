//! The `redis` state backend (`[state] backend = "redis"`): sessions, ownership
//! records, rate limits, lockouts and personal access tokens in one Redis server shared by every gateway
//! instance, so a cookie issued by one works on all, each limit and lockout holds
//! across them, and a batch made through one is its owner's through any.
//!
//! Every operation is one Lua script ([`scripts`]), run whole by Redis (so
//! concurrent instances never see half a change) and timed on Redis's clock (so
//! instances with drifting clocks count alike); concurrent requests' scripts go
//! to Redis together ([`batch`]); what the cookie path read may be answered from
//! this instance's near cache for a moment, kept true by Redis pub/sub ([`near`]).
//! Keys start with `state.key_prefix`; sessions, limits and counters expire by
//! themselves, and ownership records after `state.ownership_retention_days` unseen.
//!
//! Each operation waits at most `state.timeout_ms`. A failure or timeout is a
//! [`StoreError`]: sessions and ownership fail closed (503), rate limits fall back
//! to this instance's own limiter ([`limits`]). The connection is made on first
//! use and made again after Redis comes back, without a restart.

mod batch;
pub mod limits;
pub mod lockouts;
mod near;
pub mod ownership;
pub mod quotas;
mod scripts;
pub mod sessions;
pub mod signins;
pub mod tokens;

use std::sync::{Arc, Once};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, IntoConnectionInfo};

use self::batch::Batcher;
use self::near::NearCache;
use self::scripts::Call;

use crate::config::{Config, StateConfig};
use crate::error::StartupError;
use crate::metrics::{Metrics, OpLabels};
use crate::state::{State, StoreError};

/// The connection to the shared Redis, and how keys are named in it.
pub struct Redis {
    manager: ConnectionManager,
    batcher: Batcher,
    prefix: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// The near cache (`state.local_cache_ms` > 0), and what its listener needs,
    /// started on first use.
    near: Option<Arc<NearCache>>,
    client: redis::Client,
    listening: Once,
}

impl Redis {
    /// Prepares the connection (made on first use): the URL, the password from
    /// its file, the trust for `rediss://`.
    pub fn connect(config: &StateConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, StartupError> {
        let fail = |message: String| StartupError::Other(format!("state.redis_url: {message}"));
        let mut info = config
            .redis_url
            .as_str()
            .into_connection_info()
            .map_err(|e| fail(e.to_string()))?;
        if let Some(path) = config
            .redis_password_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            let text = std::fs::read_to_string(path).map_err(|source| StartupError::Io {
                what: "Redis password file",
                path: path.clone(),
                source,
            })?;
            let password = text.lines().next().unwrap_or_default();
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = match config
            .ca_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| StartupError::Io {
                    what: "Redis CA file",
                    path: path.clone(),
                    source,
                })?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(info, certificates)
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| fail(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            // Reconnecting is retried briefly; past that the next operation tries again.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| fail(e.to_string()))?;
        let near = (!config.local_cache.is_zero())
            .then(|| Arc::new(NearCache::new(config.local_cache, &metrics)));
        Ok(Arc::new(Self {
            batcher: Batcher::new(manager.clone()),
            manager,
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            metrics,
            near,
            client,
            listening: Once::new(),
        }))
    }

    /// The near cache, its listener started (on the first call, which is on the
    /// runtime); `None` when it is off.
    fn near(&self) -> Option<&NearCache> {
        let near = self.near.as_ref()?;
        self.listening.call_once(|| {
            let channel = self.key(format_args!("invalidate"));
            near::spawn_listener(near, self.client.clone(), channel, self.timeout);
        });
        Some(near)
    }

    /// A key: the prefix, then `name`.
    fn key(&self, name: std::fmt::Arguments<'_>) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs a script, waiting at most `state.timeout_ms`; failures are counted as
    /// `state_errors_total{op}`.
    async fn run<T: FromRedisValue>(&self, op: &'static str, call: &Call) -> Result<T, StoreError> {
        let reply = self.batcher.send(call.script, call.command());
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(Ok(value))) => {
                redis::from_redis_value(value).map_err(|e| self.failed(op, e.to_string()))
            }
            Ok(Ok(Err(error))) => Err(self.failed(op, error)),
            Ok(Err(_)) => Err(self.failed(op, "the call was not sent".into())),
            Err(_) => Err(self.failed(
                op,
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        }
    }

    fn failed(&self, op: &'static str, why: String) -> StoreError {
        self.metrics
            .state_errors
            .get_or_create(&OpLabels { op })
            .inc();
        StoreError(format!("redis {op}: {why}"))
    }

    /// Runs one plain command (or an atomic pipeline), waiting at most
    /// `state.timeout_ms`; failures are counted as `state_errors_total{op}`.
    async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.manager.clone();
        let reply = pipeline.query_async::<T>(&mut connection);
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.failed(op, error.to_string())),
            Err(_) => Err(self.failed(
                op,
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        }
    }

    /// Whether Redis answers (`PING`) in time (readiness, `check-config --probe`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.manager.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(self.failed("ping", error.to_string())),
            Err(_) => Err(self.failed(
                "ping",
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
        }
    }
}

/// The Redis stores for `config`.
pub fn open(config: &Config, metrics: &Arc<Metrics>) -> Result<State, StartupError> {
    let redis = Redis::connect(&config.state, metrics.clone())?;
    Ok(State {
        sessions: Arc::new(sessions::RedisSessions::new(
            redis.clone(),
            &config.session,
            config.state.ownership_retention,
        )),
        ownership: Arc::new(ownership::RedisOwnership::new(
            redis.clone(),
            config.state.ownership_retention,
        )),
        limits: rate_limiter(&redis, config, metrics),
        lockouts: Arc::new(lockouts::RedisLockouts::new(redis.clone(), &config.login)),
        signins: Arc::new(signins::RedisSignIns::new(redis.clone())),
        quotas: Arc::new(quotas::RedisQuotas::new(redis.clone())),
        tokens: match config.tokens.enabled {
            true => Some(Arc::new(tokens::RedisTokens::new(redis.clone()))),
            false => None,
        },
        redis: Some(redis),
    })
}

/// Shared rate limits for `config`, with this instance's own as the fallback.
pub fn rate_limiter(
    redis: &Arc<Redis>,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Arc<dyn crate::state::RateLimiter> {
    Arc::new(limits::RedisRateLimits::new(
        redis.clone(),
        &config.rate_limit,
        metrics.clone(),
    ))
}
