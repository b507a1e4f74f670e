//! The state behind request-rate limits and failed-login lockouts.
//!
//! [`RateLimiter`] answers whether a request may go on (per client address before
//! authentication, per user after it, per user for creations). [`Lockouts`] tracks
//! failed logins: a password check is reserved before it starts
//! ([`Lockouts::reserve`]), so checks in flight count against the limits, and
//! settled with its outcome ([`Lockouts::settle`]). See `state::local::lockouts`
//! for the policy.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::error::RequestError;

/// Request-rate limits.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Before authentication: the client address's limit.
    async fn check_ip(&self, ip: IpAddr) -> Result<(), RequestError>;
    /// After authentication: the user's limit (or their override).
    async fn check_user(&self, user: &Arc<str>) -> Result<(), RequestError>;
    /// Creating a batch or session.
    async fn check_create(&self, user: &Arc<str>) -> Result<(), RequestError>;
    /// Drops state of keys that are back to a full allowance.
    fn housekeeping(&self);
    /// The limits as GCRA parameters, when this limiter keeps them in the shared
    /// store a session store can check them in together with a session
    /// ([`crate::state::SessionStore::admit`]).
    fn shared(&self) -> Option<&crate::state::redis::limits::Params> {
        None
    }
}

/// A reserved password check, to be settled.
#[derive(Debug)]
pub struct Reservation {
    pub user: String,
    pub ip: IpAddr,
    /// Which of the store's counters hold it (pair, address, user).
    pub held: [bool; 3],
    /// Tells this reservation apart from others of the same counters in a
    /// shared store.
    pub token: u64,
}

/// How a reserved check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password matched: the pair's failures are forgotten.
    Succeeded,
    /// It did not: counts towards every lockout.
    Failed,
    /// The check never finished (client gone, queue full, directory down): counts
    /// for nothing.
    Abandoned,
}

/// Failed-login counters and lockouts.
#[async_trait]
pub trait Lockouts: Send + Sync {
    /// `Some(wait)` if logins as `user` from `ip` are locked out now.
    async fn locked(&self, user: &str, ip: IpAddr) -> Result<Option<Duration>, StoreError>;
    /// Reserves a password check, or `Err(wait)` when a lockout runs or the checks
    /// already in flight use up what the limits allow.
    async fn reserve(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<Result<Reservation, Duration>, StoreError>;
    /// Ends a reservation.
    async fn settle(&self, reservation: Reservation, outcome: Outcome);
    /// Whether `user` from `ip` is a familiar login, whose check goes ahead of
    /// others when checks queue up.
    async fn is_familiar(&self, user: &str, ip: IpAddr) -> bool;
    /// Drops counters that no longer matter.
    fn housekeeping(&self);
}
