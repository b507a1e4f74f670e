//! A Livy restarted without session recovery (its default) numbers batches and
//! sessions from 0 again, so the gateway's record of who owns an id can be about
//! an earlier resource. Against a `livy-sim` process killed and started again
//! under the gateway, over real TLS on both protocols: Livy's own view decides
//! over such a record (the record is corrected, the caller gets 404), a user's
//! DELETE, statement or read of a log or state is confirmed against that view
//! before it goes, and that costs one extra `GET` per Livy process, not one per
//! request.

mod common;

use common::sim_process::SimProcess;
use common::*;
use http::Method;

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";

/// Creates a resource directly at the Livy at `sim` (as another client of Livy
/// would), as `user`: its id.
async fn create_at(sim: &SimProcess, collection: &str, user: &str) -> u64 {
    let addr = format!("127.0.0.1:{}", sim.port);
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let body = match collection {
        "/batches" => format!(r#"{{"file":"local:/jobs/x.jar","proxyUser":"{user}"}}"#),
        _ => format!(r#"{{"kind":"spark","proxyUser":"{user}"}}"#),
    };
    let request = http::Request::post(collection)
        .header("host", addr)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// A notebook of alice's over `proto`: a session, then `cells` statements.
async fn notebook(c: &Client, proto: Proto, cells: usize) {
    let body = r#"{"kind":"spark"}"#;
    let r = c
        .as_user_over(proto, "alice", Method::POST, SESSIONS, body)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let statements = format!("{SESSIONS}/{}/statements", r.json()["id"]);
    for cell in 0..cells {
        let code = format!(r#"{{"code":"{cell} + 1"}}"#);
        let r = c
            .as_user_over(proto, "alice", Method::POST, &statements, &code)
            .await;
        assert_eq!(r.status, 201, "{proto:?} cell {cell}: {:?}", r.body);
    }
}

/// Owner confirmations that ended in `outcome`.
async fn owner_checks(gw: &TestGateway, outcome: &str) -> f64 {
    let series = format!("livy_gateway_owner_checks_total{{outcome=\"{outcome}\"}}");
    scrape(gw).await.get(&series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn a_record_from_before_a_livy_restart_yields_to_livy() {
    let dir = tempfile::tempdir().unwrap();
    let mut livy = SimProcess::start(dir.path(), "livy", &[]);
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![livy.url()]))).await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        // A fresh Livy; alice's batch and session through the gateway.
        livy.kill();
        livy.restart();
        let batch_body = r#"{"file":"local:/jobs/a.jar"}"#;
        let r = c
            .as_user_over(proto, "alice", Method::POST, BATCHES, batch_body)
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let batch = r.json()["id"].as_u64().unwrap();
        let session_body = r#"{"kind":"spark"}"#;
        let r = c
            .as_user_over(proto, "alice", Method::POST, SESSIONS, session_body)
            .await;
        assert_eq!(r.status, 201);
        let session = r.json()["id"].as_u64().unwrap();

        // Livy restarts without recovery; bob's work, made at Livy directly,
        // takes the same ids.
        livy.kill();
        livy.restart();
        assert_eq!(create_at(&livy, "/batches", "bob").await, batch);
        assert_eq!(create_at(&livy, "/sessions", "bob").await, session);

        // alice's record says the ids are hers; Livy says bob's. Neither her
        // DELETE nor her statement is sent.
        let delete = format!("{BATCHES}/{batch}");
        let r = c
            .as_user_over(proto, "alice", Method::DELETE, &delete, "")
            .await;
        assert_eq!(r.status, 404, "{proto:?}: {:?}", r.body);
        let statements = format!("{SESSIONS}/{session}/statements");
        let code = r#"{"code":"1 + 1"}"#;
        let r = c
            .as_user_over(proto, "alice", Method::POST, &statements, code)
            .await;
        assert_eq!(r.status, 404, "{proto:?}: {:?}", r.body);
        let r = c
            .as_user_over(proto, "alice", Method::GET, &delete, "")
            .await;
        assert_eq!(r.status, 404);

        // bob's are intact and his: the records now say so.
        let r = c.as_user_over(proto, "bob", Method::GET, &delete, "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.json()["proxyUser"], "bob");
        let r = c
            .as_user_over(proto, "bob", Method::GET, &statements, "")
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["statements"], serde_json::json!([]), "nothing ran");
    }
    assert!(owner_checks(&gw, "stale").await >= 4.0);
}

#[tokio::test]
async fn a_notebook_pays_one_owner_check_per_livy_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut livy = SimProcess::start(dir.path(), "livy", &[]);
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![livy.url()]))).await;
    let c = gw.client();
    let mut expected = 0.0;
    for proto in [Proto::H1, Proto::H2] {
        for _restart in 0..2 {
            livy.kill();
            livy.restart();
            notebook(&c, proto, 5).await;
            // One confirmation for five cells: the restart before them was caught
            // (the same id, the same owner, and still confirmed anew).
            expected += 1.0;
            assert_eq!(owner_checks(&gw, "confirmed").await, expected);
        }
    }
    let r = c
        .as_user("alice", Method::DELETE, &format!("{SESSIONS}/0"), "")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(owner_checks(&gw, "confirmed").await, expected);
    assert_eq!(owner_checks(&gw, "stale").await, 0.0);
}

/// With an HA pair (a passive server redirecting to the active one), the
/// confirmation names the server that gave it: a notebook still pays one check,
/// and a restart of the active server is caught.
#[tokio::test]
async fn behind_a_passive_server_the_confirmation_names_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut active = SimProcess::start(dir.path(), "active", &[]);
    let redirect = ["--redirect-to".to_owned(), active.url()];
    let passive = SimProcess::start(dir.path(), "passive", &redirect);
    let urls = vec![passive.url(), active.url()];
    let gw = TestGateway::start(
        Options::backend(Backend::Urls(urls))
            .with(|c| c.livy.health_check_interval = std::time::Duration::ZERO),
    )
    .await;
    let c = gw.client();
    let mut expected = 0.0;
    for proto in [Proto::H1, Proto::H2] {
        notebook(&c, proto, 3).await;
        expected += 1.0;
        assert_eq!(owner_checks(&gw, "confirmed").await, expected);
        active.kill();
        active.restart();
    }
}
