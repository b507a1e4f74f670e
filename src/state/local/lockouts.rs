//! Failed-login throttling: repeated wrong passwords lead to temporary lockouts with
//! growing backoff, during which no password is checked, and no remembered one
//! accepted either.
//!
//! The policy, chosen so an attacker elsewhere cannot lock a real user out:
//! - **per (user, address) pair**: `max_failures_per_pair` failures lock that pair;
//! - **per address**: `max_failures_per_address` failures (any users, i.e. password
//!   spraying) lock every login from that address;
//! - **per user, global ceiling**: `max_failures_per_user` failures from anywhere lock
//!   that user's logins — except from addresses where the user logged in
//!   successfully within `trusted_address_secs`, so a distributed attack cannot keep
//!   the real user out of their usual machines.
//!
//! Each lockout lasts `lockout_secs`, doubling with every further lockout of the same
//! key up to `max_lockout_secs`; failures older than `failure_window_secs` are
//! forgotten, and a success resets its pair. Session cookies are never affected:
//! lockouts only gate password logins.
//!
//! A password check is reserved before it starts ([`Lockouts::reserve`]): checks
//! in flight count against every limit as if they had already failed, so a burst of
//! concurrent guesses gets no more checks than the limit, however many arrive at
//! once. Settled as abandoned (the client went away, the check never ran) a
//! reservation counts for nothing. This is the in-process [`Lockouts`]; its state
//! is bounded by `max_tracked_keys`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::config::LoginConfig;
use crate::state::{Lockouts, Outcome, Reservation, StoreError};

/// How long a caller is asked to wait when every allowed check is already in
/// flight (one of them will have settled by then).
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    /// Checks reserved and not yet settled.
    in_flight: u32,
    last_failure: Instant,
    lockouts: u32,
    locked_until: Option<Instant>,
}

impl Counter {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            last_failure: now,
            lockouts: 0,
            locked_until: None,
        }
    }
}

/// Failure counters for one kind of key.
struct Counters<K> {
    threshold: u32,
    map: HashMap<K, Counter>,
}

impl<K: Hash + Eq + Clone> Counters<K> {
    fn new(threshold: u32) -> Self {
        Self {
            threshold,
            map: HashMap::new(),
        }
    }

    /// How long `key` must wait: a running lockout, or every allowed check in
    /// flight already.
    fn blocked(&self, key: &K, now: Instant, policy: &Policy) -> Option<Duration> {
        let counter = self.map.get(key)?;
        if let Some(until) = counter.locked_until.filter(|until| *until > now) {
            return Some(until - now);
        }
        let fresh = policy.forgotten(counter, now);
        let failures = if fresh { 0 } else { counter.failures };
        (self.threshold > 0 && failures + counter.in_flight >= self.threshold)
            .then_some(IN_FLIGHT_WAIT)
    }

    /// The counter for `key`, made if there is room (`None` past `cap`: the key is
    /// not tracked, as when counting is off).
    fn counter(
        &mut self,
        key: K,
        now: Instant,
        policy: &Policy,
        cap: usize,
    ) -> Option<&mut Counter> {
        if self.threshold == 0 {
            return None;
        }
        if !self.map.contains_key(&key) && self.map.len() >= cap {
            self.map.retain(|_, c| !policy.forgotten(c, now));
            if self.map.len() >= cap {
                tracing::warn!("login throttle is tracking too many keys; not tracking a new one");
                return None;
            }
        }
        let counter = self.map.entry(key).or_insert_with(|| Counter::new(now));
        if policy.forgotten(counter, now) {
            *counter = Counter {
                in_flight: counter.in_flight,
                ..Counter::new(now)
            };
        }
        Some(counter)
    }

    /// Reserves a check for `key`; false if the key is not tracked.
    fn reserve(&mut self, key: K, now: Instant, policy: &Policy, cap: usize) -> bool {
        match self.counter(key, now, policy, cap) {
            Some(counter) => {
                counter.in_flight += 1;
                true
            }
            None => false,
        }
    }

    /// Ends a reservation; a failure counts and may start a lockout.
    fn settle(&mut self, key: &K, failed: bool, now: Instant, policy: &Policy) {
        let Some(counter) = self.map.get_mut(key) else {
            return;
        };
        counter.in_flight = counter.in_flight.saturating_sub(1);
        if !failed {
            return;
        }
        if policy.forgotten(counter, now) {
            *counter = Counter {
                in_flight: counter.in_flight,
                ..Counter::new(now)
            };
        }
        counter.failures += 1;
        counter.last_failure = now;
        if counter.failures >= self.threshold {
            counter.lockouts += 1;
            counter.failures = 0;
            counter.locked_until = Some(now + policy.lockout(counter.lockouts));
        }
    }

