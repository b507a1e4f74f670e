//! Reaching Livy: the [`Livy`] trait the request pipeline talks to, and
//! [`Upstream`], its implementation over kept-alive HTTP/1.1 connections ([`pool`],
//! one pool per Livy server, plain or TLS, opened through [`dial`]).
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
pub mod dial;
pub mod peers;
pub mod pool;
#[cfg(feature = "kerberos")]
pub mod spnego;

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
use auth::{UpstreamAuth, Verdict};
use peers::{Peer, Peers};
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
    /// Obtains Livy's own credentials now and says what was obtained
    /// (`check-config --probe`); `None` when Livy needs none.
    async fn probe(&self) -> Result<Option<String>, RequestError> {
        Ok(None)
    }
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
    /// Prepares a connection pool for each configured Livy server, and Livy's own
    /// authentication if `[livy]` asks for one.
    pub fn from_config(config: &LivyConfig) -> Result<Self, StartupError> {
        Self::new(config, auth::from_config(config)?)
    }

    /// The same with the authentication step given.
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
            let body = body.take().unwrap_or_else(body::empty);
            match self
                .send_to(peer, &method, &path_and_query, headers, body, replayable)
                .await
            {
                Err(Failure::Connect) => last_error = RequestError::UpstreamUnavailable,
                Err(Failure::Final(error)) => return Err(error),
                Ok(response) => return Ok(response),
            }
        }
        Err(last_error)
    }

    fn origins(&self) -> &[String] {
        self.peers.origins()
    }

    async fn probe(&self) -> Result<Option<String>, RequestError> {
        match (&self.auth, self.peers.first()) {
            (Some(auth), Some(peer)) => auth.probe(peer).await.map(Some),
            _ => Ok(None),
        }
    }

    fn housekeeping(&self) {
        self.peers.housekeeping();
    }
}

/// Why an attempt at one Livy server did not give an answer.
enum Failure {
    /// No connection could be made: nothing was sent, another server may be tried.
    Connect,
    /// Anything else: the request ends with this.
    Final(RequestError),
}

impl Upstream {
    /// Sends the request to `peer`, with Livy's own authentication; once more,
    /// with fresh credentials, when Livy refuses a remembered one and the request
    /// has no body that could have been sent already.
    async fn send_to(
        &self,
        peer: &Peer,
        method: &http::Method,
        path_and_query: &http::uri::PathAndQuery,
        mut headers: HeaderMap,
        body: Body,
        replayable: bool,
    ) -> Result<Response<Body>, Failure> {
        let mut body = Some(body);
        let mut fresh = false;
        loop {
            // A copy of the head only where the request may go again.
            let mut head = match self.auth.is_some() && replayable && !fresh {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            let pending = match &self.auth {
                Some(auth) => auth
                    .authorize(peer, &mut head, replayable, fresh)
                    .await
                    .map_err(Failure::Final)?,
                None => None,
            };
            let mut request = Request::new(body.take().unwrap_or_else(body::empty));
            *request.method_mut() = method.clone();
            *request.uri_mut() = path_and_query.clone().into();
            *request.version_mut() = Version::HTTP_11;
            *request.headers_mut() = head;
            let sent = tokio::time::timeout(self.response_timeout, peer.pool.send(request)).await;
            match sent {
                Err(_) => {
                    tracing::warn!(upstream = %peer.authority, timeout = ?self.response_timeout, "Livy did not answer in time");
                    return Err(Failure::Final(RequestError::UpstreamTimeout));
                }
                Ok(Ok(response)) => {
                    self.peers.answered(peer);
                    if let Some(auth) = &self.auth {
                        let verdict = auth
                            .answered(peer, pending, response.status(), response.headers())
                            .await
                            .map_err(Failure::Final)?;
                        if verdict == Verdict::Retry && replayable && !fresh {
                            fresh = true;
                            continue;
                        }
                    }
                    return Ok(response);
                }
                Ok(Err(error @ SendError::Connect { .. })) => {
                    tracing::warn!(upstream = %peer.authority, error = %error, connect = true, "Livy request failed");
                    return Err(Failure::Connect);
                }
                Ok(Err(error)) => {
                    tracing::warn!(upstream = %peer.authority, error = %error_chain(&error), connect = false, "Livy request failed");
                    return Err(Failure::Final(RequestError::UpstreamFailed));
                }
            }
        }
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
