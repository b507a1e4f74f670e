//! Bearer JWTs from the identity provider (`[auth.jwt]`): one validation path for
//! every token, whichever way it came (`Bearer`, or a Basic password).
//!
//! A token is accepted when its header's algorithm is on the allowlist and is one
//! the key it names (`kid`) can verify (an RSA key never verifies an `ES256` or
//! `HS256` signature: no algorithm confusion), the signature holds, `iss` is the
//! configured issuer, `aud` contains a configured audience, and `exp` and `nbf`
//! hold within the leeway. The user is the `user_claim`; the groups are the
//! `groups_claim` (a dotted name reaches into nested claims:
//! `realm_access.roles`), and decide access exactly as a directory's groups do.
//! An ID token (it carries a `nonce`) is never taken as a bearer token.
//!
//! Keys ([`jwks`]) are fetched at the first use and every `jwks_refresh_secs`; a
//! token naming a key not held triggers one refresh, at most once per 10 s. While
//! the provider cannot be reached the keys held keep working, and a token whose
//! key is not held is answered 503 (the provider's fault, not the caller's).
//!
//! A token that passed is remembered (by its SHA-256) until it expires, so a
//! client sending the same token on every request costs one signature check per
//! instance, not one per request; the memory is cleared when the keys change.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lru::LruCache;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::jwks::{Key, KeySource};
use super::{is_plain_name, Identity, Source, TokenBasis, TokenKind};
use crate::config::JwtConfig;
use crate::error::StartupError;
use crate::state::tokens::now_secs;

/// A token naming an unknown key refreshes the keys at most this often.
const FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// After a failed fetch, the next scheduled one comes this soon.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Tokens remembered as verified.
const VERIFIED_CAPACITY: usize = 10_000;

/// Why a JWT was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// The token is not good (for the log; the client learns only
    /// `invalid_token`).
    Invalid(String),
    /// The key it names is not held and the provider cannot be reached.
    Unavailable(String),
}

/// What the keys' fetches have said.
#[derive(Default)]
struct Health {
    /// The last fetch's error, until one succeeds.
    error: Option<String>,
    /// When a fetch last succeeded.
    fetched: Option<Instant>,
    /// When a token naming an unknown key last forced a fetch.
    forced: Option<Instant>,
    /// When a fetch last started.
    attempted: Option<Instant>,
}

/// What `/readyz` reports of the provider's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysState {
    /// Keys held.
    pub held: usize,
    /// Why the last fetch failed, if it did.
    pub error: Option<String>,
}

/// Validates the provider's JWTs.
pub struct JwtValidator {
    config: JwtConfig,
    allowed: Vec<Algorithm>,
    source: KeySource,
    keys: ArcSwap<Vec<Key>>,
    health: Mutex<Health>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
    verified: Mutex<LruCache<[u8; 32], Identity>>,
    refreshing: Once,
}

impl JwtValidator {
    pub fn new(config: &JwtConfig) -> Result<Arc<Self>, StartupError> {
        let allowed = config
            .algorithms
            .iter()
            .map(|a| a.parse::<Algorithm>())
            .collect::<Result<_, _>>()
            .map_err(|e| StartupError::Other(format!("auth.jwt.algorithms: {e}")))?;
        Ok(Arc::new(Self {
            source: KeySource::new(config)?,
            config: config.clone(),
            allowed,
            keys: ArcSwap::from_pointee(Vec::new()),
            health: Mutex::new(Health::default()),
            fetching: tokio::sync::Mutex::new(()),
            verified: Mutex::new(LruCache::new(
                NonZeroUsize::new(VERIFIED_CAPACITY).expect("non-zero"),
            )),
            refreshing: Once::new(),
        }))
    }

    /// Starts the periodic refresh (on the first call, which is on the runtime);
    /// it ends when the validator is dropped.
    fn ensure_refreshing(self: &Arc<Self>) {
        self.refreshing.call_once(|| {
            let weak: Weak<Self> = Arc::downgrade(self);
            let every = self.config.jwks_refresh;
            tokio::spawn(async move {
                loop {
                    let Some(validator) = weak.upgrade() else {
                        return;
                    };
                    let wait = match validator.refresh(false).await {
                        true => every,
                        false => every.min(RETRY_INTERVAL),
                    };
                    drop(validator);
                    tokio::time::sleep(wait).await;
                }
            });
        });
    }

