//! `[auth.jwt]` (bearer JWTs from an identity provider) and `[tokens]` (personal
//! access tokens the gateway issues): their keys, defaults and checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{days, secs};

/// Signature algorithms a JWT may use when `auth.jwt.algorithms` is not set:
/// every asymmetric one the gateway verifies.
pub const DEFAULT_JWT_ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA",
];

/// Every algorithm `auth.jwt.algorithms` may name (and `ES384`, which is
/// verified too): asymmetric only. `HS*` would let anyone holding the provider's
/// public key sign tokens; `none` signs nothing.
const KNOWN_JWT_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// `[auth.jwt]`: bearer JWTs from the organisation's identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry; with no `jwks_urls`, the keys come from
    /// its discovery document (`<issuer>/.well-known/openid-configuration`).
    /// Required.
    pub issuer: String,
    /// Explicit JWKS URLs (their keys together).
    pub jwks_urls: Vec<String>,
    /// A token's `aud` must contain one of these. Required, non-empty.
    pub audiences: Vec<String>,
    /// The signature algorithms accepted.
    pub algorithms: Vec<String>,
    /// The claim naming the user.
    pub user_claim: String,
    /// The claim listing the user's groups (`allowed_groups` and `admin_groups`
    /// apply to them).
    pub groups_claim: String,
    /// Trust for the provider's `https://`; the system's roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Clock difference allowed on `exp` and `nbf`.
    #[serde(rename = "leeway_secs", with = "secs")]
    pub leeway: Duration,
    /// How often the keys are fetched again.
    #[serde(rename = "jwks_refresh_secs", with = "secs")]
    pub jwks_refresh: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            jwks_urls: Vec::new(),
            audiences: Vec::new(),
            algorithms: DEFAULT_JWT_ALGORITHMS.map(String::from).to_vec(),
            user_claim: "sub".into(),
            groups_claim: "groups".into(),
            ca_file: None,
            leeway: Duration::from_secs(30),
            jwks_refresh: Duration::from_secs(300),
        }
    }
}

/// `[tokens]`: personal access tokens the gateway issues (`lgw_…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Whether tokens are issued and accepted.
    pub enabled: bool,
    /// The longest life a token may be given.
    #[serde(rename = "max_ttl_days", with = "days")]
    pub max_ttl: Duration,
    /// A token's life when its request names none.
    #[serde(rename = "default_ttl_days", with = "days")]
    pub default_ttl: Duration,
    /// Live tokens one user may hold; a request for one more is refused.
    pub max_per_user: usize,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_ttl: Duration::from_secs(365 * 86_400),
            default_ttl: Duration::from_secs(90 * 86_400),
            max_per_user: 10,
        }
    }
}

/// Checks `[auth.jwt]`: an issuer and audiences, asymmetric algorithms only,
/// URLs the gateway can fetch.
pub(super) fn validate_jwt(jwt: &JwtConfig) -> Result<(), String> {
    if !is_web_url(&jwt.issuer) {
        return Err(format!(
            "key auth.jwt.issuer: {:?}: required, an https:// (or http://) URL",
            jwt.issuer
        ));
    }
    if jwt.audiences.is_empty() || jwt.audiences.iter().any(String::is_empty) {
        return Err("key auth.jwt.audiences: required, non-empty names".into());
    }
    for url in &jwt.jwks_urls {
        if !is_web_url(url) {
            return Err(format!(
                "key auth.jwt.jwks_urls: {url:?}: an https:// (or http://) URL"
            ));
        }
    }
    if jwt.algorithms.is_empty() {
        return Err("key auth.jwt.algorithms: name at least one algorithm".into());
    }
    for algorithm in &jwt.algorithms {
        if !KNOWN_JWT_ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(format!(
                "key auth.jwt.algorithms: {algorithm:?} is refused: only asymmetric \
                 signatures are accepted ({})",
                KNOWN_JWT_ALGORITHMS.join(", ")
            ));
        }
    }
    if jwt.user_claim.is_empty() || jwt.groups_claim.is_empty() {
        return Err("key auth.jwt.user_claim / groups_claim: must not be empty".into());
    }
    if jwt.jwks_refresh < Duration::from_secs(10) {
        return Err("key auth.jwt.jwks_refresh_secs: at least 10".into());
    }
    if jwt.leeway > Duration::from_secs(300) {
        return Err("key auth.jwt.leeway_secs: at most 300".into());
    }
    Ok(())
}

/// Checks `[tokens]`: lives of at least a day, a default within the maximum.
pub(super) fn validate_tokens(tokens: &TokensConfig) -> Result<(), String> {
    if tokens.max_ttl.is_zero() || tokens.default_ttl.is_zero() {
        return Err("key tokens.max_ttl_days / default_ttl_days: must be greater than 0".into());
    }
    if tokens.default_ttl > tokens.max_ttl {
        return Err("key tokens.default_ttl_days: must not exceed tokens.max_ttl_days".into());
    }
    if tokens.max_per_user == 0 {
        return Err("key tokens.max_per_user: must be greater than 0".into());
    }
    Ok(())
}

/// `https://host…` or `http://host…` (a provider on a test loopback).
pub(super) fn is_web_url(url: &str) -> bool {
    match url.parse::<http::Uri>() {
        Ok(uri) => matches!(uri.scheme_str(), Some("https" | "http")) && uri.authority().is_some(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> JwtConfig {
        JwtConfig {
            issuer: "https://idp.example.org/realms/data".into(),
            audiences: vec!["livy-gateway".into()],
            ..JwtConfig::default()
        }
    }

    #[test]
    fn symmetric_and_unsigned_algorithms_are_refused() {
        assert_eq!(validate_jwt(&jwt()), Ok(()));
        for bad in ["HS256", "HS512", "none", "None", "rs256"] {
            let config = JwtConfig {
                algorithms: vec!["RS256".into(), bad.into()],
                ..jwt()
            };
            assert!(validate_jwt(&config).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn an_issuer_and_an_audience_are_required() {
        for config in [
            JwtConfig {
                issuer: String::new(),
                ..jwt()
            },
            JwtConfig {
                issuer: "idp.example.org".into(),
                ..jwt()
            },
            JwtConfig {
                audiences: vec![],
                ..jwt()
            },
            JwtConfig {
                jwks_urls: vec!["file:///etc/keys".into()],
                ..jwt()
            },
        ] {
            assert!(validate_jwt(&config).is_err(), "{config:?}");
        }
    }

    #[test]
    fn token_lives_are_checked() {
        assert_eq!(validate_tokens(&TokensConfig::default()), Ok(()));
        let longer_default = TokensConfig {
            default_ttl: Duration::from_secs(400 * 86_400),
            ..TokensConfig::default()
        };
        assert!(validate_tokens(&longer_default).is_err());
    }
}
