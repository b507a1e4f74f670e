//! Phase 1 (limit), the origin check: a state-changing request that a browser sent
//! on behalf of another page is refused before any credential it carries is
//! looked at.
//!
//! A browser re-sends a cached Basic login and the session cookie on its own,
//! including on a form another page submits (a `text/plain` or
//! `multipart/form-data` POST needs no CORS preflight), and a page sandboxed by
//! the gateway posts with `Origin: null`. So a POST or DELETE (any method but
//! `GET`, `HEAD` and `OPTIONS`) is refused 403 `cross_origin` when:
//! - it carries an `Origin` that is not the gateway's own (`null` included, and
//!   more than one `Origin`), or
//! - its `Sec-Fetch-Site` is `cross-site`, or `same-site` without the gateway's
//!   own `Origin` (another host of the same site).
//!
//! The gateway's own origin is `https://` and the host the client reached it
//! under: `server.public_host` when set, else the TLS server name (or address)
//! of the connection, or the request's own `Host` (`:authority`), which a
//! browser always sets to the origin it sends to and a page cannot change.
//! Clients that send neither header (curl, pylivy, sparkmagic, Airflow, dbt)
//! are not affected.

use http::header::{HeaderName, HOST, ORIGIN};
use http::{HeaderMap, Method, Uri};

use super::context::ConnInfo;
use super::Gateway;
use crate::error::RequestError;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

impl Gateway {
    /// Refuses a state-changing request a browser sent for another origin.
    pub(super) fn check_origin(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        conn: &ConnInfo,
    ) -> Result<(), RequestError> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let mut origins = headers.get_all(ORIGIN).iter();
        let origin = origins.next();
        if origins.next().is_some() {
            return Err(RequestError::CrossOrigin);
        }
        let own = |origin: &[u8]| {
            let Some(host) = strip_scheme(origin) else {
                return false;
            };
            let configured = self.settings.public_host.as_ref().unwrap_or(&conn.host);
            let requested = uri
                .authority()
                .map(|a| a.as_str().as_bytes())
                .or_else(|| headers.get(HOST).map(|h| h.as_bytes()));
            [Some(configured.as_bytes()), requested]
                .into_iter()
                .flatten()
                .any(|candidate| same_host(host, candidate))
        };
        let own_origin = match origin {
            Some(origin) if !own(origin.as_bytes()) => return Err(RequestError::CrossOrigin),
            Some(_) => true,
            None => false,
        };
        match headers.get(SEC_FETCH_SITE).map(|v| v.as_bytes()) {
            Some(site) if site.eq_ignore_ascii_case(b"cross-site") => {
                Err(RequestError::CrossOrigin)
            }
            Some(site) if site.eq_ignore_ascii_case(b"same-site") && !own_origin => {
                Err(RequestError::CrossOrigin)
            }
            _ => Ok(()),
        }
    }
}

/// The `host[:port]` of an `https://` origin; `None` for any other scheme (the
/// gateway serves only https) and for `null`.
fn strip_scheme(origin: &[u8]) -> Option<&[u8]> {
    let scheme = b"https://";
    let head = origin.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &origin[scheme.len()..])
}

/// Whether two `host[:port]`s name the same place: hosts without regard to case,
/// and `:443` the same as no port.
fn same_host(a: &[u8], b: &[u8]) -> bool {
    let trim = |h: &[u8]| -> Vec<u8> {
        let h = h.strip_suffix(b":443").unwrap_or(h);
        h.to_ascii_lowercase()
    };
    !a.is_empty() && trim(a) == trim(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_as_hosts() {
        assert_eq!(strip_scheme(b"https://gw:8443"), Some(&b"gw:8443"[..]));
        assert_eq!(strip_scheme(b"HTTPS://gw"), Some(&b"gw"[..]));
        assert_eq!(strip_scheme(b"http://gw:8443"), None);
        assert_eq!(strip_scheme(b"null"), None);
        assert!(same_host(b"GW.example:8443", b"gw.example:8443"));
        assert!(same_host(b"gw.example", b"gw.example:443"));
        assert!(!same_host(b"gw.example:8443", b"gw.example:9443"));
        assert!(!same_host(b"gw.example.evil:8443", b"gw.example:8443"));
        assert!(!same_host(b"", b""));
    }
}
