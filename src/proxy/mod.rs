//! Forwarding to Livy: one pooled keep-alive HTTP/1.1 client shared by all requests.
//!
//! Upstream origins are parsed once at startup. Bodies are streamed both ways. A
//! request goes to the upstream that last accepted a connection; when a connection
//! cannot be made and the request has no body (so nothing was sent and it can be
//! replayed safely) the next upstream is tried. Errors never show the client which
//! host failed: that detail goes to the log only.

pub mod headers;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::{self, Body};
use crate::config::LivyConfig;
use crate::error::RequestError;

/// The Livy server(s) behind the gateway.
pub struct Upstream {
    client: Client<HttpConnector, Body>,
    /// Scheme and authority of each upstream, in configured order.
    targets: Vec<(Scheme, Authority)>,
    /// `http://host:port` of each upstream, for recognising absolute redirects.
    origins: Vec<String>,
    /// Index of the upstream that last accepted a connection.
    active: AtomicUsize,
    response_timeout: Duration,
}

impl Upstream {
    /// Builds the client for the given (validated) upstream URIs.
    pub fn new(uris: &[Uri], config: &LivyConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(config.connect_timeout_secs)));
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(config.pool_idle_timeout_secs))
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(connector);
        let targets: Vec<(Scheme, Authority)> = uris
            .iter()
            .map(|u| {
                (
                    u.scheme().cloned().unwrap_or(Scheme::HTTP),
                    u.authority()
                        .cloned()
                        .expect("validated upstream has a host"),
                )
            })
            .collect();
        let origins = targets.iter().map(|(s, a)| format!("{s}://{a}")).collect();
        Self {
            client,
            targets,
            origins,
            active: AtomicUsize::new(0),
            response_timeout: Duration::from_secs(config.response_timeout_secs),
        }
    }

    /// `http://host:port` of every upstream.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Sends `request` (whose URI holds only path and query) to Livy and returns the
    /// response head with its body still streaming.
    pub async fn forward(&self, request: Request<Body>) -> Result<Response<Body>, RequestError> {
        let (mut parts, body) = request.into_parts();
        parts.version = Version::HTTP_11;
        let path_and_query = parts
            .uri
            .path_and_query()
            .cloned()
            .ok_or(RequestError::Internal)?;
        // Only a request with no body can be sent again, and only if there is
        // another upstream to send it to: keep a copy of its head just then.
        let attempts = if body.is_end_stream() {
            self.targets.len()
        } else {
            1
        };
        let first = self.active.load(Ordering::Relaxed) % self.targets.len();
        let mut head = Some(parts);
        let mut body = Some(body);
        let mut last_error = RequestError::UpstreamUnavailable;
        for attempt in 0..attempts {
            let index = (first + attempt) % self.targets.len();
            let (scheme, authority) = &self.targets[index];
            let uri = Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query(path_and_query.clone())
                .build()
                .map_err(|_| RequestError::Internal)?;
            let parts = match head.take() {
                Some(parts) if attempt + 1 < attempts => {
                    head = Some(parts.clone_head());
                    parts
                }
                Some(parts) => parts,
                None => return Err(last_error),
            };
            let mut request = Request::from_parts(parts, body.take().unwrap_or_else(body::empty));
            *request.uri_mut() = uri;
            match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
                Err(_) => {
                    tracing::warn!(upstream = %authority, timeout = ?self.response_timeout, "Livy did not answer in time");
                    return Err(RequestError::UpstreamTimeout);
                }
                Ok(Ok(response)) => {
                    self.active.store(index, Ordering::Relaxed);
                    return Ok(response.map(boxed_incoming));
                }
                Ok(Err(error)) => {
                    let connect = error.is_connect();
                    tracing::warn!(upstream = %authority, error = %error_chain(&error), connect, "Livy request failed");
                    if !connect {
                        return Err(RequestError::UpstreamFailed);
                    }
                    last_error = RequestError::UpstreamUnavailable;
                }
            }
        }
        Err(last_error)
    }
}

fn boxed_incoming(body: Incoming) -> Body {
    body::boxed(body)
}

/// The message of an error and all its sources, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Copying a request head, which `http::request::Parts` does not offer itself.
trait CloneHead {
    fn clone_head(&self) -> http::request::Parts;
}

impl CloneHead for http::request::Parts {
    fn clone_head(&self) -> http::request::Parts {
        let mut request = Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        request.into_parts().0
    }
}
