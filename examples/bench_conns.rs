//! Opens many keep-alive TLS connections to a proxy and holds them idle, for the
//! benchmark's memory-per-connection figures (`bench/run.sh`).
//!
//! Each connection makes one request (so the proxy has fully set it up), then stays
//! open. Prints `ready N` when all are established and holds them until its standard
//! input closes.
//!
//! Usage: `bench_conns --addr 127.0.0.1:8443 --ca ca.crt --count 10000 --path /... --header 'Authorization: Basic …'`

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

#[tokio::main]
async fn main() {
    let mut addr = String::new();
    let mut ca = String::new();
    let mut count = 1000usize;
    let mut path = "/".to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = value(),
            "--ca" => ca = value(),
            "--count" => count = value().parse().expect("a number"),
            "--path" => path = value(),
            "--header" => {
                let h = value();
                let (n, v) = h.split_once(':').expect("Name: value");
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr: std::net::SocketAddr = addr.parse().expect("--addr host:port");
    let headers = Arc::new(headers);

    let mut held = Vec::with_capacity(count);
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..count {
        let (connector, headers, path, limit) = (
            connector.clone(),
            headers.clone(),
            path.clone(),
            limit.clone(),
        );
        tasks.spawn(async move {
            let _permit = limit.acquire().await.expect("semaphore");
            let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
            let tls = connector
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await
                .ok()?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .ok()?;
            let driver = tokio::spawn(conn);
            let mut request = http::Request::get(path.as_str()).header("host", "localhost");
            for (n, v) in headers.iter() {
                request = request.header(n.as_str(), v.as_str());
            }
            let response = sender
                .send_request(request.body(Empty::<Bytes>::new()).ok()?)
                .await
                .ok()?;
            let ok = response.status().is_success();
            let _ = response.into_body().collect().await;
            ok.then_some((sender, driver))
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Ok(Some(conn)) = result {
            held.push(conn);
        }
    }
    println!("ready {}", held.len());
    // Hold until stdin closes.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .expect("stdin");
    drop(held);
}
