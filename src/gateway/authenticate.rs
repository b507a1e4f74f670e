//! Phase 2, authenticate: who is asking. Verified Basic credentials, a Kerberos
//! ticket (`Authorization: Negotiate`, with `[auth.kerberos]`) or a token (a JWT
//! or a gateway token, as `Bearer` or as a Basic password with the user name
//! `token`) if present (they win), else the live session the cookie named (found
//! by the limit phase). A login that is let through the rate limits, without a
//! matching session, starts one — except a `Bearer` request, which stays
//! stateless; a Negotiate login's answer carries the token that proves the
//! gateway to the client. A session a token login started ends when its token
//! expires or is revoked.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::header::{self, Accepts, Presented};
use crate::auth::{Identity, Principal, TokenKind, Verified};
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
                Some(identity) if self.auth.token_still_valid(&identity).await? => Some(identity),
                Some(_) => {
                    tracing::info!("session token expired or revoked: ending the session");
                    self.state.sessions.remove(&id).await?;
                    None
                }
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
        let accepts = Accepts {
            negotiate: self.auth.takes_tickets(),
            tokens: self.auth.takes_tokens(),
        };
        let presented = header::parse(headers, accepts).map_err(RequestError::Unauthenticated)?;
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
            Some(Presented::Token { token, basic }) => {
                let identity = self.auth.login_token(&token.0, conn.peer.ip()).await?;
                ctx.auth_method = Some(match identity.token.as_ref().map(|t| t.kind) {
                    Some(TokenKind::Jwt) => "jwt",
                    _ => "token",
                });
                if !basic {
                    // Bearer: stateless, whatever cookie came with it.
                    ctx.user = Some(identity.user.clone());
                    return self.roles.principal(identity);
                }
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
