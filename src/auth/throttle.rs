//! Failed-login throttling: repeated wrong passwords lead to temporary lockouts with
//! growing backoff, during which the password is not even checked.
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
//! lockouts only gate password checks. State is bounded by `max_tracked_keys`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::LoginConfig;

#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    last_failure: Instant,
    lockouts: u32,
    locked_until: Option<Instant>,
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

    fn locked_until(&self, key: &K, now: Instant) -> Option<Instant> {
        self.map
            .get(key)
            .and_then(|c| c.locked_until)
            .filter(|until| *until > now)
    }

    fn fail(&mut self, key: K, now: Instant, policy: &Policy, cap: usize) {
        if self.threshold == 0 {
            return;
        }
        if !self.map.contains_key(&key) && self.map.len() >= cap {
            self.map.retain(|_, c| !policy.forgotten(c, now));
            if self.map.len() >= cap {
                tracing::warn!("login throttle is tracking too many keys; not tracking a new one");
                return;
            }
        }
        let counter = self.map.entry(key).or_insert(Counter {
            failures: 0,
            last_failure: now,
            lockouts: 0,
            locked_until: None,
        });
        if policy.forgotten(counter, now) {
            *counter = Counter {
                failures: 0,
                last_failure: now,
                lockouts: 0,
                locked_until: None,
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
        self.map.remove(key);
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

    /// A counter with no recent failure and no running lockout can be dropped.
    fn forgotten(&self, c: &Counter, now: Instant) -> bool {
        now.duration_since(c.last_failure) > self.window
            && c.locked_until.is_none_or(|until| until <= now)
    }
}

struct State {
    pairs: Counters<(String, IpAddr)>,
    addresses: Counters<IpAddr>,
    users: Counters<String>,
    /// (user, address) → last successful login.
    trusted: HashMap<(String, IpAddr), Instant>,
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
                window: Duration::from_secs(config.failure_window_secs),
                lockout: Duration::from_secs(config.lockout_secs),
                max_lockout: Duration::from_secs(config.max_lockout_secs.max(config.lockout_secs)),
            },
            trusted_for: Duration::from_secs(config.trusted_address_secs),
            max_keys: config.max_tracked_keys,
            state: Mutex::new(State {
                pairs: Counters::new(config.max_failures_per_pair),
                addresses: Counters::new(config.max_failures_per_address),
                users: Counters::new(config.max_failures_per_user),
                trusted: HashMap::new(),
            }),
        }
    }

    /// `Err(wait)` if a login as `user` from `ip` is locked out now.
    pub fn check(&self, user: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let state = self.state.lock().expect("throttle lock");
        let key = (user.to_owned(), ip);
        let trusted = state
            .trusted
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) <= self.trusted_for);
        let until = [
            state.pairs.locked_until(&key, now),
            state.addresses.locked_until(&ip, now),
            (!trusted)
                .then(|| state.users.locked_until(&key.0, now))
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

    /// Records a failed login.
    pub fn failed(&self, user: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let State {
            pairs,
            addresses,
            users,
            ..
        } = &mut *state;
        pairs.fail((user.to_owned(), ip), now, &self.policy, self.max_keys);
        addresses.fail(ip, now, &self.policy, self.max_keys);
        users.fail(user.to_owned(), now, &self.policy, self.max_keys);
    }

    /// Records a successful login: its pair is reset and its address trusted.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let key = (user.to_owned(), ip);
        state.pairs.reset(&key);
        if state.trusted.len() >= self.max_keys && !state.trusted.contains_key(&key) {
            let horizon = self.trusted_for;
            state
                .trusted
                .retain(|_, at| now.duration_since(*at) <= horizon);
        }
        if state.trusted.len() < self.max_keys || state.trusted.contains_key(&key) {
            state.trusted.insert(key, now);
        }
    }

    /// Drops counters that no longer matter.
    pub fn housekeeping(&self) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("throttle lock");
        let State {
            pairs,
            addresses,
            users,
            trusted,
        } = &mut *state;
        pairs.sweep(now, &self.policy);
        addresses.sweep(now, &self.policy);
        users.sweep(now, &self.policy);
        trusted.retain(|_, at| now.duration_since(*at) <= self.trusted_for);
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
            failure_window_secs: 600,
            lockout_secs: 60,
            max_lockout_secs: 200,
            trusted_address_secs: 3600,
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
