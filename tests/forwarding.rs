//! What the gateway sends to Livy and what it returns: routing, header rules,
//! Location rewriting, error statuses for dead or slow upstreams, HTTP/2, streaming.

mod common;

use std::sync::Arc;

use common::*;
use http::{Method, StatusCode};
use livy_gateway::sim::SimConfig;

fn recorder(responder: Responder) -> Options {
    Options::backend(Backend::Recorder(responder))
}

#[tokio::test]
async fn both_prefixes_reach_livys_paths_with_the_query() {
    // As an administrator, so listings pass through unfiltered to the recorder.
    let gw = TestGateway::start(recorder(ok_responder())).await;
    let c = gw.client();
    for (path, upstream) in [
        ("/gateway/default/livy/v1/batches", "/batches?doAs=admin"),
        ("/gateway/default/livy/v1/batches/", "/batches/?doAs=admin"),
        (
            "/gateway/default/livy/batches/7/log?from=10&size=5",
            "/batches/7/log?from=10&size=5&doAs=admin",
        ),
        (
            "/gateway/default/livy/v1/sessions/3/statements/1",
            "/sessions/3/statements/1?doAs=admin",
        ),
        (
            "/gateway/default/livy/v1/batches/my%20job",
            "/batches/my%20job?doAs=admin",
        ),
    ] {
        let r = c.as_user("admin", Method::GET, path, "").await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(gw.recorded().last().unwrap().uri, upstream, "{path}");
    }
    let r = c
        .as_user(
            "admin",
            Method::DELETE,
            "/gateway/default/livy/v1/batches/1",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.recorded().last().unwrap().method, Method::DELETE);
}

#[tokio::test]
async fn rejected_paths_never_reach_livy() {
    let gw = TestGateway::start(recorder(ok_responder())).await;
    let c = gw.client();
    for path in [
        "/gateway/default/livy/v1/../v1/batches",
        "/gateway/default/livy/v1/./batches",
        "/gateway/default/livy/v1/batches/..",
        "/gateway/default/livy/v1/batches%2F1",
        "/gateway/default/livy/v1/%2e%2e/batches",
        "/gateway/default/livy/v1/batches%5c1",
        "/gateway/default/livy/v1/batches%00",
        "/gateway/default/livy/v1/batches%0d%0aX-Injected:%201",
        "/gateway/default/livy/v1//batches",
        "/gateway/default/livy/v1/batches%4",
    ] {
        for proto in [Proto::H1, Proto::H2] {
            let auth = basic("alice", PASSWORD);
            let r = c
                .send(
                    proto,
                    Method::GET,
                    path,
                    &[("authorization", auth.as_bytes())],
                    "",
                )
                .await;
            assert_eq!(r.status, 400, "{path} {proto:?}");
            assert_eq!(r.json()["error"], "bad_path", "{path}");
        }
    }
    for path in [
        "/",
        "/gateway/default/livy/v1/",
        "/gateway/other/livy/v1/batches",
        "/gateway/default/webhdfs/v1/tmp",
        "/livy/v1/batches",
    ] {
        let r = c.as_user("alice", Method::GET, path, "").await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"], "not_found");
    }
    for method in [Method::PUT, Method::PATCH, Method::OPTIONS, Method::HEAD] {
        let r = c
            .as_user(
                "alice",
                method.clone(),
                "/gateway/default/livy/v1/batches",
                "",
            )
            .await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, POST, DELETE"));
    }
    assert!(gw.recorded().is_empty(), "{:?}", gw.recorded());
}

