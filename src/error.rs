//! Every error the gateway can report, in two families kept apart on purpose.
//!
//! [`StartupError`]s stop the process before it serves anything (bad config,
//! unreadable certificate, bad htpasswd line, port in use) and are printed for an
//! operator. [`RequestError`]s end one request: [`RequestError::status`] and
//! [`RequestError::to_response`] are the one place where every status the gateway
//! itself emits is chosen, always with a JSON body `{"error": code, "msg": text}`.
//! Their messages never name upstream hosts or echo credentials.

use std::path::PathBuf;

use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};

use crate::body::{self, Body};
use crate::state::StoreError;

/// Errors that keep the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("invalid {what} {}: {message}", path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("invalid TLS setup: {0}")]
    Tls(String),
    #[error("invalid htpasswd file {}: line {line}: {message}", path.display())]
    Htpasswd {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Why a request carried no usable identity. Logged, never sent to the client, which
/// only learns that it is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No Authorization header and no session cookie.
    Missing,
    /// No Authorization header, and a session cookie naming no live session
    /// (expired, ended, or made up).
    UnknownSession,
    /// An Authorization header that is not well-formed Basic credentials.
    Malformed,
    /// Well-formed credentials that do not match.
    BadCredentials,
    /// A bearer token that is not good: badly signed, expired, for another
    /// issuer or audience, revoked, unknown. Answered with
    /// `WWW-Authenticate: Bearer error="invalid_token"`.
    InvalidToken,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::UnknownSession => "unknown_session",
            AuthFailure::Malformed => "malformed",
            AuthFailure::BadCredentials => "bad_credentials",
            AuthFailure::InvalidToken => "invalid_token",
        }
    }
}

/// Which rate limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Address = 0,
    User = 1,
    Create = 2,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Address => "address",
            Limit::User => "user",
            Limit::Create => "create",
        }
    }
}

/// Everything that can end a request with a response the gateway makes itself.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("authentication required")]
    Unauthenticated(AuthFailure),
    #[error("{0}")]
    BadPath(&'static str),
    #[error("{0}")]
    BadHeader(&'static str),
    #[error("not found")]
    NotFound,
    /// A Livy resource the caller may not see: answered exactly as Livy answers for an
    /// id that does not exist, so its existence is not revealed.
    #[error("Session '{0}' not found.")]
    Hidden(String),
    #[error("{0}")]
    Forbidden(String),
    /// A state-changing request a browser sent for a page of another origin
    /// (`Origin`, `Sec-Fetch-Site`): refused whatever credentials it carries.
    #[error("cross-origin requests that change state are refused")]
    CrossOrigin,
    /// An upstream's redirection names no place on the gateway: neither passed on
    /// (it would name an internal host, or another site on the gateway's origin)
    /// nor followed.
    #[error("the upstream service redirected to a location outside the gateway")]
    UpstreamRedirect,
    #[error("{0}")]
    BadBody(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("too many requests ({} limit); retry in {retry_after_secs} s", limit.as_str())]
    RateLimited { limit: Limit, retry_after_secs: u64 },
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    /// More password checks are waiting than the gateway queues.
    #[error("too many logins are being checked; retry in {retry_after_secs} s")]
    LoginsBusy { retry_after_secs: u64 },
    /// The verifier could not check credentials (its directory is unreachable).
    #[error("logins cannot be checked right now; retry shortly")]
    AuthUnavailable,
    /// A JWT names a signing key the gateway does not hold, and the identity
    /// provider cannot be reached to fetch it.
    #[error("the identity provider cannot be reached to check this token; retry shortly")]
    IdpUnavailable,
    /// A creation past one of `[policy]`'s quotas: the user has `count` live
    /// (or being created), `limit` allowed.
    #[error("you have {count} live {what}; the limit ({quota}) is {limit}")]
    QuotaExceeded {
        quota: &'static str,
        what: &'static str,
        count: u64,
        limit: u32,
    },
    /// A create body that breaks a `[policy]` rule.
    #[error("the cluster's policy does not allow {key}{} ({rule})", value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())]
    PolicyDenied {
        rule: &'static str,
        key: String,
        value: Option<String>,
    },
    /// `policy.max_creating` creations are in flight to Livy already.
    #[error("too many sessions and batches are being created right now; retry shortly")]
    CreationsBusy,
    /// A user asked for one token more than `tokens.max_per_user`.
    #[error("you hold {0} tokens, the most allowed; revoke one first")]
    TooManyTokens(usize),
    /// A state store (sessions, ownership, limits) failed: fail closed.
    #[error("the gateway's state store is unavailable; retry shortly")]
    StateUnavailable,
    #[error("request headers too large")]
    HeadersTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the Livy service is unreachable")]
    UpstreamUnavailable,
    #[error("the Livy service did not answer in time")]
    UpstreamTimeout,
    #[error("the Livy service failed to answer")]
    UpstreamFailed,
    /// The gateway could not authenticate itself to Livy (no ticket, a refused
    /// one, a failed mutual authentication); the log says what failed.
    #[error("the gateway could not authenticate to the Livy service")]
    UpstreamAuth,
    #[error("the Livy service's answer was too large")]
    UpstreamTooLarge,
    /// Plain HTTP sent to the TLS port (answered before any TLS, then closed).
    #[error("this port speaks HTTPS: use https:// URLs")]
    PlainHttp,
    /// A request body that sent nothing for `server.body_idle_timeout_secs`.
    #[error("the request body stalled; send it without pauses")]
    BodyTimeout,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for RequestError {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "state store failed; refusing the request");
        RequestError::StateUnavailable
    }
}

