//! Several Livy servers: health-checked failover that never sends a creation
//! twice, a passive Livy's 307 followed inside the gateway, a request moving on
//! from an unreachable server with its body, and `/readyz` and metrics per server.
//!
//! The Livy servers are `livy-sim` processes (killed with SIGKILL, restarted on
//! the same port), each journaling the creations that reached it by name.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::sim_process::SimProcess;
use common::*;
use http::Method;

const BATCHES: &str = "/gateway/default/livy/v1/batches";

fn creation(name: &str) -> String {
    format!(r#"{{"file":"local:/jobs/{name}.jar","name":"{name}"}}"#)
}

/// An HA pair: an active livy-sim and a passive one redirecting to it.
fn ha_pair(dir: &Path) -> (SimProcess, SimProcess) {
    let active = SimProcess::start(dir, "active", &[]);
    let redirect = ["--redirect-to".to_owned(), active.url()];
    let passive = SimProcess::start(dir, "passive", &redirect);
    (active, passive)
}

/// A gateway in front of the servers at `urls`, in that order, checking their
/// health every `interval` (zero: never).
async fn gateway_on(urls: Vec<String>, interval: Duration) -> TestGateway {
    TestGateway::start(
        Options::backend(Backend::Urls(urls))
            .with(move |c| c.livy.health_check_interval = interval),
    )
    .await
}

/// The metric series of attempts at the server on `port` that ended in `outcome`.
fn attempts(port: u16, outcome: &str) -> String {
    format!(
        "livy_gateway_upstream_attempts_total{{upstream=\"127.0.0.1:{port}\",outcome=\"{outcome}\"}}"
    )
}

/// `/readyz`'s state of the server on `port`: (health, active).
async fn server(gw: &TestGateway, port: u16) -> (String, bool) {
    servers(gw).await[&format!("127.0.0.1:{port}")].clone()
}

/// `/readyz`'s `livy_servers`: `host:port → (health, active)`.
async fn servers(gw: &TestGateway) -> HashMap<String, (String, bool)> {
    let (_, body) = admin_get(gw.admin_addr, "/readyz").await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    ready["livy_servers"]
        .as_object()
        .map(|servers| {
            servers
                .iter()
                .map(|(name, s)| {
                    let health = s["health"].as_str().unwrap().to_owned();
                    (name.clone(), (health, s["active"] == true))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded: 20 s) until `/readyz` says `port`'s server has `health`.
async fn wait_for_health(gw: &TestGateway, port: u16, health: &str) {
    let key = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if servers(gw)
            .await
            .get(&key)
            .is_some_and(|(h, _)| h == health)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{key} never became {health}: {:?}", servers(gw).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_survive_the_active_server_dying_and_none_reaches_livy_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = SimProcess::start(dir.path(), "first", &[]);
    let mut second = SimProcess::start(dir.path(), "second", &[]);
    let gw = gateway_on(vec![first.url(), second.url()], secs(1)).await;
    wait_for_health(&gw, first.port, "up").await;
    wait_for_health(&gw, second.port, "up").await;
    assert!(server(&gw, first.port).await.1);

    // Four clients, each creating batches one after another (alternately over
    // HTTP/1.1 and HTTP/2), while the active server is killed, then restarted and
    // the other one killed.
    const STREAMS: usize = 4;
    const EACH: usize = 12;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut streams = Vec::new();
    for stream in 0..STREAMS {
        let c = gw.client();
        let sent = sent.clone();
        streams.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..EACH {
                let name = format!("job-{stream}-{n}");
                let proto = if n % 2 == 0 { Proto::H1 } else { Proto::H2 };
                let r = c
                    .as_user_over(proto, "alice", Method::POST, BATCHES, &creation(&name))
                    .await;
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                outcomes.push((name, r.status.as_u16()));
            }
            outcomes
        }));
    }
    let wait_for_sent = |count: usize| {
        let sent = sent.clone();
        async move {
            for _ in 0..600 {
                if sent.load(std::sync::atomic::Ordering::SeqCst) >= count {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the clients stalled before {count} creations");
        }
    };
    wait_for_sent(STREAMS * EACH / 3).await;
    first.kill();
    wait_for_sent(STREAMS * EACH / 2).await;
    first.restart();
    wait_for_health(&gw, first.port, "up").await;
    second.kill();
    let mut outcomes = Vec::new();
    for stream in streams {
        outcomes.extend(stream.await.unwrap());
    }

    // What reached each Livy, by name: nothing twice, nothing created without
    // its client being told, every creation as alice.
    let mut reached: HashMap<String, usize> = HashMap::new();
    for (name, proxy_user) in first.creations().into_iter().chain(second.creations()) {
        assert_eq!(proxy_user, "alice", "{name} was created as {proxy_user}");
        *reached.entry(name).or_default() += 1;
    }
    for (name, count) in &reached {
        assert_eq!(*count, 1, "{name} reached Livy {count} times");
    }
    let created: Vec<&String> = outcomes
        .iter()
        .filter(|(_, status)| *status == 201)
        .map(|(name, _)| name)
        .collect();
    for name in &created {
        assert!(
            reached.contains_key(*name),
            "{name}: 201 but no Livy has it"
        );
    }
    for (name, status) in &outcomes {
        assert!(
            matches!(status, 201 | 502 | 503),
            "{name}: unexpected status {status}"
        );
    }
    // Only a request in flight at a kill may fail (at most one per client per
    // kill); every other one moved on to the live server.
    assert!(
        created.len() >= STREAMS * EACH - 2 * STREAMS,
        "only {} of {} created: {outcomes:?}",
        created.len(),
        STREAMS * EACH
    );
    assert!(!first.creations().is_empty() && !second.creations().is_empty());

    // The gateway says what it saw.
    let m = scrape(&gw).await;
    let unreachable = |port: u16| {
        let series = attempts(port, "unreachable");
        m.get(&series).copied().unwrap_or(0.0)
    };
    assert!(unreachable(first.port) + unreachable(second.port) >= 1.0);
    wait_for_health(&gw, second.port, "down").await;
    assert_eq!(server(&gw, first.port).await, ("up".to_owned(), true));
    let m = scrape(&gw).await;
    let active = format!(
        "livy_gateway_upstream_active{{upstream=\"127.0.0.1:{}\"}}",
        first.port
    );
    assert_eq!(metric(&m, &active), 1.0);
}

#[tokio::test]
async fn a_passive_servers_redirection_is_followed_inside_the_gateway() {
    for proto in [Proto::H1, Proto::H2] {
        let dir = tempfile::tempdir().unwrap();
        let (active, passive) = ha_pair(dir.path());
        // No health checks: the first request goes to the passive server.
        let gw = gateway_on(vec![passive.url(), active.url()], Duration::ZERO).await;
        let c = gw.client();
        let r = c
            .as_user_over(proto, "alice", Method::POST, BATCHES, &creation("followed"))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        assert_eq!(r.header("location"), Some(&*format!("{BATCHES}/0")));
        assert_eq!(r.json()["proxyUser"], "alice");
        assert_eq!(
            active.creations(),
            [("followed".to_owned(), "alice".to_owned())]
        );
        assert!(passive.creations().is_empty());

        // The active server now takes requests directly; the passive one is on
        // standby, and the one redirection is counted.
        let r = c
            .as_user_over(proto, "alice", Method::GET, &format!("{BATCHES}/0"), "")
            .await;
        assert_eq!(r.status, 200);
        let standby = ("standby".to_owned(), false);
        assert_eq!(server(&gw, passive.port).await, standby);
        assert_eq!(server(&gw, active.port).await, ("up".to_owned(), true));
        let m = scrape(&gw).await;
        assert_eq!(metric(&m, &attempts(passive.port, "redirected")), 1.0);
    }
}

#[tokio::test]
async fn health_checks_put_a_passive_server_on_standby() {
    let dir = tempfile::tempdir().unwrap();
    let (active, passive) = ha_pair(dir.path());
    let gw = gateway_on(vec![passive.url(), active.url()], secs(1)).await;
    wait_for_health(&gw, passive.port, "standby").await;
    wait_for_health(&gw, active.port, "up").await;
    assert!(server(&gw, active.port).await.1);
    // Requests now go straight to the active server: no redirection more.
    let redirected = attempts(passive.port, "redirected");
    let before = scrape(&gw).await.get(&redirected).copied().unwrap_or(0.0);
    let r = gw
        .client()
        .as_user("bob", Method::POST, BATCHES, &creation("direct"))
        .await;
    assert_eq!(r.status, 201);
    let after = scrape(&gw).await.get(&redirected).copied().unwrap_or(0.0);
    assert_eq!(before, after);
    assert_eq!(
        active.creations(),
        [("direct".to_owned(), "bob".to_owned())]
    );
}

#[tokio::test]
async fn a_creation_moves_on_with_its_body_when_the_first_server_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let live = SimProcess::start(dir.path(), "live", &[]);
    let gw = gateway_on(vec![refusing_url(), live.url()], Duration::ZERO).await;
    for (n, proto) in [Proto::H1, Proto::H2].into_iter().enumerate() {
        let name = format!("moved-{n}");
        let r = gw
            .client()
            .as_user_over(proto, "alice", Method::POST, BATCHES, &creation(&name))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let names: Vec<String> = live.creations().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["moved-0", "moved-1"]);
}

#[tokio::test]
async fn with_every_server_down_a_request_gets_a_json_502() {
    let gw = gateway_on(vec![refusing_url(), refusing_url()], secs(1)).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .as_user_over(proto, "alice", Method::POST, BATCHES, &creation("nowhere"))
            .await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(r.json()["error"], "upstream_unavailable");
    }
    let (status, body) = admin_get(gw.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn a_second_redirection_is_not_followed() {
    // Two passive servers pointing at each other: one redirection is followed,
    // the second is a 502, and neither reaches the client as a 307.
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (free_port(), free_port());
    let at = |port: u16| format!("http://127.0.0.1:{port}");
    let mut first = SimProcess {
        port: one,
        journal: dir.path().join("one.journal"),
        extra: vec!["--redirect-to".into(), at(two)],
        child: None,
    };
    let mut second = SimProcess {
        port: two,
        journal: dir.path().join("two.journal"),
        extra: vec!["--redirect-to".into(), at(one)],
        child: None,
    };
    first.restart();
    second.restart();
    let gw = gateway_on(vec![first.url(), second.url()], Duration::ZERO).await;
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client()
            .as_user_over(proto, "alice", Method::POST, BATCHES, &creation("looping"))
            .await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(r.json()["error"], "upstream_failed");
        assert_eq!(r.header("location"), None);
    }
}

#[tokio::test]
async fn a_server_taken_out_on_reload_leaves_no_series_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, gone) = (
        SimProcess::start(dir.path(), "kept", &[]),
        SimProcess::start(dir.path(), "gone", &[]),
    );
    let gw = gateway_on(vec![kept.url(), gone.url()], Duration::ZERO).await;
    let r = gw.client().as_user("alice", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 200);
    let up = |port: u16| format!("livy_gateway_upstream_up{{upstream=\"127.0.0.1:{port}\"}}");
    let m = scrape(&gw).await;
    assert!(m.contains_key(&up(gone.port)));
    assert_eq!(metric(&m, &attempts(kept.port, "answered")), 1.0);

    let path = gw.dir.path().join("gateway.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let both = format!("\"{}\", \"{}\"", kept.url(), gone.url());
    assert!(text.contains(&both), "{text}");
    std::fs::write(&path, text.replace(&both, &format!("\"{}\"", kept.url()))).unwrap();
    gw.runtime.reload().await.unwrap();

    let m = scrape(&gw).await;
    let gone_series: Vec<_> = m
        .keys()
        .filter(|k| k.contains(&format!("127.0.0.1:{}", gone.port)))
        .collect();
    assert!(gone_series.is_empty(), "{gone_series:?}");
    // The server kept keeps its series, counts and all.
    assert!(m.contains_key(&up(kept.port)));
    assert_eq!(metric(&m, &attempts(kept.port, "answered")), 1.0);
    let r = gw.client().as_user("alice", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        metric(&scrape(&gw).await, &attempts(kept.port, "answered")),
        2.0
    );
}
