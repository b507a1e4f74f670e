//! Sign-ins under way in Redis (`signin:<state>`, expiring after
//! [`SIGN_IN_TTL`]), so the provider's callback may reach any instance; taken
//! with `GETDEL`, so a `state` is used once whichever instance sees it first.

use std::sync::Arc;

use async_trait::async_trait;

use super::Redis;
use crate::state::signins::{PendingSignIn, SignInStore, SIGN_IN_TTL};
use crate::state::StoreError;

/// A [`SignInStore`] in Redis.
pub struct RedisSignIns {
    redis: Arc<Redis>,
}

impl RedisSignIns {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn key(&self, state: &str) -> String {
        self.redis.key(format_args!("signin:{state}"))
    }
}

#[async_trait]
impl SignInStore for RedisSignIns {
    async fn begin(&self, state: &str, pending: &PendingSignIn) -> Result<(), StoreError> {
        let json = serde_json::to_string(pending).expect("a sign-in is JSON");
        let ttl = u64::try_from(SIGN_IN_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.key(state))
            .arg(json)
            .arg("PX")
            .arg(ttl)
            .ignore();
        self.redis.query("signin_begin", &pipe).await
    }

    async fn take(&self, state: &str) -> Result<Option<PendingSignIn>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("GETDEL").arg(self.key(state));
        let (json,): (Option<String>,) = self.redis.query("signin_take", &pipe).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}
