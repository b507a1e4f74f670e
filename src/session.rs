//! Login sessions: the `JSESSIONID` cookie that stands in for credentials after a
//! successful Basic login.
//!
//! Session ids are 256 random bits, URL-safe base64, minted only by the gateway: an id
//! a client makes up is never adopted, it simply finds nothing. A session ends when
//! unused for the idle timeout or, however busy, at the absolute timeout. The
//! [`SessionStore`] trait keeps the storage replaceable (a store shared by several
//! gateway instances comes later); [`MemorySessionStore`] is the in-process one,
//! bounded in size: past `max_sessions` the least recently used session is evicted,
//! in constant time, so a flood of new logins (clients that never keep cookies
//! start one per request) pushes out idle sessions before busy ones.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::header::{HeaderValue, COOKIE};
use http::HeaderMap;
use rand::RngCore;
use tokio::time::Instant;

/// Length of a session id: 32 bytes in unpadded URL-safe base64.
pub const SESSION_ID_LEN: usize = 43;

/// Where login sessions live.
pub trait SessionStore: Send + Sync {
    /// Starts a session for `user` and returns its new id.
    fn create(&self, user: &str) -> String;
    /// The user of a live session, marking it used; `None` if unknown or expired.
    fn touch(&self, id: &str) -> Option<Arc<str>>;
    /// Ends one session.
    fn remove(&self, id: &str);
    /// Ends every session of `user`.
    fn remove_user(&self, user: &str);
    /// Drops expired sessions.
    fn sweep(&self);
    /// Number of stored sessions (live or not yet swept).
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Record {
    user: Arc<str>,
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

impl SessionStore for MemorySessionStore {
    fn create(&self, user: &str) -> String {
        let id = new_session_id();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        while sessions.len() >= self.max_sessions {
            sessions.pop_lru();
        }
        sessions.push(
            id.clone(),
            Record {
                user: Arc::from(user),
                created: now,
                last_used: now,
            },
        );
        id
    }

    fn touch(&self, id: &str) -> Option<Arc<str>> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("session lock");
        // `get_mut` also makes it the most recently used.
        let record = sessions.get_mut(id)?;
        if self.expired(record, now) {
            sessions.pop(id);
            return None;
        }
        record.last_used = now;
        Some(record.user.clone())
    }

    fn remove(&self, id: &str) {
        self.sessions.lock().expect("session lock").pop(id);
    }

    fn remove_user(&self, user: &str) {
        let mut sessions = self.sessions.lock().expect("session lock");
        let ids: Vec<String> = sessions
            .iter()
            .filter(|(_, r)| &*r.user == user)
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

/// A fresh session id: 256 bits from the OS-seeded CSPRNG.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the shape of an id this gateway mints.
fn is_well_formed_id(value: &str) -> bool {
    value.len() == SESSION_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The values of every cookie named `name` in the request, in order, keeping only
/// those shaped like our ids.
pub fn session_ids<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v.trim_matches('"'))
        })
        .filter(|v| is_well_formed_id(v))
}

/// Whether the request carries a cookie named `name` at all (well-formed or not).
pub fn carries_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().split_once('=').is_some_and(|(n, _)| n == name))
}

