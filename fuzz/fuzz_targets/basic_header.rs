//! `Authorization` values as a client can send them: parsing never panics, what
//! it accepts as Basic is a usable user name, a token is never empty and never
//! holds a blank, and nothing accepted is over its scheme's size bound.
#![no_main]

use http::{header::AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use livy_gateway::auth::header::{self, Accepts, Presented};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let every = Accepts {
        negotiate: true,
        tokens: true,
    };
    match header::parse(&headers, every) {
        Ok(Some(Presented::Basic(credentials))) => {
            assert!(!credentials.user.is_empty());
            assert!(!credentials.user.contains(':'));
            assert!(!credentials.user.chars().any(char::is_control));
            assert!(data.len() <= header::MAX_BASIC_LEN);
        }
        Ok(Some(Presented::Negotiate(token))) => {
            assert!(!token.is_empty());
            assert!(data.len() <= header::MAX_NEGOTIATE_LEN);
        }
        Ok(Some(Presented::Token { token, .. })) => {
            assert!(!token.0.is_empty());
            assert!(!token.0.contains(' '));
            assert!(data.len() <= header::MAX_TOKEN_LEN);
        }
        _ => {}
    }
});
