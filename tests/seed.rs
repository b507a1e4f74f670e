//! Every request of the seed document (`shared/seed/livy-batches-via-gateway.md`),
//! through the gateway over real TLS, in front of the Livy simulator imitating the
//! seed's Livy 0.5, with its status and body shape.

mod common;

use common::*;
use http::Method;
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::SimConfig;

const SUBMIT: &str = r#"{ "file":"local:/usr/iop/current/spark2-client/jars/spark-examples.jar", "className":"org.apache.spark.examples.SparkPi" }"#;

fn seed_backend() -> Options {
    Options::backend(Backend::Sim(SimConfig {
        version: LivyVersion::V05,
        speed: 1_000_000.0,
        ..SimConfig::default()
    }))
}

#[tokio::test]
async fn seed_document_requests_work_as_shown() {
    let gw = TestGateway::start(seed_backend()).await;
    let c = gw.client();

    // Submit a Spark job: 201, Location rewritten into the gateway, 0.5 batch view.
    let r = c
        .as_user("alice", Method::POST, &format!("{BASE}/batches"), SUBMIT)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(cookie.starts_with("JSESSIONID="), "{cookie}");
    let v = r.json();
    let id = v["id"].as_u64().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("{BASE}/batches/{id}")
    );
    for key in ["id", "state", "appId", "appInfo", "log"] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert!(v.get("owner").is_none(), "Livy 0.5 has no owner");
    assert_eq!(v["state"], "starting");
    assert!(v["appInfo"].get("driverLogUrl").is_some());
    assert!(v["appInfo"].get("sparkUiUrl").is_some());

    // List all jobs (with the seed's trailing slash).
    let r = c
        .as_user("alice", Method::GET, &format!("{BASE}/batches/"), "")
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["from"], 0);
    assert!(v["total"].as_u64().unwrap() >= 1);
    assert!(v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["id"] == id));

    // Get job information.
    let r = c
        .as_user("alice", Method::GET, &format!("{BASE}/batches/{id}"), "")
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], id);
    assert_eq!(v["state"], "success");
    assert!(v["appId"].as_str().unwrap().starts_with("application_"));
    assert!(v["log"].as_array().unwrap().len() <= 10);

    // Get state.
    let r = c
        .as_user(
            "alice",
            Method::GET,
            &format!("{BASE}/batches/{id}/state"),
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({ "id": id, "state": "success" })
    );

    // Get log.
    let r = c
        .as_user(
            "alice",
            Method::GET,
            &format!("{BASE}/batches/{id}/log"),
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], id);
    assert_eq!(v["from"], 0);
    assert_eq!(v["total"], 32);
    assert_eq!(v["log"].as_array().unwrap().len(), 32);

    // Kill batch job.
    let r = c
        .as_user("alice", Method::DELETE, &format!("{BASE}/batches/{id}"), "")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({ "msg": "deleted" }));
    let r = c
        .as_user("alice", Method::GET, &format!("{BASE}/batches/{id}"), "")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["msg"], format!("Session '{id}' not found."));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_requests_work_with_curl_verbatim() {
    // The seed's curl commands, changing only host, credentials and -k → --cacert.
    let gw = TestGateway::start(seed_backend()).await;
    let ca = gw.ca_path();
    let host = format!("https://localhost:{}", gw.addr.port());
    let user = format!("alice:{PASSWORD}");
    let curl = |args: Vec<String>| {
        let out = std::process::Command::new("curl")
            .args(args)
            .output()
            .expect("curl is installed");
        assert!(out.status.success(), "curl failed: {:?}", out);
        String::from_utf8(out.stdout).unwrap()
    };
    let common = |extra: &[&str], url: String| {
        let mut args: Vec<String> = vec![
            "--cacert".into(),
            ca.display().to_string(),
            "-s".into(),
            "-i".into(),
            "-u".into(),
            user.clone(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url);
        args
    };
    let out = tokio::task::block_in_place(|| {
        curl(common(
            &["-H", "Content-Type: application/json", "-d", SUBMIT],
            format!("{host}{BASE}/batches"),
        ))
    });
    assert!(
        out.starts_with("HTTP/2 201") || out.starts_with("HTTP/1.1 201"),
        "{out}"
    );
    assert!(
        out.to_ascii_lowercase().contains("set-cookie: jsessionid="),
        "{out}"
    );
    for (extra, path, expect) in [
        (vec![], "/batches/".to_string(), "\"sessions\""),
        (vec![], "/batches/0".to_string(), "\"appId\""),
        (vec![], "/batches/0/state".to_string(), "\"state\""),
        (vec![], "/batches/0/log".to_string(), "\"log\""),
        (
            vec!["-X", "DELETE"],
            "/batches/0".to_string(),
            "{\"msg\":\"deleted\"}",
        ),
    ] {
        let out =
            tokio::task::block_in_place(|| curl(common(&extra, format!("{host}{BASE}{path}"))));
        assert!(out.contains(" 200"), "{path}: {out}");
        assert!(out.contains(expect), "{path}: {out}");
    }
}
