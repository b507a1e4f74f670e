//! Authentication: who is making a request, and what they may do.
//!
//! A [`CredentialVerifier`] (an htpasswd file, a directory, or a [`Chain`] of them)
//! decides whether a user name and password match and names the user's groups. The
//! [`Authenticator`] wraps whichever verifier the configuration chose with what
//! every verifier needs, once:
//! - lockouts (`state::Lockouts`): a locked-out attempt is refused before
//!   anything else, remembered credentials included (otherwise a guesser could go
//!   on guessing whenever the user had logged in recently, and a remembered match
//!   would confirm a guess); a check is reserved before it starts, so checks in
//!   flight count against the limits;
//! - the [`cache::CredentialCache`] of recent successes, with the groups they proved;
//! - a bounded [`queue`] in front of the checks, where familiar logins wait ahead
//!   of strangers; beyond it a login is answered 503 at once;
//! - equal time: a check for a user no verifier knows takes as long as a typical
//!   check of a known user, so response time does not reveal which users exist.
//!
//! [`Roles`] turns an [`Identity`] into a [`Principal`]: a user is an administrator
//! when named in `auth.admins` or a member of a group in `auth.admin_groups`.

pub mod basic;
pub mod cache;
pub mod htpasswd;
pub mod queue;
pub mod verifier;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::AuthConfig;
use crate::error::{AuthFailure, RequestError, StartupError};
use crate::state::{Lockouts, Outcome, Reservation};
use basic::Credentials;
use cache::CredentialCache;
use queue::{Line, VerifyQueue};
pub use verifier::{Chain, CredentialVerifier, Verdict, VerifyError};

/// A user, as a verifier vouched for them: their name and groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: Arc<str>,
    pub groups: Arc<[String]>,
}

impl Identity {
    pub fn new(user: &str, groups: Vec<String>) -> Self {
        Self {
            user: Arc::from(user),
            groups: groups.into(),
        }
    }
}

/// The identity a request was authenticated as, and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<str>,
    pub groups: Arc<[String]>,
    /// May act as others and see everyone's work.
    pub admin: bool,
}

/// Who is an administrator: users named in `auth.admins`, and members of groups in
/// `auth.admin_groups` (group names compared without regard to case, as
/// directories compare them).
pub struct Roles {
    admins: HashSet<String>,
    admin_groups: HashSet<String>,
}

impl Roles {
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            admins: config.admins.iter().cloned().collect(),
            admin_groups: config
                .admin_groups
                .iter()
                .map(|g| g.to_lowercase())
                .collect(),
        }
    }

    /// What `identity` may do.
    pub fn principal(&self, identity: Identity) -> Principal {
        let admin = self.admins.contains(&*identity.user)
            || identity
                .groups
                .iter()
                .any(|g| self.admin_groups.contains(&g.to_lowercase()));
        Principal {
            user: identity.user,
            groups: identity.groups,
            admin,
        }
    }
}

/// How a successful login was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The verifier checked the password.
    Computed,
    /// A recent identical verification was remembered.
    Cached,
}

/// The verifier chosen by the configuration: the htpasswd file.
pub fn verifier(config: &AuthConfig) -> Result<Arc<dyn CredentialVerifier>, StartupError> {
    let mut chain: Vec<Arc<dyn CredentialVerifier>> = Vec::new();
    if let Some(path) = &config.htpasswd {
        chain.push(Arc::new(htpasswd::HtpasswdVerifier::load(path)?));
    }
    match chain.len() {
        1 => Ok(chain.remove(0)),
        _ => Ok(Arc::new(Chain::new(chain))),
    }
}

/// Checks logins with a verifier, wrapped in lockouts, a cache, a bounded queue and
/// equal timing.
pub struct Authenticator {
    verifier: Arc<dyn CredentialVerifier>,
    lockouts: Arc<dyn Lockouts>,
    cache: CredentialCache,
    queue: Arc<VerifyQueue>,
    /// A typical check of a known user: what a check of an unknown one is padded to.
    typical: Mutex<Option<Duration>>,
}

impl Authenticator {
    pub fn new(
        verifier: Arc<dyn CredentialVerifier>,
        lockouts: Arc<dyn Lockouts>,
        config: &AuthConfig,
    ) -> Self {
        Self {
            queue: VerifyQueue::new(verifier.concurrency(), config.max_pending_verifications),
            verifier,
            lockouts,
            cache: CredentialCache::new(config.cache_ttl, config.cache_max_entries),
            typical: Mutex::new(None),
        }
    }

