//! What `[policy]`'s quotas count: each user's live sessions and batches, the
//! places taken by their creations in flight, and the creations in flight to
//! Livy from every user and instance (`max_creating`).
//!
//! A creation takes a place first ([`QuotaStore::reserve`]), in one step that
//! counts and takes, so concurrent creations from any number of instances never
//! pass a limit together; the place becomes a live resource when Livy answers
//! 201 ([`QuotaStore::settle`]) or is given back. A place not given back (an
//! instance that stopped mid-creation) lapses after its hold. A live resource is
//! released when the gateway sees it end ([`QuotaStore::release`]), and the whole
//! count is set right from Livy's listings ([`QuotaStore::reconcile`]), so it
//! never drifts after a crash or a job that ended while no one looked.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{Kind, StoreError};

/// What a reservation got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// A place, to settle when Livy has answered.
    Granted(Ticket),
    /// The user has `count` live (or being created) of the kind: at the limit.
    OverQuota { count: u64 },
    /// `max_creating` creations are in flight already.
    Busy,
}

/// A place taken for one creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub kind: Kind,
    pub user: String,
}

/// Where quotas are counted.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// Takes a place for a creation of `kind` by `user` if their live and
    /// in-flight count is under `limit` (0: no limit) and, with `max_creating`
    /// above 0, fewer creations than that are in flight everywhere. The place
    /// lapses after `hold`.
    async fn reserve(
        &self,
        kind: Kind,
        user: &str,
        limit: u32,
        max_creating: u32,
        hold: Duration,
    ) -> Result<Reserved, StoreError>;
    /// Gives the place back; with `created`, the resource Livy made counts as live.
    async fn settle(&self, ticket: &Ticket, created: Option<u64>) -> Result<(), StoreError>;
    /// `ids` of `kind` are no longer live (ended, deleted, gone from Livy).
    async fn release(&self, kind: Kind, ids: &[u64]) -> Result<(), StoreError>;
    /// Live ids of `kind` by user: `user`'s, or everyone's.
    async fn live(
        &self,
        kind: Kind,
        user: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<u64>>, StoreError>;
    /// Livy's account of `kind`: every live id and its owner, as listed at
    /// `asked` (Unix ms). What the store counts that Livy did not list, counted
    /// before `asked`, is released; what Livy listed that the store lacks is
    /// added. `users`: only theirs is set right (all with `None`).
    async fn reconcile(
        &self,
        kind: Kind,
        live: &[(u64, String)],
        asked: u64,
        users: Option<&[String]>,
    ) -> Result<(), StoreError>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
