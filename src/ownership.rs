//! Who owns each Livy batch and session, as far as the gateway knows.
//!
//! A record is made when the gateway relays a 201 creation (the id comes from Livy's
//! answer, the owner is the identity the gateway asserted), or learnt from a Livy view
//! that names its `proxyUser`; it is dropped when a relayed DELETE succeeds. Records
//! are kept in memory for lookups on every request and written through to an
//! embedded redb file under `server.data_dir`, so they survive restarts. The
//! [`OwnershipStore`] trait keeps the storage replaceable (a store shared by several
//! gateway instances comes later).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::StartupError;

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

    fn parse(s: &str) -> Option<Self> {
        match s {
            "batch" => Some(Kind::Batch),
            "session" => Some(Kind::Session),
            _ => None,
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

/// Failure to persist a record.
#[derive(Debug, thiserror::Error)]
#[error("ownership store: {0}")]
pub struct StoreError(String);

/// Where ownership records live.
pub trait OwnershipStore: Send + Sync {
    fn get(&self, kind: Kind, id: u64) -> Option<Record>;
    /// The id of the resource called `name`, and its record.
    fn find_by_name(&self, kind: Kind, name: &str) -> Option<(u64, Record)>;
    /// Stores a record, replacing any earlier one for the id. May block on disk I/O.
    fn put(&self, kind: Kind, id: u64, record: Record) -> Result<(), StoreError>;
    /// Forgets a resource. May block on disk I/O.
    fn remove(&self, kind: Kind, id: u64) -> Result<(), StoreError>;
}

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("owners");

/// File name of the store inside `server.data_dir`.
pub const FILE_NAME: &str = "ownership.redb";

/// An [`OwnershipStore`] in a redb file, with every record also held in memory.
pub struct RedbOwnershipStore {
    db: Database,
    /// Keyed by Livy's ids, which clients do not choose: a fast hash is safe.
    cache: RwLock<HashMap<(Kind, u64), Record, foldhash::fast::RandomState>>,
}

fn key(kind: Kind, id: u64) -> String {
    format!("{}/{id}", kind.as_str())
}

impl RedbOwnershipStore {
    /// Opens (or creates) `<data_dir>/ownership.redb` and loads every record.
    pub fn open(data_dir: &Path) -> Result<Self, StartupError> {
        let path = data_dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| {
            StartupError::Other(format!(
                "cannot open ownership store {}: {e}",
                path.display()
            ))
        };
        std::fs::create_dir_all(data_dir).map_err(|source| StartupError::Io {
            what: "data directory",
            path: data_dir.to_path_buf(),
            source,
        })?;
        let db = Database::create(&path).map_err(|e| fail(&e))?;
        let txn = db.begin_write().map_err(|e| fail(&e))?;
        txn.open_table(TABLE).map_err(|e| fail(&e))?;
        txn.commit().map_err(|e| fail(&e))?;

        let mut cache = HashMap::default();
        let read = db.begin_read().map_err(|e| fail(&e))?;
        let table = read.open_table(TABLE).map_err(|e| fail(&e))?;
        for entry in table.iter().map_err(|e| fail(&e))? {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            let parsed = k
                .value()
                .split_once('/')
                .and_then(|(kind, id)| Some((Kind::parse(kind)?, id.parse::<u64>().ok()?)));
            match (parsed, serde_json::from_str::<Record>(v.value())) {
                (Some(key), Ok(record)) => {
                    cache.insert(key, record);
                }
                _ => tracing::warn!(key = k.value(), "skipping unreadable ownership record"),
            }
        }
        drop(table);
        tracing::info!(records = cache.len(), file = %path.display(), "ownership store loaded");
        Ok(Self {
            db,
            cache: RwLock::new(cache),
        })
    }

    fn write(
        &self,
        f: impl FnOnce(&mut redb::Table<&str, &str>) -> Result<(), redb::StorageError>,
    ) -> Result<(), StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError(e.to_string());
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| err(&e))?;
            f(&mut table).map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))
    }
}

impl OwnershipStore for RedbOwnershipStore {
    fn get(&self, kind: Kind, id: u64) -> Option<Record> {
        self.cache
            .read()
            .expect("ownership lock")
            .get(&(kind, id))
            .cloned()
    }

    fn find_by_name(&self, kind: Kind, name: &str) -> Option<(u64, Record)> {
        self.cache
            .read()
            .expect("ownership lock")
            .iter()
            .find(|((k, _), r)| *k == kind && r.name.as_deref() == Some(name))
            .map(|((_, id), r)| (*id, r.clone()))
    }

    fn put(&self, kind: Kind, id: u64, record: Record) -> Result<(), StoreError> {
        if self.get(kind, id).as_ref() == Some(&record) {
            return Ok(());
        }
        let value = serde_json::to_string(&record).map_err(|e| StoreError(e.to_string()))?;
        self.write(|t| t.insert(key(kind, id).as_str(), value.as_str()).map(drop))?;
        self.cache
            .write()
            .expect("ownership lock")
            .insert((kind, id), record);
        Ok(())
    }

    fn remove(&self, kind: Kind, id: u64) -> Result<(), StoreError> {
        if self.get(kind, id).is_none() {
            return Ok(());
        }
        self.write(|t| t.remove(key(kind, id).as_str()).map(drop))?;
        self.cache
            .write()
            .expect("ownership lock")
            .remove(&(kind, id));
        Ok(())
    }
}

/// A change to the ownership records.
#[derive(Debug)]
pub enum Change {
    Put(Kind, Vec<(u64, Record)>),
    Remove(Kind, u64),
}

/// Applies a change on the blocking pool (it may wait for the disk), logging rather
/// than failing on error: the request it belongs to already succeeded at Livy.
pub async fn persist(store: &Arc<dyn OwnershipStore>, change: Change) {
    let store = store.clone();
    let result = tokio::task::spawn_blocking(move || match change {
        Change::Put(kind, records) => records
            .into_iter()
            .try_for_each(|(id, record)| store.put(kind, id, record)),
        Change::Remove(kind, id) => store.remove(kind, id),
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "ownership record not saved"),
        Err(error) => tracing::error!(%error, "ownership write task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(owner: &str, name: Option<&str>) -> Record {
        Record {
            owner: owner.into(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbOwnershipStore::open(dir.path()).unwrap();
            store
                .put(Kind::Batch, 3, rec("alice", Some("nightly")))
                .unwrap();
            store.put(Kind::Session, 3, rec("bob", None)).unwrap();
            store.put(Kind::Batch, 4, rec("carol", None)).unwrap();
            store.remove(Kind::Batch, 4).unwrap();
        }
        let store = RedbOwnershipStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get(Kind::Batch, 3),
            Some(rec("alice", Some("nightly")))
        );
        assert_eq!(store.get(Kind::Session, 3), Some(rec("bob", None)));
        assert_eq!(store.get(Kind::Batch, 4), None);
        assert_eq!(store.find_by_name(Kind::Batch, "nightly").unwrap().0, 3);
        assert!(store.find_by_name(Kind::Session, "nightly").is_none());
    }
}
