//! The `local` state backend (`[state] backend = "local"`, the default): everything
//! in this process's memory, ownership records and personal access tokens also in
//! `<server.data_dir>`, so they survive a restart. Right for one gateway instance; several instances behind a
//! balancer would each keep their own sessions, records and limits.

pub mod lockouts;
pub mod ownership;
pub mod quotas;
pub mod ratelimit;
pub mod sessions;
pub mod signins;
pub mod tokens;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

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
        signins: Arc::new(signins::MemorySignIns::default()),
        quotas: Arc::new(quotas::MemoryQuotas::default()),
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

/// Opens (or creates) the redb file `<data_dir>/<file>` with `table` in it,
/// creating the directory as needed; `what` names the store in errors ("token
/// store"). The file is locked while the database is open.
pub(crate) fn open_database(
    data_dir: &Path,
    file: &str,
    table: TableDefinition<&str, &str>,
    what: &str,
) -> Result<Database, StartupError> {
    let path = data_dir.join(file);
    let fail = |e: &dyn std::fmt::Display| {
        StartupError::Other(format!("cannot open {what} {}: {e}", path.display()))
    };
    std::fs::create_dir_all(data_dir).map_err(|source| StartupError::Io {
        what: "data directory",
        path: data_dir.to_path_buf(),
        source,
    })?;
    let db = Database::create(&path).map_err(|e| fail(&e))?;
    let txn = db.begin_write().map_err(|e| fail(&e))?;
    txn.open_table(table).map_err(|e| fail(&e))?;
    txn.commit().map_err(|e| fail(&e))?;
    Ok(db)
}
