//! Phase 6, forward: the request goes to Livy through the [`crate::upstream::Livy`]
//! trait, and the time Livy takes is noted. Every request to Livy, whether
//! forwarded, sent to learn an owner or to check readiness, is built here by
//! [`Gateway::livy_request`]: one set of header rules, one request id, one CSRF
//! header.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Response};
use tokio::time::Instant;

use super::authorize::Plan;
use super::context::{ConnInfo, RequestContext, RequestId};
use super::headers::{self, Forwarded, X_REQUEST_ID};
use super::Gateway;
use crate::auth::jwt::KeysState;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::config::IdentityMode;
use crate::error::RequestError;
use crate::livy::query;
use crate::upstream::{LivyRequest, ServerState};

impl Gateway {
    /// Sends the rewritten request to Livy (a user's state-changing request on one
    /// resource once its owner is confirmed: [`super::confirm`]). A request body
    /// that overran its limit or stalled on the way answers 413 or 408, not 502.
    pub(super) async fn forward(
        &self,
        request: LivyRequest,
        plan: &Plan,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let started = Instant::now();
        let result = match plan {
            Plan::Item {
                kind,
                id,
                confirm: true,
                ..
            } => {
                // Boxed: this path would otherwise size every request's future.
                Box::pin(self.send_confirmed(request, *kind, *id, principal, conn, ctx)).await
            }
            _ => self.livy.send(request).await,
        };
        ctx.upstream_time = Some(started.elapsed());
        if let Some(trouble) = &ctx.body_trouble {
            if trouble.too_large.load(Ordering::Relaxed) {
                return Err(RequestError::PayloadTooLarge);
            }
            if trouble.stalled.load(Ordering::Relaxed) {
                return Err(RequestError::BodyTimeout);
            }
        }
        let response = result?;
        ctx.upstream_status = Some(response.status().as_u16());
        Ok(response)
    }

    /// The query Livy is sent: identity parameters removed, `doAs=<effective user>`
    /// appended (`livy.identity = "doas"`), `also_remove` dropped and `extra` added.
    pub(super) fn asserted_query(
        &self,
        query: Option<&str>,
        effective: &str,
        also_remove: &[&str],
        extra: &[(&str, &str)],
    ) -> query::Rewritten {
        let doas = (self.settings.identity == IdentityMode::Doas).then_some(effective);
        query::rewrite(query, doas, also_remove, extra)
    }

    /// A request for Livy: `method path?query`, `headers` rewritten by the header
    /// rules (for a client's request, `conn`; without one, only the gateway's own
    /// headers), the request id, and the CSRF header a protected Livy needs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn livy_request(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        mut headers: HeaderMap,
        body: Body,
        conn: Option<&ConnInfo>,
        request_id: &RequestId,
    ) -> Result<LivyRequest, RequestError> {
        let mut path_and_query = String::with_capacity(path.len() + 1 + query.map_or(0, str::len));
        path_and_query.push_str(path);
        if let Some(q) = query {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let path_and_query = PathAndQuery::try_from(path_and_query)
            .map_err(|_| RequestError::BadPath("unparsable path"))?;
        if let Some(conn) = conn {
            headers::to_upstream(
                &mut headers,
                Forwarded {
                    client: &conn.client,
                    host: self.settings.public_host.as_ref().unwrap_or(&conn.host),
                    port: &conn.local_port,
                    context: &self.settings.context,
                    cookie_name: &self.settings.cookie_name,
                },
            );
        }
        headers.insert(X_REQUEST_ID, request_id.header());
        if let Some((name, value)) = &self.settings.csrf {
            if method != Method::GET && !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        Ok(LivyRequest {
            method,
            path_and_query,
            headers,
            body,
            note: false,
        })
    }

    /// `GET path?query` to Livy on the gateway's own behalf (to learn an owner, to
    /// check readiness): the forwarding headers of `conn` when there is a client,
    /// nothing else of its request.
    pub(super) async fn livy_get(
        &self,
        path: &str,
        query: Option<&str>,
        conn: Option<&ConnInfo>,
        request_id: &RequestId,
    ) -> Result<Response<Body>, RequestError> {
        let request = self.livy_request(
            Method::GET,
            path,
            query,
            HeaderMap::new(),
            body::empty(),
            conn,
            request_id,
        )?;
        self.livy.send(request).await
    }

    /// Readiness: whether Livy answers, whether logins can be checked (the
    /// directory answers) and whether the state store answers, each within
    /// `timeout`.
    pub async fn readiness(&self, timeout: Duration) -> Readiness {
        let logins = async {
            match tokio::time::timeout(timeout, self.auth.ready()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no answer in time".to_string()),
            }
        };
        let state = async {
            match tokio::time::timeout(timeout, self.state.sessions.ready()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no answer in time".to_string()),
            }
        };
        let jwks = async {
            let validator = self.auth.tokens().and_then(|t| t.jwt())?;
            Some(
                tokio::time::timeout(timeout, validator.keys_state())
                    .await
                    .unwrap_or_else(|_| KeysState {
                        held: 0,
                        error: Some("no answer in time".into()),
                    }),
            )
        };
        let (livy, logins, state, jwks) =
            tokio::join!(self.livy_ready(timeout), logins, state, jwks);
        Readiness {
            livy,
            servers: self.livy.servers(),
            logins,
            state,
            jwks,
        }
    }

    /// Whether Livy answers (`GET /version`, not a 5xx) within `timeout`.
    async fn livy_ready(&self, timeout: Duration) -> bool {
        let id = RequestId::of(&HeaderMap::new());
        matches!(
            tokio::time::timeout(timeout, self.livy_get("/version", None, None, &id)).await,
            Ok(Ok(response)) if !response.status().is_server_error()
        )
    }
}

/// What `/readyz` reports.
pub struct Readiness {
    /// Livy answers.
    pub livy: bool,
    /// What is known of each Livy server (several servers only).
    pub servers: Vec<ServerState>,
    /// Logins can be checked (the directory answers), or why not.
    pub logins: Result<(), String>,
    /// The state store answers, or why not.
    pub state: Result<(), String>,
    /// The identity provider's keys (`[auth.jwt]`).
    pub jwks: Option<KeysState>,
}
