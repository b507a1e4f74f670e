//! Ownership records in Redis: a hash per record (`owner:<kind>:<id>`: owner and
//! name) and an index by name (`owner-name:<kind>:<name>` → id). Each expires once
//! unseen for `state.ownership_retention_days`; looking at a record renews it.
//! A listing's records come back in one script, one round trip; a set of changes
//! is applied by one script, all or none.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::scripts::{self, Call};
use super::Redis;
use crate::state::{Change, Kind, OwnershipStore, Record, StoreError};

/// An [`OwnershipStore`] in Redis.
pub struct RedisOwnership {
    redis: Arc<Redis>,
    /// Retention, in ms.
    retention: u64,
}

impl RedisOwnership {
    pub fn new(redis: Arc<Redis>, retention: Duration) -> Self {
        Self {
            redis,
            retention: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn record_key(&self, kind: Kind, id: u64) -> String {
        record_key(&self.redis, kind, id)
    }
}

/// The key of a record.
pub(super) fn record_key(redis: &Redis, kind: Kind, id: u64) -> String {
    redis.key(format_args!("owner:{}:{id}", kind.as_str()))
}

/// A record from its owner and name as a script returns them.
pub(super) fn record_of(owner: &Value, name: &Value) -> Result<Option<Record>, StoreError> {
    Ok(text(owner)?.map(|owner| Record {
        owner,
        name: text(name).ok().flatten(),
    }))
}

/// A text value of a reply (`None` for nil).
fn text(value: &Value) -> Result<Option<String>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map(Some)
            .map_err(|_| StoreError("redis: a record is not UTF-8".into())),
        _ => Err(StoreError("redis: unexpected reply".into())),
    }
}

#[async_trait]
impl OwnershipStore for RedisOwnership {
    async fn get(&self, kind: Kind, id: u64) -> Result<Option<Record>, StoreError> {
        Ok(self.get_many(kind, &[id]).await?.pop().flatten())
    }

    async fn get_many(&self, kind: Kind, ids: &[u64]) -> Result<Vec<Option<Record>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = Call::new(&scripts::OWNERS_GET);
        for id in ids {
            call.key(self.record_key(kind, *id));
        }
        call.arg(self.retention);
        let reply: Vec<Value> = self.redis.run("owners_get", &call).await?;
        if reply.len() != 2 * ids.len() {
            return Err(StoreError("redis owners_get: unexpected reply".into()));
        }
        reply
            .chunks(2)
            .map(|pair| record_of(&pair[0], &pair[1]))
            .collect()
    }

    async fn find_by_name(
        &self,
        kind: Kind,
        name: &str,
    ) -> Result<Option<(u64, Record)>, StoreError> {
        let mut call = Call::new(&scripts::OWNERS_BY_NAME);
        call.key(
            self.redis
                .key(format_args!("owner-name:{}:{name}", kind.as_str())),
        )
        .arg(self.redis.key(format_args!("owner:{}:", kind.as_str())))
        .arg(self.retention);
        let reply: Value = self.redis.run("owners_by_name", &call).await?;
        let bad = || StoreError("redis owners_by_name: unexpected reply".into());
        match reply {
            Value::Nil => Ok(None),
            Value::Array(items) if items.len() == 3 => {
                let id = text(&items[0])?
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(bad)?;
                let owner = text(&items[1])?.ok_or_else(bad)?;
                let name = text(&items[2])?;
                Ok(Some((id, Record { owner, name })))
            }
            _ => Err(bad()),
        }
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        let mut call = Call::new(&scripts::OWNERS_APPLY);
        call.arg(self.retention).arg(&self.redis.prefix);
        let mut any = false;
        for change in &changes {
            match change {
                Change::Put(kind, items) => {
                    for (id, record) in items {
                        let name = record
                            .name
                            .as_ref()
                            .map_or(String::new(), |n| format!("={n}"));
                        call.arg("put")
                            .arg(kind.as_str())
                            .arg(*id)
                            .arg(&record.owner)
                            .arg(name);
                        any = true;
                    }
                }
                Change::Remove(kind, id) => {
                    call.arg("del").arg(kind.as_str()).arg(*id).arg("").arg("");
                    any = true;
                }
            }
        }
        if !any {
            return Ok(());
        }
        let _: i64 = self.redis.run("owners_apply", &call).await?;
        Ok(())
    }

    async fn export(&self) -> Result<Vec<(Kind, u64, Record)>, StoreError> {
        let mut connection = self.redis.manager.clone();
        let pattern = self.redis.key(format_args!("owner:*"));
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(|e| StoreError(format!("redis export: {e}")))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let prefix = self.redis.key(format_args!("owner:"));
        let mut wanted: Vec<(Kind, u64)> = keys
            .iter()
            .filter_map(|key| {
                let (kind, id) = key.strip_prefix(&prefix)?.split_once(':')?;
                Some((Kind::parse(kind)?, id.parse().ok()?))
            })
            .collect();
        wanted.sort_by_key(|(kind, id)| (kind.as_str(), *id));
        let mut all = Vec::with_capacity(wanted.len());
        for kind in [Kind::Batch, Kind::Session] {
            let ids: Vec<u64> = wanted
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| *id)
                .collect();
            for chunk in ids.chunks(500) {
                let records = self.get_many(kind, chunk).await?;
                for (id, record) in chunk.iter().zip(records) {
                    if let Some(record) = record {
                        all.push((kind, *id, record));
                    }
                }
            }
        }
        Ok(all)
    }
}
