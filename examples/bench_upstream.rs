//! A fast static stand-in for Livy, for the benchmark (`bench/run.sh`): every proxy
//! under test forwards to it, so all see the same upstream.
//!
//! `GET /batches/1` (and anything else) → a fixed Livy batch view; `POST /batches`
//! → 201 with that view under a new id each time (as Livy numbers batches), so a
//! gateway that records owners really writes one per creation; `GET /batches/1/log` → a log of `--log-bytes` bytes,
//! streamed in 64 KiB chunks; `GET /version` → Livy's version object.
//!
//! Usage: `bench_upstream --listen 127.0.0.1:18998 [--log-bytes 1073741824]`

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

const VIEW: &str = r#"{"id":1,"name":null,"owner":null,"proxyUser":"bench","state":"running","appId":"application_1491850285904_0001","appInfo":{"driverLogUrl":null,"sparkUiUrl":"http://rm:8088/proxy/application_1491850285904_0001/"},"log":["17/04/14 19:32:14 INFO Client: Application report for application_1491850285904_0001 (state: RUNNING)"]}"#;

/// A JSON log body of about `remaining` bytes, generated as it is sent.
struct LogBody {
    remaining: u64,
    started: bool,
    line: Bytes,
}

impl Body for LogBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.started {
            self.started = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                br#"{"id":1,"from":0,"total":0,"log":["start""#,
            )))));
        }
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = self.line.len() as u64;
        if self.remaining <= chunk {
            self.remaining = 0;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"]}")))));
        }
        self.remaining -= chunk;
        Poll::Ready(Some(Ok(Frame::data(self.line.clone()))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Full::new(body.into()).boxed())
        .expect("static response")
}

/// The id of the next batch created.
static NEXT_ID: AtomicU64 = AtomicU64::new(2);

async fn handle(
    request: Request<Incoming>,
    log_bytes: u64,
    line: Bytes,
) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    // Read (and drop) any request body.
    let _ = request.into_body().collect().await;
    Ok(match (method, path.as_str()) {
        (Method::POST, "/batches") => {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let mut r = json(
                StatusCode::CREATED,
                VIEW.replacen(r#""id":1"#, &format!(r#""id":{id}"#), 1),
            );
            r.headers_mut().insert(
                "location",
                http::HeaderValue::from_str(&format!("/batches/{id}")).expect("a path"),
            );
            r
        }
        (Method::GET, "/version") => json(
            StatusCode::OK,
            r#"{"version":"0.8.0-incubating","user":"livy","revision":"bench","branch":"bench","date":"","url":""}"#,
        ),
        (Method::GET, p) if p.ends_with("/log") => Response::builder()
            .header("content-type", "application/json;charset=utf-8")
            .body(
                LogBody {
                    remaining: log_bytes,
                    started: false,
                    line,
                }
                .boxed(),
            )
            .expect("static response"),
        _ => json(StatusCode::OK, VIEW),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut listen = "127.0.0.1:18998".to_string();
    let mut log_bytes: u64 = 1 << 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().expect("--listen ADDR"),
            "--log-bytes" => {
                log_bytes = args
                    .next()
                    .expect("--log-bytes N")
                    .parse()
                    .expect("a number")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    // One 64 KiB chunk of log lines, reused for the whole log.
    let mut chunk = String::new();
    while chunk.len() < 64 * 1024 {
        chunk.push_str(r#","17/04/14 19:32:14 INFO Client: Application report for application_1491850285904_0001 (state: RUNNING)""#);
    }
    let line = Bytes::from(chunk);
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("bind");
    eprintln!("bench_upstream listening on {listen}");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let line = line.clone();
        tokio::spawn(async move {
            let service = service_fn(move |r| handle(r, log_bytes, line.clone()));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
