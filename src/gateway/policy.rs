//! The create policy (`[policy]`), part of deciding a creation: once its body is
//! read and its `proxyUser` asserted, and before Livy is asked, the rules of the
//! user it will run as are applied ([`crate::livy::rules`]) and a place is taken
//! under their quota and the cluster's cap on creations in flight
//! ([`crate::state::quotas`]). The place is settled when Livy has answered: the
//! new resource counts as live, or, for any other outcome, the place is given
//! back.
//!
//! A quota that looks full is checked against Livy's own listing before the
//! refusal (a job may have ended while no one looked): the count is set right for
//! that user and the place asked for again. Live resources are released when the
//! gateway relays a view in a final state, a deletion or Livy's 404.

use serde_json::{Map, Value};

use super::context::{ConnInfo, RequestContext};
use super::respond::buffer;
use super::Gateway;
use crate::auth::{Identity, Principal, Source};
use crate::body::{self, Body};
use crate::config::EffectivePolicy;
use crate::error::RequestError;
use crate::livy::{listing, rules};
use crate::state::quotas::{now_ms, Reserved};
use crate::state::Kind;

/// Livy's states a batch or session never leaves.
pub(super) const FINAL_STATES: [&str; 4] = ["dead", "killed", "error", "success"];

/// How long a place taken for a creation is held past Livy's own time to answer
/// (an instance that stops mid-creation leaves it to lapse).
const HOLD_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

impl Gateway {
    /// The rules `user` is held to: their groups' (the caller's own, or, for an
    /// administrator acting for someone, that user's as the directory has them).
    pub(super) async fn policy_for(&self, principal: &Principal, user: &str) -> EffectivePolicy {
        if *principal.user == *user {
            return self.config.policy.effective(&principal.groups);
        }
        self.policy_of(user).await
    }

    /// The rules `user` is held to, by their groups as the directory has them now
    /// (none without a directory).
    pub(super) async fn policy_of(&self, user: &str) -> EffectivePolicy {
        let mut identity = Identity::new(user, Vec::new());
        identity.source = Source::Directory;
        let groups = match self.auth.current(identity).await {
            Some(current) => current.groups.to_vec(),
            None => Vec::new(),
        };
        self.config.policy.effective(&groups)
    }

