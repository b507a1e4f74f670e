//! Serving the simulator: Livy's API (and the stand-in YARN pages and Livy UI)
//! on one listener, the stand-in history server on another, plain or TLS.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::Simulator;

/// Which of the simulator's servers a listener serves.
#[derive(Clone, Copy)]
enum Role {
    Livy,
    History,
}

/// Serves the simulator on `listener` (plain HTTP/1.1 and h2c) until `shutdown`.
pub async fn run(listener: TcpListener, sim: Arc<Simulator>, shutdown: impl Future<Output = ()>) {
    serve(listener, sim, Role::Livy, None, shutdown).await
}

/// Serves the simulator's stand-in Spark History Server on `listener` (plain
/// HTTP/1.1 and h2c) until `shutdown`.
pub async fn run_history(
    listener: TcpListener,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()>,
) {
    serve(listener, sim, Role::History, None, shutdown).await
}

/// Serves the simulator over TLS (HTTP/1.1 and HTTP/2) until `shutdown`: a Livy,
/// ResourceManager and NodeManager on https, as in a cluster whose
/// `yarn.http.policy` is `HTTPS_ONLY`.
pub async fn run_tls(
    listener: TcpListener,
    sim: Arc<Simulator>,
    tls: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    serve(listener, sim, Role::Livy, Some(tls), shutdown).await
}

/// A connection's stream, plain or TLS (one type for both: the simulator's cost
/// of a dynamic call is nothing to its users).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

async fn serve(
    listener: TcpListener,
    sim: Arc<Simulator>,
    role: Role,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "livy-sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let sim = sim.clone();
            async move {
                Ok::<_, Infallible>(match role {
                    Role::Livy => sim.handle(request).await,
                    Role::History => sim.handle_history(&request),
                })
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                Some(tls) => match tls.accept(stream).await {
                    Ok(stream) => Box::new(stream),
                    Err(_) => return,
                },
            };
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}