    /// Fetches the keys; with `forced` (a token named an unknown key) only if no
    /// forced fetch happened in the last 10 s. Whether the keys are current.
    async fn refresh(&self, forced: bool) -> bool {
        let asked = Instant::now();
        let _one = self.fetching.lock().await;
        {
            let mut health = self.health.lock().expect("health lock");
            // A fetch that finished while this one waited answers for it.
            if health.fetched.is_some_and(|at| at >= asked) {
                return true;
            }
            // The first fetch is never held back: it is not a refresh.
            let first = health.fetched.is_none() && health.attempted.is_none();
            if forced && !first {
                let now = Instant::now();
                if health
                    .forced
                    .is_some_and(|at| now.duration_since(at) < FORCED_REFRESH_INTERVAL)
                {
                    return health.error.is_none();
                }
                health.forced = Some(now);
            }
            health.attempted = Some(Instant::now());
        }
        match self.source.fetch().await {
            Ok(keys) => {
                let kids = |keys: &[Key]| -> Vec<Option<String>> {
                    keys.iter().map(|k| k.kid.clone()).collect()
                };
                if kids(&keys) != kids(&self.keys.load()) {
                    tracing::info!(keys = keys.len(), "identity provider keys loaded");
                    // A key taken away takes its tokens with it.
                    self.verified.lock().expect("verified lock").clear();
                }
                self.keys.store(Arc::new(keys));
                let mut health = self.health.lock().expect("health lock");
                health.error = None;
                health.fetched = Some(Instant::now());
                true
            }
            Err(error) => {
                tracing::warn!(%error, "identity provider keys could not be fetched");
                self.health.lock().expect("health lock").error = Some(error);
                false
            }
        }
    }

    /// What is known of the keys; fetches them first if no fetch has finished.
    pub async fn keys_state(self: &Arc<Self>) -> KeysState {
        self.ensure_refreshing();
        let never = {
            let health = self.health.lock().expect("health lock");
            health.fetched.is_none() && health.attempted.is_none()
        };
        if never {
            self.refresh(false).await;
        }
        KeysState {
            held: self.keys.load().len(),
            error: self.health.lock().expect("health lock").error.clone(),
        }
    }

    /// The identity `token` proves.
    pub async fn validate(self: &Arc<Self>, token: &str) -> Result<Identity, JwtError> {
        self.ensure_refreshing();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = now_secs();
        let leeway = self.config.leeway.as_secs();
        if let Some(identity) = self.verified.lock().expect("verified lock").get(&digest) {
            if identity
                .token
                .as_ref()
                .is_some_and(|t| t.expires + leeway > now)
            {
                return Ok(identity.clone());
            }
        }
        let claims = self.claims_of(token).await?;
        if claims.contains_key("nonce") {
            // An ID token (a browser sign-in's) proves a sign-in to its client,
            // not access to the gateway, even where the client id is an audience.
            return Err(JwtError::Invalid(
                "an ID token is not an access token".into(),
            ));
        }
        let identity = self.identity(&claims)?;
        self.verified
            .lock()
            .expect("verified lock")
            .put(digest, identity.clone());
        Ok(identity)
    }

