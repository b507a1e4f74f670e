//! Operations: Prometheus metrics, health and readiness, reloads (users,
//! certificates, broken configs, under load), graceful shutdown under load, and
//! request ids.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::{Method, StatusCode};
use livy_gateway::sim::{self, SimConfig, Simulator};
use tokio::io::AsyncWriteExt;

const BATCHES: &str = "/gateway/default/livy/v1/batches";

#[tokio::test]
async fn metrics_count_what_happened() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.rate_limit.per_user_rps = 0.001)
            .with(|c| c.rate_limit.per_user_burst = 3),
    )
    .await;
    let c = gw.client();
    for _ in 0..4 {
        c.as_user("alice", Method::GET, BATCHES, "").await;
    }
    c.send(
        Proto::H1,
        Method::GET,
        BATCHES,
        &[("authorization", basic("bob", "nope").as_bytes())],
        "",
    )
    .await;
    c.send(Proto::H1, Method::GET, BATCHES, &[], "").await;
    let mut plain = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    drop(plain);
    let mut garbage = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x00\x01\x00")
        .await
        .unwrap();
    drop(garbage);
    // Let the failed handshakes be counted.
    let mut m = scrape(&gw).await;
    for _ in 0..100 {
        if m.contains_key(r#"livy_gateway_tls_handshake_failures_total{kind="error"}"#)
            && m.contains_key(r#"livy_gateway_tls_handshake_failures_total{kind="plain_http"}"#)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = scrape(&gw).await;
    }
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_requests_total{route="batch.list",method="GET",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_requests_total{route="none",method="GET",status="429"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_requests_total{route="none",method="GET",status="401"}"#
        ),
        2.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="password"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="cached"}"#),
        3.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="bad_credentials"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="missing"}"#),
        1.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_rate_limited_total{kind="user"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_request_duration_seconds_count{route="batch.list"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_upstream_duration_seconds_count{route="batch.list"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_tls_handshake_failures_total{kind="error"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_tls_handshake_failures_total{kind="plain_http"}"#
        ),
        1.0
    );
    assert!(metric(&m, "livy_gateway_live_sessions") >= 1.0);
    assert!(m.contains_key("livy_gateway_active_connections"));
    // Exported from the start, so alerts can watch them before a line is lost.
    for log in ["access", "audit"] {
        let key = format!("livy_gateway_log_lines_dropped_total{{log=\"{log}\"}}");
        assert_eq!(metric(&m, &key), 0.0, "{key}");
    }
}

#[tokio::test]
async fn upstream_errors_are_counted_by_kind() {
    let gw = TestGateway::start(Options::backend(Backend::Refusing)).await;
    gw.client().as_user("alice", Method::GET, BATCHES, "").await;
    let m = scrape(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_upstream_errors_total{kind="unavailable"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn readiness_follows_livy() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sim_task = tokio::spawn(sim::run(
        listener,
        Arc::new(Simulator::new(SimConfig::default())),
        async {
            let _ = stopped.await;
        },
    ));
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![format!(
        "http://{sim_addr}"
    )])))
    .await;
    assert_eq!(admin_get(gw.admin_addr, "/healthz").await.0, 200);
    let (status, body) = admin_get(gw.admin_addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    stop.send(()).unwrap();
    sim_task.await.unwrap();
    let (status, body) = admin_get(gw.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unavailable"));
    assert_eq!(
        admin_get(gw.admin_addr, "/healthz").await.0,
        200,
        "alive all the same"
    );
}

fn rewrite_users(gw: &TestGateway, users: &[&str]) {
    let text: String = users.iter().map(|u| htpasswd_line(u, PASSWORD)).collect();
    std::fs::write(gw.dir.path().join("users.htpasswd"), text).unwrap();
}

#[tokio::test]
async fn removing_a_user_ends_their_sessions_on_reload() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let cookie = c
        .as_user("alice", Method::GET, BATCHES, "")
        .await
        .session_cookie()
        .unwrap();
    // A keep-alive connection opened before the reload must not keep her in either.
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        200
    );
    rewrite_users(&gw, &["bob", "admin"]);
    gw.runtime.reload().await.unwrap();
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        401
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        401,
        "cached credentials are gone"
    );
    assert_eq!(c.as_user("bob", Method::GET, BATCHES, "").await.status, 200);
    let m = scrape(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_config_reloads_total{outcome="success"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_broken_config_keeps_the_running_one() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let path = gw.dir.path().join("gateway.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    for broken in [
        good.replace("[auth]", "[auth]\nnonsense = 1"),
        good.replace("certs/gateway.crt", "certs/missing.crt"),
        "not toml at all [".to_string(),
    ] {
        std::fs::write(&path, broken).unwrap();
        assert!(gw.runtime.reload().await.is_err());
        assert_eq!(
            c.as_user("alice", Method::GET, BATCHES, "").await.status,
            200
        );
    }
    std::fs::write(dir_file(&gw, "users.htpasswd"), "bob:plaintext\n").unwrap();
    std::fs::write(&path, &good).unwrap();
    assert!(
        gw.runtime.reload().await.is_err(),
        "a bad htpasswd line is refused too"
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        200,
        "alice still known"
    );
    let m = scrape(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_config_reloads_total{outcome="failure"}"#
        ),
        4.0
    );
}

fn dir_file(gw: &TestGateway, name: &str) -> std::path::PathBuf {
    gw.dir.path().join(name)
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_handshakes() {
    let gw = TestGateway::start(Options::default()).await;
    let old = gw.client();
    let renewed = tempfile::tempdir().unwrap();
    let sans: Vec<String> = ["localhost", "127.0.0.1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let files = livy_gateway::certgen::write_to_dir(renewed.path(), &sans).unwrap();
    let open_before = old.tls(&[b"http/1.1"]).await;
    std::fs::copy(&files.cert, dir_file(&gw, "certs/gateway.crt")).unwrap();
    std::fs::copy(&files.key, dir_file(&gw, "certs/gateway.key")).unwrap();
    gw.runtime.reload().await.unwrap();
    let new = Client::new(gw.addr, &std::fs::read_to_string(&files.ca_cert).unwrap());
    assert_eq!(
        new.as_user("alice", Method::GET, BATCHES, "").await.status,
        200
    );
    assert!(
        old.try_tls(&[b"http/1.1"]).await.is_err(),
        "the old certificate is no longer served"
    );
    drop(open_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_fail_no_request() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let c = c.clone();
        load.spawn(async move {
            let mut failures = 0;
            for _ in 0..25 {
                let auth = basic("alice", PASSWORD);
                match c
                    .try_send(Method::GET, BATCHES, &[("authorization", auth.as_bytes())])
                    .await
                {
                    Ok(r) if r.status == 200 => {}
                    _ => failures += 1,
                }
            }
            failures
        });
    }
    for _ in 0..5 {
        gw.runtime.reload().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut failures = 0;
    while let Some(f) = load.join_next().await {
        failures += f.unwrap();
    }
    assert_eq!(failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_finishes_every_request_livy_saw() {
    // Livy answers after a delay, so requests are in flight when the shutdown starts.
    let gw = TestGateway::start(Options::backend(Backend::Recorder(Arc::new(|_| {
        Reply::After(
            Duration::from_millis(150),
            json_reply(StatusCode::OK, r#"{"ok":true}"#),
        )
    }))))
    .await;
    let c = gw.client();
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..6 {
        let c = c.clone();
        load.spawn(async move {
            let mut answered = Vec::new();
            for i in 0..40 {
                let id = format!("load-{worker}-{i}");
                let auth = basic("admin", PASSWORD);
                let headers = [
                    ("authorization", auth.as_bytes()),
                    ("x-request-id", id.as_bytes()),
                ];
                match c.try_send(Method::GET, BATCHES, &headers).await {
                    Ok(r) => answered.push((id, r.status)),
                    Err(_) => break, // the gateway is going away
                }
            }
            answered
        });
    }
    // Shut down once some requests have reached Livy.
    for _ in 0..500 {
        if gw.recorded().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recorded = gw.recorded.clone();
    gw.shutdown().await;
    let mut answered: HashMap<String, StatusCode> = HashMap::new();
    while let Some(a) = load.join_next().await {
        answered.extend(a.unwrap());
    }
    let seen: Vec<String> = recorded
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap().to_string())
        .collect();
    assert!(seen.len() >= 6);
    for id in &seen {
        assert_eq!(
            answered.get(id),
            Some(&StatusCode::OK),
            "{id} reached Livy but its answer was lost"
        );
    }
}

#[tokio::test]
async fn request_ids_are_kept_or_made_and_passed_to_livy() {
    let gw = TestGateway::start(Options::backend(Backend::Recorder(ok_responder()))).await;
    let c = gw.client();
    let auth = basic("admin", PASSWORD);
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[
                ("authorization", auth.as_bytes()),
                ("x-request-id", b"trace-42"),
            ],
            "",
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    assert_eq!(
        gw.recorded().pop().unwrap().headers["x-request-id"],
        "trace-42"
    );
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[
                ("authorization", auth.as_bytes()),
                ("x-request-id", b"bad id!"),
            ],
            "",
        )
        .await;
    let made = r.header("x-request-id").unwrap().to_string();
    assert_ne!(made, "bad id!");
    assert_eq!(
        gw.recorded().pop().unwrap().headers["x-request-id"],
        made.as_str()
    );
    for _ in 0..200 {
        if gw.audit_lines().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ids: Vec<String> = gw
        .audit_lines()
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["trace-42".to_string(), made]);
}
