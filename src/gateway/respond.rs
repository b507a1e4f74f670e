//! Phase 7, respond: Livy's answer becomes the client's. Headers are filtered (see
//! [`super::headers::from_upstream`]); per plan, the owner of a new resource is
//! recorded from Livy's 201, a listing is narrowed to the caller's own, a deleted
//! resource, or one Livy answers 404 for, is forgotten; the gateway's own headers (session cookie, HSTS,
//! `nosniff`, request id) are added to every answer.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::Value;

use super::authorize::Plan;
use super::context::RequestContext;
use super::headers::{self, X_REQUEST_ID};
use super::Gateway;
use crate::auth::Principal;
use crate::body::{self, Body, CollectError};
use crate::error::RequestError;
use crate::livy::listing;
use crate::session;
use crate::state::{Change, Record};

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");

impl Gateway {
    /// Turns Livy's answer into the client's.
    pub(super) async fn respond(
        &self,
        response: Response<Body>,
        plan: &Plan,
        method: &Method,
        principal: &Principal,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let (mut parts, body) = response.into_parts();
        headers::from_upstream(
            &mut parts.headers,
            &self.settings.public_livy_root,
            self.livy.origins(),
        )?;
        let limit = self.settings.max_buffered_response;
        let body = match plan {
            Plan::Create(kind) if parts.status == StatusCode::CREATED => {
                let bytes = buffer(body, limit).await?;
                let view: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                match view.get("id").and_then(Value::as_u64) {
                    Some(id) => {
                        ctx.resource = Some(id.to_string());
                        self.settle_reservation(ctx, Some(id)).await;
                        let record = Record {
                            owner: ctx
                                .effective_user
                                .clone()
                                .unwrap_or_else(|| principal.user.to_string()),
                            name: view.get("name").and_then(Value::as_str).map(str::to_owned),
                        };
                        self.record(Change::Put(*kind, vec![(id, record)])).await;
                    }
                    None => {
                        tracing::warn!("Livy's creation answer has no id; owner not recorded")
                    }
                }
                body::full(bytes)
            }
            Plan::List(kind, page) if parts.status == StatusCode::OK => {
                let bytes = buffer(body, limit).await?;
                let listing::Narrowed {
                    body: narrowed,
                    learned,
                } = listing::narrow(
                    &bytes,
                    &principal.user,
                    *kind,
                    self.state.ownership.as_ref(),
                    *page,
                )
                .await?;
                if !learned.is_empty() {
                    self.record(Change::Put(*kind, learned)).await;
                }
                parts.headers.remove(CONTENT_LENGTH);
                body::full(narrowed)
            }
            Plan::Item { kind, id, .. }
                if *method == Method::DELETE && parts.status.is_success() =>
            {
                self.forget_owner(*kind, *id).await;
                body
            }
            // A user's view of their resource: Livy's owner decides over the
            // record (which a Livy restarted without recovery can make stale).
            Plan::Item { kind, id, .. }
                if !principal.admin
                    && parts.status == StatusCode::OK
                    && matches!(ctx.action, Some("batch.get" | "session.get")) =>
            {
                let bytes = buffer(body, limit).await?;
                if let Some(owner) = named_owner(&bytes).filter(|o| *o != *principal.user) {
                    let name = serde_json::from_slice::<Value>(&bytes)
                        .ok()
                        .and_then(|v| v.get("name")?.as_str().map(str::to_owned));
                    let learnt = Record { owner, name };
                    return Err(self.stale_record(*kind, *id, Some(learnt)).await);
                }
                body::full(bytes)
            }
            // Livy no longer has it (finished and forgotten, or Livy restarted):
            // the record would only outlive it. Only the resource itself says
            // so; a 404 for one of its statements does not.
            Plan::Item { kind, id, .. }
                if parts.status == StatusCode::NOT_FOUND
                    && matches!(
                        ctx.action,
                        Some("batch.get" | "session.get" | "batch.state" | "session.state")
                    ) =>
            {
                self.forget_owner(*kind, *id).await;
                body
            }
            _ => body,
        };
        Ok(Response::from_parts(parts, body))
    }

    /// Stores an ownership change learnt from Livy's answer, trying again twice
    /// (after 50 and 250 ms) when the store fails, then logging and counting
    /// rather than failing: the request it belongs to already succeeded at Livy,
    /// and Livy 0.6+ reports owners in its views, from which the record is learnt
    /// again.
    pub(super) async fn record(&self, change: Change) {
        for pause in RECORD_RETRIES {
            match self.state.ownership.apply(vec![change.clone()]).await {
                Ok(()) => return,
                Err(error) => match pause {
                    Some(pause) => {
                        tracing::warn!(%error, "ownership record not saved; trying again");
                        tokio::time::sleep(pause).await;
                    }
                    None => {
                        tracing::error!(%error, change = ?change, "ownership record not saved");
                        self.metrics.ownership_unsaved.inc();
                    }
                },
            }
        }
    }

    /// The headers the gateway adds to every answer, its own and Livy's alike.
    pub(super) fn add_gateway_headers(&self, headers: &mut HeaderMap, ctx: &RequestContext) {
        let settings = &self.settings;
        if let Some(id) = &ctx.new_session {
            headers.append(
                SET_COOKIE,
                session::set_cookie_value(&settings.cookie_name, id, &settings.prefix),
            );
        }
        if let Some(reply) = &ctx.negotiate_reply {
            headers.append(WWW_AUTHENTICATE, reply.clone());
        }
        if let Some(hsts) = &settings.hsts {
            headers.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        headers.insert(X_REQUEST_ID, ctx.request_id.header());
    }
}

/// How long [`Gateway::record`] waits before each further try (`None`: the last).
const RECORD_RETRIES: [Option<Duration>; 3] = [
    Some(Duration::from_millis(50)),
    Some(Duration::from_millis(250)),
    None,
];

/// The owner a view names (`proxyUser`, Livy 0.6+), read without building the
/// whole view.
fn named_owner(view: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Owner<'a> {
        #[serde(rename = "proxyUser", borrow, default)]
        proxy_user: Option<std::borrow::Cow<'a, str>>,
    }
    let owner: Owner<'_> = serde_json::from_slice(view).ok()?;
    owner
        .proxy_user
        .filter(|u| !u.is_empty())
        .map(|u| u.into_owned())
}

/// Reads a whole Livy answer, at most `limit` bytes.
pub(super) async fn buffer(mut body: Body, limit: usize) -> Result<Bytes, RequestError> {
    match body::collect_limited(&mut body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(CollectError::TooLarge) => Err(RequestError::UpstreamTooLarge),
        Err(CollectError::Failed(_)) => Err(RequestError::UpstreamFailed),
    }
}
