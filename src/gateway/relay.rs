//! Relaying a page of the cluster's web UIs (YARN's proxy and NodeManagers, the
//! Spark History Server): the request as it goes to the server, and its answer as
//! it reaches the client — only the headers that describe the content, a
//! `Location` pointed at the gateway (or refused), links in pages rewritten as they
//! stream, and a sandbox for a page someone other than its owner looks at.

use std::sync::Arc;

use http::header::{
    HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, LOCATION, SET_COOKIE,
};
use http::{HeaderMap, Method, Response};
use tokio::time::Instant;

use super::context::{ConnInfo, RequestContext};
use super::headers;
use super::Gateway;
use crate::body::{self, Body};
use crate::error::RequestError;
use crate::upstream::Livy;
use crate::yarn::html;
use crate::yarn::links::{Links, Source};

/// The policy for pages shown to someone other than the application's owner: an
/// opaque origin (no `allow-same-origin`), so nothing on the page can use the
/// viewer's gateway login; no forms and no pop-ups (`form-action 'none'` as well),
/// so it cannot submit one to the gateway, where a browser would add the viewer's
/// cached Basic login.
pub(super) const SANDBOX: HeaderValue =
    HeaderValue::from_static("sandbox allow-scripts; form-action 'none'");

/// A page request as it goes to a web UI of the cluster.
pub(super) struct PageRequest<'a> {
    pub method: Method,
    /// Path on the server, still percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The client's headers (rewritten on the way as for Livy).
    pub headers: HeaderMap,
    /// `X-Forwarded-Context` in place of Livy's, for a server that builds its
    /// links from it (the history server).
    pub context: Option<HeaderValue>,
    /// Query parameters not sent (the gateway applies them itself).
    pub withheld: &'a [&'a str],
}

impl Gateway {
    /// Sends `page` to `upstream` as `user` (asserted as to Livy, the caller's own
    /// assertion removed), asking for it uncompressed, as its links are rewritten
    /// on the way back.
    pub(super) async fn send_page(
        &self,
        upstream: &dyn Livy,
        page: PageRequest<'_>,
        user: &str,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let PageRequest {
            method,
            path,
            query,
            mut headers,
            context,
            withheld,
        } = page;
        headers.remove(ACCEPT_ENCODING);
        let query = self.asserted_query(query, user, withheld, &[]);
        ctx.effective_user = Some(user.to_owned());
        let mut request = self.livy_request(
            method,
            path,
            query.query.as_deref(),
            headers,
            body::empty(),
            Some(conn),
            &ctx.request_id,
        )?;
        if let Some(context) = context {
            request
                .headers
                .insert(headers::X_FORWARDED_CONTEXT, context);
        }
        let started = Instant::now();
        let response = upstream.send(request).await;
        ctx.upstream_time = Some(started.elapsed());
        let response = response?;
        ctx.upstream_status = Some(response.status().as_u16());
        Ok(response)
    }
}

/// The answer of a web UI's server at `source`, as the client gets it: only the
/// page headers and `cookies` (the few of the server's the gateway passes on), a
/// `Location` led through the gateway (one it does not serve is 502), an HTML
/// page's links rewritten as it streams, and the [`SANDBOX`] unless `own` (the
/// viewer owns what the page shows).
pub(super) fn page_response(
    response: Response<Body>,
    links: &Arc<Links>,
    source: Source,
    own: bool,
    cookies: Vec<HeaderValue>,
) -> Result<Response<Body>, RequestError> {
    let (mut head, body) = response.into_parts();
    headers::keep_page_headers(&mut head.headers);
    for cookie in cookies {
        head.headers.append(SET_COOKIE, cookie);
    }
    if let Some(location) = head.headers.get(LOCATION) {
        let rewritten = location
            .to_str()
            .ok()
            .and_then(|l| match headers::is_relative_path(l) {
                true => Some(l.to_owned()),
                false => links.href(l, &source),
            })
            .and_then(|l| HeaderValue::from_str(&l).ok())
            .ok_or(RequestError::UpstreamRedirect)?;
        head.headers.insert(LOCATION, rewritten);
    }
    // A page still compressed (a server that ignored the request) passes as is.
    let body = match is_plain_html(&head.headers) {
        true => {
            head.headers.remove(CONTENT_LENGTH);
            html::rewrite(body, links.clone(), source)
        }
        false => body,
    };
    if !own {
        // Someone else's application: what it serves runs in a sandbox, never as
        // the gateway's origin, where its scripts could act with the viewer's login.
        head.headers.insert(CONTENT_SECURITY_POLICY, SANDBOX);
    }
    Ok(Response::from_parts(head, body))
}

/// Whether an answer is an HTML page that is not compressed.
pub(super) fn is_plain_html(headers: &HeaderMap) -> bool {
    has_content_type(headers, "text/html")
        && headers
            .get(CONTENT_ENCODING)
            .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Whether an answer's `Content-Type` is `kind` (whatever its parameters).
pub(super) fn has_content_type(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..kind.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(kind))
        })
}
