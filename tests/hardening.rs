//! What an attacker tries first, over real TLS on both protocols: encodings Livy's
//! Jetty could read differently from the gateway, path parameters, form bodies in
//! disguise, duplicate `Host`, huge headers, answers sent before a request body
//! was read (curl and a raw HTTP/2 client), lockout races, a flood of password
//! guesses, slots held by silent or zero-window clients, stalled bodies, sessions
//! flushed by refused requests, and what reaches clients from Livy.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BATCHES: &str = "/gateway/default/livy/v1/batches";

fn recording() -> Options {
    Options::backend(Backend::Recorder(ok_responder()))
}

fn assert_error(r: &Answer, status: u16, code: &str) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["error"], code, "{:?}", r.json());
}

#[tokio::test]
async fn percent_u_and_malformed_escapes_never_reach_livy() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let bob = basic("bob", PASSWORD);
    for proto in [Proto::H1, Proto::H2] {
        for target in [
            format!("{BATCHES}?%u0064oAs=alice"),
            format!("{BATCHES}?from=0&%U0064oAs=alice"),
            format!("{BATCHES}?doAs=%u0061lice"),
            format!("{BATCHES}?x=%zz"),
            format!("{BATCHES}?x=1%"),
            format!("{BATCHES}?%C0%A4oAs=alice"),
            format!("{BATCHES}/%u0031"),
        ] {
            for method in [Method::GET, Method::POST] {
                let r = c
                    .send(
                        proto,
                        method.clone(),
                        &target,
                        &[
                            ("authorization", bob.as_bytes()),
                            ("content-type", b"application/json"),
                        ],
                        r#"{"file":"x"}"#,
                    )
                    .await;
                assert_eq!(r.status, 400, "{proto:?} {method} {target}");
                assert!(r.json()["error"].as_str().unwrap().starts_with("bad_"));
            }
        }
    }
    assert!(gw.recorded().is_empty(), "{:?}", gw.recorded());
}

#[tokio::test]
async fn path_parameters_never_reach_livy_nor_an_owner_lookup() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        for target in [
            format!("{BATCHES}/1/..;/..;/sessions/1"),
            format!("{BATCHES}/1;jsessionid=x"),
            format!("{BATCHES}/1%3B/log"),
            "/gateway/default/livy/v1/sessions/1/..;/2/statements".to_string(),
        ] {
            let r = c
                .as_user_over(proto, "bob", Method::POST, &target, "{}")
                .await;
            assert_error(&r, 400, "bad_path");
        }
    }
    assert!(gw.recorded().is_empty(), "{:?}", gw.recorded());
}

#[tokio::test]
async fn a_form_type_in_disguise_is_refused() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let auth = basic("bob", PASSWORD);
    for proto in [Proto::H1, Proto::H2] {
        for content_type in [
            &b"application/x-www-form-urlencoded; x=\xe9"[..],
            b"application/json; charset=\xe9",
            b"Application/X-WWW-Form-Urlencoded ;charset=utf-8",
        ] {
            let r = c
                .send(
                    proto,
                    Method::POST,
                    &format!("{BATCHES}/1/log"),
                    &[
                        ("authorization", auth.as_bytes()),
                        ("content-type", content_type),
                    ],
                    "_method=DELETE&doAs=alice",
                )
                .await;
            assert_error(&r, 415, "unsupported_media_type");
        }
    }
    assert!(gw.recorded().is_empty());
}