#[tokio::test]
async fn livy_sees_no_credentials_and_gets_forwarding_headers() {
    let gw = TestGateway::start(recorder(ok_responder())).await;
    let c = gw.client();
    let id = c
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/batches", "")
        .await
        .session_cookie()
        .unwrap();
    let auth = basic("alice", PASSWORD);
    let cookie = format!("other=1; JSESSIONID={id}; theme=dark");
    let body = r#"{"file":"x.jar"}"#;
    let asserted = r#"{"file":"x.jar","proxyUser":"alice"}"#;
    let r = c
        .send(
            Proto::H1,
            Method::POST,
            "/gateway/default/livy/v1/batches?from=0",
            &[
                ("authorization", auth.as_bytes()),
                ("cookie", cookie.as_bytes()),
                ("content-type", b"application/json"),
                ("x-forwarded-for", b"203.0.113.9"),
                ("x-forwarded-proto", b"http"),
                ("forwarded", b"for=198.51.100.1"),
                ("connection", b"keep-alive, x-drop-me"),
                ("x-drop-me", b"1"),
                ("proxy-authorization", b"Basic Zm9vOmJhcg=="),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = gw.recorded().pop().unwrap();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri, "/batches?from=0&doAs=alice");
    assert_eq!(seen.body, asserted.as_bytes());
    assert_eq!(
        seen.headers["content-length"],
        asserted.len().to_string().as_str()
    );
    let h = &seen.headers;
    assert!(!h.contains_key("authorization"));
    assert!(!h.contains_key("proxy-authorization"));
    assert!(!h.contains_key("x-drop-me"));
    assert!(!h.contains_key("forwarded"));
    assert_eq!(h["cookie"], "other=1; theme=dark");
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(
        h["x-forwarded-host"],
        format!("localhost:{}", gw.addr.port()).as_str()
    );
    assert_eq!(h["x-forwarded-port"], gw.addr.port().to_string().as_str());
    assert_eq!(h["x-forwarded-context"], "/gateway/default/livy");
    assert_eq!(h["content-type"], "application/json");
    assert!(h["host"].to_str().unwrap().starts_with("127.0.0.1:"));

    // A session cookie alone leaves no Cookie header at all.
    c.with_cookie(&id, Method::GET, "/gateway/default/livy/v1/batches")
        .await;
    assert!(!gw.recorded().pop().unwrap().headers.contains_key("cookie"));
}

#[tokio::test]
async fn responses_are_filtered_and_locations_rewritten() {
    let responder: Responder = Arc::new(|_| {
        let mut response = json_reply(StatusCode::CREATED, r#"{"id":34,"state":"starting"}"#);
        let h = response.headers_mut();
        h.insert("location", "/batches/34".parse().unwrap());
        h.insert("set-cookie", "livy-session=abc; Path=/".parse().unwrap());
        h.insert("www-authenticate", "Negotiate".parse().unwrap());
        h.insert("x-livy-extra", "kept".parse().unwrap());
        Reply::Now(response)
    });
    let gw = TestGateway::start(recorder(responder)).await;
    let r = gw
        .client()
        .as_user(
            "alice",
            Method::POST,
            "/gateway/default/livy/v1/batches",
            r#"{"file":"a"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some("/gateway/default/livy/v1/batches/34")
    );
    assert!(r.header("www-authenticate").is_none());
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(
        cookies.len(),
        1,
        "only the gateway's own cookie: {cookies:?}"
    );
    assert!(cookies[0].to_str().unwrap().starts_with("JSESSIONID="));
    assert_eq!(r.header("x-livy-extra"), Some("kept"));
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.json()["id"], 34);
}

#[tokio::test]
async fn a_dead_upstream_is_502_without_naming_it() {
    let gw = TestGateway::start(Options::backend(Backend::Refusing)).await;
    let r = gw
        .client()
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/batches", "")
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream_unavailable");
    let text = String::from_utf8_lossy(&r.body);
    assert!(!text.contains("127.0.0.1"), "{text}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn a_silent_upstream_is_504() {
    let gw = TestGateway::start(
        Options::backend(Backend::Recorder(Arc::new(|_| Reply::Never)))
            .with(|c| c.livy.response_timeout = secs(1)),
    )
    .await;
    let r = gw
        .client()
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/batches", "")
        .await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "upstream_timeout");
    assert!(!String::from_utf8_lossy(&r.body).contains("127.0.0.1"));
}

#[tokio::test]
async fn a_second_upstream_takes_over_when_the_first_is_down() {
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let live = start_recorder(ok_responder(), recorded.clone()).await;
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![
        refusing_url(),
        format!("http://{live}"),
    ])))
    .await;
    let c = gw.client();
    for _ in 0..2 {
        let r = c
            .as_user("admin", Method::GET, "/gateway/default/livy/v1/batches", "")
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // Besides any health check (`GET /version`), both requests reached it.
    let listings = recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.uri.starts_with("/batches"))
        .count();
    assert_eq!(listings, 2);
}

