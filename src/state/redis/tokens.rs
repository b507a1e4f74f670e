//! Personal access tokens in Redis, so every instance accepts a token any of them
//! issued and none accepts one revoked anywhere:
//! - `token:<hash>`: the record, by the SHA-256 of its secret (what a request is
//!   looked up by), expiring with the token;
//! - `token-id:<id>`: its user, expiring with it (revocations and sessions started
//!   with the token name it by id);
//! - `user-tokens:<user>`: a hash of the user's records by id (lists, and the
//!   per-user limit, which one script checks and writes at once);
//! - `token-used:<user>`: a hash of last uses by id, written at most once a minute
//!   per token and instance.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::scripts::{self, Call};
use super::Redis;
use crate::state::tokens::{TokenRecord, TokenStore};
use crate::state::StoreError;

/// A [`TokenStore`] in Redis.
pub struct RedisTokens {
    redis: Arc<Redis>,
}

impl RedisTokens {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn token_key(&self, hash: &str) -> String {
        self.redis.key(format_args!("token:{hash}"))
    }

    fn id_key(&self, id: &str) -> String {
        self.redis.key(format_args!("token-id:{id}"))
    }

    fn user_key(&self, user: &str) -> String {
        self.redis.key(format_args!("user-tokens:{user}"))
    }

    fn used_key(&self, user: &str) -> String {
        self.redis.key(format_args!("token-used:{user}"))
    }

    fn parse(json: &str) -> Result<TokenRecord, StoreError> {
        serde_json::from_str(json).map_err(|_| StoreError("redis tokens: unreadable record".into()))
    }

    /// `user`'s live records, with their last uses.
    async fn of_user(&self, user: &str, now: u64) -> Result<Vec<TokenRecord>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.hgetall(self.user_key(user))
            .hgetall(self.used_key(user));
        let (records, used): (HashMap<String, String>, HashMap<String, u64>) =
            self.redis.query("tokens_list", &pipe).await?;
        let mut listed = Vec::with_capacity(records.len());
        for json in records.values() {
            let mut record = Self::parse(json)?;
            if record.expired(now) {
                continue;
            }
            record.last_used = used.get(&record.id).copied();
            listed.push(record);
        }
        Ok(listed)
    }

    /// Every user with a token: the `user-tokens:` keys, by `SCAN`.
    async fn users(&self) -> Result<Vec<String>, StoreError> {
        let prefix = self.user_key("");
        let pattern = format!("{}*", escape_glob(&prefix));
        let mut users = Vec::new();
        let mut cursor = 0u64;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500);
            let ((next, keys),): ((u64, Vec<String>),) =
                self.redis.query("tokens_scan", &pipe).await?;
            users.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .map(String::from),
            );
            if next == 0 {
                return Ok(users);
            }
            cursor = next;
        }
    }
}

/// `text` with Redis glob characters escaped.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[async_trait]
impl TokenStore for RedisTokens {
    async fn create(&self, record: &TokenRecord, max_per_user: usize) -> Result<bool, StoreError> {
        let json = serde_json::to_string(record).expect("a record is JSON");
        let mut call = Call::new(&scripts::TOKEN_CREATE);
        call.key(self.user_key(&record.user))
            .key(self.token_key(&record.hash))
            .key(self.id_key(&record.id))
            .arg(&record.id)
            .arg(json)
            .arg(record.expires.saturating_mul(1000))
            .arg(max_per_user);
        let created: i64 = self.redis.run("token_create", &call).await?;
        Ok(created == 1)
    }

    async fn find(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(self.token_key(hash));
        let (json,): (Option<String>,) = self.redis.query("token_find", &pipe).await?;
        let now = crate::state::tokens::now_secs();
        match json {
            Some(json) => Ok(Some(Self::parse(&json)?).filter(|r| !r.expired(now))),
            None => Ok(None),
        }
    }

    async fn live(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(self.id_key(id));
        let (owner,): (Option<String>,) = self.redis.query("token_live", &pipe).await?;
        Ok(owner.as_deref() == Some(user))
    }

    async fn list(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let now = crate::state::tokens::now_secs();
        let users = match user {
            Some(user) => vec![user.to_owned()],
            None => self.users().await?,
        };
        let mut listed = Vec::new();
        for user in &users {
            listed.extend(self.of_user(user, now).await?);
        }
        listed.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(listed)
    }

    async fn revoke(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.get(self.id_key(id));
        let (user,): (Option<String>,) = self.redis.query("token_revoke", &pipe).await?;
        let Some(user) = user.filter(|u| owner.is_none_or(|o| o == u)) else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.hget(self.user_key(&user), id);
        let (json,): (Option<String>,) = self.redis.query("token_revoke", &pipe).await?;
        let Some(record) = json.map(|j| Self::parse(&j)).transpose()? else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(self.token_key(&record.hash))
            .del(self.id_key(id))
            .hdel(self.user_key(&user), id)
            .hdel(self.used_key(&user), id);
        let _: () = self.redis.query("token_revoke", &pipe).await?;
        Ok(Some(record))
    }

    async fn used(&self, record: &TokenRecord, at: u64) -> Result<(), StoreError> {
        let key = self.used_key(&record.user);
        let mut pipe = redis::pipe();
        // Kept as long as the longest-lived token it notes.
        let until = record.expires.saturating_mul(1000);
        pipe.hset(&key, &record.id, at).ignore();
        for option in ["NX", "GT"] {
            pipe.cmd("PEXPIREAT")
                .arg(&key)
                .arg(until)
                .arg(option)
                .ignore();
        }
        self.redis.query("token_used", &pipe).await
    }
}
