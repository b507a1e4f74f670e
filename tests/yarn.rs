//! `[yarn]`: the Spark UI and driver logs through the gateway, against livy-sim
//! standing in for Livy, the ResourceManager's proxy and a NodeManager
//! (`--serve-yarn`): links in views rewritten, pages served to the application's
//! owner only with their links rewritten, logs streamed, NodeManagers outside the
//! allowlist never contacted; an `HTTPS_ONLY` cluster reached over TLS; and a
//! secured cluster's warning to an administrator passed as on YARN.

mod common;

use std::sync::Arc;

use common::*;
use http::{Method, StatusCode};
use livy_gateway::config::{HostPattern, UpstreamUrl, YarnConfig};
use livy_gateway::sim::model::{driver_container, LivyVersion};
use livy_gateway::sim::{Cluster, SimConfig};

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";

/// A livy-sim (0.7: views carry driver-log links) that is also the cluster's
/// ResourceManager and its one NodeManager, on one loopback port.
async fn cluster_sim() -> String {
    cluster_sim_with(|_| {}).await
}

/// The same with its cluster changed by `edit`.
async fn cluster_sim_with(edit: impl FnOnce(&mut Cluster)) -> String {
    start_sim(|addr| {
        let mut cluster = Cluster {
            resourcemanager: format!("http://{addr}"),
            nodemanager: addr.to_string(),
            ..Cluster::default()
        };
        edit(&mut cluster);
        SimConfig {
            version: LivyVersion::V07,
            speed: 1_000_000.0,
            cluster,
            serve_yarn: true,
            ..SimConfig::default()
        }
    })
    .await
}

/// A gateway in front of `livy`, with `[yarn]` naming it as both YARN servers.
async fn gateway(livy: &str) -> TestGateway {
    let nodemanager = livy.trim_start_matches("http://").to_owned();
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(livy).unwrap(),
        nodemanagers: vec![HostPattern::parse(&nodemanager).unwrap()],
        historyserver: None,
    };
    TestGateway::start(
        Options::backend(Backend::Urls(vec![livy.to_owned()])).with(move |c| c.yarn = Some(yarn)),
    )
    .await
}

/// A gateway in front of `livy` whose ResourceManager is a recording stand-in
/// answering with `responder` (what it is sent goes to `recorded`).
async fn gateway_with_resourcemanager(
    livy: String,
    responder: Responder,
    recorded: Arc<std::sync::Mutex<Vec<Recorded>>>,
) -> TestGateway {
    let rm = start_recorder(responder, recorded).await;
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(&format!("http://{rm}")).unwrap(),
        nodemanagers: Vec::new(),
        historyserver: None,
    };
    TestGateway::start(
        Options::backend(Backend::Urls(vec![livy])).with(move |c| c.yarn = Some(yarn)),
    )
    .await
}

/// Creates a batch as `user` and returns its view once it runs (has links).
async fn running_batch(gw: &TestGateway, user: &str, name: &str) -> serde_json::Value {
    gw.batch_view(user, name).await
}

