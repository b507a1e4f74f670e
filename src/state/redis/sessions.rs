//! Login sessions in Redis: a hash per session (`session:<id>`: user, identity,
//! absolute end) that expires when idle, and a set per user (`user-sessions:<user>`)
//! so every session of a removed user can be ended from any instance. On the
//! cookie path the session, the client address's limit, the user's limit and the
//! ownership record the path names come in one script, one round trip
//! ([`SessionStore::admit`]); when no limit applies to the request, what that
//! script said may answer the same cookie for a moment ([`super::near`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::limits::{retry_after_us, Params};
use super::near::{Cached, NearCache};
use super::scripts::{self, Call};
use super::{ownership, Redis};
use crate::auth::Identity;
use crate::config::SessionConfig;
use crate::error::{Limit, RequestError};
use crate::session::new_session_id;
use crate::state::sessions::admit_in_turn;
use crate::state::{Admission, Admitted, Prefetched};
use crate::state::{RateLimiter, SessionStore, StoreError};

/// A [`SessionStore`] in Redis.
pub struct RedisSessions {
    redis: Arc<Redis>,
    idle: Duration,
    absolute: Duration,
    /// Ownership records' retention (ms): renewed when one is fetched here.
    retention: u64,
}

impl RedisSessions {
    pub fn new(redis: Arc<Redis>, config: &SessionConfig, retention: Duration) -> Self {
        Self {
            redis,
            idle: config.idle_timeout,
            absolute: config.absolute_timeout,
            retention: u64::try_from(retention.as_millis()).unwrap_or(u64::MAX),
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

    /// Runs the admit script: `limits` when given (the address's, and the
    /// session user's when asked), the first live session among the ids, and the
    /// record asked for, reading `keys` ([`Self::admit_keys`]); with the time the
    /// live session has left in Redis.
    async fn run_admit(
        &self,
        limits: Option<&Params>,
        admission: Admission<'_>,
        keys: &AdmitKeys,
    ) -> Result<Result<(Admitted, Duration), RequestError>, StoreError> {
        let redis = &self.redis;
        let mut call = Call::new(&scripts::ADMIT);
        let ip_limit = limits.and_then(|p| p.ip);
        // A key not asked for is the bare prefix: Redis checks every key a script
        // is given against the ACL of a user restricted to the prefix.
        match ip_limit {
            Some(_) => call.key(redis.key(format_args!("rate:ip:{}", admission.ip))),
            None => call.key(&redis.prefix),
        };
        call.key(keys.record.as_deref().unwrap_or(&redis.prefix));
        for key in &keys.sessions {
            call.key(key);
        }
        let (ip_interval, ip_burst) = ip_limit.unwrap_or((0, 0));
        let (user_interval, user_burst) = limits.and_then(|p| p.user).unwrap_or((0, 0));
        let check_user = admission.check_user && limits.is_some();
        call.arg(ip_interval)
            .arg(ip_burst)
            .arg(if check_user { "1" } else { "0" })
            .arg(user_interval)
            .arg(user_burst)
            .arg(Self::millis(self.idle))
            .arg(&redis.prefix)
            .arg(self.retention);
        if let Some(params) = limits {
            for (user, (interval, burst)) in &params.overrides {
                call.arg(user).arg(*interval).arg(*burst);
            }
        }
        let reply: Vec<Value> = redis.run("admit", &call).await?;
        let bad = || StoreError("redis admit: unexpected reply".into());
        let [Value::Int(0), Value::Int(n), identity, Value::Int(user_wait), owner, name, Value::Int(ttl)] =
            reply.as_slice()
        else {
            return match reply.as_slice() {
                [Value::Int(1), Value::Int(wait)] => Ok(Err(RequestError::RateLimited {
                    limit: Limit::Address,
                    retry_after_secs: retry_after_us(*wait),
                })),
                _ => Err(bad()),
            };
        };
        let session = match (*n, identity) {
            (0, _) => None,
            (n, Value::BulkString(identity)) => {
                let id = usize::try_from(n)
                    .ok()
                    .and_then(|n| admission.ids.get(n.wrapping_sub(1)))
                    .ok_or_else(bad)?;
                let identity: Identity = serde_json::from_slice(identity).map_err(|_| bad())?;
                Some(((*id).to_owned(), identity))
            }
            _ => return Err(bad()),
        };
        let user_limit = match (*user_wait, &session) {
            (_, None) | (-1, _) => None,
            (0, _) => Some(Ok(())),
            (wait, _) => Some(Err(RequestError::RateLimited {
                limit: Limit::User,
                retry_after_secs: retry_after_us(wait),
            })),
        };
        let record = match admission.record {
            Some((kind, id)) => Some(Prefetched {
                kind,
                id,
                record: ownership::record_of(owner, name)?,
            }),
            None => None,
        };
        let ttl = Duration::from_millis(u64::try_from(*ttl).unwrap_or(0));
        let admitted = Admitted {
            session,
            user_limit,
            record,
        };
        Ok(Ok((admitted, ttl)))
    }

    /// The keys the admit script reads for `admission`: its sessions', in order,
    /// and the record's.
    fn admit_keys(&self, admission: &Admission<'_>) -> AdmitKeys {
        AdmitKeys {
            sessions: admission
                .ids
                .iter()
                .map(|id| self.session_key(id))
                .collect(),
            record: admission
                .record
                .map(|(kind, id)| ownership::record_key(&self.redis, kind, id)),
        }
    }

    /// The admit script, or the near cache when no limit applies to `admission`
    /// and it holds all the script would read; what the script says is kept.
    async fn admit_near(
        &self,
        near: &NearCache,
        params: &Params,
        admission: Admission<'_>,
    ) -> Result<Admitted, RequestError> {
        let keys = self.admit_keys(&admission);
        if let Some(admitted) = from_near(near, params, &admission, &keys) {
            near.count(true);
            return Ok(admitted);
        }
        near.count(false);
        let epoch = near.epoch();
        let (admitted, ttl) = self.run_admit(Some(params), admission, &keys).await??;
        if let Some(epoch) = epoch {
            keep(near, epoch, &admission, &admitted, ttl, keys);
        }
        Ok(admitted)
    }
}

/// The Redis keys of one admission.
struct AdmitKeys {
    sessions: Vec<String>,
    record: Option<String>,
}

/// Whether no rate limit applies to `admission`, as far as can be told before its
/// user is known (a user of their own limit is found out after).
fn unlimited(params: &Params, admission: &Admission<'_>) -> bool {
    params.ip.is_none() && !(admission.check_user && params.user.is_some())
}

/// `admission` answered from the near cache, if it holds all the admit script
/// would read: each id up to the first live one, and the record asked for.
fn from_near(
    near: &NearCache,
    params: &Params,
    admission: &Admission<'_>,
    keys: &AdmitKeys,
) -> Option<Admitted> {
    let mut session = None;
    for (id, key) in admission.ids.iter().zip(&keys.sessions) {
        match near.get(key)? {
            Cached::Session(Some(identity)) => {
                session = Some(((*id).to_owned(), identity));
                break;
            }
            Cached::Session(None) => {}
            Cached::Record(_) => return None,
        }
    }
    let user_limit = match &session {
        // The script would count the user's limit, had they one.
        Some((_, identity)) if admission.check_user => {
            if params.user_limit(&identity.user).is_some() {
                return None;
            }
            Some(Ok(()))
        }
        _ => None,
    };
    let record = match (admission.record, &keys.record) {
        (Some((kind, id)), Some(key)) => match near.get(key)? {
            Cached::Record(record) => Some(Prefetched { kind, id, record }),
            Cached::Session(_) => return None,
        },
        _ => None,
    };
    Some(Admitted {
        session,
        user_limit,
        record,
    })
}

/// What the admit script said, kept in the near cache: no session for each id
/// before the live one, the live one (no longer than it has in Redis), the record.
fn keep(
    near: &NearCache,
    epoch: u64,
    admission: &Admission<'_>,
    admitted: &Admitted,
    ttl: Duration,
    keys: AdmitKeys,
) {
    let live = admitted.session.as_ref();
    let mut items = Vec::with_capacity(keys.sessions.len() + 1);
    for (id, key) in admission.ids.iter().zip(keys.sessions) {
        match live {
            Some((live, identity)) if live == id => {
                items.push((key, Cached::Session(Some(identity.clone())), Some(ttl)));
                break;
            }
            _ => items.push((key, Cached::Session(None), None)),
        }
    }
    if let (Some(key), Some(prefetched)) = (keys.record, &admitted.record) {
        items.push((key, Cached::Record(prefetched.record.clone()), None));
    }
    near.keep(epoch, items);
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, identity: &Identity) -> Result<String, StoreError> {
        let id = new_session_id();
        let json = serde_json::to_string(identity)
            .map_err(|e| StoreError(format!("cannot encode a session: {e}")))?;
        let mut call = Call::new(&scripts::SESSION_CREATE);
        call.key(self.session_key(&id))
            .key(self.user_key(&identity.user))
            .arg(&*identity.user)
            .arg(json)
            .arg(Self::millis(self.idle))
            .arg(Self::millis(self.absolute));
        let _: i64 = self.redis.run("session_create", &call).await?;
        Ok(id)
    }

    async fn touch(&self, id: &str) -> Result<Option<Identity>, StoreError> {
        // With no limits the script refuses nothing.
        let admission = Admission {
            ip: IpAddr::from([0, 0, 0, 0]),
            ids: &[id],
            check_user: false,
            record: None,
        };
        let keys = self.admit_keys(&admission);
        let admitted = self.run_admit(None, admission, &keys).await?;
        Ok(admitted
            .ok()
            .and_then(|(a, _)| a.session)
            .map(|(_, identity)| identity))
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        let mut call = Call::new(&scripts::SESSION_REMOVE);
        call.key(self.session_key(id)).arg(&self.redis.prefix);
        let _: i64 = self.redis.run("session_remove", &call).await?;
        Ok(())
    }

    async fn remove_user(&self, user: &str) -> Result<(), StoreError> {
        let mut call = Call::new(&scripts::SESSION_REMOVE_USER);
        call.key(self.user_key(user)).arg(&self.redis.prefix);
        let _: i64 = self.redis.run("session_remove_user", &call).await?;
        Ok(())
    }

    /// Redis expires sessions itself, and counting them would mean a scan.
    fn maintain(&self) -> Option<usize> {
        None
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    /// One round trip when the limits live in Redis too (none, from the near
    /// cache, when no limit applies); in turn otherwise (no cookie: only the
    /// address's limit, which may fall back to this instance's).
    async fn admit(
        &self,
        limits: &dyn RateLimiter,
        admission: Admission<'_>,
    ) -> Result<Admitted, RequestError> {
        match limits.shared() {
            Some(params) if !admission.ids.is_empty() => {
                match self.redis.near().filter(|_| unlimited(params, &admission)) {
                    Some(near) => self.admit_near(near, params, admission).await,
                    None => {
                        let keys = self.admit_keys(&admission);
                        Ok(self.run_admit(Some(params), admission, &keys).await??.0)
                    }
                }
            }
            _ => admit_in_turn(self, limits, admission).await,
        }
    }
}