/// The `Cookie` header value without the cookie named `name`; `None` when nothing
/// else is left. Used so the gateway's session cookie never reaches Livy.
pub fn strip_cookie(headers: &HeaderMap, name: &str) -> Option<HeaderValue> {
    let mut values = headers.get_all(COOKIE).iter();
    if let (Some(only), None) = (values.next(), values.next()) {
        // The usual case, said without parsing: the one cookie is the gateway's own.
        let only = only.as_bytes();
        if only.len() > name.len()
            && only.starts_with(name.as_bytes())
            && only[name.len()] == b'='
            && !only.contains(&b';')
        {
            return None;
        }
    }
    let mut kept = String::new();
    let pairs = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim);
    for pair in pairs {
        if pair.is_empty() || pair.split_once('=').map_or(pair, |(n, _)| n) == name {
            continue;
        }
        if !kept.is_empty() {
            kept.push_str("; ");
        }
        kept.push_str(pair);
    }
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept).ok()
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie_value(name: &str, id: &str, path: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={id}; Path={path}; Secure; HttpOnly; SameSite=Strict"
    ))
    .expect("cookie name, id and path are validated tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MemorySessionStore {
        MemorySessionStore::new(Duration::from_secs(60), Duration::from_secs(300), 3)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timeout_ends_an_unused_session() {
        let s = store();
        let id = s.create("alice");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(s.touch(&id).as_deref(), Some("alice"));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            s.touch(&id).as_deref(),
            Some("alice"),
            "use refreshes idle time"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(s.touch(&id), None);
        assert_eq!(s.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn absolute_timeout_ends_a_busy_session() {
        let s = store();
        let id = s.create("alice");
        for _ in 0..9 {
            tokio::time::advance(Duration::from_secs(30)).await;
            assert!(s.touch(&id).is_some());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(s.touch(&id), None);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_evicting_the_least_recently_used() {
        let s = store();
        let a = s.create("a");
        let b = s.create("b");
        let c = s.create("c");
        s.remove(&b);
        let d = s.create("d");
        assert_eq!(s.len(), 3, "a freed slot is reused before evicting");
        // `a` is the oldest, but in use: `c` goes instead.
        assert!(s.touch(&a).is_some());
        let e = s.create("e");
        assert_eq!(s.len(), 3);
        assert!(s.touch(&c).is_none(), "the least recently used went");
        for id in [&d, &e, &a] {
            assert!(s.touch(id).is_some());
        }
        // A flood of logins never pushes out a session kept in use.
        for _ in 0..100 {
            s.create("flood");
            assert!(s.touch(&a).is_some());
            assert!(s.len() <= 3);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sweeping_drops_idle_and_overage_sessions_only() {
        let s = MemorySessionStore::new(Duration::from_secs(60), Duration::from_secs(100), 10);
        let busy = s.create("busy");
        let idle = s.create("idle");
        tokio::time::advance(Duration::from_secs(50)).await;
        let fresh = s.create("fresh");
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

    #[test]
    fn ids_are_random_and_well_formed() {
        let a = new_session_id();
        assert_eq!(a.len(), SESSION_ID_LEN);
        assert!(is_well_formed_id(&a));
        assert_ne!(a, new_session_id());
    }

    #[test]
    fn cookie_parsing_and_stripping() {
        let id = new_session_id();
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("a=1; JSESSIONID={id}; b=2")).unwrap(),
        );
        h.append(COOKIE, HeaderValue::from_static("JSESSIONID=forged"));
        assert_eq!(
            session_ids(&h, "JSESSIONID").collect::<Vec<_>>(),
            vec![id.as_str()]
        );
        assert_eq!(strip_cookie(&h, "JSESSIONID").unwrap(), "a=1; b=2");
        assert!(carries_cookie(&h, "JSESSIONID"));
        assert!(!carries_cookie(&h, "JSESSION"));
        let mut only = HeaderMap::new();
        only.insert(
            COOKIE,
            HeaderValue::from_str(&format!("JSESSIONID={id}")).unwrap(),
        );
        assert_eq!(strip_cookie(&only, "JSESSIONID"), None);
        // One header that merely starts like the session cookie keeps its cookies.
        for (value, kept) in [
            ("JSESSIONIDX=1", Some("JSESSIONIDX=1")),
            ("JSESSIONID=a;b=2", Some("b=2")),
            ("JSESSIONID=a; JSESSIONID_OLD=b", Some("JSESSIONID_OLD=b")),
            ("JSESSIONID", None),
        ] {
            only.insert(COOKIE, HeaderValue::from_static(value));
            assert_eq!(
                strip_cookie(&only, "JSESSIONID"),
                kept.map(HeaderValue::from_static),
                "{value}"
            );
        }
    }
}
