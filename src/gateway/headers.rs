//! Header rules for both directions of the proxy.
//!
//! Going up: hop-by-hop headers, `Host`, credentials, the gateway's own session
//! cookie, method-override headers (Livy's framework would honour them) and identity
//! headers a client might forge are removed; `X-Forwarded-*` are set by the gateway
//! (client-sent values for them are replaced, except `X-Forwarded-For`, which is
//! appended to). Coming back:
//! hop-by-hop headers, `Set-Cookie`, `WWW-Authenticate` and the headers naming Livy's
//! server software (`Server`, `X-Powered-By`: they tell an attacker which Jetty
//! parsing quirks apply) are removed, `Location` is turned into a gateway URL (a
//! `Location` that names no place on the gateway ends the request 502
//! `upstream_redirect`: it would name an internal host, or another site on the
//! gateway's origin), and the gateway's security headers are added. Pages from
//! the cluster's web UIs keep only an allowlist of headers
//! ([`keep_page_headers`]): whatever else an application sends would act on the
//! gateway's origin (`Clear-Site-Data`, CORS, `Service-Worker-Allowed`, `Refresh`,
//! `Link`).

use http::header::{
    HeaderName, HeaderValue, ACCEPT_RANGES, AUTHORIZATION, CACHE_CONTROL, CONNECTION,
    CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, COOKIE, DATE,
    ETAG, EXPIRES, FORWARDED, HOST, LAST_MODIFIED, LOCATION, PRAGMA, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, SERVER, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VARY,
    WWW_AUTHENTICATE,
};
use http::HeaderMap;
use smallvec::SmallVec;

use crate::error::RequestError;
use crate::session;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub const X_FORWARDED_CONTEXT: HeaderName = HeaderName::from_static("x-forwarded-context");
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const HTTPS: HeaderValue = HeaderValue::from_static("https");

/// Request headers replaced or never passed on: the client's host and credentials
/// (the session cookie is put back without the gateway's own), and what the gateway
/// sets itself.
static NOT_UPSTREAM: [HeaderName; 5] = [HOST, AUTHORIZATION, FORWARDED, COOKIE, X_FORWARDED_HOST];

/// Headers that would make Livy's framework route a POST as another method.
static METHOD_OVERRIDE: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers some services take as an already-authenticated user; never from a client.
static IDENTITY: [&str; 12] = [
    "remote-user",
    "x-remote-user",
    "x-forwarded-user",
    "x-forwarded-preferred-username",
    "x-forwarded-email",
    "x-authenticated-user",
    "x-auth-request-user",
    "x-auth-user",
    "x-user",
    "x-webauth-user",
    "x-proxy-user",
    "x-doas",
];

/// Hop-by-hop headers, never forwarded in either direction.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHORIZATION,
    PROXY_AUTHENTICATE,
];

/// Removes, in one pass over the message's (few) headers, the hop-by-hop ones (the
/// fixed set and any named in `Connection`) and those `also` picks out.
fn strip(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let listed = |name: &HeaderName| {
        headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str()))
    };
    let has_connection = headers.contains_key(CONNECTION);
    // Inline room for the usual few (Host, Cookie, Authorization, …): no allocation.
    let doomed: SmallVec<[HeaderName; 8]> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name) || also(name) || (has_connection && listed(name)))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// What the gateway tells Livy about the original request.
pub struct Forwarded<'a> {
    /// The client's address as text.
    pub client: &'a HeaderValue,
    /// The host the client reached the gateway under (never a client's `Host`).
    pub host: &'a HeaderValue,
    /// Port of the gateway's listener the request came in on.
    pub port: &'a HeaderValue,
    /// `/gateway/<topology>/livy`.
    pub context: &'a HeaderValue,
    /// Name of the gateway's session cookie, which must not reach Livy.
    pub cookie_name: &'a str,
}

/// Rewrites request headers for the trip to Livy.
pub fn to_upstream(headers: &mut HeaderMap, fwd: Forwarded<'_>) {
    let cookie = session::strip_cookie(headers, fwd.cookie_name);
    strip(headers, |name| {
        NOT_UPSTREAM.contains(name)
            || METHOD_OVERRIDE.contains(&name.as_str())
            || IDENTITY.contains(&name.as_str())
    });
    if let Some(rest) = cookie {
        headers.insert(COOKIE, rest);
    }

    let mut chain = String::new();
    for prior in headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        chain.push_str(prior);
        chain.push_str(", ");
    }
    let value = if chain.is_empty() {
        Some(fwd.client.clone())
    } else {
        chain.push_str(fwd.client.to_str().unwrap_or_default());
        HeaderValue::from_str(&chain).ok()
    };
    if let Some(value) = value {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HTTPS);
    headers.insert(X_FORWARDED_HOST, fwd.host.clone());
    headers.insert(X_FORWARDED_PORT, fwd.port.clone());
    headers.insert(X_FORWARDED_CONTEXT, fwd.context.clone());
}

