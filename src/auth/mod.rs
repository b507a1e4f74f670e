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
//! With `[auth.kerberos]` it also takes SPNEGO logins ([`negotiate`]): a ticket
//! checked by a [`TicketAcceptor`] instead of a password, behind the same lockouts
//! and queue (failed tokens count against the client's address), the user's groups
//! looked up in the directory when there is one.
//!
//! With `[auth.jwt]` or `[tokens]` it takes token logins too ([`tokens`]): the
//! identity provider's JWTs ([`jwt`]) and the gateway's own tokens, behind the
//! same lockouts (failed tokens count against the client's address).
//!
//! [`Roles`] ([`roles`]) turns an [`Identity`] into a [`Principal`]: a user is an
//! administrator when named in `auth.admins` or a member of a group in
//! `auth.admin_groups`.

pub mod basic;
pub mod cache;
pub mod header;
pub mod htpasswd;
pub mod jwks;
pub mod jwt;
pub mod ldap;
pub mod negotiate;
pub mod oidc;
pub mod queue;
mod roles;
#[cfg(feature = "kerberos")]
mod spnego;
pub mod tokens;
pub mod verifier;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::AuthConfig;
use crate::error::{AuthFailure, RequestError, StartupError};
use crate::metrics::Metrics;
use crate::state::{Lockouts, Outcome, Reservation};
use basic::Credentials;
use cache::CredentialCache;
pub use negotiate::{Realms, TicketAcceptor, TicketError, Tickets};
use queue::{Line, VerifyQueue};
pub use roles::{Principal, Roles};
pub use verifier::{Chain, CredentialVerifier, Lookup, Verdict, VerifyError};

/// Where a user's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The htpasswd file: service accounts, always allowed in.
    File,
    /// A directory: its groups decide who may use the gateway.
    Directory,
    /// A Kerberos ticket, with no directory to name groups.
    Kerberos,
    /// A JWT from the identity provider (`[auth.jwt]`): its claims name the
    /// groups.
    Provider,
}

/// What a token login rests on: a session it started lasts no longer than the
/// token (and, for a gateway token, no longer than it is unrevoked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenBasis {
    pub kind: TokenKind,
    /// The gateway token's id, or the JWT's `jti` if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Arc<str>>,
    /// When the token expires (Unix seconds).
    pub expires: u64,
}

/// Which kind of token a login presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// A JWT from the identity provider.
    Jwt,
    /// A personal access token the gateway issued (`lgw_…`).
    Gateway,
}

/// A user, as a verifier vouched for them: their name and groups. Serialized
/// into a shared session store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub user: Arc<str>,
    pub groups: Arc<[String]>,
    pub source: Source,
    /// Set when the identity was proved by a token rather than a password or a
    /// ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenBasis>,
    /// A browser sign-in's ID token (`[auth.oidc]`), kept with the session on
    /// the gateway's side only, to log out at the provider with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Arc<str>>,
}

impl Identity {
    /// A user from the htpasswd file.
    pub fn new(user: &str, groups: Vec<String>) -> Self {
        Self {
            user: Arc::from(user),
            groups: groups.into(),
            source: Source::File,
            token: None,
            id_token: None,
        }
    }

