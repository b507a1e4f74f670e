//! Livy's web UI phase, in place of authorize → forward → respond for
//! `/gateway/<topology>/livy/ui[...]` and `/livy/static/...`: Livy's pages for
//! signed-in users, a session's or batch's pages only for its owner
//! (administrators: all), as for its API. The list page is Livy's own; the
//! listings its scripts load through `/livy/sessions` and `/livy/batches` are
//! narrowed by the gateway's listing policy like any client's.
//!
//! Pages come back with the gateway's base path whatever Livy's
//! `livy.ui.basePath` says, and a policy that runs only Livy's own scripts
//! ([`crate::livy::ui`]). Read-only: `GET`.

use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_SECURITY_POLICY};
use http::{Method, Response};

use super::context::{ConnInfo, RequestContext};
use super::headers;
use super::relay::{is_plain_html, PageRequest};
use super::respond::buffer;
use super::Gateway;
use crate::auth::Principal;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::livy::{ui, Operation, Scope};
use crate::route::{Route, UiPage};

/// The service a navigation's error page names, and the page it links to.
const LIVY_UI: (&str, &str) = ("Livy's web UI", "/livy/ui");

impl Gateway {
    /// Serves one page of Livy's UI for `principal`.
    pub(super) async fn livy_ui(
        &self,
        parts: http::request::Parts,
        route: Route,
        page: UiPage,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        ctx.page_service = Some(LIVY_UI);
        ctx.action = Some(match page {
            UiPage::List => "ui.list",
            UiPage::Session(_) | UiPage::SessionLog(_) => "ui.session",
            UiPage::BatchLog(_) => "ui.batch",
            UiPage::Static => "ui.static",
        });
        if parts.method != Method::GET {
            return Err(RequestError::MethodNotAllowed);
        }
        if let Some((kind, id)) = page.resource() {
            // The same decision as for the resource's API: someone else's is
            // answered as a missing one.
            let operation = Operation {
                action: ctx.action.unwrap_or_default(),
                scope: Scope::Item {
                    kind,
                    id: id.to_string(),
                },
            };
            self.authorize(principal, &operation, &route, conn, ctx)
                .await?;
        }
        let request = PageRequest {
            method: parts.method,
            path: &route.path,
            query: route.query.as_deref(),
            headers: parts.headers,
            context: None,
            withheld: &[],
        };
        let response = self
            .send_page(self.livy.as_ref(), request, &principal.user, conn, ctx)
            .await?;
        let (mut head, body) = response.into_parts();
        headers::from_upstream(
            &mut head.headers,
            &self.settings.public_livy_root,
            self.livy.origins(),
        )?;
        headers::keep_page_headers(&mut head.headers);
        if !is_plain_html(&head.headers) {
            return Ok(Response::from_parts(head, body));
        }
        let bytes = buffer(body, self.settings.max_buffered_response).await?;
        let page = String::from_utf8_lossy(&bytes);
        let nonce = ui::nonce();
        let base = format!("{}/livy", self.settings.prefix);
        let page = ui::rewrite(&page, &base, &nonce).ok_or(RequestError::UpstreamFailed)?;
        let policy =
            HeaderValue::from_str(&ui::policy(&nonce)).map_err(|_| RequestError::Internal)?;
        head.headers.insert(CONTENT_SECURITY_POLICY, policy);
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(page.len()));
        Ok(Response::from_parts(head, body::full(page)))
    }
}
