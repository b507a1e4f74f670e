//! Remembers recently verified credentials so clients that send Basic credentials on
//! every request (pylivy does) do not pay a bcrypt verification each time.
//!
//! Entries are keyed by HMAC-SHA256, under a per-process random key, of user,
//! password and the stored hash: the cache never holds a password or anything an
//! offline attack could use, and changing a user's hash in the htpasswd file makes
//! their old entries unreachable. Only successes are cached. Entries live for a TTL;
//! the map is bounded (expired entries are swept when it fills, and if it is still
//! full it is cleared, which costs only re-verifications).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::time::Instant;

type Key = [u8; 32];

/// A bounded TTL set of verified credential digests.
pub struct CredentialCache {
    /// HMAC key, random per process.
    secret: [u8; 32],
    ttl: Duration,
    max_entries: usize,
    /// digest → expiry.
    entries: Mutex<HashMap<Key, Instant>>,
}

impl CredentialCache {
    /// A cache whose entries live `ttl`; a zero `ttl` or `max_entries` disables it.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self {
            secret,
            ttl,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0
    }

    fn key(&self, user: &str, password: &str, stored_hash: &str) -> Key {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        for part in [user, password, stored_hash] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether this exact user/password/hash triple was verified within the TTL.
    pub fn contains(&self, user: &str, password: &str, stored_hash: &str) -> bool {
        if !self.enabled() {
            return false;
        }
        let key = self.key(user, password, stored_hash);
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(&key) {
            Some(expiry) if *expiry > Instant::now() => true,
            Some(_) => {
                entries.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Records a successful verification.
    pub fn insert(&self, user: &str, password: &str, stored_hash: &str) {
        if !self.enabled() {
            return;
        }
        let key = self.key(user, password, stored_hash);
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.max_entries {
            entries.retain(|_, expiry| *expiry > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, now + self.ttl);
    }

    /// Forgets everything (used when the user database changes).
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        cache.insert("alice", "pw", "$2y$hash");
        assert!(cache.contains("alice", "pw", "$2y$hash"));
        assert!(!cache.contains("alice", "other", "$2y$hash"));
        assert!(!cache.contains("alice", "pw", "$2y$changed"));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!cache.contains("alice", "pw", "$2y$hash"));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        cache.insert("al", "ice", "h");
        assert!(!cache.contains("ali", "ce", "h"));
    }

    #[tokio::test(start_paused = true)]
    async fn size_stays_bounded() {
        let cache = CredentialCache::new(Duration::from_secs(60), 100);
        for i in 0..1000 {
            cache.insert(&format!("user{i}"), "pw", "h");
            assert!(cache.len() <= 100);
        }
        assert!(cache.contains("user999", "pw", "h"));
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = CredentialCache::new(Duration::ZERO, 10);
        cache.insert("alice", "pw", "h");
        assert!(!cache.contains("alice", "pw", "h"));
    }
}
