//! Ownership records in this process: every record held in memory (with an index by
//! name) for lookups on every request, and written through to an embedded redb
//! file, `<server.data_dir>/ownership.redb`, so they survive restarts.
//!
//! Writes go through the store's own writer thread, which commits whatever changes
//! have queued up meanwhile in a single transaction (one disk sync for many
//! creations) and ends when the store is dropped. A change is acknowledged only once
//! it is on disk; a change that changes nothing is not written at all.
//!
//! Retention: each record keeps when it was last written or looked at (`seen`, on
//! disk beside it). A record looked at when its `seen` is older than an eighth of
//! the retention time is written again with a fresh one (so a record in use costs
//! a write a few times per retention period, not one per request), and
//! [`OwnershipStore::housekeeping`] drops records unseen for the whole retention
//! time: Livy has forgotten their batch or session long before.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::StartupError;
use crate::state::{Change, Kind, OwnershipStore, Record, StoreError};

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("owners");

/// File name of the store inside `server.data_dir`.
pub const FILE_NAME: &str = "ownership.redb";

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 1024;

fn key(kind: Kind, id: u64) -> String {
    format!("{}/{id}", kind.as_str())
}

/// Seconds since the Unix epoch (what `seen` is kept in, on disk and in memory).
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A record as written to disk: the record and when it was last seen. Records
/// written before retention existed have no `seen`; they count as seen at load.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    record: Record,
    #[serde(default)]
    seen: Option<u64>,
}

/// The records held in memory. Keyed by Livy's ids and names as Livy reported
/// them, which clients do not choose freely: a fast hash is safe.
#[derive(Default)]
struct Records {
    by_id: HashMap<(Kind, u64), Record, foldhash::fast::RandomState>,
    by_name: HashMap<(Kind, String), u64, foldhash::fast::RandomState>,
    /// When each record was last written or looked at (Unix seconds).
    seen: HashMap<(Kind, u64), u64, foldhash::fast::RandomState>,
}

impl Records {
    fn put(&mut self, kind: Kind, id: u64, record: Record, seen: u64) {
        self.seen.insert((kind, id), seen);
        if let Some(old) = self.by_id.get(&(kind, id)) {
            if let Some(name) = &old.name {
                self.by_name.remove(&(kind, name.clone()));
            }
        }
        if let Some(name) = &record.name {
            self.by_name.insert((kind, name.clone()), id);
        }
        self.by_id.insert((kind, id), record);
    }

    fn remove(&mut self, kind: Kind, id: u64) {
        self.seen.remove(&(kind, id));
        if let Some(old) = self.by_id.remove(&(kind, id)) {
            if let Some(name) = old.name {
                self.by_name.remove(&(kind, name));
            }
        }
    }
}

/// What the store and its writer thread share.
struct Inner {
    db: Database,
    records: RwLock<Records>,
    /// Records looked at whose `seen` has grown old, to be written again.
    stale: Mutex<HashSet<(Kind, u64)>>,
    retention: Duration,
    /// Transactions committed (tests see batching through it).
    commits: AtomicUsize,
    /// Held by a test to stop the writer before its next commit.
    #[cfg(test)]
    gate: std::sync::Mutex<()>,
    /// Jobs handed to the writer (tests wait on it).
    #[cfg(test)]
    queued: AtomicUsize,
}

