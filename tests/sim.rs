//! The Livy simulator's contract (`docs/livy-api.md`): status codes, view shapes per
//! Livy release, paging, state machines under paused time, identity, CSRF and
//! method override. Requests go straight to `Simulator::handle`, so time can be
//! paused; one test also checks it over a real socket.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::{SimConfig, Simulator};
use serde_json::{json, Value};

struct Reply {
    status: StatusCode,
    location: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn call(
    sim: &Simulator,
    method: Method,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = sim
        .handle(
            builder
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await;
    let header = |n| {
        response
            .headers()
            .get(n)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_string())
    };
    Reply {
        status: response.status(),
        location: header("location"),
        content_type: header("content-type"),
        body: response.into_body().collect().await.unwrap().to_bytes(),
    }
}

async fn get(sim: &Simulator, uri: &str) -> Reply {
    call(sim, Method::GET, uri, "", &[]).await
}

async fn post(sim: &Simulator, uri: &str, body: &str) -> Reply {
    call(sim, Method::POST, uri, body, &[]).await
}

fn sim(version: LivyVersion) -> Simulator {
    Simulator::new(SimConfig {
        version,
        ..SimConfig::default()
    })
}

#[tokio::test(start_paused = true)]
async fn batch_lifecycle_follows_livy() {
    let s = sim(LivyVersion::V07);
    let r = post(
        &s,
        "/batches",
        r#"{"file":"a.jar","name":"nightly","proxyUser":"alice"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.location.as_deref(), Some("/batches/0"));
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/json;charset=utf-8")
    );
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "owner",
            "proxyUser",
            "state",
            "appId",
            "appInfo",
            "log"
        ]
    );
    assert_eq!(v["state"], "starting");
    assert_eq!(
        v["appId"],
        Value::Null,
        "absent values are null, not omitted"
    );

    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(
        get(&s, "/batches/0/state").await.json(),
        json!({"id":0,"state":"running"})
    );
    assert_eq!(
        get(&s, "/batches/nightly").await.json()["id"],
        0,
        "lookup by name"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    let v = get(&s, "/batches/0").await.json();
    assert_eq!(v["state"], "success");
    assert_eq!(v["proxyUser"], "alice");
    assert!(v["appId"].as_str().unwrap().starts_with("application_"));
    assert_eq!(
        v["log"].as_array().unwrap().len(),
        10,
        "views hold the last 10 lines"
    );

    // A batch with a "fail" argument ends dead.
    post(&s, "/batches", r#"{"file":"a.jar","args":["fail"]}"#).await;
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(get(&s, "/batches/1/state").await.json()["state"], "dead");

    let r = call(&s, Method::DELETE, "/batches/0", "", &[]).await;
    assert_eq!(r.json(), json!({"msg":"deleted"}));
    let r = get(&s, "/batches/0").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({"msg":"Session '0' not found."}));
}

#[tokio::test(start_paused = true)]
async fn listing_and_log_paging_use_livys_defaults() {
    let s = Simulator::new(SimConfig {
        log_lines: 250,
        ..SimConfig::default()
    });
    for _ in 0..5 {
        post(&s, "/batches", r#"{"file":"a.jar"}"#).await;
    }
    let v = get(&s, "/batches?from=1&size=2").await.json();
    assert_eq!(v["from"], 1);
    assert_eq!(v["total"], 5, "total counts all");
    let ids: Vec<u64> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2]);

    tokio::time::advance(Duration::from_secs(3)).await;
    let v = get(&s, "/batches/0/log").await.json();
    assert_eq!(
        (v["from"].as_u64(), v["total"].as_u64()),
        (Some(150), Some(250)),
        "last 100 by default"
    );
    assert_eq!(v["log"].as_array().unwrap().len(), 100);
    let v = get(&s, "/batches/0/log?from=0&size=-1").await.json();
    assert_eq!(v["log"].as_array().unwrap().len(), 250);
    let v = get(&s, "/batches/0/log?from=300").await.json();
    assert_eq!(v["log"], json!([]));
    assert_eq!(
        get(&s, "/batches/0/log?from=x").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(start_paused = true)]
