//! The life of one request, as a fixed sequence of named phases, each in a file of
//! its own:
//! [`limit`] (with [`origin`]) → [`authenticate`] → route ([`crate::route`]) → [`authorize`] (the Livy
//! policy) → [`rewrite`] → [`forward`] → [`respond`] → [`observe`]; requests for
//! the YARN web UIs go from route to [`yarn`], which authorizes, forwards and
//! responds for them, and requests for the token API to [`tokens`], which the
//! gateway answers itself.
//!
//! [`Gateway::handle`] is the only entry point and reads top to bottom. Each phase
//! either passes the request on or ends it with a [`RequestError`], which becomes a
//! response in one place ([`RequestError::to_response`]). Nothing reaches Livy
//! before authentication, routing and authorization have all succeeded, and every
//! request is asserted to Livy as the identity the gateway decided on. `handle` is
//! generic over the request body and reaches Livy through the [`Livy`] trait, so
//! the whole policy runs in unit tests (`gateway/tests.rs`) without a socket.

mod authenticate;
mod authorize;
mod confirm;
mod context;
mod forward;
pub mod headers;
mod history;
mod limit;
mod livy_ui;
mod observe;
mod origin;
mod pages;
mod policy;
mod relay;
mod respond;
mod rewrite;
mod signin;
#[cfg(test)]
mod tests;
mod tokens;
pub mod upkeep;
mod usage;
mod yarn;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, EXPECT};
use http::{HeaderName, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::access::AccessLog;
use crate::audit::AuditLog;
use crate::auth::{Authenticator, Roles};
use crate::body::{self, Body, BoxError};
use crate::config::{Config, IdentityMode};
use crate::error::{AuthFailure, RequestError, StartupError};
use crate::livy;
use crate::logging;
use crate::metrics::Metrics;
use crate::route;
use crate::state::State;
use crate::upstream::{Livy, Upstream};
use crate::yarn::Yarn;
use authorize::Plan;
pub use context::ConnInfo;
use context::RequestContext;
pub(crate) use tokens::{rfc3339, view as token_view};

/// A client's request body as the gateway reads it: cut when it stalls or overruns.
type RequestBody<B> = body::Guarded<B>;

/// What the phases need from the configuration, prepared once per configuration.
struct Settings {
    /// `/gateway/<topology>`.
    prefix: String,
    /// `/gateway/<topology>/livy/v1`: where Livy's root appears to clients.
    public_livy_root: String,
    /// `/gateway/<topology>/livy`, sent as `X-Forwarded-Context`.
    context: HeaderValue,
    cookie_name: String,
    /// What a 401 offers: `Negotiate` with `[auth.kerberos]`,
    /// `BASIC realm="<realm>"` when there are passwords to check, and
    /// `Bearer realm="<realm>"` when tokens are taken.
    challenges: Vec<HeaderValue>,
    /// What a 401 offers a browser (`Sec-Fetch-Mode` sent): without Basic when
    /// `[auth.oidc]` signs browsers in.
    browser_challenges: Vec<HeaderValue>,
    /// `Strict-Transport-Security` value, if enabled.
    hsts: Option<HeaderValue>,
    /// `server.public_host`: the `X-Forwarded-Host` every request carries, when set.
    public_host: Option<HeaderValue>,
    /// A request body pausing this long is cut (408).
    body_idle_timeout: Duration,
    max_headers: usize,
    max_header_bytes: usize,
    identity: IdentityMode,
    /// A header injected into state-changing requests that lack it.
    csrf: Option<(HeaderName, HeaderValue)>,
    max_create_body: usize,
    max_body: usize,
    max_upload: usize,
    max_buffered_response: usize,
}

impl Settings {
    fn new(config: &Config) -> Result<Self, StartupError> {
        let prefix = config.gateway_path();
        let basic = HeaderValue::from_str(&format!("BASIC realm=\"{}\"", config.auth.realm))
            .map_err(|_| StartupError::Other("auth.realm is not a valid header value".into()))?;
        let auth = &config.auth;
        let passwords = auth.htpasswd.is_some() || auth.ldap.is_some();
        let tokens = auth.jwt.is_some() || config.tokens.enabled;
        let bearer = HeaderValue::from_str(&format!("Bearer realm=\"{}\"", config.auth.realm))
            .map_err(|_| StartupError::Other("auth.realm is not a valid header value".into()))?;
        let challenges: Vec<HeaderValue> = [
            auth.kerberos
                .is_some()
                .then(|| HeaderValue::from_static("Negotiate")),
            passwords.then_some(basic.clone()),
            tokens.then_some(bearer),
        ]
        .into_iter()
        .flatten()
        .collect();
        // With browser sign-in, a browser is never offered Basic (its popup).
        let browser_challenges = match auth.oidc.is_some() {
            true => challenges
                .iter()
                .filter(|c| **c != basic)
                .cloned()
                .collect(),
            false => challenges.clone(),
        };
        let max_age = config.server.hsts_max_age.as_secs();
        let (s, l) = (&config.server, &config.livy);
        Ok(Self {
            public_livy_root: format!("{prefix}/livy/v1"),
            context: HeaderValue::from_str(&format!("{prefix}/livy")).expect("validated topology"),
            prefix,
            cookie_name: config.session.cookie_name.clone(),
            challenges,
            browser_challenges,
            hsts: (max_age > 0)
                .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).expect("digits")),
            public_host: s
                .public_host
                .as_ref()
                .map(|h| HeaderValue::from_str(h.as_str()).expect("an authority is a value")),
            body_idle_timeout: s.body_idle_timeout,
            max_headers: s.max_headers,
            max_header_bytes: s.max_header_bytes,
            identity: l.identity,
            csrf: l
                .csrf_header
                .clone()
                .map(|name| (name, l.csrf_value.clone())),
            max_create_body: l.max_create_body_bytes,
            max_body: l.max_body_bytes,
            max_upload: l.max_upload_bytes,
            max_buffered_response: l.max_buffered_response_bytes,
        })
    }
}

