//! Failed-login counters and lockouts in Redis, with the policy of the in-process
//! store (`state::local::lockouts`), so a lockout earned through one instance
//! holds on every other and N instances allow no more guesses than one. The whole
//! policy runs in one script (`lua/lockouts.lua`) per operation. Checks in flight
//! are kept by deadline: the reservation of an instance that died mid-check stops
//! counting after a minute.
//!
//! When Redis fails, logins fail closed (503): a lockout that cannot be read
//! cannot be honoured.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use redis::Value;

use super::scripts::{self, Call};
use super::Redis;
use crate::config::LoginConfig;
use crate::state::{Lockouts, Outcome, Reservation, StoreError};

/// A [`Lockouts`] in Redis.
pub struct RedisLockouts {
    redis: Arc<Redis>,
    /// Failure window, first and longest lockout, trust after a success (ms).
    times: [u64; 4],
    /// Pair, address, user.
    thresholds: [u32; 3],
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisLockouts {
    pub fn new(redis: Arc<Redis>, config: &LoginConfig) -> Self {
        Self {
            redis,
            times: [
                millis(config.failure_window),
                millis(config.lockout),
                millis(config.max_lockout.max(config.lockout)),
                millis(config.trusted_address),
            ],
            thresholds: [
                config.max_failures_per_pair,
                config.max_failures_per_address,
                config.max_failures_per_user,
            ],
        }
    }

    /// Runs one operation of the lockouts script for `user` from `ip`.
    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        user: &str,
        ip: IpAddr,
        token: u64,
        outcome: &str,
        held: &str,
    ) -> Result<T, StoreError> {
        let redis = &self.redis;
        let mut call = Call::new(&scripts::LOCKOUTS);
        call
            // A space never appears in an address: the pair's key is unambiguous.
            .key(redis.key(format_args!("login:pair:{ip} {user}")))
            .key(redis.key(format_args!("login:addr:{ip}")))
            .key(redis.key(format_args!("login:user:{user}")))
            .key(redis.key(format_args!("login:ok-pair:{ip} {user}")))
            .key(redis.key(format_args!("login:ok-addr:{ip}")))
            .key(redis.key(format_args!("login:ok-user:{user}")))
            .arg(op);
        for time in self.times {
            call.arg(time);
        }
        for threshold in self.thresholds {
            call.arg(threshold);
        }
        call.arg(token).arg(outcome).arg(held);
        redis.run(op, &call).await
    }
}

fn micros(us: i64) -> std::time::Duration {
    std::time::Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

#[async_trait]
impl Lockouts for RedisLockouts {
    async fn locked(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<Option<std::time::Duration>, StoreError> {
        let wait: i64 = self.run("locked", user, ip, 0, "", "").await?;
        Ok((wait > 0).then(|| micros(wait)))
    }

    async fn reserve(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<Result<Reservation, std::time::Duration>, StoreError> {
        let token: u64 = rand::random();
        let reply: Vec<Value> = self.run("reserve", user, ip, token, "", "").await?;
        match reply.as_slice() {
            [Value::Int(wait), _] if *wait > 0 => Ok(Err(micros(*wait))),
            [Value::Int(0), Value::BulkString(held)] if held.len() == 3 => Ok(Ok(Reservation {
                user: user.to_owned(),
                ip,
                held: [held[0] == b'1', held[1] == b'1', held[2] == b'1'],
                token,
            })),
            _ => Err(StoreError("redis reserve: unexpected reply".into())),
        }
    }

    async fn settle(&self, reservation: Reservation, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Succeeded => "ok",
            Outcome::Failed => "fail",
            Outcome::Abandoned => "abandon",
        };
        let held: String = reservation
            .held
            .iter()
            .map(|held| if *held { '1' } else { '0' })
            .collect();
        let settled: Result<i64, StoreError> = self
            .run(
                "settle",
                &reservation.user,
                reservation.ip,
                reservation.token,
                outcome,
                &held,
            )
            .await;
        if let Err(error) = settled {
            // The reservation lapses by itself within a minute.
            tracing::warn!(%error, "a login's outcome could not be recorded");
        }
    }

    async fn is_familiar(&self, user: &str, ip: IpAddr) -> bool {
        matches!(
            self.run::<i64>("familiar", user, ip, 0, "", "").await,
            Ok(1)
        )
    }

    /// Redis expires counters itself.
    fn housekeeping(&self) {}
}
