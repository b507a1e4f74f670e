//! Where the gateway keeps what outlives one request: login sessions, who owns each
//! Livy batch and session, request-rate buckets, failed-login counters and
//! personal access tokens.
//!
//! Each is a trait ([`SessionStore`], [`OwnershipStore`], [`RateLimiter`],
//! [`Lockouts`], [`TokenStore`], [`quotas::QuotaStore`]) whose operations are async and can fail, because a store shared by
//! several gateway instances lives across a network. A [`State`] bundles one of
//! each, chosen by `[state] backend` ([`State::open`]); `local` ([`local`]: memory,
//! ownership records also on disk) is the default. A failing store fails closed:
//! the request is answered 503 with `Retry-After` ([`StoreError`] becomes
//! [`crate::error::RequestError::StateUnavailable`]). A store owns whatever
//! background work it needs and stops it when dropped; nothing outside knows.

pub mod limits;
pub mod local;
pub mod ownership;
pub mod quotas;
pub mod redis;
pub mod sessions;
pub mod signins;
pub mod tokens;
pub mod transfer;

use std::sync::Arc;

use crate::config::{Config, StateBackend};
use crate::error::StartupError;
use crate::metrics::Metrics;
pub use limits::{Lockouts, Outcome, RateLimiter, Reservation};
pub use ownership::{Change, Kind, OwnershipStore, Record};
pub use sessions::{Admission, Admitted, Prefetched, SessionStore};
pub use tokens::{TokenRecord, TokenStore};

/// A store could not be reached or did not answer in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

/// The stores one gateway uses.
#[derive(Clone)]
pub struct State {
    pub sessions: Arc<dyn SessionStore>,
    pub ownership: Arc<dyn OwnershipStore>,
    pub limits: Arc<dyn RateLimiter>,
    pub lockouts: Arc<dyn Lockouts>,
    /// Browser sign-ins under way (`[auth.oidc]`).
    pub signins: Arc<dyn signins::SignInStore>,
    /// What `[policy]`'s quotas count.
    pub quotas: Arc<dyn quotas::QuotaStore>,
    /// Personal access tokens, with `[tokens] enabled`.
    pub tokens: Option<Arc<dyn TokenStore>>,
    /// The shared Redis the stores use, if they use one (new limit and lockout
    /// stores on reload are made on it).
    pub redis: Option<Arc<redis::Redis>>,
}

impl State {
    /// Opens the stores `[state] backend` names.
    pub fn open(config: &Config, metrics: &Arc<Metrics>) -> Result<Self, StartupError> {
        Self::open_backend(config, config.state.backend, metrics)
    }

    /// Opens the stores of `backend` (`state export` and `import` may name the
    /// other one).
    pub fn open_backend(
        config: &Config,
        backend: StateBackend,
        metrics: &Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        match backend {
            StateBackend::Local => local::open(config),
            StateBackend::Redis => redis::open(config, metrics),
        }
    }

    /// The stores for a reloaded configuration: the same sessions and ownership
    /// records; rate-limit and lockout state too where their settings are unchanged,
    /// else fresh ones built for the new settings.
    pub fn reconfigured(&self, old: &Config, new: &Config, metrics: &Arc<Metrics>) -> Self {
        let limits = match old.rate_limit == new.rate_limit {
            true => self.limits.clone(),
            false => match &self.redis {
                Some(shared) => redis::rate_limiter(shared, new, metrics),
                None => local::rate_limiter(new),
            },
        };
        let lockouts = match old.login == new.login {
            true => self.lockouts.clone(),
            false => match &self.redis {
                Some(shared) => Arc::new(redis::lockouts::RedisLockouts::new(
                    shared.clone(),
                    &new.login,
                )),
                None => local::lockouts(new),
            },
        };
        Self {
            sessions: self.sessions.clone(),
            ownership: self.ownership.clone(),
            limits,
            lockouts,
            signins: self.signins.clone(),
            quotas: self.quotas.clone(),
            tokens: self.tokens.clone(),
            redis: self.redis.clone(),
        }
    }
}