/// What a gateway is built from besides its configuration: what outlives one
/// configuration (the stores, the metrics, the logs) and Livy.
pub struct Parts {
    pub state: State,
    pub livy: Arc<dyn Livy>,
    pub logs: Logs,
    pub metrics: Arc<Metrics>,
}

/// The logs written per request, each by a thread of its own; `None` is off.
#[derive(Clone, Default)]
pub struct Logs {
    pub access: Option<AccessLog>,
    pub audit: Option<AuditLog>,
}

impl Logs {
    /// Opens the logs `config` asks for.
    fn open(config: &Config, metrics: &Metrics) -> Result<Self, StartupError> {
        Ok(Self {
            access: Self::open_access(config, metrics)?,
            audit: Self::open_audit(config, metrics)?,
        })
    }

    fn open_access(config: &Config, metrics: &Metrics) -> Result<Option<AccessLog>, StartupError> {
        AccessLog::open(&config.log, metrics.dropped_lines("access")).map(Some)
    }

    fn open_audit(config: &Config, metrics: &Metrics) -> Result<Option<AuditLog>, StartupError> {
        match (&config.audit.path, config.audit.enabled) {
            (Some(path), true) => AuditLog::open(path, metrics.dropped_lines("audit")).map(Some),
            _ => Ok(None),
        }
    }

    /// These logs for `next`: each kept (and reopened, after log rotation) where its
    /// settings did not change, opened afresh where they did.
    fn reconfigured(
        &self,
        now: &Config,
        next: &Config,
        metrics: &Metrics,
    ) -> Result<Self, StartupError> {
        self.reopen();
        Ok(Self {
            access: match now.log == next.log {
                true => self.access.clone(),
                false => Self::open_access(next, metrics)?,
            },
            audit: match now.audit == next.audit {
                true => self.audit.clone(),
                false => Self::open_audit(next, metrics)?,
            },
        })
    }

    /// Reopens the files (after log rotation).
    fn reopen(&self) {
        if let Some(access) = &self.access {
            access.reopen();
        }
        if let Some(audit) = &self.audit {
            audit.reopen();
        }
    }

    /// Writes out every queued line and stops the writers (graceful shutdown).
    fn finish(&self) {
        if let Some(access) = &self.access {
            access.finish();
        }
        if let Some(audit) = &self.audit {
            audit.finish();
        }
    }
}

