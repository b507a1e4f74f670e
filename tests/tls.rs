//! The TLS listener: protocol versions, ALPN, resumption, and connections that fail
//! or stall without affecting anyone else.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::Method;
use rustls::HandshakeKind;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client_config(
    gw: &TestGateway,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(gw.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn handshake(
    gw: &TestGateway,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn alpn_selects_h2_or_http11() {
    let gw = TestGateway::start(Options::default()).await;
    let both = handshake(
        &gw,
        client_config(&gw, rustls::ALL_VERSIONS, &[b"h2", b"http/1.1"]),
    )
    .await;
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let h1 = handshake(
        &gw,
        client_config(&gw, rustls::ALL_VERSIONS, &[b"http/1.1"]),
    )
    .await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let none = handshake(&gw, client_config(&gw, rustls::ALL_VERSIONS, &[])).await;
    assert_eq!(none.get_ref().1.alpn_protocol(), None);
}

#[tokio::test]
async fn tls12_and_tls13_both_work() {
    let gw = TestGateway::start(Options::default()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let tls = handshake(&gw, client_config(&gw, &[version], &[b"http/1.1"])).await;
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
    }
}

#[tokio::test]
async fn sessions_resume_with_tickets() {
    let gw = TestGateway::start(Options::default()).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = client_config(&gw, &[version], &[b"http/1.1"]);
        let mut first = handshake(&gw, config.clone()).await;
        assert_eq!(
            first.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Full)
        );
        // TLS 1.3 tickets arrive after the handshake: let the client read them.
        first
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = first.read_to_end(&mut sink).await;
        let second = handshake(&gw, config).await;
        assert_eq!(
            second.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let gw = TestGateway::start(Options::default()).await;
    let mut plain = TcpStream::connect(gw.addr).await.unwrap();
    plain
        .write_all(b"GET /gateway/default/livy/v1/batches HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Answered as nginx does: a 400 saying to use https, then closed.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "not closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"], "plain_http");
    assert!(body["msg"].as_str().unwrap().contains("https"));
    let r = gw
        .client()
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/batches", "")
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_while_others_are_served() {
    let gw =
        TestGateway::start(Options::default().with(|c| c.server.handshake_timeout = secs(1))).await;
    let mut stalled = TcpStream::connect(gw.addr).await.unwrap();
    // Others are served while it hangs.
    let r = gw
        .client()
        .as_user("alice", Method::GET, "/gateway/default/livy/v1/batches", "")
        .await;
    assert_eq!(r.status, 200);
    assert!(
        closed_within(&mut stalled, Duration::from_secs(10)).await,
        "the silent connection was not closed"
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests() {
    let gw = TestGateway::start(Options::backend(Backend::Recorder(Arc::new(|_| {
        Reply::After(
            Duration::from_millis(500),
            json_reply(http::StatusCode::OK, r#"{"slow":true}"#),
        )
    }))))
    .await;
    let c = gw.client();
    let in_flight = tokio::spawn(async move {
        c.as_user("admin", Method::GET, "/gateway/default/livy/v1/batches", "")
            .await
    });
    // Wait until the request has reached the upstream, then shut down.
    for _ in 0..200 {
        if !gw.recorded().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gw.recorded().len(), 1);
    let addr = gw.addr;
    gw.shutdown().await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["slow"], true);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}
