//! `[yarn] historyserver`: the Spark History Server through the gateway, against
//! livy-sim standing in for Livy, the ResourceManager's proxy, a NodeManager and
//! (on a second port) the history server: a finished batch's Spark UI link
//! followed to its history pages, the application list narrowed, another user's
//! application missing with nothing fetched, an application the gateway never saw
//! decided by the history server's `sparkUser`, executor log links led through
//! the gateway, and a history server down or slow answered with JSON for scripts
//! and a page for people.

mod common;

use std::sync::Arc;

use common::*;
use http::{Method, StatusCode};
use livy_gateway::config::{HostPattern, UpstreamUrl, YarnConfig};
use livy_gateway::sim::model::{driver_container, LivyVersion};
use livy_gateway::sim::{self, Cluster, HistoryApp, SimConfig, Simulator};
use tokio::net::TcpListener;

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const HISTORY: &str = "/gateway/default/sparkhistory";

/// A navigation's headers, as a browser sends them.
const NAVIGATION: [(&str, &[u8]); 2] = [
    (
        "accept",
        b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("sec-fetch-mode", b"navigate"),
];

/// The cluster: a livy-sim (0.7, jobs done at once) that is also the
/// ResourceManager and NodeManager on one port, and the history server on
/// another, holding `history_apps` besides the jobs' applications.
struct HistoryCluster {
    livy: String,
    history: String,
    sim: Arc<Simulator>,
}

impl HistoryCluster {
    async fn start(history_apps: Vec<HistoryApp>) -> Self {
        let livy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let history_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = livy_listener.local_addr().unwrap();
        let livy = format!("http://{addr}");
        let history = format!("http://{}", history_listener.local_addr().unwrap());
        let sim = Arc::new(Simulator::new(SimConfig {
            version: LivyVersion::V07,
            speed: 1_000_000.0,
            cluster: Cluster {
                resourcemanager: livy.clone(),
                nodemanager: addr.to_string(),
                historyserver: Some(history.clone()),
                ..Cluster::default()
            },
            serve_yarn: true,
            history_apps,
            ..SimConfig::default()
        }));
        tokio::spawn(sim::run(livy_listener, sim.clone(), std::future::pending()));
        tokio::spawn(sim::run_history(
            history_listener,
            sim.clone(),
            std::future::pending(),
        ));
        Self { livy, history, sim }
    }

    /// A gateway in front of it, `[yarn]` naming all three servers.
    async fn gateway(&self) -> TestGateway {
        gateway_with_history(&self.livy, &self.history).await
    }

    /// How many requests the history server has had so far.
    fn history_requests(&self) -> usize {
        self.sim.history_requests().len()
    }
}

async fn gateway_with_history(livy: &str, history: &str) -> TestGateway {
    let nodemanager = livy.trim_start_matches("http://").to_owned();
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(livy).unwrap(),
        nodemanagers: vec![HostPattern::parse(&nodemanager).unwrap()],
        historyserver: Some(UpstreamUrl::parse(history).unwrap()),
    };
    TestGateway::start(
        Options::backend(Backend::Urls(vec![livy.to_owned()])).with(move |c| {
            c.yarn = Some(yarn);
            c.livy.response_timeout = secs(1);
        }),
    )
    .await
}

/// Creates a batch as `user` and returns its view (the batch has finished).
async fn finished_batch(gw: &TestGateway, user: &str, name: &str) -> serde_json::Value {
    let view = gw.batch_view(user, name).await;
    assert_eq!(view["state"], "success");
    view
}

