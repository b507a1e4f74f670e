//! The public listener: accepting TCP connections within the connection cap, handing
//! each to [`connection::serve`], periodic housekeeping, and graceful shutdown.
//!
//! A connection beyond `server.max_connections` is closed at once, before any TLS
//! work. On shutdown the listener stops accepting, every connection is asked to
//! finish its in-flight requests and close, and the gateway waits at most the grace
//! period for them.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ServerConfig};
use crate::connection::{self, ConnectionSettings};
use crate::error::StartupError;
use crate::gateway::{ConnInfo, Gateway};

/// How often expired sessions, idle rate-limit keys and old login failures are
/// dropped from memory.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// Connection-level settings taken from `[server]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub h2_max_concurrent_streams: u32,
    pub max_connections: usize,
    /// The gateway's own header limits (checked per request, with a JSON 431);
    /// hyper's hard limits are set well above them.
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl From<&ServerConfig> for Settings {
    fn from(c: &ServerConfig) -> Self {
        Self {
            handshake_timeout: Duration::from_secs(c.handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            shutdown_grace: Duration::from_secs(c.shutdown_grace_secs),
            h2_max_concurrent_streams: c.h2_max_concurrent_streams,
            max_connections: c.max_connections,
            max_header_bytes: c.max_header_bytes,
            max_headers: c.max_headers,
        }
    }
}

/// Everything needed to serve, built from a config.
pub struct Prepared {
    pub gateway: Arc<Gateway>,
    pub tls: Arc<rustls::ServerConfig>,
    pub settings: Settings,
}

impl Prepared {
    /// Loads certificates and users, opens the stores and builds the gateway, without
    /// binding anything.
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
    crate::auth::Authenticator::load(&config.auth, &config.login)?;
    config.upstream_uris();
    Ok(())
}

/// Binds the configured address and serves until `shutdown` completes.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartupError> {
    let prepared = Prepared::from_config(config)?;
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

fn http_builder(settings: &Settings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size((settings.max_header_bytes * 4).max(64 * 1024))
        .max_headers(settings.max_headers * 2 + 16);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.h2_max_concurrent_streams)
        .max_header_list_size((settings.max_header_bytes * 4).max(64 * 1024) as u32);
    builder
}

/// Serves connections from `listener` until `shutdown` completes, then drains.
pub async fn run(listener: TcpListener, prepared: Prepared, shutdown: impl Future<Output = ()>) {
    let Prepared {
        gateway,
        tls,
        settings,
    } = prepared;
    let local_port = listener
        .local_addr()
        .map(|a| HeaderValue::from(a.port()))
        .unwrap_or(HeaderValue::from_static("443"));
    let conn_settings = ConnectionSettings {
        acceptor: TlsAcceptor::from(tls),
        builder: http_builder(&settings),
        handshake_timeout: settings.handshake_timeout,
        idle_timeout: settings.idle_timeout,
    };
    // One permit per open connection: the cap, and what the drain waits for.
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let refused = AtomicU64::new(0);
    let (closing, closing_rx) = watch::channel(false);

    let housekeeping = {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            loop {
                tick.tick().await;
                gateway.housekeeping();
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
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(%peer, refused = n, max = settings.max_connections, "connection limit reached; refusing connections");
            }
            drop(stream);
            continue;
        };
        let conn = ConnInfo {
            peer,
            local_port: local_port.clone(),
        };
        let task = connection::serve(
            stream,
            conn,
            gateway.clone(),
            conn_settings.clone(),
            closing_rx.clone(),
        );
        tokio::spawn(async move {
            task.await;
            drop(permit);
        });
    }
    drop(listener);
    housekeeping.abort();
    let open = settings.max_connections - slots.available_permits();
    tracing::info!(connections = open, "shutting down: draining connections");
    let _ = closing.send(true);
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(settings.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?settings.shutdown_grace, "connections still open after the grace period; closing them");
    }
}
