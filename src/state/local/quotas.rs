//! Quota counts in this process's memory (one instance; set right from Livy's
//! listings when the gateway starts, as nothing survives a restart).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::state::quotas::{now_ms, QuotaStore, Reserved, Ticket};
use crate::state::{Kind, StoreError};

#[derive(Default)]
struct Counts {
    /// Live resources: owner and when they were counted (Unix ms).
    live: HashMap<(Kind, u64), (String, u64)>,
    /// Each user's live ids, by kind.
    by_user: HashMap<(Kind, String), HashSet<u64>>,
    /// Places taken: ticket → kind, user, lapse.
    pending: HashMap<String, (Kind, String, Instant)>,
    next: u64,
}

impl Counts {
    fn add(&mut self, kind: Kind, id: u64, user: &str, at: u64) {
        self.remove(kind, id);
        self.live.insert((kind, id), (user.to_owned(), at));
        self.by_user
            .entry((kind, user.to_owned()))
            .or_default()
            .insert(id);
    }

    fn remove(&mut self, kind: Kind, id: u64) {
        if let Some((user, _)) = self.live.remove(&(kind, id)) {
            let key = (kind, user);
            if let Some(ids) = self.by_user.get_mut(&key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_user.remove(&key);
                }
            }
        }
    }
}

/// A [`QuotaStore`] in memory.
#[derive(Default)]
pub struct MemoryQuotas(Mutex<Counts>);

impl MemoryQuotas {
    /// [`QuotaStore::settle`], the resource counted as of `at` (Unix ms).
    fn settle_at(&self, ticket: &Ticket, created: Option<u64>, at: u64) {
        let mut counts = self.0.lock().expect("quotas lock");
        counts.pending.remove(&ticket.id);
        if let Some(id) = created {
            counts.add(ticket.kind, id, &ticket.user, at);
        }
    }
}

#[async_trait]
impl QuotaStore for MemoryQuotas {
    async fn reserve(
        &self,
        kind: Kind,
        user: &str,
        limit: u32,
        max_creating: u32,
        hold: Duration,
    ) -> Result<Reserved, StoreError> {
        let now = Instant::now();
        let mut counts = self.0.lock().expect("quotas lock");
        counts.pending.retain(|_, (_, _, lapse)| *lapse > now);
        let live = counts
            .by_user
            .get(&(kind, user.to_owned()))
            .map_or(0, HashSet::len);
        let pending = counts
            .pending
            .values()
            .filter(|(k, u, _)| *k == kind && u == user)
            .count();
        let count = (live + pending) as u64;
        if limit > 0 && count >= u64::from(limit) {
            return Ok(Reserved::OverQuota { count });
        }
        if max_creating > 0 && counts.pending.len() >= max_creating as usize {
            return Ok(Reserved::Busy);
        }
        counts.next += 1;
        let id = counts.next.to_string();
        counts
            .pending
            .insert(id.clone(), (kind, user.to_owned(), now + hold));
        Ok(Reserved::Granted(Ticket {
            id,
            kind,
            user: user.to_owned(),
        }))
    }

    async fn settle(&self, ticket: &Ticket, created: Option<u64>) -> Result<(), StoreError> {
        self.settle_at(ticket, created, now_ms());
        Ok(())
    }

    async fn release(&self, kind: Kind, ids: &[u64]) -> Result<(), StoreError> {
        let mut counts = self.0.lock().expect("quotas lock");
        for id in ids {
            counts.remove(kind, *id);
        }
        Ok(())
    }

