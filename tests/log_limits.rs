//! What unauthenticated clients can make the gateway write is bounded: a warning
//! repeated by every handshake (rustls's, for an IP address sent as the TLS server
//! name) is written at most `logging::PER_WINDOW` times a window, then reported as
//! one count; client text in access lines is clipped.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use http::Method;
use livy_gateway::config::{LogConfig, LogFormat};
use livy_gateway::logging;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_warnings_and_long_paths_are_bounded() {
    let captured = Captured::default();
    let writer = captured.clone();
    logging::init_with_writer(
        &LogConfig {
            level: "info".into(),
            format: LogFormat::Json,
            access_path: None,
        },
        move || writer.clone(),
    );
    let logs = tempfile::tempdir().unwrap();
    let access_path = logs.path().join("access.log");
    let gw = TestGateway::start(Options::default().with({
        let access_path = access_path.clone();
        move |c| {
            c.log.format = LogFormat::Json;
            c.log.access_path = Some(access_path);
        }
    }))
    .await;
    let handshakes = 3 * logging::PER_WINDOW as usize;
    for _ in 0..handshakes {
        let status = tokio::process::Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(gw.addr.to_string())
            .args(["-servername", "192.0.2.1"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .expect("openssl runs (scripts/test.sh installs it)");
        assert!(status.success());
    }
    let sni = |lines: &[serde_json::Value]| {
        lines
            .iter()
            .filter(|l| l["message"].as_str().unwrap_or("").contains("Illegal SNI"))
            .count()
    };
    assert_eq!(sni(&captured.lines()), logging::PER_WINDOW as usize);
    logging::report_suppressed();
    let lines = captured.lines();
    let report: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "repeated warnings suppressed")
        .collect();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0]["from"], "rustls::msgs::handshake");
    assert_eq!(
        report[0]["suppressed"],
        (handshakes - logging::PER_WINDOW as usize) as u64
    );

    // A 60 KB path, unauthenticated: its access line carries it clipped.
    let long = format!("/gateway/default/livy/v1/batches/{}", "x".repeat(60_000));
    let r = gw
        .client()
        .send(Proto::H2, Method::GET, &long, &[], "")
        .await;
    assert_eq!(r.status, 401);
    gw.shutdown().await;
    let access: Vec<serde_json::Value> = std::fs::read_to_string(&access_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(access.len(), 1);
    let path = access[0]["path"].as_str().unwrap();
    assert!(path.len() <= logging::MAX_LOGGED_TEXT + 3);
    assert_eq!(access[0]["auth_failure"], "missing");
}