async fn bad_creates_are_rejected_like_livy() {
    let s = sim(LivyVersion::V08);
    for (uri, body, needle) in [
        ("/batches", r#"{"className":"x"}"#, "File is required"),
        ("/batches", r#"{"file":"a","bogus":1}"#, "bogus"),
        ("/batches", r#"{"file":"a""#, "parse"),
        ("/batches", r#"["file"]"#, "parse"),
        ("/sessions", r#"{"kind":"pyspark3"}"#, "pyspark3"),
        ("/sessions", r#"{"kind":"spark","nope":true}"#, "nope"),
    ] {
        let r = post(&s, uri, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            r.json()["msg"].as_str().unwrap().contains(needle),
            "{body}: {}",
            r.json()
        );
    }
    assert_eq!(get(&s, "/batches/77").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, "/nothing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn sessions_and_statements_follow_livy() {
    let s = sim(LivyVersion::V08);
    let r = post(&s, "/sessions", r#"{"kind":"python","driverMemory":"2g"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.location.as_deref(), Some("/sessions/0"));
    let v = r.json();
    assert_eq!(v["kind"], "pyspark");
    assert_eq!(v["state"], "starting");
    assert_eq!(v["driverMemory"], "2g", "0.8 echoes resources");
    assert!(v.as_object().unwrap().contains_key("proxyUser"));

    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(get(&s, "/sessions/0/state").await.json()["state"], "idle");

    let r = post(&s, "/sessions/0/statements", r#"{"code":"1+1"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.location.as_deref(), Some("/sessions/0/statements/0"));
    assert_eq!(r.json()["output"], Value::Null);
    assert_eq!(get(&s, "/sessions/0").await.json()["state"], "busy");
    tokio::time::advance(Duration::from_secs(1)).await;
    let v = get(&s, "/sessions/0/statements/0").await.json();
    assert_eq!(v["state"], "available");
    assert_eq!(
        v["output"],
        json!({"status":"ok","execution_count":0,"data":{"text/plain":"2"}})
    );
    assert_eq!(get(&s, "/sessions/0").await.json()["state"], "idle");

    post(
        &s,
        "/sessions/0/statements",
        r#"{"code":"raise ValueError()","kind":"pyspark"}"#,
    )
    .await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let v = get(&s, "/sessions/0/statements/1").await.json();
    assert_eq!(
        v["state"], "available",
        "a failed statement is still available"
    );
    assert_eq!(v["output"]["status"], "error");
    assert!(v["output"]["ename"].is_string() && v["output"]["traceback"].is_array());

    post(&s, "/sessions/0/statements", r#"{"code":"2*3"}"#).await;
    let r = post(&s, "/sessions/0/statements/2/cancel", "").await;
    assert_eq!(r.json(), json!({"msg":"canceled"}));
    assert_eq!(
        get(&s, "/sessions/0/statements/2").await.json()["state"],
        "cancelled"
    );
    assert_eq!(
        get(&s, "/sessions/0/statements/9").await.json(),
        json!({"msg":"Statement not found"})
    );

    let v = get(&s, "/sessions/0/statements?order=desc&size=2")
        .await
        .json();
    assert_eq!(v["total_statements"], 3);
    let ids: Vec<u64> = v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1]);

    let v = post(
        &s,
        "/sessions/0/completion",
        r#"{"code":"sp","kind":"pyspark","cursor":2}"#,
    )
    .await
    .json();
    assert_eq!(v["candidates"], json!(["spark"]));
    let v = get(&s, "/sessions/0/log?from=0").await.json();
    assert_eq!(v["from"], 0);
    assert!(v["log"].is_array());

    assert_eq!(
        call(&s, Method::DELETE, "/sessions/0", "", &[])
            .await
            .json(),
        json!({"msg":"deleted"})
    );
    assert_eq!(get(&s, "/sessions/0").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn views_match_each_livy_release() {
    let v05 = sim(LivyVersion::V05);
    let v = post(&v05, "/batches", r#"{"file":"a.jar"}"#).await.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["id", "state", "appId", "appInfo", "log"],
        "the seed document's shape"
    );
    let v = post(&v05, "/sessions", r#"{"kind":"spark","driverMemory":"1g"}"#)
        .await
        .json();
    assert!(v.get("driverMemory").is_none());
    let version = get(&v05, "/version").await.json();
    assert_eq!(version["version"], "0.5.0-incubating");
    for key in ["version", "user", "revision", "branch", "date", "url"] {
        assert!(version.get(key).is_some());
    }
}

#[tokio::test]
async fn identity_follows_impersonation_rules() {
    let on = sim(LivyVersion::V08);
    let v = post(
        &on,
        "/batches?doAs=carol",
        r#"{"file":"a","proxyUser":"alice"}"#,
    )
    .await
    .json();
    assert_eq!(v["proxyUser"], "carol", "doAs wins");
    let v = post(&on, "/sessions", r#"{"proxyUser":"alice"}"#)
        .await
        .json();
    assert_eq!(v["proxyUser"], "alice");
    let off = Simulator::new(SimConfig {
        impersonation: false,
        ..SimConfig::default()
    });
    let v = post(
        &off,
        "/batches?doAs=carol",
        r#"{"file":"a","proxyUser":"alice"}"#,
    )
    .await
    .json();
    assert_eq!(
        v["proxyUser"], "alice",
        "doAs is ignored without impersonation"
    );
}

#[tokio::test]
async fn csrf_protection_and_method_override_behave_like_livy() {
    let s = Simulator::new(SimConfig {
        csrf: true,
        ..SimConfig::default()
    });
    let r = post(&s, "/batches", r#"{"file":"a"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.content_type.unwrap().starts_with("text/html"));
    let r = call(
        &s,
        Method::POST,
        "/batches",
        r#"{"file":"a"}"#,
        &[("X-Requested-By", "me")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        get(&s, "/batches").await.status,
        StatusCode::OK,
        "GET needs no header"
    );

    // Scalatra's override: a POST routed as DELETE.
    let r = call(
        &s,
        Method::POST,
        "/batches/0",
        "",
        &[
            ("X-Requested-By", "me"),
            ("X-HTTP-Method-Override", "DELETE"),
        ],
    )
    .await;
    assert_eq!(r.json(), json!({"msg":"deleted"}));
    post(&s, "/batches", "").await;
    let r = call(
        &s,
        Method::POST,
        "/batches",
        r#"{"file":"b"}"#,
        &[("X-Requested-By", "me")],
    )
    .await;
    let id = r.json()["id"].as_u64().unwrap();
    let r = call(
        &s,
        Method::POST,
        &format!("/batches/{id}?_method=DELETE"),
        "",
        &[("X-Requested-By", "me")],
    )
    .await;
    assert_eq!(r.json(), json!({"msg":"deleted"}));
}

#[tokio::test]
async fn serves_over_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(livy_gateway::sim::run(
        listener,
        std::sync::Arc::new(Simulator::new(SimConfig::default())),
        async {
            let _ = stopped.await;
        },
    ));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::post("/batches")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from_static(br#"{"file":"a.jar"}"#)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    drop(sender);
    stop.send(()).unwrap();
    server.await.unwrap();
}

/// Create bodies are read as Livy's Jackson reads them (see src/sim/requests.rs).
#[tokio::test(start_paused = true)]
async fn create_bodies_get_jacksons_coercions() {
    let s = sim(LivyVersion::V08);
    // Scalars where strings go are taken as their text, conf values included.
    let r = post(
        &s,
        "/sessions",
        r#"{"kind":"pyspark","driverMemory":4,"numExecutors":2,
            "conf":{"spark.dynamicAllocation.minExecutors":6,"spark.dynamicAllocation.enabled":true}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let v = r.json();
    assert_eq!(v["driverMemory"], "4");
    assert_eq!(
        v["conf"],
        json!({"spark.dynamicAllocation.minExecutors":"6","spark.dynamicAllocation.enabled":"true"})
    );
    let r = post(
        &s,
        "/batches",
        r#"{"file":"a.jar","args":[1,true],"conf":{"x":1.5}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // A primitive Int takes a numeric string; lists and maps want their shapes.
    let r = post(&s, "/sessions", r#"{"heartbeatTimeoutInSecond":"60"}"#).await;
    assert_eq!(r.status, StatusCode::CREATED);
    for (uri, body) in [
        ("/batches", r#"{"file":"a.jar","jars":"one.jar"}"#),
        ("/batches", r#"{"file":"a.jar","conf":["x"]}"#),
        ("/batches", r#"{"file":["a.jar"]}"#),
        ("/sessions", r#"{"conf":{"x":{"nested":1}}}"#),
    ] {
        assert_eq!(
            post(&s, uri, body).await.status,
            StatusCode::BAD_REQUEST,
            "{body}"
        );
    }
    // The erased Option[Int]s: anything but an int fails when Livy unboxes it.
    for body in [
        r#"{"file":"a.jar","numExecutors":"10"}"#,
        r#"{"file":"a.jar","executorCores":1.5}"#,
        r#"{"file":"a.jar","driverCores":true}"#,
    ] {
        let r = post(&s, "/batches", body).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        let text = r.json();
        assert!(
            text.as_str()
                .unwrap()
                .starts_with("java.lang.ClassCastException: "),
            "{text}"
        );
    }
    assert_eq!(
        post(&s, "/sessions", r#"{"numExecutors":"10"}"#)
            .await
            .status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// `//sessions` reaches none of Livy's servlets but its catch-all: 404.
#[tokio::test]
async fn doubled_slashes_are_not_livy_routes() {
    let s = sim(LivyVersion::V07);
    for uri in ["//sessions", "//batches", "/sessions//0", "//version"] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.content_type.unwrap().starts_with("text/html"));
    }
    assert_eq!(get(&s, "/sessions").await.status, StatusCode::OK);
}

/// Statements answer as each of Livy's interpreters does: `application/json`
/// tables for SQL (a session of kind sql, or a statement's own kind), the Scala
/// REPL's `res0: Int = …`, Python's exceptions.
#[tokio::test(start_paused = true)]
async fn statements_answer_as_livys_interpreters_do() {
    let s = sim(LivyVersion::V07);
    assert_eq!(
        post(&s, "/sessions", r#"{"kind":"sql"}"#).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&s, "/sessions", r#"{"kind":"spark"}"#).await.status,
        StatusCode::CREATED
    );
    tokio::time::advance(Duration::from_secs(3)).await;
    post(&s, "/sessions/0/statements", r#"{"code":"select 1 as id"}"#).await;
    post(&s, "/sessions/1/statements", r#"{"code":"1 + 1"}"#).await;
    post(
        &s,
        "/sessions/1/statements",
        r#"{"code":"select 'a' as s","kind":"sql"}"#,
    )
    .await;
    post(
        &s,
        "/sessions/1/statements",
        r#"{"code":"raise ValueError('no')","kind":"pyspark"}"#,
    )
    .await;
    tokio::time::advance(Duration::from_secs(5)).await;
    let output = |uri: &'static str| {
        let s = &s;
        async move { get(s, uri).await.json()["output"].clone() }
    };
    assert_eq!(
        output("/sessions/0/statements/0").await,
        json!({"status":"ok","execution_count":0,"data":{"application/json":{
            "schema":{"type":"struct","fields":[{"name":"id","type":"integer","nullable":false,"metadata":{}}]},
            "data":[[1]]}}})
    );
    assert_eq!(
        output("/sessions/1/statements/0").await["data"]["text/plain"],
        "res0: Int = 2\n"
    );
    assert_eq!(
        output("/sessions/1/statements/1").await["data"]["application/json"]["data"],
        json!([["a"]])
    );
    let error = output("/sessions/1/statements/2").await;
    assert_eq!(error["ename"], "ValueError");
    assert_eq!(error["evalue"], "no");
    assert_eq!(error["traceback"][1], "ValueError: no\n");
    assert_eq!(
        post(
            &s,
            "/sessions/1/statements",
            r#"{"code":"1","kind":"cobol"}"#
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
}

/// A running batch links to its driver's log on the NodeManager (0.7+; 0.5 as
/// the seed document shows it, none).
#[tokio::test(start_paused = true)]
async fn running_batches_link_to_their_driver_logs() {
    for (version, expect_link) in [(LivyVersion::V07, true), (LivyVersion::V05, false)] {
        let s = sim(version);
        post(&s, "/batches?doAs=alice", r#"{"file":"a.jar"}"#).await;
        let starting = get(&s, "/batches/0").await.json();
        assert_eq!(starting["appInfo"]["driverLogUrl"], Value::Null);
        tokio::time::advance(Duration::from_secs(3)).await;
        let running = get(&s, "/batches/0").await.json();
        let link = &running["appInfo"]["driverLogUrl"];
        assert_eq!(link.is_string(), expect_link, "{version:?}: {running}");
        if expect_link {
            let link = link.as_str().unwrap();
            assert!(link.starts_with("http://livy-sim-nm1:8042/node/containerlogs/container_e01_1491850285904_0000_01_000001/alice"), "{link}");
        }
        assert!(running["appInfo"]["sparkUiUrl"]
            .as_str()
            .unwrap()
            .contains("/proxy/application_"));
    }
}
