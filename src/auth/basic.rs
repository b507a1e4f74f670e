//! HTTP Basic credentials, from the `Authorization` value [`super::header`] found.
//!
//! Strict on purpose: standard base64 of UTF-8 `user:password` and a non-empty
//! user without control characters; anything else is [`AuthFailure::Malformed`].
//! The password is never printed: the [`Credentials`] `Debug` impl hides it.

use base64::Engine;

use crate::error::AuthFailure;

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

/// Basic credentials from the text after `Basic ` (already bounded in size).
pub fn decode(encoded: &str) -> Result<Credentials, AuthFailure> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_start())
        .map_err(|_| AuthFailure::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
    let (user, password) = decoded.split_once(':').ok_or(AuthFailure::Malformed)?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(AuthFailure::Malformed);
    }
    Ok(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn user_and_password_split_at_the_first_colon() {
        let c = decode(&b64(b"alice:pa:ss")).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "pa:ss"));
        let c = decode(&b64(b"bob:")).unwrap();
        assert_eq!(c.password, "");
    }

    #[test]
    fn every_malformed_form_is_rejected() {
        let cases = [
            String::new(),
            "!!!notbase64!!!".into(),
            b64(b"no-colon"),
            b64(b":pw"),
            b64(b"\xff\xfe:pw"),
            b64(b"al\x01ice:pw"),
        ];
        for encoded in cases {
            assert_eq!(decode(&encoded), Err(AuthFailure::Malformed), "{encoded:?}");
        }
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