/// Rewrites Livy's response headers for the client. `public_prefix` is where Livy's
/// root appears on the gateway (`/gateway/<topology>/livy/v1`); `upstream_origins`
/// are Livy's own `http://host:port` origins, stripped from absolute `Location`s.
/// A `Location` elsewhere is an error: it is never passed on.
pub fn from_upstream(
    headers: &mut HeaderMap,
    public_prefix: &str,
    upstream_origins: &[String],
) -> Result<(), RequestError> {
    strip_from_upstream(headers);
    if let Some(location) = headers.get(LOCATION) {
        let rewritten = location
            .to_str()
            .ok()
            .and_then(|l| rewrite_location(l, public_prefix, upstream_origins))
            .ok_or(RequestError::UpstreamRedirect)?;
        headers.insert(LOCATION, rewritten);
    }
    Ok(())
}

/// The response headers of a page from the cluster's web UIs that reach the
/// client: what describes the content and its caching, and `Location` (rewritten
/// by the caller). Everything else is removed.
static PAGE_HEADERS: [HeaderName; 14] = [
    CONTENT_TYPE,
    CONTENT_LENGTH,
    CONTENT_ENCODING,
    CONTENT_LANGUAGE,
    CACHE_CONTROL,
    EXPIRES,
    PRAGMA,
    ETAG,
    LAST_MODIFIED,
    VARY,
    DATE,
    ACCEPT_RANGES,
    CONTENT_RANGE,
    LOCATION,
];

