//! Phase 6 (forward), for a user's request on one batch or session other than
//! its view (`DELETE`, a statement, a cancel, an upload, a log, a state): the
//! owner the gateway's record names is confirmed against Livy's own view before
//! the request goes. (The view names its owner itself, and is checked as it
//! comes back: `respond`.)
//!
//! A Livy restarted without session recovery numbers its batches and sessions
//! from 0 again, so a record can name the owner of an earlier batch with the same
//! id. Livy's view (`proxyUser`, Livy 0.6+) decides: when it names someone else,
//! or Livy has no such resource, the record is replaced (or dropped) and the
//! caller gets 404, as for any resource not theirs.
//!
//! A confirmation holds for as long as the Livy process that gave it lives. The
//! gateway cannot ask Livy when it started, but a TCP connection does not outlive
//! the process at its other end: the request is held to the connections that were
//! already open when the confirming answer came ([`Livy::send_after`]), so it
//! reaches that process or fails, never one restarted since. When none of those
//! is free (Livy restarted and closed them, or the pool let them go while idle),
//! the owner is confirmed again, once, and the request goes on. A busy notebook
//! pays one extra `GET` per Livy restart, not one per cell. With several Livy
//! servers the confirmation names the server too; another server means another
//! confirmation. Livy 0.5 names no owner in its views: there the record alone
//! decides, as before (the `GET` still runs once per process).
//!
//! Confirmations are this instance's own (connections are): a bounded map,
//! forgotten when the resource is deleted.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use http::{Response, StatusCode};
use lru::LruCache;
use serde_json::Value;

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::auth::Principal;
use crate::body::Body;
use crate::error::RequestError;
use crate::livy::listing;
use crate::state::{Change, Kind, Record};
use crate::upstream::{LivyRequest, Served};

/// Confirmations this instance holds at most (the least recently used go first).
const CAPACITY: usize = 10_000;

/// Who was confirmed as the owner of which resource, and by which answer.
pub(crate) struct Confirmations {
    held: Mutex<LruCache<(Kind, u64), Confirmed>>,
}

/// One confirmation: the owner Livy named, and the answer that named them.
struct Confirmed {
    owner: Arc<str>,
    served: Served,
}

impl Default for Confirmations {
    fn default() -> Self {
        Self {
            held: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("non-zero"),
            )),
        }
    }
}

impl Confirmations {
    /// The answer that confirmed `user` as the owner of `(kind, id)`, if one did.
    fn get(&self, kind: Kind, id: u64, user: &str) -> Option<Served> {
        let mut held = self.held.lock().expect("confirmations lock");
        held.get(&(kind, id))
            .filter(|c| *c.owner == *user)
            .map(|c| c.served.clone())
    }

    fn put(&self, kind: Kind, id: u64, owner: Arc<str>, served: Served) {
        let mut held = self.held.lock().expect("confirmations lock");
        held.put((kind, id), Confirmed { owner, served });
    }

    /// Forgets `(kind, id)` (deleted, or found to be someone else's).
    pub(super) fn forget(&self, kind: Kind, id: u64) {
        self.held
            .lock()
            .expect("confirmations lock")
            .pop(&(kind, id));
    }
}

impl Gateway {
    /// Sends `request` on `(kind, id)`, `principal`'s by the record, once Livy's
    /// view agrees (see the module's documentation).
    pub(super) async fn send_confirmed(
        &self,
        request: LivyRequest,
        kind: Kind,
        id: u64,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<Response<Body>, RequestError> {
        let request = match self.confirmations.get(kind, id, &principal.user) {
            Some(served) => match self.livy.send_after(request, &served).await? {
                Ok(response) => return Ok(response),
                Err(unsent) => unsent,
            },
            None => request,
        };
        self.confirm_owner(kind, id, principal, conn, ctx).await?;
        self.livy.send(request).await
    }

    /// Asks Livy for its view of `(kind, id)` as `principal` and holds it against
    /// the record: confirmed (and remembered with the answer's connection), or
    /// the record corrected and 404.
    async fn confirm_owner(
        &self,
        kind: Kind,
        id: u64,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
    ) -> Result<(), RequestError> {
        let path = format!("/{}/{id}", kind.collection());
        let (view, served) = match self.view(&path, principal, conn, ctx, true).await? {
            Viewed::Found(view, served) => (view, served),
            Viewed::Missing => return Err(self.stale_record(kind, id, None).await),
            Viewed::Refused => return Err(RequestError::Hidden(id.to_string())),
        };
        if proxy_user(&view).is_some_and(|owner| owner != &*principal.user) {
            let learnt = listing::learnt(&view, None).map(|(_, record)| record);
            return Err(self.stale_record(kind, id, learnt).await);
        }
        self.metrics.owner_check("confirmed");
        if let Some(served) = served {
            self.confirmations
                .put(kind, id, principal.user.clone(), served);
        }
        Ok(())
    }

    /// Livy names `learnt`'s owner for `(kind, id)`, not the record's: the record
    /// is corrected (dropped, without `learnt`), the caller gets 404.
    pub(super) async fn stale_record(
        &self,
        kind: Kind,
        id: u64,
        learnt: Option<Record>,
    ) -> RequestError {
        tracing::warn!(
            kind = kind.as_str(),
            id,
            "Livy names another owner than the gateway's record (Livy restarted?): record corrected"
        );
        self.metrics.owner_check("stale");
        match learnt {
            Some(record) => {
                self.confirmations.forget(kind, id);
                self.record(Change::Put(kind, vec![(id, record)])).await;
            }
            None => self.forget_owner(kind, id).await,
        }
        RequestError::Hidden(id.to_string())
    }

    /// Drops the record and confirmation of a resource Livy no longer has (and
    /// its place in its owner's quota).
    pub(super) async fn forget_owner(&self, kind: Kind, id: u64) {
        self.confirmations.forget(kind, id);
        self.record(Change::Remove(kind, id)).await;
        self.release(kind, id).await;
    }

    /// Livy's answer to `GET path` as `principal`: the view (and, when `note`,
    /// which server and connection gave it), Livy's 404, or any other refusal.
    pub(super) async fn view(
        &self,
        path: &str,
        principal: &Principal,
        conn: &ConnInfo,
        ctx: &RequestContext,
        note: bool,
    ) -> Result<Viewed, RequestError> {
        let query = self.asserted_query(None, &principal.user, &[], &[]);
        let mut request = self.livy_request(
            http::Method::GET,
            path,
            query.query.as_deref(),
            http::HeaderMap::new(),
            crate::body::empty(),
            Some(conn),
            &ctx.request_id,
        )?;
        request.note = note;
        let response = self.livy.send(request).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Viewed::Missing),
            status if status.is_server_error() => return Err(RequestError::UpstreamFailed),
            _ => return Ok(Viewed::Refused),
        }
        let served = response.extensions().get::<Served>().cloned();
        let limit = self.settings.max_buffered_response;
        let bytes = super::respond::buffer(response.into_body(), limit).await?;
        let view: Value =
            serde_json::from_slice(&bytes).map_err(|_| RequestError::UpstreamFailed)?;
        Ok(Viewed::Found(view, served))
    }
}

/// What Livy answered for one resource.
pub(super) enum Viewed {
    /// Its view, and which connection carried it (when asked).
    Found(Value, Option<Served>),
    /// 404: Livy has no such resource.
    Missing,
    /// Anything else but a server error.
    Refused,
}

/// The owner a view names (Livy 0.6+ reports `proxyUser`).
fn proxy_user(view: &Value) -> Option<&str> {
    view.get("proxyUser")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}
