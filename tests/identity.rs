//! Identity assertion and per-user isolation (the Livy policy): what Livy receives
//! for allowed requests, that denied ones never reach it, that users see and control
//! only their own batches and sessions, and every hostile variant.

mod common;

use std::sync::Arc;

use common::*;
use http::{Method, StatusCode};
use livy_gateway::config::IdentityMode;
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::SimConfig;
use serde_json::{json, Value};

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";

/// A recording upstream that answers like Livy: 201 with id 5 on creation, an empty
/// listing, a view otherwise.
fn livy_like() -> Responder {
    Arc::new(|r: &Recorded| {
        let path = r.uri.split('?').next().unwrap_or("");
        let reply = match (&r.method, path) {
            (&Method::POST, "/batches") | (&Method::POST, "/sessions") => {
                let mut resp = json_reply(StatusCode::CREATED, r#"{"id":5,"state":"starting"}"#);
                resp.headers_mut()
                    .insert("location", format!("{path}/5").parse().unwrap());
                resp
            }
            (&Method::GET, "/batches") | (&Method::GET, "/sessions") => {
                json_reply(StatusCode::OK, r#"{"from":0,"total":0,"sessions":[]}"#)
            }
            (&Method::DELETE, _) => json_reply(StatusCode::OK, r#"{"msg":"deleted"}"#),
            _ => json_reply(StatusCode::OK, r#"{"id":5,"state":"running"}"#),
        };
        Reply::Now(reply)
    })
}

fn recording() -> Options {
    Options::backend(Backend::Recorder(livy_like()))
}

fn sim(version: LivyVersion) -> Options {
    Options::backend(Backend::Sim(SimConfig {
        version,
        speed: 1_000_000.0,
        ..SimConfig::default()
    }))
}

fn body_of(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test]
async fn creations_run_as_the_caller() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    for (body, expected) in [
        (
            r#"{"file":"a.jar"}"#,
            json!({"file":"a.jar","proxyUser":"alice"}),
        ),
        (
            r#"{"file":"a.jar","proxyUser":null}"#,
            json!({"file":"a.jar","proxyUser":"alice"}),
        ),
        (
            r#"{"file":"a.jar","proxyUser":"alice"}"#,
            json!({"file":"a.jar","proxyUser":"alice"}),
        ),
    ] {
        let r = c.as_user("alice", Method::POST, BATCHES, body).await;
        assert_eq!(r.status, 201, "{body}");
        assert_eq!(
            r.header("location"),
            Some("/gateway/default/livy/v1/batches/5")
        );
        let seen = gw.recorded().pop().unwrap();
        assert_eq!(seen.uri, "/batches?doAs=alice");
        assert_eq!(body_of(&seen), expected);
        assert_eq!(
            seen.headers["content-length"],
            seen.body.len().to_string().as_str()
        );
    }
    let r = c
        .as_user("alice", Method::POST, SESSIONS, r#"{"kind":"pyspark"}"#)
        .await;
    assert_eq!(r.status, 201);
    let seen = gw.recorded().pop().unwrap();
    assert_eq!(seen.uri, "/sessions?doAs=alice");
    assert_eq!(
        body_of(&seen),
        json!({"kind":"pyspark","proxyUser":"alice"})
    );
}

#[tokio::test]
async fn naming_someone_else_is_forbidden_except_for_admins() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let r = c
        .as_user(
            "alice",
            Method::POST,
            BATCHES,
            r#"{"file":"a.jar","proxyUser":"bob"}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    assert!(r.json()["msg"].as_str().unwrap().contains("bob"));
    assert!(gw.recorded().is_empty(), "a denied request reached Livy");

    let r = c
        .as_user(
            "admin",
            Method::POST,
            SESSIONS,
            r#"{"kind":"spark","proxyUser":"carol"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    let seen = gw.recorded().pop().unwrap();
    assert_eq!(seen.uri, "/sessions?doAs=carol");
    assert_eq!(body_of(&seen)["proxyUser"], "carol");
}

#[tokio::test]
async fn hostile_create_bodies_never_reach_livy() {
    let gw = TestGateway::start(recording().with(|c| c.livy.max_create_body_bytes = 1024)).await;
    let c = gw.client();
    let big = format!(r#"{{"file":"{}"}}"#, "a".repeat(2000));
    for (body, status) in [
        (r#"{"file":"a.jar","file":"b.jar"}"#, 400),
        (
            r#"{"file":"a.jar","conf":{"spark.x":"1","spark.x":"2"}}"#,
            400,
        ),
        (
            r#"{"file":"a.jar","proxyUser":"alice","proxyUser":"bob"}"#,
            400,
        ),
        (r#"[{"file":"a.jar"}]"#, 400),
        (r#""a.jar""#, 400),
        ("file=a.jar", 400),
        ("", 400),
        (r#"{"file":"a.jar"} trailing"#, 400),
        (r#"{"file":"a.jar","proxyUser":{"name":"bob"}}"#, 400),
        (big.as_str(), 413),
    ] {
        let r = c.as_user("alice", Method::POST, BATCHES, body).await;
        assert_eq!(r.status, status, "{body:.60}");
        assert!(r.json()["msg"].is_string());
    }
    // Form-encoded bodies (Livy's framework reads _method from them): 415.
    let auth = basic("alice", PASSWORD);
    let r = c
        .send(
            Proto::H1,
            Method::POST,
            "/gateway/default/livy/v1/sessions/5/statements",
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/x-www-form-urlencoded"),
            ],
            "_method=DELETE",
        )
        .await;
    assert_eq!(r.status, 415);
    assert!(gw.recorded().is_empty(), "{:?}", gw.recorded());
}

#[tokio::test]
async fn identity_parameters_and_headers_are_removed() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let auth = basic("admin", PASSWORD);
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            "/gateway/default/livy/v1/batches/5/log?from=0&DoAs=root&%64oAs=root&doAs=root&doas=x&PROXYUSER=root&user.name=root&User.Name=x&_method=DELETE&size=10",
            &[
                ("authorization", auth.as_bytes()),
                ("x-http-method-override", b"DELETE"),
                ("x-http-method", b"DELETE"),
                ("x-method-override", b"DELETE"),
                ("x-forwarded-user", b"root"),
                ("remote-user", b"root"),
                ("x-remote-user", b"root"),
                ("x-authenticated-user", b"root"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = gw.recorded().pop().unwrap();
    assert_eq!(seen.uri, "/batches/5/log?from=0&size=10&doAs=admin");
    assert_eq!(seen.method, Method::GET);
    for h in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-forwarded-user",
        "remote-user",
        "x-remote-user",
        "x-authenticated-user",
    ] {
        assert!(!seen.headers.contains_key(h), "{h} reached Livy");
    }
    // The attempt is audited.
    let audit = wait_for_audit(&gw, 1).await;
    assert!(audit.last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .contains("identity parameters removed"));
}

#[tokio::test]
async fn identity_none_asserts_nothing_but_still_strips() {
    let gw = TestGateway::start(recording().with(|c| c.livy.identity = IdentityMode::None)).await;
    let c = gw.client();
    c.as_user(
        "admin",
        Method::GET,
        "/gateway/default/livy/v1/batches/5?doAs=root",
        "",
    )
    .await;
    assert_eq!(gw.recorded().pop().unwrap().uri, "/batches/5");
}

#[tokio::test]
async fn someone_elses_resource_is_not_found_and_untouched() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await;
    assert_eq!(r.json()["id"], 5);
    let before = gw.recorded().len();
    for (method, path) in [
        (Method::GET, format!("{BATCHES}/5")),
        (Method::GET, format!("{BATCHES}/5/state")),
        (Method::GET, format!("{BATCHES}/5/log")),
        (Method::DELETE, format!("{BATCHES}/5")),
    ] {
        let r = c.as_user("bob", method.clone(), &path, "").await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(
            r.json(),
            json!({"msg":"Session '5' not found."}),
            "looks like Livy's own 404"
        );
    }
    assert_eq!(gw.recorded().len(), before, "bob's requests reached Livy");
    let r = c
        .as_user("alice", Method::DELETE, &format!("{BATCHES}/5"), "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.recorded().pop().unwrap().uri, "/batches/5?doAs=alice");
    // After the delete the record is gone: bob's probe now needs Livy's answer.
    let r = c
        .as_user("alice", Method::GET, &format!("{BATCHES}/5/state"), "")
        .await;
    assert_eq!(
        r.status, 404,
        "the recorder's view has no owner: not the caller's"
    );
}

#[tokio::test]
async fn users_see_and_control_only_their_own_work() {
    for version in [LivyVersion::V05, LivyVersion::V08] {
        let gw = TestGateway::start(sim(version)).await;
        let c = gw.client();
        let mut alice_batches = vec![];
        for i in 0..3 {
            let r = c
                .as_user(
                    "alice",
                    Method::POST,
                    BATCHES,
                    &format!(r#"{{"file":"a{i}.jar"}}"#),
                )
                .await;
            assert_eq!(r.status, 201);
            alice_batches.push(r.json()["id"].as_u64().unwrap());
        }
        for _ in 0..2 {
            assert_eq!(
                c.as_user("bob", Method::POST, BATCHES, r#"{"file":"b.jar"}"#)
                    .await
                    .status,
                201
            );
        }
        // Listings: own only, total and paging consistent.
        let v = c.as_user("alice", Method::GET, BATCHES, "").await.json();
        assert_eq!(v["total"], 3, "{version:?}: {v}");
        let ids: Vec<u64> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, alice_batches);
        let v = c
            .as_user(
                "alice",
                Method::GET,
                &format!("{BATCHES}?from=1&size=1"),
                "",
            )
            .await
            .json();
        assert_eq!(
            (v["from"].as_u64(), v["total"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(v["sessions"][0]["id"], alice_batches[1]);
        assert_eq!(
            c.as_user("bob", Method::GET, BATCHES, "").await.json()["total"],
            2
        );
        assert_eq!(
            c.as_user("admin", Method::GET, BATCHES, "").await.json()["total"],
            5
        );

        // Bob cannot reach alice's batch in any way; alice can.
        let a = alice_batches[0];
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::GET, "/state"),
            (Method::GET, "/log"),
            (Method::DELETE, ""),
        ] {
            let path = format!("{BATCHES}/{a}{suffix}");
            assert_eq!(
                c.as_user("bob", method.clone(), &path, "").await.status,
                404,
                "{version:?} {method} {path}"
            );
            assert_eq!(
                c.as_user("alice", method.clone(), &path, "").await.status,
                200,
                "{version:?} {method} {path}"
            );
        }
        assert_eq!(
            c.as_user("alice", Method::GET, &format!("{BATCHES}/{a}"), "")
                .await
                .status,
            404,
            "deleted"
        );

        // Sessions and statements.
        let r = c
            .as_user("alice", Method::POST, SESSIONS, r#"{"kind":"pyspark"}"#)
            .await;
        let s = r.json()["id"].as_u64().unwrap();
        let st = c
            .as_user(
                "alice",
                Method::POST,
                &format!("{SESSIONS}/{s}/statements"),
                r#"{"code":"1+1"}"#,
            )
            .await;
        assert_eq!(st.status, 201);
        for (method, suffix, body) in [
            (Method::GET, "".to_string(), ""),
            (Method::GET, "/state".into(), ""),
            (Method::GET, "/log".into(), ""),
            (Method::GET, "/statements".into(), ""),
            (Method::POST, "/statements".into(), r#"{"code":"2+2"}"#),
            (Method::GET, "/statements/0".into(), ""),
            (Method::POST, "/statements/0/cancel".into(), ""),
            (
                Method::POST,
                "/completion".into(),
                r#"{"code":"sp","kind":"pyspark","cursor":2}"#,
            ),
            (Method::DELETE, "".into(), ""),
        ] {
            let path = format!("{SESSIONS}/{s}{suffix}");
            let r = c.as_user("bob", method.clone(), &path, body).await;
            assert_eq!(r.status, 404, "{version:?} bob {method} {path}");
        }
        let v = c
            .as_user(
                "alice",
                Method::GET,
                &format!("{SESSIONS}/{s}/statements"),
                "",
            )
            .await
            .json();
        assert_eq!(v["total_statements"], 1, "bob's statement did not run");
        assert_eq!(
            c.as_user("bob", Method::GET, SESSIONS, "").await.json()["total"],
            0
        );
        assert_eq!(
            c.as_user("alice", Method::GET, SESSIONS, "").await.json()["total"],
            1
        );
        assert_eq!(
            c.as_user("admin", Method::GET, &format!("{SESSIONS}/{s}"), "")
                .await
                .status,
            200
        );
        assert_eq!(
            c.as_user("admin", Method::DELETE, &format!("{SESSIONS}/{s}"), "")
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn ownership_survives_a_restart() {
    // Livy 0.5 views carry no proxyUser: only the gateway's records know the owner.
    let gw = TestGateway::start(sim(LivyVersion::V05)).await;
    let c = gw.client();
    let id = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    let gw = gw.restart().await;
    let c = gw.client();
    assert_eq!(
        c.as_user("alice", Method::GET, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        200
    );
    assert_eq!(
        c.as_user("bob", Method::GET, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        404
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.json()["total"],
        1
    );
    assert_eq!(
        c.as_user("bob", Method::GET, BATCHES, "").await.json()["total"],
        0
    );
}

#[tokio::test]
async fn unknown_ids_are_resolved_from_livys_views_or_hidden() {
    // Livy 0.8 reports proxyUser: the owner is learnt from the view.
    let gw = TestGateway::start(sim(LivyVersion::V08)).await;
    let c = gw.client();
    let id = create_at_sim(&gw.upstream, r#"{"file":"x.jar","proxyUser":"alice"}"#).await;
    assert_eq!(
        c.as_user("bob", Method::DELETE, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        404
    );
    assert_eq!(
        c.as_user("alice", Method::GET, &format!("{BATCHES}/{id}/state"), "")
            .await
            .status,
        200
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.json()["total"],
        1
    );

    // Livy 0.5 does not: an owner that cannot be determined means 404.
    let gw = TestGateway::start(sim(LivyVersion::V05)).await;
    let c = gw.client();
    let id = create_at_sim(&gw.upstream, r#"{"file":"x.jar","proxyUser":"alice"}"#).await;
    assert_eq!(
        c.as_user("alice", Method::GET, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        404
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.json()["total"],
        0
    );
    assert_eq!(
        c.as_user("admin", Method::GET, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn names_resolve_for_their_owner_only() {
    let gw = TestGateway::start(sim(LivyVersion::V08)).await;
    let c = gw.client();
    let r = c
        .as_user(
            "alice",
            Method::POST,
            BATCHES,
            r#"{"file":"a.jar","name":"nightly"}"#,
        )
        .await;
    let id = r.json()["id"].as_u64().unwrap();
    let v = c
        .as_user("alice", Method::GET, &format!("{BATCHES}/nightly"), "")
        .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.json()["id"], id);
    let r = c
        .as_user("bob", Method::GET, &format!("{BATCHES}/nightly/state"), "")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"msg":"Session 'nightly' not found."}));
}

#[tokio::test]
async fn the_csrf_header_is_injected_for_a_protected_livy() {
    let protected = SimConfig {
        csrf: true,
        speed: 1_000_000.0,
        ..SimConfig::default()
    };
    let without = TestGateway::start(Options::backend(Backend::Sim(protected.clone()))).await;
    let r = without
        .client()
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await;
    assert_eq!(r.status, 400, "Livy refuses it without the header");

    let with = TestGateway::start(
        Options::backend(Backend::Sim(protected))
            .with(|c| c.livy.csrf_header = Some(http::HeaderName::from_static("x-requested-by"))),
    )
    .await;
    let c = with.client();
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_u64().unwrap();
    assert_eq!(
        c.as_user("alice", Method::DELETE, &format!("{BATCHES}/{id}"), "")
            .await
            .status,
        200
    );
}

async fn wait_for_audit(gw: &TestGateway, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let lines = gw.audit_lines();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("audit log has fewer than {n} lines");
}

#[tokio::test]
async fn every_request_is_audited_without_secrets() {
    let gw = TestGateway::start(sim(LivyVersion::V08)).await;
    let c = gw.client();
    let id = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    c.as_user("bob", Method::DELETE, &format!("{BATCHES}/{id}"), "")
        .await;
    c.as_user(
        "alice",
        Method::POST,
        BATCHES,
        r#"{"file":"a.jar","proxyUser":"bob"}"#,
    )
    .await;
    c.send(
        Proto::H1,
        Method::GET,
        BATCHES,
        &[("authorization", basic("alice", "wrong").as_bytes())],
        "",
    )
    .await;
    c.as_user(
        "admin",
        Method::POST,
        BATCHES,
        r#"{"file":"a.jar","proxyUser":"carol"}"#,
    )
    .await;
    let lines = wait_for_audit(&gw, 5).await;
    let text = std::fs::read_to_string(gw.dir.path().join("data/audit.log")).unwrap();
    assert!(!text.contains(PASSWORD) && !text.contains("wrong") && !text.contains("Basic"));

    let create = &lines[0];
    assert_eq!(create["user"], "alice");
    assert_eq!(create["effective_user"], "alice");
    assert_eq!(create["action"], "batch.create");
    assert_eq!(create["resource"], id.to_string());
    assert_eq!(create["upstream_status"], 201);
    assert_eq!(create["outcome"], "allowed");
    assert_eq!(create["method"], "POST");
    assert_eq!(create["path"], BATCHES);
    assert!(create["request_id"].as_str().unwrap().len() >= 8);
    assert!(create["time"].is_string() && create["client"] == "127.0.0.1");

    let kill = &lines[1];
    assert_eq!(
        (kill["user"].as_str(), kill["action"].as_str()),
        (Some("bob"), Some("batch.kill"))
    );
    assert_eq!(kill["outcome"], "denied");
    assert_eq!(kill["upstream_status"], Value::Null);
    assert!(kill["reason"].as_str().unwrap().starts_with("not_found"));

    let spoof = &lines[2];
    assert_eq!(spoof["outcome"], "denied");
    assert!(spoof["reason"].as_str().unwrap().starts_with("forbidden"));

    let failed_login = &lines[3];
    assert_eq!(failed_login["outcome"], "denied");
    assert_eq!(failed_login["user"], Value::Null);
    assert_eq!(failed_login["reason"], "unauthorized: bad_credentials");

    let impersonation = &lines[4];
    assert_eq!(
        (
            impersonation["user"].as_str(),
            impersonation["effective_user"].as_str()
        ),
        (Some("admin"), Some("carol"))
    );
}