    fn reset(&mut self, key: &K) {
        if let Some(counter) = self.map.get_mut(key) {
            // Keep the reservations of checks still running; forget the rest.
            *counter = Counter {
                in_flight: counter.in_flight,
                ..Counter::new(counter.last_failure)
            };
        }
    }

    fn sweep(&mut self, now: Instant, policy: &Policy) {
        self.map.retain(|_, c| !policy.forgotten(c, now));
    }
}

struct Policy {
    window: Duration,
    lockout: Duration,
    max_lockout: Duration,
}

impl Policy {
    /// Lockout length for the `n`-th lockout (1-based): doubling, capped.
    fn lockout(&self, n: u32) -> Duration {
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.lockout
            .checked_mul(factor)
            .unwrap_or(self.max_lockout)
            .min(self.max_lockout)
    }

    /// A counter with no recent failure, no running lockout and no check in flight
    /// can be dropped.
    fn forgotten(&self, c: &Counter, now: Instant) -> bool {
        c.in_flight == 0
            && now.duration_since(c.last_failure) > self.window
            && c.locked_until.is_none_or(|until| until <= now)
    }
}

/// When each key last logged in successfully.
struct Successes<K> {
    map: HashMap<K, Instant>,
}

impl<K> Default for Successes<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Successes<K> {
    fn recent(&self, key: &K, now: Instant, within: Duration) -> bool {
        self.map
            .get(key)
            .is_some_and(|at| now.duration_since(*at) <= within)
    }

    fn record(&mut self, key: K, now: Instant, within: Duration, cap: usize) {
        if self.map.len() >= cap && !self.map.contains_key(&key) {
            self.map.retain(|_, at| now.duration_since(*at) <= within);
        }
        if self.map.len() < cap || self.map.contains_key(&key) {
            self.map.insert(key, now);
        }
    }

    fn sweep(&mut self, now: Instant, within: Duration) {
        self.map.retain(|_, at| now.duration_since(*at) <= within);
    }
}

struct State {
    pairs: Counters<(String, IpAddr)>,
    addresses: Counters<IpAddr>,
    users: Counters<String>,
    /// (user, address) → last successful login: exempts the pair from the user's
    /// global lockout.
    trusted: Successes<(String, IpAddr)>,
    /// Addresses and users with a recent successful login (any user, any address):
    /// their checks go ahead of anonymous ones when checks queue up.
    known_addresses: Successes<IpAddr>,
    known_users: Successes<String>,
}

/// Tracks failed logins and answers whether a login may be attempted.
pub struct LoginThrottle {
    policy: Policy,
    trusted_for: Duration,
    max_keys: usize,
    state: Mutex<State>,
}

impl LoginThrottle {
    pub fn new(config: &LoginConfig) -> Self {
        Self {
            policy: Policy {
                window: config.failure_window,
                lockout: config.lockout,
                max_lockout: config.max_lockout.max(config.lockout),
            },
            trusted_for: config.trusted_address,
            max_keys: config.max_tracked_keys,
            state: Mutex::new(State {
                pairs: Counters::new(config.max_failures_per_pair),
                addresses: Counters::new(config.max_failures_per_address),
                users: Counters::new(config.max_failures_per_user),
                trusted: Successes::default(),
                known_addresses: Successes::default(),
                known_users: Successes::default(),
            }),
        }
    }

