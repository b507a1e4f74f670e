//! Several gateway instances sharing one state through a real `redis-server`
//! started by the suite on a free loopback port (tests/common/redis.rs): sessions,
//! ownership records (with the simulator as Livy 0.5, whose views carry no
//! owner), rate limits and lockouts hold across instances; a user removed on one
//! instance's reload loses their sessions on all; Redis stopped under running
//! gateways (503s with JSON, this instance's own rate limits, no hang) and started
//! again (recovered, nothing lost); `rediss://` with a password; moving records
//! between the backends with `state export` and `state import`.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use http::Method;
use livy_gateway::config::StateBackend;
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::SimConfig;

const BATCHES: &str = "/gateway/default/livy/v1/batches";

/// One simulator, as Livy 0.5 (views carry no owner), for every instance.
async fn shared_livy() -> String {
    start_sim(|_| SimConfig {
        version: LivyVersion::V05,
        speed: 1_000_000.0,
        ..SimConfig::default()
    })
    .await
}

/// Options for an instance on `redis` in front of `livy`, with `change` applied.
fn on_redis(
    redis: &RedisServer,
    livy: &str,
    change: impl Fn(&mut livy_gateway::config::Config) + Send + Sync + 'static,
) -> Options {
    let url = redis.url();
    Options::backend(Backend::Urls(vec![livy.to_owned()])).with(move |c| {
        c.state.backend = StateBackend::Redis;
        c.state.redis_url = url;
        // Generous for a loaded test machine; failures are told by errors, not time.
        c.state.timeout = Duration::from_millis(2000);
        change(c);
    })
}

/// Three instances sharing `redis` and one Livy.
async fn three(
    redis: &RedisServer,
    change: impl Fn(&mut livy_gateway::config::Config) + Clone + Send + Sync + 'static,
) -> Vec<TestGateway> {
    let livy = shared_livy().await;
    let mut gateways = Vec::new();
    for _ in 0..3 {
        gateways.push(TestGateway::start(on_redis(redis, &livy, change.clone())).await);
    }
    gateways
}

async fn with_cookie_over(
    client: &Client,
    proto: Proto,
    cookie: &str,
    method: Method,
    path: &str,
) -> Answer {
    let value = format!("JSESSIONID={cookie}");
    client
        .send(proto, method, path, &[("cookie", value.as_bytes())], "")
        .await
}

#[tokio::test]
async fn a_cookie_issued_by_one_instance_works_on_the_others() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, |_| {}).await;
    let first = gws[0]
        .client()
        .as_user("alice", Method::GET, BATCHES, "")
        .await;
    assert_eq!(first.status, 200);
    let cookie = first.session_cookie().expect("a session cookie");
    for (n, gw) in gws.iter().enumerate() {
        for proto in [Proto::H1, Proto::H2] {
            let r = with_cookie_over(&gw.client(), proto, &cookie, Method::GET, BATCHES).await;
            assert_eq!(r.status, 200, "instance {n} over {proto:?}");
            assert!(
                r.session_cookie().is_none(),
                "no new session on instance {n}"
            );
        }
    }
    // Signing out anywhere ends it everywhere: a forged or ended cookie is 401.
    let r = with_cookie_over(
        &gws[2].client(),
        Proto::H2,
        "x".repeat(43).as_str(),
        Method::GET,
        BATCHES,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "unauthorized");
}

