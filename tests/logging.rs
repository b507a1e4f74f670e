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
    tracing_subscriber::fmt()
        .with_env_filter("debug,livy_gateway=trace")
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .init();

    let gw = TestGateway::start(Options::default()).await;
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
    gw.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
    let access: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "livy_gateway::access")
        .collect();
    assert_eq!(access.len(), 7, "{log}");
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
}
