//! Forwarding to Livy over kept-alive HTTP/1.1 connections ([`pool`], one pool per
//! upstream).
//!
//! Upstream origins are parsed once at startup. Bodies are streamed both ways. A
//! request goes to the upstream that last accepted a connection; when a connection
//! cannot be made and the request has no body (so nothing was sent and it can be
//! replayed safely) the next upstream is tried. Errors never show the client which
//! host failed: that detail goes to the log only.

pub mod headers;
pub mod pool;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri, Version};
use http_body::Body as _;

use crate::body::{self, Body};
use crate::config::LivyConfig;
use crate::error::RequestError;
use pool::{Pool, SendError};

/// One Livy server.
struct Target {
    /// `host:port`, for the logs.
    authority: String,
    /// The `Host` header Livy is sent.
    host: HeaderValue,
    pool: Arc<Pool>,
}

/// The Livy server(s) behind the gateway.
pub struct Upstream {
    /// In configured order.
    targets: Vec<Target>,
    /// `http://host:port` of each upstream, for recognising absolute redirects.
    origins: Vec<String>,
    /// Index of the upstream that last accepted a connection.
    active: AtomicUsize,
    response_timeout: Duration,
}

impl Upstream {
    /// Prepares a connection pool for each of the given (validated) upstream URIs.
    pub fn new(uris: &[Uri], config: &LivyConfig) -> Self {
        let targets: Vec<Target> = uris
            .iter()
            .map(|uri| {
                let authority = uri.authority().expect("validated upstream has a host");
                let address = format!(
                    "{}:{}",
                    authority.host(),
                    authority.port_u16().unwrap_or(80)
                );
                Target {
                    authority: authority.to_string(),
                    host: HeaderValue::from_str(authority.as_str())
                        .expect("an authority is a valid header value"),
                    pool: Pool::new(
                        address,
                        config.pool_max_idle_per_host,
                        Duration::from_secs(config.pool_idle_timeout_secs),
                        Duration::from_secs(config.connect_timeout_secs),
                    ),
                }
            })
            .collect();
        let origins = targets
            .iter()
            .map(|t| format!("http://{}", t.authority))
            .collect();
        Self {
            targets,
            origins,
            active: AtomicUsize::new(0),
            response_timeout: Duration::from_secs(config.response_timeout_secs),
        }
    }

    /// Closes idle Livy connections past their time (called periodically).
    pub fn housekeeping(&self) {
        for target in &self.targets {
            target.pool.reap();
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
            let target = &self.targets[index];
            let mut parts = match head.take() {
                Some(parts) if attempt + 1 < attempts => {
                    head = Some(parts.clone_head());
                    parts
                }
                Some(parts) => parts,
                None => return Err(last_error),
            };
            parts.uri = Uri::from(path_and_query.clone());
            parts.headers.insert(HOST, target.host.clone());
            let request = Request::from_parts(parts, body.take().unwrap_or_else(body::empty));
            match tokio::time::timeout(self.response_timeout, target.pool.send(request)).await {
                Err(_) => {
                    tracing::warn!(upstream = %target.authority, timeout = ?self.response_timeout, "Livy did not answer in time");
                    return Err(RequestError::UpstreamTimeout);
                }
                Ok(Ok(response)) => {
                    self.active.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Ok(Err(error @ SendError::Connect { .. })) => {
                    tracing::warn!(upstream = %target.authority, error = %error, connect = true, "Livy request failed");
                    last_error = RequestError::UpstreamUnavailable;
                }
                Ok(Err(error)) => {
                    tracing::warn!(upstream = %target.authority, error = %error_chain(&error), connect = false, "Livy request failed");
                    return Err(RequestError::UpstreamFailed);
                }
            }
        }
        Err(last_error)
    }
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