#[tokio::test]
async fn a_batch_made_through_one_instance_is_its_owners_through_every_other() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, |_| {}).await;
    let (a, b, c) = (gws[0].client(), gws[1].client(), gws[2].client());
    let made = a
        .as_user_over(
            Proto::H2,
            "alice",
            Method::POST,
            BATCHES,
            r#"{"file":"/jobs/a.jar"}"#,
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.json()["id"].as_u64().unwrap();
    let item = format!("{BATCHES}/{id}");

    // Livy 0.5 names no owner: only the shared record tells.
    for (n, client) in [&a, &b, &c].into_iter().enumerate() {
        assert_eq!(
            client.as_user("alice", Method::GET, &item, "").await.status,
            200,
            "alice on {n}"
        );
        let r = client.as_user("bob", Method::GET, &item, "").await;
        assert_eq!(r.status, 404, "bob on {n}");
        let mine = client
            .as_user("alice", Method::GET, BATCHES, "")
            .await
            .json();
        let ids: Vec<u64> = mine["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, vec![id], "alice's listing on {n}");
        let theirs = client.as_user("bob", Method::GET, BATCHES, "").await.json();
        assert_eq!(theirs["total"], 0, "bob's listing on {n}");
    }
    // Controlled through a third; the record ends with the batch.
    assert_eq!(
        c.as_user("bob", Method::DELETE, &item, "").await.status,
        404
    );
    assert_eq!(
        c.as_user_over(Proto::H2, "alice", Method::DELETE, &item, "")
            .await
            .status,
        200
    );
    let key = format!("livy-gateway:owner:batch:{id}");
    assert_eq!(redis.cli(&["EXISTS", &key]).await.unwrap().trim(), "0");
}

#[tokio::test]
async fn a_per_user_limit_holds_across_instances() {
    let redis = RedisServer::start().await;
    let (rate, burst) = (1.0, 5);
    let gws = three(&redis, move |c| override_rate(c, "alice", rate, burst)).await;
    // One cookie, so every request takes the one-round-trip cookie path.
    let cookie = gws[0]
        .client()
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/version", "")
        .await
        .session_cookie()
        .unwrap();
    let started = Instant::now();
    let mut accepted = 1;
    let mut refused = 0;
    for n in 0..30 {
        let r = with_cookie_over(
            &gws[n % 3].client(),
            Proto::H1,
            &cookie,
            Method::GET,
            BATCHES,
        )
        .await;
        match r.status.as_u16() {
            200 => accepted += 1,
            429 => {
                refused += 1;
                assert_eq!(r.json()["error"], "rate_limited");
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // One limit for the three: the burst plus what the rate refilled meanwhile
    // (each instance on its own would have allowed three times the burst).
    let allowed = f64::from(burst) + rate * elapsed + 1.0;
    assert!(
        f64::from(accepted) <= allowed,
        "accepted {accepted} > {allowed:.1} in {elapsed:.1} s"
    );
    assert!(accepted >= burst, "accepted {accepted}");
    assert!(refused > 0);
    // And with Basic credentials, each request checked by its own script.
    let r = gws[1]
        .client()
        .as_user("alice", Method::GET, BATCHES, "")
        .await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn a_lockout_earned_through_one_instance_holds_on_the_others() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, |c| c.login.max_failures_per_pair = 3).await;
    // One guess through each: no instance alone has seen three.
    for (n, gw) in gws.iter().enumerate() {
        let auth = basic("alice", "wrong-password");
        let r = gw
            .client()
            .send(
                Proto::H1,
                Method::GET,
                BATCHES,
                &[("authorization", auth.as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 401, "guess {n}");
    }
    for (n, gw) in gws.iter().enumerate() {
        let r = gw.client().as_user("alice", Method::GET, BATCHES, "").await;
        assert_eq!(
            r.status, 429,
            "right password, still locked out, on instance {n}"
        );
        assert_eq!(r.json()["error"], "locked_out");
    }
    // Bob, from the same address, is not affected.
    assert_eq!(
        gws[2]
            .client()
            .as_user("bob", Method::GET, BATCHES, "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_user_removed_on_one_instance_loses_their_sessions_on_all() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, |_| {}).await;
    let cookie = alice_cookie(&gws[0]).await;
    let users: String = ["bob", "admin"]
        .iter()
        .map(|u| htpasswd_line(u, PASSWORD))
        .collect();
    std::fs::write(gws[1].dir.path().join("users.htpasswd"), users).unwrap();
    gws[1].runtime.reload().await.unwrap();
    for (n, gw) in gws.iter().enumerate() {
        let r = gw.client().with_cookie(&cookie, Method::GET, BATCHES).await;
        assert_eq!(r.status, 401, "instance {n}");
    }
}

#[tokio::test]
async fn redis_stopped_gives_503s_and_local_limits_then_everything_recovers() {
    let mut redis = RedisServer::start().await;
    let gws = three(&redis, |c| c.state.timeout = Duration::from_millis(300)).await;
    let client = gws[0].client();
    let cookie = client
        .as_user("alice", Method::GET, BATCHES, "")
        .await
        .session_cookie()
        .unwrap();
    let made = client
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
        .await;
    let item = format!("{BATCHES}/{}", made.json()["id"]);
    let (ready, _) = admin_get(gws[0].admin_addr, "/readyz").await;
    assert_eq!(ready, 200);

    redis.stop().await;
    for proto in [Proto::H1, Proto::H2] {
        // Bounded: an answer comes, and it is a clear 503 with a JSON body.
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            with_cookie_over(&gws[1].client(), proto, &cookie, Method::GET, &item),
        )
        .await
        .expect("an answer, not a hang");
        assert_eq!(r.status, 503, "{proto:?}");
        assert_eq!(r.json()["error"], "state_unavailable");
        assert!(r.header("retry-after").is_some());
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            gws[2]
                .client()
                .as_user_over(proto, "alice", Method::GET, BATCHES, ""),
        )
        .await
        .expect("an answer, not a hang");
        assert_eq!(
            r.status, 503,
            "a login whose lockouts cannot be read, {proto:?}"
        );
    }
    // The address's limit was decided by the instance itself.
    let m = scrape(&gws[2]).await;
    assert!(
        metric(
            &m,
            r#"livy_gateway_rate_limit_fallbacks_total{kind="address"}"#
        ) >= 1.0
    );
    assert!(metric(&m, r#"livy_gateway_state_errors_total{op="locked"}"#) >= 1.0);
    let (ready, body) = admin_get(gws[0].admin_addr, "/readyz").await;
    assert_eq!(ready, 503, "{body}");
    assert!(body.contains(r#""state":"unavailable""#), "{body}");

    redis.restart().await;
    // Each instance finds Redis again by itself; the session and the record
    // survived the restart (append-only file).
    for gw in &gws {
        until_status(gw, &cookie, &item, 200).await;
        assert_eq!(
            gw.client()
                .as_user("bob", Method::GET, &item, "")
                .await
                .status,
            404
        );
    }
    let (ready, body) = admin_get(gws[0].admin_addr, "/readyz").await;
    assert_eq!(ready, 200, "{body}");
}

#[tokio::test]
async fn rediss_with_a_password_and_a_ca_file() {
    let redis = RedisServer::start_secured().await;
    let livy = shared_livy().await;
    let (url, ca, password) = (redis.tls_url(), redis.ca(), redis.password_file());
    let secured = move |c: &mut livy_gateway::config::Config| {
        c.state.redis_url = url.clone();
        c.state.ca_file = Some(ca.clone());
        c.state.redis_password_file = Some(password.clone());
        cached_for_a_minute(c);
    };
    let one = TestGateway::start(on_redis(&redis, &livy, secured.clone())).await;
    let two = TestGateway::start(on_redis(&redis, &livy, secured)).await;
    let cookie = alice_cookie(&one).await;
    let r = with_cookie_over(&two.client(), Proto::H2, &cookie, Method::GET, BATCHES).await;
    assert_eq!(r.status, 200);
    // The near cache's subscription too goes over TLS with the password.
    until_cached(&two, &cookie, BATCHES).await;
    let keys = redis
        .cli(&["--scan", "--pattern", "livy-gateway:session:*"])
        .await
        .unwrap();
    assert_eq!(keys.lines().count(), 1, "{keys}");

    // Without the password the server refuses, and the gateway says 503.
    let livy2 = livy.clone();
    let url = redis.tls_url();
    let ca = redis.ca();
    let refused = TestGateway::start(on_redis(&redis, &livy2, move |c| {
        c.state.redis_url = url.clone();
        c.state.ca_file = Some(ca.clone());
    }))
    .await;
    let r = refused
        .client()
        .with_cookie(&cookie, Method::GET, BATCHES)
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "state_unavailable");
}

#[tokio::test]
async fn records_move_from_the_local_store_into_redis_and_back() {
    let redis = RedisServer::start().await;
    let livy = shared_livy().await;
    // Made on a local-state gateway.
    let local = TestGateway::start(Options::backend(Backend::Urls(vec![livy.clone()]))).await;
    let mut ids = Vec::new();
    for (user, name) in [("alice", "a"), ("bob", "b")] {
        let body = format!(r#"{{"file":"/jobs/x.jar","name":"{name}"}}"#);
        let made = local
            .client()
            .as_user(user, Method::POST, BATCHES, &body)
            .await;
        ids.push(made.json()["id"].as_u64().unwrap());
    }
    let kept = local.stop_keeping_dir().await;
    let dir = kept.path().to_owned();
    let config = dir.join("gateway.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace("redis://127.0.0.1:6379/0", &redis.url());
    std::fs::write(&config, text).unwrap();

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let config = config.to_str().unwrap();
    let exported = cli(&["state", "export", "--config", config, "--backend", "local"]).stdout;
    let lines: Vec<serde_json::Value> = String::from_utf8(exported.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["owner"], "alice");
    let file = dir.join("owners.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let out = cli(&[
        "state",
        "import",
        "--config",
        config,
        "--backend",
        "redis",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 records"));

    // A Redis-backed instance now knows both owners (Livy 0.5 tells none).
    let gw = TestGateway::start(on_redis(&redis, &livy, |_| {})).await;
    let c = gw.client();
    assert_eq!(
        c.as_user("alice", Method::GET, &format!("{BATCHES}/{}", ids[0]), "")
            .await
            .status,
        200
    );
    assert_eq!(
        c.as_user("bob", Method::GET, &format!("{BATCHES}/{}", ids[0]), "")
            .await
            .status,
        404
    );
    // And back: what Redis holds comes out the same.
    let back = cli(&["state", "export", "--config", config, "--backend", "redis"]).stdout;
    assert_eq!(
        String::from_utf8(back).unwrap(),
        String::from_utf8(exported).unwrap()
    );
}

/// A session cookie of alice's, from a Basic login on `gw`.
async fn alice_cookie(gw: &TestGateway) -> String {
    gw.client()
        .as_user("alice", Method::GET, BATCHES, "")
        .await
        .session_cookie()
        .unwrap()
}

/// One instance on a fresh Redis with both per-request limits at `rps` (0: off),
/// and a session cookie of alice's.
async fn alice_on_one(redis: &RedisServer, rps: f64) -> (TestGateway, String) {
    let livy = shared_livy().await;
    let gw = TestGateway::start(on_redis(redis, &livy, move |c| {
        c.rate_limit.per_ip_rps = rps;
        c.rate_limit.per_user_rps = rps;
    }))
    .await;
    let cookie = alice_cookie(&gw).await;
    (gw, cookie)
}

/// A number Redis tells: `PTTL key`, or a field of `INFO`'s.
async fn redis_number(redis: &RedisServer, args: &[&str], field: Option<&str>) -> i64 {
    let out = redis.cli(args).await.unwrap();
    let text = match field {
        Some(field) => out
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap(),
        None => out.as_str(),
    };
    text.trim().parse().unwrap()
}

#[tokio::test]
async fn a_session_in_use_is_renewed_without_a_write_at_every_request() {
    let redis = RedisServer::start().await;
    // Limits off: a limit's state is a write at every request of its own.
    let (gw, cookie) = alice_on_one(&redis, 0.0).await;
    let client = gw.client();
    let key = format!("livy-gateway:session:{cookie}");
    let version = "/gateway/default/livy/v1/version";
    // A session close to its idle end is given the whole idle timeout again
    // (30 minutes by default) when it is used.
    redis.cli(&["PEXPIRE", &key, "5000"]).await.unwrap();
    let r = with_cookie_over(&client, Proto::H1, &cookie, Method::GET, version).await;
    assert_eq!(r.status, 200);
    assert!(redis_number(&redis, &["PTTL", &key], None).await > 1_790_000);
    // Used again within the second: nothing written (Redis counts every change).
    let changes = ["INFO", "persistence"];
    let field = Some("rdb_changes_since_last_save");
    let before = redis_number(&redis, &changes, field).await;
    let started = Instant::now();
    for proto in [Proto::H1, Proto::H2] {
        let r = with_cookie_over(&client, proto, &cookie, Method::GET, version).await;
        assert_eq!(r.status, 200);
    }
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(redis_number(&redis, &changes, field).await, before);
    }
    // Idle: a session Redis let expire is refused.
    redis.cli(&["PEXPIRE", &key, "1"]).await.unwrap();
    let mut refused = false;
    for _ in 0..100 {
        let r = with_cookie_over(&client, Proto::H2, &cookie, Method::GET, version).await;
        if r.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "an expired session still admitted");
}

/// Calls of scripts Redis has run (`EVALSHA` and `EVAL`), from `INFO commandstats`.
async fn script_calls(redis: &RedisServer) -> u64 {
    let info = redis.cli(&["INFO", "commandstats"]).await.unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn a_request_with_a_cookie_costs_one_round_trip() {
    // Its address's limit, its session, its user's limit and the record its path
    // names: one script.
    let redis = RedisServer::start().await;
    // Every limit on, so each would cost a round trip of its own if asked apart.
    let (gw, cookie) = alice_on_one(&redis, 1000.0).await;
    let client = gw.client();
    let version = "/gateway/default/livy/v1/version";
    // The first use of a script after Redis starts also loads it (NOSCRIPT, then
    // SCRIPT LOAD): count from the second.
    with_cookie_over(&client, Proto::H1, &cookie, Method::GET, version).await;
    let before = script_calls(&redis).await;
    for proto in [Proto::H1, Proto::H2] {
        for _ in 0..5 {
            let r = with_cookie_over(&client, proto, &cookie, Method::GET, version).await;
            assert_eq!(r.status, 200);
        }
    }
    let after = script_calls(&redis).await;
    assert_eq!(
        after - before,
        10,
        "one script per request: {}",
        redis.cli(&["INFO", "commandstats"]).await.unwrap()
    );
    // A listing: the session with the limits, then its records in one lookup.
    for _ in 0..3 {
        let made = client
            .as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
            .await;
        assert_eq!(made.status, 201);
    }
    with_cookie_over(&client, Proto::H2, &cookie, Method::GET, BATCHES).await;
    let before = script_calls(&redis).await;
    let r = with_cookie_over(&client, Proto::H2, &cookie, Method::GET, BATCHES).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 3);
    assert_eq!(script_calls(&redis).await - before, 2);
    // One of them: the record comes with the session, in the same script.
    let id = r.json()["sessions"][0]["id"].as_u64().unwrap();
    let before = script_calls(&redis).await;
    let r = with_cookie_over(
        &client,
        Proto::H1,
        &cookie,
        Method::GET,
        &format!("{BATCHES}/{id}"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(script_calls(&redis).await - before, 1);
}

#[tokio::test]
async fn check_config_probes_redis() {
    let mut redis = RedisServer::start().await;
    let livy = shared_livy().await;
    let gw = TestGateway::start(on_redis(&redis, &livy, |_| {})).await;
    let dir = gw.stop_keeping_dir().await;
    let probe = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .args(["check-config", "--probe", "--config"])
            .arg(dir.path().join("gateway.toml"))
            .output()
            .unwrap()
    };
    let out = probe();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("state:         redis at redis://127.0.0.1"),
        "{stdout}"
    );
    assert!(stdout.contains("answers"), "{stdout}");
    redis.stop().await;
    let out = probe();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("probe failed") && stderr.contains("redis"),
        "{stderr}"
    );
}

/// HAProxy in TCP mode (as in docs/operations.md) in front of `gateways`, health
/// checks on their `/readyz`; stopped when dropped.
struct Balancer {
    port: u16,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Balancer {
    async fn start(gateways: &[TestGateway]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "global\n    maxconn 200\ndefaults\n    mode tcp\n    timeout connect 2s\n    \
             timeout client 30s\n    timeout server 30s\nfrontend livy_gateway\n    \
             bind 127.0.0.1:{port}\n    default_backend gateways\nbackend gateways\n    \
             balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n"
        );
        for (n, gw) in gateways.iter().enumerate() {
            conf += &format!(
                "    server gw{n} {} check port {} inter 200ms\n",
                gw.addr,
                gw.admin_addr.port()
            );
        }
        std::fs::write(dir.path().join("haproxy.cfg"), conf).unwrap();
        let child = tokio::process::Command::new("haproxy")
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"))
            .arg("-db")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy runs (scripts/test.sh installs it)");
        assert!(wait_until_listening(port), "haproxy did not listen");
        Self {
            port,
            _dir: dir,
            _child: child,
        }
    }
}

#[tokio::test]
async fn three_instances_behind_haproxy_serve_one_user_without_sticky_sessions() {
    let redis = RedisServer::start().await;
    let livy = shared_livy().await;
    let first = TestGateway::start(on_redis(&redis, &livy, |_| {})).await;
    // One certificate for all three, as behind one name.
    let certs = first.dir.path().join("certs");
    let mut gws = vec![first];
    for _ in 0..2 {
        let certs = certs.clone();
        gws.push(
            TestGateway::start(on_redis(&redis, &livy, move |c| {
                c.server.tls_cert = certs.join("gateway.crt");
                c.server.tls_key = certs.join("gateway.key");
            }))
            .await,
        );
    }
    let balancer = Balancer::start(&gws).await;
    let client = Client::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], balancer.port)),
        &gws[0].ca_pem,
    );
    // Until HAProxy's health checks have found every instance up (bounded).
    let mut cookie = None;
    for _ in 0..200 {
        if let Ok(r) = client
            .try_send(
                Method::GET,
                BATCHES,
                &[("authorization", basic("alice", PASSWORD).as_bytes())],
            )
            .await
        {
            if r.status == 200 {
                cookie = r.session_cookie();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cookie = cookie.expect("a login through the balancer");
    let made = client
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
        .await;
    assert_eq!(made.status, 201);
    let item = format!("{BATCHES}/{}", made.json()["id"]);
    // Each request a new connection, round robin: every instance serves some.
    for n in 0..12 {
        let proto = if n % 2 == 0 { Proto::H1 } else { Proto::H2 };
        let r = with_cookie_over(&client, proto, &cookie, Method::GET, &item).await;
        assert_eq!(r.status, 200, "request {n}");
        assert!(r.session_cookie().is_none());
        assert_eq!(
            client.as_user("bob", Method::GET, &item, "").await.status,
            404
        );
    }
    for (n, gw) in gws.iter().enumerate() {
        let m = scrape(gw).await;
        let served = metric(
            &m,
            r#"livy_gateway_requests_total{route="batch.get",method="GET",status="200"}"#,
        );
        assert!(served >= 1.0, "instance {n} served none");
    }
}

/// Options for three instances with no rate limits (so the near cache answers
/// cookies) whose copies last a minute (so only Redis's messages end one early).
fn cached_for_a_minute(c: &mut livy_gateway::config::Config) {
    c.rate_limit.per_ip_rps = 0.0;
    c.rate_limit.per_user_rps = 0.0;
    c.state.local_cache = Duration::from_secs(60);
}

/// Requests `gw` answered from its near cache (`hit`) or Redis (`miss`) so far.
async fn cache_lookups(gw: &TestGateway, outcome: &str) -> f64 {
    let series = format!(r#"livy_gateway_state_cache_lookups_total{{outcome="{outcome}"}}"#);
    metric(&scrape(gw).await, &series)
}

/// Sends `cookie` to `gw` until its near cache answers (an instance fills it
/// once it has subscribed to Redis's messages, shortly after its first request).
async fn until_cached(gw: &TestGateway, cookie: &str, path: &str) {
    for _ in 0..200 {
        let before = cache_lookups(gw, "hit").await;
        let r = gw.client().with_cookie(cookie, Method::GET, path).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        if cache_lookups(gw, "hit").await > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never answered from the near cache");
}

/// Sends `cookie` to `gw` until it is answered `status` (bounded).
async fn until_status(gw: &TestGateway, cookie: &str, path: &str, status: u16) {
    let mut last = 0;
    for _ in 0..200 {
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            gw.client().with_cookie(cookie, Method::GET, path),
        )
        .await
        .expect("an answer, not a hang");
        last = r.status.as_u16();
        if last == status {
            if status >= 400 {
                assert!(r.json()["error"].is_string(), "a JSON body: {:?}", r.body);
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("still {last}, not {status}");
}

const VERSION: &str = "/gateway/default/livy/v1/version";

#[tokio::test]
async fn a_session_ended_anywhere_is_refused_at_once_by_instances_that_held_a_copy() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, cached_for_a_minute).await;
    let cookie = alice_cookie(&gws[0]).await;
    for gw in &gws {
        until_cached(gw, &cookie, VERSION).await;
    }
    // Answered without Redis, on both protocols.
    let before = script_calls(&redis).await;
    for gw in &gws {
        for proto in [Proto::H1, Proto::H2] {
            let r = with_cookie_over(&gw.client(), proto, &cookie, Method::GET, VERSION).await;
            assert_eq!(r.status, 200);
        }
    }
    assert_eq!(script_calls(&redis).await, before, "no round trip");

    // alice removed by one instance's reload: every copy goes with Redis's message,
    // long before its minute is up.
    std::fs::write(
        gws[1].dir.path().join("users.htpasswd"),
        htpasswd_line("bob", PASSWORD),
    )
    .unwrap();
    gws[1].runtime.reload().await.unwrap();
    for gw in &gws {
        until_status(gw, &cookie, VERSION, 401).await;
    }
}

#[tokio::test]
async fn a_record_changed_through_one_instance_is_read_again_by_the_others() {
    let redis = RedisServer::start().await;
    let gws = three(&redis, cached_for_a_minute).await;
    let made = gws[0]
        .client()
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
        .await;
    assert_eq!(made.status, 201);
    let cookie = made.session_cookie().unwrap();
    let item = format!("{BATCHES}/{}", made.json()["id"]);
    until_cached(&gws[1], &cookie, &item).await;
    let before = script_calls(&redis).await;
    let r = gws[1]
        .client()
        .with_cookie(&cookie, Method::GET, &item)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        script_calls(&redis).await,
        before,
        "the record came from the copy"
    );

    // Deleted through another instance: the record's message drops the copy, so
    // the next request reads Redis again (the session's copy alone is not enough).
    let r = gws[2]
        .client()
        .with_cookie(&cookie, Method::DELETE, &item)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut read_again = false;
    for _ in 0..200 {
        let before = cache_lookups(&gws[1], "miss").await;
        let r = gws[1]
            .client()
            .with_cookie(&cookie, Method::GET, &item)
            .await;
        assert_eq!(r.status, 404);
        if cache_lookups(&gws[1], "miss").await > before {
            read_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(read_again, "the deleted record was answered from the copy");
}

#[tokio::test]
async fn losing_the_invalidation_channel_empties_the_near_cache_until_it_is_back() {
    let mut redis = RedisServer::start().await;
    let livy = shared_livy().await;
    let gw = TestGateway::start(on_redis(&redis, &livy, |c| {
        cached_for_a_minute(c);
        // A silent Redis is found out by the next ping within this.
        c.state.timeout = Duration::from_millis(500);
    }))
    .await;
    let cookie = alice_cookie(&gw).await;
    until_cached(&gw, &cookie, VERSION).await;

    // The subscription's connection killed: the cache is emptied (the next
    // request goes to Redis), then filled again once subscribed anew.
    redis
        .cli(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    let resets = r#"livy_gateway_state_cache_resets_total"#;
    let mut reset = false;
    for _ in 0..200 {
        if metric(&scrape(&gw).await, resets) >= 1.0 {
            reset = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(reset, "the lost subscription was not noticed");
    let before = script_calls(&redis).await;
    let r = gw.client().with_cookie(&cookie, Method::GET, VERSION).await;
    assert_eq!(r.status, 200);
    assert!(
        script_calls(&redis).await > before,
        "answered from an emptied cache"
    );
    until_cached(&gw, &cookie, VERSION).await;

    // Redis silent (stopped, not closed): the ping goes unanswered, the copies go,
    // and requests get 503 rather than a minute of copies.
    let pid = redis_number(&redis, &["INFO", "server"], Some("process_id")).await;
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    until_status(&gw, &cookie, VERSION, 503).await;
    signal("-CONT");
    until_status(&gw, &cookie, VERSION, 200).await;
    until_cached(&gw, &cookie, VERSION).await;

    // Redis gone: the same, at once.
    redis.stop().await;
    until_status(&gw, &cookie, VERSION, 503).await;
    assert!(metric(&scrape(&gw).await, resets) >= 3.0);
}

#[tokio::test]
async fn a_redis_user_not_allowed_the_channel_works_without_the_near_cache() {
    let redis = RedisServer::start().await;
    // An ACL user with the gateway's keys and every command, but no channel.
    let password = redis.password_file();
    let secret = std::fs::read_to_string(&password).unwrap();
    let pass = format!(">{}", secret.trim());
    let acl = [
        "ACL",
        "SETUSER",
        "gateway",
        "on",
        &pass,
        "~livy-gateway:*",
        "resetchannels",
        "+@all",
    ];
    assert_eq!(redis.cli(&acl).await.unwrap().trim(), "OK");
    let livy = shared_livy().await;
    let url = redis.url().replace("redis://", "redis://gateway@");
    let gws: Vec<TestGateway> = {
        let mut gws = Vec::new();
        for _ in 0..2 {
            let (url, password) = (url.clone(), password.clone());
            let options = on_redis(&redis, &livy, move |c| {
                c.state.redis_url = url.clone();
                c.state.redis_password_file = Some(password.clone());
                cached_for_a_minute(c);
            });
            gws.push(TestGateway::start(options).await);
        }
        gws
    };
    let cookie = alice_cookie(&gws[0]).await;
    for _ in 0..10 {
        for proto in [Proto::H1, Proto::H2] {
            let r = with_cookie_over(&gws[0].client(), proto, &cookie, Method::GET, VERSION).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        cache_lookups(&gws[0], "hit").await,
        0.0,
        "no subscription, no copies"
    );
    assert!(cache_lookups(&gws[0], "miss").await >= 20.0);
    // Ending sessions still works, all of a user's: only the messages are refused.
    let second = alice_cookie(&gws[1]).await;
    std::fs::write(
        gws[1].dir.path().join("users.htpasswd"),
        htpasswd_line("bob", PASSWORD),
    )
    .unwrap();
    gws[1].runtime.reload().await.unwrap();
    let sessions = redis
        .cli(&["--scan", "--pattern", "livy-gateway:session:*"])
        .await
        .unwrap();
    assert_eq!(sessions.trim(), "", "sessions left");
    for gw in &gws {
        for cookie in [&cookie, &second] {
            let r = gw.client().with_cookie(cookie, Method::GET, VERSION).await;
            assert_eq!(r.status, 401);
        }
    }
}