#[tokio::test]
async fn a_finished_batchs_ui_link_leads_to_its_history_pages() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    let gw = cluster.gateway().await;
    let view = finished_batch(&gw, "alice", "finished").await;
    let app = view["appId"].as_str().unwrap().to_owned();
    let link = gw.path_of(&view["appInfo"]["sparkUiUrl"]);
    assert_eq!(link, format!("/gateway/default/yarn/proxy/{app}/"));
    let c = gw.client();
    let jobs = format!("{HISTORY}/history/{app}/1/jobs/");
    for proto in [Proto::H1, Proto::H2] {
        // YARN's redirection to the history server comes back on the gateway…
        let r = c.as_user_over(proto, "alice", Method::GET, &link, "").await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
        let first = format!("{HISTORY}/history/{app}/1/");
        assert_eq!(r.header("location"), Some(first.as_str()));
        // … and so does the history server's own, absolute, to the first tab.
        let r = c
            .as_user_over(proto, "alice", Method::GET, &first, "")
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text());
        assert_eq!(r.header("location"), Some(jobs.as_str()));

        let r = c.as_user_over(proto, "alice", Method::GET, &jobs, "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-security-policy"), None);
        let page = r.text();
        let nm = cluster.livy.trim_start_matches("http://");
        let container = driver_container(&app);
        for link in [
            // Written by Spark from `X-Forwarded-Context`.
            format!(r#"href="{HISTORY}/static/webui.css""#),
            format!("<script>setUIRoot('{HISTORY}')</script>"),
            format!(r#"href="{HISTORY}/history/{app}/1/executors/""#),
            // Written absolute by Spark, rewritten by the gateway.
            format!(r#"href="{HISTORY}/history/{app}/1/environment/""#),
            format!(
                r#"href="/gateway/default/yarn/nm/{nm}/node/containerlogs/{container}/alice/stdout?start=-4096""#
            ),
        ] {
            assert!(page.contains(&link), "{link} not in {page}");
        }
        assert!(!page.contains(&cluster.history), "{page}");

        // Assets for any signed-in user; someone else's application is missing
        // for them; an administrator sees it, sandboxed.
        let asset = format!("{HISTORY}/static/webui.js");
        let r = c.as_user_over(proto, "bob", Method::GET, &asset, "").await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("setUIRoot"));
        let r = c.as_user_over(proto, "bob", Method::GET, &jobs, "").await;
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.json()["error"], "not_found");
        let r = c.as_user_over(proto, "admin", Method::GET, &jobs, "").await;
        assert_eq!(r.status, 200);
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.starts_with("sandbox") && !csp.contains("allow-same-origin"),
            "{csp}"
        );
    }
    // Read-only, and nothing without credentials.
    let r = c.as_user("alice", Method::POST, &jobs, "{}").await;
    assert_eq!(r.status, 405);
    let r = c.send(Proto::H2, Method::GET, &jobs, &[], "").await;
    assert_eq!(r.status, 401);
    // Audited as the YARN routes are.
    let is_bobs = |l: &serde_json::Value| l["action"] == "history.app" && l["user"] == "bob";
    let lines = gw.audit_until(|lines| lines.iter().any(is_bobs)).await;
    let line = lines
        .iter()
        .find(|l| is_bobs(l))
        .expect("bob's refusal is audited");
    assert_eq!(line["resource"], app.as_str());
}

