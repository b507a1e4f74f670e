//! The policy's upkeep, run every [`UPKEEP_INTERVAL`] beside the requests (and
//! once at start): quota counts set right from Livy's listings (so they never
//! drift after a crash, a restart or a job that ended while no one looked), the
//! per-state gauges of Livy's batches and sessions, and idle sessions ended.
//!
//! A session is idle from its last statement's completion (Livy's statement
//! view), or, with no statement, from when this instance first saw it idle. One
//! idle past its owner's `idle_session_timeout_mins` is looked at again and
//! deleted (as its owner, `doAs`), with an audit line (`session.reap`) and a
//! metric; a session with a statement waiting or running is never deleted.
//! With several instances each may look; only the deletion Livy accepts is
//! audited.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::Value;

use super::context::RequestContext;
use super::respond::buffer;
use super::Gateway;
use crate::body;
use crate::metrics::ResourceStateLabels;
use crate::state::quotas::now_ms;
use crate::state::Kind;

/// How often the upkeep runs.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Statement states in which a session is working.
const WORKING: [&str; 3] = ["waiting", "running", "cancelling"];

/// When this instance first saw each session idle (Unix ms), by id.
#[derive(Default)]
pub struct IdleSeen(Mutex<HashMap<u64, u64>>);

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkept {
    /// Sessions deleted for idling.
    pub reaped: Vec<u64>,
}

/// Since when an idle session has been idle, by its latest statement (Livy's
/// listing of one, newest first): that statement's completion, or `first_seen`
/// when it has none or no time; `None` while a statement waits or runs.
fn idle_from(statements: &Value, first_seen: u64) -> Option<u64> {
    let last = statements
        .get("statements")
        .and_then(Value::as_array)
        .and_then(|s| s.first());
    let Some(statement) = last else {
        return Some(first_seen);
    };
    let state = statement.get("state").and_then(Value::as_str);
    if state.is_some_and(|s| WORKING.contains(&s)) {
        return None;
    }
    match statement.get("completed").and_then(Value::as_u64) {
        Some(completed) if completed > 0 => Some(completed),
        _ => Some(first_seen),
    }
}

impl Gateway {
    /// One round of upkeep, now.
    pub async fn upkeep(&self) -> Upkept {
        self.upkeep_at(now_ms()).await
    }

    /// One round of upkeep as if at `now` (Unix ms): what idles is judged by it.
    pub async fn upkeep_at(&self, now: u64) -> Upkept {
        let policy = &self.config.policy;
        let mut upkept = Upkept::default();
        if !policy.counts() && !policy.reaps() {
            return upkept;
        }
        let ctx = RequestContext::default();
        for kind in [Kind::Session, Kind::Batch] {
            let asked = now_ms();
            let (live, states) = match self.livy_listing(kind, None, &ctx).await {
                Ok(listing) => listing,
                Err(error) => {
                    tracing::warn!(%error, kind = kind.as_str(), "upkeep: Livy's listing failed");
                    continue;
                }
            };
            self.count_states(kind, &states);
            if policy.counts() {
                if let Err(error) = self.state.quotas.reconcile(kind, &live, asked, None).await {
                    tracing::warn!(%error, "upkeep: quota counts not set right");
                }
            }
            if kind == Kind::Session && policy.reaps() {
                upkept.reaped = self.reap(&live, now, &ctx).await;
            }
        }
        upkept
    }

    /// The per-state gauges of `kind` from a listing's states.
    fn count_states(&self, kind: Kind, states: &[String]) {
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for state in states {
            *counts.entry(state.as_str()).or_default() += 1;
        }
        let gauges = &self.metrics.livy_resources;
        // States no longer seen read 0 rather than their last count.
        for state in [
            "not_started",
            "starting",
            "idle",
            "busy",
            "running",
            "shutting_down",
            "recovering",
            "success",
            "dead",
            "killed",
            "error",
        ] {
            counts.entry(state).or_default();
        }
        for (state, n) in counts {
            gauges
                .get_or_create(&ResourceStateLabels {
                    kind: kind.as_str(),
                    state: state.to_owned(),
                })
                .set(n);
        }
    }