#[tokio::test]
async fn two_hosts_are_refused_and_livy_hears_the_gateways_own_host() {
    let gw = TestGateway::start(recording()).await;
    let c = gw.client();
    let auth = basic("admin", PASSWORD);
    // Two Host lines (RFC 9112 §3.2): 400.
    let mut tls = c.tls(&[b"http/1.1"]).await;
    let request = format!(
        "GET {BATCHES} HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nAuthorization: {auth}\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"bad_header\""), "{answer}");
    assert!(gw.recorded().is_empty());

    // A client's Host is not passed on as X-Forwarded-Host: the name it reached the
    // gateway under (SNI) is.
    let expected = format!("localhost:{}", gw.addr.port());
    let mut tls = c.tls(&[b"http/1.1"]).await;
    let request = format!(
        "GET {BATCHES} HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let seen = gw.recorded();
    assert_eq!(seen[0].headers["x-forwarded-host"], expected.as_str());
    let r = c
        .as_user_over(Proto::H2, "admin", Method::GET, BATCHES, "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        gw.recorded()[1].headers["x-forwarded-host"],
        expected.as_str()
    );
}

#[tokio::test]
async fn a_configured_public_host_is_what_livy_hears() {
    let gw = TestGateway::start(
        recording().with(|c| c.server.public_host = Some("livy.example.org".parse().unwrap())),
    )
    .await;
    let r = gw
        .client()
        .as_user_over(Proto::H2, "admin", Method::GET, BATCHES, "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        gw.recorded()[0].headers["x-forwarded-host"],
        "livy.example.org"
    );
}

#[tokio::test]
async fn livys_server_header_does_not_reach_clients() {
    let gw = TestGateway::start(Options::backend(Backend::Recorder(Arc::new(|_| {
        let mut reply = json_reply(StatusCode::OK, r#"{"ok":true}"#);
        reply.headers_mut().insert(
            "server",
            http::HeaderValue::from_static("Jetty(9.4.57.v20241219)"),
        );
        reply
            .headers_mut()
            .insert("x-powered-by", http::HeaderValue::from_static("Scalatra"));
        Reply::Now(reply)
    }))))
    .await;
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .as_user_over(proto, "admin", Method::GET, BATCHES, "")
            .await;
        assert_eq!(r.status, 200);
        assert!(r.header("server").is_none(), "{proto:?}");
        assert!(r.header("x-powered-by").is_none(), "{proto:?}");
    }
}

#[tokio::test]
async fn a_70_kb_header_gets_the_json_431_on_both_protocols() {
    let gw = TestGateway::start(Options::default()).await;
    let big = "b".repeat(70 * 1024);
    let auth = basic("alice", PASSWORD);
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .send(
                proto,
                Method::GET,
                BATCHES,
                &[
                    ("authorization", auth.as_bytes()),
                    ("x-big", big.as_bytes()),
                ],
                "",
            )
            .await;
        assert_error(&r, 431, "headers_too_large");
    }
    // And with curl over HTTP/1.1. (Over HTTP/2, curl's nghttp2 refuses to send any
    // header block over 64 KiB, to every server: it never leaves the client.)
    let out = curl(&gw, &["--http1.1", "-H", &format!("x-big: {big}")]).await;
    assert!(out.ends_with("431"), "{out}");
    assert!(out.contains("headers_too_large"), "{out}");
}

