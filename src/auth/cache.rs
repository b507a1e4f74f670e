//! Remembers recently verified credentials, with the identity (and groups) they
//! proved, so clients that send Basic credentials on every request (pylivy does)
//! do not pay a password check (a bcrypt hash, a directory bind) each time.
//!
//! Entries are keyed by HMAC-SHA256, under a per-cache random key, of user and
//! password: the cache never holds a password or anything an offline attack could
//! use. Each configuration (each reload) gets a new cache, so a changed password or
//! a user removed from the file is checked afresh. Only successes are cached, and
//! group membership with them: a user taken out of a group loses what it granted
//! within the TTL. Entries live for a TTL; the map is bounded (expired entries are
//! swept when it fills, and if it is still full it is cleared, which costs only
//! re-verifications).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::time::Instant;

use super::Identity;

type Key = [u8; 32];

/// A bounded TTL set of verified credential digests.
pub struct CredentialCache {
    /// HMAC key, random per process.
    secret: [u8; 32],
    ttl: Duration,
    max_entries: usize,
    /// digest → (identity, expiry).
    entries: Mutex<HashMap<Key, (Identity, Instant)>>,
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

    fn key(&self, user: &str, password: &str) -> Key {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        for part in [user, password] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The identity this exact user/password pair proved within the TTL.
    pub fn get(&self, user: &str, password: &str) -> Option<Identity> {
        if !self.enabled() {
            return None;
        }
        let key = self.key(user, password);
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(&key) {
            Some((identity, expiry)) if *expiry > Instant::now() => Some(identity.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Records a successful verification and the identity it proved.
    pub fn insert(&self, user: &str, password: &str, identity: &Identity) {
        if !self.enabled() {
            return;
        }
        let key = self.key(user, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.max_entries {
            entries.retain(|_, (_, expiry)| *expiry > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (identity.clone(), now + self.ttl));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::new("alice", vec!["livy-users".into()])
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        cache.insert("alice", "pw", &alice());
        assert_eq!(cache.get("alice", "pw"), Some(alice()));
        assert_eq!(cache.get("alice", "other"), None);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(cache.get("alice", "pw"), None);
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        cache.insert("al", "ice", &alice());
        assert_eq!(cache.get("ali", "ce"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn size_stays_bounded() {
        let cache = CredentialCache::new(Duration::from_secs(60), 100);
        for i in 0..1000 {
            cache.insert(&format!("user{i}"), "pw", &alice());
            assert!(cache.len() <= 100);
        }
        assert!(cache.get("user999", "pw").is_some());
    }

    #[test]
    fn zero_ttl_disables() {
        let cache = CredentialCache::new(Duration::ZERO, 10);
        cache.insert("alice", "pw", &alice());
        assert_eq!(cache.get("alice", "pw"), None);
    }
}
