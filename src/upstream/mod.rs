//! Reaching Livy: the [`Livy`] trait the request pipeline talks to, and
//! [`Upstream`], its implementation over kept-alive HTTP/1.1 connections ([`pool`],
//! one pool per Livy server, plain or TLS, opened through [`dial`]).
//!
//! Every request to Livy, whether forwarded for a client, sent to learn a
//! resource's owner or to check readiness, is a [`LivyRequest`] and goes out
//! through [`Upstream::send`], which picks the server ([`peers`], chosen by
//! [`health`] checks), adds what Livy's own authentication needs ([`auth`]), sets
//! `Host`, and bounds the wait for the answer. Bodies stream both ways.
//!
//! With several servers: a request none of which was sent (no connection could be
//! made) goes to the next server; a request any byte of which reached a server is
//! never sent to another, whatever happens after. A 307 or 308 whose `Location`
//! names a configured server (a passive Livy pointing at the active one) is
//! followed once, inside the gateway: the same method, path, query (so the same
//! `doAs`), headers and body ([`replay`]: kept up to the create-body limit) go to
//! that server, and the redirection never reaches the client. Errors never show
//! the client which host failed: that detail goes to the log only.

pub mod auth;
pub mod dial;
pub mod health;
pub mod peers;
pub mod pool;
pub mod replay;
#[cfg(feature = "kerberos")]
pub mod spnego;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::{HOST, LOCATION};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};

use crate::body::Body;
use crate::config::LivyConfig;
use crate::error::{RequestError, StartupError};
use crate::metrics::Metrics;
use auth::{UpstreamAuth, Verdict};
use peers::{Health, Outcome, Peer, Peers};
use pool::{SendError, Unanswered};
use replay::Replay;

/// A request for Livy: method, path and query (from Livy's root), headers as the
/// gateway prepared them, and the body. `Host` and Livy's own credentials are added
/// when it is sent.
pub struct LivyRequest {
    pub method: Method,
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
    pub body: Body,
}

/// One Livy server as `/readyz` reports it.
pub struct ServerState {
    /// `host:port`.
    pub upstream: String,
    pub health: Health,
    /// Requests go to it.
    pub active: bool,
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
    /// What is known of each server, for `/readyz`.
    fn servers(&self) -> Vec<ServerState> {
        Vec::new()
    }
}

/// The Livy server(s) behind the gateway.
pub struct Upstream {
    peers: Peers,
    /// Livy's own authentication; `None` for a Livy with authentication off, which
    /// costs a request nothing.
    auth: Option<Arc<dyn UpstreamAuth>>,
    response_timeout: Duration,
    /// Largest body kept to follow a redirection with (several servers only).
    keep_limit: usize,
    health_check_interval: Duration,
}

impl Upstream {
    /// Prepares a connection pool for each configured Livy server, and Livy's own
    /// authentication if `[livy]` asks for one.
    pub fn from_config(config: &LivyConfig, metrics: &Metrics) -> Result<Self, StartupError> {
        Self::new(config, auth::from_config(config)?, metrics)
    }

    /// The same with the authentication step given.
    pub fn new(
        config: &LivyConfig,
        auth: Option<Arc<dyn UpstreamAuth>>,
        metrics: &Metrics,
    ) -> Result<Self, StartupError> {
        Ok(Self {
            peers: Peers::new(config, metrics)?,
            auth,
            response_timeout: config.response_timeout,
            keep_limit: config.max_create_body_bytes,
            health_check_interval: config.health_check_interval,
        })
    }