/// Keeps only [`PAGE_HEADERS`] of an answer from a web UI of the cluster.
pub fn keep_page_headers(headers: &mut HeaderMap) {
    strip_from_upstream(headers);
    let doomed: SmallVec<[HeaderName; 8]> = headers
        .keys()
        .filter(|name| !PAGE_HEADERS.contains(name))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Whether `location` is a relative reference that stays on the server it came
/// from: a path without a scheme or an authority (`jobs/`, `../x`), and nothing a
/// browser would read otherwise (a backslash, which it takes for `/`, or a control
/// character, which it drops).
pub fn is_relative_path(location: &str) -> bool {
    let head = location.split(['/', '?', '#']).next().unwrap_or_default();
    !location.is_empty()
        && !location.starts_with('/')
        && !head.contains(':')
        && !location.bytes().any(|b| b == b'\\' || b.is_ascii_control())
}

/// Removes what an upstream's answer must not pass on: hop-by-hop headers, its
/// cookies and challenges (the gateway has its own), and what names its software.
pub fn strip_from_upstream(headers: &mut HeaderMap) {
    strip(headers, |name| {
        name == SET_COOKIE || name == WWW_AUTHENTICATE || name == SERVER || name == X_POWERED_BY
    });
}

/// `/batches/34` → `<public_prefix>/batches/34`; `http://livy:8998/batches/34` (one of
/// Livy's own origins) likewise; a relative reference stays as it is. Anything
/// else (another host, `//host`, `/\host`) is `None`.
fn rewrite_location(
    location: &str,
    public_prefix: &str,
    upstream_origins: &[String],
) -> Option<HeaderValue> {
    if location.bytes().any(|b| b == b'\\' || b.is_ascii_control()) {
        return None;
    }
    if is_relative_path(location) {
        return HeaderValue::from_str(location).ok();
    }
    let path = if location.starts_with('/') && !location.starts_with("//") {
        location
    } else {
        let rest = upstream_origins
            .iter()
            .find_map(|origin| location.strip_prefix(origin.as_str()))?;
        match rest {
            "" => "/",
            r if r.starts_with('/') => r,
            _ => return None,
        }
    };
    HeaderValue::from_str(&format!("{public_prefix}{path}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_lose_credentials_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("gw.example:8443"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic YTpi"));
        h.insert(CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert(COOKIE, HeaderValue::from_static("JSESSIONID=abc; other=1"));
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("evil.example"));
        h.insert(FORWARDED, HeaderValue::from_static("for=1.2.3.4"));
        h.insert("x-http-method-override", HeaderValue::from_static("DELETE"));
        h.insert("X-Forwarded-User", HeaderValue::from_static("admin"));
        h.insert("remote-user", HeaderValue::from_static("admin"));
        let port = HeaderValue::from_static("8443");
        let context = HeaderValue::from_static("/gateway/default/livy");
        to_upstream(
            &mut h,
            Forwarded {
                client: &HeaderValue::from_static("127.0.0.1"),
                host: &HeaderValue::from_static("gw.example:8443"),
                port: &port,
                context: &context,
                cookie_name: "JSESSIONID",
            },
        );
        for gone in [HOST, AUTHORIZATION, CONNECTION, TE, FORWARDED] {
            assert!(!h.contains_key(&gone), "{gone}");
        }
        assert!(!h.contains_key("x-secret"));
        for forged in ["x-http-method-override", "x-forwarded-user", "remote-user"] {
            assert!(!h.contains_key(forged), "{forged}");
        }
        assert_eq!(h[COOKIE], "other=1");
        assert_eq!(h[X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(h[X_FORWARDED_HOST], "gw.example:8443");
        assert_eq!(h[X_FORWARDED_PORT], "8443");
        assert_eq!(h[X_FORWARDED_CONTEXT], "/gateway/default/livy");
    }

    #[test]
    fn locations_become_gateway_urls() {
        let origins = vec!["http://127.0.0.1:8998".to_string()];
        let p = "/gateway/default/livy/v1";
        let r = |l| rewrite_location(l, p, &origins).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            r("/batches/34").as_deref(),
            Some("/gateway/default/livy/v1/batches/34")
        );
        assert_eq!(
            r("http://127.0.0.1:8998/sessions/2/statements/0").as_deref(),
            Some("/gateway/default/livy/v1/sessions/2/statements/0")
        );
        assert_eq!(r("http://127.0.0.1:89980/x"), None);
        assert_eq!(r("https://elsewhere/x"), None);
        assert_eq!(r("//elsewhere/x"), None);
        assert_eq!(r("/\\elsewhere/x"), None);
        assert_eq!(r("\\\\elsewhere/x"), None);
        assert_eq!(r("/\t/elsewhere/x"), None);
        assert_eq!(r("javascript:alert(1)"), None);
        assert_eq!(r("jobs/?id=1").as_deref(), Some("jobs/?id=1"));
        assert_eq!(r("../x:y").as_deref(), Some("../x:y"));
    }

    #[test]
    fn a_location_elsewhere_is_an_error_not_a_header() {
        let mut h = HeaderMap::new();
        h.insert(
            LOCATION,
            HeaderValue::from_static("http://10.0.0.7:8998/batches/1?doAs=alice"),
        );
        let origins = vec!["http://127.0.0.1:8998".to_string()];
        assert!(matches!(
            from_upstream(&mut h, "/p", &origins),
            Err(RequestError::UpstreamRedirect)
        ));
    }

    #[test]
    fn pages_keep_only_the_allowed_headers() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("content-type", "text/html"),
            ("cache-control", "no-cache"),
            ("etag", "\"1\""),
            ("location", "/proxy/x"),
            ("clear-site-data", "\"*\""),
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("service-worker-allowed", "/"),
            ("refresh", "0; url=https://evil.example/"),
            ("link", "<https://evil.example/x.js>; rel=preload"),
            ("x-frame-options", "ALLOWALL"),
            ("content-security-policy", "default-src *"),
            ("set-cookie", "x=1"),
        ] {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        keep_page_headers(&mut h);
        let mut kept: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["cache-control", "content-type", "etag", "location"]);
    }

    #[test]
    fn response_headers_lose_cookies_and_challenges() {
        let mut h = HeaderMap::new();
        h.insert(SET_COOKIE, HeaderValue::from_static("livy=1"));
        h.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(LOCATION, HeaderValue::from_static("/batches/1"));
        h.insert(SERVER, HeaderValue::from_static("Jetty(9.4.57.v20241219)"));
        h.insert(X_POWERED_BY, HeaderValue::from_static("Scalatra"));
        from_upstream(&mut h, "/gateway/default/livy/v1", &[]).unwrap();
        assert!(!h.contains_key(SERVER));
        assert!(!h.contains_key(X_POWERED_BY));
        assert!(!h.contains_key(SET_COOKIE));
        assert!(!h.contains_key(WWW_AUTHENTICATE));
        assert!(!h.contains_key(TRANSFER_ENCODING));
        assert_eq!(h[LOCATION], "/gateway/default/livy/v1/batches/1");
    }
}
