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

use http::header::{HeaderValue, CONTENT_LENGTH};
use http::{Method, Response, StatusCode};
use serde_json::Value;

use super::context::{ConnInfo, RequestContext};
use super::relay::{page_response, PageRequest};
use super::respond::buffer;
use super::Gateway;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::livy::listing;
use crate::route::{YarnRoute, YarnTarget};
use crate::state::Kind;
use crate::yarn::approval;
use crate::yarn::links::Source;
use crate::yarn::Yarn;

/// The service a navigation's error page names, and the page it links to.
const YARN_UI: (&str, &str) = ("The cluster's YARN web UI", "/livy/ui");

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
        ctx.page_service = Some(YARN_UI);
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

        // forward, then respond: of the upstream's cookies only YARN's record of
        // its warning to a non-owner.
        let page = PageRequest {
            method: parts.method,
            path: &route.path,
            query: route.query.as_deref(),
            headers: parts.headers,
            context: None,
            withheld: &[],
        };
        let response = self
            .send_page(upstream.as_ref(), page, &principal.user, conn, ctx)
            .await?;
        let approvals = match source {
            Source::ResourceManager => approval::passed_on(
                response.headers(),
                &route.application,
                &yarn.links.proxy_path(&route.application),
            ),
            Source::NodeManager(_) | Source::HistoryServer => Vec::new(),
        };
        page_response(response, &yarn.links, source, own, approvals)
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
