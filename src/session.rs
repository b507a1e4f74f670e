//! The session cookie (`JSESSIONID` by default) that stands in for credentials after
//! a successful login: minting ids, reading them from requests, keeping the
//! gateway's own cookie from Livy, and the `Set-Cookie` value.
//!
//! Session ids are 256 random bits, URL-safe base64, minted only by the gateway: an
//! id a client makes up is never adopted, it simply finds nothing. Where sessions
//! live is the `state::SessionStore`'s concern.

use base64::Engine;
use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;
use rand::RngCore;

/// Length of a session id: 32 bytes in unpadded URL-safe base64.
pub const SESSION_ID_LEN: usize = 43;

/// A fresh session id: 256 bits from the OS-seeded CSPRNG.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the shape of an id this gateway mints.
fn is_well_formed_id(value: &str) -> bool {
    value.len() == SESSION_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The values of every cookie named `name` in the request, in order, keeping only
/// those shaped like our ids.
pub fn session_ids<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v.trim_matches('"'))
        })
        .filter(|v| is_well_formed_id(v))
}

/// Whether the request carries a cookie named `name` at all (well-formed or not).
pub fn carries_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().split_once('=').is_some_and(|(n, _)| n == name))
}

/// The `Cookie` header value without the cookie named `name`; `None` when nothing
/// else is left. Used so the gateway's session cookie never reaches Livy.
pub fn strip_cookie(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let mut values = headers.get_all(COOKIE).iter();
    if let (Some(only), None) = (values.next(), values.next()) {
        // The usual case, said without parsing: the one cookie is the gateway's own.
        let only = only.as_bytes();
        if only.len() > name.len()
            && only.starts_with(name.as_bytes())
            && only[name.len()] == b'='
            && !only.contains(&b';')
        {
            return None;
        }
    }
    let mut kept = String::new();
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim);
    for pair in pairs {
        if pair.is_empty() || pair.split_once('=').map_or(pair, |(n, _)| n) == name {
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept).ok()
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie_value(name: &str, id: &str, path: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={id}; Path={path}; Secure; HttpOnly; SameSite=Strict"
    ))
    .expect("cookie name, id and path are validated tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_well_formed() {
        let a = new_session_id();
        assert_eq!(a.len(), SESSION_ID_LEN);
        assert!(is_well_formed_id(&a));
        assert_ne!(a, new_session_id());
    }

    #[test]
    fn cookie_parsing_and_stripping() {
        let id = new_session_id();
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("a=1; JSESSIONID={id}; b=2")).unwrap(),
        );
        h.append(COOKIE, HeaderValue::from_static("JSESSIONID=forged"));
        assert_eq!(
            session_ids(&h, "JSESSIONID").collect::<Vec<_>>(),
            vec![id.as_str()]
        );
        assert_eq!(strip_cookie(&h, "JSESSIONID").unwrap(), "a=1; b=2");
        assert!(carries_cookie(&h, "JSESSIONID"));
        assert!(!carries_cookie(&h, "JSESSION"));
        let mut only = HeaderMap::new();
        only.insert(
            COOKIE,
            HeaderValue::from_str(&format!("JSESSIONID={id}")).unwrap(),
        );
        assert_eq!(strip_cookie(&only, "JSESSIONID"), None);
        // One header that merely starts like the session cookie keeps its cookies.
        for (value, kept) in [
            ("JSESSIONIDX=1", Some("JSESSIONIDX=1")),
            ("JSESSIONID=a;b=2", Some("b=2")),
            ("JSESSIONID=a; JSESSIONID_OLD=b", Some("JSESSIONID_OLD=b")),
            ("JSESSIONID", None),
        ] {
            only.insert(COOKIE, HeaderValue::from_static(value));
            assert_eq!(
                strip_cookie(&only, "JSESSIONID"),
                kept.map(HeaderValue::from_static),
                "{value}"
            );
        }
    }
}
