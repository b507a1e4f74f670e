//! Livy's own web UI through the gateway, against livy-sim's UI pages (built as
//! Livy builds them from `livy.ui.basePath`): the gateway's base path in every
//! page whatever Livy was told, only Livy's own scripts allowed to run (by a
//! nonce made per answer), a session's and a batch's pages for their owner (and
//! administrators), and the listings the pages load narrowed to the caller's.

mod common;

use common::*;
use http::Method;
use livy_gateway::sim::SimConfig;

const BASE: &str = "/gateway/default/livy";

/// A gateway in front of a livy-sim whose `livy.ui.basePath` is `ui_base`.
async fn gateway(ui_base: &str) -> TestGateway {
    let ui_base = ui_base.to_owned();
    let livy = start_sim(move |_| SimConfig {
        speed: 1_000_000.0,
        ui_base_path: ui_base,
        ..SimConfig::default()
    })
    .await;
    TestGateway::start(Options::backend(Backend::Urls(vec![livy]))).await
}

/// The nonce of a page's policy, checking the policy runs only scripts with it.
fn nonce(r: &Answer) -> String {
    let policy = r.header("content-security-policy").expect("a policy");
    let start = policy.find("script-src 'nonce-").expect(policy) + "script-src 'nonce-".len();
    let end = start + policy[start..].find('\'').unwrap();
    assert!(policy[end..].starts_with("';"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    policy[start..end].to_owned()
}

#[tokio::test]
async fn pages_carry_the_gateways_base_path_and_run_only_their_own_scripts() {
    for livy_base in ["", "/behind/another/proxy", BASE] {
        let gw = gateway(livy_base).await;
        let c = gw.client();
        let mut nonces = Vec::new();
        for proto in [Proto::H1, Proto::H2] {
            for path in [format!("{BASE}/ui"), format!("{BASE}/v1/ui/")] {
                let r = c.as_user_over(proto, "alice", Method::GET, &path, "").await;
                assert_eq!(r.status, 200, "{livy_base}: {}", r.text());
                let page = r.text();
                let nonce = nonce(&r);
                for wanted in [
                    format!("setBasePath('{BASE}')"),
                    format!(r#"<script src="{BASE}/static/js/livy-ui.js" nonce="{nonce}">"#),
                    format!(r#"<script src="{BASE}/static/js/all-sessions.js" nonce="{nonce}">"#),
                    format!(r#"href="{BASE}/static/css/livy-ui.css""#),
                    format!(r#"href="{BASE}/ui""#),
                ] {
                    assert!(
                        page.contains(&wanted),
                        "{livy_base}: {wanted} not in {page}"
                    );
                }
                assert_eq!(
                    page.matches("<script").count(),
                    page.matches(&format!("nonce=\"{nonce}\"")).count(),
                    "{page}"
                );
                nonces.push(nonce);
            }
        }
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 4, "a nonce is made per answer");
        // The UI's assets, for any signed-in user.
        let r = c
            .as_user(
                "bob",
                Method::GET,
                &format!("{BASE}/static/js/livy-ui.js"),
                "",
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("function setBasePath"));
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn a_sessions_and_a_batchs_pages_are_their_owners() {
    let gw = gateway("").await;
    let c = gw.client();
    let hostile = r#"{"kind":"pyspark","name":"<img src=x onerror=alert(1)>"}"#;
    let r = c
        .as_user(
            "alice",
            Method::POST,
            &format!("{BASE}/v1/sessions"),
            hostile,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let session = r.json()["id"].as_u64().unwrap();
    let r = c
        .as_user(
            "alice",
            Method::POST,
            &format!("{BASE}/v1/batches"),
            r#"{"file":"local:/jobs/a.jar"}"#,
        )
        .await;
    let batch = r.json()["id"].as_u64().unwrap();
    for proto in [Proto::H1, Proto::H2] {
        for page in [
            format!("{BASE}/ui/session/{session}"),
            format!("{BASE}/ui/session/{session}/log"),
            format!("{BASE}/ui/batch/{batch}/log"),
        ] {
            for (user, status) in [("alice", 200), ("bob", 404), ("admin", 200)] {
                let r = c.as_user_over(proto, user, Method::GET, &page, "").await;
                assert_eq!(r.status, status, "{user} {page}: {}", r.text());
                if status == 200 {
                    nonce(&r);
                } else {
                    // As Livy answers for a session that does not exist.
                    assert!(r.text().contains("not found"), "{}", r.text());
                }
            }
        }
        // The listings the list page's scripts load: each user's own.
        let r = c
            .as_user_over(proto, "bob", Method::GET, &format!("{BASE}/sessions"), "")
            .await;
        assert_eq!(r.json()["total"], 0, "{}", r.text());
        let r = c
            .as_user_over(proto, "alice", Method::GET, &format!("{BASE}/sessions"), "")
            .await;
        assert_eq!(r.json()["sessions"][0]["id"], session);
    }
    for (path, status) in [
        (format!("{BASE}/ui/session/nope"), 404),
        (format!("{BASE}/ui/batch/{batch}"), 404),
        (format!("{BASE}/ui/elsewhere"), 404),
    ] {
        let r = c.as_user("alice", Method::GET, &path, "").await;
        assert_eq!(r.status, status, "{path}");
    }
    let r = c
        .as_user("alice", Method::POST, &format!("{BASE}/ui"), "{}")
        .await;
    assert_eq!(r.status, 405);
    let r = c
        .send(Proto::H1, Method::GET, &format!("{BASE}/ui"), &[], "")
        .await;
    assert_eq!(r.status, 401);
    let is_bobs = |l: &serde_json::Value| l["action"] == "ui.session" && l["user"] == "bob";
    let lines = gw.audit_until(|lines| lines.iter().any(is_bobs)).await;
    assert!(lines.iter().any(is_bobs));
}