/// The gateway: shared per-process state for one configuration.
pub struct Gateway {
    settings: Settings,
    /// The configuration this gateway was built from (compared on reload).
    config: Config,
    metrics: Arc<Metrics>,
    auth: Authenticator,
    roles: Roles,
    state: State,
    livy: Arc<dyn Livy>,
    logs: Logs,
    /// `[yarn]`: the Spark UI and driver logs through the gateway.
    yarn: Option<Yarn>,
    /// Owners confirmed with Livy, and the answers that did (outlive reloads).
    confirmations: Arc<confirm::Confirmations>,
    /// `[auth.oidc]`: browser sign-in at the identity provider.
    oidc: Option<Arc<crate::auth::oidc::Oidc>>,
    /// When sessions were first seen idle (the policy's upkeep; outlives reloads).
    idle_seen: Arc<upkeep::IdleSeen>,
    /// Set once this process has counted from Livy's listings (outlives reloads).
    counted: Arc<tokio::sync::OnceCell<()>>,
}

impl Gateway {
    /// Builds the gateway from a validated config: opens the stores `[state]` names
    /// and the logs, loads the users, prepares the connections to Livy.
    pub fn from_config(config: &Config, metrics: Arc<Metrics>) -> Result<Self, StartupError> {
        let parts = Parts {
            state: State::open(config, &metrics)?,
            livy: Arc::new(Upstream::from_config(&config.livy, &metrics)?).start(),
            logs: Logs::open(config, &metrics)?,
            metrics,
        };
        Self::new(config, parts)
    }

    /// Builds the gateway from a validated config and the parts it is given.
    pub fn new(config: &Config, parts: Parts) -> Result<Self, StartupError> {
        let verifier = crate::auth::verifier(&config.auth, &parts.metrics)?;
        let tickets = crate::auth::negotiate::from_config(config.auth.kerberos.as_ref())?;
        let jwt = match &config.auth.jwt {
            Some(jwt) => Some(crate::auth::jwt::JwtValidator::new(jwt)?),
            None => None,
        };
        let tokens = crate::auth::tokens::Tokens::new(
            jwt,
            parts.state.tokens.clone(),
            config.state.local_cache,
        );
        let yarn = Yarn::from_config(config, Default::default(), &parts.metrics)?;
        Ok(Self {
            yarn,
            settings: Settings::new(config)?,
            auth: Authenticator::new(verifier, parts.state.lockouts.clone(), &config.auth)
                .with_tickets(tickets)
                .with_tokens(tokens),
            roles: Roles::new(&config.auth),
            config: config.clone(),
            metrics: parts.metrics,
            state: parts.state,
            livy: parts.livy,
            logs: parts.logs,
            confirmations: Default::default(),
            idle_seen: Default::default(),
            counted: Default::default(),
            oidc: match &config.auth.oidc {
                Some(oidc) => Some(Arc::new(crate::auth::oidc::Oidc::new(oidc)?)),
                None => None,
            },
        })
    }

    /// A gateway for a new configuration that keeps this one's sessions, ownership
    /// records, and (where their settings did not change) rate-limit and lockout
    /// state and logs.
    pub fn reloaded(&self, config: &Config) -> Result<Self, StartupError> {
        if config.server.data_dir != self.config.server.data_dir {
            tracing::warn!("server.data_dir changed: takes effect only after a restart");
        }
        if config.state != self.config.state {
            tracing::warn!("[state] changed: takes effect only after a restart");
        }
        let parts = Parts {
            logs: self
                .logs
                .reconfigured(&self.config, config, &self.metrics)?,
            state: self.state.reconfigured(&self.config, config, &self.metrics),
            livy: Arc::new(Upstream::from_config(&config.livy, &self.metrics)?).start(),
            metrics: self.metrics.clone(),
        };
        let mut next = Self::new(config, parts)?;
        next.confirmations = self.confirmations.clone();
        next.idle_seen = self.idle_seen.clone();
        next.counted = self.counted.clone();
        // Whose applications are whose outlives the configuration.
        if let (Some(next), Some(now)) = (next.yarn.as_mut(), self.yarn.as_ref()) {
            next.apps = now.apps.clone();
        }
        Ok(next)
    }

    /// Where this gateway's upstream series are labelled: every Livy server and
    /// the ResourceManager.
    fn upstream_names(&self) -> std::collections::HashSet<String> {
        let mut names: std::collections::HashSet<String> = self
            .livy
            .servers()
            .into_iter()
            .map(|s| s.upstream)
            .collect();
        if let Some(yarn) = &self.yarn {
            names.extend(yarn.servers().into_iter().map(|s| s.upstream));
        }
        names
    }

