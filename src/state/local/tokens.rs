//! Personal access tokens in this process: every record in memory (found by the
//! hash of its secret, and by id), written through to an embedded redb file,
//! `<server.data_dir>/tokens.redb`, beside the ownership records, so tokens
//! survive a restart. Creations and revocations are acknowledged once on disk;
//! a token's last use is written at most once a minute.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::StartupError;
use crate::state::tokens::{now_secs, TokenRecord, TokenStore};
use crate::state::StoreError;

/// Records by the hash of their secret, as JSON.
const TABLE: TableDefinition<&str, &str> = TableDefinition::new("tokens");

/// File name of the store inside `server.data_dir`.
pub const FILE_NAME: &str = "tokens.redb";

/// A last use newer than this on disk is not written again.
const USE_WRITE_INTERVAL: u64 = 60;

#[derive(Default)]
struct Records {
    by_hash: HashMap<String, TokenRecord>,
    /// Id → hash.
    by_id: HashMap<String, String>,
    /// The last use written to disk, by hash.
    written_use: HashMap<String, u64>,
}

/// A [`TokenStore`] in a redb file, with every record also held in memory.
pub struct RedbTokenStore {
    db: Arc<Database>,
    records: Mutex<Records>,
}

impl RedbTokenStore {
    /// Opens (or creates) `<data_dir>/tokens.redb` and loads every live record.
    pub fn open(data_dir: &Path) -> Result<Self, StartupError> {
        let path = data_dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| {
            StartupError::Other(format!("cannot open token store {}: {e}", path.display()))
        };
        let db = super::open_database(data_dir, FILE_NAME, TABLE, "token store")?;
        let mut records = Records::default();
        let now = now_secs();
        let read = db.begin_read().map_err(|e| fail(&e))?;
        let table = read.open_table(TABLE).map_err(|e| fail(&e))?;
        for entry in table.iter().map_err(|e| fail(&e))? {
            let (k, v) = entry.map_err(|e| fail(&e))?;
            match serde_json::from_str::<TokenRecord>(v.value()) {
                Ok(record) if record.hash == k.value() => {
                    if !record.expired(now) {
                        records.insert(record);
                    }
                }
                _ => tracing::warn!("skipping an unreadable token record"),
            }
        }
        drop(table);
        Ok(Self {
            db: Arc::new(db),
            records: Mutex::new(records),
        })
    }

    /// Writes `put` and removes `remove` (hashes) in one transaction, on a thread
    /// that may block.
    async fn write(&self, put: Vec<TokenRecord>, remove: Vec<String>) -> Result<(), StoreError> {
        let db = self.db.clone();
        let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let txn = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut table = txn.open_table(TABLE).map_err(|e| e.to_string())?;
                for record in &put {
                    let json = serde_json::to_string(record).expect("a record is JSON");
                    table
                        .insert(record.hash.as_str(), json.as_str())
                        .map_err(|e| e.to_string())?;
                }
                for hash in &remove {
                    table.remove(hash.as_str()).map_err(|e| e.to_string())?;
                }
            }
            txn.commit().map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(StoreError(format!("token store: {error}"))),
            Err(error) => Err(StoreError(format!("token store: {error}"))),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().expect("token records lock")
    }
}

impl Records {
    fn insert(&mut self, record: TokenRecord) {
        self.by_id.insert(record.id.clone(), record.hash.clone());
        self.by_hash.insert(record.hash.clone(), record);
    }

    fn remove(&mut self, hash: &str) -> Option<TokenRecord> {
        let record = self.by_hash.remove(hash)?;
        self.by_id.remove(&record.id);
        self.written_use.remove(hash);
        Some(record)
    }

    /// Hashes of `user`'s expired tokens.
    fn expired_of(&self, user: &str, now: u64) -> Vec<String> {
        self.by_hash
            .values()
            .filter(|r| r.user == user && r.expired(now))
            .map(|r| r.hash.clone())
            .collect()
    }
}

#[async_trait]
impl TokenStore for RedbTokenStore {
    async fn create(&self, record: &TokenRecord, max_per_user: usize) -> Result<bool, StoreError> {
        let now = now_secs();
        let (room, expired) = {
            let mut records = self.records();
            let expired = records.expired_of(&record.user, now);
            for hash in &expired {
                records.remove(hash);
            }
            let held = records
                .by_hash
                .values()
                .filter(|r| r.user == record.user)
                .count();
            let room = held < max_per_user;
            if room {
                // Held in memory before it is on disk, so two creations at once
                // both count; taken out again if the write fails.
                records.insert(record.clone());
            }
            (room, expired)
        };
        if !room {
            self.write(Vec::new(), expired).await?;
            return Ok(false);
        }
        if let Err(error) = self.write(vec![record.clone()], expired).await {
            self.records().remove(&record.hash);
            return Err(error);
        }
        Ok(true)
    }