    /// The claims of `token`, once its header, key, signature, issuer, audience
    /// and times have passed (no memory of earlier checks: for ID tokens, each
    /// seen once).
    pub async fn claims_of(
        self: &Arc<Self>,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
        self.ensure_refreshing();
        let leeway = self.config.leeway.as_secs();
        let invalid = |why: String| JwtError::Invalid(why);
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("not a JWT: {e}")))?;
        if !self.allowed.contains(&header.alg) {
            return Err(invalid(format!(
                "algorithm {:?} is not allowed",
                header.alg
            )));
        }
        if let Some(typ) = &header.typ {
            let typ = typ.to_ascii_lowercase();
            if !matches!(typ.as_str(), "jwt" | "at+jwt" | "application/at+jwt") {
                return Err(invalid(format!(
                    "token type {typ:?} is not an access token"
                )));
            }
        }
        let key = match self.key_for(header.kid.as_deref(), header.alg) {
            Found::Key(key) => key,
            Found::WrongAlgorithm => {
                return Err(invalid(format!(
                    "algorithm {:?} does not match the key's type",
                    header.alg
                )))
            }
            Found::None => {
                self.refresh(true).await;
                match self.key_for(header.kid.as_deref(), header.alg) {
                    Found::Key(key) => key,
                    Found::WrongAlgorithm => {
                        return Err(invalid("algorithm does not match the key's type".into()))
                    }
                    Found::None => {
                        let error = self.health.lock().expect("health lock").error.clone();
                        return Err(match error {
                            Some(error) => JwtError::Unavailable(error),
                            None => invalid(format!("unknown key {:?}", header.kid)),
                        });
                    }
                }
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| invalid(e.to_string()))?
        .claims;
        Ok(claims)
    }

    /// Whether `claims` name a user (the `user_claim`).
    pub fn names_user(&self, claims: &serde_json::Map<String, serde_json::Value>) -> bool {
        claim(claims, &self.config.user_claim)
            .and_then(|u| u.as_str())
            .is_some_and(|u| !u.is_empty())
    }

    /// The identity `claims` name.
    pub fn identity_of(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Identity, JwtError> {
        self.identity(claims)
    }

    /// The key `kid` names that can verify `alg`.
    fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Found {
        let keys = self.keys.load();
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .collect();
        let fitting: Vec<&Key> = candidates
            .iter()
            .copied()
            .filter(|k| k.algorithms.contains(&alg))
            .collect();
        match (fitting.as_slice(), candidates.is_empty()) {
            // Without a `kid`, only a provider with one fitting key is unambiguous.
            ([one], _) => Found::Key(one.decoding.clone()),
            ([], false) if kid.is_some() => Found::WrongAlgorithm,
            _ => Found::None,
        }
    }

    /// The user and groups the claims name.
    fn identity(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Identity, JwtError> {
        let invalid = |why: &str| JwtError::Invalid(why.to_string());
        let user = claim(claims, &self.config.user_claim)
            .and_then(|u| u.as_str())
            .filter(|u| !u.is_empty() && is_plain_name(u))
            .ok_or_else(|| invalid("no usable user claim"))?;
        let groups: Vec<String> = match claim(claims, &self.config.groups_claim) {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|g| g.as_str())
                .map(str::to_owned)
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let expires = claims
            .get("exp")
            .and_then(|e| e.as_u64())
            .ok_or_else(|| invalid("no exp"))?;
        Ok(Identity {
            source: Source::Provider,
            token: Some(TokenBasis {
                kind: TokenKind::Jwt,
                id: claims.get("jti").and_then(|j| j.as_str()).map(Arc::from),
                expires,
            }),
            ..Identity::new(user, groups)
        })
    }
}

/// What the keys held say about a token's `kid` and algorithm.
enum Found {
    Key(DecodingKey),
    /// The named key cannot verify that algorithm.
    WrongAlgorithm,
    None,
}

/// A claim by name; a dotted name reaches into objects when no top-level claim
/// has it (`realm_access.roles`).
fn claim<'a>(
    claims: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_by_name_or_by_path() {
        let claims = json!({
            "sub": "u-1",
            "preferred_username": "alice",
            "realm_access": {"roles": ["a", "b"]},
            "x.y": "flat",
        });
        let claims = claims.as_object().unwrap();
        assert_eq!(claim(claims, "preferred_username"), Some(&json!("alice")));
        assert_eq!(
            claim(claims, "realm_access.roles"),
            Some(&json!(["a", "b"]))
        );
        assert_eq!(claim(claims, "x.y"), Some(&json!("flat")));
        assert_eq!(claim(claims, "realm_access.none"), None);
    }
}
