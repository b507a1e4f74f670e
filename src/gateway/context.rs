//! What the pipeline knows about a request as it goes: the connection it came on
//! ([`ConnInfo`]), its id ([`RequestId`]), and everything the phases learn on the
//! way ([`RequestContext`]) for the answer, the access log and the audit log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use super::headers::X_REQUEST_ID;
use crate::auth::Identity;
use crate::body::BodyTrouble;
use crate::error::{AuthFailure, RequestError};
use crate::state::Prefetched;

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

/// Everything a request learns on its way through the phases.
#[derive(Debug, Default)]
pub(crate) struct RequestContext {
    pub request_id: RequestId,
    pub user: Option<Arc<str>>,
    /// What granted the caller's roles, for the audit log.
    pub grants: Option<String>,
    /// The token that proved the caller (its id), for the audit log.
    pub token: Option<Arc<str>>,
    /// Who Livy is told the request runs as.
    pub effective_user: Option<String>,
    /// A fresh login without a matching session: one is started for it once the
    /// request is let through the rate limits.
    pub login: Option<Identity>,
    /// The session started for this request: its id goes back in `Set-Cookie`.
    pub new_session: Option<String>,
    /// How the caller was identified: `password`, `cached`, `negotiate`, `jwt`,
    /// `token` or `session`.
    pub auth_method: Option<&'static str>,
    /// A Negotiate login's mutual-authentication token, for `WWW-Authenticate`.
    pub negotiate_reply: Option<HeaderValue>,
    /// Whether the request carried the gateway's session cookie (live or not).
    pub session_cookie: bool,
    pub auth_failure: Option<AuthFailure>,
    pub action: Option<&'static str>,
    /// The batch or session id the request names.
    pub resource: Option<String>,
    /// The ownership record the path names, fetched with the session.
    pub prefetched: Option<Prefetched>,
    pub upstream_status: Option<u16>,
    pub upstream_time: Option<Duration>,
    /// Identity parameters a client tried to pass, removed.
    pub removed_params: Vec<String>,
    /// What went wrong with the request body, if it had one.
    pub body_trouble: Option<Arc<BodyTrouble>>,
    pub error: Option<RequestError>,
    /// A creation's place under its quota, until settled.
    pub reservation: Option<crate::state::quotas::Ticket>,
    /// What the create policy changed (for the audit line).
    pub policy_note: Option<String>,
    /// A page route of a web UI (YARN, the history server, Livy's UI): its name
    /// and its home under the topology, for the page a navigation's error gets.
    pub page_service: Option<(&'static str, &'static str)>,
}

impl RequestContext {
    pub fn new(headers: &HeaderMap) -> Self {
        Self {
            request_id: RequestId::of(headers),
            ..Self::default()
        }
    }
}

/// A request's id, as text for the logs and as the `X-Request-Id` value sent to Livy
/// and back to the client, made once.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(HeaderValue);

impl Default for RequestId {
    fn default() -> Self {
        Self(HeaderValue::from_static("-"))
    }
}

impl RequestId {
    /// The request's id: a valid incoming `X-Request-Id` (1–128 letters, digits or
    /// `-_.:`), or a new random one.
    pub fn of(headers: &HeaderMap) -> Self {
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
        // where every new id would be compared with all the earlier ones still held.
        id.set_sensitive(true);
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever put in.
        self.0.to_str().unwrap_or("-")
    }

    pub fn header(&self) -> HeaderValue {
        self.0.clone()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 16 random hex digits.
fn random_id() -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u64>();
    std::array::from_fn(|i| HEX[(n >> (60 - 4 * i)) as usize & 0xf])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123.x:y"));
        assert_eq!(RequestId::of(&h).as_str(), "abc-123.x:y");
        h.insert(X_REQUEST_ID, HeaderValue::from_static("has space"));
        let random = RequestId::of(&h);
        assert_eq!(random.as_str().len(), 16);
        assert!(random.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(RequestId::of(&HeaderMap::new()).as_str(), random.as_str());
    }

    #[test]
    fn request_ids_stay_out_of_http2_header_compression() {
        let mut h = HeaderMap::new();
        assert!(RequestId::of(&h).header().is_sensitive());
        h.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert!(RequestId::of(&h).header().is_sensitive());
    }
}
