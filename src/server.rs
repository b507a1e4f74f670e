//! The public listener: accepting TCP connections within the connection cap, handing
//! each to `connection::serve`, periodic housekeeping, reloads on SIGHUP, and
//! graceful shutdown.
//!
//! A connection beyond `server.max_connections`, or beyond
//! `server.max_connections_per_address` from one client address, is closed at once,
//! before any TLS work. On shutdown the listener stops accepting, every connection is asked to
//! finish its in-flight requests and close, and the gateway waits at most the grace
//! period for them.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::connection;
use crate::error::StartupError;
use crate::gateway::ConnInfo;
use crate::metrics::{Metrics, ReasonLabels};
use crate::runtime::Runtime;

/// How often expired sessions, idle rate-limit keys and old login failures are
/// dropped from memory (and suppressed warnings reported).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// Checks everything a config names (certificate, key, users, Livy's trust)
/// without binding ports or opening the state the running gateway holds (the
/// ownership store is locked while it runs), for `check-config`.
pub fn check(config: &Config) -> Result<(), StartupError> {
    crate::tls::server_config(&config.server.tls_cert, &config.server.tls_key)?;
    crate::auth::verifier(&config.auth, &Arc::new(crate::metrics::Metrics::new()))?;
    crate::auth::negotiate::from_config(config.auth.kerberos.as_ref())?;
    crate::upstream::Upstream::from_config(&config.livy, &crate::metrics::Metrics::new())?;
    if config.state.backend == crate::config::StateBackend::Redis {
        // Reads the password and CA files; connects only when used.
        crate::state::redis::Redis::connect(
            &config.state,
            Arc::new(crate::metrics::Metrics::new()),
        )?;
    }
    Ok(())
}

/// Reaches what `config` names over the network (the directory, with its service
/// account; Redis) and says what it found, for `check-config --probe`.
pub async fn probe(config: &Config) -> Result<Vec<String>, StartupError> {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let verifier = crate::auth::verifier(&config.auth, &metrics)?;
    let mut reports = match verifier.probe().await {
        None => vec!["nothing to probe in [auth] (no directory configured)".to_string()],
        Some(Ok(report)) => report.lines().map(str::to_owned).collect(),
        Some(Err(error)) => return Err(StartupError::Other(format!("probe failed: {error}"))),
    };
    if let Some(tickets) = crate::auth::negotiate::from_config(config.auth.kerberos.as_ref())? {
        let report = tickets
            .acceptor
            .probe()
            .await
            .map_err(|error| StartupError::Other(format!("probe failed: {error}")))?;
        reports.push(report);
    }
    let livy = crate::upstream::Upstream::from_config(&config.livy, &metrics)?;
    match crate::upstream::Livy::probe(&livy).await {
        Ok(Some(report)) => reports.push(report),
        Ok(None) => {}
        Err(error) => return Err(StartupError::Other(format!("probe failed: {error}"))),
    }
    if config.state.backend == crate::config::StateBackend::Redis {
        let redis = crate::state::redis::Redis::connect(&config.state, metrics)?;
        redis
            .ping()
            .await
            .map_err(|error| StartupError::Other(format!("probe failed: {error}")))?;
        reports.push(format!("redis at {} answers", config.state.redis_url));
    }
    Ok(reports)
}

/// Binds the configured addresses (TLS and admin) and serves until `shutdown`
/// completes. SIGHUP reloads the configuration from `config_path`.
pub async fn serve(
    config: &Config,
    config_path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartupError> {
    let runtime = Arc::new(Runtime::start(config, Some(config_path))?);
    let listener = bind(config.server.listen).await?;
    let admin = if config.admin.enabled {
        let admin_listener = bind(config.admin.listen).await?;
        tracing::info!(listen = %config.admin.listen, "admin listener (metrics, health) up");
        Some(tokio::spawn(crate::admin::run(
            admin_listener,
            runtime.clone(),
            std::future::pending(),
        )))
    } else {
        None
    };
    tracing::info!(
        listen = %config.server.listen,
        topology = %config.gateway.topology,
        upstreams = %config
            .livy
            .upstreams
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        "livy-gateway listening"
    );
    let hangups = tokio::spawn(reload_on_sighup(runtime.clone()));
    run(listener, runtime, shutdown).await;
    hangups.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    Ok(())
}

/// A listener on `addr`, or a startup error naming it.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// SIGHUP reloads the configuration (which also reopens the access and audit logs,
/// so logrotate can move them away).
async fn reload_on_sighup(runtime: Arc<Runtime>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reloads are unavailable");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        let _ = runtime.reload().await;
    }
}