    /// Several servers: starts checking their health in the background, for as
    /// long as this upstream is in use.
    pub fn start(self: Arc<Self>) -> Arc<Self> {
        if self.peers.all().len() > 1 && !self.health_check_interval.is_zero() {
            health::spawn(&self, self.health_check_interval);
        }
        self
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
        let several = self.peers.all().len() > 1;
        let mut body = match several {
            true => Replay::keep(body, self.keep_limit)
                .await
                .map_err(|_| RequestError::BadBody("the request body could not be read".into()))?,
            false => Replay::once(body),
        };
        let mut last_error = RequestError::UpstreamUnavailable;
        for peer in self.peers.in_order() {
            // A copy of the head only where another attempt may follow.
            let head = match several {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            let response = match self
                .send_to(peer, &method, &path_and_query, head, &mut body)
                .await
            {
                Err(Failure::Unsent) => {
                    last_error = RequestError::UpstreamUnavailable;
                    continue;
                }
                Err(Failure::Final(error)) => return Err(error),
                Ok(response) => response,
            };
            let Some(target) = self.redirected_to(&response, peer) else {
                self.peers.answered(peer);
                return Ok(response);
            };
            return self
                .follow(peer, target, &method, &path_and_query, headers, &mut body)
                .await;
        }
        Err(last_error)
    }

    fn origins(&self) -> &[String] {
        self.peers.origins()
    }

    async fn probe(&self) -> Result<Option<String>, RequestError> {
        match (&self.auth, self.peers.all().first()) {
            (Some(auth), Some(peer)) => auth.probe(peer).await.map(Some),
            _ => Ok(None),
        }
    }

    fn housekeeping(&self) {
        self.peers.housekeeping();
    }

    fn servers(&self) -> Vec<ServerState> {
        self.peers
            .all()
            .iter()
            .map(|peer| ServerState {
                upstream: peer.authority.clone(),
                health: peer.health(),
                active: self.peers.is_active(peer),
            })
            .collect()
    }
}

/// Why an attempt at one Livy server did not give an answer.
enum Failure {
    /// Nothing was sent (no connection could be made): another server may be
    /// tried; the body is back in its [`Replay`].
    Unsent,
    /// Anything else: the request ends with this.
    Final(RequestError),
}

impl Upstream {
    /// The configured server a redirection from `from` points at (several servers
    /// only; never `from` itself).
    fn redirected_to(&self, response: &Response<Body>, from: &Peer) -> Option<&Peer> {
        if !matches!(
            response.status(),
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        ) || self.peers.all().len() < 2
        {
            return None;
        }
        let location = response.headers().get(LOCATION)?.to_str().ok()?;
        self.peers
            .named_by(location)
            .filter(|target| target.authority != from.authority)
    }

    /// Follows a passive server's redirection to `target`, once: the same request
    /// again, when its body could be kept. A second redirection is not followed.
    async fn follow(
        &self,
        from: &Peer,
        target: &Peer,
        method: &Method,
        path_and_query: &PathAndQuery,
        headers: HeaderMap,
        body: &mut Replay,
    ) -> Result<Response<Body>, RequestError> {
        from.count(Outcome::Redirected);
        self.peers.learnt(from, Health::Standby);
        if !body.resendable() {
            tracing::warn!(upstream = %from.authority, to = %target.authority, "a Livy server redirected a request whose body was too large to keep; not sent again");
            return Err(RequestError::UpstreamFailed);
        }
        tracing::info!(upstream = %from.authority, to = %target.authority, "following a passive Livy server's redirection");
        let response = match self
            .send_to(target, method, path_and_query, headers, body)
            .await
        {
            Err(Failure::Unsent) => return Err(RequestError::UpstreamUnavailable),
            Err(Failure::Final(error)) => return Err(error),
            Ok(response) => response,
        };
        if self.redirected_to(&response, target).is_some() {
            target.count(Outcome::Redirected);
            tracing::warn!(upstream = %target.authority, "the Livy server a redirection pointed at redirected again; not followed");
            return Err(RequestError::UpstreamFailed);
        }
        self.peers.answered(target);
        Ok(response)
    }

    /// Sends the request to `peer`, with Livy's own authentication; once more,
    /// with fresh credentials, when Livy refuses a remembered one and the body can
    /// be sent again.
    async fn send_to(
        &self,
        peer: &Peer,
        method: &Method,
        path_and_query: &PathAndQuery,
        mut headers: HeaderMap,
        body: &mut Replay,
    ) -> Result<Response<Body>, Failure> {
        headers.insert(HOST, peer.host.clone());
        let replayable = body.resendable();
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
            let mut request = Request::new(body.take());
            *request.method_mut() = method.clone();
            *request.uri_mut() = path_and_query.clone().into();
            *request.version_mut() = Version::HTTP_11;
            *request.headers_mut() = head;
            let sent = tokio::time::timeout(self.response_timeout, peer.pool.send(request)).await;
            match sent {
                Err(_) => {
                    peer.count(Outcome::Timeout);
                    tracing::warn!(upstream = %peer.authority, timeout = ?self.response_timeout, "Livy did not answer in time");
                    return Err(Failure::Final(RequestError::UpstreamTimeout));
                }
                Ok(Ok(response)) => {
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
                Ok(Err(Unanswered {
                    error,
                    unsent: Some(unsent),
                })) => {
                    peer.count(Outcome::Unreachable);
                    self.peers.learnt(peer, Health::Down);
                    tracing::warn!(upstream = %peer.authority, error = %error_chain(&error), sent = false, "Livy request failed");
                    body.give_back(unsent.into_body());
                    return Err(Failure::Unsent);
                }
                Ok(Err(Unanswered {
                    error,
                    unsent: None,
                })) => {
                    peer.count(Outcome::Failed);
                    if matches!(error, SendError::Connect { .. }) {
                        self.peers.learnt(peer, Health::Down);
                    }
                    tracing::warn!(upstream = %peer.authority, error = %error_chain(&error), sent = true, "Livy request failed");
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
