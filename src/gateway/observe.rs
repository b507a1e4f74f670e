//! Phase 8, observe: every answered request is counted in the metrics, written as
//! one access line (target `livy_gateway::access`) and one audit line. Which
//! counter an error adds to and the reason it is audited with are decided in
//! [`crate::error`]; client text is clipped here ([`logging::clip`]).

use std::time::Duration;

use http::{Method, StatusCode};

use super::context::{ConnInfo, RequestContext};
use super::Gateway;
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
        tracing::info!(
            target: "livy_gateway::access",
            request_id = %ctx.request_id,
            client = %conn.peer.ip(),
            %method,
            path,
            status = status.as_u16(),
            user = ctx.user.as_deref().unwrap_or("-"),
            action = ctx.action,
            auth = ctx.auth_method,
            session_cookie = ctx.session_cookie,
            auth_failure = ctx.auth_failure.map(AuthFailure::as_str),
            error = ctx.error.as_ref().map(RequestError::code),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            upstream_ms = ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            "request"
        );
        let Some(audit) = &self.audit else { return };
        let (outcome, reason) = match &ctx.error {
            None if ctx.removed_params.is_empty() => ("allowed", None),
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
            time: std::time::SystemTime::now(),
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
            Counted::Nowhere => {}
        }
        if let Some(method) = ctx.auth_method {
            m.auth_outcome(method);
        }
    }
}
