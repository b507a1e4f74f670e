//! Browser sign-in with the identity provider (`[auth.oidc]`): the provider side
//! of the authorization code flow with PKCE. [`Oidc::authorization_url`] makes
//! the redirect (a fresh `state`, `nonce` and S256 challenge, which the caller
//! keeps server-side); [`Oidc::finish`] exchanges the code (the client secret
//! over TLS to the token endpoint), validates the ID token with the same
//! validator as bearer JWTs ([`super::jwt`]: signature by the provider's keys,
//! `iss`, `aud` = the client id, expiry) and its `nonce`, and names the user and
//! groups from its claims, or from the userinfo endpoint when the ID token
//! carries none.
//!
//! The provider's endpoints come from its discovery document, fetched at the
//! first sign-in and again after a failure.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::jwt::{JwtError, JwtValidator};
use super::Identity;
use crate::config::{JwtConfig, OidcConfig};
use crate::error::StartupError;

/// Longest wait for the provider's token and userinfo endpoints.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// What a sign-in begins with: the provider URL to send the browser to, and what
/// the callback will need.
pub struct Begun {
    pub location: String,
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

/// Why a sign-in did not finish.
#[derive(Debug)]
pub enum SignInError {
    /// The provider could not be reached, or answered with an error.
    Provider(String),
    /// What came back is not good (a bad ID token, a wrong nonce).
    Refused(String),
}

/// A finished sign-in: the user, and the ID token (for logging out at the
/// provider).
pub struct SignedIn {
    pub identity: Identity,
    pub id_token: String,
}

/// The gateway as an OpenID Connect client.
pub struct Oidc {
    config: OidcConfig,
    secret: String,
    client: reqwest::Client,
    validator: Arc<JwtValidator>,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
}

fn random_text(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl Oidc {
    /// The client `config` describes: its secret read, its ID tokens checked by a
    /// validator for the provider's keys with the client id as the audience.
    pub fn new(config: &OidcConfig) -> Result<Self, StartupError> {
        let text = std::fs::read_to_string(&config.client_secret_file).map_err(|source| {
            StartupError::Io {
                what: "OpenID client secret file",
                path: config.client_secret_file.clone(),
                source,
            }
        })?;
        let secret = text.lines().next().unwrap_or_default().to_owned();
        if secret.is_empty() {
            return Err(StartupError::Other(
                "auth.oidc.client_secret_file: the first line is empty".into(),
            ));
        }
        let validator = JwtValidator::new(&JwtConfig {
            issuer: config.issuer.clone(),
            audiences: vec![config.client_id.clone()],
            user_claim: config.user_claim.clone(),
            groups_claim: config.groups_claim.clone(),
            ca_file: config.ca_file.clone(),
            ..JwtConfig::default()
        })?;
        let client =
            super::jwks::provider_client(config.ca_file.as_deref(), "auth.oidc", EXCHANGE_TIMEOUT)?;
        Ok(Self {
            config: config.clone(),
            secret,
            client,
            validator,
            endpoints: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's endpoints (fetched once, and again after a failure).
    pub async fn endpoints(&self) -> Result<Endpoints, SignInError> {
        let mut held = self.endpoints.lock().await;
        if let Some(endpoints) = held.as_ref() {
            return Ok(endpoints.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let document: serde_json::Value = self.get_json(self.client.get(&url)).await?;
        let issuer = document.get("issuer").and_then(|i| i.as_str());
        if issuer.map(|i| i.trim_end_matches('/')) != Some(self.config.issuer.trim_end_matches('/'))
        {
            return Err(SignInError::Provider(format!(
                "{url}: names issuer {issuer:?}, not the configured one"
            )));
        }
        let endpoints: Endpoints = serde_json::from_value(document)
            .map_err(|e| SignInError::Provider(format!("{url}: {e}")))?;
        *held = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// A new sign-in: where to send the browser (`redirect_uri` is the gateway's
    /// callback), with a fresh `state`, `nonce` and PKCE verifier.
    pub async fn authorization_url(&self, redirect_uri: &str) -> Result<Begun, SignInError> {
        let endpoints = self.endpoints().await?;
        let (state, nonce, verifier) = (random_text(32), random_text(32), random_text(32));
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let scope = self.config.scopes.join(" ");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let separator = match endpoints.authorization_endpoint.contains('?') {
            true => '&',
            false => '?',
        };
        Ok(Begun {
            location: format!("{}{separator}{query}", endpoints.authorization_endpoint),
            state,
            verifier,
            nonce,
        })
    }

    /// Finishes a sign-in: the code exchanged, the ID token checked (its nonce
    /// must be `nonce`), the user and groups named.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<SignedIn, SignInError> {
        let endpoints = self.endpoints().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", &self.config.client_id),
            ("client_secret", &self.secret),
        ];
        let request = self.client.post(&endpoints.token_endpoint).form(&form);
        let answer: serde_json::Value = self.get_json(request).await?;
        let id_token = answer
            .get("id_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| SignInError::Provider("the token endpoint sent no id_token".into()))?
            .to_owned();
        let claims = self
            .validator
            .claims_of(&id_token)
            .await
            .map_err(|e| match e {
                JwtError::Invalid(why) => SignInError::Refused(why),
                JwtError::Unavailable(why) => SignInError::Provider(why),
            })?;
        if claims.get("nonce").and_then(|n| n.as_str()) != Some(nonce) {
            return Err(SignInError::Refused(
                "the ID token's nonce is not this sign-in's".into(),
            ));
        }
        let mut claims = claims;
        let named = |c: &serde_json::Map<String, serde_json::Value>| self.validator.names_user(c);
        if !named(&claims) {
            // The user's claims may live at the userinfo endpoint only.
            let access = answer.get("access_token").and_then(|t| t.as_str());
            if let (Some(url), Some(access)) = (&endpoints.userinfo_endpoint, access) {
                let info: serde_json::Value = self
                    .get_json(self.client.get(url).bearer_auth(access))
                    .await?;
                if info.get("sub") != claims.get("sub") {
                    return Err(SignInError::Refused(
                        "the userinfo answer is for another subject".into(),
                    ));
                }
                if let Some(info) = info.as_object() {
                    for (key, value) in info {
                        claims.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
        }
        let identity = self.validator.identity_of(&claims).map_err(|e| match e {
            JwtError::Invalid(why) | JwtError::Unavailable(why) => SignInError::Refused(why),
        })?;
        Ok(SignedIn {
            identity: Identity {
                token: None,
                ..identity
            },
            id_token,
        })
    }

    /// A JSON answer from the provider, read whole.
    async fn get_json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, SignInError> {
        let response = request
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SignInError::Provider(format!("the provider cannot be reached: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SignInError::Provider(format!("the provider's answer broke off: {e}")))?;
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(SignInError::Provider(format!(
                "the provider answered {status}: {}",
                error.get("error").and_then(|e| e.as_str()).unwrap_or("-")
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| SignInError::Provider(format!("the provider's answer is not JSON: {e}")))
    }
}