/// Counts a refused connection (closed at once, before any TLS work), with a
/// warning on the 1st, 2nd, 4th, 8th … of each reason.
fn refuse(metrics: &Metrics, reason: &'static str, peer: std::net::SocketAddr, max: usize) {
    let counter = metrics
        .refused_connections
        .get_or_create(&ReasonLabels { reason })
        .clone();
    let refused = counter.inc() + 1;
    if refused.is_power_of_two() {
        tracing::warn!(%peer, refused, max, reason, "connection limit reached; refusing connections");
    }
}

/// Open connections per client address, within `server.max_connections_per_address`
/// (0: no limit), so one address cannot take every slot.
struct AddressSlots {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in [`AddressSlots`], given back when dropped.
struct AddressSlot {
    ip: IpAddr,
    open: Option<Arc<Mutex<HashMap<IpAddr, usize>>>>,
}

impl AddressSlots {
    fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// A place for a connection from `ip`, or `None` when it has its share.
    fn take(&self, ip: IpAddr) -> Option<AddressSlot> {
        if self.max == 0 {
            return Some(AddressSlot { ip, open: None });
        }
        let mut open = self.open.lock().expect("address slots lock");
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            ip,
            open: Some(self.open.clone()),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().expect("address slots lock");
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves connections from `listener` until `shutdown` completes, then drains and
/// writes out the access and audit lines still queued.
pub async fn run(listener: TcpListener, runtime: Arc<Runtime>, shutdown: impl Future<Output = ()>) {
    let config = runtime.config();
    let max_connections = config.server.max_connections;
    let grace = config.server.shutdown_grace;
    // One permit per open connection: the cap, and what the drain waits for.
    let slots = Arc::new(Semaphore::new(max_connections));
    let per_address = AddressSlots::new(config.server.max_connections_per_address);
    let (closing, closing_rx) = watch::channel(false);
    let metrics = runtime.metrics().clone();

    let housekeeping = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
            loop {
                tick.tick().await;
                runtime.gateway().housekeeping();
                crate::logging::report_suppressed();
            }
        })
    };
    // The policy's upkeep (quota counts, idle sessions): at start, then each
    // interval; a round that runs long delays the next rather than overlapping.
    let upkeep = {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::gateway::upkeep::UPKEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                runtime.gateway().upkeep().await;
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
            refuse(&metrics, "capacity", peer, max_connections);
            continue;
        };
        let Some(per_address) = per_address.take(peer.ip()) else {
            refuse(
                &metrics,
                "per_address",
                peer,
                config.server.max_connections_per_address,
            );
            continue;
        };
        let local = stream.local_addr().unwrap_or(peer);
        let conn = ConnInfo::new(peer, local);
        let (runtime, closing_rx, metrics) = (runtime.clone(), closing_rx.clone(), metrics.clone());
        metrics.active_connections.inc();
        // The connection's future is made inside the task so that the task holds it
        // once (every idle connection keeps its task).
        tokio::spawn(async move {
            connection::serve(stream, conn, runtime, closing_rx).await;
            metrics.active_connections.dec();
            drop(per_address);
            drop(permit);
        });
    }
    drop(listener);
    housekeeping.abort();
    upkeep.abort();
    let open = max_connections - slots.available_permits();
    tracing::info!(connections = open, "shutting down: draining connections");
    let _ = closing.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the grace period; closing them"
        );
    }
    // Every request has been answered (or the grace ran out): the lines they queued
    // go to disk before the process ends.
    runtime.gateway().finish_logs();
}
