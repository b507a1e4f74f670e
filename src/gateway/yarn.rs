//! The YARN phase, in place of authorize → forward → respond for
//! `/gateway/<topology>/yarn/...` (`[yarn]`): the Spark UI through the
//! ResourceManager's proxy and driver logs from NodeManagers, for the owner of
//! the application (administrators: every application), and the links in Livy's
//! JSON answers pointed at those routes.
//!
//! A NodeManager outside `[yarn] nodemanagers` is refused (403) before anything is
//! sent; an application the caller does not own is answered as a missing one (404)
//! without reaching YARN. An administrator may look at every application, but what
//! someone else's application master serves (its owner controls it) comes with a
//! `Content-Security-Policy: sandbox`, so its scripts never run as the gateway's
//! origin with the administrator's login — YARN's own proxy warns non-owners for
//! the same reason, and through the gateway still does: its record of the
//! warning is the one upstream cookie passed on ([`crate::yarn::approval`]).
//! Only `GET` and `HEAD`: the gateway offers reading, not killing jobs from the
//! UI. Pages are streamed with their links rewritten; other content (logs as
//! text, CSS, JavaScript, images) streams unchanged.

use http::header::{
    HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, LOCATION, SET_COOKIE,
};
use http::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use super::context::{ConnInfo, RequestContext};
use super::headers;
use super::respond::buffer;
use super::Gateway;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::livy::listing;
use crate::route::{YarnRoute, YarnTarget};
use crate::state::Kind;
use crate::upstream::Livy;
use crate::yarn::links::Source;
use crate::yarn::Yarn;
use crate::yarn::{approval, html};

/// The policy for pages shown to someone other than the application's owner: an
/// opaque origin (no `allow-same-origin`), so nothing on the page can use the
/// viewer's gateway login; no forms and no pop-ups (`form-action 'none'` as well),
/// so it cannot submit one to the gateway, where a browser would add the viewer's
/// cached Basic login.
const SANDBOX: HeaderValue = HeaderValue::from_static("sandbox allow-scripts; form-action 'none'");

impl Gateway {
    /// Serves one YARN UI request for `principal`.
    pub(super) async fn yarn(
        &self,
        parts: http::request::Parts,
        route: YarnRoute,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let yarn = self.yarn.as_ref().ok_or(RequestError::NotFound)?;
        ctx.action = Some(match route.target {
            YarnTarget::ResourceManager => "yarn.proxy",
            YarnTarget::NodeManager { .. } => "yarn.logs",
        });
        ctx.resource = Some(route.application.clone());
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(RequestError::MethodNotAllowed);
        }
        let (upstream, source) = match &route.target {
            YarnTarget::ResourceManager => (yarn.resourcemanager(), Source::ResourceManager),
            YarnTarget::NodeManager { host, port } => (
                yarn.nodemanager(host, *port)?,
                Source::NodeManager(format!("{}:{port}", host.to_ascii_lowercase())),
            ),
        };
        let owner = self
            .application_owner(yarn, &route.application, principal, conn, ctx)
            .await;
        let own = matches!(&owner, Ok(owner) if **owner == *principal.user);
        if !principal.admin && !own {
            return Err(owner.err().unwrap_or(RequestError::NotFound));
        }

        // forward: the caller's identity asserted as to Livy, their own removed;
        // pages asked for uncompressed, as their links are rewritten on the way.
        let mut headers = parts.headers;
        headers.remove(ACCEPT_ENCODING);
        let query = self.asserted_query(route.query.as_deref(), &principal.user, &[], &[]);
        ctx.effective_user = Some(principal.user.to_string());
        let request = self.livy_request(
            parts.method,
            &route.path,
            query.query.as_deref(),
            headers,
            body::empty(),
            Some(conn),
            &ctx.request_id,
        )?;
        let started = Instant::now();
        let response = upstream.send(request).await;
        ctx.upstream_time = Some(started.elapsed());
        let response = response?;
        ctx.upstream_status = Some(response.status().as_u16());

