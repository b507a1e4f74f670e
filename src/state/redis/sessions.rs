//! Login sessions in Redis: a hash per session (`session:<id>`: user, identity,
//! absolute end) that expires when idle, and a set per user (`user-sessions:<user>`)
//! so every session of a removed user can be ended from any instance. On the
//! cookie path the session, the client address's limit and the user's limit are
//! checked in one script, one round trip ([`SessionStore::admit`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::limits::{retry_after_us, Params};
use super::{scripts, Redis};
use crate::auth::Identity;
use crate::config::SessionConfig;
use crate::error::{Limit, RequestError};
use crate::session::new_session_id;
use crate::state::sessions::{admit_in_turn, Admitted};
use crate::state::{RateLimiter, SessionStore, StoreError};

/// A [`SessionStore`] in Redis.
pub struct RedisSessions {
    redis: Arc<Redis>,
    idle: Duration,
    absolute: Duration,
}

impl RedisSessions {
    pub fn new(redis: Arc<Redis>, config: &SessionConfig) -> Self {
        Self {
            redis,
            idle: config.idle_timeout,
            absolute: config.absolute_timeout,
        }
    }

    fn session_key(&self, id: &str) -> String {
        self.redis.key(format_args!("session:{id}"))
    }

    fn user_key(&self, user: &str) -> String {
        self.redis.key(format_args!("user-sessions:{user}"))
    }

    fn millis(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Runs the admit script: `limits` when given (address, and the session
    /// user's when `check_user`), and the first live session among `ids`.
    async fn run_admit(
        &self,
        limits: Option<&Params>,
        ip: IpAddr,
        ids: &[&str],
        check_user: bool,
    ) -> Result<Result<Admitted, RequestError>, StoreError> {
        let mut invocation = scripts::ADMIT.prepare_invoke();
        let ip_limit = limits.and_then(|p| p.ip);
        match ip_limit {
            Some(_) => invocation.key(self.redis.key(format_args!("rate:ip:{ip}"))),
            None => invocation.key(""),
        };
        for id in ids {
            invocation.key(self.session_key(id));
        }
        let (ip_interval, ip_burst) = ip_limit.unwrap_or((0, 0));
        let (user_interval, user_burst) = limits.and_then(|p| p.user).unwrap_or((0, 0));
        invocation
            .arg(ip_interval)
            .arg(ip_burst)
            .arg(if check_user && limits.is_some() {
                "1"
            } else {
                "0"
            })
            .arg(user_interval)
            .arg(user_burst)
            .arg(Self::millis(self.idle))
            .arg(&self.redis.prefix);
        if let Some(params) = limits {
            for (user, (interval, burst)) in &params.overrides {
                invocation.arg(user).arg(*interval).arg(*burst);
            }
        }
        let reply: Vec<Value> = self.redis.run("admit", &invocation).await?;
        let bad = || StoreError("redis admit: unexpected reply".into());
        match reply.as_slice() {
            [Value::Int(1), Value::Int(wait)] => Ok(Err(RequestError::RateLimited {
                limit: Limit::Address,
                retry_after_secs: retry_after_us(*wait),
            })),
            [Value::Int(0)] => Ok(Ok(Admitted::default())),
            [Value::Int(0), Value::Int(n), Value::BulkString(identity), Value::Int(user_wait)] => {
                let id = usize::try_from(*n)
                    .ok()
                    .and_then(|n| ids.get(n.wrapping_sub(1)))
                    .ok_or_else(bad)?;
                let identity: Identity = serde_json::from_slice(identity).map_err(|_| bad())?;
                let user_limit = match *user_wait {
                    -1 => None,
                    0 => Some(Ok(())),
                    wait => Some(Err(RequestError::RateLimited {
                        limit: Limit::User,
                        retry_after_secs: retry_after_us(wait),
                    })),
                };
                Ok(Ok(Admitted {
                    session: Some(((*id).to_owned(), identity)),
                    user_limit,
                }))
            }
            _ => Err(bad()),
        }
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, identity: &Identity) -> Result<String, StoreError> {
        let id = new_session_id();
        let json = serde_json::to_string(identity)
            .map_err(|e| StoreError(format!("cannot encode a session: {e}")))?;
        let mut invocation = scripts::SESSION_CREATE.prepare_invoke();
        invocation
            .key(self.session_key(&id))
            .key(self.user_key(&identity.user))
            .arg(&*identity.user)
            .arg(json)
            .arg(Self::millis(self.idle))
            .arg(Self::millis(self.absolute));
        let _: i64 = self.redis.run("session_create", &invocation).await?;
        Ok(id)
    }

    async fn touch(&self, id: &str) -> Result<Option<Identity>, StoreError> {
        // With no limits the script refuses nothing.
        let admitted = self
            .run_admit(None, IpAddr::from([0, 0, 0, 0]), &[id], false)
            .await?;
        Ok(admitted
            .ok()
            .and_then(|a| a.session)
            .map(|(_, identity)| identity))
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut invocation = scripts::SESSION_REMOVE.prepare_invoke();
        invocation.key(self.session_key(id)).arg(&self.redis.prefix);
        let _: i64 = self.redis.run("session_remove", &invocation).await?;
        Ok(())
    }

    async fn remove_user(&self, user: &str) -> Result<(), StoreError> {
        let mut invocation = scripts::SESSION_REMOVE_USER.prepare_invoke();
        invocation.key(self.user_key(user));
        let _: i64 = self.redis.run("session_remove_user", &invocation).await?;
        Ok(())
    }

    /// Redis expires sessions itself, and counting them would mean a scan.
    fn maintain(&self) -> Option<usize> {
        None
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    /// One round trip when the limits live in Redis too; in turn otherwise (no
    /// cookie: only the address's limit, which may fall back to this instance's).
    async fn admit(
        &self,
        limits: &dyn RateLimiter,
        ip: IpAddr,
        ids: &[&str],
        check_user: bool,
    ) -> Result<Admitted, RequestError> {
        match limits.shared() {
            Some(params) if !ids.is_empty() => {
                self.run_admit(Some(params), ip, ids, check_user).await?
            }
            _ => admit_in_turn(self, limits, ip, ids, check_user).await,
        }
    }
}