    /// Deletes the sessions of `live` idle past their owner's timeout at `now`.
    async fn reap(&self, live: &[(u64, String)], now: u64, ctx: &RequestContext) -> Vec<u64> {
        let mut reaped = Vec::new();
        let mut seen = self.idle_seen.0.lock().expect("idle lock").clone();
        seen.retain(|id, _| live.iter().any(|(l, _)| l == id));
        for (id, owner) in live {
            let timeout = match self.policy_of(owner).await.idle_session_timeout_mins {
                0 => continue,
                mins => u64::from(mins) * 60_000,
            };
            let Some(since) = self.idle_since(*id, now, &mut seen, ctx).await else {
                seen.remove(id);
                continue;
            };
            if now.saturating_sub(since) < timeout {
                continue;
            }
            // Looked at again just before: a statement may have come in since.
            if self.idle_since(*id, now, &mut seen, ctx).await.is_none() {
                continue;
            }
            if self.end_idle_session(*id, owner, ctx).await {
                seen.remove(id);
                reaped.push(*id);
            }
        }
        *self.idle_seen.0.lock().expect("idle lock") = seen;
        reaped
    }

    /// Since when session `id` has been idle (Unix ms), or `None` if it is not
    /// idle (working, starting, gone) or cannot be told.
    async fn idle_since(
        &self,
        id: u64,
        now: u64,
        seen: &mut HashMap<u64, u64>,
        ctx: &RequestContext,
    ) -> Option<u64> {
        let state = self
            .json_of(&format!("/sessions/{id}/state"), None, ctx)
            .await?;
        if state.get("state").and_then(Value::as_str) != Some("idle") {
            return None;
        }
        let statements = self
            .json_of(
                &format!("/sessions/{id}/statements"),
                Some("order=desc&size=1"),
                ctx,
            )
            .await?;
        let first_seen = *seen.entry(id).or_insert(now);
        idle_from(&statements, first_seen)
    }

    /// Deletes an idle session as its owner; whether Livy accepted.
    async fn end_idle_session(&self, id: u64, owner: &str, ctx: &RequestContext) -> bool {
        let path = format!("/sessions/{id}");
        let query = self.asserted_query(None, owner, &[], &[]);
        let request = match self.livy_request(
            Method::DELETE,
            &path,
            query.query.as_deref(),
            http::HeaderMap::new(),
            body::empty(),
            None,
            &ctx.request_id,
        ) {
            Ok(request) => request,
            Err(_) => return false,
        };
        let status = match self.livy.send(request).await {
            Ok(response) => response.status(),
            Err(error) => {
                tracing::warn!(%error, session = id, "an idle session could not be deleted");
                return false;
            }
        };
        if !status.is_success() {
            return false;
        }
        self.metrics.reaped_sessions.inc();
        self.forget_owner(Kind::Session, id).await;
        tracing::info!(session = id, owner, "idle session deleted");
        self.audit_upkeep("session.reap", owner, &path, status);
        true
    }

    /// Livy's JSON answer to `GET path?query` on the gateway's own behalf, or
    /// `None` for anything but a 200 with JSON.
    async fn json_of(
        &self,
        path: &str,
        query: Option<&str>,
        ctx: &RequestContext,
    ) -> Option<Value> {
        let response = self
            .livy_get(path, query, None, &ctx.request_id)
            .await
            .ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let bytes = buffer(response.into_body(), self.settings.max_buffered_response)
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_session_is_idle_from_its_last_statement_and_never_while_one_works() {
        let seen = 1_000;
        assert_eq!(idle_from(&json!({"statements": []}), seen), Some(seen));
        let done = json!({"statements": [{"id": 3, "state": "available", "completed": 500}]});
        assert_eq!(idle_from(&done, seen), Some(500));
        // Livy 0.5 reports no times: from when the gateway first saw it idle.
        let untimed = json!({"statements": [{"id": 3, "state": "available"}]});
        assert_eq!(idle_from(&untimed, seen), Some(seen));
        for working in ["waiting", "running", "cancelling"] {
            let busy = json!({"statements": [{"id": 4, "state": working, "completed": 0}]});
            assert_eq!(idle_from(&busy, seen), None, "{working}");
        }
    }
}