/// One queued change, and who waits for it.
struct Job {
    changes: Vec<Change>,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// An [`OwnershipStore`] in a redb file, with every record also held in memory.
pub struct RedbOwnershipStore {
    inner: Arc<Inner>,
    /// To the writer thread; dropping it ends the thread.
    queue: Option<mpsc::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RedbOwnershipStore {
    /// Ends the writer thread once it has written what was queued, so the file is
    /// closed (and may be opened again) when the store is gone.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl RedbOwnershipStore {
    /// Opens (or creates) `<data_dir>/ownership.redb`, loads every record and starts
    /// the writer thread.
    pub fn open(data_dir: &Path, retention: Duration) -> Result<Self, StartupError> {
        let path = data_dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| {
            StartupError::Other(format!(
                "cannot open ownership store {}: {e}",
                path.display()
            ))
        };
        let db = super::open_database(data_dir, FILE_NAME, TABLE, "ownership store")?;

        let mut records = Records::default();
        let loaded_at = now_secs();
        let read = db.begin_read().map_err(|e| fail(&e))?;
        let table = read.open_table(TABLE).map_err(|e| fail(&e))?;
        for entry in table.iter().map_err(|e| fail(&e))? {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            let parsed = k
                .value()
                .split_once('/')
                .and_then(|(kind, id)| Some((Kind::parse(kind)?, id.parse::<u64>().ok()?)));
            match (parsed, serde_json::from_str::<Stored>(v.value())) {
                (Some((kind, id)), Ok(stored)) => {
                    records.put(kind, id, stored.record, stored.seen.unwrap_or(loaded_at))
                }
                _ => tracing::warn!(key = k.value(), "skipping unreadable ownership record"),
            }
        }
        drop(table);
        tracing::info!(records = records.by_id.len(), file = %path.display(), "ownership store loaded");
        let inner = Arc::new(Inner {
            db,
            records: RwLock::new(records),
            stale: Mutex::new(HashSet::new()),
            retention,
            commits: AtomicUsize::new(0),
            #[cfg(test)]
            gate: Default::default(),
            #[cfg(test)]
            queued: AtomicUsize::new(0),
        });
        let (queue, jobs) = mpsc::channel::<Job>();
        let writing = inner.clone();
        let writer = std::thread::Builder::new()
            .name("ownership-writer".into())
            .spawn(move || write_batches(&writing, &jobs))
            .map_err(|e| StartupError::Other(format!("cannot start the ownership writer: {e}")))?;
        Ok(Self {
            inner,
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// Notes that `kind`/`id` was looked at; its `seen` is renewed at the next
    /// housekeeping if it has grown older than an eighth of the retention time.
    fn looked_at(&self, records: &Records, kind: Kind, id: u64) {
        let renew_after = self.inner.retention.as_secs() / 8;
        if let Some(seen) = records.seen.get(&(kind, id)) {
            if now_secs().saturating_sub(*seen) > renew_after {
                self.inner
                    .stale
                    .lock()
                    .expect("stale lock")
                    .insert((kind, id));
            }
        }
    }

    /// Makes every record look `secs` older (tests of retention).
    #[cfg(test)]
    fn age(&self, secs: u64) {
        let mut records = self.inner.records.write().expect("ownership lock");
        for seen in records.seen.values_mut() {
            *seen = seen.saturating_sub(secs);
        }
    }

    /// Waits until the writer has written everything queued so far (tests).
    #[cfg(test)]
    async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        self.queue
            .as_ref()
            .unwrap()
            .send(Job {
                changes: Vec::new(),
                done,
            })
            .unwrap();
        written.await.unwrap().unwrap();
    }

    /// Queues `changes` for the writer without waiting for them (housekeeping).
    fn queue_quietly(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let (done, _) = tokio::sync::oneshot::channel();
        if let Some(queue) = &self.queue {
            let _ = queue.send(Job { changes, done });
        }
    }

    /// Whether applying `changes` would change nothing.
    fn unchanged(&self, changes: &[Change]) -> bool {
        let records = self.inner.records.read().expect("ownership lock");
        changes.iter().all(|change| match change {
            Change::Put(kind, items) => items
                .iter()
                .all(|(id, record)| records.by_id.get(&(*kind, *id)) == Some(record)),
            Change::Remove(kind, id) => !records.by_id.contains_key(&(*kind, *id)),
        })
    }
}

/// The writer thread: each time it wakes it takes every change queued meanwhile
/// (up to [`MAX_BATCH`] jobs) and commits them together, so many concurrent
/// creations cost one transaction and one disk sync rather than one each.
fn write_batches(inner: &Inner, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let changes: Vec<&Change> = batch.iter().flat_map(|job| &job.changes).collect();
        let result = inner.apply(&changes);
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

impl Inner {
    /// Writes `changes` in one transaction, then shows them in memory.
    fn apply(&self, changes: &[&Change]) -> Result<(), StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError(e.to_string());
        #[cfg(test)]
        let _gate = self.gate.lock().expect("test gate");
        let seen = now_secs();
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(TABLE).map_err(|e| err(&e))?;
            for change in changes {
                match change {
                    Change::Put(kind, items) => {
                        for (id, record) in items {
                            let stored = Stored {
                                record: record.clone(),
                                seen: Some(seen),
                            };
                            let value = serde_json::to_string(&stored).map_err(|e| err(&e))?;
                            table
                                .insert(key(*kind, *id).as_str(), value.as_str())
                                .map_err(|e| err(&e))?;
                        }
                    }
                    Change::Remove(kind, id) => {
                        table
                            .remove(key(*kind, *id).as_str())
                            .map_err(|e| err(&e))?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| err(&e))?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        let mut records = self.records.write().expect("ownership lock");
        for change in changes {
            match change {
                Change::Put(kind, items) => {
                    for (id, record) in items {
                        records.put(*kind, *id, record.clone(), seen);
                    }
                }
                Change::Remove(kind, id) => records.remove(*kind, *id),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl OwnershipStore for RedbOwnershipStore {
    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Record>, StoreError> {
        let records = self.inner.records.read().expect("ownership lock");
        self.looked_at(&records, kind, id);
        Ok(records.by_id.get(&(kind, id)).cloned())
    }

    async fn get_many(&self, kind: Kind, ids: &[u64]) -> Result<Vec<Option<Record>>, StoreError> {
        let records = self.inner.records.read().expect("ownership lock");
        Ok(ids
            .iter()
            .map(|id| {
                self.looked_at(&records, kind, *id);
                records.by_id.get(&(kind, *id)).cloned()
            })
            .collect())
    }

    async fn find_by_name(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<(u64, Record)>, StoreError> {
        let records = self.inner.records.read().expect("ownership lock");
        let found = records
            .by_name
            .get(&(kind, name.to_owned()))
            .and_then(|id| {
                records
                    .by_id
                    .get(&(kind, *id))
                    .map(|record| (*id, record.clone()))
            });
        if let Some((id, _)) = &found {
            self.looked_at(&records, kind, *id);
        }
        Ok(found)
    }

    async fn export(&self) -> Result<Vec<(Kind, u64, Record)>, StoreError> {
        let records = self.inner.records.read().expect("ownership lock");
        let mut all: Vec<_> = records
            .by_id
            .iter()
            .map(|((kind, id), record)| (*kind, *id, record.clone()))
            .collect();
        all.sort_by_key(|(kind, id, _)| (kind.as_str(), *id));
        Ok(all)
    }

    /// Renews the `seen` of records looked at since it grew old, and drops records
    /// unseen for the retention time.
    fn housekeeping(&self) {
        let now = now_secs();
        let retention = self.inner.retention.as_secs();
        let stale = std::mem::take(&mut *self.inner.stale.lock().expect("stale lock"));
        let mut changes = Vec::new();
        {
            let records = self.inner.records.read().expect("ownership lock");
            for (kind, id) in &stale {
                if let Some(record) = records.by_id.get(&(*kind, *id)) {
                    changes.push(Change::Put(*kind, vec![(*id, record.clone())]));
                }
            }
            // Looked at since the last housekeeping: in use, however old its `seen`.
            let expired = records.seen.iter().filter(|(key, seen)| {
                now.saturating_sub(**seen) > retention && !stale.contains(key)
            });
            for ((kind, id), _) in expired {
                changes.push(Change::Remove(*kind, *id));
            }
        }
        self.queue_quietly(changes);
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if self.unchanged(&changes) {
            // Already so (a listing seen again, a repeated answer): nothing to write.
            return Ok(());
        }
        let (done, written) = tokio::sync::oneshot::channel();
        let stopped = || StoreError("the ownership writer has stopped".into());
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { changes, done })
            .map_err(|_| stopped())?;
        #[cfg(test)]
        self.inner.queued.fetch_add(1, Ordering::Relaxed);
        written.await.map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: Duration = Duration::from_secs(30 * 86_400);

    fn rec(owner: &str, name: Option<&str>) -> Record {
        Record {
            owner: owner.into(),
            name: name.map(str::to_owned),
        }
    }

    fn put(kind: Kind, id: u64, record: Record) -> Vec<Change> {
        vec![Change::Put(kind, vec![(id, record)])]
    }

    #[tokio::test]
    async fn records_unseen_for_the_retention_time_are_dropped_and_use_renews_them() {
        const DAY: u64 = 86_400;
        let dir = tempfile::tempdir().unwrap();
        let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
        for id in [1, 2] {
            store
                .apply(put(
                    Kind::Batch,
                    id,
                    rec("alice", Some(&format!("job-{id}"))),
                ))
                .await
                .unwrap();
        }
        // Eight days on, batch 1 is looked at: its `seen` is renewed on disk.
        store.age(8 * DAY);
        assert!(store.get(Kind::Batch, 1).await.unwrap().is_some());
        store.housekeeping();
        store.flush().await;
        // Twenty-five more days: batch 2, unseen for 33, goes; batch 1 stays.
        store.age(25 * DAY);
        store.housekeeping();
        store.flush().await;
        assert!(store.get(Kind::Batch, 1).await.unwrap().is_some());
        assert_eq!(store.get(Kind::Batch, 2).await.unwrap(), None);
        assert_eq!(
            store.find_by_name(Kind::Batch, "job-2").await.unwrap(),
            None
        );
        drop(store);
        let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
        assert_eq!(
            store.get(Kind::Batch, 2).await.unwrap(),
            None,
            "gone from disk too"
        );
        assert!(store.get(Kind::Batch, 1).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
            store
                .apply(put(Kind::Batch, 3, rec("alice", Some("nightly"))))
                .await
                .unwrap();
            store
                .apply(put(Kind::Session, 3, rec("bob", None)))
                .await
                .unwrap();
            store
                .apply(put(Kind::Batch, 4, rec("carol", None)))
                .await
                .unwrap();
            store
                .apply(vec![Change::Remove(Kind::Batch, 4)])
                .await
                .unwrap();
        }
        let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
        assert_eq!(
            store.get(Kind::Batch, 3).await.unwrap(),
            Some(rec("alice", Some("nightly")))
        );
        assert_eq!(
            store.get(Kind::Session, 3).await.unwrap(),
            Some(rec("bob", None))
        );
        assert_eq!(store.get(Kind::Batch, 4).await.unwrap(), None);
        assert_eq!(
            store
                .find_by_name(Kind::Batch, "nightly")
                .await
                .unwrap()
                .unwrap()
                .0,
            3
        );
        assert!(store
            .find_by_name(Kind::Session, "nightly")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store.get_many(Kind::Batch, &[4, 3]).await.unwrap(),
            vec![None, Some(rec("alice", Some("nightly")))]
        );
    }

    #[tokio::test]
    async fn a_batch_applies_its_changes_in_order_and_renames_follow() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
            store
                .apply(put(Kind::Batch, 1, rec("alice", Some("old"))))
                .await
                .unwrap();
            store
                .apply(vec![
                    // Made and forgotten within one batch: gone, on disk too.
                    Change::Put(Kind::Batch, vec![(2, rec("bob", None))]),
                    Change::Remove(Kind::Batch, 2),
                    // Forgotten and made again, under another name: present.
                    Change::Remove(Kind::Batch, 1),
                    Change::Put(Kind::Batch, vec![(1, rec("carol", Some("new")))]),
                    // Unknown id: nothing to do.
                    Change::Remove(Kind::Session, 9),
                ])
                .await
                .unwrap();
            assert_eq!(store.get(Kind::Batch, 2).await.unwrap(), None);
            assert!(store
                .find_by_name(Kind::Batch, "old")
                .await
                .unwrap()
                .is_none());
        }
        let store = RedbOwnershipStore::open(dir.path(), RETENTION).unwrap();
        assert_eq!(store.get(Kind::Batch, 2).await.unwrap(), None);
        assert_eq!(
            store.find_by_name(Kind::Batch, "new").await.unwrap(),
            Some((1, rec("carol", Some("new"))))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The gate is a plain mutex on purpose: the writer thread takes it, not a task.
    #[allow(clippy::await_holding_lock)]
    async fn changes_queued_during_a_write_go_out_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbOwnershipStore::open(dir.path(), RETENTION).unwrap());
        let commits = || store.inner.commits.load(Ordering::Relaxed);
        // Stop the writer before it commits: fifty-one creations queue up meanwhile.
        let gate = store.inner.gate.lock().unwrap();
        let writes: Vec<_> = (0..51)
            .map(|id| {
                let store = store.clone();
                tokio::spawn(
                    async move { store.apply(put(Kind::Batch, id, rec("alice", None))).await },
                )
            })
            .collect();
        for _ in 0..10_000 {
            if store.inner.queued.load(Ordering::Relaxed) == 51 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(store.inner.queued.load(Ordering::Relaxed), 51);
        drop(gate);
        for write in writes {
            write.await.unwrap().unwrap();
        }
        assert!(commits() <= 2, "{} transactions for 51 changes", commits());
        // A change that changes nothing is not written at all.
        let before = commits();
        store
            .apply(put(Kind::Batch, 7, rec("alice", None)))
            .await
            .unwrap();
        assert_eq!(commits(), before);
    }
}
