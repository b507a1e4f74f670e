//! Who owns each Livy batch and session, as far as the gateway knows.
//!
//! A record is made when the gateway relays a 201 creation (the id comes from Livy's
//! answer, the owner is the identity the gateway asserted), or learnt from a Livy view
//! that names its `proxyUser`; it is dropped when a relayed DELETE succeeds. Records
//! are kept in memory for lookups on every request and written through to an
//! embedded redb file under `server.data_dir`, so they survive restarts. The
//! [`OwnershipStore`] trait keeps the storage replaceable (a store shared by several
//! gateway instances comes later).
//!
//! Writes go through one [`Writer`] thread, which commits whatever changes have
//! queued up meanwhile in a single transaction (one disk sync for many creations).
//! A request that changed ownership is answered only once its change is on disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, RwLock};

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
#[derive(Debug, Clone, thiserror::Error)]
#[error("ownership store: {0}")]
pub struct StoreError(String);

/// Where ownership records live.
pub trait OwnershipStore: Send + Sync {
    fn get(&self, kind: Kind, id: u64) -> Option<Record>;
    /// The id of the resource called `name`, and its record.
    fn find_by_name(&self, kind: Kind, name: &str) -> Option<(u64, Record)>;
    /// Applies `changes` in order, all or none where the store can (one
    /// transaction). May block on disk I/O.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;

    /// Stores a record, replacing any earlier one for the id. May block on disk I/O.
    fn put(&self, kind: Kind, id: u64, record: Record) -> Result<(), StoreError> {
        self.apply(&[Change::Put(kind, vec![(id, record)])])
    }
    /// Forgets a resource. May block on disk I/O.
    fn remove(&self, kind: Kind, id: u64) -> Result<(), StoreError> {
        self.apply(&[Change::Remove(kind, id)])
    }
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

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        // Each key's state once the changes before it are applied: what a change is
        // compared with, and in the end what the cache becomes. A record equal to the
        // stored one, or the removal of an unknown id, needs no write.
        let mut after: HashMap<(Kind, u64), Option<&Record>> = HashMap::new();
        let mut writes: Vec<(String, Option<String>)> = Vec::new();
        {
            let cache = self.cache.read().expect("ownership lock");
            for change in changes {
                match change {
                    Change::Put(kind, records) => {
                        for (id, record) in records {
                            let current = match after.get(&(*kind, *id)) {
                                Some(state) => *state,
                                None => cache.get(&(*kind, *id)),
                            };
                            if current != Some(record) {
                                let value = serde_json::to_string(record)
                                    .map_err(|e| StoreError(e.to_string()))?;
                                writes.push((key(*kind, *id), Some(value)));
                                after.insert((*kind, *id), Some(record));
                            }
                        }
                    }
                    Change::Remove(kind, id) => {
                        let known = match after.get(&(*kind, *id)) {
                            Some(state) => state.is_some(),
                            None => cache.contains_key(&(*kind, *id)),
                        };
                        if known {
                            writes.push((key(*kind, *id), None));
                            after.insert((*kind, *id), None);
                        }
                    }
                }
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.write(|table| {
            for (key, value) in &writes {
                match value {
                    Some(value) => table.insert(key.as_str(), value.as_str()).map(drop)?,
                    None => table.remove(key.as_str()).map(drop)?,
                }
            }
            Ok(())
        })?;
        let mut cache = self.cache.write().expect("ownership lock");
        for (key, state) in after {
            match state {
                Some(record) => cache.insert(key, record.clone()),
                None => cache.remove(&key),
            };
        }
        Ok(())
    }
}

/// A change to the ownership records.
#[derive(Debug)]
pub enum Change {
    Put(Kind, Vec<(u64, Record)>),
    Remove(Kind, u64),
}

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 1024;

/// One queued change, and who waits for it.
struct Job {
    change: Change,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// The thread that writes ownership changes. Each time it wakes it takes every
/// change queued meanwhile (up to [`MAX_BATCH`]) and applies them together, so many
/// concurrent creations cost one transaction and one disk sync rather than one
/// each, and never more than one thread. The thread ends when the last handle goes.
#[derive(Clone)]
pub struct Writer {
    store: Arc<dyn OwnershipStore>,
    queue: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(store: Arc<dyn OwnershipStore>) -> Result<Self, StartupError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let writing = store.clone();
        std::thread::Builder::new()
            .name("ownership-writer".into())
            .spawn(move || {
                while let Ok(first) = jobs.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (changes, waiting): (Vec<Change>, Vec<_>) =
                        batch.into_iter().map(|job| (job.change, job.done)).unzip();
                    let result = writing.apply(&changes);
                    for done in waiting {
                        let _ = done.send(result.clone());
                    }
                }
            })
            .map_err(|e| StartupError::Other(format!("cannot start the ownership writer: {e}")))?;
        Ok(Self { store, queue })
    }