    /// After `next` replaced this gateway: the metric series of servers it no
    /// longer names are no longer exported.
    pub fn forget_removed_upstreams(&self, next: &Gateway) {
        let kept = next.upstream_names();
        for gone in self.upstream_names().difference(&kept) {
            self.metrics.forget_upstream(gone);
        }
    }

    /// After `next` replaced this gateway: ends the sessions of users it no longer
    /// knows (those gone from a user list; a directory's users are checked again
    /// when their cached login expires).
    pub async fn end_sessions_of_removed_users(&self, next: &Gateway) {
        let (Some(before), Some(after)) = (self.auth.users(), next.auth.users()) else {
            return;
        };
        for user in before.difference(&after) {
            tracing::info!(
                user,
                "user removed from the user database: ending their sessions"
            );
            if let Err(error) = next.state.sessions.remove_user(user).await {
                tracing::error!(%error, user, "could not end the sessions of a removed user");
            }
        }
    }

    /// Periodic upkeep: expired sessions, idle rate-limit keys, old login failures,
    /// idle Livy connections past their time.
    pub fn housekeeping(&self) {
        if let Some(live) = self.state.sessions.maintain() {
            self.metrics.live_sessions.set(live as i64);
        }
        self.state.ownership.housekeeping();
        self.state.limits.housekeeping();
        self.state.lockouts.housekeeping();
        self.livy.housekeeping();
        if let Some(yarn) = &self.yarn {
            yarn.housekeeping();
        }
    }

    /// The configuration this gateway runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Reopens the access and audit logs (after log rotation).
    pub fn reopen_logs(&self) {
        self.logs.reopen();
    }

    /// Writes out every queued access and audit line and stops their writers; for
    /// a graceful shutdown, once no request is left.
    pub fn finish_logs(&self) {
        self.logs.finish();
    }

    /// Serves one request. Never fails: errors become JSON responses.
    pub async fn handle<B>(&self, request: Request<B>, conn: &ConnInfo) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let mut ctx = RequestContext::new(request.headers());
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        // An HTTP/1.1 client waiting for `100 Continue` sends no body after an early
        // answer: there is nothing to read, and reading would take its next request.
        let expects_continue = request.headers().contains_key(EXPECT);
        let from_browser = request.headers().contains_key("sec-fetch-mode");
        // Only browsers send `Sec-Fetch-Mode`: other clients never pay for the check.
        let navigation = from_browser
            && pages::is_navigation(&method, request.headers(), &path, &self.settings.prefix);
        let (parts, body) = request.into_parts();
        let mut unread = (!body.is_end_stream()).then(|| {
            let guarded = body::Guarded::new(body, self.settings.body_idle_timeout);
            ctx.body_trouble = Some(guarded.trouble());
            guarded
        });

