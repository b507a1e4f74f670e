//! The store behind the session cookie: which identity each live session id
//! stands for, with idle and absolute expiry.

use async_trait::async_trait;

use super::StoreError;
use crate::auth::Identity;

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
}
