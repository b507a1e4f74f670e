//! Quota counts in Redis, exact across every instance:
//! - `quota-live:<kind>:<user>`: a hash of the user's live resources (id → when
//!   counted, ms), whose length is the count;
//! - `quota-pending:<kind>:<user>`: the user's places in flight (a sorted set of
//!   tickets by lapse), taken and counted in the same script, so concurrent
//!   creations from several instances never pass a limit together;
//! - `quota-creating`: every creation in flight, for `max_creating`;
//! - `quota-owner:<kind>` (id → user) and `quota-users:<kind>`: for releases by
//!   id, listings and reconciliation.
//!
//! Each operation is one script call (one round trip).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::scripts::{self, Call};
use super::Redis;
use crate::state::quotas::{QuotaStore, Reserved, Ticket};
use crate::state::{Kind, StoreError};

/// A [`QuotaStore`] in Redis.
pub struct RedisQuotas {
    redis: Arc<Redis>,
}

impl RedisQuotas {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn live_prefix(&self, kind: Kind) -> String {
        self.redis
            .key(format_args!("quota-live:{}:", kind.as_str()))
    }

    fn live_key(&self, kind: Kind, user: &str) -> String {
        format!("{}{user}", self.live_prefix(kind))
    }

    fn pending_key(&self, kind: Kind, user: &str) -> String {
        self.redis
            .key(format_args!("quota-pending:{}:{user}", kind.as_str()))
    }

    fn creating_key(&self) -> String {
        self.redis.key(format_args!("quota-creating"))
    }

    fn owner_key(&self, kind: Kind) -> String {
        self.redis
            .key(format_args!("quota-owner:{}", kind.as_str()))
    }

    fn users_key(&self, kind: Kind) -> String {
        self.redis
            .key(format_args!("quota-users:{}", kind.as_str()))
    }
}

#[async_trait]
impl QuotaStore for RedisQuotas {
    async fn reserve(
        &self,
        kind: Kind,
        user: &str,
        limit: u32,
        max_creating: u32,
        hold: Duration,
    ) -> Result<Reserved, StoreError> {
        let ticket = crate::auth::tokens::new_id();
        let mut call = Call::new(&scripts::QUOTA_RESERVE);
        call.key(self.live_key(kind, user))
            .key(self.pending_key(kind, user))
            .key(self.creating_key())
            .arg(&ticket)
            .arg(hold.as_millis() as u64)
            .arg(limit)
            .arg(max_creating);
        let (verdict, count): (u8, u64) = self.redis.run("quota_reserve", &call).await?;
        Ok(match verdict {
            0 => Reserved::Granted(Ticket {
                id: ticket,
                kind,
                user: user.to_owned(),
            }),
            1 => Reserved::OverQuota { count },
            _ => Reserved::Busy,
        })
    }

    async fn settle(&self, ticket: &Ticket, created: Option<u64>) -> Result<(), StoreError> {
        let kind = ticket.kind;
        let mut call = Call::new(&scripts::QUOTA_SETTLE);
        call.key(self.pending_key(kind, &ticket.user))
            .key(self.creating_key())
            .key(self.live_key(kind, &ticket.user))
            .key(self.owner_key(kind))
            .key(self.users_key(kind))
            .arg(&ticket.id)
            .arg(created.map(|id| id.to_string()).unwrap_or_default())
            .arg(&ticket.user);
        let _: i64 = self.redis.run("quota_settle", &call).await?;
        Ok(())
    }

    async fn release(&self, kind: Kind, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut call = Call::new(&scripts::QUOTA_RELEASE);
        call.key(self.owner_key(kind))
            .key(self.users_key(kind))
            .arg(self.live_prefix(kind));
        for id in ids {
            call.arg(*id);
        }
        let _: i64 = self.redis.run("quota_release", &call).await?;
        Ok(())
    }

    async fn live(
        &self,
        kind: Kind,
        user: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<u64>>, StoreError> {
        let users: Vec<String> = match user {
            Some(user) => vec![user.to_owned()],
            None => {
                let mut pipe = redis::pipe();
                pipe.smembers(self.users_key(kind));
                let (users,): (Vec<String>,) = self.redis.query("quota_users", &pipe).await?;
                users
            }
        };
        if users.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut pipe = redis::pipe();
        for user in &users {
            pipe.hkeys(self.live_key(kind, user));
        }
        let ids: Vec<Vec<u64>> = self.redis.query("quota_live", &pipe).await?;
        Ok(users
            .into_iter()
            .zip(ids)
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(user, mut ids)| {
                ids.sort_unstable();
                (user, ids)
            })
            .collect())
    }

    async fn reconcile(
        &self,
        kind: Kind,
        live: &[(u64, String)],
        asked: u64,
        users: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let mut call = Call::new(&scripts::QUOTA_RECONCILE);
        call.key(self.owner_key(kind))
            .key(self.users_key(kind))
            .arg(self.live_prefix(kind))
            .arg(asked);
        match users {
            Some(users) => {
                call.arg(users.len() as i64);
                for user in users {
                    call.arg(user);
                }
            }
            None => {
                call.arg(-1i64);
            }
        }
        for (id, user) in live {
            call.arg(*id).arg(user);
        }
        let _: i64 = self.redis.run("quota_reconcile", &call).await?;
        Ok(())
    }
}
