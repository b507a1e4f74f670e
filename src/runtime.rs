//! What the server runs, held so it can be replaced whole on a reload (SIGHUP):
//! the gateway, the TLS configuration and the per-connection settings.
//!
//! Every new connection takes the current TLS configuration and settings; every
//! request, even on an old keep-alive connection, is served by the current gateway,
//! so a removed user is locked out at once. A reload that fails (bad config file,
//! unreadable certificate, bad htpasswd line) changes nothing: the error is logged
//! and counted, and the running configuration stays. Settings bound to the process
//! (listen addresses, the connection cap, the data directory) need a restart; a
//! reload warns when they change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ServerConfig, HYPER_INLINE_HEADERS};
use crate::error::StartupError;
use crate::gateway::Gateway;
use crate::metrics::{Metrics, OutcomeLabels};

/// Per-connection settings from `[server]`.
#[derive(Clone)]
pub struct ConnectionSettings {
    pub acceptor: TlsAcceptor,
    pub http1: http1::Builder,
    pub http2: http2::Builder<TokioExecutor>,
    pub handshake_timeout: Duration,
    /// A connection's first request must arrive within this of its handshake.
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// After this long idle, an HTTP/1.1 connection gives back its buffers; `None`
    /// keeps them.
    pub release_buffers_after: Option<Duration>,
}

/// The swappable whole.
pub struct Active {
    pub gateway: Arc<Gateway>,
    pub connection: Arc<ConnectionSettings>,
}

/// hyper's HTTP/1.1 builder with the server's timeouts and limits. The gateway's own
/// header limits answer with a JSON 431; hyper's hard limits are set well above them.
fn http1_builder(c: &ServerConfig) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(c.header_read_timeout)
        .max_buf_size(hyper_buffer(c));
    // hyper's default limit keeps its header array on the stack; raise it only
    // when the gateway's own limit would come too close.
    if c.max_headers + 16 > HYPER_INLINE_HEADERS {
        builder.max_headers(c.max_headers * 2 + 16);
    }
    builder
}

/// hyper's HTTP/2 builder, with the same header headroom as HTTP/1.1.
fn http2_builder(c: &ServerConfig) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(c.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(hyper_buffer(c)).unwrap_or(u32::MAX));
    builder
}

/// hyper's own header limit (HTTP/1.1 read buffer, HTTP/2 `MAX_HEADER_LIST_SIZE`):
/// sixteen times the gateway's limit, at least 256 KiB. Headers between the two get
/// the gateway's JSON 431 on both protocols; only beyond this one does the protocol
/// layer refuse them itself (hyper's bare 431 on HTTP/1.1; over HTTP/2 the limit is
/// advertised, and clients such as curl refuse to send more). It is also what one
/// connection may make the gateway buffer for a request head.
fn hyper_buffer(c: &ServerConfig) -> usize {
    (c.max_header_bytes * 16).max(256 * 1024)
}

impl Active {
    fn new(config: &Config, gateway: Gateway, tls: Arc<rustls::ServerConfig>) -> Self {
        Self {
            gateway: Arc::new(gateway),
            connection: Arc::new(ConnectionSettings {
                acceptor: TlsAcceptor::from(tls),
                http1: http1_builder(&config.server),
                http2: http2_builder(&config.server),
                handshake_timeout: config.server.handshake_timeout,
                header_read_timeout: config.server.header_read_timeout,
                idle_timeout: config.server.idle_timeout,
                release_buffers_after: Some(config.server.release_idle_buffers_after)
                    .filter(|after| !after.is_zero()),
            }),
        }
    }
}

fn load_tls(config: &Config) -> Result<Arc<rustls::ServerConfig>, StartupError> {
    crate::tls::server_config(&config.server.tls_cert, &config.server.tls_key)
}

/// The running configuration and how to replace it.
pub struct Runtime {
    active: ArcSwap<Active>,
    metrics: Arc<Metrics>,
    /// The file reloads read; `None` for a runtime built from an in-memory config.
    config_path: Option<PathBuf>,
}

impl Runtime {
    /// Loads certificates and users, opens the stores and builds the gateway, without
    /// binding anything.
    pub fn start(config: &Config, config_path: Option<&Path>) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::new());
        let tls = load_tls(config)?;
        let gateway = Gateway::from_config(config, metrics.clone())?;
        Ok(Self {
            active: ArcSwap::from_pointee(Active::new(config, gateway, tls)),
            metrics,
            config_path: config_path.map(Path::to_path_buf),
        })
    }

    /// What serves now.
    pub fn current(&self) -> Arc<Active> {
        self.active.load_full()
    }

    /// The current gateway.
    pub fn gateway(&self) -> Arc<Gateway> {
        self.active.load().gateway.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The config as it now runs.
    pub fn config(&self) -> Config {
        self.active.load().gateway.config().clone()
    }

    /// Re-reads the config file (and the certificate, key and htpasswd it names) and
    /// swaps it in; on any error the running configuration stays.
    pub async fn reload(&self) -> Result<(), StartupError> {
        let result = self.try_reload().await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        self.metrics
            .reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(error) => {
                tracing::error!(%error, "reload failed; keeping the running configuration")
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<(), StartupError> {
        let path = self
            .config_path
            .as_deref()
            .ok_or_else(|| StartupError::Other("no config file to reload from".into()))?;
        let config = Config::load(path)?;
        let current = self.active.load();
        let old = current.gateway.config();
        for (what, changed) in [
            ("server.listen", config.server.listen != old.server.listen),
            (
                "server.max_connections",
                config.server.max_connections != old.server.max_connections,
            ),
            (
                "server.shutdown_grace_secs",
                config.server.shutdown_grace != old.server.shutdown_grace,
            ),
            (
                "server.max_connections_per_address",
                config.server.max_connections_per_address != old.server.max_connections_per_address,
            ),
            ("admin", config.admin != old.admin),
        ] {
            if changed {
                tracing::warn!(
                    setting = what,
                    "changed in the config file: takes effect only after a restart"
                );
            }
        }
        let tls = load_tls(&config)?;
        let gateway = current.gateway.reloaded(&config)?;
        let next = Arc::new(Active::new(&config, gateway, tls));
        self.active.store(next.clone());
        current.gateway.forget_removed_upstreams(&next.gateway);
        current
            .gateway
            .end_sessions_of_removed_users(&next.gateway)
            .await;
        Ok(())
    }
}
