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
//!
//! An answer can say which server and connection carried it ([`Served`], asked
//! for with [`LivyRequest::note`]), and a request can be held to the connections
//! that were open when such an answer came ([`Livy::send_after`]): it then reaches
//! the Livy process that gave that answer, or is handed back unsent. The gateway
//! confirms who owns a batch or session this way only once per Livy process.

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
pub use pool::Over;
use pool::{Opened, SendError, Unanswered};
use replay::Replay;

/// A request for Livy: method, path and query (from Livy's root), headers as the
/// gateway prepared them, and the body. `Host` and Livy's own credentials are added
/// when it is sent.
pub struct LivyRequest {
    pub method: Method,
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
    pub body: Body,
    /// The answer carries [`Served`]: which server and connection it came over.
    pub note: bool,
}

/// In an answer's extensions (asked for with [`LivyRequest::note`]): the server
/// that gave it, and the number of the connection it came over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// `host:port`, as in `livy.upstreams`.
    pub server: String,
    pub connection: u64,
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
    /// Sends `request` only on a connection to the server of `after` that was
    /// already open when that answer came: it reaches the same Livy process, or
    /// fails. `Ok(Err(request))`, with nothing sent, when no such connection is
    /// free (or the server is another now). Without connections to number (a
    /// stand-in), always that.
    async fn send_after(
        &self,
        request: LivyRequest,
        _after: &Served,
    ) -> Result<Result<Response<Body>, LivyRequest>, RequestError> {
        Ok(Err(request))
    }
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
            note,
        } = request;
        let over = match note {
            true => Over::Noted,
            false => Over::Any,
        };
        let several = self.peers.all().len() > 1;
        let mut body = self.replay(body).await?;
        let mut last_error = RequestError::UpstreamUnavailable;
        for peer in self.peers.in_order() {
            // A copy of the head only where another attempt may follow.
            let head = match several {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            let response = match self
                .send_to(peer, &method, &path_and_query, head, &mut body, over)
                .await
            {
                Err(Failure::Unsent | Failure::NotOpenBefore) => {
                    last_error = RequestError::UpstreamUnavailable;
                    continue;
                }
                Err(Failure::Final(error)) => return Err(error),
                Ok(response) => response,
            };
            let Some(target) = self.redirected_to(&response, peer) else {
                self.peers.answered(peer);
                return Ok(served(response, peer));
            };
            return self
                .follow(peer, target, &method, &path_and_query, headers, &mut body)
                .await
                .map(|response| served(response, target));
        }
        Err(last_error)
    }

    async fn send_after(
        &self,
        request: LivyRequest,
        after: &Served,
    ) -> Result<Result<Response<Body>, LivyRequest>, RequestError> {
        let Some(peer) = self
            .peers
            .all()
            .iter()
            .find(|p| p.authority == after.server)
        else {
            return Ok(Err(request));
        };
        let LivyRequest {
            method,
            path_and_query,
            headers,
            body,
            note,
        } = request;
        let mut body = self.replay(body).await?;
        let over = Over::OpenBefore(after.connection.saturating_add(1));
        let sent = self
            .send_to(
                peer,
                &method,
                &path_and_query,
                headers.clone(),
                &mut body,
                over,
            )
            .await;
        // Handed back when nothing reached the server, or only a server that has
        // become passive (which did nothing with it) when the body can go again.
        match sent {
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Unsent | Failure::NotOpenBefore) => {}
            Ok(response) if self.redirected_to(&response, peer).is_some() => {
                if !body.resendable() {
                    return Err(RequestError::UpstreamFailed);
                }
            }
            Ok(response) => {
                self.peers.answered(peer);
                return Ok(Ok(served(response, peer)));
            }
        }
        Ok(Err(LivyRequest {
            method,
            path_and_query,
            headers,
            body: body.take(),
            note,
        }))
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

/// `response` noted as `peer`'s, when it says which connection carried it.
fn served(mut response: Response<Body>, peer: &Peer) -> Response<Body> {
    if let Some(Opened(connection)) = response.extensions_mut().remove::<Opened>() {
        response.extensions_mut().insert(Served {
            server: peer.authority.clone(),
            connection,
        });
    }
    response
}

/// Why an attempt at one Livy server did not give an answer.
enum Failure {
    /// Nothing was sent (no connection could be made): another server may be
    /// tried; the body is back in its [`Replay`].
    Unsent,
    /// Nothing was sent: no connection open early enough was free
    /// ([`Over::OpenBefore`]); the body is back in its [`Replay`].
    NotOpenBefore,
    /// Anything else: the request ends with this.
    Final(RequestError),
}

impl Upstream {
    /// The request body, kept to be sent again where another server may be tried.
    async fn replay(&self, body: Body) -> Result<Replay, RequestError> {
        match self.peers.all().len() > 1 {
            true => Replay::keep(body, self.keep_limit)
                .await
                .map_err(|_| RequestError::BadBody("the request body could not be read".into())),
            false => Ok(Replay::once(body)),
        }
    }

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

    /// Follows a passive server's redirection to `target`, once (on any of its
    /// connections; the answer says which, as this path is rare): the same request
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
            .send_to(target, method, path_and_query, headers, body, Over::Noted)
            .await
        {
            Err(Failure::Unsent | Failure::NotOpenBefore) => {
                return Err(RequestError::UpstreamUnavailable)
            }
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
        over: Over,
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
            let sent =
                tokio::time::timeout(self.response_timeout, peer.pool.send(request, over)).await;
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
                    error: SendError::NotOpenBefore,
                    unsent: Some(unsent),
                })) => {
                    body.give_back(unsent.into_body());
                    return Err(Failure::NotOpenBefore);
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