        // respond: links in the head and in pages point at the gateway; of the
        // upstream's cookies only YARN's record of its warning to a non-owner.
        let (mut head, body) = response.into_parts();
        let approvals = match source {
            Source::ResourceManager => approval::passed_on(
                &head.headers,
                &route.application,
                &yarn.links.proxy_path(&route.application),
            ),
            Source::NodeManager(_) => Vec::new(),
        };
        headers::keep_page_headers(&mut head.headers);
        for cookie in approvals {
            head.headers.append(SET_COOKIE, cookie);
        }
        if let Some(location) = head.headers.get(LOCATION) {
            let rewritten = location
                .to_str()
                .ok()
                .and_then(|l| match headers::is_relative_path(l) {
                    true => Some(l.to_owned()),
                    false => yarn.links.href(l, &source),
                })
                .and_then(|l| HeaderValue::from_str(&l).ok())
                .ok_or(RequestError::UpstreamRedirect)?;
            head.headers.insert(LOCATION, rewritten);
        }
        // A page still compressed (a server that ignored the request) passes as is.
        let is_html = head
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
            && head
                .headers
                .get(CONTENT_ENCODING)
                .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let body = match is_html {
            true => {
                head.headers.remove(CONTENT_LENGTH);
                html::rewrite(body, yarn.links.clone(), source)
            }
            false => body,
        };
        if !own {
            // An administrator looking at someone else's application: what its
            // application master serves runs in a sandbox, never as the gateway's
            // origin, where its scripts could act with the administrator's login.
            head.headers.insert(CONTENT_SECURITY_POLICY, SANDBOX);
        }
        Ok(Response::from_parts(head, body))
    }

    /// Whose `application` is: remembered from a view the gateway relayed, or else
    /// found in Livy's listings (one round trip per kind, only on a miss).
    async fn application_owner(
        &self,
        yarn: &Yarn,
        application: &str,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<String, RequestError> {
        if let Some(owner) = yarn.apps.owner(application) {
            return Ok(owner);
        }
        for kind in [Kind::Batch, Kind::Session] {
            let query = self.asserted_query(
                None,
                &principal.user,
                &[],
                &[("from", "0"), ("size", listing::FETCH_ALL)],
            );
            let path = format!("/{}", kind.collection());
            let response = self
                .livy_get(&path, query.query.as_deref(), Some(conn), &ctx.request_id)
                .await?;
            if response.status() != StatusCode::OK {
                return Err(RequestError::UpstreamFailed);
            }
            let bytes = buffer(response.into_body(), self.settings.max_buffered_response).await?;
            let answer: Value =
                serde_json::from_slice(&bytes).map_err(|_| RequestError::UpstreamFailed)?;
            let views = answer.get("sessions").and_then(Value::as_array);
            let view = views
                .into_iter()
                .flatten()
                .find(|view| view.get("appId").and_then(Value::as_str) == Some(application));
            let Some(view) = view else { continue };
            let record = match view.get("id").and_then(Value::as_u64) {
                Some(id) => self.state.ownership.get(kind, id).await?,
                None => None,
            };
            if let Some(owner) = listing::view_owner(view, record.as_ref()) {
                yarn.apps.learn(application, &owner);
                return Ok(owner);
            }
        }
        Err(RequestError::NotFound)
    }

    /// With `[yarn]`, Livy's JSON answers that carry views (one, a listing, a
    /// creation) get their Spark UI and driver-log links pointed at the gateway,
    /// and the applications in them noted as the caller's: a caller who is not
    /// an administrator is only ever shown their own.
    pub(super) async fn yarn_links(
        &self,
        response: Response<Body>,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let Some(yarn) = &self.yarn else {
            return Ok(response);
        };
        let carries_views = matches!(
            ctx.action,
            Some(
                "batch.get"
                    | "session.get"
                    | "batch.list"
                    | "session.list"
                    | "batch.create"
                    | "session.create"
            )
        );
        if !carries_views || !response.status().is_success() {
            return Ok(response);
        }
        let (mut head, body) = response.into_parts();
        let bytes = buffer(body, self.settings.max_buffered_response).await?;
        let Ok(mut answer) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(Response::from_parts(head, body::full(bytes)));
        };
        let host = self.settings.public_host.as_ref().unwrap_or(&conn.host);
        let base = format!("https://{}", host.to_str().unwrap_or_default());
        let applications = yarn.links.rewrite_views(&mut answer, &base);
        if !principal.admin {
            for application in &applications {
                yarn.apps.learn(application, &principal.user);
            }
        }
        let bytes = answer.to_string();
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        Ok(Response::from_parts(head, body::full(bytes)))
    }
}