/// Runs curl against the gateway's batches URL with `args`; returns its body
/// followed by the status code.
async fn curl(gw: &TestGateway, args: &[&str]) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(gw.ca_path())
        .args(["-w", "%{http_code}", "--max-time", "20"])
        .args(args)
        .arg(format!("https://localhost:{}{BATCHES}", gw.addr.port()))
        .output()
        .await
        .expect("curl runs (scripts/test.sh installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// A raw HTTP/2 connection to the gateway (the `h2` crate, no hyper on top), with
/// the client settings given.
async fn raw_h2(
    gw: &TestGateway,
    builder: h2::client::Builder,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tls = gw.client().tls(&[b"h2"]).await;
    let (send, connection) = builder.handshake(tls).await.unwrap();
    (send, tokio::spawn(connection))
}

/// Over a raw HTTP/2 stream: a POST with `headers` whose body (`body_len` bytes) is
/// sent in 16 KB pieces only once the answer's head is in (the order a client that
/// is slower to send than the gateway is to answer sees). Returns status, headers
/// and body of the answer, and whether the whole body could still be sent (the
/// stream was not reset under the sender).
async fn h2_post(
    send: &mut h2::client::SendRequest<Bytes>,
    gw: &TestGateway,
    headers: &[(&str, &str)],
    body_len: usize,
) -> (StatusCode, http::HeaderMap, Bytes, bool) {
    let mut request = Request::post(format!("https://localhost:{}{BATCHES}", gw.addr.port()))
        .header("content-type", "application/json")
        .header("content-length", body_len.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut send = send.clone().ready().await.unwrap();
    let (response, mut stream) = send.send_request(request.body(()).unwrap(), false).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .expect("answered in time")
        .expect("an answer, not a stream error");
    let (parts, mut body) = response.into_parts();
    let mut sent_whole = true;
    let mut left = body_len;
    while left > 0 {
        let n = left.min(16 * 1024);
        stream.reserve_capacity(n);
        let capacity = std::future::poll_fn(|cx| stream.poll_capacity(cx));
        let granted = tokio::time::timeout(Duration::from_secs(20), capacity).await;
        if !matches!(granted, Ok(Some(Ok(_))))
            || stream
                .send_data(Bytes::from(vec![b'a'; n]), n == left)
                .is_err()
        {
            sent_whole = false;
            break;
        }
        left -= n;
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("the answer's body arrives whole");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    (parts.status, parts.headers, Bytes::from(bytes), sent_whole)
}

#[tokio::test]
async fn answers_before_the_body_is_read_reach_http2_clients_whole() {
    let gw =
        TestGateway::start(Options::default().with(|c| c.livy.max_create_body_bytes = 2048)).await;
    let (mut send, _connection) = raw_h2(&gw, h2::client::Builder::new()).await;
    let auth = basic("alice", PASSWORD);
    for round in 0..20 {
        for body_len in [12, 64 * 1024] {
            // Unauthenticated: 401 with its challenge and JSON body.
            let (status, headers, body, whole) = h2_post(&mut send, &gw, &[], body_len).await;
            assert_eq!(status, 401, "round {round}, {body_len} B");
            assert!(whole, "the stream was reset under the sender");
            assert!(headers.contains_key("www-authenticate"));
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"], "unauthorized");
        }
        // Too large for a create body: 413.
        let (status, _, body, whole) =
            h2_post(&mut send, &gw, &[("authorization", &auth)], 64 * 1024).await;
        assert_eq!(status, 413, "round {round}");
        assert!(whole, "the stream was reset under the sender");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "payload_too_large");
    }
}

#[tokio::test]
async fn curl_reads_early_answers_on_both_protocols() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.livy.max_create_body_bytes = 2048)
            .with(|c| c.rate_limit.per_ip_rps = 0.001)
            .with(|c| c.rate_limit.per_ip_burst = 60),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.json");
    let large = dir.path().join("large.json");
    std::fs::write(&small, "{\"file\":\"x\"}").unwrap();
    std::fs::write(&large, vec![b'a'; 64 * 1024]).unwrap();
    let auth = format!("alice:{PASSWORD}");
    for version in ["--http2", "--http1.1"] {
        for _ in 0..10 {
            for file in [&small, &large] {
                let data = format!("@{}", file.display());
                let out = curl(&gw, &[version, "-X", "POST", "--data-binary", &data]).await;
                assert!(out.ends_with("401"), "{version}: {out}");
                assert!(out.contains("\"unauthorized\""), "{version}: {out}");
            }
            let data = format!("@{}", large.display());
            let json = "content-type: application/json";
            let out = curl(
                &gw,
                &[version, "-u", &auth, "-H", json, "--data-binary", &data],
            )
            .await;
            assert!(out.ends_with("413"), "{version}: {out}");
        }
    }
    // The address's burst is spent: 429 with its JSON, read whole as well.
    let mut limited = 0;
    for version in ["--http2", "--http1.1"] {
        for _ in 0..10 {
            let data = format!("@{}", large.display());
            let out = curl(&gw, &[version, "-X", "POST", "--data-binary", &data]).await;
            assert!(out.ends_with("429") || out.ends_with("401"), "{out}");
            if out.ends_with("429") {
                assert!(out.contains("\"rate_limited\""), "{out}");
                limited += 1;
            }
        }
    }
    assert!(limited > 0);
}

