//! The life of one request, as a fixed sequence of named phases:
//! authenticate → route → rewrite → forward → filter response → log.
//!
//! [`Gateway::handle`] is the only entry point. Each phase either passes the request
//! on or ends it with a [`RequestError`], which becomes a response in one place
//! ([`RequestError::into_response`]). Nothing reaches Livy before authentication and
//! routing have both succeeded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, HOST, SET_COOKIE};
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::auth::basic;
use crate::auth::{Authenticator, Principal, Verified};
use crate::body::{self, Body};
use crate::config::Config;
use crate::error::{AuthFailure, RequestError, StartupError};
use crate::proxy::headers::{self, Forwarded};
use crate::proxy::Upstream;
use crate::route::{self, Route};
use crate::session::{self, MemorySessionStore, SessionStore};

const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const X_CONTENT_TYPE_OPTIONS: http::HeaderName =
    http::HeaderName::from_static("x-content-type-options");

/// What the gateway knows about the connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The listener's port, as sent in `X-Forwarded-Port`.
    pub local_port: HeaderValue,
}

/// Everything a request learns on its way through the phases, for the access log and
/// for the final response.
#[derive(Debug, Default)]
struct RequestContext {
    user: Option<Arc<str>>,
    /// Set when this request logged in without a valid session: its id goes back in
    /// `Set-Cookie`.
    new_session: Option<String>,
    auth_cached: bool,
    auth_failure: Option<AuthFailure>,
    upstream_time: Option<Duration>,
    error: Option<&'static str>,
}

/// The gateway: shared, immutable per-process state plus the session store.
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
    auth: Authenticator,
    sessions: Arc<dyn SessionStore>,
    upstream: Upstream,
}

impl Gateway {
    /// Builds the gateway from a validated config: loads users, prepares the upstream
    /// client and an in-memory session store.
    pub fn from_config(config: &Config) -> Result<Self, StartupError> {
        let sessions = Arc::new(MemorySessionStore::new(
            config.idle_timeout(),
            config.absolute_timeout(),
            config.session.max_sessions,
        ));
        Self::with_sessions(config, sessions)
    }

    /// As [`Gateway::from_config`], with a given session store.
    pub fn with_sessions(
        config: &Config,
        sessions: Arc<dyn SessionStore>,
    ) -> Result<Self, StartupError> {
        let prefix = config.gateway_path();
        let challenge = HeaderValue::from_str(&format!("BASIC realm=\"{}\"", config.auth.realm))
            .map_err(|_| StartupError::Other("auth.realm is not a valid header value".into()))?;
        let hsts = (config.server.hsts_max_age_secs > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={}", config.server.hsts_max_age_secs))
                .expect("digits")
        });
        Ok(Self {
            public_livy_root: format!("{prefix}/livy/v1"),
            context: HeaderValue::from_str(&format!("{prefix}/livy")).expect("validated topology"),
            prefix,
            cookie_name: config.session.cookie_name.clone(),
            challenge,
            hsts,
            auth: Authenticator::load(&config.auth)?,
            sessions,
            upstream: Upstream::new(&config.upstream_uris(), &config.livy),
        })
    }

    /// The session store, for housekeeping.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.sessions
    }

    /// Serves one request. Never fails: errors become JSON responses.
    pub async fn handle(&self, request: Request<Incoming>, conn: &ConnInfo) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mut ctx = RequestContext::default();

        let mut response = match self.process(request, conn, &mut ctx).await {
            Ok(response) => response,
            Err(error) => {
                ctx.error = Some(error.code());
                if let RequestError::Unauthenticated(reason) = error {
                    ctx.auth_failure = Some(reason);
                }
                error.into_response(&self.challenge)
            }
        };
        self.add_gateway_headers(response.headers_mut(), &ctx);

        tracing::info!(
            target: "livy_gateway::access",
            client = %conn.peer.ip(),
            %method,
            path,
            status = response.status().as_u16(),
            user = ctx.user.as_deref().unwrap_or("-"),
            auth_cached = ctx.auth_cached,
            auth_failure = ctx.auth_failure.map(AuthFailure::as_str),
            error = ctx.error,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            upstream_ms = ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            "request"
        );
        response
    }

    async fn process(
        &self,
        request: Request<Incoming>,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let (parts, incoming) = request.into_parts();

        // authenticate
        let principal = self.authenticate(&parts.headers, ctx).await?;
        ctx.user = Some(principal.user.clone());

        // route
        let route = route::resolve(
            &parts.method,
            parts.uri.path(),
            parts.uri.query(),
            &self.prefix,
        )?;

        // rewrite
        let upstream_request = self.rewrite(parts, body::boxed(incoming), &route, conn)?;

        // forward
        let upstream_started = Instant::now();
        let result = self.upstream.forward(upstream_request).await;
        ctx.upstream_time = Some(upstream_started.elapsed());
        let mut response = result?;

        // filter response
        headers::from_upstream(
            response.headers_mut(),
            &self.public_livy_root,
            self.upstream.origins(),
        );
        Ok(response)
    }

    /// Who is asking: verified Basic credentials if present (they win), else a live
    /// session cookie. A Basic login without a matching session starts one.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        ctx: &mut RequestContext,
    ) -> Result<Principal, RequestError> {
        let session_user =
            session::session_ids(headers, &self.cookie_name).find_map(|id| self.sessions.touch(id));
        let credentials = basic::parse(headers).map_err(RequestError::Unauthenticated)?;
        let user: Arc<str> = match credentials {
            Some(credentials) => {
                let verified = self
                    .auth
                    .verify(&credentials)
                    .await
                    .map_err(RequestError::Unauthenticated)?;
                ctx.auth_cached = verified == Verified::Cached;
                if session_user.as_deref() != Some(credentials.user.as_str()) {
                    ctx.new_session = Some(self.sessions.create(&credentials.user));
                }
                Arc::from(credentials.user)
            }
            None => session_user.ok_or(RequestError::Unauthenticated(AuthFailure::Missing))?,
        };
        Ok(Principal {
            admin: self.auth.is_admin(&user),
            user,
        })
    }

    /// Builds the request Livy will see.
    fn rewrite(
        &self,
        parts: http::request::Parts,
        body: Body,
        route: &Route,
        conn: &ConnInfo,
    ) -> Result<Request<Body>, RequestError> {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()));
        let mut request = Request::new(body);
        *request.method_mut() = parts.method;
        *request.uri_mut() = route
            .path_and_query()
            .parse()
            .map_err(|_| RequestError::BadPath("unparsable path"))?;
        *request.headers_mut() = parts.headers;
        headers::to_upstream(
            request.headers_mut(),
            &Forwarded {
                client_ip: conn.peer.ip(),
                host: host.as_deref(),
                port: &conn.local_port,
                context: &self.context,
                cookie_name: &self.cookie_name,
            },
        );
        Ok(request)
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
    }
}