    /// `Err(wait)` if logins as `user` from `ip` are locked out now. Checked before
    /// anything else about a login, remembered credentials included.
    fn check(&self, user: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.state.lock().expect("throttle lock");
        let key = (user.to_owned(), ip);
        let trusted = state.trusted.recent(&key, now, self.trusted_for);
        let locked = |c: &Counter| c.locked_until.filter(|until| *until > now);
        let until = [
            state.pairs.map.get(&key).and_then(locked),
            state.addresses.map.get(&ip).and_then(locked),
            (!trusted)
                .then(|| state.users.map.get(user).and_then(locked))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .max();
        match until {
            Some(until) => Err(until - now),
            None => Ok(()),
        }
    }

    /// Reserves a password check for `user` from `ip`, or `Err(wait)` when a
    /// lockout runs or the checks already in flight use up what the limits allow.
    fn begin(&self, user: &str, ip: IpAddr) -> Result<Reservation, Duration> {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let key = (user.to_owned(), ip);
        let trusted = state.trusted.recent(&key, now, self.trusted_for);
        let wait = [
            state.pairs.blocked(&key, now, &self.policy),
            state.addresses.blocked(&ip, now, &self.policy),
            (!trusted)
                .then(|| state.users.blocked(&key.0, now, &self.policy))
                .flatten(),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        let State {
            pairs,
            addresses,
            users,
            ..
        } = &mut *state;
        let held = [
            pairs.reserve(key.clone(), now, &self.policy, self.max_keys),
            addresses.reserve(ip, now, &self.policy, self.max_keys),
            users.reserve(key.0.clone(), now, &self.policy, self.max_keys),
        ];
        Ok(Reservation {
            user: key.0,
            ip,
            held,
            token: 0,
        })
    }

    /// Whether `user` from `ip` is a familiar login, whose check goes ahead of
    /// others when checks queue up: the address had a recent successful login, or
    /// the user had one and the address no failures.
    fn is_familiar(&self, user: &str, ip: IpAddr) -> bool {
        let now = Instant::now();
        let state = self.state.lock().expect("throttle lock");
        if state.known_addresses.recent(&ip, now, self.trusted_for) {
            return true;
        }
        let clean = state.addresses.map.get(&ip).is_none_or(|c| {
            self.policy.forgotten(c, now)
                || (c.failures == 0 && c.locked_until.is_none_or(|until| until <= now))
        });
        clean
            && state
                .known_users
                .recent(&user.to_owned(), now, self.trusted_for)
    }

    /// Ends a reservation.
    fn settle(&self, attempt: &Reservation, outcome: Outcome) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let failed = outcome == Outcome::Failed;
        let key = (attempt.user.clone(), attempt.ip);
        let State {
            pairs,
            addresses,
            users,
            trusted,
            known_addresses,
            known_users,
        } = &mut *state;
        if attempt.held[0] {
            pairs.settle(&key, failed, now, &self.policy);
        }
        if attempt.held[1] {
            addresses.settle(&attempt.ip, failed, now, &self.policy);
        }
        if attempt.held[2] {
            users.settle(&key.0, failed, now, &self.policy);
        }
        if outcome == Outcome::Succeeded {
            pairs.reset(&key);
            let (within, cap) = (self.trusted_for, self.max_keys);
            known_users.record(key.0.clone(), now, within, cap);
            known_addresses.record(attempt.ip, now, within, cap);
            trusted.record(key, now, within, cap);
        }
    }

    /// A whole check that failed (tests of the policy).
    #[cfg(test)]
    fn failed(&self, user: &str, ip: IpAddr) {
        if let Ok(attempt) = self.begin(user, ip) {
            self.settle(&attempt, Outcome::Failed);
        }
    }

    /// A whole check that succeeded (tests of the policy).
    #[cfg(test)]
    fn succeeded(&self, user: &str, ip: IpAddr) {
        if let Ok(attempt) = self.begin(user, ip) {
            self.settle(&attempt, Outcome::Succeeded);
        }
    }

    /// Drops counters that no longer matter.
    fn housekeeping(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let within = self.trusted_for;
        let State {
            pairs,
            addresses,
            users,
            trusted,
            known_addresses,
            known_users,
        } = &mut *state;
        pairs.sweep(now, &self.policy);
        addresses.sweep(now, &self.policy);
        users.sweep(now, &self.policy);
        trusted.sweep(now, within);
        known_addresses.sweep(now, within);
        known_users.sweep(now, within);
    }
}

#[async_trait]
impl Lockouts for LoginThrottle {
    async fn locked(&self, user: &str, ip: IpAddr) -> Result<Option<Duration>, StoreError> {
        Ok(self.check(user, ip).err())
    }

