//! The step that authenticates the gateway to Livy, for a Livy whose own
//! authentication is on: it adds credentials to each request for a Livy server and
//! looks at that server's answers (a cookie to keep, a token to check). A Livy with
//! authentication off needs none, and the gateway then runs no step at all.
//!
//! Which step runs is chosen from `[livy]` ([`from_config`]): SPNEGO from the
//! gateway's keytab under `[livy.kerberos]` (cargo feature `kerberos`,
//! [`super::spnego`]).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};

use super::peers::Peer;
use crate::config::LivyConfig;
use crate::error::{RequestError, StartupError};

/// What one attempt carries from [`UpstreamAuth::authorize`] to
/// [`UpstreamAuth::answered`] (e.g. the security context whose mutual
/// authentication the answer completes).
pub type Pending = Option<Box<dyn Any + Send>>;

/// What an answer means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The only step there is is SPNEGO, built with the `kerberos` feature.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
pub enum Verdict {
    /// Pass the answer on.
    Accept,
    /// Livy refused a credential it accepted before (an expired or foreign
    /// cookie): a request that sent no body may go again, with fresh credentials.
    Retry,
}

/// Authenticates the gateway to Livy.
#[async_trait]
pub trait UpstreamAuth: Send + Sync {
    /// Adds what `peer` needs to accept the request (`Authorization`, a cookie).
    /// `replayable`: its body (none, or one kept whole) can be sent again if Livy
    /// refuses a remembered credential; `fresh`: it is being sent again, and must
    /// carry new credentials.
    async fn authorize(
        &self,
        peer: &Peer,
        headers: &mut HeaderMap,
        replayable: bool,
        fresh: bool,
    ) -> Result<Pending, RequestError>;
    /// Looks at `peer`'s answer (keeps a session cookie, checks a mutual
    /// authentication token).
    async fn answered(
        &self,
        peer: &Peer,
        pending: Pending,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Verdict, RequestError>;
    /// Obtains credentials now and says what was obtained (`check-config
    /// --probe`).
    async fn probe(&self, peer: &Peer) -> Result<String, RequestError>;
}

/// The step `[livy]` asks for: `None` for a Livy with authentication off.
#[cfg_attr(not(feature = "kerberos"), allow(clippy::unnecessary_wraps))]
pub fn from_config(config: &LivyConfig) -> Result<Option<Arc<dyn UpstreamAuth>>, StartupError> {
    match &config.kerberos {
        None => Ok(None),
        #[cfg(feature = "kerberos")]
        Some(kerberos) => Ok(Some(Arc::new(super::spnego::Spnego::new(kerberos)?))),
        #[cfg(not(feature = "kerberos"))]
        Some(_) => Err(StartupError::Other(
            "[livy.kerberos]: this build has no Kerberos support; build it with \
             `cargo build --release --features kerberos` (needs libkrb5-dev and clang)"
                .into(),
        )),
    }
}
