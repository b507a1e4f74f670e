//! This instance's near cache of what the cookie path reads from Redis: which
//! session ids are live (and for whom) and the ownership records request paths
//! name, each kept for at most `state.local_cache_ms`, so that a busy session costs
//! Redis a round trip a second on each instance rather than one a request.
//!
//! Only requests that no rate limit applies to are answered from it: a limit is
//! counted in Redis at every request, and that round trip brings the session with
//! it anyway.
//!
//! What keeps it honest:
//! - every script that ends a session or changes a record publishes the key on
//!   `<prefix>invalidate`, and [`listen`] drops this instance's copy when the
//!   message comes, so an ended session is refused everywhere as soon as Redis has
//!   told the instances, not when their copies run out;
//! - while that subscription is not in place (not yet made, Redis restarted, the
//!   connection broken, a ping unanswered within `state.timeout_ms`) the cache is
//!   empty and nothing is kept;
//! - an answer is kept only if no message came and the subscription did not change
//!   while it was read from Redis (the epoch), so a message cannot overtake the
//!   answer it invalidates;
//! - a copy never outlives its session's time to live in Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use crate::auth::Identity;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::state::Record;

/// Copies kept at most; past it, stale ones are dropped and new ones not kept.
const CAPACITY: usize = 100_000;
/// How often the subscription is checked with a ping.
const PING_EVERY: Duration = Duration::from_secs(1);

/// What Redis said about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A session key: the identity while live, `None` when there is no such session.
    Session(Option<Identity>),
    /// A record key: the record, `None` when there is none.
    Record(Option<Record>),
}

struct Entry {
    value: Cached,
    until: Instant,
}

/// The cache, shared by the request path and its [`listen`] task.
pub struct NearCache {
    max_age: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    /// Moved by every message and every change of the subscription, under the
    /// entries' lock.
    epoch: AtomicU64,
    /// Whether the invalidation channel is subscribed now.
    live: AtomicBool,
    hits: Counter,
    misses: Counter,
    resets: Counter,
}

impl NearCache {
    pub fn new(max_age: Duration, metrics: &Metrics) -> Self {
        let outcome = |outcome| {
            metrics
                .state_cache
                .get_or_create(&OutcomeLabels { outcome })
                .clone()
        };
        Self {
            max_age,
            entries: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            hits: outcome("hit"),
            misses: outcome("miss"),
            resets: metrics.state_cache_resets.clone(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere cannot leave the map half changed: every change is one call.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epoch to read Redis under, or `None` while nothing may be kept.
    pub fn epoch(&self) -> Option<u64> {
        self.live
            .load(Ordering::Acquire)
            .then(|| self.epoch.load(Ordering::Acquire))
    }

    /// The copy of `key`, if there is a fresh one.
    pub fn get(&self, key: &str) -> Option<Cached> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries();
        let entry = entries.get(key)?;
        (entry.until > Instant::now()).then(|| entry.value.clone())
    }

    /// Keeps what Redis answered under `epoch`, each copy for at most its time to
    /// live (`None`: the cache's own), unless a message came or the subscription
    /// changed since.
    pub fn keep(&self, epoch: u64, items: Vec<(String, Cached, Option<Duration>)>) {
        let now = Instant::now();
        let mut entries = self.entries();
        if !self.live.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() + items.len() > CAPACITY {
            entries.retain(|_, entry| entry.until > now);
        }
        for (key, value, ttl) in items {
            if entries.len() >= CAPACITY {
                break;
            }
            let age = ttl.map_or(self.max_age, |ttl| ttl.min(self.max_age));
            if !age.is_zero() {
                let until = now + age;
                entries.insert(key, Entry { value, until });
            }
        }
    }

    /// Counts a request answered from the cache (`true`) or from Redis.
    pub fn count(&self, hit: bool) {
        match hit {
            true => self.hits.inc(),
            false => self.misses.inc(),
        };
    }

    /// Drops the copy of a key Redis says changed.
    fn invalidate(&self, key: &str) {
        let mut entries = self.entries();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }

    /// Empties the cache as the subscription comes (`live`) or goes.
    fn reset(&self, live: bool) {
        let mut entries = self.entries();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        if !live && self.live.load(Ordering::Acquire) {
            self.resets.inc();
        }
        self.live.store(live, Ordering::Release);
    }
}

/// Follows `<prefix>invalidate` for `cache` for as long as the cache is in use:
/// subscribes (again, after a failure, within a second), drops the keys messages
/// name, pings every second, and empties the cache whenever the subscription is
/// not known to be in place.
pub async fn listen(
    cache: Weak<NearCache>,
    client: redis::Client,
    channel: String,
    timeout: Duration,
) {
    let mut delay = Duration::from_millis(50);
    // Failures to subscribe are warned of once in a row (Redis down is also told
    // by every request's error), then retried every second quietly.
    let mut told = false;
    loop {
        match subscribe(&client, &channel, timeout).await {
            Ok(pubsub) => {
                delay = Duration::from_millis(50);
                told = false;
                let Some(near) = cache.upgrade() else { return };
                near.reset(true);
                drop(near);
                let why = follow(&cache, pubsub, timeout).await;
                let Some(near) = cache.upgrade() else { return };
                near.reset(false);
                tracing::warn!(
                    "state: the near cache's subscription ended ({why}); emptied until it is back"
                );
            }
            Err(error) => {
                if cache.strong_count() == 0 {
                    return;
                }
                match told {
                    false => tracing::warn!(
                        "state: cannot subscribe to {channel} ({error}); the near cache is off until it can"
                    ),
                    true => tracing::debug!("state: cannot subscribe to {channel}: {error}"),
                }
                told = true;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
) -> Result<redis::aio::PubSub, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer in time".into()),
    }
}

/// Applies messages until the subscription fails; says why it ended.
async fn follow(cache: &Weak<NearCache>, pubsub: redis::aio::PubSub, timeout: Duration) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut ticks = tokio::time::interval(PING_EVERY);
    ticks.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return "connection closed".into() };
                let Some(near) = cache.upgrade() else { return "not in use".into() };
                near.invalidate(&String::from_utf8_lossy(message.get_payload_bytes()));
            }
            _ = ticks.tick() => {
                if cache.strong_count() == 0 {
                    return "not in use".into();
                }
                match tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return format!("ping failed: {error}"),
                    Err(_) => return "ping unanswered".into(),
                }
            }
        }
    }
}

