//! `Authorization` values as a client can send them: parsing never panics, and
//! what it accepts is a usable user name.
#![no_main]

use http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use livy_gateway::auth::basic;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    if let Ok(Some(credentials)) = basic::parse(&headers) {
        assert!(!credentials.user.is_empty());
        assert!(!credentials.user.contains(':'));
        assert!(!credentials.user.chars().any(char::is_control));
        assert!(data.len() <= basic::MAX_AUTHORIZATION_LEN);
    }
});
