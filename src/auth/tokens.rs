//! Token logins: personal access tokens the gateway issues (`lgw_…`, [`mint`]) and
//! the identity provider's JWTs ([`super::jwt`]), whichever way they come
//! (`Bearer`, or a Basic password with the user name `token`).
//!
//! A gateway token is 256 random bits after the prefix `lgw_` (so it is told from
//! a JWT at a glance, and secret scanners find it); the store keeps only its
//! SHA-256 ([`crate::state::TokenStore`]). A token found is remembered for
//! `state.local_cache_ms`, so a revocation on any instance takes effect on every
//! one within that time. Its user's groups are those they have now (from the
//! directory, when there is one, as for a session), so a user taken out of the
//! allowed groups or out of the directory loses every token's access.
//!
//! Failures (unknown, revoked, expired, badly signed) are one answer, 401
//! `invalid_token`, and count against the client address's login throttle; an
//! unknown and a revoked gateway token take the same path (a revoked token's
//! record is gone). A token that is found costs no throttle round trip.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use lru::LruCache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::jwt::{JwtError, JwtValidator};
use super::queue::Line;
use super::{Authenticator, Identity, Source, TokenBasis, TokenKind};
use crate::config::TokensConfig;
use crate::error::{AuthFailure, RequestError};
use crate::state::tokens::now_secs;
use crate::state::{Outcome, StoreError, TokenRecord, TokenStore};

/// What every gateway token starts with.
pub const PREFIX: &str = "lgw_";

/// Length of a gateway token: the prefix and 32 bytes in unpadded URL-safe base64.
pub const TOKEN_LEN: usize = PREFIX.len() + 43;

/// A token's last use is written at most this often by one instance.
const USE_NOTE_INTERVAL: u64 = 60;

/// Tokens remembered by one instance.
const RECENT_CAPACITY: usize = 10_000;

/// A new gateway token: its text (shown to its owner once) and the hash the
/// store keeps.
pub fn mint() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&text);
    (text, hash)
}

/// The hash a token is stored and looked up by: SHA-256, in hex. (A secret of
/// 256 random bits needs no salt or stretching.)
pub fn hash(token: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}

