//! Browser sign-in (`[auth.oidc]`), answered by the gateway itself before
//! authentication:
//! - a browser's navigation without credentials is sent (302) to the provider
//!   ([`Gateway::begin_sign_in`]), the sign-in kept server-side under its `state`;
//!   every other request without credentials keeps its 401;
//! - `/gateway/<topology>/oidc/callback` finishes it: the `state` taken (once),
//!   the code exchanged, the ID token checked, the user's groups applied, the
//!   ordinary session started, and the browser sent on to the page it first
//!   asked for, by a page of the gateway's own (a same-site navigation, so the
//!   `SameSite=Strict` cookie goes with it: no sign-in loop);
//! - `/gateway/<topology>/logout` ends the session everywhere and, where the
//!   provider has an `end_session_endpoint`, logs out there too.
//!
//! Whatever goes wrong ends on a small page saying what happened, with a link to
//! start again: never a loop, never a redirect to anywhere but this gateway.

use http::header::{HeaderValue, CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{HeaderMap, Response, StatusCode, Uri};

use super::context::{ConnInfo, RequestContext};
use super::pages::html_page;
use super::Gateway;
use crate::auth::oidc::SignInError;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::session;
use crate::state::signins::PendingSignIn;

/// The sign-in pages under the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignInPage {
    /// `/oidc/callback`.
    Callback,
    /// `/oidc/start?return=<path>`: a sign-in begun on purpose (the "start again"
    /// links).
    Start,
    /// `/oidc/signed-in`: where a sign-in with nowhere else to go ends.
    SignedIn,
    /// `/logout`.
    Logout,
    /// `/oidc/signed-out`: where the provider sends the browser after logging out.
    SignedOut,
}

/// The sign-in page `path` names, if any.
pub(super) fn page(path: &str, prefix: &str) -> Option<SignInPage> {
    match path.strip_prefix(prefix)? {
        "/oidc/callback" => Some(SignInPage::Callback),
        "/oidc/start" => Some(SignInPage::Start),
        "/oidc/signed-in" => Some(SignInPage::SignedIn),
        "/oidc/signed-out" => Some(SignInPage::SignedOut),
        "/logout" => Some(SignInPage::Logout),
        _ => None,
    }
}

/// Whether `target` is a path on this gateway a sign-in may return to: under
/// the topology, no scheme or authority, no backslash, no control character,
/// nothing encoded that could turn it into one (`%2f%2f`, `%5c`).
pub(super) fn is_return_target(target: &str, prefix: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    target.starts_with(&format!("{prefix}/"))
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(char::is_control)
        && !["%2f", "%5c", "%00", "%0a", "%0d", "%09"]
            .iter()
            .any(|bad| lower.contains(bad))
        && !target
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .contains("/../")
        && !target.contains("/./")
}

/// `/oidc/signed-in` for a signed-in caller: who they are, and the way out.
pub(super) fn signed_in(principal: &Principal, prefix: &str) -> Response<Body> {
    html_page(
        StatusCode::OK,
        "Signed in",
        &format!("You are signed in to the gateway as {}.", principal.user),
        &format!("{prefix}/logout"),
        false,
    )
}

