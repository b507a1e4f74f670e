//! What the gateway writes to its log: one access line per request, and never a
//! password or an Authorization value, whatever happens to the login.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::*;
use http::Method;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The gateway's own subscriber, at its most talkative.
    livy_gateway::logging::init_with_writer(
        &livy_gateway::config::LogConfig {
            level: "debug,livy_gateway=trace".into(),
            format: livy_gateway::config::LogFormat::Json,
            access_path: None,
        },
        move || writer.clone(),
    );

    let logs = tempfile::tempdir().unwrap();
    let access_path = logs.path().join("access.log");
    let gw = TestGateway::start(Options::default().with({
        let access_path = access_path.clone();
        move |c| {
            c.log.format = livy_gateway::config::LogFormat::Json;
            c.log.access_path = Some(access_path);
        }
    }))
    .await;
    let c = gw.client();
    let path = "/gateway/default/livy/v1/batches";
    let good = c.as_user("alice", Method::GET, path, "").await;
    assert_eq!(good.status, 200);
    let cookie = good.session_cookie().unwrap();
    c.with_cookie(&cookie, Method::GET, path).await;
    let wrong_password = "Wr0ng-Pa55word";
    let wrong = basic("alice", wrong_password);
    for proto in [Proto::H1, Proto::H2] {
        c.send(
            proto,
            Method::GET,
            path,
            &[("authorization", wrong.as_bytes())],
            "",
        )
        .await;
        c.send(
            proto,
            Method::POST,
            path,
            &[("authorization", basic("bob", PASSWORD).as_bytes())],
            r#"{"file":"x"}"#,
        )
        .await;
    }
    let malformed = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("carol-no-colon-Secret")
    );
    c.send(
        Proto::H1,
        Method::GET,
        path,
        &[("authorization", malformed.as_bytes())],
        "",
    )
    .await;
    // A warning written while serving a request carries the request's id.
    let r = c
        .send(
            Proto::H2,
            Method::GET,
            &format!("{path}?doAs=bob"),
            &[
                ("authorization", basic("alice", PASSWORD).as_bytes()),
                ("x-request-id", b"trace-doas-1"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;

    // The shutdown wrote out every queued access line.
    let access_log = std::fs::read_to_string(&access_path).unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap() + &access_log;
    let encoded_good = basic("alice", PASSWORD);
    for secret in [
        PASSWORD,
        wrong_password,
        "carol-no-colon-Secret",
        encoded_good.trim_start_matches("Basic "),
        wrong.trim_start_matches("Basic "),
        malformed.trim_start_matches("Basic "),
        cookie.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret:?} appears in the log");
    }
    // One access line per request, with user and status.
    let access: Vec<serde_json::Value> = access_log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect();
    assert_eq!(access.len(), 8, "{access_log}");
    assert!(access
        .iter()
        .all(|v| v["target"] == "livy_gateway::access" && v["message"] == "request"));
    assert!(access
        .iter()
        .any(|v| v["user"] == "alice" && v["status"] == 200));
    assert!(access
        .iter()
        .any(|v| v["status"] == 401 && v["auth_failure"] == "bad_credentials"));
    assert!(access
        .iter()
        .any(|v| v["status"] == 401 && v["auth_failure"] == "malformed"));
    assert!(access
        .iter()
        .all(|v| v["duration_ms"].is_number() && v["method"].is_string()));
    let warning = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "identity parameters removed from a request")
        .expect("the removed doAs is logged");
    assert_eq!(warning["request_id"], "trace-doas-1", "{warning}");
    assert_eq!(warning["user"], "alice");
}
