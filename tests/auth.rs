//! Authentication over real TLS: Basic credentials, the session cookie, and every
//! way a login can be malformed or wrong.

mod common;

use common::*;
use http::Method;

const LIST: &str = "/gateway/default/livy/v1/batches";

fn assert_unauthorized(r: &Answer) {
    assert_eq!(r.status, 401, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("www-authenticate"),
        Some("BASIC realm=\"application\"")
    );
    assert_eq!(r.json()["error"], "unauthorized");
    assert!(r.header("set-cookie").is_none());
}

#[tokio::test]
async fn login_issues_a_cookie_that_then_stands_in_for_credentials() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let r = c.as_user("alice", Method::GET, LIST, "").await;
    assert_eq!(r.status, 200);
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    let id = r.session_cookie().unwrap();
    assert_eq!(id.len(), 43, "256-bit URL-safe id: {id}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    for attribute in [
        "Path=/gateway/default",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(!set_cookie.contains("Max-Age"), "a browser-session cookie");

    // The cookie alone is enough, and no new cookie is issued.
    let r = c.with_cookie(&id, Method::GET, LIST).await;
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_none());

    // Credentials plus the same user's cookie: no new session either.
    let auth = basic("alice", PASSWORD);
    let cookie = format!("JSESSIONID={id}");
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            LIST,
            &[
                ("authorization", auth.as_bytes()),
                ("cookie", cookie.as_bytes()),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").is_none());

    // Every fresh login gets a different id.
    let again = c
        .as_user("alice", Method::GET, LIST, "")
        .await
        .session_cookie()
        .unwrap();
    assert_ne!(again, id);
}

#[tokio::test]
async fn authorization_wins_over_a_cookie() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let alice = c
        .as_user("alice", Method::GET, LIST, "")
        .await
        .session_cookie()
        .unwrap();
    let cookie = format!("JSESSIONID={alice}");

    // Valid credentials for bob with alice's cookie: bob, with a new session.
    let auth = basic("bob", PASSWORD);
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            LIST,
            &[
                ("authorization", auth.as_bytes()),
                ("cookie", cookie.as_bytes()),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let bob = r.session_cookie().expect("a new session for bob");
    assert_ne!(bob, alice);

    // Wrong credentials with a valid cookie: refused, the cookie does not rescue them.
    let wrong = basic("alice", "wrong");
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            LIST,
            &[
                ("authorization", wrong.as_bytes()),
                ("cookie", cookie.as_bytes()),
            ],
            "",
        )
        .await;
    assert_unauthorized(&r);
}

#[tokio::test]
async fn missing_wrong_and_unknown_credentials_are_401() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    assert_unauthorized(&c.send(Proto::H1, Method::GET, LIST, &[], "").await);
    assert_unauthorized(&c.send(Proto::H2, Method::GET, LIST, &[], "").await);
    let wrong = basic("alice", "not-the-password");
    assert_unauthorized(
        &c.send(
            Proto::H1,
            Method::GET,
            LIST,
            &[("authorization", wrong.as_bytes())],
            "",
        )
        .await,
    );
    let unknown = basic("mallory", PASSWORD);
    assert_unauthorized(
        &c.send(
            Proto::H1,
            Method::GET,
            LIST,
            &[("authorization", unknown.as_bytes())],
            "",
        )
        .await,
    );
    // Unauthenticated requests to any path are refused before routing.
    assert_unauthorized(&c.send(Proto::H1, Method::GET, "/nowhere", &[], "").await);
}

#[tokio::test]
async fn every_malformed_authorization_is_401() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let oversized = format!("Basic {}", "QUFB".repeat(2000));
    let cases: Vec<Vec<u8>> = vec![
        b"Basic".to_vec(),
        b"Basic !!!!".to_vec(),
        format!("Basic {}", b64(b"no-colon")).into_bytes(),
        format!("Basic {}", b64(b":password")).into_bytes(),
        format!("Basic {}", b64(b"\xff\xfe:password")).into_bytes(),
        format!("Bearer {}", b64(b"alice:s3cret-pw")).into_bytes(),
        format!("Negotiate {}", b64(b"alice:s3cret-pw")).into_bytes(),
        oversized.into_bytes(),
        b"Basic \xc3\xa9".to_vec(),
    ];
    for value in cases {
        let r = c
            .send(
                Proto::H1,
                Method::GET,
                LIST,
                &[("authorization", &value)],
                "",
            )
            .await;
        assert_unauthorized(&r);
    }
    // The scheme name is case-insensitive.
    let lower = format!("basic {}", b64(format!("alice:{PASSWORD}").as_bytes()));
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            LIST,
            &[("authorization", lower.as_bytes())],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn forged_and_unknown_cookies_are_not_adopted() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    // Shaped like ours but never issued.
    let forged = livy_gateway::session::new_session_id();
    assert_unauthorized(&c.with_cookie(&forged, Method::GET, LIST).await);
    assert_unauthorized(&c.with_cookie("short", Method::GET, LIST).await);
    // A login carrying a client-chosen id gets a fresh one, never the chosen one.
    let auth = basic("alice", PASSWORD);
    let cookie = format!("JSESSIONID={forged}");
    let r = c
        .send(
            Proto::H1,
            Method::GET,
            LIST,
            &[
                ("authorization", auth.as_bytes()),
                ("cookie", cookie.as_bytes()),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.session_cookie().unwrap(), forged);
    assert_unauthorized(&c.with_cookie(&forged, Method::GET, LIST).await);
}

#[tokio::test]
async fn an_idle_session_expires() {
    // Exact idle/absolute timing is covered with paused time in session.rs; here the
    // whole stack is checked with a 1 s idle timeout and a wait well past it.
    let gw =
        TestGateway::start(Options::default().with(|c| c.session.idle_timeout = secs(1))).await;
    let c = gw.client();
    let id = c
        .as_user("alice", Method::GET, LIST, "")
        .await
        .session_cookie()
        .unwrap();
    assert_eq!(c.with_cookie(&id, Method::GET, LIST).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_unauthorized(&c.with_cookie(&id, Method::GET, LIST).await);
}

#[tokio::test]
async fn sessions_work_over_http2_too() {
    let gw = TestGateway::start(Options::default()).await;
    let c = gw.client();
    let auth = basic("alice", PASSWORD);
    let r = c
        .send(
            Proto::H2,
            Method::GET,
            LIST,
            &[("authorization", auth.as_bytes())],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.version, http::Version::HTTP_2);
    let id = r.session_cookie().unwrap();
    let cookie = format!("JSESSIONID={id}");
    let r = c
        .send(
            Proto::H2,
            Method::GET,
            LIST,
            &[("cookie", cookie.as_bytes())],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
}
