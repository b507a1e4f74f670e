//! Authentication: who is making a request.
//!
//! [`Authenticator`] checks Basic credentials against the htpasswd file. Hash
//! verification runs on the blocking pool, at most one per core at a time, behind a
//! bounded [`queue`] where familiar logins wait ahead of strangers, so a burst of
//! logins can neither starve the async workers nor delay real users without bound.
//! Successful verifications are remembered by the [`cache::CredentialCache`]. An
//! unknown user is checked against a dummy hash of the same cost, so response time
//! does not reveal which users exist. Repeated failures lock logins out for a while
//! ([`throttle`]); a locked-out attempt is refused before anything else, remembered
//! credentials included (otherwise a guesser could go on guessing whenever the user
//! had logged in recently, and a remembered match would confirm a guess).

pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod queue;
pub mod throttle;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};

use std::net::IpAddr;

use crate::config::AuthConfig;
#[cfg(test)]
use crate::config::LoginConfig;
use crate::error::{AuthFailure, RequestError, StartupError};
use basic::Credentials;
use cache::CredentialCache;
use htpasswd::{Entry, Htpasswd, Scheme};
use queue::{Line, Slot, VerifyQueue};
use throttle::LoginThrottle;

/// bcrypt cost of the dummy hash when the file has no bcrypt entry to copy.
const DEFAULT_DUMMY_COST: u32 = 10;

/// How a successful verification was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password hash was computed.
    Computed,
    /// A recent identical verification was remembered.
    Cached,
}

/// Checks user names and passwords.
pub struct Authenticator {
    users: Htpasswd,
    /// Checked in place of a missing user, so unknown users cost the same time.
    /// Made on first use (it costs as much as a login), so startup does not wait for
    /// it, nor does the first login compete with it for the CPU.
    dummy: Arc<OnceLock<Entry>>,
    cache: CredentialCache,
    /// Bounds concurrent hash computations to the number of cores, and those waiting.
    queue: Arc<VerifyQueue>,
    admins: HashSet<String>,
    /// Shared with the next configuration after a reload, so lockouts survive it.
    throttle: Arc<LoginThrottle>,
}

impl Authenticator {
    /// Loads the htpasswd file named in `config`.
    pub fn load(config: &AuthConfig, throttle: Arc<LoginThrottle>) -> Result<Self, StartupError> {
        let users = Htpasswd::load(&config.htpasswd)?;
        if users.is_empty() {
            tracing::warn!(file = %config.htpasswd.display(), "htpasswd file has no users: every login will fail");
        }
        Self::new(users, config, throttle)
    }

