//! Fetching the identity provider's signing keys: the JWKS documents at
//! `auth.jwt.jwks_urls`, or the one its discovery document names
//! (`<issuer>/.well-known/openid-configuration`, whose `issuer` must be the
//! configured one). Over HTTPS with `auth.jwt.ca_file`'s trust (or the system's
//! roots), each answer bounded in size and time; no redirects followed.
//!
//! Keys are parsed one by one: a key the gateway cannot use (an encryption key,
//! an unknown type or curve) is skipped, not a reason to refuse the others.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::JwtConfig;
use crate::error::StartupError;

/// Longest answer read from the provider.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Longest wait for one document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One signing key, ready to verify with.
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    /// The algorithms this key can verify (its type and curve decide; a key
    /// that names its `alg` allows that one only).
    pub algorithms: Vec<Algorithm>,
}

/// Where the keys come from.
pub struct KeySource {
    client: reqwest::Client,
    issuer: String,
    urls: Vec<String>,
}

impl KeySource {
    pub fn new(config: &JwtConfig) -> Result<Self, StartupError> {
        let client = provider_client(config.ca_file.as_deref(), "auth.jwt", FETCH_TIMEOUT)?;
        Ok(Self {
            client,
            issuer: config.issuer.trim_end_matches('/').to_owned(),
            urls: config.jwks_urls.clone(),
        })
    }

    /// Every usable key from every JWKS, or why none could be fetched.
    pub async fn fetch(&self) -> Result<Vec<Key>, String> {
        let urls = match self.urls.is_empty() {
            false => self.urls.clone(),
            true => vec![self.discover().await?],
        };
        let mut keys = Vec::new();
        for url in &urls {
            let document = self.get(url).await?;
            let listed = document
                .get("keys")
                .and_then(|k| k.as_array())
                .ok_or_else(|| format!("{url}: not a JWKS (no \"keys\" list)"))?;
            keys.extend(listed.iter().filter_map(usable));
        }
        Ok(keys)
    }

    /// The `jwks_uri` of the issuer's discovery document.
    async fn discover(&self) -> Result<String, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let document = self.get(&url).await?;
        let issuer = document.get("issuer").and_then(|i| i.as_str());
        if issuer.map(|i| i.trim_end_matches('/')) != Some(self.issuer.as_str()) {
            return Err(format!(
                "{url}: names issuer {issuer:?}, not the configured one"
            ));
        }
        document
            .get("jwks_uri")
            .and_then(|u| u.as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{url}: no jwks_uri"))
    }

    /// A JSON document, read whole within the bounds.
    async fn get(&self, url: &str) -> Result<serde_json::Value, String> {
        let mut response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        if !response.status().is_success() {
            return Err(format!("{url}: answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}

/// An HTTP client for the identity provider: `ca_file`'s trust (the system's
/// roots when `None`), answers within `timeout`, no redirects followed. `section`
/// names the config section in errors.
pub fn provider_client(
    ca_file: Option<&std::path::Path>,
    section: &str,
    timeout: Duration,
) -> Result<reqwest::Client, StartupError> {
    let tls = crate::tls::client_config(ca_file, "identity provider CA file")
        .map_err(|e| StartupError::Other(format!("{section}.ca_file: {e}")))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StartupError::Other(format!("{section}: {e}")))
}

/// What went wrong, without the URL reqwest adds (the caller names it once):
/// the kind, then the causes.
fn describe(error: &reqwest::Error) -> String {
    let mut text = match (error.is_timeout(), error.is_connect()) {
        (true, _) => "no answer in time".to_string(),
        (_, true) => "cannot connect".to_string(),
        _ => "request failed".to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// A JWKS entry as a [`Key`], if it is a signing key the gateway can use.
fn usable(entry: &serde_json::Value) -> Option<Key> {
    let jwk: Jwk = match serde_json::from_value(entry.clone()) {
        Ok(jwk) => jwk,
        Err(error) => {
            tracing::debug!(%error, "skipping a JWKS key the gateway cannot read");
            return None;
        }
    };
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return None,
        },
        // A shared secret is never a provider's public key.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let algorithms = match &jwk.common.key_algorithm {
        None => by_type,
        Some(named) => {
            let named: Algorithm = named.to_string().parse().ok()?;
            by_type.into_iter().filter(|a| *a == named).collect()
        }
    };
    if algorithms.is_empty() {
        return None;
    }
    let decoding = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        decoding,
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn only_signing_keys_of_known_types_are_kept() {
        let rsa = json!({"kty": "RSA", "kid": "r1", "n": N, "e": "AQAB"});
        let key = usable(&rsa).unwrap();
        assert_eq!(key.kid.as_deref(), Some("r1"));
        assert!(key.algorithms.contains(&Algorithm::PS256));
        let named = json!({"kty": "RSA", "kid": "r2", "alg": "RS256", "n": N, "e": "AQAB"});
        assert_eq!(usable(&named).unwrap().algorithms, vec![Algorithm::RS256]);
        for skipped in [
            json!({"kty": "RSA", "use": "enc", "n": N, "e": "AQAB"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            json!({"kty": "RSA", "alg": "ES256", "n": N, "e": "AQAB"}),
            json!({"kty": "weird"}),
        ] {
            assert!(usable(&skipped).is_none(), "{skipped}");
        }
    }
}