/// A query parameter's value, decoded.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl Gateway {
    /// The URL of this gateway's callback, as the browser reaches it.
    fn callback_url(&self, conn: &ConnInfo) -> String {
        let host = self
            .settings
            .public_host
            .as_ref()
            .unwrap_or(&conn.host)
            .to_str()
            .unwrap_or("localhost");
        format!("https://{host}{}/oidc/callback", self.settings.prefix)
    }

    /// Sends a browser with no session to the provider: the sign-in kept under
    /// its `state`, to come back to `return_to`.
    pub(super) async fn begin_sign_in(
        &self,
        return_to: &str,
        conn: &ConnInfo,
    ) -> Result<Response<Body>, RequestError> {
        let Some(oidc) = &self.oidc else {
            return Err(RequestError::NotFound);
        };
        let begun = match oidc.authorization_url(&self.callback_url(conn)).await {
            Ok(begun) => begun,
            Err(error) => return Ok(self.sign_in_failed(error)),
        };
        let pending = PendingSignIn {
            verifier: begun.verifier,
            nonce: begun.nonce,
            return_to: return_to.to_owned(),
        };
        self.state.signins.begin(&begun.state, &pending).await?;
        self.metrics.sign_in("started");
        let mut response = Response::new(body::empty());
        *response.status_mut() = StatusCode::FOUND;
        let location = HeaderValue::try_from(begun.location).map_err(|_| RequestError::Internal)?;
        response.headers_mut().insert(LOCATION, location);
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// The page a callback with no sign-in under way ends on.
    fn unknown_sign_in(&self) -> Response<Body> {
        self.metrics.sign_in("unknown_state");
        html_page(
            StatusCode::BAD_REQUEST,
            "Sign-in not recognised",
            "This sign-in is unknown, was already used or took too long.",
            &format!("{}/oidc/start", self.settings.prefix),
            false,
        )
    }

    /// The page a failed sign-in ends on.
    fn sign_in_failed(&self, error: SignInError) -> Response<Body> {
        let start = format!("{}/oidc/start", self.settings.prefix);
        match error {
            SignInError::Provider(why) => {
                tracing::warn!(error = %why, "sign-in failed at the identity provider");
                self.metrics.sign_in("provider_error");
                html_page(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in unavailable",
                    "The identity provider could not be reached or refused the gateway. Try again shortly.",
                    &start,
                    false,
                )
            }
            SignInError::Refused(why) => {
                tracing::info!(reason = %why, "sign-in refused");
                self.metrics.sign_in("refused");
                html_page(
                    StatusCode::BAD_REQUEST,
                    "Sign-in refused",
                    "What came back from the identity provider was not valid for this sign-in.",
                    &start,
                    false,
                )
            }
        }
    }

    /// Answers a sign-in page.
    pub(super) async fn sign_in_page(
        &self,
        page: SignInPage,
        uri: &Uri,
        headers: &HeaderMap,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let Some(oidc) = &self.oidc else {
            return Err(RequestError::NotFound);
        };
        let prefix = &self.settings.prefix;
        let signed_in = format!("{prefix}/oidc/signed-in");
        let start = format!("{prefix}/oidc/start");
        match page {
            SignInPage::Start => {
                let target = param(uri.query(), "return")
                    .filter(|t| is_return_target(t, prefix))
                    .unwrap_or(signed_in);
                self.begin_sign_in(&target, conn).await
            }
            // Behind authentication: answered by [`signed_in`].
            SignInPage::SignedIn => Err(RequestError::NotFound),
            SignInPage::SignedOut => Ok(html_page(
                StatusCode::OK,
                "Signed out",
                "You are signed out.",
                &start,
                false,
            )),
            SignInPage::Logout => self.log_out(headers, conn).await,
            SignInPage::Callback => {
                ctx.auth_method = Some("oidc");
                let query = uri.query();
                let Some(state) = param(query, "state") else {
                    return Ok(self.unknown_sign_in());
                };
                let Some(pending) = self.state.signins.take(&state).await? else {
                    return Ok(self.unknown_sign_in());
                };
                let again = format!(
                    "{start}?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("return", &pending.return_to)
                        .finish()
                );
                if let Some(error) = param(query, "error") {
                    self.metrics.sign_in("denied");
                    tracing::info!(error = %crate::logging::clip(&error), "sign-in ended at the identity provider");
                    return Ok(html_page(
                        StatusCode::FORBIDDEN,
                        "Sign-in cancelled",
                        "The identity provider did not sign you in (cancelled or refused there).",
                        &again,
                        false,
                    ));
                }
                let Some(code) = param(query, "code") else {
                    self.metrics.sign_in("refused");
                    return Ok(html_page(
                        StatusCode::BAD_REQUEST,
                        "Sign-in refused",
                        "The identity provider sent no code.",
                        &again,
                        false,
                    ));
                };
                let finished = oidc
                    .finish(
                        &code,
                        &pending.verifier,
                        &pending.nonce,
                        &self.callback_url(conn),
                    )
                    .await;
                let signed = match finished {
                    Ok(signed) => signed,
                    Err(error) => return Ok(self.sign_in_failed(error)),
                };
                ctx.user = Some(signed.identity.user.clone());
                let principal = match self.roles.principal(signed.identity.clone()) {
                    Ok(principal) => principal,
                    Err(refused) => {
                        self.metrics.sign_in("forbidden");
                        ctx.error = Some(refused);
                        return Ok(html_page(
                            StatusCode::FORBIDDEN,
                            "Not allowed",
                            "You are signed in at the identity provider, but not a member of a group allowed to use this gateway.",
                            &format!("{prefix}/logout"),
                            false,
                        ));
                    }
                };
                ctx.grants = principal.grants.clone();
                let mut identity = signed.identity;
                identity.id_token = Some(signed.id_token.into());
                let id = self.state.sessions.create(&identity).await?;
                self.metrics.sign_in("signed_in");
                let mut response = html_page(
                    StatusCode::OK,
                    "Signed in",
                    "Signed in; on to the page you asked for.",
                    &pending.return_to,
                    true,
                );
                response.headers_mut().insert(
                    SET_COOKIE,
                    session::set_cookie_value(&self.settings.cookie_name, &id, prefix),
                );
                Ok(response)
            }
        }
    }

    /// Ends the session the cookie names (everywhere: it is gone from the state
    /// backend) and logs out at the provider when it can.
    async fn log_out(
        &self,
        headers: &HeaderMap,
        conn: &ConnInfo,
    ) -> Result<Response<Body>, RequestError> {
        let Some(oidc) = &self.oidc else {
            return Err(RequestError::NotFound);
        };
        let mut id_token = None;
        for id in session::session_ids(headers, &self.settings.cookie_name) {
            if let Some(identity) = self.state.sessions.touch(id).await? {
                id_token = identity.id_token.clone();
            }
            self.state.sessions.remove(id).await?;
        }
        let prefix = &self.settings.prefix;
        let signed_out = format!("{prefix}/oidc/signed-out");
        let host = self
            .settings
            .public_host
            .as_ref()
            .unwrap_or(&conn.host)
            .to_str()
            .unwrap_or("localhost")
            .to_owned();
        let end_session = oidc
            .endpoints()
            .await
            .ok()
            .and_then(|e| e.end_session_endpoint);
        let mut response = match (end_session, id_token) {
            (Some(endpoint), Some(hint)) => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("id_token_hint", &hint)
                    .append_pair(
                        "post_logout_redirect_uri",
                        &format!("https://{host}{signed_out}"),
                    )
                    .finish();
                let separator = if endpoint.contains('?') { '&' } else { '?' };
                let mut response = Response::new(body::empty());
                *response.status_mut() = StatusCode::FOUND;
                let location = HeaderValue::try_from(format!("{endpoint}{separator}{query}"))
                    .map_err(|_| RequestError::Internal)?;
                response.headers_mut().insert(LOCATION, location);
                response
            }
            _ => html_page(
                StatusCode::OK,
                "Signed out",
                "You are signed out.",
                &format!("{prefix}/oidc/start"),
                false,
            ),
        };
        // The cookie is gone from the browser too.
        response.headers_mut().insert(
            SET_COOKIE,
            HeaderValue::from_str(&format!(
                "{}=; Path={prefix}; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
                self.settings.cookie_name
            ))
            .map_err(|_| RequestError::Internal)?,
        );
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/gateway/default";

    #[test]
    fn only_paths_on_this_gateway_are_return_targets() {
        for good in [
            "/gateway/default/yarn/proxy/application_1_0001/",
            "/gateway/default/sparkhistory/?x=1",
        ] {
            assert!(is_return_target(good, PREFIX), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/gateway/default\\..\\x",
            "/gateway/default/%2f%2fevil.example",
            "/gateway/default/%5Cevil",
            "/gateway/default/../../x",
            "/gateway/defaultx/",
            "/elsewhere/",
            "/gateway/default/a\nb",
            "javascript:alert(1)",
        ] {
            assert!(!is_return_target(bad, PREFIX), "{bad}");
        }
    }
}
