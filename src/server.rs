//! The public listener: accepting TCP connections, the TLS handshake, serving HTTP/1.1
//! and HTTP/2 on each connection, and graceful shutdown.
//!
//! A handshake that does not finish within the configured time is dropped, and a
//! failed handshake (plain HTTP sent to the TLS port, say) ends that connection only.
//! On shutdown the listener stops accepting, every connection is asked to finish its
//! in-flight requests, and the gateway waits at most the grace period for them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ServerConfig};
use crate::error::StartupError;
use crate::gateway::{ConnInfo, Gateway};

/// How often expired login sessions are swept from memory.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Connection-level settings taken from `[server]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub h2_max_concurrent_streams: u32,
}

impl From<&ServerConfig> for Settings {
    fn from(c: &ServerConfig) -> Self {
        Self {
            handshake_timeout: Duration::from_secs(c.handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
            shutdown_grace: Duration::from_secs(c.shutdown_grace_secs),
            h2_max_concurrent_streams: c.h2_max_concurrent_streams,
        }
    }
}

/// Everything needed to serve, built from a config: for `serve` and `check-config`.
pub struct Prepared {
    pub gateway: Arc<Gateway>,
    pub tls: Arc<rustls::ServerConfig>,
    pub settings: Settings,
}

impl Prepared {
    /// Loads certificates and users and builds the gateway, without binding anything.
    pub fn from_config(config: &Config) -> Result<Self, StartupError> {
        Ok(Self {
            tls: crate::tls::server_config(&config.server.tls_cert, &config.server.tls_key)?,
            gateway: Arc::new(Gateway::from_config(config)?),
            settings: Settings::from(&config.server),
        })
    }
}

/// Checks everything a config names (certificate, key, users, upstream URLs) without
/// binding ports or opening the state the running gateway holds (the ownership store
/// is locked while it runs), for `check-config`.
pub fn check(config: &Config) -> Result<(), StartupError> {
    crate::tls::server_config(&config.server.tls_cert, &config.server.tls_key)?;
    crate::auth::Authenticator::load(&config.auth)?;
    config.upstream_uris();
    Ok(())
}

/// Binds the configured address and serves until `shutdown` completes.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartupError> {
    let prepared = Prepared::from_config(config)?;
    std::fs::create_dir_all(&config.server.data_dir).map_err(|source| StartupError::Io {
        what: "data directory",
        path: config.server.data_dir.clone(),
        source,
    })?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.server.listen,
            source,
        })?;
    tracing::info!(
        listen = %listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?,
        topology = %config.gateway.topology,
        upstreams = ?config.livy.upstreams,
        "livy-gateway listening"
    );
    let hangups = tokio::spawn(reopen_logs_on_sighup(prepared.gateway.clone()));
    run(listener, prepared, shutdown).await;
    hangups.abort();
    Ok(())
}

/// SIGHUP reopens the audit log, so logrotate can move it away.
async fn reopen_logs_on_sighup(gateway: Arc<Gateway>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; the audit log will not be reopened");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reopening the audit log");
        gateway.reopen_logs();
    }
}

/// Serves connections from `listener` until `shutdown` completes, then drains.
pub async fn run(listener: TcpListener, prepared: Prepared, shutdown: impl Future<Output = ()>) {
    let Prepared {
        gateway,
        tls,
        settings,
    } = prepared;
    let acceptor = TlsAcceptor::from(tls);
    let local_port = listener
        .local_addr()
        .map(|a| HeaderValue::from(a.port()))
        .unwrap_or(HeaderValue::from_static("443"));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.h2_max_concurrent_streams);
    let graceful = GracefulShutdown::new();

    let sweeper = {
        let sessions = gateway.sessions().clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SESSION_SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                sessions.sweep();
            }
        })
    };

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let conn = ConnInfo {
            peer,
            local_port: local_port.clone(),
        };
        tokio::spawn(serve_connection(
            stream,
            conn,
            acceptor.clone(),
            builder.clone(),
            gateway.clone(),
            settings.handshake_timeout,
            graceful.watcher(),
        ));
    }
    drop(listener);
    sweeper.abort();
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "connections still open after the grace period; closing them");
    }
}

async fn serve_connection(
    stream: TcpStream,
    conn: ConnInfo,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    gateway: Arc<Gateway>,
    handshake_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let _ = stream.set_nodelay(true);
    let peer: SocketAddr = conn.peer;
    let tls_stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let service = service_fn(move |request| {
        let gateway = gateway.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(gateway.handle(request, &conn).await) }
    });
    let connection = builder.serve_connection(TokioIo::new(tls_stream), service);
    if let Err(error) = watcher.watch(connection.into_owned()).await {
        tracing::debug!(%peer, error = %error, "connection ended with an error");
    }
}
