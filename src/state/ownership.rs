//! Who owns each Livy batch and session, as far as the gateway knows.
//!
//! A record is made when the gateway relays a 201 creation (the id comes from Livy's
//! answer, the owner is the identity the gateway asserted), or learnt from a Livy view
//! that names its `proxyUser`; it is dropped when a relayed DELETE succeeds, when
//! Livy answers 404 for its batch or session, and by either store once it has not
//! been looked at for `state.ownership_retention_days`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The two kinds of Livy resources that have owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Batch,
    Session,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Batch => "batch",
            Kind::Session => "session",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "batch" => Some(Kind::Batch),
            "session" => Some(Kind::Session),
            _ => None,
        }
    }

    /// The Livy collection its resources live in.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Batch => "batches",
            Kind::Session => "sessions",
        }
    }
}

/// What the gateway knows about one batch or session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The user it runs as (its effective `proxyUser`).
    pub owner: String,
    /// Its Livy name, if it was given one (for lookups by name).
    pub name: Option<String>,
}

/// A change to the ownership records.
#[derive(Debug, Clone)]
pub enum Change {
    Put(Kind, Vec<(u64, Record)>),
    Remove(Kind, u64),
}

/// Where ownership records live.
#[async_trait]
pub trait OwnershipStore: Send + Sync {
    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Record>, StoreError>;
    /// The records of `ids`, in order: one round trip for a whole listing.
    async fn get_many(&self, kind: Kind, ids: &[u64]) -> Result<Vec<Option<Record>>, StoreError>;
    /// The id of the resource called `name`, and its record.
    async fn find_by_name(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<(u64, Record)>, StoreError>;
    /// Applies `changes` in order, durably, all or none where the store can; a
    /// change that changes nothing costs no write.
    async fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError>;
    /// Every record (`state export`).
    async fn export(&self) -> Result<Vec<(Kind, u64, Record)>, StoreError>;
    /// Periodic upkeep (retention, where the store does not expire records itself).
    fn housekeeping(&self) {}
}
