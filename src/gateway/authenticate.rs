//! Phase 2, authenticate: who is asking. Verified Basic credentials or a Kerberos
//! ticket (`Authorization: Negotiate`, with `[auth.kerberos]`) if present (they
//! win), else the live session the cookie named (found by the limit phase). A
//! login that is let through the rate limits, without a matching session, starts
//! one; a Negotiate login's answer carries the token that proves the gateway to
//! the client.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::header::{self, Presented};
use crate::auth::{Identity, Principal, Verified};
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
        let presented = header::parse(headers, self.auth.takes_tickets())
            .map_err(RequestError::Unauthenticated)?;
        let login = match presented {
            Some(Presented::Basic(credentials)) => {
                let (identity, how) = self.auth.login(&credentials, conn.peer.ip()).await?;
                ctx.auth_method = Some(match how {
                    Verified::Cached => "cached",
                    Verified::Computed => "password",
                });
                Some(identity)
            }
            Some(Presented::Negotiate(token)) => {
                let (identity, reply) = self.auth.login_ticket(token, conn.peer.ip()).await?;
                ctx.auth_method = Some("negotiate");
                ctx.negotiate_reply = reply.map(|token| {
                    let value = format!("Negotiate {}", STANDARD.encode(token));
                    HeaderValue::try_from(value).expect("base64 is a header value")
                });
                Some(identity)
            }
            None => None,
        };
        let identity = match login {
            Some(identity) => {
                // A login as the cookie's own user goes on in that session.
                if session.as_ref().map(|s| &s.user) != Some(&identity.user) {
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