    async fn reserve(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<Result<Reservation, Duration>, StoreError> {
        Ok(self.begin(user, ip))
    }

    async fn settle(&self, reservation: Reservation, outcome: Outcome) {
        LoginThrottle::settle(self, &reservation, outcome);
    }

    async fn is_familiar(&self, user: &str, ip: IpAddr) -> bool {
        LoginThrottle::is_familiar(self, user, ip)
    }

    fn housekeeping(&self) {
        LoginThrottle::housekeeping(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LoginConfig {
        LoginConfig {
            max_failures_per_pair: 3,
            max_failures_per_address: 10,
            max_failures_per_user: 6,
            failure_window: Duration::from_secs(600),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(200),
            trusted_address: Duration::from_secs(3600),
            max_tracked_keys: 1000,
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[tokio::test(start_paused = true)]
    async fn pair_lockout_grows_and_a_success_resets() {
        let t = LoginThrottle::new(&LoginConfig {
            max_failures_per_address: 100,
            max_failures_per_user: 100,
            ..config()
        });
        for _ in 0..2 {
            t.failed("alice", ip(1));
        }
        assert!(t.check("alice", ip(1)).is_ok());
        t.failed("alice", ip(1));
        assert_eq!(t.check("alice", ip(1)), Err(Duration::from_secs(60)));
        assert!(
            t.check("alice", ip(2)).is_ok(),
            "other addresses are unaffected"
        );
        assert!(t.check("bob", ip(1)).is_ok(), "other users are unaffected");

        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(t.check("alice", ip(1)).is_ok(), "lockout over");
        for _ in 0..3 {
            t.failed("alice", ip(1));
        }
        assert_eq!(
            t.check("alice", ip(1)),
            Err(Duration::from_secs(120)),
            "doubled"
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        for _ in 0..3 {
            t.failed("alice", ip(1));
        }
        assert_eq!(
            t.check("alice", ip(1)),
            Err(Duration::from_secs(200)),
            "capped"
        );

        tokio::time::advance(Duration::from_secs(200)).await;
        t.succeeded("alice", ip(1));
        t.failed("alice", ip(1));
        t.failed("alice", ip(1));
        assert!(t.check("alice", ip(1)).is_ok(), "a success reset the pair");
    }

    #[tokio::test(start_paused = true)]
    async fn spraying_from_one_address_locks_the_address() {
        let t = LoginThrottle::new(&config());
        for n in 0..10 {
            t.failed(&format!("user{n}"), ip(9));
        }
        assert!(t.check("someone-else", ip(9)).is_err());
        assert!(t.check("someone-else", ip(8)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_distributed_attack_cannot_lock_the_user_out_of_a_trusted_address() {
        let t = LoginThrottle::new(&config());
        t.succeeded("alice", ip(1));
        for n in 10..16 {
            t.failed("alice", ip(n));
        }
        assert!(
            t.check("alice", ip(50)).is_err(),
            "unknown addresses are locked"
        );
        assert!(t.check("alice", ip(1)).is_ok(), "her usual address is not");
        tokio::time::advance(Duration::from_secs(3601)).await;
        for n in 20..26 {
            t.failed("alice", ip(n));
        }
        assert!(t.check("alice", ip(1)).is_err(), "trust expires");
    }

    #[tokio::test(start_paused = true)]
    async fn checks_in_flight_count_against_every_limit() {
        let t = LoginThrottle::new(&LoginConfig {
            max_failures_per_pair: 3,
            max_failures_per_address: 5,
            max_failures_per_user: 7,
            ..config()
        });
        // A burst from one address for one user: three checks, no more.
        let burst: Vec<_> = (0..3).map(|_| t.begin("alice", ip(1)).unwrap()).collect();
        assert_eq!(t.begin("alice", ip(1)).err(), Some(IN_FLIGHT_WAIT));
        assert!(
            t.check("alice", ip(1)).is_ok(),
            "in flight is not yet locked"
        );
        for attempt in burst {
            t.settle(&attempt, Outcome::Failed);
        }
        assert_eq!(t.check("alice", ip(1)), Err(Duration::from_secs(60)));
        assert!(t.begin("alice", ip(1)).is_err());

        // Spraying from one address: the address limit counts checks in flight.
        let spray: Vec<_> = (0..5)
            .map(|n| t.begin(&format!("user{n}"), ip(2)).unwrap())
            .collect();
        assert!(t.begin("someone", ip(2)).is_err());
        for attempt in spray {
            t.settle(&attempt, Outcome::Abandoned);
        }
        assert!(
            t.begin("someone", ip(2)).is_ok(),
            "abandoned checks count for nothing"
        );

        // One user from many addresses: the user's ceiling.
        let spread: Vec<_> = (10..17).map(|n| t.begin("bob", ip(n)).unwrap()).collect();
        assert!(t.begin("bob", ip(30)).is_err());
        for attempt in spread {
            t.settle(&attempt, Outcome::Failed);
        }
        assert!(t.check("bob", ip(31)).is_err(), "bob is locked");
    }

    #[tokio::test(start_paused = true)]
    async fn familiar_logins_are_told_apart_from_strangers() {
        let t = LoginThrottle::new(&config());
        assert!(!t.is_familiar("alice", ip(1)));
        t.succeeded("alice", ip(1));
        assert!(t.is_familiar("alice", ip(1)));
        assert!(t.is_familiar("carol", ip(1)), "an address with a success");
        assert!(
            t.is_familiar("alice", ip(2)),
            "a user with a success, clean address"
        );
        t.failed("mallory", ip(3));
        assert!(
            !t.is_familiar("alice", ip(3)),
            "not from an address that has been guessing"
        );
        assert!(!t.is_familiar("mallory", ip(4)));
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert!(!t.is_familiar("alice", ip(1)), "familiarity fades");
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_are_forgotten_and_state_is_swept() {
        let t = LoginThrottle::new(&config());
        t.failed("alice", ip(1));
        t.failed("alice", ip(1));
        tokio::time::advance(Duration::from_secs(601)).await;
        t.failed("alice", ip(1));
        assert!(t.check("alice", ip(1)).is_ok(), "the window passed");
        tokio::time::advance(Duration::from_secs(601)).await;
        t.housekeeping();
        assert!(t.state.lock().unwrap().pairs.map.is_empty());
    }
}