#[tokio::test]
async fn the_application_list_is_narrowed_and_whole_for_an_administrator() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    let gw = cluster.gateway().await;
    // bob's comes first, so a limit applied before narrowing would hide alice's.
    let bobs = finished_batch(&gw, "bob", "bobs").await["appId"].clone();
    let first = finished_batch(&gw, "alice", "first").await["appId"].clone();
    let second = finished_batch(&gw, "alice", "second").await["appId"].clone();
    let c = gw.client();
    let list = format!("{HISTORY}/api/v1/applications");
    let ids = |r: &Answer| -> Vec<serde_json::Value> {
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect()
    };
    for proto in [Proto::H1, Proto::H2] {
        let r = c.as_user_over(proto, "alice", Method::GET, &list, "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(ids(&r), vec![first.clone(), second.clone()]);
        let limited = format!("{list}?limit=1&status=completed");
        let r = c
            .as_user_over(proto, "alice", Method::GET, &limited, "")
            .await;
        assert_eq!(ids(&r), vec![first.clone()]);
        let r = c.as_user_over(proto, "bob", Method::GET, &list, "").await;
        assert_eq!(ids(&r), vec![bobs.clone()]);
        let r = c.as_user_over(proto, "admin", Method::GET, &list, "").await;
        assert_eq!(ids(&r), vec![bobs.clone(), first.clone(), second.clone()]);

        // The list's page is the history server's, with the gateway's root.
        let r = c
            .send(
                proto,
                Method::GET,
                &format!("{HISTORY}/"),
                &[("authorization", basic("alice", PASSWORD).as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 200);
        let page = r.text();
        assert!(
            page.contains(&format!(
                r#"<script src="{HISTORY}/static/historypage.js">"#
            )),
            "{page}"
        );
        assert!(page.contains(&format!("setUIRoot('{HISTORY}')")));
    }
    // The history server was asked for the whole list: the limit is the gateway's.
    let asked = cluster.sim.history_requests();
    assert!(
        asked
            .iter()
            .any(|p| p.starts_with("/api/v1/applications?") && !p.contains("limit")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn another_users_application_is_missing_with_nothing_fetched() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    let gw = cluster.gateway().await;
    let app = finished_batch(&gw, "bob", "private")
        .await
        .get("appId")
        .and_then(|a| a.as_str().map(str::to_owned))
        .unwrap();
    let c = gw.client();
    let before = cluster.history_requests();
    let upper = app.to_uppercase();
    let capital = app.replacen('a', "A", 1);
    let encoded = app.replacen('a', "%61", 1);
    let underscore = app.replacen('_', "%5F", 1);
    for proto in [Proto::H1, Proto::H2] {
        for path in [
            format!("{HISTORY}/history/{app}/1/jobs/"),
            format!("{HISTORY}/history/{app}"),
            format!("{HISTORY}/api/v1/applications/{app}"),
            format!("{HISTORY}/api/v1/applications/{app}/1/environment"),
            format!("{HISTORY}/history/{upper}/1/jobs/"),
            format!("{HISTORY}/history/{capital}/1/jobs/"),
            format!("{HISTORY}/history/{encoded}/1/jobs/"),
            format!("{HISTORY}/api/v1/applications/{underscore}"),
        ] {
            let r = c.as_user_over(proto, "alice", Method::GET, &path, "").await;
            assert_eq!(r.status, 404, "{path}: {}", r.text());
            assert_eq!(r.json()["error"], "not_found", "{path}");
        }
        // A person's navigation gets a page instead, with the same status.
        let path = format!("{HISTORY}/history/{app}/1/jobs/");
        let auth = basic("alice", PASSWORD);
        let mut headers = NAVIGATION.to_vec();
        headers.push(("authorization", auth.as_bytes()));
        let r = c.send(proto, Method::GET, &path, &headers, "").await;
        assert_eq!(r.status, 404);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().contains("404 Not Found"), "{}", r.text());
    }
    assert_eq!(
        cluster.history_requests(),
        before,
        "{:?}",
        cluster.sim.history_requests()
    );
    // The owner's own request goes through.
    let r = c
        .as_user(
            "bob",
            Method::GET,
            &format!("{HISTORY}/api/v1/applications/{app}"),
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["attempts"][0]["sparkUser"], "bob");
}

#[tokio::test]
async fn an_application_the_gateway_never_saw_is_decided_by_its_spark_user() {
    let app = "application_1491850285999_0042";
    let cluster = HistoryCluster::start(vec![HistoryApp {
        id: app.into(),
        name: "yesterday's job".into(),
        user: "alice".into(),
        completed: true,
    }])
    .await;
    let gw = cluster.gateway().await;
    let c = gw.client();
    let jobs = format!("{HISTORY}/history/{app}/1/jobs/");
    for proto in [Proto::H1, Proto::H2] {
        let r = c.as_user_over(proto, "bob", Method::GET, &jobs, "").await;
        assert_eq!(r.status, 404, "{}", r.text());
        let r = c.as_user_over(proto, "alice", Method::GET, &jobs, "").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("yesterday&#39;s job"));
    }
    // Only the application's record was asked for bob, never its pages.
    let asked = cluster.sim.history_requests();
    let pages = asked.iter().filter(|p| p.starts_with("/history/")).count();
    assert_eq!(pages, 2, "{asked:?}");
    // In the lists too: alice's, not bob's.
    let list = format!("{HISTORY}/api/v1/applications");
    let r = c.as_user("alice", Method::GET, &list, "").await;
    assert_eq!(r.json()[0]["id"], app);
    let r = c.as_user("bob", Method::GET, &list, "").await;
    assert_eq!(r.json(), serde_json::json!([]));
    // An application the history server does not hold: 404, for everyone.
    let missing = format!("{HISTORY}/history/application_1491850285999_0043/1/jobs/");
    for user in ["alice", "admin"] {
        let r = c.as_user(user, Method::GET, &missing, "").await;
        assert_eq!(r.status, 404, "{user}");
        assert_eq!(r.json()["error"], "not_found");
    }
}

#[tokio::test]
async fn executor_logs_in_rest_answers_lead_through_the_gateway() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    let gw = cluster.gateway().await;
    let app = finished_batch(&gw, "alice", "logs").await["appId"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = gw.client();
    let executors = format!("{HISTORY}/api/v1/applications/{app}/1/allexecutors");
    for proto in [Proto::H1, Proto::H2] {
        let r = c
            .as_user_over(proto, "alice", Method::GET, &executors, "")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let stdout = r.json()[0]["executorLogs"]["stdout"]
            .as_str()
            .unwrap()
            .to_owned();
        let nm = cluster.livy.trim_start_matches("http://");
        assert!(
            stdout.starts_with(&format!(
                "/gateway/default/yarn/nm/{nm}/node/containerlogs/"
            )),
            "{stdout}"
        );
        // … and the link works for its owner.
        let r = c
            .as_user_over(proto, "alice", Method::GET, &stdout, "")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The environment comes as the history server redacts it.
    let environment = format!("{HISTORY}/api/v1/applications/{app}/1/environment");
    let r = c.as_user("alice", Method::GET, &environment, "").await;
    assert!(r.text().contains("*********(redacted)"));
}

/// Through `gw`, a script's request for the history server's list gets `status`
/// with a JSON `code`, and a person's navigation to its page the same status
/// with a page naming the history server; the rest of the gateway answers.
async fn fails_as(gw: &TestGateway, status: u16, code: &str) {
    let c = gw.client();
    let auth = basic("alice", PASSWORD);
    let mut navigation = NAVIGATION.to_vec();
    navigation.push(("authorization", auth.as_bytes()));
    let list = format!("{HISTORY}/api/v1/applications");
    for proto in [Proto::H1, Proto::H2] {
        let r = c.as_user_over(proto, "alice", Method::GET, &list, "").await;
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.json()["error"], code);
        let r = c
            .send(proto, Method::GET, &format!("{HISTORY}/"), &navigation, "")
            .await;
        assert_eq!(r.status, status);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(
            r.text().contains("The Spark History Server"),
            "{}",
            r.text()
        );
        let r = c
            .as_user_over(proto, "alice", Method::GET, BATCHES, "")
            .await;
        assert_eq!(r.status, 200, "the rest of the gateway is unaffected");
    }
}

#[tokio::test]
async fn a_history_server_down_or_slow_is_json_for_scripts_and_a_page_for_people() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    // Down: nothing listens where the history server should be.
    let gw = gateway_with_history(&cluster.livy, &refusing_url()).await;
    fails_as(&gw, 502, "upstream_unavailable").await;
    gw.shutdown().await;
    // Slow: a history server that never answers, past `[livy] response_timeout_secs`.
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let never: Responder = Arc::new(|_| Reply::Never);
    let silent = start_recorder(never, recorded).await;
    let gw = gateway_with_history(&cluster.livy, &format!("http://{silent}")).await;
    fails_as(&gw, 504, "upstream_timeout").await;
}

#[tokio::test]
async fn without_a_history_server_its_routes_are_missing() {
    let cluster = HistoryCluster::start(Vec::new()).await;
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(&cluster.livy).unwrap(),
        nodemanagers: Vec::new(),
        historyserver: None,
    };
    let gw = TestGateway::start(
        Options::backend(Backend::Urls(vec![cluster.livy.clone()]))
            .with(move |c| c.yarn = Some(yarn)),
    )
    .await;
    let r = gw
        .client()
        .as_user("alice", Method::GET, &format!("{HISTORY}/"), "")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(cluster.history_requests(), 0);
}
