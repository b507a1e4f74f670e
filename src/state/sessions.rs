//! The store behind the session cookie: which identity each live session id
//! stands for, with idle and absolute expiry.

use std::net::IpAddr;

use async_trait::async_trait;

use super::{RateLimiter, StoreError};
use crate::auth::Identity;
use crate::error::RequestError;

/// What the state says about a request on the cookie path
/// ([`SessionStore::admit`]).
#[derive(Debug, Default)]
pub struct Admitted {
    /// The first live session among the cookie's ids: its id and identity.
    pub session: Option<(String, Identity)>,
    /// The session user's rate limit, when it was checked with the session.
    pub user_limit: Option<Result<(), RequestError>>,
}

/// Where login sessions live.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a session for `identity` and returns its new id.
    async fn create(&self, identity: &Identity) -> Result<String, StoreError>;
    /// The identity of a live session, marking it used; `None` if unknown or
    /// expired.
    async fn touch(&self, id: &str) -> Result<Option<Identity>, StoreError>;
    /// Ends one session.
    async fn remove(&self, id: &str) -> Result<(), StoreError>;
    /// Ends every session of `user`.
    async fn remove_user(&self, user: &str) -> Result<(), StoreError>;
    /// Periodic upkeep (dropping expired sessions where the store does not expire
    /// them itself); returns how many sessions it holds, where it can tell.
    fn maintain(&self) -> Option<usize>;

    /// What the state says about a request before authentication: the client
    /// address's rate limit (refused: `Err`), the first live session among `ids`
    /// (each marked used), and, with `check_user`, that session user's limit. A
    /// store that keeps the limits beside the sessions does it all in one round
    /// trip; this default asks each store in turn.
    async fn admit(
        &self,
        limits: &dyn RateLimiter,
        ip: IpAddr,
        ids: &[&str],
        check_user: bool,
    ) -> Result<Admitted, RequestError> {
        admit_in_turn(self, limits, ip, ids, check_user).await
    }

    /// Whether the store answers (readiness).
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// [`SessionStore::admit`] asking each store in turn.
pub async fn admit_in_turn<S: SessionStore + ?Sized>(
    sessions: &S,
    limits: &dyn RateLimiter,
    ip: IpAddr,
    ids: &[&str],
    check_user: bool,
) -> Result<Admitted, RequestError> {
    limits.check_ip(ip).await?;
    for id in ids {
        if let Some(identity) = sessions.touch(id).await? {
            let user_limit = match check_user {
                true => Some(limits.check_user(&identity.user).await),
                false => None,
            };
            return Ok(Admitted {
                session: Some(((*id).to_owned(), identity)),
                user_limit,
            });
        }
    }
    Ok(Admitted::default())
}