    /// Applies the policy to a create `body` of `kind` that will run as
    /// `effective`: refused (403 `policy_denied`, 429 `quota_exceeded`, 503
    /// `creations_busy`) or changed and let through, holding a place.
    pub(super) async fn apply_policy(
        &self,
        kind: Kind,
        body: &mut Map<String, Value>,
        principal: &Principal,
        effective: &str,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<(), RequestError> {
        let policy = self.policy_for(principal, effective).await;
        let applied =
            rules::apply(body, &policy).map_err(|refusal| RequestError::PolicyDenied {
                rule: refusal.rule,
                key: refusal.key,
                value: refusal.value,
            })?;
        let mut notes = Vec::new();
        if !applied.dropped.is_empty() {
            notes.push(format!("dropped {}", applied.dropped.join(", ")));
        }
        if let Some(queue) = applied.queue {
            notes.push(format!("queue {queue} put in"));
        }
        if !notes.is_empty() {
            ctx.policy_note = Some(format!("policy: {}", notes.join("; ")));
        }

        let limit = policy.quota(kind == Kind::Session);
        let cap = self.config.policy.max_creating;
        if limit == 0 && cap == 0 {
            return Ok(());
        }
        let hold =
            self.config.livy.connect_timeout + self.config.livy.response_timeout + HOLD_MARGIN;
        // The first creation this process counts waits for the counts to be set
        // from Livy's listings (a store in memory starts empty).
        self.counted
            .get_or_try_init(|| self.count_all(conn, ctx))
            .await?;
        let quotas = &self.state.quotas;
        let mut reserved = quotas.reserve(kind, effective, limit, cap, hold).await?;
        if matches!(reserved, Reserved::OverQuota { .. }) {
            // Livy's own listing decides before a refusal.
            self.recount(kind, effective, conn, ctx).await?;
            reserved = quotas.reserve(kind, effective, limit, cap, hold).await?;
        }
        match reserved {
            Reserved::Granted(ticket) => {
                ctx.reservation = Some(ticket);
                Ok(())
            }
            Reserved::OverQuota { count } => Err(RequestError::QuotaExceeded {
                quota: match kind {
                    Kind::Session => "max_sessions_per_user",
                    Kind::Batch => "max_batches_per_user",
                },
                what: match kind {
                    Kind::Session => "sessions",
                    Kind::Batch => "batches",
                },
                count,
                limit,
            }),
            Reserved::Busy => Err(RequestError::CreationsBusy),
        }
    }

    /// Settles the place a creation held: `created` is the id Livy gave it (201),
    /// or `None` for any other outcome. Best effort: a place not settled lapses.
    pub(super) async fn settle_reservation(&self, ctx: &mut RequestContext, created: Option<u64>) {
        let Some(ticket) = ctx.reservation.take() else {
            return;
        };
        if let Err(error) = self.state.quotas.settle(&ticket, created).await {
            tracing::warn!(%error, "a creation's quota place was not settled; it lapses");
        }
    }

    /// Sets every count right from Livy's listings.
    async fn count_all(&self, conn: &ConnInfo, ctx: &RequestContext) -> Result<(), RequestError> {
        for kind in [Kind::Session, Kind::Batch] {
            let asked = now_ms();
            let (live, _) = self.livy_listing(kind, Some(conn), ctx).await?;
            self.state
                .quotas
                .reconcile(kind, &live, asked, None)
                .await?;
        }
        Ok(())
    }

    /// Sets `user`'s count of `kind` right from Livy's listing.
    async fn recount(
        &self,
        kind: Kind,
        user: &str,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<(), RequestError> {
        let asked = now_ms();
        let (live, _) = self.livy_listing(kind, Some(conn), ctx).await?;
        self.state
            .quotas
            .reconcile(kind, &live, asked, Some(&[user.to_owned()]))
            .await?;
        Ok(())
    }

    /// Livy's listing of `kind`: the live resources with their owners, and every
    /// resource's state.
    pub(super) async fn livy_listing(
        &self,
        kind: Kind,
        conn: Option<&ConnInfo>,
        ctx: &RequestContext,
    ) -> Result<(Vec<(u64, String)>, Vec<String>), RequestError> {
        let path = format!("/{}", kind.collection());
        let query = format!("from=0&size={}", listing::FETCH_ALL);
        let response = self
            .livy_get(&path, Some(&query), conn, &ctx.request_id)
            .await?;
        if response.status() != http::StatusCode::OK {
            return Err(RequestError::UpstreamFailed);
        }
        let bytes = buffer(response.into_body(), self.settings.max_buffered_response).await?;
        let answer: Value =
            serde_json::from_slice(&bytes).map_err(|_| RequestError::UpstreamFailed)?;
        let views = answer
            .get("sessions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut live = Vec::new();
        let mut states = Vec::new();
        for view in &views {
            let state = view
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            states.push(state.to_owned());
            let Some(id) = view.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if FINAL_STATES.contains(&state) {
                continue;
            }
            let record = match listing::view_owner(view, None) {
                Some(_) => None,
                None => self.state.ownership.get(kind, id).await?,
            };
            if let Some(owner) = listing::view_owner(view, record.as_ref()) {
                live.push((id, owner));
            }
        }
        Ok((live, states))
    }

    /// With quotas counted: a view (or `/state`) of `kind` `id` relayed in a final
    /// state releases it. The body is read only for these small answers.
    pub(super) async fn note_end(
        &self,
        kind: Kind,
        id: u64,
        response: http::Response<Body>,
    ) -> Result<http::Response<Body>, RequestError> {
        let (head, body) = response.into_parts();
        let bytes = buffer(body, self.settings.max_buffered_response).await?;
        let ended = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("state")?.as_str().map(|s| FINAL_STATES.contains(&s)))
            .unwrap_or(false);
        if ended {
            self.release(kind, id).await;
        }
        Ok(http::Response::from_parts(head, body::full(bytes)))
    }

    /// `id` of `kind` no longer counts against its owner's quota. Best effort:
    /// reconciliation catches what this misses.
    pub(super) async fn release(&self, kind: Kind, id: u64) {
        if !self.config.policy.counts() {
            return;
        }
        if let Err(error) = self.state.quotas.release(kind, &[id]).await {
            tracing::warn!(%error, "an ended resource was not released from its quota");
        }
    }
}
