//! Requests a browser sends on behalf of another page, over real TLS on both
//! protocols: a state-changing request whose `Origin` is not the gateway's own
//! (`null` from a sandboxed page included) or whose `Sec-Fetch-Site` says
//! `cross-site` is refused 403 `cross_origin` before any credential it carries
//! is looked at, and never reaches Livy (nor gets Livy's CSRF header); a body
//! Livy reads as JSON must be declared JSON, which a form cannot send without
//! asking first. Clients that send neither header (curl, pylivy, sparkmagic,
//! Airflow) are served as before.

mod common;

use common::*;
use http::{HeaderName, Method};

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";

/// A gateway in front of a recording Livy, with Livy's CSRF header configured.
async fn gateway() -> TestGateway {
    TestGateway::start(
        Options::backend(Backend::Recorder(ok_responder()))
            .with(|c| c.livy.csrf_header = Some(HeaderName::from_static("x-requested-by"))),
    )
    .await
}

/// The forged creation of the report: a `text/plain` form naming another user.
const FORGED: &str = r#"{"file":"local:/evil.jar","proxyUser":"victim","x":"="}"#;

#[tokio::test]
async fn a_forged_state_change_is_refused_whatever_it_carries() {
    let gw = gateway().await;
    let c = gw.client();
    let own = format!("https://localhost:{}", gw.addr.port());
    let basic = basic("admin", PASSWORD);
    let login = c.as_user("admin", Method::GET, BATCHES, "").await;
    let cookie = format!("JSESSIONID={}", login.session_cookie().unwrap());
    let recorded_before = gw.recorded().len();
    let other_port = format!("https://localhost:{}", gw.addr.port() + 1);
    let plain_http = format!("http://localhost:{}", gw.addr.port());
    let forgeries: [(Option<&str>, Option<&str>); 7] = [
        (Some("null"), Some("cross-site")),
        (Some("null"), None),
        (Some("https://evil.example"), None),
        (Some(&other_port), Some("same-site")),
        (Some(&plain_http), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
    ];
    let targets = [
        (Method::POST, BATCHES.to_owned()),
        (Method::POST, format!("{SESSIONS}/0/statements")),
        (Method::DELETE, format!("{BATCHES}/0")),
    ];
    for proto in [Proto::H1, Proto::H2] {
        for (origin, site) in forgeries {
            for (method, path) in &targets {
                for credential in [
                    Some(("authorization", basic.as_bytes())),
                    Some(("cookie", cookie.as_bytes())),
                    None,
                ] {
                    let mut headers: Vec<(&str, &[u8])> =
                        vec![("content-type", b"text/plain;charset=UTF-8")];
                    headers.extend(credential);
                    headers.extend(origin.map(|o| ("origin", o.as_bytes())));
                    headers.extend(site.map(|s| ("sec-fetch-site", s.as_bytes())));
                    let r = c.send(proto, method.clone(), path, &headers, FORGED).await;
                    assert_eq!(
                        r.status, 403,
                        "{proto:?} {method} {path} {origin:?} {site:?}"
                    );
                    assert_eq!(r.json()["error"], "cross_origin");
                }
            }
        }
    }
    assert_eq!(gw.recorded().len(), recorded_before, "nothing reached Livy");

    // The gateway's own pages (same origin, JSON) and the tools that send no
    // Origin are served; Livy gets the CSRF header only then.
    for proto in [Proto::H1, Proto::H2] {
        let same_origin: [(&str, &[u8]); 4] = [
            ("authorization", basic.as_bytes()),
            ("content-type", b"application/json"),
            ("origin", own.as_bytes()),
            ("sec-fetch-site", b"same-origin"),
        ];
        let r = c
            .send(
                proto,
                Method::POST,
                BATCHES,
                &same_origin,
                r#"{"file":"a"}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{proto:?}: {:?}", r.body);
        let r = c
            .as_user_over(proto, "admin", Method::POST, BATCHES, r#"{"file":"a"}"#)
            .await;
        assert_eq!(r.status, 200);
        // Reading is not refused for an Origin: it changes nothing.
        let read: [(&str, &[u8]); 3] = [
            ("authorization", basic.as_bytes()),
            ("origin", b"https://evil.example"),
            ("sec-fetch-site", b"cross-site"),
        ];
        let r = c.send(proto, Method::GET, BATCHES, &read, "").await;
        assert_eq!(r.status, 200);
    }
    let recorded = gw.recorded();
    let posts: Vec<_> = recorded
        .iter()
        .filter(|r| r.method == Method::POST)
        .collect();
    assert_eq!(posts.len(), 4);
    assert!(posts
        .iter()
        .all(|r| r.headers["x-requested-by"] == "livy-gateway"));
}

#[tokio::test]
async fn bodies_livy_reads_must_be_declared_json() {
    let gw = gateway().await;
    let c = gw.client();
    let auth = basic("admin", PASSWORD);
    let upload = format!("{SESSIONS}/0/upload-jar");
    let statements = format!("{SESSIONS}/0/statements");
    for proto in [Proto::H1, Proto::H2] {
        for content_type in [
            &b"text/plain"[..],
            b"text/plain;charset=UTF-8",
            b"multipart/form-data; boundary=x",
            b"application/octet-stream",
        ] {
            for path in [BATCHES, &statements] {
                let headers = [
                    ("authorization", auth.as_bytes()),
                    ("content-type", content_type),
                ];
                let r = c
                    .send(proto, Method::POST, path, &headers, r#"{"code":"1"}"#)
                    .await;
                assert_eq!(r.status, 415, "{proto:?} {path} {content_type:?}");
                assert_eq!(r.json()["error"], "unsupported_media_type");
            }
        }
        let text: [(&str, &[u8]); 2] = [
            ("authorization", auth.as_bytes()),
            ("content-type", b"text/plain"),
        ];
        let r = c.send(proto, Method::POST, &upload, &text, "x").await;
        assert_eq!(r.status, 415);
    }
    assert!(gw.recorded().is_empty());

    for proto in [Proto::H1, Proto::H2] {
        // Where Livy takes multipart, it passes; JSON, with a charset or none
        // declared at all, passes everywhere.
        let multipart: [(&str, &[u8]); 2] = [
            ("authorization", auth.as_bytes()),
            ("content-type", b"multipart/form-data; boundary=b"),
        ];
        let part = "--b\r\nContent-Disposition: form-data; name=\"jar\"; filename=\"a.jar\"\r\n\r\nPK\r\n--b--\r\n";
        let r = c.send(proto, Method::POST, &upload, &multipart, part).await;
        assert_eq!(r.status, 200, "{proto:?}");
        for content_type in [&b"application/json"[..], b"application/json; charset=UTF-8"] {
            let headers = [
                ("authorization", auth.as_bytes()),
                ("content-type", content_type),
            ];
            let r = c
                .send(
                    proto,
                    Method::POST,
                    &statements,
                    &headers,
                    r#"{"code":"1"}"#,
                )
                .await;
            assert_eq!(r.status, 200);
        }
        let none = [("authorization", auth.as_bytes())];
        let r = c
            .send(proto, Method::POST, &statements, &none, r#"{"code":"1"}"#)
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(gw.recorded().len(), 8);
}
