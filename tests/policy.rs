//! `[policy]` over real TLS on both protocols: create bodies breaking a rule
//! refused before Livy is asked, and the changes the policy makes reaching Livy;
//! quotas on live sessions and batches against livy-sim (jobs that end, a batch
//! deleted behind the gateway's back, a gateway restarted mid-count, a policy
//! changed by a reload), exact across three instances on a real Redis under
//! concurrent creations; `max_creating` under a burst of 100 concurrent
//! creations; idle sessions ended (with the upkeep's clock moved on, not
//! waited for); `/usage`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::RedisServer;
use common::*;
use http::{Method, StatusCode};
use livy_gateway::config::{Config, StateBackend};
use livy_gateway::sim::SimConfig;
use tokio::time::Instant;

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";
const USAGE: &str = "/gateway/default/usage";

/// A gateway with `policy` (TOML for `[policy]`) in front of `backend`.
async fn gateway_with(backend: Backend, policy: &'static str) -> TestGateway {
    TestGateway::start(Options::backend(backend).with(move |c| {
        c.policy = toml::from_str(policy).unwrap();
    }))
    .await
}

/// A simulator where time runs `speed` times Livy's.
async fn sim(speed: f64) -> String {
    start_sim(move |_| SimConfig {
        speed,
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn a_body_breaking_a_rule_is_refused_before_livy_is_asked() {
    let gw = gateway_with(
        Backend::Recorder(ok_responder()),
        r#"
        deny_conf = ["spark.driver.extraClassPath", "spark.executor.extraJavaOptions"]
        drop_conf = ["spark.eventLog.*"]
        allowed_url_schemes = ["hdfs", "s3a"]
        max_executors = 20
        max_executor_memory = "16g"
        queues = ["adhoc", "data-eng"]
        "#,
    )
    .await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        for (body, rule, key, value) in [
            (
                r#"{"file":"hdfs:///a.jar","conf":{"spark.driver.extraClassPath":"/tmp/x"}}"#,
                "deny_conf",
                "conf.spark.driver.extraClassPath",
                None,
            ),
            (
                r#"{"file":"local:/etc/passwd"}"#,
                "allowed_url_schemes",
                "file",
                Some("local:/etc/passwd"),
            ),
            (
                r#"{"file":"hdfs:///a.jar","executorMemory":"32g"}"#,
                "max_executor_memory",
                "executorMemory",
                Some("32g"),
            ),
            (
                r#"{"file":"hdfs:///a.jar","conf":{"spark.executor.instances":"500"}}"#,
                "max_executors",
                "conf.spark.executor.instances",
                Some("500"),
            ),
            (
                r#"{"file":"hdfs:///a.jar","queue":"production"}"#,
                "queues",
                "queue",
                Some("production"),
            ),
        ] {
            let r = c
                .as_user_over(proto, "alice", Method::POST, BATCHES, body)
                .await;
            assert_eq!(r.status, 403, "{body}: {}", r.text());
            let answer = r.json();
            assert_eq!(answer["error"], "policy_denied");
            assert_eq!(answer["rule"], rule, "{answer}");
            assert_eq!(answer["key"], key, "{answer}");
            assert_eq!(answer["value"].as_str(), value, "{answer}");
        }
    }
    assert!(gw.recorded().is_empty(), "nothing reached Livy");

    // A body within the rules reaches Livy with what the policy changed.
    let body = r#"{"file":"hdfs:///a.jar","conf":{"spark.eventLog.dir":"hdfs:///logs","spark.app.name":"x"}}"#;
    let r = c
        .as_user_over(Proto::H2, "alice", Method::POST, BATCHES, body)
        .await;
    assert_eq!(r.status, 200, "the recorder's answer: {}", r.text());
    let sent: serde_json::Value = serde_json::from_slice(&gw.recorded()[0].body).unwrap();
    assert_eq!(sent["queue"], "adhoc");
    assert_eq!(sent["proxyUser"], "alice");
    assert_eq!(sent["conf"]["spark.app.name"], "x");
    assert!(sent["conf"].get("spark.eventLog.dir").is_none(), "{sent}");
    assert_eq!(sent["conf"]["spark.dynamicAllocation.maxExecutors"], "20");
    // The audit line says what was changed; the refusals name their rule.
    let allowed =
        |l: &serde_json::Value| l["action"] == "batch.create" && l["outcome"] == "allowed";
    let lines = gw.audit_until(|lines| lines.iter().any(allowed)).await;
    let created = lines.iter().find(|l| allowed(l)).unwrap();
    let reason = created["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("dropped conf.spark.eventLog.dir") && reason.contains("queue adhoc"),
        "{created}"
    );
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, "livy_gateway_policy_refusals_total{kind=\"deny_conf\"}"),
        2.0
    );
}

