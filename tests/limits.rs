//! Abuse protection over real TLS: rate limits per user, per address and on
//! creations, failed-login lockouts, slow and idle clients, header and body size
//! limits, the connection cap, and a bounded flood that must not starve others.
//! Exact timing (refill, backoff growth) is covered with paused time in
//! `ratelimit.rs` and `auth/throttle.rs`.

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BATCHES: &str = "/gateway/default/livy/v1/batches";

fn assert_429(r: &Answer, code: &str) {
    assert_eq!(r.status, 429, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"], code);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn per_user_limit_answers_429_and_spares_other_users() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.rate_limit.per_user_rps = 0.001)
            .with(|c| c.rate_limit.per_user_burst = 3)
            .with(|c| override_rate(c, "admin", 1000.0, 50)),
    )
    .await;
    let c = gw.client();
    for _ in 0..3 {
        assert_eq!(
            c.as_user("alice", Method::GET, BATCHES, "").await.status,
            200
        );
    }
    let r = c.as_user("alice", Method::GET, BATCHES, "").await;
    assert_429(&r, "rate_limited");
    assert!(
        r.header("retry-after").unwrap().parse::<u64>().unwrap() > 100,
        "one token per 1000 s"
    );
    assert_eq!(
        c.as_user("bob", Method::GET, BATCHES, "").await.status,
        200,
        "bob is unaffected"
    );
    for _ in 0..20 {
        assert_eq!(
            c.as_user("admin", Method::GET, BATCHES, "").await.status,
            200,
            "override"
        );
    }
}

