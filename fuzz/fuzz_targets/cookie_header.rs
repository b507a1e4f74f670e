//! `Cookie` values as a client can send them: only ids shaped like the gateway's
//! are looked up, and the gateway's own cookie never survives the strip that keeps
//! it from Livy.
#![no_main]

use http::{header::COOKIE, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use livy_gateway::session;

const NAME: &str = "JSESSIONID";

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for part in data.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(COOKIE, value);
        }
    }
    for id in session::session_ids(&headers, NAME) {
        assert_eq!(id.len(), session::SESSION_ID_LEN);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(session::carries_cookie(&headers, NAME));
    }
    if let Some(rest) = session::strip_cookie(&headers, NAME) {
        let mut stripped = HeaderMap::new();
        stripped.insert(COOKIE, rest);
        assert!(!session::carries_cookie(&stripped, NAME));
    }
});
