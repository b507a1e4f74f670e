//! Prometheus metrics (with `prometheus-client`): what the gateway counts, and the
//! text exposition served on the admin listener's `/metrics`.
//!
//! One [`Metrics`] lives for the whole process and survives configuration reloads.
//! Label values come from small fixed sets (Livy actions, methods, statuses,
//! outcomes), never from user input, so series cannot grow without bound.
//!
//! The series every request touches are found through [`Series`], a map of handles
//! under a fast hash, rather than through the family's own lookup, which hashes each
//! label with SipHash under a lock: four of those per request were a measurable
//! share of the gateway's own work. With fixed label sets there is nothing for a
//! hash-flooding attacker to choose, so the faster hash is safe.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Livy action (`batch.create`, …), or `none` for requests never routed.
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectoryLabels {
    /// `connect`, `bind_service`, `search_user`, `bind_user`, `search_groups`.
    pub op: &'static str,
    /// `ok`, `invalid_credentials`, `refused`, `timeout`, `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LogLabels {
    /// `access`, `audit`.
    pub log: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceStateLabels {
    /// `batch` or `session`.
    pub kind: &'static str,
    /// Livy's state name.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// A configured Livy server's `host:port` (from the configuration, never from
    /// a request).
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamOutcomeLabels {
    pub upstream: String,
    /// `answered`, `unreachable`, `failed`, `timeout`, `redirected`.
    pub outcome: &'static str,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub upstream_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// `password` (hash computed), `cached`, `session`, `missing`, `malformed`,
    /// `bad_credentials`, `locked_out`.
    pub auth: Family<OutcomeLabels, Counter>,
    /// By limit: `address`, `user`, `create`.
    pub rate_limited: Family<KindLabels, Counter>,
    pub active_connections: Gauge,
    pub released_connections: Gauge,
    /// By reason: `capacity` (`server.max_connections`), `per_address`.
    pub refused_connections: Family<ReasonLabels, Counter>,
    pub live_sessions: Gauge,
    /// By kind: `error`, `timeout`, `plain_http`.
    pub tls_handshake_failures: Family<KindLabels, Counter>,
    /// By kind: `unavailable`, `timeout`, `failed`, `too_large`.
    pub upstream_errors: Family<KindLabels, Counter>,
    /// Requests refused with 503 because a dependency failed, by kind: `auth` (the
    /// directory), `state` (a state store).
    pub unavailable: Family<KindLabels, Counter>,
    /// By outcome: `success`, `failure`.
    pub reloads: Family<OutcomeLabels, Counter>,
    /// Log lines dropped because the disk did not keep up, by log: `access`, `audit`.
    pub log_lines_dropped: Family<LogLabels, Counter>,
    /// Directory (LDAP) operations by kind and outcome.
    pub directory_operations: Family<DirectoryLabels, Counter>,
    /// How long directory operations took, by kind.
    pub directory_duration: Family<OpLabels, Histogram, fn() -> Histogram>,
    /// Shared state store (Redis) operations that failed or timed out, by kind.
    pub state_errors: Family<OpLabels, Counter>,
    /// Rate-limit checks decided by this instance's own limiter because the shared
    /// store failed, by kind (`ip`, `user`, `create`).
    pub rate_limit_fallbacks: Family<KindLabels, Counter>,
    /// Cookie-path lookups of the Redis backend's near cache, by outcome: `hit`
    /// (answered without Redis), `miss`.
    pub state_cache: Family<OutcomeLabels, Counter>,
    /// Times the near cache was emptied because its invalidation channel was lost.
    pub state_cache_resets: Counter,
    /// Ownership changes learnt from Livy's answers that the state store could not
    /// save, even when tried again.
    pub ownership_unsaved: Counter,
    /// Owners confirmed with Livy before a state-changing request (once per Livy
    /// process and resource), by outcome: `confirmed`, `stale` (Livy names another
    /// owner, or has no such resource).
    pub owner_checks: Family<OutcomeLabels, Counter>,
    /// Browser sign-ins (`[auth.oidc]`), by outcome: `started`, `signed_in`,
    /// `denied`, `refused`, `forbidden`, `unknown_state`, `provider_error`.
    pub signins: Family<OutcomeLabels, Counter>,
    /// 1 while a Livy server answers (its last check or request), else 0.
    pub upstream_up: Family<UpstreamLabels, Gauge>,
    /// 1 for the Livy server requests go to.
    pub upstream_active: Family<UpstreamLabels, Gauge>,
    /// Attempts at each Livy server, by outcome.
    pub upstream_attempts: Family<UpstreamOutcomeLabels, Counter>,
    /// Creations `[policy]` refused, by rule or quota.
    pub policy_refusals: Family<KindLabels, Counter>,
    /// Livy's batches and sessions by state, as last listed.
    pub livy_resources: Family<ResourceStateLabels, Gauge>,
    /// Idle sessions the gateway ended.
    pub reaped_sessions: Counter,
    /// Handles into `requests`, by (route, method, status).
    request_series: Series<(&'static str, &'static str, u16), Counter>,
    /// Handles into `request_duration`, by route.
    duration_series: Series<&'static str, Histogram>,
    /// Handles into `upstream_duration`, by route.
    upstream_series: Series<&'static str, Histogram>,
    /// Handles into `auth`, by outcome.
    auth_series: Series<&'static str, Counter>,
}

/// Handles to the series of one or more families, by label values. A handle shares
/// its value with the series in the family, which is what the exposition reads.
struct Series<K, M> {
    map: RwLock<HashMap<K, M, foldhash::fast::RandomState>>,
}

impl<K: Hash + Eq, M: Clone> Series<K, M> {
    fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::default()),
        }
    }

    /// Runs `f` on the handle for `key`, taking it from the families (`create`) the
    /// first time.
    fn with(&self, key: K, create: impl FnOnce() -> M, f: impl FnOnce(&M)) {
        if let Some(handle) = self.map.read().expect("metrics series lock").get(&key) {
            return f(handle);
        }
        let handle = self
            .map
            .write()
            .expect("metrics series lock")
            .entry(key)
            .or_insert_with(create)
            .clone();
        f(&handle)
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("livy_gateway");
        let m = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            auth: Family::default(),
            rate_limited: Family::default(),
            active_connections: Gauge::default(),
            released_connections: Gauge::default(),
            refused_connections: Family::default(),
            live_sessions: Gauge::default(),
            tls_handshake_failures: Family::default(),
            upstream_errors: Family::default(),
            unavailable: Family::default(),
            reloads: Family::default(),
            log_lines_dropped: Family::default(),
            directory_operations: Family::default(),
            directory_duration: Family::new_with_constructor(latency_histogram),
            state_errors: Family::default(),
            rate_limit_fallbacks: Family::default(),
            state_cache: Family::default(),
            state_cache_resets: Counter::default(),
            ownership_unsaved: Counter::default(),
            owner_checks: Family::default(),
            signins: Family::default(),
            upstream_up: Family::default(),
            upstream_active: Family::default(),
            upstream_attempts: Family::default(),
            policy_refusals: Family::default(),
            livy_resources: Family::default(),
            reaped_sessions: Counter::default(),
            request_series: Series::new(),
            duration_series: Series::new(),
            upstream_series: Series::new(),
            auth_series: Series::new(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests answered, by Livy action, method and status",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers, by Livy action",
            m.request_duration.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time Livy took to answer, by Livy action",
            m.upstream_duration.clone(),
        );
        registry.register("auth", "Authentication outcomes", m.auth.clone());
        registry.register(
            "policy_refusals",
            "Creations refused by the policy, by rule or quota",
            m.policy_refusals.clone(),
        );
        registry.register(
            "livy_resources",
            "Livy batches and sessions by state, as the gateway last listed them",
            m.livy_resources.clone(),
        );
        registry.register(
            "reaped_sessions",
            "Idle sessions the gateway deleted",
            m.reaped_sessions.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "active_connections",
            "Open client connections",
            m.active_connections.clone(),
        );
        registry.register(
            "released_connections",
            "Idle HTTP/1.1 connections holding no HTTP buffers until the client sends again (also counted as open)",
            m.released_connections.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed at once because a connection limit was reached, by reason",
            m.refused_connections.clone(),
        );
        registry.register(
            "live_sessions",
            "Login sessions held in memory",
            m.live_sessions.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            m.tls_handshake_failures.clone(),
        );
        registry.register(
            "upstream_errors",
            "Livy requests that failed, by kind",
            m.upstream_errors.clone(),
        );
        registry.register(
            "unavailable",
            "Requests answered 503 because a dependency failed, by kind (auth, state)",
            m.unavailable.clone(),
        );
        registry.register(
            "directory_operations",
            "Directory (LDAP) operations, by kind and outcome",
            m.directory_operations.clone(),
        );
        registry.register(
            "directory_duration_seconds",
            "Time directory (LDAP) operations took, by kind",
            m.directory_duration.clone(),
        );
        registry.register(
            "state_errors",
            "Shared state store (Redis) operations that failed or timed out, by kind",
            m.state_errors.clone(),
        );
        registry.register(
            "rate_limit_fallbacks",
            "Rate-limit checks decided by this instance alone because the shared store failed, by kind",
            m.rate_limit_fallbacks.clone(),
        );
        registry.register(
            "state_cache_lookups",
            "Cookie-path lookups in the Redis backend's near cache, by outcome (hit: answered without Redis)",
            m.state_cache.clone(),
        );
        registry.register(
            "state_cache_resets",
            "Times the near cache was emptied because its invalidation channel was lost",
            m.state_cache_resets.clone(),
        );
        registry.register(
            "ownership_unsaved",
            "Ownership changes learnt from Livy's answers that the state store could not save after retries",
            m.ownership_unsaved.clone(),
        );
        registry.register(
            "owner_checks",
            "Owners confirmed with Livy before a state-changing request, by outcome (confirmed, stale)",
            m.owner_checks.clone(),
        );
        registry.register(
            "signins",
            "Browser sign-ins at the identity provider, by outcome",
            m.signins.clone(),
        );
        registry.register(
            "upstream_up",
            "Whether each Livy server answers (1) or not (0), from its last health check or request",
            m.upstream_up.clone(),
        );
        registry.register(
            "upstream_active",
            "The Livy server requests go to (1)",
            m.upstream_active.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Requests sent (or tried) to each Livy server, by outcome",
            m.upstream_attempts.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Access and audit lines dropped because the disk did not keep up, by log",
            m.log_lines_dropped.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by outcome",
            m.reloads.clone(),
        );
        Self { registry, ..m }
    }

    /// Stops exporting the series of a Livy server (or ResourceManager) a reload
    /// took out of the configuration, so no stale `upstream_up` stays behind.
    pub fn forget_upstream(&self, upstream: &str) {
        let labels = UpstreamLabels {
            upstream: upstream.to_owned(),
        };
        self.upstream_up.remove(&labels);
        self.upstream_active.remove(&labels);
        for outcome in crate::upstream::peers::Outcome::labels() {
            self.upstream_attempts.remove(&UpstreamOutcomeLabels {
                upstream: upstream.to_owned(),
                outcome,
            });
        }
    }

    /// The counter of lines dropped from `log` (`access`, `audit`).
    pub fn dropped_lines(&self, log: &'static str) -> Counter {
        self.log_lines_dropped
            .get_or_create(&LogLabels { log })
            .clone()
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn auth_outcome(&self, outcome: &'static str) {
        self.auth_series.with(
            outcome,
            || self.auth.get_or_create(&OutcomeLabels { outcome }).clone(),
            |counter| {
                counter.inc();
            },
        );
    }

    /// Counts one answered request and records how long it (and Livy) took.
    pub fn request_answered(
        &self,
        route: &'static str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
        upstream: Option<Duration>,
    ) {
        self.request_series.with(
            (route, method, status),
            || {
                self.requests
                    .get_or_create(&RequestLabels {
                        route,
                        method,
                        status,
                    })
                    .clone()
            },
            |counter| {
                counter.inc();
            },
        );
        let labels = RouteLabels { route };
        self.duration_series.with(
            route,
            || self.request_duration.get_or_create(&labels).clone(),
            |histogram| histogram.observe(elapsed.as_secs_f64()),
        );
        if let Some(upstream) = upstream {
            self.upstream_series.with(
                route,
                || self.upstream_duration.get_or_create(&labels).clone(),
                |histogram| histogram.observe(upstream.as_secs_f64()),
            );
        }
    }

    /// Counts one directory operation and records how long it took.
    pub fn directory_operation(&self, op: &'static str, outcome: &'static str, took: Duration) {
        self.directory_operations
            .get_or_create(&DirectoryLabels { op, outcome })
            .inc();
        self.directory_duration
            .get_or_create(&OpLabels { op })
            .observe(took.as_secs_f64());
    }

    pub fn kind(family: &Family<KindLabels, Counter>, kind: &'static str) {
        family.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts an owner confirmed with Livy (`confirmed`), or found stale (`stale`).
    pub fn sign_in(&self, outcome: &'static str) {
        self.signins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn owner_check(&self, outcome: &'static str) {
        self.owner_checks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// HTTP methods as static label values.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::DELETE => "DELETE",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_help_type_and_values() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "batch.list",
                method: "GET",
                status: 200,
            })
            .inc();
        m.auth_outcome("cached");
        m.request_duration
            .get_or_create(&RouteLabels {
                route: "batch.list",
            })
            .observe(0.004);
        let text = m.encode();
        assert!(
            text.contains("# TYPE livy_gateway_requests counter"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"livy_gateway_requests_total{route="batch.list",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"livy_gateway_auth_total{outcome="cached"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("livy_gateway_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn answered_requests_reach_the_exposition_through_the_handles() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.request_answered("batch.get", "GET", 200, Duration::from_millis(3), None);
        }
        m.request_answered(
            "batch.get",
            "GET",
            404,
            Duration::from_millis(3),
            Some(Duration::from_millis(2)),
        );
        m.auth_outcome("session");
        m.auth_outcome("session");
        let text = m.encode();
        for line in [
            r#"livy_gateway_requests_total{route="batch.get",method="GET",status="200"} 3"#,
            r#"livy_gateway_requests_total{route="batch.get",method="GET",status="404"} 1"#,
            r#"livy_gateway_request_duration_seconds_count{route="batch.get"} 4"#,
            r#"livy_gateway_upstream_duration_seconds_count{route="batch.get"} 1"#,
            r#"livy_gateway_auth_total{outcome="session"} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
