//! Where the gateway keeps what outlives one request: login sessions, who owns each
//! Livy batch and session, request-rate buckets and failed-login counters.
//!
//! Each is a trait ([`SessionStore`], [`OwnershipStore`], [`RateLimiter`],
//! [`Lockouts`]) whose operations are async and can fail, because a store shared by
//! several gateway instances lives across a network. A [`State`] bundles one of
//! each, chosen by `[state] backend` ([`State::open`]); `local` ([`local`]: memory,
//! ownership records also on disk) is the default. A failing store fails closed:
//! the request is answered 503 with `Retry-After` ([`StoreError`] becomes
//! [`crate::error::RequestError::StateUnavailable`]). A store owns whatever
//! background work it needs and stops it when dropped; nothing outside knows.

pub mod limits;
pub mod local;
pub mod ownership;
pub mod sessions;

use std::sync::Arc;

use crate::config::{Config, StateBackend};
use crate::error::StartupError;
pub use limits::{Lockouts, Outcome, RateLimiter, Reservation};
pub use ownership::{Change, Kind, OwnershipStore, Record};
pub use sessions::SessionStore;

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
}

impl State {
    /// Opens the stores `[state] backend` names.
    pub fn open(config: &Config) -> Result<Self, StartupError> {
        match config.state.backend {
            StateBackend::Local => local::open(config),
        }
    }

    /// The stores for a reloaded configuration: the same sessions and ownership
    /// records; rate-limit and lockout state too where their settings are unchanged,
    /// else fresh ones built for the new settings.
    pub fn reconfigured(&self, old: &Config, new: &Config) -> Self {
        let limits = match old.rate_limit == new.rate_limit {
            true => self.limits.clone(),
            false => local::rate_limiter(new),
        };
        let lockouts = match old.login == new.login {
            true => self.lockouts.clone(),
            false => local::lockouts(new),
        };
        Self {
            sessions: self.sessions.clone(),
            ownership: self.ownership.clone(),
            limits,
            lockouts,
        }
    }
}
