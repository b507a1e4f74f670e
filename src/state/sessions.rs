//! The store behind the session cookie: which identity each live session id
//! stands for, with idle and absolute expiry.

use std::net::IpAddr;

use async_trait::async_trait;

use super::{Kind, RateLimiter, Record, StoreError};
use crate::auth::Identity;
use crate::error::RequestError;

/// What a request asks of the state before its phases run ([`SessionStore::admit`]).
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// The client's address, whose rate limit is checked first.
    pub ip: IpAddr,
    /// The session ids its cookies name, in order.
    pub ids: &'a [&'a str],
    /// Whether to check the session user's rate limit with the session (no
    /// credentials came with the request).
    pub check_user: bool,
    /// The ownership record its path names, if any: fetched with the session
    /// where the stores share a server, for the authorize phase.
    pub record: Option<(Kind, u64)>,
}

/// What the state says about a request before its phases run.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The first live session among the cookie's ids: its id and identity.
    pub session: Option<(String, Identity)>,
    /// The session user's rate limit, when it was checked with the session.
    pub user_limit: Option<Result<(), RequestError>>,
    /// The ownership record asked for, when it was fetched with the session.
    pub record: Option<Prefetched>,
}

/// An ownership record fetched ahead of the authorize phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefetched {
    pub kind: Kind,
    pub id: u64,
    /// `None`: there is no record.
    pub record: Option<Record>,
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
    /// address's rate limit (refused: `Err`), the first live session among the
    /// cookie's ids (each marked used), and, with `check_user`, that session
    /// user's limit. A store that keeps the limits and records beside the sessions
    /// does it all in one round trip, the record the path names included; this
    /// default asks each store in turn and leaves the record to the authorize
    /// phase.
    async fn admit(
        &self,
        limits: &dyn RateLimiter,
        admission: Admission<'_>,
    ) -> Result<Admitted, RequestError> {
        admit_in_turn(self, limits, admission).await
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
    admission: Admission<'_>,
) -> Result<Admitted, RequestError> {
    limits.check_ip(admission.ip).await?;
    for id in admission.ids {
        if let Some(identity) = sessions.touch(id).await? {
            let user_limit = match admission.check_user {
                true => Some(limits.check_user(&identity.user).await),
                false => None,
            };
            return Ok(Admitted {
                session: Some(((*id).to_owned(), identity)),
                user_limit,
                record: None,
            });
        }
    }
    Ok(Admitted::default())
}