/// alice's driver log index at `logs` (a gateway path) links its files through
/// the gateway, and its stderr streams whole, entities intact.
async fn assert_driver_logs_stream(c: &Client, proto: Proto, logs: &str) {
    let r = c.as_user_over(proto, "alice", Method::GET, logs, "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let index = String::from_utf8(r.body.to_vec()).unwrap();
    let stderr = format!("{logs}/stderr/?start=-4096");
    assert!(index.contains(&format!(r#"href="{stderr}""#)), "{index}");
    let r = c
        .as_user_over(proto, "alice", Method::GET, &stderr, "")
        .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(text.matches("&lt;ok&gt;\n").count(), 20_000);
    assert!(text.contains("stderr line 19999 &lt;ok&gt;"));
}

#[tokio::test]
async fn links_in_views_and_listings_lead_through_the_gateway() {
    let livy = cluster_sim().await;
    let gw = gateway(&livy).await;
    let view = running_batch(&gw, "alice", "linked").await;
    let app = view["appId"].as_str().unwrap().to_owned();
    assert_eq!(
        gw.path_of(&view["appInfo"]["sparkUiUrl"]),
        format!("/gateway/default/yarn/proxy/{app}/")
    );
    let container = driver_container(&app);
    let nm = livy.trim_start_matches("http://");
    assert_eq!(
        gw.path_of(&view["appInfo"]["driverLogUrl"]),
        format!("/gateway/default/yarn/nm/{nm}/node/containerlogs/{container}/alice")
    );

    // The listing (HTTP/2 this time) and a session's view say the same.
    let c = gw.client();
    let r = c
        .as_user_over(Proto::H2, "alice", Method::GET, BATCHES, "")
        .await;
    let listed = &r.json()["sessions"][0];
    assert_eq!(listed["appInfo"], view["appInfo"]);
    let r = c
        .as_user(
            "alice",
            Method::POST,
            SESSIONS,
            r#"{"kind":"pyspark","name":"s1"}"#,
        )
        .await;
    let id = r.json()["id"].as_u64().unwrap();
    let r = c
        .as_user("alice", Method::GET, &format!("{SESSIONS}/{id}"), "")
        .await;
    let ui = gw.path_of(&r.json()["appInfo"]["sparkUiUrl"]);
    assert!(
        ui.starts_with("/gateway/default/yarn/proxy/application_"),
        "{ui}"
    );
}

#[tokio::test]
async fn the_spark_ui_is_served_to_its_owner_with_its_links_rewritten() {
    let livy = cluster_sim().await;
    let gw = gateway(&livy).await;
    let view = running_batch(&gw, "alice", "ui").await;
    let ui = gw.path_of(&view["appInfo"]["sparkUiUrl"]);
    let app = view["appId"].as_str().unwrap();
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        let r = c.as_user_over(proto, "alice", Method::GET, &ui, "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        let page = String::from_utf8(r.body.to_vec()).unwrap();
        for link in [
            format!(r#"href="/gateway/default/yarn/proxy/{app}/static/bootstrap.min.css""#),
            format!(r#"src="/gateway/default/yarn/proxy/{app}/static/utils.js""#),
            format!(r#"href="/gateway/default/yarn/proxy/{app}/jobs/""#),
            format!(r#"href="/gateway/default/yarn/proxy/{app}/executors/""#),
            r#"href="stages/""#.to_string(),
            r#"href="https://spark.apache.org/docs/""#.to_string(),
            // The root the page's scripts build their links and REST calls on.
            format!("<script>setUIRoot('/gateway/default/yarn/proxy/{app}')</script>"),
        ] {
            assert!(page.contains(&link), "{link} not in {page}");
        }
        // A page the gateway does not serve keeps its own address.
        assert!(
            page.contains(&format!(r#"href="{livy}/cluster/app/{app}""#)),
            "{page}"
        );
        // The stylesheet, through the rewritten link, streams unchanged.
        let css = format!("/gateway/default/yarn/proxy/{app}/static/bootstrap.min.css");
        let r = c.as_user_over(proto, "alice", Method::GET, &css, "").await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], b"body { font-family: sans-serif }\n");
    }

    // The ResourceManager's redirection (adding the slash) comes back on the
    // gateway.
    let bare = ui.trim_end_matches('/');
    let r = c.as_user("alice", Method::GET, bare, "").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), Some(&*ui));

    // Someone else's application is missing for them, not forbidden; an
    // administrator sees it; the UI is read-only.
    let r = c.as_user("bob", Method::GET, &ui, "").await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!(r.json()["error"], "not_found");
    let r = c.as_user("admin", Method::GET, &ui, "").await;
    assert_eq!(r.status, 200);
    // … in a sandbox: the page is not the owner's to show the administrator
    // with the administrator's login.
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.starts_with("sandbox") && !csp.contains("allow-same-origin"),
        "{csp}"
    );
    let r = c.as_user("alice", Method::GET, &ui, "").await;
    assert_eq!(r.header("content-security-policy"), None);
    let r = c.as_user("alice", Method::POST, &ui, "{}").await;
    assert_eq!(r.status, 405);
    // An application no view ever showed, and Livy does not know.
    let r = c
        .as_user(
            "alice",
            Method::GET,
            "/gateway/default/yarn/proxy/application_1_9999/",
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    // Without credentials: 401, as everywhere.
    let r = c.send(Proto::H2, Method::GET, &ui, &[], "").await;
    assert_eq!(r.status, 401);
}

/// A secured cluster's ResourceManager warns an administrator before someone
/// else's application and remembers the warning in a cookie, which comes back on
/// the gateway's path for that application and, sent back with the warning's
/// link, takes the administrator on to the pages, as on YARN itself. The
/// ResourceManager's own login cookie never reaches the browser; the owner is
/// not warned.
#[tokio::test]
async fn a_secured_clusters_warning_to_an_administrator_can_be_passed() {
    let livy = cluster_sim_with(|cluster| cluster.secure = true).await;
    let gw = gateway(&livy).await;
    let view = running_batch(&gw, "alice", "warned").await;
    let ui = gw.path_of(&view["appInfo"]["sparkUiUrl"]);
    let app = view["appId"].as_str().unwrap();
    let proxy_path = format!("/gateway/default/yarn/proxy/{app}");
    let c = gw.client();
    let admin = basic("admin", PASSWORD);
    let warning = "WARNING: The following page may not be safe!";
    for proto in [Proto::H1, Proto::H2] {
        // The owner goes straight to the page, with no cookie of YARN's.
        let r = c.as_user_over(proto, "alice", Method::GET, &ui, "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = String::from_utf8_lossy(&r.body);
        assert!(
            page.contains("<h1>Spark Jobs") && !page.contains(warning),
            "{page}"
        );
        assert_eq!(set_cookies(&r), Vec::<String>::new());

        // The administrator is warned; of the ResourceManager's cookies only the
        // warning's comes back, on the gateway's path for the application.
        let auth: (&str, &[u8]) = ("authorization", admin.as_bytes());
        let r = c.send(proto, Method::GET, &ui, &[auth], "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = String::from_utf8_lossy(&r.body).into_owned();
        assert!(page.contains(warning), "{page}");
        let cookies = set_cookies(&r);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let cookie = &cookies[0];
        assert!(
            cookie.starts_with(&format!("checked_{app}=false;")),
            "{cookie}"
        );
        for attribute in [
            &*format!("Path={proxy_path}"),
            "Secure",
            "HttpOnly",
            "Max-Age=7200",
        ] {
            assert!(cookie.contains(attribute), "{attribute} not in {cookie}");
        }
        // The warning's link, as a browser reads it, leads through the gateway.
        let start = page.find("href=\"").expect("a link") + "href=\"".len();
        let link = page[start..][..page[start..].find('"').unwrap()].replace("&amp;", "&");
        assert!(link.starts_with(&format!("{proxy_path}/?")), "{link}");
        assert!(link.ends_with("proxyapproved=true"), "{link}");

        // YARN wants the cookie as well as the link: without it, the warning again.
        let r = c.send(proto, Method::GET, &link, &[auth], "").await;
        assert!(String::from_utf8_lossy(&r.body).contains(warning));
        // With the cookie the browser keeps: the page (sandboxed, as someone else's),
        // and the cookie now says the administrator went on.
        let r = c.as_user_with_cookie(proto, "admin", &link, cookie).await;
        assert_eq!(r.status, 200);
        let page = String::from_utf8_lossy(&r.body);
        assert!(
            page.contains("<h1>Spark Jobs") && !page.contains(warning),
            "{page}"
        );
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .starts_with("sandbox"));
        let cookies = set_cookies(&r);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(
            cookies[0].starts_with(&format!("checked_{app}=true;")),
            "{cookies:?}"
        );

        // The application's other pages follow without a warning.
        let jobs = format!("{proxy_path}/jobs/");
        let r = c
            .as_user_with_cookie(proto, "admin", &jobs, &cookies[0])
            .await;
        let page = String::from_utf8_lossy(&r.body);
        assert!(page.contains(r#"<p id="page">/jobs/</p>"#), "{page}");
    }
}

#[tokio::test]
async fn driver_logs_stream_from_allowed_node_managers_only() {
    let livy = cluster_sim().await;
    let gw = gateway(&livy).await;
    let view = running_batch(&gw, "alice", "logs").await;
    let logs = gw.path_of(&view["appInfo"]["driverLogUrl"]);
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        assert_driver_logs_stream(&c, proto, &logs).await;
    }
    let r = c.as_user("bob", Method::GET, &logs, "").await;
    assert_eq!(r.status, 404);

    // A NodeManager outside the allowlist: refused before any connection.
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let elsewhere = start_recorder(ok_responder(), recorded.clone()).await;
    let nm = livy.trim_start_matches("http://");
    let forged = logs.replace(nm, &elsewhere.to_string());
    assert_ne!(forged, logs);
    for user in ["alice", "admin"] {
        let r = c.as_user(user, Method::GET, &forged, "").await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert_eq!(r.json()["error"], "forbidden");
    }
    let forged_host = logs.replace(nm, &nm.replace("127.0.0.1", "127.0.0.2"));
    let r = c.as_user("alice", Method::GET, &forged_host, "").await;
    assert_eq!(r.status, 403);
    assert!(recorded.lock().unwrap().is_empty());
}

/// A livy-sim on https (its own CA, in `dir`) that is also an `HTTPS_ONLY`
/// cluster's ResourceManager and NodeManager: `(https://localhost:<port>, CA file)`.
async fn https_cluster_sim(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let sans: Vec<String> = livy_gateway::certgen::DEFAULT_SANS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let files = livy_gateway::certgen::write_to_dir(dir, &sans).unwrap();
    let tls = livy_gateway::tls::server_config(&files.cert, &files.key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let sim = livy_gateway::sim::Simulator::new(SimConfig {
        version: LivyVersion::V07,
        speed: 1_000_000.0,
        cluster: Cluster {
            resourcemanager: origin.clone(),
            nodemanager: origin.trim_start_matches("https://").to_owned(),
            ..Cluster::default()
        },
        serve_yarn: true,
        ..SimConfig::default()
    });
    tokio::spawn(livy_gateway::sim::run_tls(
        listener,
        Arc::new(sim),
        tokio_rustls::TlsAcceptor::from(tls),
        std::future::pending(),
    ));
    (origin, files.ca_cert)
}

#[tokio::test]
async fn an_https_only_cluster_is_reached_over_tls_for_pages_and_logs() {
    let certs = tempfile::tempdir().unwrap();
    let (cluster, ca) = https_cluster_sim(certs.path()).await;
    let nm = cluster.trim_start_matches("https://").to_owned();
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(&cluster).unwrap(),
        nodemanagers: vec![HostPattern::parse(&nm).unwrap()],
        historyserver: None,
    };
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![cluster.clone()])).with(
        move |c| {
            // The cluster's CA, for Livy and YARN alike.
            c.livy.ca_file = Some(ca);
            c.yarn = Some(yarn);
        },
    ))
    .await;
    let view = running_batch(&gw, "alice", "tls").await;
    let app = view["appId"].as_str().unwrap().to_owned();
    let ui = gw.path_of(&view["appInfo"]["sparkUiUrl"]);
    assert_eq!(ui, format!("/gateway/default/yarn/proxy/{app}/"));
    let logs = gw.path_of(&view["appInfo"]["driverLogUrl"]);
    let container = driver_container(&app);
    assert_eq!(
        logs,
        format!("/gateway/default/yarn/nm/{nm}/node/containerlogs/{container}/alice")
    );
    let c = gw.client();
    for proto in [Proto::H1, Proto::H2] {
        // The Spark UI from the ResourceManager over TLS, its link to the driver's
        // stdout on the NodeManager (https) made a gateway link.
        let r = c.as_user_over(proto, "alice", Method::GET, &ui, "").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = String::from_utf8(r.body.to_vec()).unwrap();
        let stdout = format!("/gateway/default/yarn/nm/{nm}/node/containerlogs/{container}/spark");
        assert!(page.contains(&format!(r#"href="{stdout}""#)), "{page}");
        assert!(!page.contains(&format!("https://{nm}/node/")), "{page}");

        // The driver's logs from the NodeManager over TLS.
        assert_driver_logs_stream(&c, proto, &logs).await;
    }
    let r = c.as_user("bob", Method::GET, &logs, "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn an_instance_that_never_relayed_the_view_asks_livy_whose_it_is() {
    let livy = cluster_sim().await;
    let first = gateway(&livy).await;
    let view = running_batch(&first, "alice", "elsewhere").await;
    let ui = first.path_of(&view["appInfo"]["sparkUiUrl"]);
    let second = gateway(&livy).await;
    let c = second.client();
    let r = c.as_user("bob", Method::GET, &ui, "").await;
    assert_eq!(r.status, 404);
    let r = c.as_user("alice", Method::GET, &ui, "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn without_yarn_links_pass_unchanged_and_the_routes_are_missing() {
    let livy = cluster_sim().await;
    let gw = TestGateway::start(Options::backend(Backend::Urls(vec![livy.clone()]))).await;
    let view = running_batch(&gw, "alice", "plain").await;
    let app = view["appId"].as_str().unwrap();
    assert_eq!(
        view["appInfo"]["sparkUiUrl"].as_str(),
        Some(&*format!("{livy}/proxy/{app}/"))
    );
    let r = gw
        .client()
        .as_user(
            "alice",
            Method::GET,
            &format!("/gateway/default/yarn/proxy/{app}/"),
            "",
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_resourcemanager_that_is_down_is_a_json_502_for_both_protocols() {
    let down = refusing_url();
    let livy = cluster_sim_with(|cluster| cluster.resourcemanager = down.clone()).await;
    let yarn = YarnConfig {
        resourcemanager: UpstreamUrl::parse(&down).unwrap(),
        nodemanagers: Vec::new(),
        historyserver: None,
    };
    let gw = TestGateway::start(
        Options::backend(Backend::Urls(vec![livy.clone()])).with(move |c| c.yarn = Some(yarn)),
    )
    .await;
    let view = running_batch(&gw, "alice", "rm-down").await;
    let ui = gw.path_of(&view["appInfo"]["sparkUiUrl"]);
    // No NodeManager allowed: the driver-log link is left pointing into the cluster.
    assert!(view["appInfo"]["driverLogUrl"]
        .as_str()
        .unwrap()
        .starts_with(&livy));
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .as_user_over(proto, "alice", Method::GET, &ui, "")
            .await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(r.json()["error"], "upstream_unavailable");
        assert!(!String::from_utf8_lossy(&r.body).contains(down.trim_start_matches("http://")));
    }
}

#[tokio::test]
async fn the_resourcemanager_is_asked_as_the_caller_for_pages_it_can_rewrite() {
    let livy = cluster_sim().await;
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gw = gateway_with_resourcemanager(livy, ok_responder(), recorded.clone()).await;
    let auth = basic("admin", PASSWORD);
    let path = "/gateway/default/yarn/proxy/application_1_0001/jobs/?doAs=alice&id=3";
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", auth.as_bytes()),
        ("accept-encoding", b"gzip, br"),
    ];
    let r = gw
        .client()
        .send(Proto::H2, Method::GET, path, &headers, "")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let seen = recorded.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].uri,
        "/proxy/application_1_0001/jobs/?id=3&doAs=admin"
    );
    assert!(!seen[0].headers.contains_key("accept-encoding"));
    assert!(!seen[0].headers.contains_key("authorization"));
}

/// An application's page cannot act on the gateway's origin: only an allowlist of
/// its headers passes, a redirection elsewhere is refused (502, naming no host),
/// someone else's page is sandboxed without forms or pop-ups, and identity
/// parameters are scrubbed from `;`-separated pieces too (Hadoop's filters split
/// there and take the first `doAs`).
#[tokio::test]
async fn application_pages_cannot_act_on_the_gateways_origin() {
    let livy = cluster_sim().await;
    let recorded = Arc::new(std::sync::Mutex::new(Vec::new()));
    let responder: Responder = Arc::new(|seen: &Recorded| {
        let path = seen.uri.split('?').next().unwrap_or_default().to_owned();
        let mut page = http::Response::builder()
            .header("content-type", "text/html;charset=utf-8")
            .header("etag", "\"7\"")
            .header("clear-site-data", "\"cookies\", \"storage\"")
            .header("access-control-allow-origin", "https://evil.example")
            .header("access-control-allow-credentials", "true")
            .header("service-worker-allowed", "/")
            .header("refresh", "0; url=https://evil.example/")
            .header(
                "link",
                "<https://evil.example/x.js>; rel=preload; as=script",
            )
            .header("x-frame-options", "ALLOWALL")
            .header("set-cookie", "JSESSIONID=planted; Path=/");
        let location = match path.rsplit('/').next().unwrap_or_default() {
            "internal" => Some("http://10.20.30.40:18080/history/application_1_0001/1/jobs/"),
            "schemeless" => Some("//evil.example/x"),
            "backslash" => Some("/\\evil.example/x"),
            "own" => Some("/proxy/application_1_0001/jobs/"),
            "relative" => Some("jobs/?id=1"),
            _ => None,
        };
        if let Some(location) = location {
            page = page.status(StatusCode::FOUND).header("location", location);
        }
        Reply::Now(
            page.body(http_body_util::Full::new("<p>hi</p>".into()))
                .unwrap(),
        )
    });
    let gw = gateway_with_resourcemanager(livy, responder, recorded.clone()).await;
    let c = gw.client();
    let ui = "/gateway/default/yarn/proxy/application_1_0001";
    for proto in [Proto::H1, Proto::H2] {
        let r = c
            .as_user_over(proto, "admin", Method::GET, &format!("{ui}/jobs/"), "")
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let mut names: Vec<&str> = r.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        for hostile in [
            "clear-site-data",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "service-worker-allowed",
            "refresh",
            "link",
            "x-frame-options",
        ] {
            assert!(r.header(hostile).is_none(), "{hostile} passed: {names:?}");
        }
        assert_eq!(r.header("etag"), Some("\"7\""));
        assert!(set_cookies(&r).is_empty(), "{names:?}");
        assert_eq!(
            r.header("content-security-policy"),
            Some("sandbox allow-scripts; form-action 'none'")
        );

        for elsewhere in ["internal", "schemeless", "backslash"] {
            let r = c
                .as_user_over(
                    proto,
                    "admin",
                    Method::GET,
                    &format!("{ui}/{elsewhere}"),
                    "",
                )
                .await;
            assert_eq!(r.status, 502, "{elsewhere}");
            assert_eq!(r.json()["error"], "upstream_redirect");
            assert!(r.header("location").is_none());
            let text = String::from_utf8_lossy(&r.body);
            assert!(
                !text.contains("10.20.30.40") && !text.contains("evil"),
                "{text}"
            );
        }
        let r = c
            .as_user_over(proto, "admin", Method::GET, &format!("{ui}/own"), "")
            .await;
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some(&*format!("{ui}/jobs/")));
        let r = c
            .as_user_over(proto, "admin", Method::GET, &format!("{ui}/relative"), "")
            .await;
        assert_eq!(r.header("location"), Some("jobs/?id=1"));

        // `;doAs=` in every spelling, and `user.name`, never reach YARN.
        let query = "?;doAs=alice&id=3;DOAS=bob;%64oAs=eve&user.name=carol;x=1";
        let r = c
            .as_user_over(
                proto,
                "admin",
                Method::GET,
                &format!("{ui}/jobs/{query}"),
                "",
            )
            .await;
        assert_eq!(r.status, 200);
        let seen = recorded.lock().unwrap().last().unwrap().uri.clone();
        let query = seen.split_once('?').unwrap().1;
        let names: Vec<String> = query
            .split(['&', ';'])
            .map(|p| p.split('=').next().unwrap().to_ascii_lowercase())
            .collect();
        assert_eq!(
            names
                .iter()
                .filter(|n| n.contains("doas") || n.contains("64oas"))
                .count(),
            1,
            "{seen}"
        );
        assert!(!names.iter().any(|n| n == "user.name"), "{seen}");
        assert!(query.ends_with("&doAs=admin"), "{seen}");
        assert!(query.contains("id=3") && query.contains("x=1"), "{seen}");
    }
}