/// Starts [`listen`] for `cache`.
pub fn spawn_listener(
    cache: &Arc<NearCache>,
    client: redis::Client,
    channel: String,
    timeout: Duration,
) {
    tokio::spawn(listen(Arc::downgrade(cache), client, channel, timeout));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_age: Duration) -> NearCache {
        let near = NearCache::new(max_age, &Metrics::new());
        near.reset(true);
        near
    }

    fn alice() -> Cached {
        Cached::Session(Some(Identity::new("alice", vec![])))
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_lasts_its_age_or_its_ttl_whichever_is_shorter() {
        let near = cache(Duration::from_secs(1));
        let epoch = near.epoch().unwrap();
        near.keep(
            epoch,
            vec![
                ("s:1".into(), alice(), Some(Duration::from_secs(60))),
                ("s:2".into(), alice(), Some(Duration::from_millis(300))),
                ("r:1".into(), Cached::Record(None), None),
            ],
        );
        assert_eq!(near.get("s:1"), Some(alice()));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(near.get("s:2"), None, "past its time to live in Redis");
        assert_eq!(near.get("r:1"), Some(Cached::Record(None)));
        tokio::time::advance(Duration::from_millis(700)).await;
        assert_eq!(near.get("s:1"), None, "past the cache's own age");
        assert_eq!(near.get("r:1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_read_across_a_message_or_a_lost_subscription_is_not_kept() {
        let near = cache(Duration::from_secs(1));
        let epoch = near.epoch().unwrap();
        near.invalidate("s:other");
        near.keep(epoch, vec![("s:1".into(), alice(), None)]);
        assert_eq!(near.get("s:1"), None);

        let epoch = near.epoch().unwrap();
        near.keep(epoch, vec![("s:1".into(), alice(), None)]);
        near.invalidate("s:1");
        assert_eq!(near.get("s:1"), None, "a message drops the copy");

        let epoch = near.epoch().unwrap();
        near.keep(epoch, vec![("s:1".into(), alice(), None)]);
        near.reset(false);
        assert_eq!(near.epoch(), None);
        assert_eq!(near.get("s:1"), None, "no subscription, no copies");
        near.keep(epoch, vec![("s:1".into(), alice(), None)]);
        near.reset(true);
        assert_eq!(near.get("s:1"), None, "kept while unsubscribed: not kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_stale_copies_and_keeps_no_more() {
        let near = cache(Duration::from_secs(1));
        let epoch = near.epoch().unwrap();
        let many = |from: usize| {
            (from..from + CAPACITY)
                .map(|n| (format!("s:{n}"), Cached::Session(None), None))
                .collect::<Vec<_>>()
        };
        near.keep(epoch, many(0));
        near.keep(epoch, vec![("s:new".into(), alice(), None)]);
        assert_eq!(near.get("s:new"), None, "full of fresh copies");
        tokio::time::advance(Duration::from_secs(2)).await;
        near.keep(epoch, vec![("s:new".into(), alice(), None)]);
        assert_eq!(near.get("s:new"), Some(alice()), "stale copies made room");
        assert_eq!(near.entries().len(), 1);
    }
}
