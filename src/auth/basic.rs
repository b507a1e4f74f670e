//! Parsing HTTP Basic credentials from request headers.
//!
//! Strict on purpose: exactly one `Authorization` header, scheme `Basic` in any case,
//! standard base64 of UTF-8 `user:password`, a non-empty user, and a bounded size.
//! Anything else is [`AuthFailure::Malformed`]. The password is never printed: the
//! [`Credentials`] `Debug` impl hides it.

use base64::Engine;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::error::AuthFailure;

/// Longest `Authorization` value accepted; real Basic credentials are far shorter.
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// A user name and password taken from a request.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The request's Basic credentials: `Ok(None)` when there is no `Authorization`
/// header at all.
pub fn parse(headers: &HeaderMap) -> Result<Option<Credentials>, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthFailure::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_start())
        .map_err(|_| AuthFailure::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(AuthFailure::Malformed)?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(AuthFailure::Malformed);
    }
    Ok(Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    }))
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
    fn well_formed_basic_in_any_case() {
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let h = with(format!("{scheme} {}", b64(b"alice:pa:ss")).as_bytes());
            let c = parse(&h).unwrap().unwrap();
            assert_eq!(c.user, "alice");
            assert_eq!(c.password, "pa:ss");
        }
        assert_eq!(parse(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn every_malformed_form_is_rejected() {
        let long = format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_LEN));
        let cases: Vec<Vec<u8>> = vec![
            format!("Bearer {}", b64(b"alice:pw")).into_bytes(),
            format!("Digest {}", b64(b"alice:pw")).into_bytes(),
            b"Basic".to_vec(),
            b"Basic !!!notbase64!!!".to_vec(),
            format!("Basic {}", b64(b"no-colon")).into_bytes(),
            format!("Basic {}", b64(b":pw")).into_bytes(),
            format!("Basic {}", b64(b"\xff\xfe:pw")).into_bytes(),
            format!("Basic {}", b64(b"al\x01ice:pw")).into_bytes(),
            long.into_bytes(),
            b"Basic \xe9t\xe9".to_vec(),
        ];
        for value in cases {
            assert_eq!(
                parse(&with(&value)),
                Err(AuthFailure::Malformed),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
        let mut two = with(format!("Basic {}", b64(b"a:b")).as_bytes());
        two.append(AUTHORIZATION, HeaderValue::from_static("Basic Yzpk"));
        assert_eq!(parse(&two), Err(AuthFailure::Malformed));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = Credentials {
            user: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