    /// A user from a directory, with their groups.
    pub fn from_directory(user: &str, groups: Vec<String>) -> Self {
        Self {
            source: Source::Directory,
            ..Self::new(user, groups)
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

/// The verifier chosen by the configuration: the htpasswd file (service accounts),
/// then the directory, each when configured.
pub fn verifier(
    config: &AuthConfig,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn CredentialVerifier>, StartupError> {
    let mut chain: Vec<Arc<dyn CredentialVerifier>> = Vec::new();
    if let Some(path) = &config.htpasswd {
        chain.push(Arc::new(htpasswd::HtpasswdVerifier::load(path)?));
    }
    if let Some(directory) = &config.ldap {
        chain.push(Arc::new(ldap::LdapVerifier::new(
            directory,
            metrics.clone(),
        )?));
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
    /// Directory users' identities as looked up last, for sessions: looked up again
    /// once older than the credential cache's time.
    current: Mutex<HashMap<Arc<str>, (Identity, Instant)>>,
    cache_ttl: Duration,
    cache_max_entries: usize,
    /// `[auth.kerberos]`: who checks users' tickets, and which realms are users.
    tickets: Option<Tickets>,
    /// `[auth.jwt]` and `[tokens]`: token logins.
    tokens: Option<tokens::Tokens>,
}

/// The lockout key failed tokens from `ip` count under: a token that fails names
/// no user, so the address is what is counted (the pair's limit, then the
/// address's), never a key shared by every address, which anyone could lock.
fn ticket_key(ip: IpAddr) -> String {
    format!(":negotiate@{ip}")
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
            current: Mutex::new(HashMap::new()),
            cache_ttl: config.cache_ttl,
            cache_max_entries: config.cache_max_entries,
            tickets: None,
            tokens: None,
        }
    }

    /// Takes token logins too.
    pub fn with_tokens(mut self, tokens: Option<tokens::Tokens>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Takes SPNEGO logins too, checked by `acceptor`.
    pub fn with_tickets(mut self, tickets: Option<Tickets>) -> Self {
        self.tickets = tickets;
        self
    }

    /// Whether SPNEGO logins are taken.
    pub fn takes_tickets(&self) -> bool {
        self.tickets.is_some()
    }

    /// A session's identity as it is now: a directory user's groups are looked up
    /// again once the credential cache's time has passed since the last look;
    /// `None` if the user is gone from the directory. While the directory cannot be
    /// reached the session's own identity serves.
    pub async fn current(&self, identity: Identity) -> Option<Identity> {
        if identity.source != Source::Directory {
            return Some(identity);
        }
        let now = Instant::now();
        if let Some((known, at)) = self
            .current
            .lock()
            .expect("current lock")
            .get(&identity.user)
        {
            if now.duration_since(*at) < self.cache_ttl {
                return Some(known.clone());
            }
        }
        match self.verifier.lookup(&identity.user).await {
            Ok(Lookup::Found(fresh)) => {
                let mut current = self.current.lock().expect("current lock");
                if current.len() >= self.cache_max_entries {
                    let ttl = self.cache_ttl;
                    current.retain(|_, (_, at)| now.duration_since(*at) < ttl);
                }
                current.insert(fresh.user.clone(), (fresh.clone(), now));
                Some(fresh)
            }
            Ok(Lookup::Gone) => None,
            Ok(Lookup::Unsupported) => Some(identity),
            Err(error) => {
                tracing::warn!(%error, "directory unavailable: a session's groups were not checked again");
                Some(identity)
            }
        }
    }

    /// Whether logins can be checked now (the directory answers, the service key
    /// can be read).
    pub async fn ready(&self) -> Result<(), VerifyError> {
        if let Some(tickets) = &self.tickets {
            tickets
                .acceptor
                .ready()
                .await
                .map_err(|e| VerifyError(e.to_string()))?;
        }
        self.verifier.ready().await
    }

    /// What the verifiers can tell about their backing stores.
    pub async fn probe(&self) -> Option<Result<String, VerifyError>> {
        self.verifier.probe().await
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
        if !is_plain_name(&credentials.user) {
            // Directories would find `alice` under ` alice`; nobody types that.
            return Err(RequestError::Unauthenticated(AuthFailure::Malformed));
        }
        // Every spelling of a name counts against one lockout: a directory
        // compares names without regard to case, and so do the lockouts.
        let key = lockout_key(&credentials.user);
        if let Some(wait) = self.lockouts.locked(&key, ip).await? {
            return Err(locked_out(wait));
        }
        if let Some(identity) = self.cache.get(&credentials.user, &credentials.password) {
            return Ok((identity, Verified::Cached));
        }
        if credentials.password.is_empty() {
            // Never asked of any verifier: a simple bind with a DN and no password is
            // an anonymous bind, which many directories let succeed.
            return Err(RequestError::Unauthenticated(AuthFailure::BadCredentials));
        }
        let line = match self.lockouts.is_familiar(&key, ip).await {
            true => Line::Familiar,
            false => Line::Other,
        };
        let (mut attempt, _slot) = self.begin(&key, ip, line).await?;
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

    /// A SPNEGO login from `ip`: the lockout check, then (reserved with the
    /// lockouts, and queued with password checks) the acceptor; the user's groups
    /// from the directory, if there is one. Returns the identity and the token
    /// that proves the gateway to the client.
    pub async fn login_ticket(
        &self,
        token: Vec<u8>,
        ip: IpAddr,
    ) -> Result<(Identity, Option<Vec<u8>>), RequestError> {
        let refused = || RequestError::Unauthenticated(AuthFailure::BadCredentials);
        let Some(Tickets { acceptor, realms }) = &self.tickets else {
            return Err(RequestError::Unauthenticated(AuthFailure::Malformed));
        };
        let (mut attempt, slot) = self.begin(&ticket_key(ip), ip, Line::Other).await?;
        let accepted = acceptor.accept(token).await;
        drop(slot);
        let ticket = match accepted {
            Ok(ticket) => ticket,
            Err(TicketError::Refused(reason)) => {
                tracing::info!(%reason, "Negotiate login refused");
                attempt.settle(Outcome::Failed).await;
                return Err(refused());
            }
            Err(error @ TicketError::Unavailable(_)) => {
                tracing::error!(%error, "Negotiate logins cannot be checked");
                return Err(RequestError::AuthUnavailable);
            }
        };
        let user = match realms.user_of(&ticket.principal) {
            Ok(user) => user,
            Err(reason) => {
                tracing::info!(%reason, "Negotiate login refused");
                attempt.settle(Outcome::Failed).await;
                return Err(refused());
            }
        };
        let identity = match self.verifier.lookup(user).await {
            Ok(Lookup::Found(identity)) => identity,
            Ok(Lookup::Unsupported) => Identity {
                source: Source::Kerberos,
                ..Identity::new(user, Vec::new())
            },
            Ok(Lookup::Gone) => {
                attempt.settle(Outcome::Failed).await;
                return Err(RequestError::Forbidden(format!(
                    "user {user} has a Kerberos ticket but is not in the directory"
                )));
            }
            Err(error) => {
                tracing::warn!(%error, "directory unavailable: a Negotiate login's groups are unknown");
                return Err(RequestError::AuthUnavailable);
            }
        };
        attempt.settle(Outcome::Succeeded).await;
        Ok((identity, ticket.reply))
    }

    /// Starts a check for `user` from `ip`: reserved with the lockouts (429 when a
    /// lockout runs), then a place in `line` of the queue (503 when it is full).
    async fn begin(
        &self,
        user: &str,
        ip: IpAddr,
        line: Line,
    ) -> Result<(Attempt<'_>, queue::Slot), RequestError> {
        let reservation = self.lockouts.reserve(user, ip).await?.map_err(locked_out)?;
        let attempt = Attempt {
            lockouts: &self.lockouts,
            reservation: Some(reservation),
        };
        let slot = self
            .queue
            .acquire(line)
            .await
            .map_err(|_| RequestError::LoginsBusy {
                retry_after_secs: 1,
            })?;
        Ok((attempt, slot))
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

/// Whether a login name is one a user could mean: no blanks around it and no
/// control characters in it (a directory would ignore the blanks and find the
/// user under another spelling).
fn is_plain_name(user: &str) -> bool {
    user.trim() == user && !user.chars().any(char::is_control)
}

/// What a login name's failures are counted under: the name as a directory
/// compares it (`caseIgnoreMatch`: without regard to case, runs of blanks as one),
/// so `ALICE`, `Alice` and `alice` (one directory user) share one lockout. A
/// directory's canonical name is the same name in some spelling, so it shares it
/// too.
fn lockout_key(user: &str) -> String {
    user.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// 429 for a lockout that runs `wait` more, in whole seconds rounded up.
fn locked_out(wait: Duration) -> RequestError {
    RequestError::LockedOut {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
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

    #[tokio::test]
    async fn names_with_blanks_or_controls_are_refused_and_spellings_share_a_lockout() {
        let auth = authenticator();
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        for name in [" alice", "alice ", "alice\t", "al\u{0}ice", "\u{7f}alice"] {
            assert!(
                matches!(
                    auth.login(&creds(name, "pw"), ip).await,
                    Err(RequestError::Unauthenticated(AuthFailure::Malformed))
                ),
                "{name:?}"
            );
        }
        assert_eq!(lockout_key("Al  Ice"), lockout_key("al ice"));
        // Two failures (the pair's limit) in two spellings lock every spelling.
        for name in ["ALICE", "Alice"] {
            assert!(auth.login(&creds(name, "nope"), ip).await.is_err());
        }
        assert!(matches!(
            auth.login(&creds("alice", "pw"), ip).await,
            Err(RequestError::LockedOut { .. })
        ));
        assert!(matches!(
            auth.login(&creds("aLiCe", "pw"), ip).await,
            Err(RequestError::LockedOut { .. })
        ));
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
