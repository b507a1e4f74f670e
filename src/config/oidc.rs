//! `[auth.oidc]`: browser sign-in with the organisation's identity provider
//! (OpenID Connect, the authorization code flow with PKCE).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[auth.oidc]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider; its endpoints come from
    /// `<issuer>/.well-known/openid-configuration`. Required.
    pub issuer: String,
    /// The gateway's client id at the provider (the ID token's audience).
    /// Required.
    pub client_id: String,
    /// The client secret, first line of this file; never in the TOML. Required.
    pub client_secret_file: PathBuf,
    /// Scopes asked for; `openid` is always among them.
    pub scopes: Vec<String>,
    /// The claim naming the user.
    pub user_claim: String,
    /// The claim listing the user's groups (`allowed_groups`, `admin_groups`).
    pub groups_claim: String,
    /// Trust for the provider's `https://`; the system's roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret_file: PathBuf::new(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            user_claim: "sub".into(),
            groups_claim: "groups".into(),
            ca_file: None,
        }
    }
}

/// Checks `[auth.oidc]`: the provider, the client, `openid` among the scopes.
pub(super) fn validate_oidc(oidc: &OidcConfig) -> Result<(), String> {
    if !super::tokens::is_web_url(&oidc.issuer) {
        return Err(format!(
            "key auth.oidc.issuer: {:?}: required, an https:// (or http://) URL",
            oidc.issuer
        ));
    }
    if oidc.client_id.is_empty() {
        return Err("key auth.oidc.client_id: required".into());
    }
    if oidc.client_secret_file.as_os_str().is_empty() {
        return Err("key auth.oidc.client_secret_file: required".into());
    }
    if !oidc.scopes.iter().any(|s| s == "openid") {
        return Err("key auth.oidc.scopes: must include \"openid\"".into());
    }
    if oidc
        .scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control()))
    {
        return Err("key auth.oidc.scopes: one scope per entry, without blanks".into());
    }
    if oidc.user_claim.is_empty() || oidc.groups_claim.is_empty() {
        return Err("key auth.oidc.user_claim / groups_claim: must not be empty".into());
    }
    Ok(())
}
