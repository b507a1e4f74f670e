//! The life of one request, as a fixed sequence of named phases:
//! limit → authenticate → route → authorize (Livy policy) → rewrite → forward →
//! filter response → log and audit.
//!
//! [`Gateway::handle`] is the only entry point. Each phase either passes the request
//! on or ends it with a [`RequestError`], which becomes a response in one place
//! ([`RequestError::to_response`]). Nothing reaches Livy before authentication,
//! routing and authorization have all succeeded, and every request is asserted to
//! Livy as the identity the gateway decided on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HOST, SET_COOKIE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use crate::audit::{AuditEvent, AuditLog};
use crate::auth::basic;
use crate::auth::throttle::LoginThrottle;
use crate::auth::{Authenticator, Principal, Verified};
use crate::body::{self, Body, CollectError};
use crate::config::{Config, IdentityMode};
use crate::error::{AuthFailure, RequestError, StartupError};
use crate::livy::{self, listing, query, Operation, Scope};
use crate::logging;
use crate::metrics::{self, Metrics};
use crate::ownership::{self, Change, Kind, OwnershipStore, Record, RedbOwnershipStore};
use crate::proxy::headers::{self, Forwarded, X_REQUEST_ID};
use crate::proxy::Upstream;
use crate::ratelimit::RateLimits;
use crate::route::{self, Route};
use crate::session::{self, MemorySessionStore, SessionStore};

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A client's request body as the gateway reads it: cut when it stalls.
type RequestBody = body::Stalling<Incoming>;

/// What the gateway knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The peer's address as text, formatted once per connection (for
    /// `X-Forwarded-For` and the audit log).
    pub client: HeaderValue,
    /// The listener's port, as sent in `X-Forwarded-Port`.
    pub local_port: HeaderValue,
    /// The host the client reached the gateway under, as sent in `X-Forwarded-Host`
    /// unless `server.public_host` says otherwise: the TLS server name it asked for
    /// (SNI, a DNS name rustls has checked) with the listener's port, or without
    /// SNI the address it connected to. Never a client's `Host` header, which is
    /// free text.
    pub host: HeaderValue,
}

impl ConnInfo {
    /// A connection from `peer` to the gateway's address `local`.
    pub fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        let client = HeaderValue::from_str(&peer.ip().to_string())
            .expect("an IP address is a valid header value");
        Self {
            peer,
            client,
            local_port: HeaderValue::from(local.port()),
            host: HeaderValue::from_str(&local.to_string())
                .expect("a socket address is a valid header value"),
        }
    }

    /// Notes the TLS server name the client asked for, once the handshake is done.
    pub fn set_server_name(&mut self, name: Option<&str>) {
        let port = self.local_port.to_str().unwrap_or("443");
        let host = name.map(|name| match port {
            "443" => name.to_owned(),
            port => format!("{name}:{port}"),
        });
        if let Some(value) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
            self.host = value;
        }
    }

    /// The peer's address as text.
    pub fn client(&self) -> &str {
        self.client.to_str().unwrap_or("-")
    }
}

/// Everything a request learns on its way through the phases, for the final
/// response, the access log and the audit log.
#[derive(Debug, Default)]
struct RequestContext {
    request_id: RequestId,
    user: Option<Arc<str>>,
    /// Who Livy is told the request runs as.
    effective_user: Option<String>,
    /// Set when this request logged in without a valid session: a session is started
    /// for it once the request is let through the rate limits.
    needs_session: bool,
    /// The session started for this request: its id goes back in `Set-Cookie`.
    new_session: Option<String>,
    /// How the caller was identified: `password`, `cached` or `session`.
    auth_method: Option<&'static str>,
    /// Whether the request carried the gateway's session cookie (live or not).
    session_cookie: bool,
    auth_failure: Option<AuthFailure>,
    action: Option<&'static str>,
    /// The batch or session id the request names.
    resource: Option<String>,
    upstream_status: Option<u16>,
    upstream_time: Option<Duration>,
    /// Identity parameters a client tried to pass, removed.
    removed_params: Vec<String>,
    /// Set when a streamed request body overran its limit.
    body_too_large: Arc<AtomicBool>,
    /// Set when a request body paused past `server.body_idle_timeout_secs`.
    body_stalled: Arc<AtomicBool>,
    error: Option<RequestError>,
}