/// Where an error is counted in the metrics, besides `requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// `auth_total{outcome}`.
    Auth(&'static str),
    /// `rate_limited_total{kind}`.
    RateLimited(&'static str),
    /// `upstream_errors_total{kind}`.
    Upstream(&'static str),
    /// `unavailable_total{dependency}`.
    Unavailable(&'static str),
    /// `policy_refusals_total{kind}`: the rule or quota.
    Policy(&'static str),
    /// Nowhere else.
    Nowhere,
}

/// Methods the gateway forwards; anything else is answered 405.
pub const ALLOWED_METHODS: &str = "GET, POST, DELETE";

/// Seconds a client is asked to wait after a dependency failed.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

impl RequestError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            RequestError::BadPath(_)
            | RequestError::PlainHttp
            | RequestError::BadHeader(_)
            | RequestError::BadBody(_)
            | RequestError::BadQuery(_) => StatusCode::BAD_REQUEST,
            RequestError::NotFound | RequestError::Hidden(_) => StatusCode::NOT_FOUND,
            RequestError::Forbidden(_) | RequestError::CrossOrigin => StatusCode::FORBIDDEN,
            RequestError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestError::RateLimited { .. } | RequestError::LockedOut { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            RequestError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::UpstreamUnavailable
            | RequestError::UpstreamFailed
            | RequestError::UpstreamAuth
            | RequestError::UpstreamTooLarge
            | RequestError::UpstreamRedirect => StatusCode::BAD_GATEWAY,
            RequestError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            RequestError::LoginsBusy { .. }
            | RequestError::AuthUnavailable
            | RequestError::IdpUnavailable
            | RequestError::StateUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::TooManyTokens(_) => StatusCode::CONFLICT,
            RequestError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            RequestError::PolicyDenied { .. } => StatusCode::FORBIDDEN,
            RequestError::CreationsBusy => StatusCode::SERVICE_UNAVAILABLE,
            RequestError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            RequestError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code for the JSON body and the logs.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Unauthenticated(_) => "unauthorized",
            RequestError::BadPath(_) => "bad_path",
            RequestError::BadHeader(_) => "bad_header",
            RequestError::NotFound | RequestError::Hidden(_) => "not_found",
            RequestError::Forbidden(_) => "forbidden",
            RequestError::CrossOrigin => "cross_origin",
            RequestError::UpstreamRedirect => "upstream_redirect",
            RequestError::BadBody(_) => "bad_body",
            RequestError::BadQuery(_) => "bad_query",
            RequestError::PayloadTooLarge => "payload_too_large",
            RequestError::UnsupportedMediaType(_) => "unsupported_media_type",
            RequestError::RateLimited { .. } => "rate_limited",
            RequestError::LockedOut { .. } => "locked_out",
            RequestError::LoginsBusy { .. } => "logins_busy",
            RequestError::AuthUnavailable => "auth_unavailable",
            RequestError::IdpUnavailable => "idp_unavailable",
            RequestError::TooManyTokens(_) => "too_many_tokens",
            RequestError::QuotaExceeded { .. } => "quota_exceeded",
            RequestError::PolicyDenied { .. } => "policy_denied",
            RequestError::CreationsBusy => "creations_busy",
            RequestError::StateUnavailable => "state_unavailable",
            RequestError::HeadersTooLarge => "headers_too_large",
            RequestError::UpstreamTooLarge => "upstream_response_too_large",
            RequestError::MethodNotAllowed => "method_not_allowed",
            RequestError::UpstreamUnavailable => "upstream_unavailable",
            RequestError::UpstreamTimeout => "upstream_timeout",
            RequestError::UpstreamFailed => "upstream_failed",
            RequestError::UpstreamAuth => "upstream_auth_failed",
            RequestError::PlainHttp => "plain_http",
            RequestError::BodyTimeout => "request_timeout",
            RequestError::Internal => "internal",
        }
    }

    /// Whether the gateway refused the request (`denied` in the audit log) rather
    /// than failed to serve it (`error`).
    pub fn is_denial(&self) -> bool {
        match self {
            RequestError::UpstreamUnavailable
            | RequestError::UpstreamTimeout
            | RequestError::UpstreamFailed
            | RequestError::UpstreamAuth
            | RequestError::UpstreamTooLarge
            | RequestError::UpstreamRedirect
            | RequestError::LoginsBusy { .. }
            | RequestError::AuthUnavailable
            | RequestError::IdpUnavailable
            | RequestError::StateUnavailable
            | RequestError::CreationsBusy
            | RequestError::Internal => false,
            RequestError::Unauthenticated(_)
            | RequestError::BadPath(_)
            | RequestError::BadHeader(_)
            | RequestError::NotFound
            | RequestError::Hidden(_)
            | RequestError::Forbidden(_)
            | RequestError::CrossOrigin
            | RequestError::BadBody(_)
            | RequestError::BadQuery(_)
            | RequestError::PayloadTooLarge
            | RequestError::UnsupportedMediaType(_)
            | RequestError::RateLimited { .. }
            | RequestError::LockedOut { .. }
            | RequestError::HeadersTooLarge
            | RequestError::MethodNotAllowed
            | RequestError::PlainHttp
            | RequestError::TooManyTokens(_)
            | RequestError::QuotaExceeded { .. }
            | RequestError::PolicyDenied { .. }
            | RequestError::BodyTimeout => true,
        }
    }

    /// Where this error is counted in the metrics.
    pub fn counted(&self) -> Counted {
        match self {
            RequestError::Unauthenticated(failure) => Counted::Auth(failure.as_str()),
            RequestError::LockedOut { .. } => Counted::Auth("locked_out"),
            RequestError::LoginsBusy { .. } => Counted::Auth("busy"),
            RequestError::AuthUnavailable => Counted::Unavailable("auth"),
            RequestError::IdpUnavailable => Counted::Unavailable("idp"),
            RequestError::StateUnavailable => Counted::Unavailable("state"),
            RequestError::RateLimited { limit, .. } => Counted::RateLimited(limit.as_str()),
            RequestError::UpstreamUnavailable => Counted::Upstream("unavailable"),
            RequestError::UpstreamTimeout => Counted::Upstream("timeout"),
            RequestError::UpstreamFailed => Counted::Upstream("failed"),
            RequestError::UpstreamAuth => Counted::Upstream("auth"),
            RequestError::UpstreamTooLarge => Counted::Upstream("too_large"),
            RequestError::UpstreamRedirect => Counted::Upstream("redirect"),
            RequestError::QuotaExceeded { quota, .. } => Counted::Policy(quota),
            RequestError::PolicyDenied { rule, .. } => Counted::Policy(rule),
            RequestError::CreationsBusy => Counted::Policy("max_creating"),
            RequestError::BadPath(_)
            | RequestError::BadHeader(_)
            | RequestError::NotFound
            | RequestError::Hidden(_)
            | RequestError::Forbidden(_)
            | RequestError::CrossOrigin
            | RequestError::BadBody(_)
            | RequestError::BadQuery(_)
            | RequestError::PayloadTooLarge
            | RequestError::UnsupportedMediaType(_)
            | RequestError::HeadersTooLarge
            | RequestError::MethodNotAllowed
            | RequestError::PlainHttp
            | RequestError::BodyTimeout
            | RequestError::TooManyTokens(_)
            | RequestError::Internal => Counted::Nowhere,
        }
    }

    /// The audit line's `reason`: `<code>: <detail>`. Details never carry secrets;
    /// a hidden resource is not told apart from a missing one.
    pub fn audit_reason(&self) -> String {
        let detail = match self {
            RequestError::Unauthenticated(failure) => failure.as_str().to_string(),
            RequestError::Hidden(_) => "not the caller's resource, or none such".into(),
            other => other.to_string(),
        };
        format!("{}: {detail}", self.code())
    }

    /// The `Retry-After` seconds this error's answer carries, if any.
    fn retry_after(&self) -> Option<u64> {
        match self {
            RequestError::RateLimited {
                retry_after_secs, ..
            }
            | RequestError::LockedOut { retry_after_secs }
            | RequestError::LoginsBusy { retry_after_secs } => Some(*retry_after_secs),
            RequestError::AuthUnavailable
            | RequestError::IdpUnavailable
            | RequestError::StateUnavailable
            | RequestError::CreationsBusy => Some(UNAVAILABLE_RETRY_SECS),
            _ => None,
        }
    }

    /// The JSON body of this error's response.
    fn body(&self) -> serde_json::Value {
        match self {
            // Exactly Livy's body for a missing id.
            RequestError::Hidden(_) => serde_json::json!({ "msg": self.to_string() }),
            RequestError::QuotaExceeded {
                quota,
                count,
                limit,
                ..
            } => serde_json::json!({
                "error": self.code(),
                "msg": self.to_string(),
                "quota": quota,
                "count": count,
                "limit": limit,
            }),
            RequestError::PolicyDenied { rule, key, value } => serde_json::json!({
                "error": self.code(),
                "msg": self.to_string(),
                "rule": rule,
                "key": key,
                "value": value,
            }),
            _ => serde_json::json!({ "error": self.code(), "msg": self.to_string() }),
        }
    }

    /// The whole HTTP/1.1 response for this error, as bytes, for answers written
    /// below HTTP (a connection that is closed after it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let status = self.status();
        let body = self.body().to_string();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            JSON_CONTENT_TYPE.to_str().unwrap_or("application/json"),
            body.len()
        )
        .into_bytes()
    }

    /// The response for this error. `challenges` are the `WWW-Authenticate` values
    /// sent with a 401, one header each.
    pub fn to_response(&self, challenges: &[HeaderValue]) -> Response<Body> {
        let mut response = json_response(self.status(), &self.body());
        let headers = response.headers_mut();
        match self {
            RequestError::Unauthenticated(AuthFailure::InvalidToken) => {
                // RFC 6750 §3.1: the Bearer challenge says what was wrong; the
                // other schemes are still offered.
                headers.append(WWW_AUTHENTICATE, INVALID_TOKEN_CHALLENGE);
                for challenge in challenges {
                    if !challenge.as_bytes().starts_with(b"Bearer") {
                        headers.append(WWW_AUTHENTICATE, challenge.clone());
                    }
                }
            }
            RequestError::Unauthenticated(_) => {
                for challenge in challenges {
                    headers.append(WWW_AUTHENTICATE, challenge.clone());
                }
            }
            RequestError::MethodNotAllowed => {
                headers.insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The challenge a refused bearer token is answered with.
pub const INVALID_TOKEN_CHALLENGE: HeaderValue =
    HeaderValue::from_static("Bearer error=\"invalid_token\"");

/// `application/json` content type as Livy sends it.
pub const JSON_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("application/json;charset=utf-8");

/// A response with a JSON body.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(body::full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, JSON_CONTENT_TYPE);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_client_or_gateway_status() {
        let challenge = HeaderValue::from_static("BASIC realm=\"application\"");
        let cases = [
            (RequestError::Unauthenticated(AuthFailure::Missing), 401),
            (RequestError::BadPath("dot segment"), 400),
            (RequestError::BadHeader("two hosts"), 400),
            (RequestError::NotFound, 404),
            (RequestError::Hidden("7".into()), 404),
            (RequestError::Forbidden("no".into()), 403),
            (RequestError::CrossOrigin, 403),
            (RequestError::UpstreamRedirect, 502),
            (RequestError::BadBody("no".into()), 400),
            (RequestError::BadQuery("no".into()), 400),
            (RequestError::PayloadTooLarge, 413),
            (RequestError::UnsupportedMediaType("form"), 415),
            (RequestError::UpstreamTooLarge, 502),
            (
                RequestError::RateLimited {
                    limit: Limit::User,
                    retry_after_secs: 3,
                },
                429,
            ),
            (
                RequestError::LockedOut {
                    retry_after_secs: 60,
                },
                429,
            ),
            (RequestError::HeadersTooLarge, 431),
            (
                RequestError::LoginsBusy {
                    retry_after_secs: 1,
                },
                503,
            ),
            (RequestError::MethodNotAllowed, 405),
            (RequestError::UpstreamUnavailable, 502),
            (RequestError::UpstreamFailed, 502),
            (RequestError::UpstreamAuth, 502),
            (RequestError::UpstreamTimeout, 504),
            (RequestError::PlainHttp, 400),
            (RequestError::AuthUnavailable, 503),
            (RequestError::IdpUnavailable, 503),
            (RequestError::TooManyTokens(10), 409),
            (
                RequestError::Unauthenticated(AuthFailure::InvalidToken),
                401,
            ),
            (RequestError::StateUnavailable, 503),
            (RequestError::BodyTimeout, 408),
            (RequestError::Internal, 500),
        ];
        for (error, status) in cases {
            let response = error.to_response(std::slice::from_ref(&challenge));
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers()[CONTENT_TYPE], JSON_CONTENT_TYPE);
            assert_eq!(
                response.headers().contains_key(WWW_AUTHENTICATE),
                status == 401
            );
            assert_eq!(
                response.headers().contains_key(RETRY_AFTER),
                status == 429 || status == 503
            );
        }
    }

    #[tokio::test]
    async fn a_hidden_resource_looks_like_a_missing_one_in_livy() {
        use http_body_util::BodyExt;
        let challenge = HeaderValue::from_static("BASIC realm=\"application\"");
        let response =
            RequestError::Hidden("7".into()).to_response(std::slice::from_ref(&challenge));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"msg":"Session '7' not found."}"#);
    }
}
