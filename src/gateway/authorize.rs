//! Phase 4, authorize: the Livy policy. Administrators may do anything; users only
//! use their own batches and sessions. A resource the caller may not see is
//! answered exactly as a missing one, without reaching Livy.

use serde_json::Value;

use super::confirm::Viewed;
use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::Principal;
use crate::error::RequestError;
use crate::livy::{self, listing, Operation, Scope};
use crate::route::Route;
use crate::state::{Change, Kind};

/// What the authorize phase decided to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Forward as is (open endpoints; administrators' listings and other paths).
    Pass,
    /// A creation: assert `proxyUser` in the body, record the owner from the 201.
    Create(Kind),
    /// A listing narrowed to the caller's own resources.
    List(Kind, listing::Page),
    /// Access to one resource the caller may use. `path` replaces the Livy path when
    /// a name was resolved to an id; `confirm`: a user's request on it (but for
    /// the view itself, which names its owner), sent once Livy's own view agrees
    /// with the record ([`super::confirm`]).
    Item {
        kind: Kind,
        id: u64,
        path: Option<String>,
        confirm: bool,
    },
}

impl Gateway {
    /// What may be done with `operation` on behalf of `principal`.
    pub(super) async fn authorize(
        &self,
        principal: &Principal,
        operation: &Operation,
        route: &Route,
        conn: &ConnInfo,
        ctx: &mut RequestContext,
    ) -> Result<Plan, RequestError> {
        match &operation.scope {
            Scope::Open => Ok(Plan::Pass),
            Scope::Other if principal.admin => Ok(Plan::Pass),
            Scope::Other => Err(RequestError::NotFound),
            Scope::Create(kind) => {
                self.state.limits.check_create(&principal.user).await?;
                Ok(Plan::Create(*kind))
            }
            Scope::List(_) if principal.admin => Ok(Plan::Pass),
            Scope::List(kind) => Ok(Plan::List(*kind, listing::page(route.query.as_deref())?)),
            Scope::Item { kind, id: segment } => {
                let name = decode_segment(segment);
                ctx.resource = Some(name.clone());
                let numeric = livy::numeric_id(segment);
                if principal.admin {
                    return Ok(numeric.map_or(Plan::Pass, |id| Plan::Item {
                        kind: *kind,
                        id,
                        path: None,
                        confirm: false,
                    }));
                }
                let ownership = &self.state.ownership;
                let prefetched = ctx
                    .prefetched
                    .take()
                    .filter(|p| Some(p.id) == numeric && p.kind == *kind);
                let known = match (numeric, prefetched) {
                    (Some(id), Some(fetched)) => fetched.record.map(|r| (id, r.owner)),
                    (Some(id), None) => ownership.get(*kind, id).await?.map(|r| (id, r.owner)),
                    (None, _) => ownership
                        .find_by_name(*kind, &name)
                        .await?
                        .map(|(id, r)| (id, r.owner)),
                };
                let (id, owner) = match known {
                    Some(known) => known,
                    // Boxed: this rare path would otherwise size every request's future.
                    None => {
                        Box::pin(self.discover_owner(*kind, segment, &name, principal, conn, ctx))
                            .await?
                    }
                };
                if owner != *principal.user {
                    return Err(RequestError::Hidden(name));
                }
                let path = numeric
                    .is_none()
                    .then(|| replace_id_segment(&route.path, id));
                Ok(Plan::Item {
                    kind: *kind,
                    id,
                    path,
                    // A view names its owner itself (checked as it comes back,
                    // `respond`); everything else, read or change, is confirmed.
                    confirm: !matches!(operation.action, "batch.get" | "session.get"),
                })
            }
        }
    }

    /// Asks Livy for a resource the gateway has no record of, to learn its id and
    /// owner from the view (Livy 0.6+ reports `proxyUser`). Only on this uncommon
    /// path does a request cost an extra round trip.
    async fn discover_owner(
        &self,
        kind: Kind,
        segment: &str,
        name: &str,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<(u64, String), RequestError> {
        let path = format!("/{}/{segment}", kind.collection());
        let view = match self.view(&path, principal, conn, ctx, false).await? {
            Viewed::Found(view, _) => view,
            Viewed::Missing | Viewed::Refused => return Err(RequestError::Hidden(name.to_owned())),
        };
        let id = view
            .get("id")
            .and_then(Value::as_u64)
            .ok_or(RequestError::UpstreamFailed)?;
        let owner = listing::view_owner(&view, None)
            .ok_or_else(|| RequestError::Hidden(name.to_owned()))?;
        let known = self.state.ownership.get(kind, id).await?;
        if let Some((id, record)) = listing::learnt(&view, known.as_ref()) {
            self.record(Change::Put(kind, vec![(id, record)])).await;
        }
        Ok((id, owner))
    }
}

/// A path segment, percent-decoded (names may be encoded).
fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// `/batches/nightly/log` with id 7 → `/batches/7/log`.
fn replace_id_segment(path: &str, id: u64) -> String {
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    if segments.len() > 2 {
        segments[2] = id.to_string();
    }
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_ids_in_paths() {
        assert_eq!(
            replace_id_segment("/batches/nightly/log", 7),
            "/batches/7/log"
        );
        assert_eq!(replace_id_segment("/sessions/a%20b", 3), "/sessions/3");
    }
}