/// What the authorize phase decided to do with a request.
#[derive(Debug)]
enum Plan {
    /// Forward as is (open endpoints; administrators' listings and other paths).
    Pass,
    /// A creation: assert `proxyUser` in the body, record the owner from the 201.
    Create(Kind),
    /// A listing narrowed to the caller's own resources.
    List(Kind, listing::Page),
    /// Access to one resource the caller may use. `path` replaces the Livy path when
    /// a name was resolved to an id.
    Item {
        kind: Kind,
        id: u64,
        path: Option<String>,
    },
}

/// Policy settings for Livy.
struct LivyPolicy {
    identity: IdentityMode,
    csrf: Option<(HeaderName, HeaderValue)>,
    max_create_body: usize,
    max_body: usize,
    max_upload: usize,
    max_buffered_response: usize,
}

/// The gateway: shared per-process state.
pub struct Gateway {
    /// `/gateway/<topology>`.
    prefix: String,
    /// `/gateway/<topology>/livy/v1`: where Livy's root appears to clients.
    public_livy_root: String,
    /// `/gateway/<topology>/livy`, sent as `X-Forwarded-Context`.
    context: HeaderValue,
    cookie_name: String,
    /// `BASIC realm="<realm>"`.
    challenge: HeaderValue,
    /// `Strict-Transport-Security` value, if enabled.
    hsts: Option<HeaderValue>,
    /// `server.public_host`: the `X-Forwarded-Host` every request carries, when set.
    public_host: Option<HeaderValue>,
    /// A request body pausing this long is cut (408).
    body_idle_timeout: Duration,
    /// The configuration this gateway was built from (compared on reload).
    config: Config,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    limits: Arc<RateLimits>,
    max_headers: usize,
    max_header_bytes: usize,
    sessions: Arc<dyn SessionStore>,
    ownership: Arc<dyn OwnershipStore>,
    /// Writes ownership changes (one thread, batched).
    ownership_writer: ownership::Writer,
    upstream: Upstream,
    policy: LivyPolicy,
    audit: Option<AuditLog>,
}

/// State that outlives one configuration: handed from a gateway to the one that
/// replaces it on reload.
struct Carried {
    sessions: Arc<dyn SessionStore>,
    /// Also the way to the ownership store.
    ownership_writer: ownership::Writer,
    audit: Option<AuditLog>,
    limits: Arc<RateLimits>,
    throttle: Arc<LoginThrottle>,
    metrics: Arc<Metrics>,
}

fn open_audit(config: &Config) -> Result<Option<AuditLog>, StartupError> {
    match (&config.audit.path, config.audit.enabled) {
        (Some(path), true) => Ok(Some(AuditLog::open(path)?)),
        _ => Ok(None),
    }
}

impl Gateway {
    /// Builds the gateway from a validated config: loads users, opens the ownership
    /// store and the audit log, prepares the upstream client and an in-memory session
    /// store.
    pub fn from_config(config: &Config, metrics: Arc<Metrics>) -> Result<Self, StartupError> {
        let ownership = Arc::new(RedbOwnershipStore::open(&config.server.data_dir)?);
        Self::build(
            config,
            Carried {
                sessions: Arc::new(MemorySessionStore::new(
                    config.idle_timeout(),
                    config.absolute_timeout(),
                    config.session.max_sessions,
                )),
                ownership_writer: ownership::Writer::start(ownership)?,
                audit: open_audit(config)?,
                limits: Arc::new(RateLimits::new(&config.rate_limit)),
                throttle: Arc::new(LoginThrottle::new(&config.login)),
                metrics,
            },
        )
    }

    /// A gateway for a new configuration that keeps this one's sessions, ownership
    /// records, and (where their settings did not change) rate-limit and lockout
    /// state and audit log.
    pub fn reloaded(&self, config: &Config) -> Result<Self, StartupError> {
        if config.server.data_dir != self.config.server.data_dir {
            tracing::warn!("server.data_dir changed: takes effect only after a restart");
        }
        let audit = if config.audit == self.config.audit {
            if let Some(audit) = &self.audit {
                audit.reopen();
            }
            self.audit.clone()
        } else {
            open_audit(config)?
        };
        let limits = if config.rate_limit == self.config.rate_limit {
            self.limits.clone()
        } else {
            Arc::new(RateLimits::new(&config.rate_limit))
        };
        let throttle = if config.login == self.config.login {
            self.auth.throttle().clone()
        } else {
            Arc::new(LoginThrottle::new(&config.login))
        };
        Self::build(
            config,
            Carried {
                sessions: self.sessions.clone(),
                ownership_writer: self.ownership_writer.clone(),
                audit,
                limits,
                throttle,
                metrics: self.metrics.clone(),
            },
        )
    }

