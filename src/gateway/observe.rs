//! Phase 8, observe: every answered request is counted in the metrics, written as
//! one access line ([`crate::access`], when the log filter enables the target
//! `livy_gateway::access`) and one audit line. Both lines are queued for writer
//! threads; nothing here waits on a disk. Which
//! counter an error adds to and the reason it is audited with are decided in
//! [`crate::error`]; client text is clipped here ([`logging::clip`]).

use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
use crate::access::{AccessLine, AccessLog};
use crate::audit::AuditEvent;
use crate::error::{AuthFailure, Counted, RequestError};
use crate::logging;
use crate::metrics::{self, Metrics};

impl Gateway {
    /// The metrics, one access line and one audit line for a finished request.
    pub(super) fn observe(
        &self,
        ctx: &RequestContext,
        conn: &ConnInfo,
        method: &Method,
        path: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        self.count(ctx, method, status, elapsed);
        // Paths come from clients, authenticated or not: bounded in every line.
        let path = &*logging::clip(path);
        let now = SystemTime::now();
        if let Some(access) = self.logs.access.as_ref().filter(|_| AccessLog::enabled()) {
            access.record(&AccessLine {
                time: now,
                request_id: ctx.request_id.as_str(),
                client: conn.client(),
                method: method.as_str(),
                path,
                status: status.as_u16(),
                user: ctx.user.as_deref(),
                action: ctx.action,
                auth: ctx.auth_method,
                session_cookie: ctx.session_cookie,
                auth_failure: ctx.auth_failure.map(AuthFailure::as_str),
                error: ctx.error.as_ref().map(RequestError::code),
                duration: elapsed,
                upstream: ctx.upstream_time,
            });
        }
        let Some(audit) = &self.logs.audit else {
            return;
        };
        let (outcome, reason) = match &ctx.error {
            None if ctx.removed_params.is_empty() => ("allowed", ctx.policy_note.clone()),
            None => (
                "allowed",
                Some(format!(
                    "identity parameters removed: {}",
                    logging::clip(&ctx.removed_params.join(", "))
                )),
            ),
            Some(e) if e.is_denial() => ("denied", Some(e.audit_reason())),
            Some(e) => ("error", Some(e.audit_reason())),
        };
        audit.record(&AuditEvent {
            time: now,
            request_id: ctx.request_id.as_str(),
            client: conn.client(),
            user: ctx.user.as_deref(),
            effective_user: ctx.effective_user.as_deref(),
            method: method.as_str(),
            path,
            action: ctx.action,
            resource: ctx.resource.as_deref(),
            status: status.as_u16(),
            upstream_status: ctx.upstream_status,
            outcome,
            reason,
            grants: ctx.grants.as_deref(),
            token: ctx.token.as_deref(),
            auth: ctx.auth_method,
        });
    }

    /// The audit line for something the gateway did on its own behalf (the
    /// policy's upkeep): `action` on `path` for `user`, as Livy answered it.
    pub(super) fn audit_upkeep(
        &self,
        action: &'static str,
        user: &str,
        path: &str,
        status: StatusCode,
    ) {
        let Some(audit) = &self.logs.audit else {
            return;
        };
        let resource = path.rsplit('/').next();
        audit.record(&AuditEvent {
            time: SystemTime::now(),
            request_id: "upkeep",
            client: "livy-gateway",
            user: None,
            effective_user: Some(user),
            method: Method::DELETE.as_str(),
            path,
            action: Some(action),
            resource,
            status: status.as_u16(),
            upstream_status: Some(status.as_u16()),
            outcome: "allowed",
            reason: Some("idle longer than policy.idle_session_timeout_mins".into()),
            grants: None,
            token: None,
            auth: None,
        });
    }

    /// Counts a finished request in the metrics.
    fn count(&self, ctx: &RequestContext, method: &Method, status: StatusCode, elapsed: Duration) {
        let m = &self.metrics;
        m.request_answered(
            ctx.action.unwrap_or("none"),
            metrics::method_label(method),
            status.as_u16(),
            elapsed,
            ctx.upstream_time,
        );
        match ctx
            .error
            .as_ref()
            .map_or(Counted::Nowhere, RequestError::counted)
        {
            Counted::Auth(outcome) => m.auth_outcome(outcome),
            Counted::RateLimited(kind) => Metrics::kind(&m.rate_limited, kind),
            Counted::Upstream(kind) => Metrics::kind(&m.upstream_errors, kind),
            Counted::Unavailable(dependency) => Metrics::kind(&m.unavailable, dependency),
            Counted::Policy(rule) => Metrics::kind(&m.policy_refusals, rule),
            Counted::Nowhere => {}
        }
        if let Some(method) = ctx.auth_method {
            m.auth_outcome(method);
        }
    }
}
