//! `GET /gateway/<topology>/usage`, answered by the gateway: the caller's live
//! sessions and batches against their limits, and the queues they may use
//! (`[policy]`). Administrators may name a user (`?user=NAME`) or, as
//! administrators, see every user who has anything live. Counts come from Livy's
//! own listings (so they are right even for jobs that ended unseen), which also
//! set the quota counts right when quotas are counted.

use std::collections::BTreeMap;

use http::header::{HeaderValue, CACHE_CONTROL};
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::Principal;
use crate::body::Body;
use crate::config::EffectivePolicy;
use crate::error::{json_response, RequestError};
use crate::state::quotas::now_ms;
use crate::state::Kind;

/// Whether `path` is the usage route under `prefix` (`/gateway/<topology>`).
pub(super) fn is_usage(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest == "/usage" || rest == "/usage/")
}

impl Gateway {
    /// Answers the usage route.
    pub(super) async fn usage(
        &self,
        parts: &http::request::Parts,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        ctx.action = Some("usage");
        if parts.method != Method::GET {
            return Err(RequestError::MethodNotAllowed);
        }
        let named = parts
            .uri
            .query()
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
            .find(|(key, _)| key == "user")
            .map(|(_, value)| value.into_owned());
        let wanted: Option<String> = match named {
            Some(user) if user == *principal.user || principal.admin => Some(user),
            Some(_) => {
                return Err(RequestError::Forbidden(
                    "only administrators may see another user's usage".into(),
                ))
            }
            None if principal.admin => None,
            None => Some(principal.user.to_string()),
        };
        ctx.resource = wanted.clone();

        let mut live: BTreeMap<String, [usize; 2]> = BTreeMap::new();
        for (slot, kind) in [Kind::Session, Kind::Batch].into_iter().enumerate() {
            let asked = now_ms();
            let (listed, _) = self.livy_listing(kind, Some(conn), ctx).await?;
            for (_, owner) in &listed {
                if wanted.as_ref().is_none_or(|w| w == owner) {
                    live.entry(owner.clone()).or_default()[slot] += 1;
                }
            }
            if self.config.policy.counts() {
                let users = wanted.as_ref().map(|u| vec![u.clone()]);
                self.state
                    .quotas
                    .reconcile(kind, &listed, asked, users.as_deref())
                    .await?;
            }
        }
        let answer = match wanted {
            Some(user) => {
                let counts = live.get(&user).copied().unwrap_or_default();
                let policy = self.policy_for(principal, &user).await;
                usage_of(&user, counts, &policy)
            }
            None => {
                let mut users = Vec::new();
                for (user, counts) in &live {
                    let policy = self.policy_for(principal, user).await;
                    users.push(usage_of(user, *counts, &policy));
                }
                json!({ "users": users })
            }
        };
        let mut response = json_response(StatusCode::OK, &answer);
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

/// One user's usage: `[sessions, batches]` live, against `policy`.
fn usage_of(user: &str, live: [usize; 2], policy: &EffectivePolicy) -> Value {
    let limit = |n: u32| match n {
        0 => Value::Null,
        n => json!(n),
    };
    json!({
        "user": user,
        "sessions": {"live": live[0], "limit": limit(policy.max_sessions_per_user)},
        "batches": {"live": live[1], "limit": limit(policy.max_batches_per_user)},
        "queues": policy.queues,
        "groups": policy.groups,
        "idle_session_timeout_mins": limit(policy.idle_session_timeout_mins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_is_under_the_topology() {
        assert!(is_usage("/gateway/default/usage", "/gateway/default"));
        assert!(is_usage("/gateway/default/usage/", "/gateway/default"));
        assert!(!is_usage("/gateway/default/usages", "/gateway/default"));
        assert!(!is_usage("/gateway/other/usage", "/gateway/default"));
    }
}