    /// After `next` replaced this gateway: ends the sessions of users it no longer
    /// knows (their cached credentials went with this gateway's cache).
    pub fn end_sessions_of_removed_users(&self, next: &Gateway) {
        let remaining: std::collections::HashSet<&str> = next.auth.user_names().collect();
        for user in self.auth.user_names().filter(|u| !remaining.contains(u)) {
            tracing::info!(
                user,
                "user removed from the user database: ending their sessions"
            );
            self.sessions.remove_user(user);
        }
    }

    fn build(config: &Config, carried: Carried) -> Result<Self, StartupError> {
        let Carried {
            sessions,
            ownership_writer,
            audit,
            limits,
            throttle,
            metrics,
        } = carried;
        let prefix = config.gateway_path();
        let challenge = HeaderValue::from_str(&format!("BASIC realm=\"{}\"", config.auth.realm))
            .map_err(|_| StartupError::Other("auth.realm is not a valid header value".into()))?;
        let hsts = (config.server.hsts_max_age_secs > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={}", config.server.hsts_max_age_secs))
                .expect("digits")
        });
        let csrf = match &config.livy.csrf_header {
            Some(name) => Some((
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| StartupError::Other("livy.csrf_header is invalid".into()))?,
                HeaderValue::from_str(&config.livy.csrf_value)
                    .map_err(|_| StartupError::Other("livy.csrf_value is invalid".into()))?,
            )),
            None => None,
        };
        let public_host = match &config.server.public_host {
            Some(host) => Some(HeaderValue::from_str(host).map_err(|_| {
                StartupError::Other("server.public_host is not a valid header value".into())
            })?),
            None => None,
        };
        Ok(Self {
            public_host,
            body_idle_timeout: Duration::from_secs(config.server.body_idle_timeout_secs),
            public_livy_root: format!("{prefix}/livy/v1"),
            context: HeaderValue::from_str(&format!("{prefix}/livy")).expect("validated topology"),
            prefix,
            cookie_name: config.session.cookie_name.clone(),
            challenge,
            hsts,
            auth: Authenticator::load(&config.auth, throttle)?,
            limits,
            config: config.clone(),
            metrics,
            max_headers: config.server.max_headers,
            max_header_bytes: config.server.max_header_bytes,
            sessions,
            ownership: ownership_writer.store().clone(),
            ownership_writer,
            upstream: Upstream::new(&config.upstream_uris(), &config.livy),
            policy: LivyPolicy {
                identity: config.livy.identity,
                csrf,
                max_create_body: config.livy.max_create_body_bytes,
                max_body: config.livy.max_body_bytes,
                max_upload: config.livy.max_upload_bytes,
                max_buffered_response: config.livy.max_buffered_response_bytes,
            },
            audit,
        })
    }

    /// Periodic cleanup: expired sessions, idle rate-limit keys, old login failures,
    /// idle Livy connections past their time.
    pub fn housekeeping(&self) {
        self.sessions.sweep();
        self.limits.housekeeping();
        self.auth.housekeeping();
        self.upstream.housekeeping();
        self.metrics.live_sessions.set(self.sessions.len() as i64);
    }

    /// The configuration this gateway runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether Livy answers (`GET /version`, not a 5xx) within `timeout`.
    pub async fn livy_ready(&self, timeout: Duration) -> bool {
        let Ok(request) = Request::get("/version").body(body::empty()) else {
            return false;
        };
        matches!(
            tokio::time::timeout(timeout, self.upstream.forward(request)).await,
            Ok(Ok(response)) if !response.status().is_server_error()
        )
    }

    /// Reopens the audit log (after log rotation).
    pub fn reopen_logs(&self) {
        if let Some(audit) = &self.audit {
            audit.reopen();
        }
    }

    /// Serves one request. Never fails: errors become JSON responses.
    pub async fn handle(&self, request: Request<Incoming>, conn: &ConnInfo) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mut ctx = RequestContext {
            request_id: request_id(request.headers()),
            ..RequestContext::default()
        };
        // An HTTP/1.1 client waiting for `100 Continue` sends no body after an early
        // answer: there is nothing to read, and reading would take its next request.
        let expects_continue = request.headers().contains_key(EXPECT);
        let (parts, incoming) = request.into_parts();
        let mut unread = (!incoming.is_end_stream()).then(|| {
            body::Stalling::new(incoming, self.body_idle_timeout, ctx.body_stalled.clone())
        });

        let span = tracing::info_span!("request", request_id = %ctx.request_id);
        let result = self
            .process(parts, &mut unread, conn, &mut ctx)
            .instrument(span)
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                if let RequestError::Unauthenticated(reason) = error {
                    ctx.auth_failure = Some(reason);
                }
                let mut response = error.to_response(&self.challenge);
                ctx.error = Some(error);
                if let Some(rest) = unread.take().filter(|_| !expects_continue) {
                    // Answered before the body was read: read it after the answer,
                    // so the exchange ends cleanly on both protocols.
                    response =
                        response.map(|answer| body::boxed(body::Draining::new(answer, rest)));
                }
                response
            }
        };
        self.add_gateway_headers(response.headers_mut(), &ctx);
        self.log(
            &ctx,
            conn,
            &method,
            &path,
            response.status(),
            started.elapsed(),
        );
        response
    }

    async fn process(
        &self,
        parts: http::request::Parts,
        unread: &mut Option<RequestBody>,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        // limit
        self.check_header_size(&parts.headers)?;
        if parts.headers.get_all(HOST).iter().nth(1).is_some() {
            // RFC 9112 §3.2: a request with more than one Host is answered 400.
            return Err(RequestError::BadHeader("more than one Host header"));
        }
        self.limits.check_ip(conn.peer.ip())?;

        // authenticate
        let principal = self.authenticate(&parts.headers, conn, ctx).await?;
        ctx.user = Some(principal.user.clone());
        self.limits.check_user(&principal.user)?;
        if ctx.needs_session {
            // Only now: a refused request must not cost a session (nor push an
            // older one out).
            ctx.new_session = Some(self.sessions.create(&principal.user));
        }

        // route
        let route = route::resolve(
            &parts.method,
            parts.uri.path(),
            parts.uri.query(),
            &self.prefix,
        )?;
        livy::check_content_type(&parts.headers)?;
        let operation = livy::classify(&parts.method, &route.path);
        ctx.action = Some(operation.action);

        // authorize
        let plan = self
            .authorize(&principal, &operation, &route, conn, ctx)
            .await?;

        // rewrite
        let upstream_request = self
            .rewrite(parts, unread, &route, &plan, &principal, conn, ctx)
            .await?;
        let method = upstream_request.method().clone();

        // forward
        let upstream_started = Instant::now();
        let result = self.upstream.forward(upstream_request).await;
        ctx.upstream_time = Some(upstream_started.elapsed());
        if ctx.body_too_large.load(Ordering::Relaxed) {
            return Err(RequestError::PayloadTooLarge);
        }
        if ctx.body_stalled.load(Ordering::Relaxed) {
            return Err(RequestError::BodyTimeout);
        }
        let response = result?;
        ctx.upstream_status = Some(response.status().as_u16());

        // filter response
        self.filter_response(response, &plan, &method, &principal, ctx)
            .await
    }

    /// Who is asking: verified Basic credentials if present (they win), else a live
    /// session cookie. A Basic login without a matching session starts one.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Principal, RequestError> {
        let session_user =
            session::session_ids(headers, &self.cookie_name).find_map(|id| self.sessions.touch(id));
        ctx.session_cookie = session::carries_cookie(headers, &self.cookie_name);
        ctx.auth_method = session_user.is_some().then_some("session");
        let credentials = basic::parse(headers).map_err(RequestError::Unauthenticated)?;
        let user: Arc<str> = match credentials {
            Some(credentials) => {
                let verified = self.auth.login(&credentials, conn.peer.ip()).await?;
                ctx.auth_method = Some(match verified {
                    Verified::Cached => "cached",
                    Verified::Computed => "password",
                });
                ctx.needs_session = session_user.as_deref() != Some(credentials.user.as_str());
                Arc::from(credentials.user)
            }
            None => {
                session_user.ok_or(RequestError::Unauthenticated(match ctx.session_cookie {
                    // A stale or forged cookie, told apart from no credentials.
                    true => AuthFailure::UnknownSession,
                    false => AuthFailure::Missing,
                }))?
            }
        };
        Ok(Principal {
            admin: self.auth.is_admin(&user),
            user,
        })
    }

    /// Decides what the caller may do: administrators anything; users only their own
    /// batches and sessions. A resource the caller may not see is answered exactly as
    /// a missing one, without reaching Livy.
    async fn authorize(
        &self,
        principal: &Principal,
        operation: &Operation,
        route: &Route,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Plan, RequestError> {
        match &operation.scope {
            Scope::Open => Ok(Plan::Pass),
            Scope::Other if principal.admin => Ok(Plan::Pass),
            Scope::Other => Err(RequestError::NotFound),
            Scope::Create(kind) => {
                self.limits.check_create(&principal.user)?;
                Ok(Plan::Create(*kind))
            }
            Scope::List(_) if principal.admin => Ok(Plan::Pass),
            Scope::List(kind) => Ok(Plan::List(*kind, listing::page(route.query.as_deref())?)),
            Scope::Item { kind, id: segment } => {
                let name = decode_segment(segment);
                ctx.resource = Some(name.clone());
                let numeric = livy::numeric_id(segment);
                if principal.admin {
                    return Ok(numeric.map_or(Plan::Pass, |id| Plan::Item {
                        kind: *kind,
                        id,
                        path: None,
                    }));
                }
                let known = match numeric {
                    Some(id) => self.ownership.get(*kind, id).map(|r| (id, r.owner)),
                    None => self
                        .ownership
                        .find_by_name(*kind, &name)
                        .map(|(id, r)| (id, r.owner)),
                };
                let (id, owner) = match known {
                    Some(known) => known,
                    // Boxed: this rare path would otherwise size every request's future.
                    None => {
                        Box::pin(self.discover_owner(*kind, segment, &name, principal, conn, ctx))
                            .await?
                    }
                };
                if owner != *principal.user {
                    return Err(RequestError::Hidden(name));
                }
                let path = numeric
                    .is_none()
                    .then(|| replace_id_segment(&route.path, id));
                Ok(Plan::Item {
                    kind: *kind,
                    id,
                    path,
                })
            }
        }
    }

    /// Asks Livy for a resource the gateway has no record of, to learn its id and
    /// owner from the view (Livy 0.6+ reports `proxyUser`). Only on this uncommon
    /// path does a request cost an extra round trip.
    async fn discover_owner(
        &self,
        kind: Kind,
        segment: &str,
        name: &str,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<(u64, String), RequestError> {
        let collection = match kind {
            Kind::Batch => "batches",
            Kind::Session => "sessions",
        };
        let doas = (self.policy.identity == IdentityMode::Doas).then_some(&*principal.user);
        let q = query::rewrite(None, doas, &[], &[]);
        let path = match q.query {
            Some(q) => format!("/{collection}/{segment}?{q}"),
            None => format!("/{collection}/{segment}"),
        };
        let mut request = Request::get(path)
            .body(body::empty())
            .map_err(|_| RequestError::Internal)?;
        self.upstream_headers(request.headers_mut(), conn, ctx);
        let response = self.upstream.forward(request).await?;
        let status = response.status();
        if status.is_server_error() {
            return Err(RequestError::UpstreamFailed);
        }
        if status != StatusCode::OK {
            return Err(RequestError::Hidden(name.to_owned()));
        }
        let view: Value = serde_json::from_slice(
            &buffer(response.into_body(), self.policy.max_buffered_response).await?,
        )
        .map_err(|_| RequestError::UpstreamFailed)?;
        let id = view
            .get("id")
            .and_then(Value::as_u64)
            .ok_or(RequestError::UpstreamFailed)?;
        let owner = listing::view_owner(&view, None)
            .ok_or_else(|| RequestError::Hidden(name.to_owned()))?;
        if let Some((id, record)) = listing::learnt(&view, kind, self.ownership.as_ref()) {
            self.ownership_writer
                .persist(Change::Put(kind, vec![(id, record)]))
                .await;
        }
        Ok((id, owner))
    }

    /// Builds the request Livy will see: the create body with its asserted
    /// `proxyUser`, the query with identity parameters removed and `doAs` appended,
    /// and the upstream headers.
    #[allow(clippy::too_many_arguments)]
    async fn rewrite(
        &self,
        parts: http::request::Parts,
        unread: &mut Option<RequestBody>,
        route: &Route,
        plan: &Plan,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Request<Body>, RequestError> {
        let mut headers = parts.headers;

        let (body, effective) = match plan {
            Plan::Create(_) => {
                // Boxed, as for owner discovery: only creations read a body here.
                let bytes = Box::pin(self.read_create_body(&headers, unread, ctx)).await?;
                let mut object = livy::body::parse_object(&bytes)?;
                let effective = livy::body::assert_proxy_user(&mut object, principal)?;
                let bytes = Bytes::from(Value::Object(object).to_string());
                headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                headers.insert(CONTENT_TYPE, APPLICATION_JSON);
                (body::full(bytes), effective)
            }
            _ => {
                let limit = if operation_is_upload(ctx.action) {
                    self.policy.max_upload
                } else {
                    self.policy.max_body
                };
                if declared_length(&headers).is_some_and(|n| n > limit as u64) {
                    return Err(RequestError::PayloadTooLarge);
                }
                let body = match unread.take() {
                    Some(incoming) => body::boxed(body::Capped::new(
                        incoming,
                        limit,
                        ctx.body_too_large.clone(),
                    )),
                    None => body::empty(),
                };
                (body, principal.user.to_string())
            }
        };

        let (also_remove, extra): (&[&str], &[(&str, &str)]) = match plan {
            Plan::List(..) => (
                &["from", "size"],
                &[("from", "0"), ("size", listing::FETCH_ALL)],
            ),
            _ => (&[], &[]),
        };
        let doas = (self.policy.identity == IdentityMode::Doas).then_some(effective.as_str());
        let rewritten = query::rewrite(route.query.as_deref(), doas, also_remove, extra);
        if !rewritten.removed.is_empty() {
            tracing::warn!(
                request_id = %ctx.request_id,
                user = %principal.user,
                removed = ?rewritten.removed,
                "identity parameters removed from a request"
            );
            ctx.removed_params = rewritten.removed;
        }
        ctx.effective_user = Some(effective);

        let path = match plan {
            Plan::Item { path: Some(p), .. } => p.as_str(),
            _ => route.path.as_str(),
        };
        let mut path_and_query = path.to_owned();
        if let Some(q) = &rewritten.query {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }
        let mut request = Request::new(body);
        *request.method_mut() = parts.method;
        *request.uri_mut() = http::Uri::try_from(path_and_query)
            .map_err(|_| RequestError::BadPath("unparsable path"))?;
        *request.headers_mut() = headers;
        self.upstream_headers(request.headers_mut(), conn, ctx);
        if let Some((name, value)) = &self.policy.csrf {
            if request.method() != Method::GET && !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        Ok(request)
    }

    fn upstream_headers(&self, headers: &mut HeaderMap, conn: &ConnInfo, ctx: &RequestContext) {
        headers::to_upstream(
            headers,
            Forwarded {
                client: &conn.client,
                host: self.public_host.as_ref().unwrap_or(&conn.host),
                port: &conn.local_port,
                context: &self.context,
                cookie_name: &self.cookie_name,
            },
        );
        headers.insert(X_REQUEST_ID, ctx.request_id.header());
    }

    /// Reads a create body, refusing one over the configured size. The body is
    /// taken from `unread` once read; a body refused for its size is left there, to
    /// be drained after the answer.
    async fn read_create_body(
        &self,
        headers: &HeaderMap,
        unread: &mut Option<RequestBody>,
        ctx: &RequestContext,
    ) -> Result<Bytes, RequestError> {
        let limit = self.policy.max_create_body;
        if declared_length(headers).is_some_and(|n| n > limit as u64) {
            return Err(RequestError::PayloadTooLarge);
        }
        let Some(incoming) = unread.as_mut() else {
            return Ok(Bytes::new());
        };
        let read = body::collect_limited(incoming, limit).await;
        if !matches!(read, Err(CollectError::TooLarge)) {
            *unread = None;
        }
        match read {
            Ok(bytes) => Ok(bytes),
            Err(CollectError::TooLarge) => Err(RequestError::PayloadTooLarge),
            Err(CollectError::Failed(_)) if ctx.body_stalled.load(Ordering::Relaxed) => {
                Err(RequestError::BodyTimeout)
            }
            Err(CollectError::Failed(_)) => Err(RequestError::BadBody(
                "the request body could not be read".into(),
            )),
        }
    }

    /// Turns Livy's answer into the client's: headers filtered, and per plan the
    /// owner of a new resource recorded, a listing narrowed, a deleted resource
    /// forgotten.
    async fn filter_response(
        &self,
        response: Response<Body>,
        plan: &Plan,
        method: &Method,
        principal: &Principal,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let (mut parts, body) = response.into_parts();
        headers::from_upstream(
            &mut parts.headers,
            &self.public_livy_root,
            self.upstream.origins(),
        );
        let body = match plan {
            Plan::Create(kind) if parts.status == StatusCode::CREATED => {
                let bytes = buffer(body, self.policy.max_buffered_response).await?;
                let view: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                match view.get("id").and_then(Value::as_u64) {
                    Some(id) => {
                        let kind = *kind;
                        ctx.resource = Some(id.to_string());
                        let record = Record {
                            owner: ctx
                                .effective_user
                                .clone()
                                .unwrap_or_else(|| principal.user.to_string()),
                            name: view.get("name").and_then(Value::as_str).map(str::to_owned),
                        };
                        self.ownership_writer
                            .persist(Change::Put(kind, vec![(id, record)]))
                            .await;
                    }
                    None => {
                        tracing::warn!(request_id = %ctx.request_id, "Livy's creation answer has no id; owner not recorded")
                    }
                }
                body::full(bytes)
            }
            Plan::List(kind, page) if parts.status == StatusCode::OK => {
                let bytes = buffer(body, self.policy.max_buffered_response).await?;
                let listing::Narrowed {
                    body: narrowed,
                    learned,
                } = listing::narrow(
                    &bytes,
                    &principal.user,
                    *kind,
                    self.ownership.as_ref(),
                    *page,
                )?;
                if !learned.is_empty() {
                    self.ownership_writer
                        .persist(Change::Put(*kind, learned))
                        .await;
                }
                parts.headers.remove(CONTENT_LENGTH);
                body::full(narrowed)
            }
            Plan::Item { kind, id, .. }
                if *method == Method::DELETE && parts.status.is_success() =>
            {
                self.ownership_writer
                    .persist(Change::Remove(*kind, *id))
                    .await;
                body
            }
            _ => body,
        };
        Ok(Response::from_parts(parts, body))
    }

    fn add_gateway_headers(&self, headers: &mut HeaderMap, ctx: &RequestContext) {
        if let Some(id) = &ctx.new_session {
            headers.append(
                SET_COOKIE,
                session::set_cookie_value(&self.cookie_name, id, &self.prefix),
            );
        }
        if let Some(hsts) = &self.hsts {
            headers.insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        headers.insert(X_REQUEST_ID, ctx.request_id.header());
    }

    /// Counts a finished request in the metrics.
    fn count(&self, ctx: &RequestContext, method: &Method, status: StatusCode, elapsed: Duration) {
        let m = &self.metrics;
        m.request_answered(
            ctx.action.unwrap_or("none"),
            metrics::method_label(method),
            status.as_u16(),
            elapsed,
            ctx.upstream_time,
        );
        match &ctx.error {
            Some(RequestError::Unauthenticated(failure)) => m.auth_outcome(failure.as_str()),
            Some(RequestError::LockedOut { .. }) => m.auth_outcome("locked_out"),
            Some(RequestError::LoginsBusy { .. }) => m.auth_outcome("busy"),
            Some(RequestError::RateLimited { limit, .. }) => {
                Metrics::kind(&m.rate_limited, limit.as_str())
            }
            Some(RequestError::UpstreamUnavailable) => {
                Metrics::kind(&m.upstream_errors, "unavailable")
            }
            Some(RequestError::UpstreamTimeout) => Metrics::kind(&m.upstream_errors, "timeout"),
            Some(RequestError::UpstreamFailed) => Metrics::kind(&m.upstream_errors, "failed"),
            Some(RequestError::UpstreamTooLarge) => Metrics::kind(&m.upstream_errors, "too_large"),
            _ => {}
        }
        if let Some(method) = ctx.auth_method {
            m.auth_outcome(method);
        }
    }

    /// One access line, one audit line, and the metrics.
    fn log(
        &self,
        ctx: &RequestContext,
        conn: &ConnInfo,
        method: &Method,
        path: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.count(ctx, method, status, elapsed);
        let error_code = ctx.error.as_ref().map(RequestError::code);
        // Paths come from clients, authenticated or not: bounded in every line.
        let path = &*logging::clip(path);
        tracing::info!(
            target: "livy_gateway::access",
            request_id = %ctx.request_id,
            client = %conn.peer.ip(),
            %method,
            path,
            status = status.as_u16(),
            user = ctx.user.as_deref().unwrap_or("-"),
            action = ctx.action,
            auth = ctx.auth_method,
            session_cookie = ctx.session_cookie,
            auth_failure = ctx.auth_failure.map(AuthFailure::as_str),
            error = error_code,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            upstream_ms = ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            "request"
        );
        let Some(audit) = &self.audit else { return };
        let (outcome, reason) = match &ctx.error {
            None if ctx.removed_params.is_empty() => ("allowed", None),
            None => (
                "allowed",
                Some(format!(
                    "identity parameters removed: {}",
                    logging::clip(&ctx.removed_params.join(", "))
                )),
            ),
            Some(e) => {
                let detail = match e {
                    RequestError::Unauthenticated(f) => f.as_str().to_string(),
                    RequestError::Hidden(_) => "not the caller's resource, or none such".into(),
                    other => other.to_string(),
                };
                let outcome = if e.is_denial() { "denied" } else { "error" };
                (outcome, Some(format!("{}: {detail}", e.code())))
            }
        };
        let method = method.as_str();
        audit.record(&AuditEvent {
            time: std::time::SystemTime::now(),
            request_id: ctx.request_id.as_str(),
            client: conn.client(),
            user: ctx.user.as_deref(),
            effective_user: ctx.effective_user.as_deref(),
            method,
            path,
            action: ctx.action,
            resource: ctx.resource.as_deref(),
            status: status.as_u16(),
            upstream_status: ctx.upstream_status,
            outcome,
            reason,
        });
    }
}

impl Gateway {
    /// Refuses requests with too many or too large headers.
    fn check_header_size(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        if headers.len() > self.max_headers {
            return Err(RequestError::HeadersTooLarge);
        }
        let size: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if size > self.max_header_bytes {
            return Err(RequestError::HeadersTooLarge);
        }
        Ok(())
    }
}

/// The `Content-Length` a request declares, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether an action is one of the job API's uploads, which may carry large bodies.
fn operation_is_upload(action: Option<&str>) -> bool {
    action == Some("session.upload")
}

/// A request's id, as text for the logs and as the `X-Request-Id` value sent to Livy
/// and back to the client, made once.
#[derive(Debug, Clone)]
struct RequestId(HeaderValue);

impl Default for RequestId {
    fn default() -> Self {
        Self(HeaderValue::from_static("-"))
    }
}

impl RequestId {
    fn as_str(&self) -> &str {
        // Only visible ASCII is ever put in.
        self.0.to_str().unwrap_or("-")
    }

    fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request's id: a valid incoming `X-Request-Id`, or a new random one.
fn request_id(headers: &HeaderMap) -> RequestId {
    let incoming = headers
        .get(X_REQUEST_ID)
        .map(HeaderValue::as_bytes)
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        });
    // Copied, so the id does not keep the connection's read buffer alive.
    let mut id = match incoming {
        Some(id) => HeaderValue::from_bytes(id),
        None => HeaderValue::from_bytes(&random_id()),
    }
    .expect("only visible ASCII");
    // Each response has its own: kept out of HTTP/2's header compression table,
    // where every new id would be compared with all the earlier ones still held
    // (some 7% of the gateway's CPU on a proxied HTTP/2 request).
    id.set_sensitive(true);
    RequestId(id)
}

/// 16 random hex digits.
fn random_id() -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u64>();
    std::array::from_fn(|i| HEX[(n >> (60 - 4 * i)) as usize & 0xf])
}

/// A path segment, percent-decoded (names may be encoded).
fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// `/batches/nightly/log` with id 7 → `/batches/7/log`.
fn replace_id_segment(path: &str, id: u64) -> String {
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    if segments.len() > 2 {
        segments[2] = id.to_string();
    }
    segments.join("/")
}

/// Reads a whole body, at most `limit` bytes.
async fn buffer(mut body: Body, limit: usize) -> Result<Bytes, RequestError> {
    match body::collect_limited(&mut body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(CollectError::TooLarge) => Err(RequestError::UpstreamTooLarge),
        Err(CollectError::Failed(_)) => Err(RequestError::UpstreamFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123.x:y"));
        assert_eq!(request_id(&h).as_str(), "abc-123.x:y");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        let random = request_id(&h);
        assert_eq!(random.as_str().len(), 16);
        assert!(random.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(request_id(&HeaderMap::new()).as_str(), random.as_str());
    }

    #[test]
    fn request_ids_stay_out_of_http2_header_compression() {
        let mut h = HeaderMap::new();
        assert!(request_id(&h).header().is_sensitive());
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert!(request_id(&h).header().is_sensitive());
    }

    #[test]
    fn names_become_ids_in_paths() {
        assert_eq!(
            replace_id_segment("/batches/nightly/log", 7),
            "/batches/7/log"
        );
        assert_eq!(replace_id_segment("/sessions/a%20b", 3), "/sessions/3");
    }
}