    /// The store this writer writes to (for lookups).
    pub fn store(&self) -> &Arc<dyn OwnershipStore> {
        &self.store
    }

    /// Writes `change` and waits until it is on disk, logging rather than failing on
    /// error: the request it belongs to already succeeded at Livy.
    pub async fn persist(&self, change: Change) {
        let unchanged = match &change {
            Change::Put(kind, records) => records
                .iter()
                .all(|(id, record)| self.store.get(*kind, *id).as_ref() == Some(record)),
            Change::Remove(kind, id) => self.store.get(*kind, *id).is_none(),
        };
        if unchanged {
            // Already so (a listing seen again, a repeated answer): nothing to write.
            return;
        }
        let (done, written) = tokio::sync::oneshot::channel();
        if self.queue.send(Job { change, done }).is_err() {
            tracing::error!("ownership writer stopped: record not saved");
            return;
        }
        match written.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "ownership record not saved"),
            Err(_) => tracing::error!("ownership writer stopped: record not saved"),
        }
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

    #[test]
    fn a_batch_applies_its_changes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbOwnershipStore::open(dir.path()).unwrap();
            store.put(Kind::Batch, 1, rec("alice", None)).unwrap();
            store
                .apply(&[
                    // Made and forgotten within one batch: gone, on disk too.
                    Change::Put(Kind::Batch, vec![(2, rec("bob", None))]),
                    Change::Remove(Kind::Batch, 2),
                    // Forgotten and made again: present.
                    Change::Remove(Kind::Batch, 1),
                    Change::Put(Kind::Batch, vec![(1, rec("carol", None))]),
                    // Unknown id: nothing to do.
                    Change::Remove(Kind::Session, 9),
                ])
                .unwrap();
            assert_eq!(store.get(Kind::Batch, 2), None);
            assert_eq!(store.get(Kind::Batch, 1), Some(rec("carol", None)));
        }
        let store = RedbOwnershipStore::open(dir.path()).unwrap();
        assert_eq!(store.get(Kind::Batch, 2), None);
        assert_eq!(store.get(Kind::Batch, 1), Some(rec("carol", None)));
    }

    /// Counts the changes in each batch it is given; the first batch waits until
    /// the test lets it go. Knows one record: batch 1000, alice's.
    struct Gate {
        batches: std::sync::Mutex<Vec<usize>>,
        entered: std::sync::Mutex<mpsc::Sender<()>>,
        release: std::sync::Mutex<mpsc::Receiver<()>>,
    }

    impl OwnershipStore for Gate {
        fn get(&self, _: Kind, id: u64) -> Option<Record> {
            (id == 1000).then(|| rec("alice", None))
        }
        fn find_by_name(&self, _: Kind, _: &str) -> Option<(u64, Record)> {
            None
        }
        fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
            let first = {
                let mut batches = self.batches.lock().unwrap();
                batches.push(changes.len());
                batches.len() == 1
            };
            if first {
                self.entered.lock().unwrap().send(()).unwrap();
                self.release.lock().unwrap().recv().unwrap();
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn changes_queued_during_a_write_go_out_together() {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            batches: std::sync::Mutex::new(Vec::new()),
            entered: std::sync::Mutex::new(entered_tx),
            release: std::sync::Mutex::new(release_rx),
        });
        let writer = Writer::start(gate.clone()).unwrap();
        let put = |id| Change::Put(Kind::Batch, vec![(id, rec("alice", None))]);

        let first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.persist(put(0)).await }
        });
        // The writer is inside its first transaction…
        tokio::task::spawn_blocking(move || entered.recv().unwrap())
            .await
            .unwrap();
        // …while fifty more creations queue up (each sends on its first poll).
        let rest: Vec<_> = (1..=50)
            .map(|id| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.persist(put(id)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        first.await.unwrap();
        for task in rest {
            task.await.unwrap();
        }
        // A change that changes nothing is not written at all.
        writer.persist(put(1000)).await;
        assert_eq!(*gate.batches.lock().unwrap(), vec![1, 50]);
    }
}
