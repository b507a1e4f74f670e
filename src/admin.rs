//! The admin listener: `/metrics` (Prometheus), `/healthz` (the process is alive)
//! and `/readyz` (configuration loaded, Livy answering and, where logins need one,
//! the directory reachable). Plain HTTP, meant to be bound to loopback or a
//! management network, never the public port.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use crate::error::json_response;
use crate::runtime::Runtime;

/// How long `/readyz` waits for Livy.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

const OPENMETRICS: HeaderValue =
    HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");

/// Answers one admin request.
pub async fn handle(request: Request<Incoming>, runtime: &Runtime) -> Response<Body> {
    if request.method() != Method::GET {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({ "error": "method_not_allowed" }),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let gateway = runtime.gateway();
            gateway.housekeeping();
            let mut response = Response::new(body::full(runtime.metrics().encode()));
            response.headers_mut().insert(CONTENT_TYPE, OPENMETRICS);
            response
        }
        "/healthz" => json_response(StatusCode::OK, &json!({ "status": "ok" })),
        "/readyz" => {
            let ready = runtime.gateway().readiness(READINESS_TIMEOUT).await;
            let mut checks = serde_json::Map::new();
            let mut reasons = Vec::new();
            let status = |ok: bool| json!(if ok { "ok" } else { "unavailable" });
            checks.insert("livy".into(), status(ready.livy));
            // Each Livy server, with several: `{"health": "up", "active": true}`.
            let servers: serde_json::Map<_, _> = ready
                .servers
                .iter()
                .map(|s| {
                    let state = json!({ "health": s.health.name(), "active": s.active });
                    (s.upstream.clone(), state)
                })
                .collect();
            if !ready.livy {
                reasons.push("Livy is not answering".to_string());
            }
            if let Err(error) = &ready.logins {
                reasons.push(format!("logins cannot be checked: {error}"));
            }
            checks.insert("logins".into(), status(ready.logins.is_ok()));
            if let Err(error) = &ready.state {
                reasons.push(format!("the state store is unavailable: {error}"));
            }
            checks.insert("state".into(), status(ready.state.is_ok()));
            // The provider's keys: held keys keep working while it is away
            // (`degraded`); with none held, no JWT can be checked.
            if let Some(keys) = &ready.jwks {
                let state = match (keys.held, &keys.error) {
                    (0, error) => {
                        let why = error
                            .as_deref()
                            .unwrap_or("the provider has no signing keys");
                        reasons.push(format!(
                            "the identity provider's keys are unavailable: {why}"
                        ));
                        "unavailable"
                    }
                    (_, Some(_)) => "degraded",
                    (_, None) => "ok",
                };
                checks.insert("jwks".into(), json!(state));
            }
            let mut answer = match reasons.is_empty() {
                true => json!({ "status": "ready", "checks": checks }),
                false => {
                    json!({ "status": "unavailable", "reason": reasons.join("; "), "checks": checks })
                }
            };
            if !servers.is_empty() {
                answer["livy_servers"] = servers.into();
            }
            if let Some(keys) = &ready.jwks {
                answer["jwks"] = json!({ "keys": keys.held, "error": keys.error });
            }
            let status = match reasons.is_empty() {
                true => StatusCode::OK,
                false => StatusCode::SERVICE_UNAVAILABLE,
            };
            json_response(status, &answer)
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({ "error": "not_found" })),
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn run(listener: TcpListener, runtime: Arc<Runtime>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let runtime = runtime.clone();
                async move { Ok::<_, Infallible>(handle(request, &runtime).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
