//! Token logins end to end over real TLS, on both protocols: JWTs from a real
//! OpenID provider (npm's `oidc-provider`, tests/common/idp.rs: client
//! credentials, a user's login, key rotation, an outage) and hostile ones made
//! with `jose`; the gateway's own tokens (API and CLI, on the local store and on
//! a real Redis shared by two instances, a directory user removed from a real
//! slapd).

mod common;

use std::time::Duration;

use common::idp::{Idp, AUDIENCE};
use common::redis::RedisServer;
use common::slapd::Slapd;
use common::*;
use http::Method;
use livy_gateway::config::{Config, JwtConfig, StateBackend};
use serde_json::json;
use sha2::Digest;

const TOKENS: &str = "/gateway/default/tokens";
const BATCHES: &str = "/gateway/default/livy/v1/batches";
const VERSION: &str = "/gateway/default/livy/v1/version";

/// `[auth.jwt]` for `idp`: users by `preferred_username`, groups by `groups`;
/// only `livy-users` get in, `livy-admins` administer.
fn provider(idp: &Idp) -> impl FnOnce(&mut Config) + Send + 'static {
    let jwt = JwtConfig {
        issuer: idp.issuer.clone(),
        audiences: vec![AUDIENCE.into()],
        user_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
        ca_file: Some(idp.ca()),
        jwks_refresh: secs(10),
        ..JwtConfig::default()
    };
    move |c: &mut Config| {
        c.auth.jwt = Some(jwt);
        c.auth.allowed_groups = vec!["livy-users".into()];
        c.auth.admin_groups = vec!["livy-admins".into()];
    }
}

/// `[tokens] enabled`, at most `most` per user.
fn tokens(most: usize) -> impl FnOnce(&mut Config) + Send + 'static {
    move |c: &mut Config| {
        c.tokens.enabled = true;
        c.tokens.max_per_user = most;
    }
}

async fn bearer(c: &Client, proto: Proto, token: &str, method: Method, path: &str) -> Answer {
    let value = format!("Bearer {token}");
    let mut headers: Vec<(&str, &[u8])> = vec![("authorization", value.as_bytes())];
    let body = match method {
        Method::POST => {
            headers.push(("content-type", b"application/json"));
            r#"{"file": "job.jar"}"#
        }
        _ => "",
    };
    c.send(proto, method, path, &headers, body).await
}

/// `GET path` with the token as a Basic password (user name `token`).
async fn basic_token(c: &Client, proto: Proto, token: &str, path: &str) -> Answer {
    let auth = basic("token", token);
    c.send(
        proto,
        Method::GET,
        path,
        &[("authorization", auth.as_bytes())],
        "",
    )
    .await
}

fn refused_as_invalid(r: &Answer, what: &str) {
    assert_eq!(r.status, 401, "{what}: {:?}", r.body);
    assert_eq!(r.json()["error"], "unauthorized", "{what}");
    let challenges: Vec<&str> = r
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        challenges.contains(&r#"Bearer error="invalid_token""#),
        "{what}: {challenges:?}"
    );
}