    /// Builds an authenticator over already-parsed users.
    pub fn new(
        users: Htpasswd,
        config: &AuthConfig,
        throttle: Arc<LoginThrottle>,
    ) -> Result<Self, StartupError> {
        let dummy = Arc::new(OnceLock::new());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            users,
            dummy,
            cache: CredentialCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_max_entries,
            ),
            queue: VerifyQueue::new(cores, config.max_pending_verifications),
            admins: config.admins.iter().cloned().collect(),
            throttle,
        })
    }

    /// A login attempt from `ip`: the lockout check, then the credential cache, then
    /// (reserved with the throttle, and queued) the password hash. Failures count
    /// towards lockouts; a check refused because the queue is full counts for
    /// nothing.
    pub async fn login(
        &self,
        credentials: &Credentials,
        ip: IpAddr,
    ) -> Result<Verified, RequestError> {
        let locked_out = |wait: Duration| RequestError::LockedOut {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        self.throttle
            .check(&credentials.user, ip)
            .map_err(locked_out)?;
        if self.is_cached(credentials) {
            return Ok(Verified::Cached);
        }
        let attempt = self
            .throttle
            .begin(&credentials.user, ip)
            .map_err(locked_out)?;
        let line = match self.throttle.is_familiar(&credentials.user, ip) {
            true => Line::Familiar,
            false => Line::Other,
        };
        let slot = self
            .queue
            .acquire(line)
            .await
            .map_err(|_| RequestError::LoginsBusy {
                retry_after_secs: 1,
            })?;
        match self.check(slot, credentials).await {
            Ok(verified) => {
                attempt.succeeded();
                Ok(verified)
            }
            Err(failure) => {
                attempt.failed();
                Err(RequestError::Unauthenticated(failure))
            }
        }
    }

    fn is_cached(&self, credentials: &Credentials) -> bool {
        self.users.get(&credentials.user).is_some_and(|entry| {
            self.cache
                .contains(&credentials.user, &credentials.password, &entry.hash)
        })
    }

    /// The failed-login throttle.
    pub fn throttle(&self) -> &Arc<LoginThrottle> {
        &self.throttle
    }

    /// Names of all users in the user database.
    pub fn user_names(&self) -> impl Iterator<Item = &str> {
        self.users.names()
    }

    /// Drops throttle state that no longer matters.
    pub fn housekeeping(&self) {
        self.throttle.housekeeping();
    }

    /// Checks credentials (the cache, else a hash in the queue's ordinary line),
    /// without the throttle. The error is always [`AuthFailure::BadCredentials`],
    /// whether the user is unknown or the password wrong.
    pub async fn verify(&self, credentials: &Credentials) -> Result<Verified, AuthFailure> {
        if self.is_cached(credentials) {
            return Ok(Verified::Cached);
        }
        let slot = self
            .queue
            .acquire(Line::Other)
            .await
            .map_err(|_| AuthFailure::BadCredentials)?;
        self.check(slot, credentials).await
    }

    /// Computes the hash for `credentials` while holding `slot`.
    async fn check(&self, slot: Slot, credentials: &Credentials) -> Result<Verified, AuthFailure> {
        let known = self.users.get(&credentials.user).cloned();
        let password = credentials.password.clone();
        let dummy = self.dummy.clone();
        let entry = known.clone();
        let cost = self.users.bcrypt_cost().unwrap_or(DEFAULT_DUMMY_COST);
        let matches = tokio::task::spawn_blocking(move || {
            // The slot is held until the hash is done, even if the request is not.
            let _slot = slot;
            match entry {
                Some(entry) => entry.verify(&password),
                None => {
                    // Same work as for a known user, and never a match.
                    dummy.get_or_init(|| dummy_entry(cost)).verify(&password);
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        match known {
            Some(entry) if matches => {
                self.cache
                    .insert(&credentials.user, &credentials.password, &entry.hash);
                Ok(Verified::Computed)
            }
            _ => Err(AuthFailure::BadCredentials),
        }
    }

    /// Whether `user` is an administrator.
    pub fn is_admin(&self, user: &str) -> bool {
        self.admins.contains(user)
    }

    /// Whether `user` is (still) in the user database.
    pub fn knows(&self, user: &str) -> bool {
        self.users.get(user).is_some()
    }
}

/// A bcrypt entry for a random password no one knows.
fn dummy_entry(cost: u32) -> Entry {
    let random = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let hash = bcrypt::hash(random, cost)
        .or_else(|_| {
            bcrypt::hash(
                Alphanumeric.sample_string(&mut rand::rng(), 24),
                DEFAULT_DUMMY_COST,
            )
        })
        .expect("bcrypt of a short random string");
    Entry {
        hash,
        scheme: Scheme::Bcrypt,
    }
}

/// The identity a request was authenticated as.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<str>,
    pub admin: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            realm: "application".into(),
            htpasswd: "unused".into(),
            admins: vec!["root".into()],
            cache_ttl_secs: 60,
            cache_max_entries: 100,
            max_pending_verifications: 8,
        }
    }

    fn authenticator() -> Authenticator {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let (users, _) = Htpasswd::parse(&format!("alice:{hash}\nroot:{hash}\n")).unwrap();
        let login = LoginConfig {
            max_failures_per_pair: 2,
            ..LoginConfig::default()
        };
        Authenticator::new(users, &config(), Arc::new(LoginThrottle::new(&login))).unwrap()
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[tokio::test]
    async fn verifies_then_serves_from_cache() {
        let auth = authenticator();
        assert_eq!(
            auth.verify(&creds("alice", "pw")).await,
            Ok(Verified::Computed)
        );
        assert_eq!(
            auth.verify(&creds("alice", "pw")).await,
            Ok(Verified::Cached)
        );
        assert_eq!(
            auth.verify(&creds("alice", "nope")).await,
            Err(AuthFailure::BadCredentials)
        );
        assert_eq!(
            auth.verify(&creds("mallory", "pw")).await,
            Err(AuthFailure::BadCredentials)
        );
        assert!(auth.is_admin("root"));
        assert!(!auth.is_admin("alice"));
    }

    #[tokio::test]
    async fn failed_logins_lock_out_before_hashing() {
        let auth = authenticator();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..2 {
            assert!(matches!(
                auth.login(&creds("alice", "nope"), ip).await,
                Err(RequestError::Unauthenticated(AuthFailure::BadCredentials))
            ));
        }
        match auth.login(&creds("alice", "pw"), ip).await {
            Err(RequestError::LockedOut { retry_after_secs }) => assert_eq!(retry_after_secs, 60),
            other => panic!("{other:?}"),
        }
        let elsewhere: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(
            auth.login(&creds("alice", "pw"), elsewhere).await.unwrap(),
            Verified::Computed
        );
        // Remembered, the right password still gets nowhere on the locked pair:
        // a lockout holds for every attempt it covers.
        assert!(matches!(
            auth.login(&creds("alice", "pw"), ip).await,
            Err(RequestError::LockedOut { .. })
        ));
        assert_eq!(
            auth.login(&creds("alice", "pw"), elsewhere).await.unwrap(),
            Verified::Cached
        );
    }

    #[test]
    fn dummy_hash_uses_the_files_cost() {
        let auth = authenticator();
        assert!(auth.dummy.get().is_none(), "not made at start");
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _ = runtime.block_on(auth.verify(&creds("nobody", "x")));
        let parts = auth
            .dummy
            .get()
            .expect("made for the first unknown user")
            .hash
            .parse::<bcrypt::HashParts>()
            .unwrap();
        assert_eq!(parts.get_cost(), 4);
    }
}
