//! Connections to the directory, kept and reused.
//!
//! Two pools serve a directory verifier: one whose connections are bound as the
//! service account (searches), and one whose connections only ever carry users'
//! binds, so a user's bind never changes the identity of a connection that
//! searches. A connection is checked out for one operation at a time (RFC 4511
//! forbids other operations while a bind is in progress), at most `pool_size` at
//! once per pool. Connecting tries the configured URLs in order; a connection that
//! fails is dropped, and the next checkout opens a fresh one, so the gateway
//! recovers by itself when the directory is back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Ops;
use crate::auth::VerifyError;

/// The service account a pool's connections bind as, if any.
#[derive(Clone)]
pub struct Credentials {
    pub dn: String,
    pub password: String,
}

/// Kept connections to the directory, all bound the same way.
pub struct Pool {
    urls: Vec<String>,
    settings: LdapConnSettings,
    /// Bound as this after connecting; `None`: anonymous (users bind themselves).
    bind: Option<Credentials>,
    timeout: Duration,
    idle: Mutex<Vec<Ldap>>,
    permits: Arc<Semaphore>,
    ops: Arc<Ops>,
}

/// One connection, checked out; returned to the pool when dropped unless it failed.
pub struct Conn<'a> {
    pool: &'a Pool,
    ldap: Option<Ldap>,
    _permit: OwnedSemaphorePermit,
}

impl Conn<'_> {
    /// The connection, with the pool's timeout set for its next operation.
    pub fn ldap(&mut self) -> &mut Ldap {
        let ldap = self.ldap.as_mut().expect("a checked-out connection");
        ldap.with_timeout(self.pool.timeout)
    }

    /// The connection failed: it is closed rather than kept.
    pub fn discard(mut self) {
        self.ldap = None;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(ldap) = self.ldap.take() {
            self.pool.idle.lock().expect("ldap pool lock").push(ldap);
        }
    }
}

impl Pool {
    pub fn new(
        urls: Vec<String>,
        settings: LdapConnSettings,
        bind: Option<Credentials>,
        timeout: Duration,
        size: usize,
        ops: Arc<Ops>,
    ) -> Self {
        Self {
            urls,
            settings,
            bind,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
            ops,
        }
    }

    /// A connection: a kept one, or a new one (connected, and bound when the pool
    /// binds). Waits for a free place in the pool at most the operation timeout.
    pub async fn get(&self) -> Result<Conn<'_>, VerifyError> {
        let permit = tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| VerifyError("every directory connection is busy".into()))?
            .map_err(|_| VerifyError("the directory pool is closed".into()))?;
        let kept = self.idle.lock().expect("ldap pool lock").pop();
        let ldap = match kept {
            Some(mut ldap) => match ldap.is_closed() {
                false => ldap,
                true => self.connect().await?,
            },
            None => self.connect().await?,
        };
        Ok(Conn {
            pool: self,
            ldap: Some(ldap),
            _permit: permit,
        })
    }

    /// Forgets every kept connection (they failed, or the directory moved).
    pub fn clear(&self) {
        self.idle.lock().expect("ldap pool lock").clear();
    }

    /// Opens a connection to the first URL that answers, and binds it.
    async fn connect(&self) -> Result<Ldap, VerifyError> {
        let mut last = VerifyError("no directory URL configured".into());
        for url in &self.urls {
            let started = Instant::now();
            let settings = self.settings.clone().set_conn_timeout(self.timeout);
            let opened = LdapConnAsync::with_settings(settings, url).await;
            let (conn, mut ldap) = match opened {
                Ok(opened) => {
                    self.ops.record("connect", "ok", started);
                    opened
                }
                Err(error) => {
                    self.ops.record("connect", outcome_of(&error), started);
                    tracing::warn!(url, %error, "cannot connect to the directory");
                    last = VerifyError(format!("cannot connect to {url}: {error}"));
                    continue;
                }
            };
            ldap3::drive!(conn);
            let Some(bind) = &self.bind else {
                return Ok(ldap);
            };
            let started = Instant::now();
            let bound = ldap
                .with_timeout(self.timeout)
                .simple_bind(&bind.dn, &bind.password)
                .await
                .and_then(|result| result.success());
            match bound {
                Ok(_) => {
                    self.ops.record("bind_service", "ok", started);
                    return Ok(ldap);
                }
                Err(error) => {
                    self.ops.record("bind_service", outcome_of(&error), started);
                    // Logged without the password, naming the account.
                    tracing::error!(url, dn = %bind.dn, %error, "the directory refused the service account's bind");
                    last = VerifyError(format!("service bind as {} refused: {error}", bind.dn));
                }
            }
        }
        Err(last)
    }
}

/// A metric outcome for a failed directory operation.
pub fn outcome_of(error: &ldap3::LdapError) -> &'static str {
    match error {
        ldap3::LdapError::Timeout { .. } => "timeout",
        ldap3::LdapError::LdapResult { result } if result.rc == INVALID_CREDENTIALS => {
            "invalid_credentials"
        }
        ldap3::LdapError::LdapResult { .. } => "refused",
        _ => "error",
    }
}

/// LDAP result code 49: invalidCredentials.
pub const INVALID_CREDENTIALS: u32 = 49;