        let id = ctx.request_id.header();
        let result =
            logging::in_request(id, self.process(parts, &mut unread, conn, &mut ctx)).await;
        if ctx.reservation.is_some() {
            // A creation that did not end in Livy's 201 gives its place back.
            self.settle_reservation(&mut ctx, None).await;
        }
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                if let RequestError::Unauthenticated(reason) = error {
                    ctx.auth_failure = Some(reason);
                }
                let challenges = match from_browser {
                    true => &self.settings.browser_challenges,
                    false => &self.settings.challenges,
                };
                let mut response = error.to_response(challenges);
                if let Some((service, home)) = ctx.page_service.filter(|_| navigation) {
                    // A person's navigation to a web UI's page gets a page.
                    let home = format!("{}{home}", self.settings.prefix);
                    response = pages::error_page(&error, service, &home, response);
                }
                ctx.error = Some(error);
                if let Some(rest) = unread.take().filter(|_| !expects_continue) {
                    // Answered before the body was read: read it after the answer,
                    // so the exchange ends cleanly on both protocols.
                    // Without a length, so the answer ends only once the drain has.
                    response.headers_mut().remove(CONTENT_LENGTH);
                    response =
                        response.map(|answer| body::boxed(body::Draining::new(answer, rest)));
                }
                response
            }
        };
        self.add_gateway_headers(response.headers_mut(), &ctx);
        self.observe(
            &ctx,
            conn,
            &method,
            &path,
            response.status(),
            started.elapsed(),
        );
        response
    }

    /// The phases, in order.
    async fn process<B>(
        &self,
        parts: http::request::Parts,
        unread: &mut Option<RequestBody<B>>,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        // limit
        self.check_head(&parts.headers)?;
        self.check_origin(&parts.method, &parts.uri, &parts.headers, conn)?;
        // The route is known before the caller is (its refusal waits until they
        // are), so the state can fetch the record it names with the session.
        let routed = route::resolve(
            &parts.method,
            parts.uri.path(),
            parts.uri.query(),
            &self.settings.prefix,
        )
        .map(|route| {
            let operation = livy::classify(&parts.method, &route.path);
            (route, operation)
        });
        let record = routed.as_ref().ok().and_then(|(_, op)| op.record());
        let admitted = self.admit(&parts.headers, conn, record).await?;
        ctx.prefetched = admitted.record;
        let prefix = &self.settings.prefix;
        let sign_in_page = signin::page(parts.uri.path(), prefix).filter(|_| self.oidc.is_some());
        if let Some(page) = sign_in_page.filter(|p| *p != signin::SignInPage::SignedIn) {
            // Browser sign-in's own pages: the sign-in is what they do.
            return self
                .sign_in_page(page, &parts.uri, &parts.headers, conn, ctx)
                .await;
        }

        // authenticate
        let principal = match self
            .authenticate(&parts.headers, conn, admitted.session, ctx)
            .await
        {
            // A browser's navigation without credentials signs in instead.
            Err(RequestError::Unauthenticated(
                AuthFailure::Missing | AuthFailure::UnknownSession,
            )) if self.oidc.is_some()
                && pages::is_navigation(
                    &parts.method,
                    &parts.headers,
                    parts.uri.path(),
                    prefix,
                ) =>
            {
                let asked = parts.uri.path_and_query().map_or("", |p| p.as_str());
                let target = match signin::is_return_target(asked, prefix) {
                    true => asked.to_owned(),
                    false => format!("{prefix}/oidc/signed-in"),
                };
                return self.begin_sign_in(&target, conn).await;
            }
            other => other?,
        };
        ctx.grants = principal.grants.clone();
        ctx.token = principal.token.as_ref().and_then(|t| t.id.clone());
        match admitted.user_limit {
            Some(verdict) => verdict?,
            None => self.state.limits.check_user(&principal.user).await?,
        }
        self.start_session(ctx).await?;
        if sign_in_page == Some(signin::SignInPage::SignedIn) {
            return Ok(signin::signed_in(&principal, prefix));
        }

        // route
        let path = parts.uri.path();
        if let Some(api) = tokens::route(path, &self.settings.prefix) {
            // The token API: answered here.
            return self.tokens_api(parts, unread, api, &principal, ctx).await;
        }
        if usage::is_usage(path, &self.settings.prefix) {
            // The caller's counts against the policy: answered here.
            return Box::pin(self.usage(&parts, &principal, conn, ctx)).await;
        }
        if let Some(yarn) = route::resolve_yarn(path, parts.uri.query(), &self.settings.prefix) {
            // The YARN web UIs: their own authorize → forward → respond.
            return Box::pin(self.yarn(parts, yarn?, &principal, conn, ctx)).await;
        }
        if let Some(history) = route::resolve_history(path, parts.uri.query(), prefix) {
            // The Spark History Server: likewise.
            return Box::pin(self.history(parts, history?, &principal, conn, ctx)).await;
        }
        let (route, operation) = routed?;
        if let Some(page) = route::livy_ui(&route.path) {
            // Livy's own web UI: likewise.
            return Box::pin(self.livy_ui(parts, route, page?, &principal, conn, ctx)).await;
        }
        livy::check_content_type(&parts.headers, &parts.method, &route.path)?;
        ctx.action = Some(operation.action);

        // authorize
        let plan = self
            .authorize(&principal, &operation, &route, conn, ctx)
            .await?;

        // rewrite
        let method = parts.method.clone();
        let request = self
            .rewrite(parts, unread, &route, &plan, &principal, conn, ctx)
            .await?;

        // forward
        let response = self.forward(request, &plan, &principal, conn, ctx).await?;

        // respond
        let response = self
            .respond(response, &plan, &method, &principal, ctx)
            .await?;
        let response = match plan {
            Plan::Item { kind, id, .. }
                if self.config.policy.counts()
                    && response.status() == StatusCode::OK
                    && matches!(
                        ctx.action,
                        Some("batch.get" | "session.get" | "batch.state" | "session.state")
                    ) =>
            {
                self.note_end(kind, id, response).await?
            }
            _ => response,
        };
        self.yarn_links(response, &principal, conn, ctx).await
    }
}
