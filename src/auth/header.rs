//! What a request's `Authorization` header presents: Basic credentials, or (with
//! `[auth.kerberos]`) a SPNEGO token.
//!
//! Strict on purpose: exactly one `Authorization` header, a known scheme in any
//! case, and a bounded size per scheme. Anything else is
//! [`AuthFailure::Malformed`], answered 401 like a wrong password.

use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::basic::{self, Credentials};
use crate::error::AuthFailure;

/// Longest Basic `Authorization` value accepted; real credentials are far shorter.
pub const MAX_BASIC_LEN: usize = 4096;

/// Longest Negotiate `Authorization` value accepted: Active Directory's largest
/// ticket (its `MaxTokenSize`, 48,000 bytes) in base64, with room to spare.
/// (`server.max_header_bytes` bounds every header block first; tickets of users
/// in many groups need it raised.)
pub const MAX_NEGOTIATE_LEN: usize = 65_536;

/// What the header presents.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    Basic(Credentials),
    /// A SPNEGO (or raw Kerberos 5) token, decoded.
    Negotiate(Vec<u8>),
}

/// The request's credentials: `Ok(None)` when there is no `Authorization` header
/// at all. `negotiate`: whether Negotiate tokens are accepted here.
pub fn parse(headers: &HeaderMap, negotiate: bool) -> Result<Option<Presented>, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.len() > MAX_BASIC_LEN.max(MAX_NEGOTIATE_LEN) {
        return Err(AuthFailure::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    if scheme.eq_ignore_ascii_case("basic") && value.len() <= MAX_BASIC_LEN {
        return basic::decode(encoded).map(|c| Some(Presented::Basic(c)));
    }
    if negotiate && scheme.eq_ignore_ascii_case("negotiate") && value.len() <= MAX_NEGOTIATE_LEN {
        let token = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthFailure::Malformed)?;
        if token.is_empty() {
            return Err(AuthFailure::Malformed);
        }
        return Ok(Some(Presented::Negotiate(token)));
    }
    Err(AuthFailure::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_in_any_case() {
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let h = with(format!("{scheme} {}", b64(b"alice:pa:ss")).as_bytes());
            match parse(&h, false).unwrap().unwrap() {
                Presented::Basic(c) => assert_eq!((&*c.user, &*c.password), ("alice", "pa:ss")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(parse(&HeaderMap::new(), true), Ok(None));
    }

    #[test]
    fn negotiate_only_where_it_is_accepted() {
        let h = with(format!("Negotiate {}", b64(b"\x60\x01token")).as_bytes());
        assert_eq!(
            parse(&h, true),
            Ok(Some(Presented::Negotiate(b"\x60\x01token".to_vec())))
        );
        assert_eq!(parse(&h, false), Err(AuthFailure::Malformed));
        let lower = with(format!("negotiate {}", b64(b"t")).as_bytes());
        assert!(matches!(
            parse(&lower, true),
            Ok(Some(Presented::Negotiate(_)))
        ));
    }

    #[test]
    fn every_malformed_form_is_rejected() {
        let long_basic = format!("Basic {}", "A".repeat(MAX_BASIC_LEN));
        let long_negotiate = format!("Negotiate {}", "A".repeat(MAX_NEGOTIATE_LEN));
        let cases: Vec<Vec<u8>> = vec![
            format!("Bearer {}", b64(b"alice:pw")).into_bytes(),
            format!("Digest {}", b64(b"alice:pw")).into_bytes(),
            b"Basic".to_vec(),
            b"Basic !!!notbase64!!!".to_vec(),
            format!("Basic {}", b64(b"no-colon")).into_bytes(),
            format!("Basic {}", b64(b":pw")).into_bytes(),
            long_basic.into_bytes(),
            b"Basic \xe9t\xe9".to_vec(),
            b"Negotiate".to_vec(),
            b"Negotiate ".to_vec(),
            b"Negotiate =".to_vec(),
            b"Negotiate !!!".to_vec(),
            long_negotiate.into_bytes(),
        ];
        for value in cases {
            assert_eq!(
                parse(&with(&value), true),
                Err(AuthFailure::Malformed),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
        let mut two = with(format!("Basic {}", b64(b"a:b")).as_bytes());
        two.append(AUTHORIZATION, HeaderValue::from_static("Basic Yzpk"));
        assert_eq!(parse(&two, false), Err(AuthFailure::Malformed));
    }
}
