//! Idle HTTP/1.1 keep-alive connections give back their HTTP buffers
//! (`server.release_idle_buffers_after_ms`), and nothing is lost or cut around a
//! release: the next request on the same connection, a response that pauses while
//! streaming, a request head that arrives in pieces, a shutdown while released.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const RELEASED: &str = "livy_gateway_released_connections";

fn quick_release() -> Options {
    Options::default()
        .with(|c| c.server.release_idle_buffers_after = std::time::Duration::from_millis(50))
}

/// Waits (bounded) until the gateway reports `n` released connections.
async fn released(gw: &TestGateway, n: f64) -> bool {
    for _ in 0..200 {
        if metric(&scrape(gw).await, RELEASED) == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One GET on an existing HTTP/1.1 connection: status and body.
async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    auth: &str,
) -> (u16, Bytes) {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", auth)
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// One HTTP/1.1 keep-alive connection to `gw`: its sender and its driver task.
async fn keep_alive(
    gw: &TestGateway,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tls = gw.client().tls(&[b"http/1.1"]).await;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    (sender, tokio::spawn(conn))
}

#[tokio::test]
async fn a_released_connection_serves_its_next_request() {
    let gw = TestGateway::start(quick_release()).await;
    let (mut sender, driver) = keep_alive(&gw).await;
    let auth = basic("alice", PASSWORD);
    assert_eq!(get(&mut sender, BATCHES, &auth).await.0, 200);
    assert!(
        released(&gw, 1.0).await,
        "the idle connection was not released"
    );
    for _ in 0..3 {
        let (status, body) = get(&mut sender, BATCHES, &auth).await;
        assert_eq!(status, 200);
        assert!(body.starts_with(b"{"), "{body:?}");
    }
    assert!(!driver.is_finished(), "the client's connection ended");
    assert!(released(&gw, 1.0).await, "not released again after use");
}

/// An upstream that answers any request with a chunked body, pausing between its
/// two chunks.
async fn pausing_upstream(pause: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\
                          transfer-encoding: chunked\r\n\r\n6\r\nfirst \r\n",
                    )
                    .await;
                tokio::time::sleep(pause).await;
                let _ = stream.write_all(b"6\r\nsecond\r\n0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_response_that_pauses_while_streaming_is_not_cut() {
    let upstream = pausing_upstream(Duration::from_millis(600)).await;
    let gw = TestGateway::start(quick_release().with_backend(Backend::Urls(vec![upstream]))).await;
    let (mut sender, _driver) = keep_alive(&gw).await;
    let auth = basic("admin", PASSWORD);
    let (status, body) = get(&mut sender, &format!("{BATCHES}/1/log"), &auth).await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"first second");
    // The connection goes on serving afterwards.
    assert_eq!(
        get(&mut sender, &format!("{BATCHES}/1/log"), &auth).await.0,
        200
    );
}

#[tokio::test]
async fn a_request_head_arriving_in_pieces_is_not_cut() {
    let gw = TestGateway::start(quick_release()).await;
    let mut tls = gw.client().tls(&[b"http/1.1"]).await;
    let auth = basic("alice", PASSWORD);
    let request =
        format!("GET {BATCHES} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n\r\n");
    // Twice: on a fresh connection, and on one that was released in between.
    for round in 0..2 {
        let (first, rest) = request.split_at(20);
        tls.write_all(first.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        tls.write_all(rest.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
                .await
                .expect("no answer")
                .unwrap();
            assert!(n > 0, "connection closed in round {round}");
            response.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "round {round}: {text}");
        let length: usize = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("content-length");
        let head_end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut have = response.len() - head_end;
        while have < length {
            have += tls.read(&mut buf).await.unwrap();
        }
        assert!(released(&gw, 1.0).await, "round {round}: not released");
    }
}

#[tokio::test]
async fn shutdown_closes_released_connections_at_once() {
    let gw = TestGateway::start(quick_release()).await;
    let (mut sender, driver) = keep_alive(&gw).await;
    assert_eq!(
        get(&mut sender, BATCHES, &basic("alice", PASSWORD)).await.0,
        200
    );
    assert!(released(&gw, 1.0).await);
    tokio::time::timeout(Duration::from_secs(10), gw.shutdown())
        .await
        .expect("shutdown waited for a released connection");
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
    assert!(ended.is_ok(), "the client's connection is still open");
}

#[tokio::test]
async fn http2_connections_and_a_zero_setting_keep_their_buffers() {
    // HTTP/2 multiplexes streams on one connection and is never released; with the
    // setting at 0, HTTP/1.1 keeps its buffers too. Neither can ever be released,
    // so a wait well past the release time shows none was.
    let h2 = TestGateway::start(quick_release()).await;
    let tls = h2.client().tls(&[b"h2"]).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .uri(format!("https://localhost{BATCHES}"))
        .header("authorization", basic("alice", PASSWORD))
        .body(Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);

    let kept = TestGateway::start(
        Options::default()
            .with(|c| c.server.release_idle_buffers_after = std::time::Duration::from_millis(0)),
    )
    .await;
    let (mut h1, _driver) = keep_alive(&kept).await;
    let auth = basic("alice", PASSWORD);
    assert_eq!(get(&mut h1, BATCHES, &auth).await.0, 200);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(metric(&scrape(&h2).await, RELEASED), 0.0);
    assert_eq!(metric(&scrape(&kept).await, RELEASED), 0.0);
    assert_eq!(get(&mut h1, BATCHES, &auth).await.0, 200);
}