/// An HTTP/1.1 connection to the gateway from `client`, handshakes done.
async fn h1_connection(
    client: &Client,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>> {
    let tls = client.tls(&[b"http/1.1"]).await;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends `GET batches` with `authorization` on each connection at once; the
/// statuses, in order.
async fn all_at_once(
    connections: Vec<hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>>,
    authorization: impl Fn(usize) -> String,
) -> Vec<(u16, serde_json::Value, Option<String>)> {
    use http_body_util::BodyExt;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(n, mut sender)| {
            let request = Request::get(BATCHES)
                .header("host", "localhost")
                .header("authorization", authorization(n))
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap();
            tokio::spawn(async move {
                let response = sender.send_request(request).await.unwrap();
                let status = response.status().as_u16();
                let retry = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice(&body).unwrap(), retry)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn count(answers: &[(u16, serde_json::Value, Option<String>)], status: u16) -> usize {
    answers.iter().filter(|(s, _, _)| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_get_no_more_checks_than_the_limits() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.login.max_failures_per_pair = 5)
            .with(|c| c.login.max_failures_per_address = 20)
            .with(|c| c.login.max_failures_per_user = 12),
    )
    .await;
    // 40 guesses for alice from one address, all in flight together.
    let mut connections = Vec::new();
    for _ in 0..40 {
        connections.push(h1_connection(&gw.client()).await);
    }
    let answers = all_at_once(connections, |n| basic("alice", &format!("guess{n}"))).await;
    assert_eq!(count(&answers, 401), 5, "{answers:?}");
    assert_eq!(count(&answers, 429), 35);
    assert!(answers
        .iter()
        .filter(|(s, _, _)| *s == 429)
        .all(|(_, json, retry)| json["error"] == "locked_out" && retry.is_some()));

    // Guesses for bob from 40 addresses at once: the user's ceiling holds.
    let mut connections = Vec::new();
    for n in 0..40 {
        let client = gw.client().connecting_from(&format!("127.0.3.{}", n + 1));
        connections.push(h1_connection(&client).await);
    }
    let answers = all_at_once(connections, |n| basic("bob", &format!("guess{n}"))).await;
    assert_eq!(count(&answers, 401), 12, "{answers:?}");
    assert_eq!(count(&answers, 429), 28);
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="bad_credentials"}"#),
        17.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_guesses_is_refused_at_once_and_real_users_go_first() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.auth.cache_ttl = secs(0))
            .with(|c| c.auth.max_pending_verifications = 2)
            .with(|c| c.login.max_failures_per_address = 1000)
            .with(|c| c.login.max_failures_per_user = 1000),
    )
    .await;
    // A user whose hash is slow (bcrypt cost 10): unknown users then cost as much.
    let users = std::fs::read_to_string(gw.dir.path().join("users.htpasswd")).unwrap();
    let slow = format!("slow:{}\n", bcrypt::hash("x", 10).unwrap());
    std::fs::write(gw.dir.path().join("users.htpasswd"), users + &slow).unwrap();
    gw.runtime.reload().await.unwrap();
    // alice has logged in from her machine before: she is familiar there.
    let alice = gw.client().connecting_from("127.0.4.1");
    assert_eq!(
        alice
            .as_user("alice", Method::GET, BATCHES, "")
            .await
            .status,
        200
    );

    let mut flood = Vec::new();
    for n in 0..30 {
        let client = gw.client().connecting_from(&format!("127.0.5.{}", n + 1));
        flood.push(h1_connection(&client).await);
    }
    let her_connection = h1_connection(&alice).await;
    let guesses = tokio::spawn(all_at_once(flood, |n| {
        basic(&format!("nobody{n}"), "guess")
    }));
    // Her login, sent while the guesses are queued or refused.
    let hers = all_at_once(vec![her_connection], |_| basic("alice", PASSWORD)).await;
    assert_eq!(hers[0].0, 200, "{hers:?}");
    let answers = guesses.await.unwrap();
    assert_eq!(
        count(&answers, 401) + count(&answers, 503),
        30,
        "{answers:?}"
    );
    let busy: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(busy.len() >= 20, "{answers:?}");
    assert!(busy
        .iter()
        .all(|(_, json, retry)| json["error"] == "logins_busy" && retry.as_deref() == Some("1")));
    // Refused checks were never made, so they count as no failed login.
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="bad_credentials"}"#),
        count(&answers, 401) as f64
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="busy"}"#),
        busy.len() as f64
    );
}

