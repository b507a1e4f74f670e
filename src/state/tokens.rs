//! The store behind personal access tokens (`[tokens]`): each token's record,
//! found by the hash of its secret (the secret itself is never stored), listed by
//! user, revoked by id. Every instance on a shared store sees a revocation at
//! its next look-up.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::auth::Identity;

/// A token as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its public id (what lists show and revocations name).
    pub id: String,
    /// The SHA-256 of its secret, in hex: what a request's token is looked up by.
    pub hash: String,
    pub user: String,
    /// The name its owner gave it.
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
    #[serde(default)]
    pub last_used: Option<u64>,
    /// Who created it, as they were then: where the user comes from (their groups
    /// are looked up again when the token is used).
    pub identity: Identity,
}

impl TokenRecord {
    /// Whether it has expired at `now` (Unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.expires <= now
    }
}

/// Where tokens live.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores `record` unless its user already holds `max_per_user` live tokens
    /// (`Ok(false)`).
    async fn create(&self, record: &TokenRecord, max_per_user: usize) -> Result<bool, StoreError>;
    /// The live token whose secret hashes to `hash`.
    async fn find(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Whether the token `id` of `user` is still live (not revoked, not expired).
    async fn live(&self, user: &str, id: &str) -> Result<bool, StoreError>;
    /// `user`'s live tokens, or everyone's with `None`, oldest first.
    async fn list(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes token `id` if it is `owner`'s (anyone's with `None`); the record
    /// it removed, if any.
    async fn revoke(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<TokenRecord>, StoreError>;
    /// Notes that the token was used at `at` (Unix seconds). Best effort.
    async fn used(&self, record: &TokenRecord, at: u64) -> Result<(), StoreError>;
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