    /// A login attempt from `ip`: the lockout check, then the credential cache, then
    /// (reserved with the lockouts, and queued) the verifier. Failures count
    /// towards lockouts; a check refused because the queue is full, or that the
    /// verifier could not make, counts for nothing.
    pub async fn login(
        &self,
        credentials: &Credentials,
        ip: IpAddr,
    ) -> Result<(Identity, Verified), RequestError> {
        let locked_out = |wait: Duration| RequestError::LockedOut {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        if let Some(wait) = self.lockouts.locked(&credentials.user, ip).await? {
            return Err(locked_out(wait));
        }
        if let Some(identity) = self.cache.get(&credentials.user, &credentials.password) {
            return Ok((identity, Verified::Cached));
        }
        let reservation = self
            .lockouts
            .reserve(&credentials.user, ip)
            .await?
            .map_err(locked_out)?;
        let mut attempt = Attempt {
            lockouts: &self.lockouts,
            reservation: Some(reservation),
        };
        let line = match self.lockouts.is_familiar(&credentials.user, ip).await {
            true => Line::Familiar,
            false => Line::Other,
        };
        let _slot = self
            .queue
            .acquire(line)
            .await
            .map_err(|_| RequestError::LoginsBusy {
                retry_after_secs: 1,
            })?;
        let started = Instant::now();
        let verdict = self.verifier.verify(credentials).await.map_err(|error| {
            tracing::warn!(%error, "credentials could not be checked");
            RequestError::AuthUnavailable
        })?;
        match verdict {
            Verdict::Accepted(identity) => {
                self.learn(started.elapsed());
                self.cache
                    .insert(&credentials.user, &credentials.password, &identity);
                attempt.settle(Outcome::Succeeded).await;
                Ok((identity, Verified::Computed))
            }
            Verdict::Rejected => {
                self.learn(started.elapsed());
                attempt.settle(Outcome::Failed).await;
                Err(RequestError::Unauthenticated(AuthFailure::BadCredentials))
            }
            Verdict::Unknown => {
                self.pad(started).await;
                attempt.settle(Outcome::Failed).await;
                Err(RequestError::Unauthenticated(AuthFailure::BadCredentials))
            }
        }
    }

    /// Folds a known user's check time into the typical one.
    fn learn(&self, took: Duration) {
        let mut typical = self.typical.lock().expect("typical time lock");
        *typical = Some(match *typical {
            Some(t) => (t * 4 + took) / 5,
            None => took,
        });
    }

    /// Waits until a check that started at `started` has taken a typical check's
    /// time (holding its place in the queue meanwhile, as a real check would).
    async fn pad(&self, started: Instant) {
        let typical = *self.typical.lock().expect("typical time lock");
        if let Some(typical) = typical {
            tokio::time::sleep_until(started + typical).await;
        }
    }

    /// Every user the verifiers can list (a file's users; a directory lists none).
    pub fn users(&self) -> Option<HashSet<String>> {
        self.verifier.users()
    }
}

/// A reserved check; if it is dropped unsettled (the request went away), the
/// reservation is released as abandoned in the background.
struct Attempt<'a> {
    lockouts: &'a Arc<dyn Lockouts>,
    reservation: Option<Reservation>,
}

impl Attempt<'_> {
    async fn settle(&mut self, outcome: Outcome) {
        if let Some(reservation) = self.reservation.take() {
            self.lockouts.settle(reservation, outcome).await;
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            let lockouts = self.lockouts.clone();
            tokio::spawn(async move { lockouts.settle(reservation, Outcome::Abandoned).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoginConfig;
    use crate::state::local::lockouts::LoginThrottle;
    use htpasswd::{Htpasswd, HtpasswdVerifier};

    fn config() -> AuthConfig {
        AuthConfig {
            admins: vec!["root".into()],
            admin_groups: vec!["Livy-Admins".into()],
            cache_ttl: Duration::from_secs(60),
            cache_max_entries: 100,
            max_pending_verifications: 8,
            ..AuthConfig::default()
        }
    }

    fn authenticator() -> Authenticator {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let (users, _) = Htpasswd::parse(&format!("alice:{hash}\nroot:{hash}\n")).unwrap();
        let login = LoginConfig {
            max_failures_per_pair: 2,
            ..LoginConfig::default()
        };
        Authenticator::new(
            Arc::new(HtpasswdVerifier::new(users)),
            Arc::new(LoginThrottle::new(&login)),
            &config(),
        )
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
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let (identity, how) = auth.login(&creds("alice", "pw"), ip).await.unwrap();
        assert_eq!((&*identity.user, how), ("alice", Verified::Computed));
        let (_, how) = auth.login(&creds("alice", "pw"), ip).await.unwrap();
        assert_eq!(how, Verified::Cached);
        for (user, password) in [("alice", "nope"), ("mallory", "pw")] {
            assert!(matches!(
                auth.login(&creds(user, password), ip).await,
                Err(RequestError::Unauthenticated(AuthFailure::BadCredentials))
            ));
        }
    }

    #[test]
    fn administrators_by_name_or_by_group() {
        let roles = Roles::new(&config());
        assert!(roles.principal(Identity::new("root", vec![])).admin);
        assert!(!roles.principal(Identity::new("alice", vec![])).admin);
        let member = Identity::new("carol", vec!["livy-admins".into()]);
        assert!(roles.principal(member).admin, "group names ignore case");
        let other = Identity::new("dave", vec!["livy-users".into()]);
        assert!(!roles.principal(other).admin);
    }

    #[tokio::test]
    async fn failed_logins_lock_out_before_hashing() {
        let auth = authenticator();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let elsewhere: IpAddr = "192.0.2.8".parse().unwrap();
        // Remembered from another address first.
        auth.login(&creds("alice", "pw"), elsewhere).await.unwrap();
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
        // Remembered, the right password still gets nowhere on the locked pair: a
        // lockout holds for every attempt it covers.
        assert_eq!(
            auth.login(&creds("alice", "pw"), elsewhere)
                .await
                .unwrap()
                .1,
            Verified::Cached
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_users_take_as_long_as_known_ones() {
        /// Takes 200 ms for a known user, nothing for an unknown one (as a
        /// directory's search for a missing user returns at once).
        struct Slow;
        #[async_trait::async_trait]
        impl CredentialVerifier for Slow {
            async fn verify(&self, c: &Credentials) -> Result<Verdict, VerifyError> {
                if c.user != "alice" {
                    return Ok(Verdict::Unknown);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(Verdict::Rejected)
            }
            fn concurrency(&self) -> usize {
                4
            }
        }
        let auth = Authenticator::new(
            Arc::new(Slow),
            Arc::new(LoginThrottle::new(&LoginConfig::default())),
            &config(),
        );
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let _ = auth.login(&creds("alice", "x"), ip).await;
        let started = Instant::now();
        let _ = auth.login(&creds("nobody", "x"), ip).await;
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }
}