/// A new token id: 96 random bits, URL-safe.
pub fn new_id() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `id` has the shape of an id [`new_id`] makes.
pub fn is_token_id(id: &str) -> bool {
    id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Longest token name.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a token was not issued.
#[derive(Debug)]
pub enum IssueError {
    /// The request was not one that can be granted (the text says why).
    Refused(String),
    /// The user already holds `tokens.max_per_user` live tokens.
    TooMany(usize),
    Store(StoreError),
}

/// Issues a token to `identity`'s user, named `name`, for `ttl_days` (the
/// configured default when `None`): its record (stored) and its text, which
/// nothing keeps.
pub async fn issue(
    store: &dyn TokenStore,
    config: &TokensConfig,
    identity: &Identity,
    name: &str,
    ttl_days: Option<u64>,
) -> Result<(TokenRecord, String), IssueError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(IssueError::Refused(format!(
            "name: 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    let max_days = config.max_ttl.as_secs() / 86_400;
    let days = match ttl_days {
        None => config.default_ttl.as_secs() / 86_400,
        Some(days) if (1..=max_days).contains(&days) => days,
        Some(_) => {
            return Err(IssueError::Refused(format!(
                "ttl_days: from 1 to {max_days}"
            )))
        }
    };
    let (secret, hash) = mint();
    let created = now_secs();
    let record = TokenRecord {
        id: new_id(),
        hash,
        user: identity.user.to_string(),
        name: name.to_owned(),
        created,
        expires: created + days * 86_400,
        last_used: None,
        identity: Identity {
            token: None,
            id_token: None,
            ..identity.clone()
        },
    };
    match store.create(&record, config.max_per_user).await {
        Ok(true) => Ok((record, secret)),
        Ok(false) => Err(IssueError::TooMany(config.max_per_user)),
        Err(error) => Err(IssueError::Store(error)),
    }
}

/// A gateway token remembered by this instance, with the identity it proves
/// (its user as they were then, and the token's basis).
struct Recent {
    record: TokenRecord,
    identity: Identity,
    /// When it was looked up.
    at: Instant,
    /// When its last use was last written (Unix seconds).
    noted: u64,
}

/// What token logins need: the JWT validator and the token store, each when
/// configured, and what this instance remembers of gateway tokens.
pub struct Tokens {
    jwt: Option<Arc<JwtValidator>>,
    store: Option<Arc<dyn TokenStore>>,
    recent: Mutex<LruCache<String, Recent>>,
    /// Sessions started with a gateway token: whether it was live, and when
    /// that was looked up, by token id.
    live: Mutex<LruCache<Arc<str>, (bool, Instant)>>,
    cache_for: Duration,
}

impl Tokens {
    /// Token logins with `jwt` and `store`; `None` when neither is configured.
    pub fn new(
        jwt: Option<Arc<JwtValidator>>,
        store: Option<Arc<dyn TokenStore>>,
        cache_for: Duration,
    ) -> Option<Self> {
        if jwt.is_none() && store.is_none() {
            return None;
        }
        let capacity = NonZeroUsize::new(RECENT_CAPACITY).expect("non-zero");
        Some(Self {
            jwt,
            store,
            recent: Mutex::new(LruCache::new(capacity)),
            live: Mutex::new(LruCache::new(capacity)),
            cache_for,
        })
    }

    /// The identity provider's keys, for `/readyz` (`None` without `[auth.jwt]`).
    pub fn jwt(&self) -> Option<&Arc<JwtValidator>> {
        self.jwt.as_ref()
    }

    /// The token store (`None` without `[tokens] enabled`).
    pub fn store(&self) -> Option<&Arc<dyn TokenStore>> {
        self.store.as_ref()
    }

    /// The identity the token hashing to `hash` proves, if this instance looked
    /// it up lately; with its record when its use is to be noted.
    fn remembered(&self, hash: &str) -> Option<(Identity, Option<TokenRecord>)> {
        let mut recent = self.recent.lock().expect("recent tokens lock");
        let entry = recent.get_mut(hash)?;
        let now = now_secs();
        if entry.at.elapsed() >= self.cache_for || entry.record.expired(now) {
            recent.pop(hash);
            return None;
        }
        let note = now.saturating_sub(entry.noted) >= USE_NOTE_INTERVAL;
        if note {
            entry.noted = now;
        }
        Some((entry.identity.clone(), note.then(|| entry.record.clone())))
    }

    fn remember(&self, record: &TokenRecord, identity: &Identity) {
        let recent = Recent {
            record: record.clone(),
            identity: identity.clone(),
            at: Instant::now(),
            noted: now_secs(),
        };
        self.recent
            .lock()
            .expect("recent tokens lock")
            .put(record.hash.clone(), recent);
    }

    /// Forgets what this instance remembers of a revoked token.
    pub fn forget(&self, record: &TokenRecord) {
        self.recent
            .lock()
            .expect("recent tokens lock")
            .pop(&record.hash);
        self.live
            .lock()
            .expect("live tokens lock")
            .pop(record.id.as_str());
    }

    /// Writes a token's last use, in the background.
    fn note_use(&self, record: TokenRecord) {
        if let Some(store) = self.store.clone() {
            tokio::spawn(async move {
                if let Err(error) = store.used(&record, now_secs()).await {
                    tracing::debug!(%error, "a token's last use was not written");
                }
            });
        }
    }
}

/// The lockout key failed tokens from `ip` count under (a token names no user).
fn token_key(ip: IpAddr) -> String {
    format!(":token@{ip}")
}

fn invalid() -> RequestError {
    RequestError::Unauthenticated(AuthFailure::InvalidToken)
}

impl Authenticator {
    /// Whether bearer tokens are taken (`[auth.jwt]` or `[tokens]`).
    pub fn takes_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// Token logins, when configured.
    pub fn tokens(&self) -> Option<&Tokens> {
        self.tokens.as_ref()
    }

    /// A token login from `ip`: a gateway token or a JWT.
    pub async fn login_token(&self, token: &str, ip: IpAddr) -> Result<Identity, RequestError> {
        let Some(tokens) = &self.tokens else {
            return Err(RequestError::Unauthenticated(AuthFailure::Malformed));
        };
        if token.starts_with(PREFIX) {
            return self.login_gateway_token(tokens, token, ip).await;
        }
        let Some(jwt) = &tokens.jwt else {
            return self.refuse_token(ip, "not a gateway token").await;
        };
        match jwt.validate(token).await {
            Ok(identity) => Ok(identity),
            Err(JwtError::Invalid(why)) => self.refuse_token(ip, &why).await,
            Err(JwtError::Unavailable(why)) => {
                tracing::warn!(error = %why, "a JWT names a key not held, and the identity provider cannot be reached");
                Err(RequestError::IdpUnavailable)
            }
        }
    }

    /// A gateway token: remembered, or looked up (the address's lockout checked
    /// first); then its user as they are now.
    async fn login_gateway_token(
        &self,
        tokens: &Tokens,
        token: &str,
        ip: IpAddr,
    ) -> Result<Identity, RequestError> {
        let Some(store) = &tokens.store else {
            return self.refuse_token(ip, "tokens are not enabled").await;
        };
        if token.len() != TOKEN_LEN {
            return self.refuse_token(ip, "not a gateway token").await;
        }
        let hash = hash(token);
        if let Some((identity, to_note)) = tokens.remembered(&hash) {
            if let Some(record) = to_note {
                tokens.note_use(record);
            }
            return Ok(identity);
        }
        if let Some(wait) = self.lockouts.locked(&token_key(ip), ip).await? {
            return Err(super::locked_out(wait));
        }
        let Some(record) = store.find(&hash).await? else {
            return self.refuse_token(ip, "unknown, revoked or expired").await;
        };
        // Its user as they are now: looked up with the record, so at most once per
        // `state.local_cache_ms`.
        let Some(mut identity) = self.holder(&record).await else {
            tracing::info!(
                token = %record.id,
                user = %record.user,
                "a token's user is no longer known: refused"
            );
            return Err(invalid());
        };
        identity.token = Some(TokenBasis {
            kind: TokenKind::Gateway,
            id: Some(Arc::from(record.id.as_str())),
            expires: record.expires,
        });
        tokens.remember(&record, &identity);
        tokens.note_use(record);
        Ok(identity)
    }

    /// The user a token was issued to, as they are now: `None` when gone from
    /// the directory or from the user file.
    async fn holder(&self, record: &TokenRecord) -> Option<Identity> {
        let identity = self.current(record.identity.clone()).await?;
        if identity.source == Source::File {
            let users = self.users();
            if users.is_some_and(|users| !users.contains(&record.user)) {
                return None;
            }
        }
        Some(identity)
    }

    /// Counts a failed token from `ip` (429 once its lockout runs) and refuses it.
    async fn refuse_token<T>(&self, ip: IpAddr, why: &str) -> Result<T, RequestError> {
        tracing::info!(reason = why, "token refused");
        let (mut attempt, _slot) = self.begin(&token_key(ip), ip, Line::Other).await?;
        attempt.settle(Outcome::Failed).await;
        Err(invalid())
    }

    /// Whether a session started by a token login may go on: its token has not
    /// expired and (a gateway token) is not revoked, as looked up at most once
    /// per `state.local_cache_ms`.
    pub async fn token_still_valid(&self, identity: &Identity) -> Result<bool, RequestError> {
        let Some(basis) = &identity.token else {
            return Ok(true);
        };
        if basis.expires <= now_secs() {
            return Ok(false);
        }
        let (TokenKind::Gateway, Some(id)) = (basis.kind, &basis.id) else {
            return Ok(true);
        };
        let Some(tokens) = &self.tokens else {
            return Ok(false);
        };
        let Some(store) = &tokens.store else {
            return Ok(false);
        };
        if let Some((live, at)) = tokens.live.lock().expect("live tokens lock").get(id) {
            if at.elapsed() < tokens.cache_for {
                return Ok(*live);
            }
        }
        let live = store.live(&identity.user, id).await?;
        tokens
            .live
            .lock()
            .expect("live tokens lock")
            .put(id.clone(), (live, Instant::now()));
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_by_hash() {
        let (a, hash_a) = mint();
        let (b, _) = mint();
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), TOKEN_LEN);
        assert_ne!(a, b);
        assert_eq!(hash_a, hash(&a));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!hash_a.contains(&a[PREFIX.len()..]));
        let id = new_id();
        assert!(is_token_id(&id));
        assert!(!is_token_id("../../etc"));
    }
}