#[tokio::test]
async fn quotas_count_live_work_and_free_what_ended() {
    // Time at Livy's pace: batches run for seconds, sessions stay up.
    let livy = sim(1.0).await;
    let gw = gateway_with(
        Backend::Urls(vec![livy.clone()]),
        r#"
        max_sessions_per_user = 2
        max_batches_per_user = 1
        "#,
    )
    .await;
    let c = gw.client();
    let session = r#"{"kind":"pyspark"}"#;
    let mut ids = Vec::new();
    for proto in [Proto::H1, Proto::H2] {
        let r = c
            .as_user_over(proto, "alice", Method::POST, SESSIONS, session)
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.json()["id"].as_u64().unwrap());
    }
    for proto in [Proto::H1, Proto::H2] {
        let r = c
            .as_user_over(proto, "alice", Method::POST, SESSIONS, session)
            .await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
        let answer = r.json();
        assert_eq!(answer["error"], "quota_exceeded");
        assert_eq!(answer["quota"], "max_sessions_per_user");
        assert_eq!(
            (answer["count"].as_u64(), answer["limit"].as_u64()),
            (Some(2), Some(2))
        );
    }
    // Another user's quota is their own.
    let r = c.as_user("bob", Method::POST, SESSIONS, session).await;
    assert_eq!(r.status, 201);
    // A deletion through the gateway frees a place at once.
    let r = c
        .as_user(
            "alice",
            Method::DELETE,
            &format!("{SESSIONS}/{}", ids[0]),
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c.as_user("alice", Method::POST, SESSIONS, session).await;
    assert_eq!(r.status, 201, "{}", r.text());

    // A batch deleted behind the gateway's back: Livy's listing, asked before
    // the refusal, says it is gone.
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a.jar"}"#)
        .await;
    assert_eq!(r.status, 201);
    let batch = r.json()["id"].as_u64().unwrap();
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"b.jar"}"#)
        .await;
    assert_eq!(r.status, 429, "the first is still running");
    let (status, _) = at_sim(&livy, Method::DELETE, &format!("/batches/{batch}"), "").await;
    assert_eq!(status, 200);
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"c.jar"}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // A gateway restarted mid-count counts from Livy before its first creation.
    let gw = gw.restart().await;
    let c = gw.client();
    let r = c.as_user("alice", Method::POST, SESSIONS, session).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"d.jar"}"#)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());

    // The caller's usage, and an administrator's view of it.
    let r = c.as_user("alice", Method::GET, USAGE, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let usage = r.json();
    assert_eq!(
        usage["sessions"],
        serde_json::json!({"live": 2, "limit": 2})
    );
    assert_eq!(usage["batches"], serde_json::json!({"live": 1, "limit": 1}));
    let r = c
        .as_user("bob", Method::GET, &format!("{USAGE}?user=alice"), "")
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .as_user("admin", Method::GET, &format!("{USAGE}?user=alice"), "")
        .await;
    assert_eq!(r.json()["sessions"]["live"], 2);
    let r = c.as_user("admin", Method::GET, USAGE, "").await;
    let users: Vec<_> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["alice", "bob"]);

    // A reload applies a new policy to the next creation.
    let path = gw.dir.path().join("gateway.toml");
    let mut config = Config::load(&path).unwrap();
    config.policy.max_sessions_per_user = 3;
    std::fs::write(&path, config.to_toml()).unwrap();
    gw.runtime.reload().await.unwrap();
    let r = c.as_user("alice", Method::POST, SESSIONS, session).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_job_seen_ended_frees_its_place() {
    // A Livy whose listing is stale (every batch ever made still "running") but
    // whose `/state` tells the truth: only the gateway's noticing the end frees
    // the place.
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let livy: Responder = {
        let made = made.clone();
        Arc::new(move |r: &Recorded| {
            use std::sync::atomic::Ordering::SeqCst;
            let reply = |status, body: String| Reply::Now(json_reply(status, &body));
            let path = r.uri.split('?').next().unwrap_or_default().to_owned();
            match (r.method.clone(), path.as_str()) {
                (Method::POST, "/batches") => {
                    let id = made.fetch_add(1, SeqCst) + 1;
                    reply(
                        StatusCode::CREATED,
                        format!(r#"{{"id":{id},"state":"starting"}}"#),
                    )
                }
                (Method::GET, "/batches") => {
                    let views: Vec<String> = (1..=made.load(SeqCst))
                        .map(|id| format!(r#"{{"id":{id},"state":"running","proxyUser":"alice"}}"#))
                        .collect();
                    let total = views.len();
                    reply(
                        StatusCode::OK,
                        format!(
                            r#"{{"from":0,"total":{total},"sessions":[{}]}}"#,
                            views.join(",")
                        ),
                    )
                }
                (Method::GET, p) if p.ends_with("/state") => {
                    let id = p.trim_start_matches("/batches/").trim_end_matches("/state");
                    reply(
                        StatusCode::OK,
                        format!(r#"{{"id":{id},"state":"success"}}"#),
                    )
                }
                _ => reply(
                    StatusCode::OK,
                    r#"{"from":0,"total":0,"sessions":[]}"#.into(),
                ),
            }
        })
    };
    let gw = gateway_with(Backend::Recorder(livy), "max_batches_per_user = 1").await;
    let c = gw.client();
    let batch = r#"{"file":"a.jar"}"#;
    let r = c
        .as_user_over(Proto::H1, "alice", Method::POST, BATCHES, batch)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    // Livy's (stale) listing is asked before refusing, and says it runs.
    let r = c
        .as_user_over(Proto::H2, "alice", Method::POST, BATCHES, batch)
        .await;
    assert_eq!(r.status, 429, "{}", r.text());
    // Its state, relayed: ended, and the place is free.
    let r = c
        .as_user_over(
            Proto::H2,
            "alice",
            Method::GET,
            &format!("{BATCHES}/{id}/state"),
            "",
        )
        .await;
    assert_eq!(r.json()["state"], "success");
    let r = c.as_user("alice", Method::POST, BATCHES, batch).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_quota_holds_exactly_across_three_instances_on_redis() {
    let redis = RedisServer::start().await;
    let livy = sim(1.0).await;
    let mut gateways = Vec::new();
    for _ in 0..3 {
        let url = redis.url();
        let options = Options::backend(Backend::Urls(vec![livy.clone()])).with(move |c| {
            c.state.backend = StateBackend::Redis;
            c.state.redis_url = url;
            c.state.timeout = Duration::from_millis(2000);
            c.policy.max_sessions_per_user = 3;
        });
        gateways.push(TestGateway::start(options).await);
    }
    // Twelve creations at once, four through each instance, both protocols.
    let mut tasks = Vec::new();
    for (n, gw) in gateways.iter().cycle().take(12).enumerate() {
        let c = gw.client();
        let proto = if n % 2 == 0 { Proto::H1 } else { Proto::H2 };
        tasks.push(tokio::spawn(async move {
            c.as_user_over(
                proto,
                "alice",
                Method::POST,
                SESSIONS,
                r#"{"kind":"spark"}"#,
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        9,
        "{statuses:?}"
    );
    // Livy has exactly three, and every instance agrees.
    let r = gateways[2]
        .client()
        .as_user("alice", Method::GET, SESSIONS, "")
        .await;
    assert_eq!(r.json()["total"], 3);
    for gw in &gateways {
        let r = gw.client().as_user("alice", Method::GET, USAGE, "").await;
        assert_eq!(r.json()["sessions"]["live"], 3);
    }
    // One deleted through one instance frees a place on another.
    let id = r.json()["sessions"][0]["id"].as_u64().unwrap();
    let r = gateways[0]
        .client()
        .as_user("alice", Method::DELETE, &format!("{SESSIONS}/{id}"), "")
        .await;
    assert_eq!(r.status, 200);
    let r = gateways[1]
        .client()
        .as_user("alice", Method::POST, SESSIONS, r#"{"kind":"spark"}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn a_burst_of_creations_is_held_to_max_creating() {
    const HOLD: Duration = Duration::from_millis(300);
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let slow: Responder = Arc::new(move |r: &Recorded| {
        if r.method == Method::POST {
            seen.lock().unwrap().push(Instant::now());
            Reply::After(
                HOLD,
                json_reply(StatusCode::CREATED, r#"{"id":1,"state":"starting"}"#),
            )
        } else {
            Reply::Now(json_reply(
                StatusCode::OK,
                r#"{"from":0,"total":0,"sessions":[]}"#,
            ))
        }
    });
    let gw = gateway_with(Backend::Recorder(slow), "max_creating = 5").await;
    // Signed in once each: the burst is of creations, not of password checks.
    let mut cookies = Vec::new();
    for user in ["alice", "bob"] {
        let r = gw
            .client()
            .as_user(user, Method::GET, "/gateway/default/livy/v1/version", "")
            .await;
        cookies.push(format!("JSESSIONID={}", r.session_cookie().unwrap()));
    }
    let mut tasks = Vec::new();
    for n in 0..100 {
        let c = gw.client();
        let proto = if n % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let cookie = cookies[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            let headers: [(&str, &[u8]); 2] = [
                ("cookie", cookie.as_bytes()),
                ("content-type", b"application/json"),
            ];
            c.send(
                proto,
                Method::POST,
                BATCHES,
                &headers,
                r#"{"file":"a.jar"}"#,
            )
            .await
        }));
    }
    let mut created = 0;
    let mut busy = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status.as_u16() {
            201 => created += 1,
            503 => {
                busy += 1;
                assert_eq!(r.json()["error"], "creations_busy");
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("{other}: {}", r.text()),
        }
    }
    assert!(busy > 0 && created >= 5, "{created} created, {busy} busy");
    // Never more than five at Livy at once: each held its answer HOLD, so any
    // two that arrived within HOLD of each other were there together.
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), created);
    let most = arrivals
        .iter()
        .map(|a| {
            arrivals
                .iter()
                .filter(|b| *b <= a && a.duration_since(**b) < HOLD)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(most <= 5, "{most} at Livy at once");
}

#[tokio::test]
async fn idle_sessions_are_ended_and_a_working_one_never() {
    let livy = sim(1000.0).await;
    let gw = gateway_with(
        Backend::Urls(vec![livy.clone()]),
        "idle_session_timeout_mins = 30",
    )
    .await;
    let c = gw.client();
    let mut sessions = Vec::new();
    for user in ["alice", "bob"] {
        let r = c
            .as_user(user, Method::POST, SESSIONS, r#"{"kind":"pyspark"}"#)
            .await;
        sessions.push(r.json()["id"].as_u64().unwrap());
    }
    // alice's runs a statement (done at once at this speed); wait until idle.
    let statements = format!("{SESSIONS}/{}/statements", sessions[0]);
    for _ in 0..200 {
        let r = c
            .as_user(
                "alice",
                Method::GET,
                &format!("{SESSIONS}/{}/state", sessions[0]),
                "",
            )
            .await;
        if r.json()["state"] == "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = c
        .as_user("alice", Method::POST, &statements, r#"{"code":"1+1"}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let gateway = gw.runtime.gateway();
    let now = now_ms();
    // First look: bob's (no statement) is noted idle from now; nothing is old enough.
    assert!(gateway.upkeep_at(now).await.reaped.is_empty());
    // Twenty minutes on: still within the half hour.
    assert!(gateway.upkeep_at(now + 20 * 60_000).await.reaped.is_empty());
    // An hour on: both ended, as their owners, audited.
    let mut reaped = gateway.upkeep_at(now + 60 * 60_000).await.reaped;
    reaped.sort_unstable();
    assert_eq!(reaped, sessions);
    for (user, id) in [("alice", sessions[0]), ("bob", sessions[1])] {
        let r = c
            .as_user(user, Method::GET, &format!("{SESSIONS}/{id}"), "")
            .await;
        assert_eq!(r.status, 404, "{}", r.text());
    }
    let lines = gw
        .audit_until(|l| l.iter().filter(|l| l["action"] == "session.reap").count() == 2)
        .await;
    let reap = lines
        .iter()
        .find(|l| l["action"] == "session.reap")
        .unwrap();
    assert_eq!(reap["status"], 200);
    assert!(reap["effective_user"] == "alice" || reap["effective_user"] == "bob");
    let m = scrape(&gw).await;
    assert_eq!(metric(&m, "livy_gateway_reaped_sessions_total"), 2.0);
    assert_eq!(
        metric(
            &m,
            "livy_gateway_livy_resources{kind=\"session\",state=\"idle\"}"
        ),
        2.0,
        "as last listed, before the reaping"
    );
}

#[tokio::test]
async fn a_session_with_a_statement_running_is_never_ended() {
    // The simulator runs `time.sleep(N)` for N of Livy's seconds: at 100×, this
    // one runs for a quarter of an hour of real time, longer than the test.
    let livy = sim(100.0).await;
    let gw = gateway_with(
        Backend::Urls(vec![livy.clone()]),
        "idle_session_timeout_mins = 1",
    )
    .await;
    let c = gw.client();
    let r = c
        .as_user("alice", Method::POST, SESSIONS, r#"{"kind":"pyspark"}"#)
        .await;
    let id = r.json()["id"].as_u64().unwrap();
    for _ in 0..300 {
        let r = c
            .as_user("alice", Method::GET, &format!("{SESSIONS}/{id}/state"), "")
            .await;
        if r.json()["state"] == "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let statements = format!("{SESSIONS}/{id}/statements");
    let r = c
        .as_user(
            "alice",
            Method::POST,
            &statements,
            r#"{"code":"import time; time.sleep(100000)"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let gateway = gw.runtime.gateway();
    let now = now_ms();
    for later in [0, 60, 600, 6000] {
        let reaped = gateway.upkeep_at(now + later * 60_000).await.reaped;
        assert!(reaped.is_empty(), "{later} min on");
    }
    let r = c
        .as_user("alice", Method::GET, &format!("{SESSIONS}/{id}"), "")
        .await;
    assert_eq!(r.status, 200);
}

/// Milliseconds since the Unix epoch, as the upkeep's clock reads them.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn group_policies_follow_the_directory_and_an_administrator_acting_for_someone_gets_theirs() {
    let slapd = common::slapd::Slapd::start().await;
    let livy = sim(1000.0).await;
    let directory = slapd.directory();
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![livy])).with(move |c| {
        c.auth.htpasswd = None;
        c.auth.ldap = Some(directory);
        c.auth.admin_groups = vec!["livy-admins".into()];
        c.policy = toml::from_str(
            r#"
            max_sessions_per_user = 1
            deny_conf = ["spark.driver.extraClassPath"]
            [groups.livy-users]
            max_sessions_per_user = 2
            [groups.livy-admins]
            deny_conf = []
            "#,
        )
        .unwrap();
    }))
    .await;
    let c = gw.client();
    let create = |user: &'static str, body: &'static str| {
        let c = c.clone();
        async move {
            let auth = basic(user, &format!("{user}-pw"));
            let headers: [(&str, &[u8]); 2] = [
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
            ];
            c.send(Proto::H2, Method::POST, SESSIONS, &headers, body)
                .await
        }
    };
    let plain = r#"{"kind":"pyspark"}"#;
    // A member of livy-users: two; dave, in no group: [policy]'s one.
    assert_eq!(create("alice", plain).await.status, 201);
    assert_eq!(create("alice", plain).await.status, 201);
    let r = create("alice", plain).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["limit"].as_u64()),
        (429, Some(2))
    );
    assert_eq!(create("dave", plain).await.status, 201);
    let r = create("dave", plain).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["limit"].as_u64()),
        (429, Some(1))
    );
    // carol administers (livy-admins lifts the refused setting for her) …
    let classpath = r#"{"kind":"pyspark","conf":{"spark.driver.extraClassPath":"/opt/x.jar"}}"#;
    assert_eq!(create("carol", classpath).await.status, 201);
    // … but acting for bob she is held to bob's policy, his groups looked up.
    let for_bob = r#"{"kind":"pyspark","proxyUser":"bob","conf":{"spark.driver.extraClassPath":"/opt/x.jar"}}"#;
    let r = create("carol", for_bob).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["rule"], "deny_conf");
    let for_bob = r#"{"kind":"pyspark","proxyUser":"bob"}"#;
    assert_eq!(create("carol", for_bob).await.status, 201);
    assert_eq!(create("carol", for_bob).await.status, 201);
    let r = create("carol", for_bob).await;
    assert_eq!(r.status, 429, "bob's own limit of two: {}", r.text());
    // The usage route says the same.
    let auth = basic("alice", "alice-pw");
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            USAGE,
            &[("authorization", auth.as_bytes())],
            "",
        )
        .await;
    let usage = r.json();
    assert_eq!(
        usage["sessions"],
        serde_json::json!({"live": 2, "limit": 2})
    );
    assert_eq!(usage["groups"], serde_json::json!(["livy-users"]));
}
