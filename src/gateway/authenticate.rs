//! Phase 2, authenticate: who is asking. Verified Basic credentials if present
//! (they win), else the live session the cookie named (found by the limit phase).
//! A login that is let through the rate limits, without a matching session,
//! starts one.

use http::HeaderMap;

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::{basic, Identity, Principal, Verified};
use crate::error::{AuthFailure, RequestError};
use crate::session;

impl Gateway {
    /// The request's principal; on a fresh login, its identity waits in `ctx` for
    /// [`Gateway::start_session`].
    pub(super) async fn authenticate(
        &self,
        headers: &HeaderMap,
        conn: &ConnInfo,
        session: Option<(String, Identity)>,
        ctx: &mut RequestContext,
    ) -> Result<Principal, RequestError> {
        let cookie = &self.settings.cookie_name;
        // A directory user's groups, and whether they still exist, are looked at
        // again once the credential cache's time has passed.
        let session = match session {
            Some((id, identity)) => match self.auth.current(identity).await {
                Some(identity) => Some(identity),
                None => {
                    tracing::info!("session user no longer in the directory: ending the session");
                    self.state.sessions.remove(&id).await?;
                    None
                }
            },
            None => None,
        };
        ctx.session_cookie = session::carries_cookie(headers, cookie);
        ctx.auth_method = session.is_some().then_some("session");
        let identity = match basic::parse(headers).map_err(RequestError::Unauthenticated)? {
            Some(credentials) => {
                let (identity, how) = self.auth.login(&credentials, conn.peer.ip()).await?;
                ctx.auth_method = Some(match how {
                    Verified::Cached => "cached",
                    Verified::Computed => "password",
                });
                if session.as_ref().map(|s| &*s.user) != Some(credentials.user.as_str()) {
                    ctx.login = Some(identity.clone());
                }
                identity
            }
            None => session.ok_or(RequestError::Unauthenticated(match ctx.session_cookie {
                // A stale or forged cookie, told apart from no credentials.
                true => AuthFailure::UnknownSession,
                false => AuthFailure::Missing,
            }))?,
        };
        ctx.user = Some(identity.user.clone());
        self.roles.principal(identity)
    }

    /// Starts the session of a fresh login, once its request has been let through
    /// the rate limits: a refused request must not cost a session (nor push an
    /// older one out).
    pub(super) async fn start_session(&self, ctx: &mut RequestContext) -> Result<(), RequestError> {
        if let Some(identity) = ctx.login.take() {
            ctx.new_session = Some(self.state.sessions.create(&identity).await?);
        }
        Ok(())
    }
}
