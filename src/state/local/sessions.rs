//! Login sessions in this process's memory: bounded in size, in constant time per
//! operation. Past `max_sessions` the least recently used session is evicted, so a
//! flood of new logins (clients that never keep cookies start one per request)
//! pushes out idle sessions before busy ones. A session ends when unused for the
//! idle timeout or, however busy, at the absolute timeout.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::auth::Identity;
use crate::session::new_session_id;
use crate::state::{SessionStore, StoreError};

struct Record {
    identity: Identity,
    created: Instant,
    last_used: Instant,
}

/// Sessions by id, in order of use. Keyed by ids the gateway minted (random), so a
/// fast hash is safe: a client cannot choose keys that collide.
type Sessions = lru::LruCache<String, Record, foldhash::fast::RandomState>;

/// An in-memory [`SessionStore`].
pub struct MemorySessionStore {
    idle: Duration,
    absolute: Duration,
    /// Past this many sessions the least recently used one is evicted.
    max_sessions: usize,
    sessions: Mutex<Sessions>,
}

impl MemorySessionStore {
    pub fn new(idle: Duration, absolute: Duration, max_sessions: usize) -> Self {
        Self {
            idle,
            absolute,
            max_sessions: max_sessions.max(1),
            // Unbounded to the cache itself (a bounded one allocates its whole
            // capacity up front); `create` keeps it within `max_sessions`.
            sessions: Mutex::new(Sessions::unbounded_with_hasher(Default::default())),
        }
    }

    fn expired(&self, record: &Record, now: Instant) -> bool {
        now.duration_since(record.last_used) >= self.idle
            || now.duration_since(record.created) >= self.absolute
    }
}

impl MemorySessionStore {
    fn create(&self, identity: &Identity) -> String {
        let id = new_session_id();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        while sessions.len() >= self.max_sessions {
            sessions.pop_lru();
        }
        sessions.push(
            id.clone(),
            Record {
                identity: identity.clone(),
                created: now,
                last_used: now,
            },
        );
        id
    }

    fn touch(&self, id: &str) -> Option<Identity> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        // `get_mut` also makes it the most recently used.
        let record = sessions.get_mut(id)?;
        if self.expired(record, now) {
            sessions.pop(id);
            return None;
        }
        record.last_used = now;
        Some(record.identity.clone())
    }

    fn remove(&self, id: &str) {
        self.sessions.lock().expect("session lock").pop(id);
    }

    fn remove_user(&self, user: &str) {
        let mut sessions = self.sessions.lock().expect("session lock");
        let ids: Vec<String> = sessions
            .iter()
            .filter(|(_, r)| &*r.identity.user == user)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            sessions.pop(&id);
        }
    }

    fn sweep(&self) {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        // Least recently used first: stop at the first one still in use.
        while let Some((_, oldest)) = sessions.peek_lru() {
            if now.duration_since(oldest.last_used) < self.idle {
                break;
            }
            sessions.pop_lru();
        }
        // Busy sessions past their absolute timeout can sit anywhere in the order.
        let over: Vec<String> = sessions
            .iter()
            .filter(|(_, r)| self.expired(r, now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in over {
            sessions.pop(&id);
        }
    }

    fn len(&self) -> usize {
        self.sessions.lock().expect("session lock").len()
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, identity: &Identity) -> Result<String, StoreError> {
        Ok(MemorySessionStore::create(self, identity))
    }

    async fn touch(&self, id: &str) -> Result<Option<Identity>, StoreError> {
        Ok(MemorySessionStore::touch(self, id))
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        MemorySessionStore::remove(self, id);
        Ok(())
    }

    async fn remove_user(&self, user: &str) -> Result<(), StoreError> {
        MemorySessionStore::remove_user(self, user);
        Ok(())
    }

    fn maintain(&self) -> Option<usize> {
        self.sweep();
        Some(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(user: &str) -> Identity {
        Identity::new(user, Vec::new())
    }

    fn store() -> MemorySessionStore {
        MemorySessionStore::new(Duration::from_secs(60), Duration::from_secs(300), 3)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_an_unused_session() {
        let s = store();
        let sid = s.create(&id("alice"));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(s.touch(&sid).map(|i| i.user).as_deref(), Some("alice"));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            s.touch(&sid).map(|i| i.user).as_deref(),
            Some("alice"),
            "use refreshes idle time"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(s.touch(&sid), None);
        assert_eq!(s.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn absolute_timeout_ends_a_busy_session() {
        let s = store();
        let sid = s.create(&id("alice"));
        for _ in 0..9 {
            tokio::time::advance(Duration::from_secs(30)).await;
            assert!(s.touch(&sid).is_some());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(s.touch(&sid), None);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_evicting_the_least_recently_used() {
        let s = store();
        let a = s.create(&id("a"));
        let b = s.create(&id("b"));
        let c = s.create(&id("c"));
        s.remove(&b);
        let d = s.create(&id("d"));
        assert_eq!(s.len(), 3, "a freed slot is reused before evicting");
        // `a` is the oldest, but in use: `c` goes instead.
        assert!(s.touch(&a).is_some());
        let e = s.create(&id("e"));
        assert_eq!(s.len(), 3);
        assert!(s.touch(&c).is_none(), "the least recently used went");
        for id in [&d, &e, &a] {
            assert!(s.touch(id).is_some());
        }
        // A flood of logins never pushes out a session kept in use.
        for _ in 0..100 {
            s.create(&id("flood"));
            assert!(s.touch(&a).is_some());
            assert!(s.len() <= 3);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sweeping_drops_idle_and_overage_sessions_only() {
        let s = MemorySessionStore::new(Duration::from_secs(60), Duration::from_secs(100), 10);
        let busy = s.create(&id("busy"));
        let idle = s.create(&id("idle"));
        tokio::time::advance(Duration::from_secs(50)).await;
        let fresh = s.create(&id("fresh"));
        assert!(s.touch(&busy).is_some());
        tokio::time::advance(Duration::from_secs(20)).await;
        s.sweep();
        assert_eq!(s.len(), 2, "the idle one went");
        assert!(s.touch(&idle).is_none());
        for _ in 0..2 {
            tokio::time::advance(Duration::from_secs(10)).await;
            assert!(s.touch(&busy).is_some());
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(s.touch(&fresh).is_some());
        s.sweep();
        assert_eq!(s.len(), 1, "busy reached its absolute timeout");
        assert!(s.touch(&fresh).is_some());
    }
}
