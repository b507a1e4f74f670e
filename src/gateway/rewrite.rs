//! Phase 5, rewrite: the request Livy will see. A create body gets its asserted
//! `proxyUser`, passes the create policy ([`super::policy`]: refused, or changed
//! and holding a quota place) and gets a correct length; any other body streams on under its size
//! limit; the query loses client identity parameters and gains `doAs`; a listing
//! asks Livy for everything (the gateway pages the caller's part itself).

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use serde_json::Value;

use super::authorize::Plan;
use super::context::{ConnInfo, RequestContext};
use super::{Gateway, RequestBody};
use crate::auth::Principal;
use crate::body::{self, BoxError, CollectError};
use crate::error::RequestError;
use crate::livy::{self, listing};
use crate::route::Route;
use crate::upstream::LivyRequest;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Gateway {
    /// Builds the request for Livy from the client's.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn rewrite<B>(
        &self,
        parts: http::request::Parts,
        unread: &mut Option<RequestBody<B>>,
        route: &Route,
        plan: &Plan,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<LivyRequest, RequestError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let mut headers = parts.headers;
        let (body, effective) = match plan {
            Plan::Create(kind) => {
                // Boxed, as for owner discovery: only creations read a body here.
                let bytes = Box::pin(self.read_create_body(&headers, unread, ctx)).await?;
                let mut object = livy::body::parse_object(&bytes)?;
                let effective = livy::body::assert_proxy_user(&mut object, principal)?;
                // The cluster's policy for that user, before Livy is asked.
                Box::pin(self.apply_policy(*kind, &mut object, principal, &effective, conn, ctx))
                    .await?;
                let bytes = Bytes::from(Value::Object(object).to_string());
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                headers.insert(CONTENT_TYPE, APPLICATION_JSON);
                (body::full(bytes), effective)
            }
            _ => {
                let limit = match ctx.action {
                    Some("session.upload") => self.settings.max_upload,
                    _ => self.settings.max_body,
                };
                if declared_length(&headers).is_some_and(|n| n > limit as u64) {
                    return Err(RequestError::PayloadTooLarge);
                }
                let body = match unread.take() {
                    Some(incoming) => body::boxed(incoming.limit(limit)),
                    None => body::empty(),
                };
                (body, principal.user.to_string())
            }
        };

        let (also_remove, extra): (&[&str], &[(&str, &str)]) = match plan {
            Plan::List(..) => (
                &["from", "size"],
                &[("from", "0"), ("size", listing::FETCH_ALL)],
            ),
            _ => (&[], &[]),
        };
        let rewritten = self.asserted_query(route.query.as_deref(), &effective, also_remove, extra);
        if !rewritten.removed.is_empty() {
            tracing::warn!(
                user = %principal.user,
                removed = ?rewritten.removed,
                "identity parameters removed from a request"
            );
            ctx.removed_params = rewritten.removed;
        }
        ctx.effective_user = Some(effective);
        let path = match plan {
            Plan::Item { path: Some(p), .. } => p.as_str(),
            _ => route.path.as_str(),
        };
        self.livy_request(
            parts.method,
            path,
            rewritten.query.as_deref(),
            headers,
            body,
            Some(conn),
            &ctx.request_id,
        )
    }

    /// Reads a create body, refusing one over the configured size. The body is
    /// taken from `unread` once read; a body refused for its size is left there, to
    /// be drained after the answer.
    pub(super) async fn read_create_body<B>(
        &self,
        headers: &HeaderMap,
        unread: &mut Option<RequestBody<B>>,
        ctx: &RequestContext,
    ) -> Result<Bytes, RequestError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let limit = self.settings.max_create_body;
        if declared_length(headers).is_some_and(|n| n > limit as u64) {
            return Err(RequestError::PayloadTooLarge);
        }
        let Some(incoming) = unread.as_mut() else {
            return Ok(Bytes::new());
        };
        let read = body::collect_limited(incoming, limit).await;
        if !matches!(read, Err(CollectError::TooLarge)) {
            *unread = None;
        }
        let stalled = ctx
            .body_trouble
            .as_ref()
            .is_some_and(|t| t.stalled.load(std::sync::atomic::Ordering::Relaxed));
        match read {
            Ok(bytes) => Ok(bytes),
            Err(CollectError::TooLarge) => Err(RequestError::PayloadTooLarge),
            Err(CollectError::Failed(_)) if stalled => Err(RequestError::BodyTimeout),
            Err(CollectError::Failed(_)) => Err(RequestError::BadBody(
                "the request body could not be read".into(),
            )),
        }
    }
}

/// The `Content-Length` a request declares, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}
