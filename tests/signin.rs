//! Browser sign-in (`[auth.oidc]`) at the HTTP level, over real TLS on both
//! protocols, against a real OpenID provider (npm's `oidc-provider`,
//! tests/common/idp.rs) whose own login form a scripted browser fills in: a
//! navigation is sent to the provider, the callback starts the ordinary
//! session, and the browser goes on to the page it asked for; scripts and API
//! clients keep their 401; replayed and unknown `state`s, swapped codes, denied
//! consent, users outside the allowed groups and open-redirect targets are
//! refused; logout ends the session everywhere.

mod common;

use common::idp::Idp;
use common::*;
use http::Method;
use livy_gateway::config::OidcConfig;

const CLIENT: &str = "livy-gateway";
const SECRET: &str = "gateway-client-secret";
const PAGE: &str = "/gateway/default/oidc/signed-in";

/// `[auth.oidc]` for `idp`, the client secret in `secret`.
fn oidc_config(idp: &Idp, secret: &std::path::Path) -> OidcConfig {
    OidcConfig {
        issuer: idp.issuer.clone(),
        client_id: CLIENT.into(),
        client_secret_file: secret.to_path_buf(),
        scopes: vec!["openid".into(), "profile".into()],
        user_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
        ca_file: Some(idp.ca()),
    }
}

/// A gateway signing browsers in at `idp` (only `livy-users` get in), the
/// gateway registered there as a client.
async fn gateway(idp: &mut Idp) -> TestGateway {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{SECRET}\n")).unwrap();
    let oidc = oidc_config(idp, secret.path());
    let gw = TestGateway::start(Options::default().with(move |c| {
        c.auth.oidc = Some(oidc);
        c.auth.allowed_groups = vec!["livy-users".into()];
    }))
    .await;
    // Read at start: the file may go.
    drop(secret);
    let base = format!("https://localhost:{}/gateway/default", gw.addr.port());
    idp.register(
        CLIENT,
        SECRET,
        &format!("{base}/oidc/callback"),
        &format!("{base}/oidc/signed-out"),
    )
    .await;
    gw
}

