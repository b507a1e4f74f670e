//! The operators' token commands (`livy-gateway token create|list|revoke`):
//! personal access tokens handled on the configured state backend directly, as
//! `state export` does (with the local backend, on a stopped gateway: its store
//! is locked while it runs; with Redis, beside running instances, which see a
//! revocation within `state.local_cache_ms`).

use std::sync::Arc;

use crate::auth::tokens::{issue, IssueError};
use crate::auth::{Identity, Lookup, Source};
use crate::config::Config;
use crate::error::StartupError;
use crate::metrics::Metrics;
use crate::state::{State, TokenStore};

/// The token store `config` names; an error when `[tokens]` is not enabled.
fn store(config: &Config) -> Result<Arc<dyn TokenStore>, StartupError> {
    if !config.tokens.enabled {
        return Err(StartupError::Other(
            "tokens are not enabled: set [tokens] enabled = true".into(),
        ));
    }
    let state = State::open(config, &Arc::new(Metrics::new()))?;
    state
        .tokens
        .ok_or_else(|| StartupError::Other("no token store".into()))
}

fn failed(error: impl std::fmt::Display) -> StartupError {
    StartupError::Other(error.to_string())
}

/// Where `user` comes from: the htpasswd file, else the directory (which must
/// know them), else a Kerberos realm's users.
async fn identity_of(config: &Config, user: &str) -> Result<Identity, StartupError> {
    let verifier = crate::auth::verifier(&config.auth, &Arc::new(Metrics::new()))?;
    if verifier.users().is_some_and(|users| users.contains(user)) {
        return Ok(Identity::new(user, Vec::new()));
    }
    if config.auth.ldap.is_some() {
        return match verifier.lookup(user).await.map_err(failed)? {
            Lookup::Found(identity) => Ok(identity),
            _ => Err(failed(format!("user {user:?} is not in the directory"))),
        };
    }
    if config.auth.kerberos.is_some() {
        return Ok(Identity {
            source: Source::Kerberos,
            ..Identity::new(user, Vec::new())
        });
    }
    Err(failed(format!(
        "user {user:?} is not a user of this gateway"
    )))
}

/// `token create`: issues a token to `user`; returns the lines to print (the
/// token itself once).
pub async fn create(
    config: &Config,
    user: &str,
    name: &str,
    ttl_days: Option<u64>,
) -> Result<String, StartupError> {
    let store = store(config)?;
    let identity = identity_of(config, user).await?;
    match issue(&*store, &config.tokens, &identity, name, ttl_days).await {
        Ok((record, secret)) => Ok(format!(
            "{secret}\nid {} for {} ({}), expires {}",
            record.id,
            record.user,
            record.name,
            crate::gateway::rfc3339(record.expires)
        )),
        Err(IssueError::Refused(why)) => Err(failed(why)),
        Err(IssueError::TooMany(most)) => Err(failed(format!(
            "{user} holds {most} tokens, the most allowed (tokens.max_per_user); revoke one first"
        ))),
        Err(IssueError::Store(error)) => Err(failed(error)),
    }
}

/// `token list`: `user`'s tokens (everyone's with `None`), one JSON object per
/// line, never a secret.
pub async fn list(config: &Config, user: Option<&str>) -> Result<String, StartupError> {
    let store = store(config)?;
    let listed = store.list(user).await.map_err(failed)?;
    Ok(listed
        .iter()
        .map(|record| crate::gateway::token_view(record).to_string() + "\n")
        .collect())
}

/// `token revoke`: revokes token `id`, whoever holds it.
pub async fn revoke(config: &Config, id: &str) -> Result<String, StartupError> {
    let store = store(config)?;
    match store.revoke(id, None).await.map_err(failed)? {
        Some(record) => Ok(format!(
            "revoked {} of {} ({})",
            record.id, record.user, record.name
        )),
        None => Err(failed(format!("no live token {id:?}"))),
    }
}
