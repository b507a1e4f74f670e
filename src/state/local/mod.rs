//! The `local` state backend (`[state] backend = "local"`, the default): everything
//! in this process's memory, ownership records and personal access tokens also in
//! `<server.data_dir>`, so they survive a restart. Right for one gateway instance; several instances behind a
//! balancer would each keep their own sessions, records and limits.

pub mod lockouts;
pub mod ownership;
pub mod ratelimit;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

use crate::config::Config;
use crate::error::StartupError;
use crate::state::{Lockouts, RateLimiter, State};

/// The local stores for `config`.
pub fn open(config: &Config) -> Result<State, StartupError> {
    Ok(State {
        sessions: Arc::new(sessions::MemorySessionStore::new(
            config.session.idle_timeout,
            config.session.absolute_timeout,
            config.session.max_sessions,
        )),
        ownership: Arc::new(ownership::RedbOwnershipStore::open(
            &config.server.data_dir,
            config.state.ownership_retention,
        )?),
        limits: rate_limiter(config),
        lockouts: lockouts(config),
        tokens: match config.tokens.enabled {
            true => Some(Arc::new(tokens::RedbTokenStore::open(
                &config.server.data_dir,
            )?)),
            false => None,
        },
        redis: None,
    })
}

/// In-process rate limits for `config`.
pub fn rate_limiter(config: &Config) -> Arc<dyn RateLimiter> {
    Arc::new(ratelimit::RateLimits::new(&config.rate_limit))
}

/// In-process lockouts for `config`.
pub fn lockouts(config: &Config) -> Arc<dyn Lockouts> {
    Arc::new(lockouts::LoginThrottle::new(&config.login))
}
