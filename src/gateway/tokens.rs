//! The personal access token API (`[tokens] enabled`), answered by the gateway
//! itself after authentication, under `/gateway/<topology>/tokens`:
//! - `POST` `{"name": "...", "ttl_days": N}` → 201 with the token, shown in this
//!   answer only; for a caller who proved themselves with a password, a ticket or
//!   a session cookie, never with a token (a leaked token cannot mint more);
//! - `GET` → the caller's tokens, never their secrets (administrators may name
//!   `?user=`);
//! - `DELETE /tokens/<id>` → 200; the caller's own, anyone's for administrators.
//!
//! Answers are JSON with `Cache-Control: no-store`; times are RFC 3339, UTC.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL};
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::context::RequestContext;
use super::{Gateway, RequestBody};
use crate::auth::tokens::{self, is_token_id, IssueError};
use crate::auth::{Identity, Principal};
use crate::body::{Body, BoxError};
use crate::error::{json_response, RequestError};
use crate::state::{TokenRecord, TokenStore};

/// A request to the token API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenRoute {
    /// `/tokens`.
    Collection,
    /// `/tokens/<id>`.
    One(String),
}

/// The token route `path` names, if it is under `<prefix>/tokens`.
pub(super) fn route(path: &str, prefix: &str) -> Option<TokenRoute> {
    let rest = path.strip_prefix(prefix)?.strip_prefix("/tokens")?;
    match rest {
        "" | "/" => Some(TokenRoute::Collection),
        _ => Some(TokenRoute::One(rest.strip_prefix('/')?.to_owned())),
    }
}

/// `POST /tokens`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    #[serde(default)]
    ttl_days: Option<u64>,
}

impl Gateway {
    /// Answers a token API request.
    pub(super) async fn tokens_api<B>(
        &self,
        parts: http::request::Parts,
        unread: &mut Option<RequestBody<B>>,
        route: TokenRoute,
        principal: &Principal,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let store = self
            .auth
            .tokens()
            .and_then(|t| t.store())
            .cloned()
            .ok_or(RequestError::NotFound)?;
        let mut response = match (route, parts.method.clone()) {
            (TokenRoute::Collection, Method::POST) => {
                ctx.action = Some("token.create");
                crate::livy::check_content_type(&parts.headers, &parts.method, "/tokens")?;
                let body = self.read_create_body(&parts.headers, unread, ctx).await?;
                self.create_token(&*store, &body, principal, ctx).await?
            }
            (TokenRoute::Collection, Method::GET) => {
                ctx.action = Some("token.list");
                let user = listed_user(parts.uri.query(), principal)?;
                let listed = store.list(Some(&user)).await?;
                let views: Vec<_> = listed.iter().map(view).collect();
                json_response(StatusCode::OK, &json!(views))
            }
            (TokenRoute::One(id), Method::DELETE) => {
                ctx.action = Some("token.revoke");
                if !is_token_id(&id) {
                    return Err(RequestError::NotFound);
                }
                ctx.resource = Some(id.clone());
                let owner = (!principal.admin).then_some(&*principal.user);
                let record = store
                    .revoke(&id, owner)
                    .await?
                    .ok_or(RequestError::NotFound)?;
                if let Some(tokens) = self.auth.tokens() {
                    tokens.forget(&record);
                }
                tracing::info!(token = %record.id, owner = %record.user, "token revoked");
                json_response(StatusCode::OK, &json!({"id": record.id, "revoked": true}))
            }
            (TokenRoute::Collection, _) | (TokenRoute::One(_), _) => {
                return Err(RequestError::MethodNotAllowed)
            }
        };
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }

    /// Issues a token to the caller.
    async fn create_token(
        &self,
        store: &dyn TokenStore,
        body: &[u8],
        principal: &Principal,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        if principal.token.is_some() {
            return Err(RequestError::Forbidden(
                "a token cannot create tokens: sign in with a password, a ticket or a session"
                    .into(),
            ));
        }
        let request: CreateRequest = serde_json::from_slice(body).map_err(|e| {
            RequestError::BadBody(format!(
                "expected {{\"name\": \"...\", \"ttl_days\": N}}: {e}"
            ))
        })?;
        let identity = Identity {
            source: principal.source,
            ..Identity::new(&principal.user, principal.groups.to_vec())
        };
        let issued = tokens::issue(
            store,
            &self.config.tokens,
            &identity,
            &request.name,
            request.ttl_days,
        )
        .await;
        let (record, secret) = match issued {
            Ok(issued) => issued,
            Err(IssueError::Refused(why)) => return Err(RequestError::BadBody(why)),
            Err(IssueError::TooMany(most)) => return Err(RequestError::TooManyTokens(most)),
            Err(IssueError::Store(error)) => return Err(error.into()),
        };
        ctx.resource = Some(record.id.clone());
        tracing::info!(token = %record.id, owner = %record.user, "token created");
        let mut answer = view(&record);
        answer["token"] = json!(secret);
        Ok(json_response(StatusCode::CREATED, &answer))
    }
}

/// Whose tokens a list shows: the caller's, or (administrators) `?user=`'s.
fn listed_user(query: Option<&str>, principal: &Principal) -> Result<String, RequestError> {
    let named = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(key, _)| key == "user")
        .map(|(_, value)| value.into_owned());
    match named {
        None => Ok(principal.user.to_string()),
        Some(user) if user == *principal.user || principal.admin => Ok(user),
        Some(_) => Err(RequestError::Forbidden(
            "only administrators may list another user's tokens".into(),
        )),
    }
}

/// A token as lists show it: never its secret or hash.
pub(crate) fn view(record: &TokenRecord) -> serde_json::Value {
    json!({
        "id": record.id,
        "user": record.user,
        "name": record.name,
        "created": rfc3339(record.created),
        "expires": rfc3339(record.expires),
        "last_used": record.last_used.map(rfc3339),
    })
}

/// Unix seconds as RFC 3339, UTC.
pub(crate) fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_routes() {
        let prefix = "/gateway/default";
        assert_eq!(
            route("/gateway/default/tokens", prefix),
            Some(TokenRoute::Collection)
        );
        assert_eq!(
            route("/gateway/default/tokens/abc", prefix),
            Some(TokenRoute::One("abc".into()))
        );
        assert_eq!(route("/gateway/default/tokensx", prefix), None);
        assert_eq!(route("/gateway/default/livy/v1/batches", prefix), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