#[tokio::test]
async fn per_address_limit_applies_before_authentication() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.rate_limit.per_ip_rps = 0.001)
            .with(|c| c.rate_limit.per_ip_burst = 2)
            .with(|c| c.rate_limit.per_user_rps = 0.0),
    )
    .await;
    let attacker = gw.client().connecting_from("127.0.0.2");
    for _ in 0..2 {
        assert_eq!(
            attacker
                .send(Proto::H1, Method::GET, BATCHES, &[], "")
                .await
                .status,
            401
        );
    }
    assert_429(
        &attacker
            .send(Proto::H1, Method::GET, BATCHES, &[], "")
            .await,
        "rate_limited",
    );
    // Another address is served.
    let r = gw.client().as_user("alice", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn creating_batches_and_sessions_has_its_own_limit() {
    let gw = TestGateway::start(
        Options::backend(fast_sim())
            .with(|c| c.rate_limit.per_user_rps = 1000.0)
            .with(|c| c.rate_limit.per_user_burst = 1000)
            .with(|c| c.rate_limit.create_per_user_per_min = 2),
    )
    .await;
    let c = gw.client();
    assert_eq!(
        c.as_user("alice", Method::POST, BATCHES, r#"{"file":"a"}"#)
            .await
            .status,
        201
    );
    assert_eq!(
        c.as_user(
            "alice",
            Method::POST,
            "/gateway/default/livy/v1/sessions",
            r#"{"kind":"spark"}"#
        )
        .await
        .status,
        201
    );
    let r = c
        .as_user("alice", Method::POST, BATCHES, r#"{"file":"a"}"#)
        .await;
    assert_429(&r, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        200,
        "reads still work"
    );
    assert_eq!(
        c.as_user("bob", Method::POST, BATCHES, r#"{"file":"b"}"#)
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn failed_logins_lock_out_and_recover() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.login.max_failures_per_pair = 3)
            .with(|c| c.login.lockout = secs(1)),
    )
    .await;
    let c = gw.client();
    let cookie = c
        .as_user("alice", Method::GET, BATCHES, "")
        .await
        .session_cookie()
        .unwrap();
    let wrong = basic("alice", "guess");
    for _ in 0..3 {
        let r = c
            .send(
                Proto::H1,
                Method::GET,
                BATCHES,
                &[("authorization", wrong.as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Locked: even the right password is refused without being checked, and so is
    // the remembered success of the first login (else a guess that matched would
    // be confirmed, and guessing could go on while the user's login is cached).
    let right = basic("alice", PASSWORD);
    for proto in [Proto::H1, Proto::H2] {
        let r = c
            .send(
                proto,
                Method::GET,
                BATCHES,
                &[("authorization", right.as_bytes())],
                "",
            )
            .await;
        assert_429(&r, "locked_out");
    }
    let fresh = gw.client();
    let r = fresh
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[("authorization", basic("alice", "another-guess").as_bytes())],
            "",
        )
        .await;
    assert_429(&r, "locked_out");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        c.with_cookie(&cookie, Method::GET, BATCHES).await.status,
        200,
        "sessions unaffected"
    );
    assert_eq!(
        c.as_user("bob", Method::GET, BATCHES, "").await.status,
        200,
        "bob unaffected"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[("authorization", basic("alice", "late-guess").as_bytes())],
            "",
        )
        .await;
    assert_eq!(
        r.status, 401,
        "the lockout is over: the password is checked again"
    );
}

#[tokio::test]
async fn a_locked_out_unknown_password_is_not_checked() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.login.max_failures_per_pair = 2)
            .with(|c| c.login.lockout = secs(600)),
    )
    .await;
    let c = gw.client();
    for _ in 0..2 {
        let r = c
            .send(
                Proto::H1,
                Method::GET,
                BATCHES,
                &[("authorization", basic("carol", "x").as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Unknown users are throttled like known ones (no user enumeration).
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[("authorization", basic("carol", "x").as_bytes())],
            "",
        )
        .await;
    assert_429(&r, "locked_out");
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_while_others_are_served() {
    let gw =
        TestGateway::start(Options::default().with(|c| c.server.header_read_timeout = secs(1)))
            .await;
    let c = gw.client();
    let mut slow = c.tls(&[b"http/1.1"]).await;
    slow.write_all(b"GET /gateway/default/livy/v1/batches HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if slow
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
            let mut probe = [0u8; 1];
            if let Ok(r) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                if matches!(r, Ok(0) | Err(_)) {
                    return true;
                }
            }
        }
        false
    };
    let served = c.as_user("alice", Method::GET, BATCHES, "");
    let (closed, served) = tokio::join!(trickle, served);
    assert_eq!(served.status, 200);
    assert!(closed, "the slow connection was still open after 10 s");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let gw = TestGateway::start(Options::default().with(|c| c.server.idle_timeout = secs(1))).await;
    let c = gw.client();
    let mut tls = c.tls(&[b"http/1.1"]).await;
    let auth = basic("alice", PASSWORD);
    tls.write_all(
        format!("GET {BATCHES} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut tls, Duration::from_secs(10)).await,
        "idle connection left open"
    );
}

#[tokio::test]
async fn oversized_and_overlong_headers_are_431() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let auth = basic("alice", PASSWORD);
    let big = "x".repeat(20_000);
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            BATCHES,
            &[
                ("authorization", auth.as_bytes()),
                ("x-big", big.as_bytes()),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["error"], "headers_too_large");
    // Past `max_headers` (64) the gateway answers; past hyper's own 100 on HTTP/1.1,
    // hyper does, with the same status.
    for count in [80, 120] {
        let names: Vec<String> = (0..count).map(|i| format!("x-h{i}")).collect();
        let mut headers: Vec<(&str, &[u8])> =
            names.iter().map(|n| (n.as_str(), &b"1"[..])).collect();
        headers.push(("authorization", auth.as_bytes()));
        for proto in [Proto::H1, Proto::H2] {
            let r = c.send(proto, Method::GET, BATCHES, &headers, "").await;
            assert_eq!(r.status, 431, "{count} headers, {proto:?}");
            if count == 80 || proto == Proto::H2 {
                assert_eq!(r.json()["error"], "headers_too_large", "{count}, {proto:?}");
            }
        }
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_whether_declared_or_streamed() {
    let gw = TestGateway::start(
        Options::backend(fast_sim())
            .with(|c| c.livy.max_body_bytes = 1024)
            .with(|c| c.livy.max_create_body_bytes = 512),
    )
    .await;
    let c = gw.client();
    let s = c
        .as_user(
            "alice",
            Method::POST,
            "/gateway/default/livy/v1/sessions",
            r#"{"kind":"spark"}"#,
        )
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    let statements = format!("/gateway/default/livy/v1/sessions/{s}/statements");
    let code = format!(r#"{{"code":"{}"}}"#, "1".repeat(2000));
    let r = c.as_user("alice", Method::POST, &statements, &code).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "payload_too_large");
    let r = c
        .as_user("alice", Method::POST, &statements, r#"{"code":"1+1"}"#)
        .await;
    assert_eq!(r.status, 201);
    let big_create = format!(r#"{{"file":"{}"}}"#, "a".repeat(600));
    assert_eq!(
        c.as_user("alice", Method::POST, BATCHES, &big_create)
            .await
            .status,
        413
    );

    // Chunked, with no declared length: cut off while streaming, still a 413.
    let mut tls = c.tls(&[b"http/1.1"]).await;
    let auth = basic("alice", PASSWORD);
    let chunk = "7".repeat(1500);
    let request = format!(
        "POST {statements} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_at_once() {
    let gw = TestGateway::start(Options::default().with(|c| c.server.max_connections = 2)).await;
    let c = gw.client();
    let first = c.tls(&[b"http/1.1"]).await;
    let _second = c.tls(&[b"http/1.1"]).await;
    assert!(
        c.try_tls(&[b"http/1.1"]).await.is_err(),
        "a third connection was accepted"
    );
    drop(first);
    let mut admitted = false;
    for _ in 0..100 {
        if c.try_tls(&[b"http/1.1"]).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "a slot freed by a closed connection is reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_flood_does_not_starve_other_users_or_addresses() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.rate_limit.per_ip_rps = 0.01)
            .with(|c| c.rate_limit.per_ip_burst = 10)
            .with(|c| c.rate_limit.per_user_rps = 0.01)
            .with(|c| c.rate_limit.per_user_burst = 10)
            .with(|c| override_rate(c, "bob", 1000.0, 1000)),
    )
    .await;
    // alice floods from 127.0.0.3, an anonymous client from 127.0.0.2.
    let alice = gw.client().connecting_from("127.0.0.3");
    let anonymous = gw.client().connecting_from("127.0.0.2");
    let bob = gw.client().connecting_from("127.0.0.4");
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..150 {
        let (a, n) = (alice.clone(), anonymous.clone());
        flood.spawn(async move {
            if i % 2 == 0 {
                a.as_user("alice", Method::GET, BATCHES, "")
                    .await
                    .status
                    .as_u16()
            } else {
                n.send(Proto::H1, Method::GET, BATCHES, &[], "")
                    .await
                    .status
                    .as_u16()
            }
        });
    }
    let mut bob_ok = 0;
    for _ in 0..8 {
        if bob.as_user("bob", Method::GET, BATCHES, "").await.status == 200 {
            bob_ok += 1;
        }
    }
    let mut limited = 0;
    while let Some(status) = flood.join_next().await {
        if status.unwrap() == 429 {
            limited += 1;
        }
    }
    assert_eq!(bob_ok, 8, "bob was starved");
    assert!(
        limited >= 125,
        "the flood was not limited ({limited} of 150 refused)"
    );
}