#[tokio::test]
async fn http2_and_http11_clients_get_the_same_answers() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let auth = basic("alice", PASSWORD);
    let h = [
        ("authorization", auth.as_bytes()),
        ("content-type", &b"application/json"[..]),
    ];
    let one = c
        .send(
            Proto::H1,
            Method::POST,
            "/gateway/default/livy/v1/batches",
            &h,
            r#"{"file":"a.jar"}"#,
        )
        .await;
    let two = c
        .send(
            Proto::H2,
            Method::POST,
            "/gateway/default/livy/v1/batches",
            &h,
            r#"{"file":"b.jar"}"#,
        )
        .await;
    assert_eq!(one.version, http::Version::HTTP_11);
    assert_eq!(two.version, http::Version::HTTP_2);
    assert_eq!(one.status, 201);
    assert_eq!(two.status, 201);
    assert_eq!(
        two.header("location"),
        Some("/gateway/default/livy/v1/batches/1")
    );
}

#[tokio::test]
async fn a_large_log_streams_through() {
    let gw = TestGateway::start(Options::backend(Backend::Sim(SimConfig {
        speed: 1_000_000.0,
        log_lines: 200_000,
        ..SimConfig::default()
    })))
    .await;
    let c = gw.client();
    let r = c
        .as_user(
            "alice",
            Method::POST,
            "/gateway/default/livy/v1/batches",
            r#"{"file":"a.jar"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    let r = c
        .as_user(
            "alice",
            Method::GET,
            "/gateway/default/livy/v1/batches/0/log?from=0&size=-1",
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.len() > 10_000_000, "{} bytes", r.body.len());
    let v = r.json();
    assert_eq!(v["total"], 200_000);
    assert_eq!(v["log"].as_array().unwrap().len(), 200_000);
}

#[tokio::test]
async fn an_https_livy_is_reached_over_tls_trusting_the_configured_ca() {
    let gw = TestGateway::start(Options::backend(Backend::TlsRecorder(ok_responder()))).await;
    assert!(gw.upstream.starts_with("https://localhost:"));
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .as_user_over(
                proto,
                "admin",
                Method::GET,
                "/gateway/default/livy/v1/version",
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{proto:?}");
        assert_eq!(r.json()["ok"], true);
    }
    let seen = gw.recorded();
    assert_eq!(seen.len(), 2);
    let port = gw.upstream.rsplit(':').next().unwrap();
    assert_eq!(
        seen[0].headers["host"],
        format!("localhost:{port}").as_str()
    );
    assert_eq!(seen[1].uri, "/version?doAs=admin");
}

#[tokio::test]
async fn an_https_livy_with_an_untrusted_certificate_is_502() {
    let gw = TestGateway::start(
        Options::backend(Backend::TlsRecorder(ok_responder()))
            // Trust the system's roots instead of the test CA: the certificate
            // does not chain to them.
            .with(|c| c.livy.ca_file = None),
    )
    .await;
    let r = gw
        .client()
        .as_user("admin", Method::GET, "/gateway/default/livy/v1/version", "")
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream_unavailable");
    assert!(!r.json()["msg"].as_str().unwrap().contains("localhost"));
    assert!(gw.recorded().is_empty());
}

/// A redirection Livy (or a passive Livy) makes to a host the gateway does not
/// serve is not passed on: 502 `upstream_redirect`, naming no host.
#[tokio::test]
async fn a_redirection_outside_the_gateway_is_502_naming_no_host() {
    let responder: Responder = Arc::new(|seen: &Recorded| {
        let location = match seen.uri.split('?').next().unwrap_or_default() {
            "/batches/1" => "http://10.9.9.9:8998/batches/1?doAs=alice",
            "/batches/2" => "//evil.example/batches/2",
            "/batches/3" => "/\\evil.example/batches/3",
            _ => "/batches/4",
        };
        let mut response = json_reply(StatusCode::TEMPORARY_REDIRECT, "{}");
        response
            .headers_mut()
            .insert("location", location.parse().unwrap());
        Reply::Now(response)
    });
    let gw = TestGateway::start(recorder(responder)).await;
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        for id in 1..=3 {
            let path = format!("/gateway/default/livy/v1/batches/{id}");
            let r = c.as_user_over(proto, "admin", Method::GET, &path, "").await;
            assert_eq!(r.status, 502, "{proto:?} {id}");
            assert_eq!(r.json()["error"], "upstream_redirect");
            assert!(r.header("location").is_none());
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                !text.contains("10.9.9.9") && !text.contains("evil"),
                "{text}"
            );
        }
        let path = "/gateway/default/livy/v1/batches/4";
        let r = c.as_user_over(proto, "admin", Method::GET, path, "").await;
        assert_eq!(r.status, 307);
        assert_eq!(r.header("location"), Some(path));
    }
}
