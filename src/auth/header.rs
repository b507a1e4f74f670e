//! What a request's `Authorization` header presents: Basic credentials, (with
//! `[auth.kerberos]`) a SPNEGO token, or (with `[auth.jwt]` or `[tokens]`) a
//! bearer token: `Bearer <token>`, or Basic with the user name `token` and the
//! token as the password, for clients that can only send Basic.
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

/// Longest bearer token accepted (in `Bearer`, or as a Basic password): a JWT
/// listing many groups runs to a few kilobytes.
pub const MAX_TOKEN_LEN: usize = 16_384;

/// The Basic user name that says the password is a token.
pub const TOKEN_USER: &str = "token";

/// What the header presents.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    Basic(Credentials),
    /// A SPNEGO (or raw Kerberos 5) token, decoded.
    Negotiate(Vec<u8>),
    /// A bearer token (a JWT or a gateway token), and whether it came as a Basic
    /// password (a login, which starts a session) rather than as `Bearer`.
    Token {
        token: TokenText,
        basic: bool,
    },
}

/// A presented token. Its `Debug` form hides it: it is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText(pub String);

impl std::fmt::Debug for TokenText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which schemes besides Basic passwords a gateway takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepts {
    /// `Negotiate` (`[auth.kerberos]`).
    pub negotiate: bool,
    /// Bearer tokens (`[auth.jwt]` or `[tokens]`).
    pub tokens: bool,
}

/// The request's credentials: `Ok(None)` when there is no `Authorization` header
/// at all.
pub fn parse(headers: &HeaderMap, accepts: Accepts) -> Result<Option<Presented>, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() || value.len() > MAX_NEGOTIATE_LEN {
        return Err(AuthFailure::Malformed);
    }
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    let basic_len = match accepts.tokens {
        true => MAX_TOKEN_LEN,
        false => MAX_BASIC_LEN,
    };
    if scheme.eq_ignore_ascii_case("basic") && value.len() <= basic_len {
        let credentials = basic::decode(encoded)?;
        if accepts.tokens && credentials.user.eq_ignore_ascii_case(TOKEN_USER) {
            return match credentials.password.is_empty() {
                true => Err(AuthFailure::Malformed),
                false => Ok(Some(Presented::Token {
                    token: TokenText(credentials.password),
                    basic: true,
                })),
            };
        }
        if value.len() > MAX_BASIC_LEN {
            return Err(AuthFailure::Malformed);
        }
        return Ok(Some(Presented::Basic(credentials)));
    }
    if accepts.tokens && scheme.eq_ignore_ascii_case("bearer") && value.len() <= MAX_TOKEN_LEN {
        let token = encoded.trim();
        // RFC 6750's token68: what a JWT or a gateway token is made of.
        let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
        if token.is_empty() || !token.bytes().all(token68) {
            return Err(AuthFailure::Malformed);
        }
        return Ok(Some(Presented::Token {
            token: TokenText(token.to_owned()),
            basic: false,
        }));
    }
    if accepts.negotiate
        && scheme.eq_ignore_ascii_case("negotiate")
        && value.len() <= MAX_NEGOTIATE_LEN
    {
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

    const NEGOTIATE: Accepts = Accepts {
        negotiate: true,
        tokens: false,
    };

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_in_any_case() {
        for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
            let h = with(format!("{scheme} {}", b64(b"alice:pa:ss")).as_bytes());
            match parse(&h, Accepts::default()).unwrap().unwrap() {
                Presented::Basic(c) => assert_eq!((&*c.user, &*c.password), ("alice", "pa:ss")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(parse(&HeaderMap::new(), NEGOTIATE), Ok(None));
    }

    #[test]
    fn negotiate_only_where_it_is_accepted() {
        let h = with(format!("Negotiate {}", b64(b"\x60\x01token")).as_bytes());
        assert_eq!(
            parse(&h, NEGOTIATE),
            Ok(Some(Presented::Negotiate(b"\x60\x01token".to_vec())))
        );
        assert_eq!(parse(&h, Accepts::default()), Err(AuthFailure::Malformed));
        let lower = with(format!("negotiate {}", b64(b"t")).as_bytes());
        assert!(matches!(
            parse(&lower, NEGOTIATE),
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
                parse(&with(&value), NEGOTIATE),
                Err(AuthFailure::Malformed),
                "{:?}",
                String::from_utf8_lossy(&value)
            );
        }
        let mut two = with(format!("Basic {}", b64(b"a:b")).as_bytes());
        two.append(AUTHORIZATION, HeaderValue::from_static("Basic Yzpk"));
        assert_eq!(parse(&two, Accepts::default()), Err(AuthFailure::Malformed));
    }

    const TOKENS: Accepts = Accepts {
        negotiate: false,
        tokens: true,
    };

    #[test]
    fn tokens_as_bearer_or_as_a_basic_password_only_where_they_are_taken() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_";
        let bearer = with(format!("Bearer {jwt}").as_bytes());
        assert_eq!(
            parse(&bearer, TOKENS),
            Ok(Some(Presented::Token {
                token: TokenText(jwt.into()),
                basic: false
            }))
        );
        assert_eq!(parse(&bearer, NEGOTIATE), Err(AuthFailure::Malformed));
        for user in ["token", "Token", "TOKEN"] {
            let basic =
                with(format!("Basic {}", b64(format!("{user}:lgw_abc").as_bytes())).as_bytes());
            assert_eq!(
                parse(&basic, TOKENS),
                Ok(Some(Presented::Token {
                    token: TokenText("lgw_abc".into()),
                    basic: true
                }))
            );
            // Without tokens, `token` is a user name like any other.
            assert!(matches!(
                parse(&basic, Accepts::default()),
                Ok(Some(Presented::Basic(_)))
            ));
        }
        // A JWT too long for a Basic password elsewhere fits where tokens are taken.
        let long = format!("token:{}", "a".repeat(8000));
        let basic = with(format!("Basic {}", b64(long.as_bytes())).as_bytes());
        assert!(matches!(
            parse(&basic, TOKENS),
            Ok(Some(Presented::Token { .. }))
        ));
        let long_password = format!("alice:{}", "a".repeat(8000));
        let basic = with(format!("Basic {}", b64(long_password.as_bytes())).as_bytes());
        assert_eq!(parse(&basic, TOKENS), Err(AuthFailure::Malformed));
        for bad in [
            "Bearer ".to_string(),
            "Bearer a b".to_string(),
            "Bearer a\"b".to_string(),
            format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN)),
            format!("Basic {}", b64(b"token:")),
        ] {
            assert_eq!(
                parse(&with(bad.as_bytes()), TOKENS),
                Err(AuthFailure::Malformed),
                "{bad}"
            );
        }
    }
}