const NAVIGATE: [(&str, &[u8]); 2] = [
    ("accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
    ("sec-fetch-mode", b"navigate"),
];

/// A browser's navigation to `path`, with `cookie` if given.
async fn navigate(c: &Client, proto: Proto, path: &str, cookie: Option<&str>) -> Answer {
    let mut headers: Vec<(&str, &[u8])> = NAVIGATE.to_vec();
    let value = cookie.map(|id| format!("JSESSIONID={id}"));
    if let Some(value) = &value {
        headers.push(("cookie", value.as_bytes()));
    }
    c.send(proto, Method::GET, path, &headers, "").await
}

/// The gateway-relative part of a URL on the gateway.
fn on_gateway(url: &str) -> String {
    let start = url.find("/gateway/").expect("a gateway URL");
    url[start..].to_owned()
}

/// `user` signs in from a navigation to `path`: the callback's answer.
async fn sign_in(c: &Client, idp: &mut Idp, proto: Proto, path: &str, user: &str) -> Answer {
    let r = navigate(c, proto, path, None).await;
    assert_eq!(r.status, 302, "{:?}", r.body);
    let authorize = r.header("location").unwrap().to_owned();
    assert!(authorize.starts_with(&idp.issuer), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256"));
    let back = idp.authorize(&authorize, user, "https://localhost:").await;
    navigate(c, proto, &on_gateway(&back), None).await
}

#[tokio::test]
async fn a_navigation_signs_in_and_returns_to_the_page_it_asked_for() {
    let mut idp = Idp::start().await;
    let gw = gateway(&mut idp).await;
    let c = gw.client();
    let wanted = "/gateway/default/oidc/signed-in?from=test";
    for proto in [Proto::H1, Proto::H2] {
        let r = sign_in(&c, &mut idp, proto, wanted, "alice").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = String::from_utf8_lossy(&r.body).into_owned();
        // On by a page of the gateway's own, so the SameSite=Strict cookie goes
        // with the next navigation.
        assert!(page.contains(r#"http-equiv="refresh""#), "{page}");
        assert!(
            page.contains("/gateway/default/oidc/signed-in?from=test"),
            "{page}"
        );
        let cookie = r.session_cookie().expect("a session");
        let r = navigate(&c, proto, "/gateway/default/livy/v1/batches", Some(&cookie)).await;
        assert_eq!(r.status, 200, "the session works for the API too");
        let r = navigate(&c, proto, PAGE, Some(&cookie)).await;
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("as alice"));
    }
    let audit = gw
        .audit_until(|lines| {
            lines
                .iter()
                .any(|l| l["user"] == "alice" && l["auth"] == "oidc")
        })
        .await;
    assert!(
        audit
            .iter()
            .any(|l| l["user"] == "alice" && l["auth"] == "oidc"),
        "the callback's audit line says auth=oidc"
    );
    let m = scrape(&gw).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_signins_total{outcome="signed_in"}"#),
        2.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn scripts_and_api_clients_get_401_not_a_redirect() {
    let mut idp = Idp::start().await;
    let gw = gateway(&mut idp).await;
    let c = gw.client();
    let cases: [&[(&str, &[u8])]; 4] = [
        &[],
        &[("accept", b"application/json")],
        &[("accept", b"text/html"), ("sec-fetch-mode", b"cors")],
        &[
            ("accept", b"text/html"),
            ("x-requested-with", b"XMLHttpRequest"),
        ],
    ];
    for proto in [Proto::H1, Proto::H2] {
        for headers in cases {
            let r = c.send(proto, Method::GET, PAGE, headers, "").await;
            assert_eq!(r.status, 401, "{headers:?}");
            assert_eq!(r.json()["error"], "unauthorized");
        }
        // A browser's script is never offered Basic (no popup).
        let r = c
            .send(proto, Method::GET, PAGE, &[("sec-fetch-mode", b"cors")], "")
            .await;
        let offered: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
        assert!(
            offered.iter().all(|v| !v.as_bytes().starts_with(b"BASIC")),
            "{offered:?}"
        );
        // The API under /livy/ is never a sign-in, even for a navigation.
        let r = navigate(&c, proto, "/gateway/default/livy/v1/batches", None).await;
        assert_eq!(r.status, 401);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_replayed_and_swapped_sign_ins_are_refused_without_a_loop() {
    let mut idp = Idp::start().await;
    let gw = gateway(&mut idp).await;
    let c = gw.client();
    let r = sign_in(&c, &mut idp, Proto::H1, PAGE, "alice").await;
    assert_eq!(r.status, 200);
    // The same callback again: its state was taken.
    let first = navigate(&c, Proto::H1, PAGE, None).await;
    let authorize = first.header("location").unwrap().to_owned();
    let back = on_gateway(
        &idp.authorize(&authorize, "alice", "https://localhost:")
            .await,
    );
    assert_eq!(navigate(&c, Proto::H2, &back, None).await.status, 200);
    let again = navigate(&c, Proto::H1, &back, None).await;
    assert_eq!(again.status, 400);
    assert!(again.session_cookie().is_none());
    assert!(String::from_utf8_lossy(&again.body).contains("/gateway/default/oidc/start"));
    // A made-up state.
    let made_up = navigate(
        &c,
        Proto::H2,
        "/gateway/default/oidc/callback?code=x&state=made-up",
        None,
    )
    .await;
    assert_eq!(made_up.status, 400);
    // One sign-in's code with another's state: the exchange fails (PKCE).
    let a = navigate(&c, Proto::H1, PAGE, None)
        .await
        .header("location")
        .unwrap()
        .to_owned();
    let b = navigate(&c, Proto::H1, PAGE, None)
        .await
        .header("location")
        .unwrap()
        .to_owned();
    let back_a = on_gateway(&idp.authorize(&a, "alice", "https://localhost:").await);
    let state_b = url_param(&b, "state");
    let code_a = url_param(&back_a, "code");
    let swapped = format!("/gateway/default/oidc/callback?code={code_a}&state={state_b}");
    let r = navigate(&c, Proto::H2, &swapped, None).await;
    assert!(r.status == 400 || r.status == 502, "{}", r.status);
    assert!(r.session_cookie().is_none());
    // Denied at the provider.
    let d = navigate(&c, Proto::H1, PAGE, None)
        .await
        .header("location")
        .unwrap()
        .to_owned();
    let denied = format!(
        "/gateway/default/oidc/callback?error=access_denied&state={}",
        url_param(&d, "state")
    );
    let r = navigate(&c, Proto::H1, &denied, None).await;
    assert_eq!(r.status, 403);
    assert!(r.session_cookie().is_none());
    gw.shutdown().await;
}

/// A query parameter of a URL, as sent (still encoded).
fn url_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn outsiders_are_refused_and_return_targets_stay_on_the_gateway() {
    let mut idp = Idp::start().await;
    let gw = gateway(&mut idp).await;
    let c = gw.client();
    let r = sign_in(&c, &mut idp, Proto::H2, PAGE, "eve").await;
    assert_eq!(r.status, 403, "eve is in no allowed group");
    assert!(r.session_cookie().is_none());
    for target in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/gateway/default/%2f%2fevil.example",
    ] {
        let start = format!(
            "/gateway/default/oidc/start?return={}",
            percent_encoding::utf8_percent_encode(target, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = navigate(&c, Proto::H1, &start, None).await;
        assert_eq!(r.status, 302);
        let authorize = r.header("location").unwrap().to_owned();
        let back = on_gateway(
            &idp.authorize(&authorize, "alice", "https://localhost:")
                .await,
        );
        let r = navigate(&c, Proto::H1, &back, None).await;
        let page = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            page.contains(r#"url=/gateway/default/oidc/signed-in""#),
            "{target}: {page}"
        );
        assert!(!page.contains("evil"), "{target}: {page}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_session_everywhere_and_at_the_provider() {
    let mut idp = Idp::start().await;
    let gw = gateway(&mut idp).await;
    let c = gw.client();
    let r = sign_in(&c, &mut idp, Proto::H1, PAGE, "bob").await;
    let cookie = r.session_cookie().unwrap();
    let r = navigate(&c, Proto::H2, "/gateway/default/logout", Some(&cookie)).await;
    assert_eq!(r.status, 302);
    let end = r.header("location").unwrap();
    assert!(end.starts_with(&idp.issuer), "{end}");
    assert!(end.contains("id_token_hint=") && end.contains("post_logout_redirect_uri="));
    // The session is gone: a navigation signs in again, the API is 401.
    let r = navigate(&c, Proto::H1, PAGE, Some(&cookie)).await;
    assert_eq!(r.status, 302);
    let api = c
        .with_cookie(&cookie, Method::GET, "/gateway/default/livy/v1/batches")
        .await;
    assert_eq!(api.status, 401);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_callback_may_reach_another_instance_through_redis() {
    let redis = common::redis::RedisServer::start().await;
    let mut idp = Idp::start().await;
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{SECRET}\n")).unwrap();
    let livy = start_sim(|_| livy_gateway::sim::SimConfig::default()).await;
    let instance = |public_host: Option<String>| {
        let oidc = oidc_config(&idp, secret.path());
        let url = redis.url();
        Options::backend(Backend::Urls(vec![livy.clone()])).with(move |c| {
            c.auth.oidc = Some(oidc);
            c.state.backend = livy_gateway::config::StateBackend::Redis;
            c.state.redis_url = url;
            c.state.timeout = std::time::Duration::from_millis(2000);
            c.server.public_host = public_host.map(|h| h.parse().unwrap());
        })
    };
    // Two instances under one name (as behind a balancer): b answers for a's.
    let a = TestGateway::start(instance(None)).await;
    let name = format!("localhost:{}", a.addr.port());
    let b = TestGateway::start(instance(Some(name.clone()))).await;
    let base = format!("https://{name}/gateway/default");
    idp.register(
        CLIENT,
        SECRET,
        &format!("{base}/oidc/callback"),
        &format!("{base}/oidc/signed-out"),
    )
    .await;
    let (ca, cb) = (a.client(), b.client());
    for proto in [Proto::H1, Proto::H2] {
        // Begun on a, finished on b, the session good on a.
        let r = navigate(&ca, proto, PAGE, None).await;
        assert_eq!(r.status, 302);
        let authorize = r.header("location").unwrap().to_owned();
        let back = on_gateway(
            &idp.authorize(&authorize, "alice", "https://localhost:")
                .await,
        );
        let r = navigate(&cb, proto, &back, None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let cookie = r.session_cookie().unwrap();
        let r = navigate(&ca, proto, PAGE, Some(&cookie)).await;
        assert_eq!(r.status, 200);
        // Used on b, the state is gone for a too.
        assert_eq!(navigate(&ca, proto, &back, None).await.status, 400);
    }
    // A sign-in whose nonce is not the ID token's is refused: the one kept in
    // Redis is changed between the redirect and the callback.
    let r = navigate(&ca, Proto::H2, PAGE, None).await;
    let authorize = r.header("location").unwrap().to_owned();
    let key = format!("livy-gateway:signin:{}", url_param(&authorize, "state"));
    let kept = redis.cli(&["GET", &key]).await.unwrap();
    let mut pending: serde_json::Value = serde_json::from_str(&kept).unwrap();
    pending["nonce"] = "another-sign-ins-nonce".into();
    redis
        .cli(&["SET", &key, &pending.to_string(), "PX", "60000"])
        .await;
    let back = on_gateway(
        &idp.authorize(&authorize, "alice", "https://localhost:")
            .await,
    );
    let r = navigate(&cb, Proto::H2, &back, None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.session_cookie().is_none());
    // The provider down at the callback: a page saying so, no session, no loop.
    let r = navigate(&ca, Proto::H1, PAGE, None).await;
    let authorize = r.header("location").unwrap().to_owned();
    let back = on_gateway(
        &idp.authorize(&authorize, "alice", "https://localhost:")
            .await,
    );
    idp.stop().await;
    let r = navigate(&cb, Proto::H1, &back, None).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert!(r.session_cookie().is_none());
    assert!(String::from_utf8_lossy(&r.body).contains("/gateway/default/oidc/start"));
    let m = scrape(&b).await;
    assert_eq!(
        metric(&m, r#"livy_gateway_signins_total{outcome="refused"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            r#"livy_gateway_signins_total{outcome="provider_error"}"#
        ),
        1.0
    );
    drop(secret);
    a.shutdown().await;
    b.shutdown().await;
}