#[tokio::test]
async fn provider_tokens_work_as_bearer_and_as_basic_passwords_with_their_groups() {
    let mut idp = Idp::start().await;
    let gw = TestGateway::start(Options::default().with(provider(&idp))).await;
    let c = gw.client();
    let service = idp.service_token().await;
    for proto in [Proto::H1, Proto::H2] {
        // Client credentials: the service account, asserted to Livy; no cookie.
        let r = bearer(&c, proto, &service, Method::POST, BATCHES).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.json()["proxyUser"], "svc-airflow");
        assert!(
            r.session_cookie().is_none(),
            "a bearer request is stateless"
        );
        let r = bearer(&c, proto, &service, Method::GET, BATCHES).await;
        assert_eq!(r.status, 200);
    }
    // A user's login: their token as Basic `token:` starts a session.
    let alice = idp.user_token("alice").await;
    let r = basic_token(&c, Proto::H2, &alice, BATCHES).await;
    assert_eq!(r.status, 200);
    let cookie = r
        .session_cookie()
        .expect("a Basic token login gets a cookie");
    let r = c.with_cookie(&cookie, Method::GET, BATCHES).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["total"],
        0,
        "alice sees none of svc-airflow's batches"
    );
    // Groups from the token decide as a directory's would.
    let eve = idp.user_token("eve").await;
    assert_eq!(
        bearer(&c, Proto::H1, &eve, Method::GET, BATCHES)
            .await
            .status,
        403
    );
    let carol = idp.user_token("carol").await;
    let r = bearer(&c, Proto::H2, &carol, Method::GET, BATCHES).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 2, "an administrator by group sees all");
    // A token minted with a JWT cannot mint more.
    let r = c
        .send(
            Proto::H1,
            Method::POST,
            TOKENS,
            &[
                ("authorization", format!("Bearer {alice}").as_bytes()),
                ("content-type", b"application/json"),
            ],
            r#"{"name": "x"}"#,
        )
        .await;
    assert_eq!(r.status, 404, "tokens are not enabled here");
    let m = scrape(&gw).await;
    assert!(metric(&m, r#"livy_gateway_auth_total{outcome="jwt"}"#) >= 6.0);
    let audit = gw
        .audit_until(|lines| lines.iter().any(|l| l["user"] == "svc-airflow"))
        .await;
    let line = audit.iter().find(|l| l["user"] == "svc-airflow").unwrap();
    assert!(line["token"].as_str().is_some_and(|jti| !jti.is_empty()));
    gw.shutdown().await;
}

#[tokio::test]
async fn hostile_tokens_are_refused_before_livy_sees_anything() {
    let mut idp = Idp::start().await;
    let gw = TestGateway::start(
        Options::backend(Backend::Recorder(ok_responder()))
            .with(provider(&idp))
            .with(|c| {
                // Every hostile shape here, from one address, without a lockout.
                c.login.max_failures_per_pair = 1000;
                c.login.max_failures_per_address = 1000;
            }),
    )
    .await;
    let c = gw.client();
    let kinds = [
        "expired",
        "wrong-aud",
        "wrong-iss",
        "none",
        "hs256-public",
        "unknown-kid",
        "tampered",
        "no-user",
    ];
    let mut hostile = Vec::new();
    for kind in kinds {
        hostile.push((kind, idp.forge(kind, "alice").await));
    }
    hostile.push(("garbage", "abc.def.ghi".to_string()));
    for (kind, token) in &hostile {
        for proto in [Proto::H1, Proto::H2] {
            let r = bearer(&c, proto, token, Method::GET, VERSION).await;
            refused_as_invalid(&r, kind);
            let r = basic_token(&c, proto, token, VERSION).await;
            refused_as_invalid(&r, kind);
            assert!(r.session_cookie().is_none());
        }
    }
    assert!(gw.recorded().is_empty(), "nothing reached Livy");
    // A good token signed with the provider's EC key passes.
    let good = idp.forge("es256", "alice").await;
    assert_eq!(
        bearer(&c, Proto::H2, &good, Method::GET, VERSION)
            .await
            .status,
        200
    );
    assert_eq!(gw.recorded().len(), 1);
    let m = scrape(&gw).await;
    assert!(metric(&m, r#"livy_gateway_auth_total{outcome="invalid_token"}"#) >= 36.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn failed_tokens_count_against_the_clients_address() {
    let mut idp = Idp::start().await;
    let gw = TestGateway::start(Options::default().with(provider(&idp)).with(|c| {
        c.login.max_failures_per_pair = 3;
        c.login.max_failures_per_address = 3;
    }))
    .await;
    let c = gw.client();
    let expired = idp.forge("expired", "alice").await;
    for _ in 0..3 {
        refused_as_invalid(
            &bearer(&c, Proto::H1, &expired, Method::GET, BATCHES).await,
            "expired",
        );
    }
    let r = bearer(&c, Proto::H2, &expired, Method::GET, BATCHES).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(r.header("retry-after").is_some());
    // Another address is not locked.
    let elsewhere = c.connecting_from("127.0.0.2");
    let r = bearer(&elsewhere, Proto::H1, &expired, Method::GET, BATCHES).await;
    assert_eq!(r.status, 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn rotated_keys_are_taken_up_and_retired_ones_dropped_without_a_restart() {
    let mut idp = Idp::start().await;
    let gw = TestGateway::start(Options::default().with(provider(&idp))).await;
    let c = gw.client();
    let old = idp.service_token().await;
    assert_eq!(
        bearer(&c, Proto::H1, &old, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    idp.ask("rotate").await;
    let new = idp.service_token().await;
    assert_ne!(new.split('.').next(), old.split('.').next(), "a new kid");
    // The unknown kid makes the gateway fetch the keys again at once.
    assert_eq!(
        bearer(&c, Proto::H2, &new, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    assert_eq!(
        bearer(&c, Proto::H1, &old, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    idp.ask("retire").await;
    // At the next scheduled fetch (jwks_refresh_secs = 10) the old key is gone,
    // and its tokens with it.
    let mut status = 200;
    for _ in 0..80 {
        status = bearer(&c, Proto::H1, &old, Method::GET, BATCHES)
            .await
            .status
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, 401, "a retired key's tokens are refused");
    assert_eq!(
        bearer(&c, Proto::H2, &new, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn while_the_provider_is_away_held_keys_work_and_others_are_503() {
    let mut idp = Idp::start().await;
    let gw = TestGateway::start(Options::default().with(provider(&idp))).await;
    let c = gw.client();
    let held = idp.service_token().await;
    assert_eq!(
        bearer(&c, Proto::H1, &held, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    let unheld = idp.forge("unknown-kid", "alice").await;
    idp.stop().await;
    for proto in [Proto::H1, Proto::H2] {
        assert_eq!(
            bearer(&c, proto, &held, Method::GET, BATCHES).await.status,
            200
        );
        let r = bearer(&c, proto, &unheld, Method::GET, BATCHES).await;
        assert_eq!(r.status, 503, "{:?}", r.body);
        assert_eq!(r.json()["error"], "idp_unavailable");
        assert!(r.header("retry-after").is_some());
    }
    let (status, body) = admin_get(gw.admin_addr, "/readyz").await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status.as_u16(), &ready["checks"]["jwks"]),
        (200, &json!("degraded")),
        "{body}"
    );
    // Back, with new keys: its tokens are taken once the keys are fetched again.
    let mut idp = idp.restart().await;
    let fresh = idp.service_token().await;
    let mut status = 0;
    for _ in 0..80 {
        status = bearer(&c, Proto::H2, &fresh, Method::GET, BATCHES)
            .await
            .status
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, 200, "recovered without a restart");
    let (_, body) = admin_get(gw.admin_addr, "/readyz").await;
    assert!(body.contains(r#""jwks":"ok""#), "{body}");
    gw.shutdown().await;
}

/// `POST /tokens` as `user` (password) with `body`.
async fn create(c: &Client, proto: Proto, user: &str, body: &str) -> Answer {
    let auth = basic(user, PASSWORD);
    c.send(
        proto,
        Method::POST,
        TOKENS,
        &[
            ("authorization", auth.as_bytes()),
            ("content-type", b"application/json"),
        ],
        body,
    )
    .await
}

#[tokio::test]
async fn gateway_tokens_are_issued_used_listed_and_revoked() {
    let gw = TestGateway::start(Options::default().with(tokens(2))).await;
    let c = gw.client();
    let r = create(
        &c,
        Proto::H2,
        "alice",
        r#"{"name": "airflow-prod", "ttl_days": 30}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let issued = r.json();
    let token = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lgw_") && token.len() == 47, "{token}");
    assert_eq!(issued["name"], "airflow-prod");
    for proto in [Proto::H1, Proto::H2] {
        let r = bearer(&c, proto, &token, Method::POST, BATCHES).await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["proxyUser"], "alice");
        assert!(r.session_cookie().is_none());
    }
    let r = basic_token(&c, Proto::H1, &token, BATCHES).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 2);
    let cookie = r
        .session_cookie()
        .expect("a Basic token login gets a cookie");
    // A token, or a session it started, cannot mint more.
    let r = c
        .send(
            Proto::H2,
            Method::POST,
            TOKENS,
            &[
                ("authorization", format!("Bearer {token}").as_bytes()),
                ("content-type", b"application/json"),
            ],
            r#"{"name": "more"}"#,
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let session = format!("JSESSIONID={cookie}");
    let r = c
        .send(
            Proto::H1,
            Method::POST,
            TOKENS,
            &[
                ("cookie", session.as_bytes()),
                ("content-type", b"application/json"),
            ],
            r#"{"name": "more"}"#,
        )
        .await;
    assert_eq!(r.status, 403);
    // Lists never show a secret; others' lists are for administrators.
    let r = c
        .as_user_over(Proto::H2, "alice", Method::GET, TOKENS, "")
        .await;
    assert_eq!(r.status, 200);
    let listed = r.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(
        listed[0].get("token").is_none() && !r.body.windows(8).any(|w| w == &token.as_bytes()[..8])
    );
    let bob_lists = c
        .as_user("bob", Method::GET, &format!("{TOKENS}?user=alice"), "")
        .await;
    assert_eq!(bob_lists.status, 403);
    let r = c
        .as_user("admin", Method::GET, &format!("{TOKENS}?user=alice"), "")
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // At most two per user.
    assert_eq!(
        create(&c, Proto::H1, "alice", r#"{"name": "second"}"#)
            .await
            .status,
        201
    );
    let r = create(&c, Proto::H1, "alice", r#"{"name": "third"}"#).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].as_str()),
        (409, Some("too_many_tokens"))
    );
    for bad in [
        r#"{"name": ""}"#,
        r#"{"name": "x", "ttl_days": 366}"#,
        r#"{"name": "x", "ttl_days": 0}"#,
        r#"{"nom": "x"}"#,
        "[]",
    ] {
        assert_eq!(create(&c, Proto::H2, "bob", bad).await.status, 400, "{bad}");
    }
    // Another site's page cannot make or revoke one with the browser's login.
    let auth = basic("alice", PASSWORD);
    let one = format!("{TOKENS}/{id}");
    for (method, path) in [(Method::POST, TOKENS), (Method::DELETE, one.as_str())] {
        let r = c
            .send(
                Proto::H2,
                method,
                path,
                &[
                    ("authorization", auth.as_bytes()),
                    ("origin", b"https://evil.example"),
                    ("sec-fetch-site", b"cross-site"),
                    ("content-type", b"text/plain"),
                ],
                r#"{"name": "forged"}"#,
            )
            .await;
        let refused = (
            r.status.as_u16(),
            r.json()["error"].as_str().map(str::to_owned),
        );
        assert_eq!(refused, (403, Some("cross_origin".to_string())));
    }
    // Only its owner (or an administrator) revokes it; then it is refused, and
    // the session it started ends.
    let path = format!("{TOKENS}/{id}");
    assert_eq!(
        c.as_user("bob", Method::DELETE, &path, "").await.status,
        404
    );
    let r = c
        .as_user_over(Proto::H2, "alice", Method::DELETE, &path, "")
        .await;
    assert_eq!(r.status, 200);
    refused_as_invalid(
        &bearer(&c, Proto::H1, &token, Method::GET, BATCHES).await,
        "revoked",
    );
    refused_as_invalid(
        &basic_token(&c, Proto::H2, &token, BATCHES).await,
        "revoked",
    );
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        401
    );
    assert_eq!(
        c.as_user("alice", Method::DELETE, &path, "").await.status,
        404
    );
    // Audit: created, used (by id), revoked; never the secret.
    let audit = gw
        .audit_until(|lines| {
            lines
                .iter()
                .any(|l| l["action"] == "token.revoke" && l["status"] == 200)
        })
        .await;
    let actions: Vec<&str> = audit.iter().filter_map(|l| l["action"].as_str()).collect();
    for action in ["token.create", "token.list", "token.revoke"] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    assert!(audit.iter().any(|l| l["token"] == id.as_str()));
    let text = std::fs::read_to_string(gw.dir.path().join("data/audit.log")).unwrap();
    assert!(!text.contains(&token[4..]), "the secret is never logged");
    let m = scrape(&gw).await;
    assert!(metric(&m, r#"livy_gateway_auth_total{outcome="token"}"#) >= 3.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn tokens_survive_a_restart_and_the_cli_issues_lists_and_revokes_them() {
    let gw = TestGateway::start(Options::default().with(tokens(10))).await;
    let c = gw.client();
    let r = create(&c, Proto::H1, "bob", r#"{"name": "nightly"}"#).await;
    let token = r.json()["token"].as_str().unwrap().to_owned();
    // The CLI works on the stopped gateway's store.
    let cli = |dir: &std::path::Path, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .arg("token")
            .args(args)
            .arg("--config")
            .arg(dir.join("gateway.toml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (gw, (issued, alice_id)) = gw
        .while_stopped(|dir| {
            let printed = cli(
                dir,
                &[
                    "create",
                    "--user",
                    "alice",
                    "--name",
                    "ci",
                    "--ttl-days",
                    "7",
                ],
            );
            let issued = printed.lines().next().unwrap().to_owned();
            assert!(issued.starts_with("lgw_"), "{printed}");
            let listed = cli(dir, &["list"]);
            assert_eq!(listed.lines().count(), 2, "{listed}");
            assert!(!listed.contains(&issued) && !listed.contains(&token));
            let alice = cli(dir, &["list", "--user", "alice"]);
            let line: serde_json::Value =
                serde_json::from_str(alice.lines().next().unwrap()).unwrap();
            assert_eq!(line["name"], "ci");
            (issued, line["id"].as_str().unwrap().to_owned())
        })
        .await;
    // Both tokens, the API's from before the restart and the CLI's, work.
    let c = gw.client();
    assert_eq!(
        bearer(&c, Proto::H2, &token, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    assert_eq!(
        bearer(&c, Proto::H1, &issued, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    let (gw, ()) = gw
        .while_stopped(|dir| {
            let out = cli(dir, &["revoke", &alice_id]);
            assert!(out.contains(&alice_id), "{out}");
        })
        .await;
    let c = gw.client();
    refused_as_invalid(
        &bearer(&c, Proto::H1, &issued, Method::GET, BATCHES).await,
        "revoked",
    );
    assert_eq!(
        bearer(&c, Proto::H2, &token, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_revocation_on_one_instance_holds_on_the_other_through_redis() {
    let redis = RedisServer::start().await;
    let livy = start_sim(|_| livy_gateway::sim::SimConfig::default()).await;
    let on_redis = |url: String, livy: String| {
        Options::backend(Backend::Urls(vec![livy]))
            .with(tokens(10))
            .with(move |c| {
                c.state.backend = StateBackend::Redis;
                c.state.redis_url = url;
                c.state.timeout = Duration::from_millis(2000);
                c.state.local_cache = Duration::from_millis(200);
            })
    };
    let a = TestGateway::start(on_redis(redis.url(), livy.clone())).await;
    let b = TestGateway::start(on_redis(redis.url(), livy)).await;
    let (ca, cb) = (a.client(), b.client());
    let r = create(&ca, Proto::H2, "alice", r#"{"name": "shared"}"#).await;
    let token = r.json()["token"].as_str().unwrap().to_owned();
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        bearer(&cb, Proto::H1, &token, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    let listed = cb.as_user("alice", Method::GET, TOKENS, "").await.json();
    assert_eq!(listed[0]["id"], id.as_str());
    // Revoked on b: refused on a within state.local_cache_ms.
    let path = format!("{TOKENS}/{id}");
    assert_eq!(
        cb.as_user("alice", Method::DELETE, &path, "").await.status,
        200
    );
    let mut status = 200;
    for _ in 0..50 {
        status = bearer(&ca, Proto::H2, &token, Method::GET, BATCHES)
            .await
            .status
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401);
    // An expired record is refused on both.
    let r = create(&ca, Proto::H1, "bob", r#"{"name": "short"}"#).await;
    let short = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        bearer(&cb, Proto::H1, &short, Method::GET, BATCHES)
            .await
            .status,
        200
    );
    let hash = hex(&sha2::Sha256::digest(short.as_bytes()));
    let key = format!("livy-gateway:token:{hash}");
    let stored = redis.cli(&["GET", &key]).await.unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&stored).unwrap();
    record["expires"] = json!(1);
    redis.cli(&["SET", &key, &record.to_string()]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in [&ca, &cb] {
        refused_as_invalid(
            &bearer(c, Proto::H2, &short, Method::GET, BATCHES).await,
            "expired",
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_user_taken_out_of_the_directory_loses_every_tokens_access() {
    let slapd = Slapd::start().await;
    let ldap = slapd.directory();
    let gw = TestGateway::start(Options::default().with(tokens(10)).with(move |c| {
        c.auth.htpasswd = None;
        c.auth.ldap = Some(ldap);
        c.auth.allowed_groups = vec!["livy-users".into()];
        c.auth.cache_ttl = secs(1);
        c.state.local_cache = Duration::from_millis(200);
    }))
    .await;
    let c = gw.client();
    let mut issued = Vec::new();
    for user in ["alice", "bob"] {
        let auth = basic(user, &format!("{user}-pw"));
        let r = c
            .send(
                Proto::H2,
                Method::POST,
                TOKENS,
                &[
                    ("authorization", auth.as_bytes()),
                    ("content-type", b"application/json"),
                ],
                r#"{"name": "job"}"#,
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let token = r.json()["token"].as_str().unwrap().to_owned();
        assert_eq!(
            bearer(&c, Proto::H1, &token, Method::GET, BATCHES)
                .await
                .status,
            200
        );
        issued.push(token);
    }
    // bob leaves the allowed group; alice leaves the directory.
    slapd
        .modify(
            "dn: cn=livy-users,ou=groups,dc=example,dc=org\nchangetype: modify\n\
             delete: member\nmember: uid=bob,ou=people,dc=example,dc=org\n",
        )
        .await;
    slapd
        .modify("dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: delete\n")
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for proto in [Proto::H1, Proto::H2] {
        refused_as_invalid(
            &bearer(&c, proto, &issued[0], Method::GET, BATCHES).await,
            "gone",
        );
        assert_eq!(
            bearer(&c, proto, &issued[1], Method::GET, BATCHES)
                .await
                .status,
            403
        );
    }
    gw.shutdown().await;
}