    async fn find(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let now = now_secs();
        Ok(self
            .records()
            .by_hash
            .get(hash)
            .filter(|r| !r.expired(now))
            .cloned())
    }

    async fn live(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let now = now_secs();
        let records = self.records();
        Ok(records
            .by_id
            .get(id)
            .and_then(|hash| records.by_hash.get(hash))
            .is_some_and(|r| r.user == user && !r.expired(now)))
    }

    async fn list(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let now = now_secs();
        let mut listed: Vec<TokenRecord> = self
            .records()
            .by_hash
            .values()
            .filter(|r| !r.expired(now) && user.is_none_or(|u| r.user == u))
            .cloned()
            .collect();
        listed.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(listed)
    }

    async fn revoke(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let removed = {
            let mut records = self.records();
            let Some(hash) = records.by_id.get(id).cloned() else {
                return Ok(None);
            };
            let theirs = records
                .by_hash
                .get(&hash)
                .is_some_and(|r| owner.is_none_or(|o| r.user == o));
            if !theirs {
                return Ok(None);
            }
            records.remove(&hash)
        };
        if let Some(record) = &removed {
            if let Err(error) = self.write(Vec::new(), vec![record.hash.clone()]).await {
                // Not revoked on disk: not revoked at all.
                self.records().insert(record.clone());
                return Err(error);
            }
        }
        Ok(removed)
    }

    async fn used(&self, record: &TokenRecord, at: u64) -> Result<(), StoreError> {
        let changed = {
            let mut records = self.records();
            let Some(held) = records.by_hash.get_mut(&record.hash) else {
                return Ok(());
            };
            held.last_used = Some(at);
            let held = held.clone();
            let written = records.written_use.get(&record.hash).copied().unwrap_or(0);
            (at.saturating_sub(written) >= USE_WRITE_INTERVAL).then(|| {
                records.written_use.insert(record.hash.clone(), at);
                held
            })
        };
        match changed {
            Some(record) => self.write(vec![record], Vec::new()).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn record(id: &str, user: &str, expires: u64) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            hash: format!("hash-{id}"),
            user: user.into(),
            name: format!("name-{id}"),
            created: now_secs(),
            expires,
            last_used: None,
            identity: Identity::new(user, vec![]),
        }
    }

    #[tokio::test]
    async fn tokens_survive_a_restart_and_revocation_is_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let later = now_secs() + 3600;
        {
            let store = RedbTokenStore::open(dir.path()).unwrap();
            assert!(store.create(&record("a", "alice", later), 2).await.unwrap());
            assert!(store.create(&record("b", "alice", later), 2).await.unwrap());
            assert!(!store.create(&record("c", "alice", later), 2).await.unwrap());
            assert!(store.create(&record("d", "bob", later), 2).await.unwrap());
            // Only the owner (or anyone, for an administrator) revokes.
            assert_eq!(store.revoke("b", Some("bob")).await.unwrap(), None);
            assert!(store.revoke("b", Some("alice")).await.unwrap().is_some());
            store
                .used(&record("a", "alice", later), 1000)
                .await
                .unwrap();
        }
        let store = RedbTokenStore::open(dir.path()).unwrap();
        let listed = store.list(Some("alice")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((&*listed[0].id, listed[0].last_used), ("a", Some(1000)));
        assert!(store.find("hash-a").await.unwrap().is_some());
        assert!(store.find("hash-b").await.unwrap().is_none());
        assert!(store.live("alice", "a").await.unwrap());
        assert!(!store.live("bob", "a").await.unwrap());
        assert_eq!(store.list(None).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn expired_tokens_are_not_found_and_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbTokenStore::open(dir.path()).unwrap();
        let past = now_secs() - 1;
        assert!(store
            .create(&record("old", "alice", past), 1)
            .await
            .unwrap());
        assert!(store.find("hash-old").await.unwrap().is_none());
        assert!(!store.live("alice", "old").await.unwrap());
        assert!(store
            .create(&record("new", "alice", now_secs() + 60), 1)
            .await
            .unwrap());
        assert_eq!(store.list(Some("alice")).await.unwrap().len(), 1);
    }
}