/// Waits (bounded) for a spawned connection driver to end.
async fn ends_within(
    connection: tokio::task::JoinHandle<Result<(), h2::Error>>,
    limit: Duration,
) -> bool {
    tokio::time::timeout(limit, connection).await.is_ok()
}

#[tokio::test]
async fn a_zero_window_client_cannot_hold_its_connection() {
    let gw = TestGateway::start(Options::default().with(|c| c.server.idle_timeout = secs(1))).await;
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(0);
    let (send, connection) = raw_h2(&gw, builder).await;
    let mut send = send.ready().await.unwrap();
    let request = Request::get(format!("https://localhost:{}{BATCHES}", gw.addr.port()))
        .body(())
        .unwrap();
    let (response, _) = send.send_request(request, true).unwrap();
    // The answer's head arrives (headers are not flow-controlled); its body never
    // can. The gateway must not count that as work in progress.
    let response = response.await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        ends_within(connection, Duration::from_secs(15)).await,
        "the connection was kept open"
    );
    // Others are served meanwhile and after.
    let r = gw.client().as_user("alice", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn one_address_gets_only_its_share_of_connections() {
    let gw =
        TestGateway::start(Options::default().with(|c| c.server.max_connections_per_address = 3))
            .await;
    let greedy = gw.client().connecting_from("127.0.6.1");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(greedy.tls(&[b"h2"]).await);
    }
    assert!(
        greedy.try_tls(&[b"h2"]).await.is_err(),
        "a fourth connection from the same address was served"
    );
    let r = gw
        .client()
        .connecting_from("127.0.6.2")
        .as_user("alice", Method::GET, BATCHES, "")
        .await;
    assert_eq!(r.status, 200);
    let m = scrape(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_refused_connections_total{reason="per_address"}"#
        ),
        1.0
    );
    // A connection given back makes room again.
    drop(held.pop());
    let mut admitted = false;
    for _ in 0..100 {
        if let Ok(tls) = greedy.try_tls(&[b"http/1.1"]).await {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = Request::get(BATCHES)
                .header("host", "localhost")
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap();
            if let Ok(response) = sender.send_request(request).await {
                admitted = response.status() == 401;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
}

#[tokio::test]
async fn a_connection_that_never_asks_is_closed_after_the_header_timeout() {
    let gw =
        TestGateway::start(Options::default().with(|c| c.server.header_read_timeout = secs(1)))
            .await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let mut tls = gw.client().tls(&[alpn]).await;
        assert!(
            closed_within(&mut tls, Duration::from_secs(10)).await,
            "{}: still open",
            String::from_utf8_lossy(alpn)
        );
    }
}

#[tokio::test]
async fn a_stalled_request_body_is_cut_with_408() {
    let gw = TestGateway::start(
        Options::backend(fast_sim()).with(|c| c.server.body_idle_timeout = secs(1)),
    )
    .await;
    let auth = basic("alice", PASSWORD);
    // HTTP/1.1: 100 bytes declared, 8 sent; a create body and a streamed one.
    let session = gw
        .client()
        .as_user(
            "alice",
            Method::POST,
            "/gateway/default/livy/v1/sessions",
            r#"{"kind":"pyspark"}"#,
        )
        .await
        .json()["id"]
        .as_u64()
        .unwrap();
    for path in [
        BATCHES.to_string(),
        format!("/gateway/default/livy/v1/sessions/{session}/statements"),
    ] {
        let mut tls = gw.client().tls(&[b"http/1.1"]).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"code\":"
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(15), tls.read(&mut answer))
            .await
            .expect("answered in time")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"request_timeout\""), "{path}: {answer}");
    }
    // HTTP/2: the same, on a raw stream.
    let (send, _connection) = raw_h2(&gw, h2::client::Builder::new()).await;
    let mut send = send.ready().await.unwrap();
    let request = Request::post(format!("https://localhost:{}{BATCHES}", gw.addr.port()))
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .header("content-length", "100")
        .body(())
        .unwrap();
    let (response, mut stream) = send.send_request(request, false).unwrap();
    stream
        .send_data(Bytes::from_static(b"{\"file\":"), false)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(15), response)
        .await
        .expect("answered in time")
        .unwrap();
    assert_eq!(response.status(), 408);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["error"], "request_timeout");
}

