//! Reaching Livy: the [`Livy`] trait the request pipeline talks to, and
//! [`Upstream`], its implementation over kept-alive HTTP/1.1 connections ([`pool`],
//! one pool per Livy server, plain or TLS).
//!
//! Every request to Livy, whether forwarded for a client, sent to learn a
//! resource's owner or to check readiness, is a [`LivyRequest`] and goes out
//! through [`Upstream::send`], which picks the server ([`peers`]), adds what Livy's
//! own authentication needs ([`auth`]), sets `Host`, and bounds the wait for the
//! answer. Bodies stream both ways. When a connection cannot be made and the
//! request has no body (so nothing was sent and it can be replayed safely) the next
//! server is tried. Errors never show the client which host failed: that detail
//! goes to the log only.

pub mod auth;
pub mod peers;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, Version};
use http_body::Body as _;

use crate::body::{self, Body};
use crate::config::LivyConfig;
use crate::error::{RequestError, StartupError};
use auth::UpstreamAuth;
use peers::Peers;
use pool::SendError;

/// A request for Livy: method, path and query (from Livy's root), headers as the
/// gateway prepared them, and the body. `Host` and Livy's own credentials are added
/// when it is sent.
pub struct LivyRequest {
    pub method: Method,
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
    pub body: Body,
}

/// What the request pipeline needs of Livy; [`Upstream`] in production, a fake in
/// the pipeline's unit tests.
#[async_trait]
pub trait Livy: Send + Sync {
    /// Sends `request` and returns the response head with its body still streaming.
    async fn send(&self, request: LivyRequest) -> Result<Response<Body>, RequestError>;
    /// `scheme://host:port` of every Livy server, to recognise Livy's own absolute
    /// links in its answers.
    fn origins(&self) -> &[String];
    /// Periodic upkeep (idle connections past their time).
    fn housekeeping(&self) {}
}

/// The Livy server(s) behind the gateway.
pub struct Upstream {
    peers: Peers,
    /// Livy's own authentication; `None` for a Livy with authentication off, which
    /// costs a request nothing.
    auth: Option<Arc<dyn UpstreamAuth>>,
    response_timeout: Duration,
}

impl Upstream {
    /// Prepares a connection pool for each configured Livy server.
    pub fn new(
        config: &LivyConfig,
        auth: Option<Arc<dyn UpstreamAuth>>,
    ) -> Result<Self, StartupError> {
        Ok(Self {
            peers: Peers::new(config)?,
            auth,
            response_timeout: config.response_timeout,
        })
    }
}

#[async_trait]
impl Livy for Upstream {
    async fn send(&self, request: LivyRequest) -> Result<Response<Body>, RequestError> {
        let LivyRequest {
            method,
            path_and_query,
            mut headers,
            body,
        } = request;
        // Only a request with no body can be sent again, and only if there is
        // another server to send it to.
        let replayable = body.is_end_stream();
        let mut body = Some(body);
        let mut last_error = RequestError::UpstreamUnavailable;
        let peers = self.peers.in_order(replayable);
        let attempts = peers.len();
        for (attempt, peer) in peers.enumerate() {
            // A copy of the head only where another attempt may follow.
            let mut headers = match attempt + 1 < attempts {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            headers.insert(HOST, peer.host.clone());
            if let Some(auth) = &self.auth {
                auth.authorize(peer, &mut headers).await?;
            }
            let mut request = Request::new(body.take().unwrap_or_else(body::empty));
            *request.method_mut() = method.clone();
            *request.uri_mut() = path_and_query.clone().into();
            *request.version_mut() = Version::HTTP_11;
            *request.headers_mut() = headers;
            let sent = tokio::time::timeout(self.response_timeout, peer.pool.send(request)).await;
            match sent {
                Err(_) => {
                    tracing::warn!(upstream = %peer.authority, timeout = ?self.response_timeout, "Livy did not answer in time");
                    return Err(RequestError::UpstreamTimeout);
                }
                Ok(Ok(response)) => {
                    self.peers.answered(peer);
                    if let Some(auth) = &self.auth {
                        auth.answered(peer, response.headers())?;
                    }
                    return Ok(response);
                }
                Ok(Err(error @ SendError::Connect { .. })) => {
                    tracing::warn!(upstream = %peer.authority, error = %error, connect = true, "Livy request failed");
                    last_error = RequestError::UpstreamUnavailable;
                }
                Ok(Err(error)) => {
                    tracing::warn!(upstream = %peer.authority, error = %error_chain(&error), connect = false, "Livy request failed");
                    return Err(RequestError::UpstreamFailed);
                }
            }
        }
        Err(last_error)
    }

    fn origins(&self) -> &[String] {
        self.peers.origins()
    }

    fn housekeeping(&self) {
        self.peers.housekeeping();
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