    async fn live(
        &self,
        kind: Kind,
        user: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<u64>>, StoreError> {
        let counts = self.0.lock().expect("quotas lock");
        let mut live = BTreeMap::new();
        for ((k, owner), ids) in &counts.by_user {
            if *k == kind && user.is_none_or(|u| u == owner) {
                let mut ids: Vec<u64> = ids.iter().copied().collect();
                ids.sort_unstable();
                live.insert(owner.clone(), ids);
            }
        }
        Ok(live)
    }

    async fn reconcile(
        &self,
        kind: Kind,
        live: &[(u64, String)],
        asked: u64,
        users: Option<&[String]>,
    ) -> Result<(), StoreError> {
        let concerned = |user: &str| users.is_none_or(|u| u.iter().any(|x| x == user));
        let mut counts = self.0.lock().expect("quotas lock");
        let listed: HashMap<u64, &String> = live.iter().map(|(id, u)| (*id, u)).collect();
        let stale: Vec<u64> = counts
            .live
            .iter()
            .filter(|((k, id), (user, at))| {
                *k == kind && *at < asked && concerned(user) && !listed.contains_key(id)
            })
            .map(|((_, id), _)| *id)
            .collect();
        for id in stale {
            counts.remove(kind, id);
        }
        for (id, user) in live {
            let known = counts.live.get(&(kind, *id)).map(|(u, _)| u);
            if concerned(user) && known != Some(user) {
                counts.add(kind, *id, user, asked);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(60);

    async fn granted(q: &MemoryQuotas, user: &str, limit: u32) -> Ticket {
        match q
            .reserve(Kind::Session, user, limit, 0, HOLD)
            .await
            .unwrap()
        {
            Reserved::Granted(ticket) => ticket,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn places_in_flight_count_until_settled_and_live_ones_until_released() {
        let q = MemoryQuotas::default();
        let first = granted(&q, "alice", 2).await;
        let _second = granted(&q, "alice", 2).await;
        assert_eq!(
            q.reserve(Kind::Session, "alice", 2, 0, HOLD).await.unwrap(),
            Reserved::OverQuota { count: 2 }
        );
        // Batches and other users count apart.
        assert!(matches!(
            q.reserve(Kind::Batch, "alice", 2, 0, HOLD).await.unwrap(),
            Reserved::Granted(_)
        ));
        granted(&q, "bob", 2).await;
        q.settle(&first, Some(7)).await.unwrap();
        assert_eq!(
            q.live(Kind::Session, Some("alice")).await.unwrap()["alice"],
            [7]
        );
        q.release(Kind::Session, &[7]).await.unwrap();
        assert!(q
            .live(Kind::Session, Some("alice"))
            .await
            .unwrap()
            .is_empty());
        granted(&q, "alice", 2).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_place_never_settled_lapses() {
        let q = MemoryQuotas::default();
        granted(&q, "alice", 1).await;
        assert!(matches!(
            q.reserve(Kind::Session, "alice", 1, 0, HOLD).await.unwrap(),
            Reserved::OverQuota { .. }
        ));
        tokio::time::advance(HOLD + Duration::from_secs(1)).await;
        granted(&q, "alice", 1).await;
    }

    #[tokio::test]
    async fn creations_in_flight_are_capped_for_everyone() {
        let q = MemoryQuotas::default();
        let t = match q.reserve(Kind::Batch, "alice", 0, 1, HOLD).await.unwrap() {
            Reserved::Granted(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            q.reserve(Kind::Session, "bob", 0, 1, HOLD).await.unwrap(),
            Reserved::Busy
        );
        q.settle(&t, None).await.unwrap();
        assert!(matches!(
            q.reserve(Kind::Session, "bob", 0, 1, HOLD).await.unwrap(),
            Reserved::Granted(_)
        ));
    }

    #[tokio::test]
    async fn livys_listing_sets_the_count_right() {
        let q = MemoryQuotas::default();
        for id in [1, 2] {
            let t = granted(&q, "alice", 0).await;
            q.settle_at(&t, Some(id), 1_000);
        }
        // 2 ended unseen; 5 was made behind the gateway's back (or before a restart).
        q.reconcile(
            Kind::Session,
            &[(1, "alice".into()), (5, "bob".into())],
            2_000,
            None,
        )
        .await
        .unwrap();
        let live = q.live(Kind::Session, None).await.unwrap();
        assert_eq!(live["alice"], [1]);
        assert_eq!(live["bob"], [5]);
        // A creation counted after the listing was asked for is kept.
        let t = granted(&q, "alice", 0).await;
        q.settle_at(&t, Some(9), 3_000);
        q.reconcile(Kind::Session, &[], 2_500, Some(&["alice".into()]))
            .await
            .unwrap();
        let live = q.live(Kind::Session, None).await.unwrap();
        assert_eq!(live["alice"], [9]);
        assert_eq!(live["bob"], [5], "only alice's was set right");
    }
}