#[tokio::test]
async fn refused_requests_start_no_session_and_busy_sessions_outlive_idle_ones() {
    let gw = TestGateway::start(
        Options::default()
            .with(|c| c.session.max_sessions = 2)
            .with(|c| c.rate_limit.per_user_rps = 0.001)
            .with(|c| c.rate_limit.per_user_burst = 2)
            .with(|c| override_rate(c, "bob", 1000.0, 100))
            .with(|c| override_rate(c, "admin", 1000.0, 100)),
    )
    .await;
    let c = gw.client();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = c.as_user("alice", Method::GET, BATCHES, "").await;
        assert_eq!(r.session_cookie().is_some(), r.status == 200);
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429]);
    let m = scrape(&gw).await;
    assert_eq!(metric(&m, "livy_gateway_live_sessions"), 2.0);

    // Least recently used goes first: bob keeps using his session while admin and
    // others log in.
    let bob = c
        .as_user("bob", Method::GET, BATCHES, "")
        .await
        .session_cookie()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(c.with_cookie(&bob, Method::GET, BATCHES).await.status, 200);
        assert_eq!(
            c.as_user("admin", Method::GET, BATCHES, "").await.status,
            200
        );
    }
    assert_eq!(c.with_cookie(&bob, Method::GET, BATCHES).await.status, 200);
}

#[tokio::test]
async fn a_stale_or_forged_cookie_is_told_apart_from_no_credentials() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let made_up = "A".repeat(43);
    for cookie in [made_up.as_str(), "forged"] {
        let r = c.with_cookie(cookie, Method::GET, BATCHES).await;
        assert_error(&r, 401, "unauthorized");
    }
    c.send(Proto::H2, Method::GET, BATCHES, &[], "").await;
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="unknown_session"}"#),
        2.0
    );
    assert_eq!(
        metric(&m, r#"livy_gateway_auth_total{outcome="missing"}"#),
        1.0
    );
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = gw.audit_lines();
        if lines.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "unauthorized: unknown_session",
            "unauthorized: unknown_session",
            "unauthorized: missing"
        ]
    );
}

#[tokio::test]
async fn long_paths_are_clipped_in_the_audit_log() {
    let gw = TestGateway::start(Options::default()).await;
    let long = format!("{BATCHES}/{}", "x".repeat(60_000));
    for proto in [Proto::H1, Proto::H2] {
        let r = gw.client().send(proto, Method::GET, &long, &[], "").await;
        assert_eq!(r.status, 401);
    }
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = gw.audit_lines();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines.len(), 2);
    for line in lines {
        let path = line["path"].as_str().unwrap();
        assert!(
            path.len() <= livy_gateway::logging::MAX_LOGGED_TEXT + 3,
            "{}",
            path.len()
        );
        assert!(path.starts_with(BATCHES) && path.ends_with('…'));
    }
}
