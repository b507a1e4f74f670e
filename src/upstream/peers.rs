//! Which Livy server a request goes to, kept apart from how it is sent.
//!
//! One server is active at a time: the one health checks ([`super::health`]) found
//! answering, or, between checks, the one that last answered. Requests go to it;
//! when no connection can be made to it, the request (nothing of which was sent)
//! goes to the others in the configured order. A server answering 307 (a passive
//! Livy in an HA pair) is on standby, one that cannot be reached is down. Each
//! server has its own connection pool; `https://` servers share one TLS client
//! configuration, trusting `livy.ca_file` or the system roots.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rustls_pki_types::ServerName;

use super::pool::{Pool, TlsTarget};
use crate::config::LivyConfig;
use crate::error::StartupError;
use crate::metrics::{Metrics, UpstreamLabels, UpstreamOutcomeLabels};

/// One Livy server.
pub struct Peer {
    /// Its place in the configured order.
    index: usize,
    /// `host:port`, for the logs.
    pub authority: String,
    /// The `Host` header it is sent.
    pub host: HeaderValue,
    /// Its host name alone (Livy's Kerberos principal is `<service>/<host name>`).
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    host_name: String,
    pub pool: Arc<Pool>,
    /// What was last learnt of it ([`Health`] as a number).
    health: AtomicU8,
    /// Its series, taken once (a family lookup on every request costs).
    series: PeerSeries,
}

/// One server's metrics.
struct PeerSeries {
    up: Gauge,
    active: Gauge,
    outcomes: [Counter; Outcome::COUNT],
}

/// How one attempt at a server ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Answered = 0,
    /// No connection (nothing sent).
    Unreachable = 1,
    /// Failed on an open connection.
    Failed = 2,
    /// No answer within the response timeout.
    Timeout = 3,
    /// Answered with a redirection to another server, which the gateway followed.
    Redirected = 4,
}

impl Outcome {
    /// The `outcome` label of each.
    pub fn labels() -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().map(|(_, label)| label)
    }

    const COUNT: usize = 5;
    const ALL: [(Outcome, &'static str); Outcome::COUNT] = [
        (Outcome::Answered, "answered"),
        (Outcome::Unreachable, "unreachable"),
        (Outcome::Failed, "failed"),
        (Outcome::Timeout, "timeout"),
        (Outcome::Redirected, "redirected"),
    ];
}

impl PeerSeries {
    fn new(metrics: &Metrics, upstream: &str) -> Self {
        let labels = UpstreamLabels {
            upstream: upstream.to_owned(),
        };
        Self {
            up: metrics.upstream_up.get_or_create(&labels).clone(),
            active: metrics.upstream_active.get_or_create(&labels).clone(),
            outcomes: Outcome::ALL.map(|(_, outcome)| {
                metrics
                    .upstream_attempts
                    .get_or_create(&UpstreamOutcomeLabels {
                        upstream: upstream.to_owned(),
                        outcome,
                    })
                    .clone()
            }),
        }
    }
}

/// What the gateway knows of one Livy server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not asked yet.
    Unknown = 0,
    /// It answers requests.
    Up = 1,
    /// It answers with a redirection to another server (a passive Livy).
    Standby = 2,
    /// No connection could be made, or it failed its check.
    Down = 3,
}

impl Health {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => Health::Up,
            2 => Health::Standby,
            3 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// As `/readyz` and the logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Standby => "standby",
            Health::Down => "down",
        }
    }
}

impl Peer {
    /// Its host name, without the port.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// What was last learnt of it.
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Relaxed))
    }

    /// Counts one attempt at it.
    pub fn count(&self, outcome: Outcome) {
        self.series.outcomes[outcome as usize].inc();
    }
}

/// The configured Livy servers.
pub struct Peers {
    peers: Vec<Peer>,
    /// `scheme://host:port` of each, for recognising Livy's absolute links.
    origins: Vec<String>,
    /// Index of the server that last answered.
    active: AtomicUsize,
}

impl Peers {
    pub fn new(config: &LivyConfig, metrics: &Metrics) -> Result<Self, StartupError> {
        let needs_tls = config.upstreams.iter().any(|u| u.is_https());
        let connector = match needs_tls {
            true => Some(tls_connector(config)?),
            false => None,
        };
        let peers = config
            .upstreams
            .iter()
            .enumerate()
            .map(|(index, url)| {
                let tls = match (&connector, url.is_https()) {
                    (Some(connector), true) => Some(TlsTarget {
                        connector: connector.clone(),
                        server_name: ServerName::try_from(url.host().to_owned()).map_err(|_| {
                            StartupError::Other(format!(
                                "livy.upstreams: {url}: not a name a certificate can carry"
                            ))
                        })?,
                    }),
                    _ => None,
                };
                let authority = url.authority().to_string();
                Ok(Peer {
                    index,
                    host: HeaderValue::from_str(&authority)
                        .expect("an authority is a valid header value"),
                    host_name: url
                        .host()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned(),
                    pool: Pool::new(
                        format!("{}:{}", url.host(), url.port()),
                        tls,
                        config.pool_max_idle_per_host,
                        config.pool_idle_timeout,
                        config.connect_timeout,
                    ),
                    series: PeerSeries::new(metrics, &authority),
                    authority,
                    health: AtomicU8::new(Health::Unknown as u8),
                })
            })
            .collect::<Result<Vec<_>, StartupError>>()?;
        for (index, peer) in peers.iter().enumerate() {
            peer.series.active.set(i64::from(index == 0));
        }
        Ok(Self {
            origins: config.upstreams.iter().map(|u| u.origin()).collect(),
            peers,
            active: AtomicUsize::new(0),
        })
    }

    /// Every server, in the order to try them: the active one first, then the
    /// others in the configured order after it.
    pub fn in_order(&self) -> impl ExactSizeIterator<Item = &Peer> {
        let first = self.active.load(Ordering::Relaxed) % self.peers.len();
        (0..self.peers.len()).map(move |n| &self.peers[(first + n) % self.peers.len()])
    }

    /// Every server, in the configured order.
    pub fn all(&self) -> &[Peer] {
        &self.peers
    }

    /// Whether requests go to `peer` now.
    pub fn is_active(&self, peer: &Peer) -> bool {
        self.active.load(Ordering::Relaxed) % self.peers.len() == peer.index
    }

    /// The server requests go to now.
    pub fn active(&self) -> &Peer {
        &self.peers[self.active.load(Ordering::Relaxed) % self.peers.len()]
    }

    /// The configured server whose origin `location` (an absolute URL) starts
    /// with, if any.
    pub fn named_by(&self, location: &str) -> Option<&Peer> {
        let uri: http::Uri = location.parse().ok()?;
        let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
        let index = self
            .origins
            .iter()
            .position(|o| o.eq_ignore_ascii_case(&origin))?;
        self.peers.get(index)
    }

    /// `peer` answered a request: it is up, and where the next requests go.
    pub fn answered(&self, peer: &Peer) {
        peer.count(Outcome::Answered);
        if peer.health.load(Ordering::Relaxed) != Health::Up as u8 {
            self.learnt(peer, Health::Up);
        }
        self.make_active(peer);
    }

    fn make_active(&self, peer: &Peer) {
        // Read first: every request lands here, and a write each time would bounce
        // the line between cores for nothing.
        if self.active.load(Ordering::Relaxed) == peer.index {
            return;
        }
        let before = self.active.swap(peer.index, Ordering::Relaxed);
        if before != peer.index {
            self.peers[before].series.active.set(0);
            peer.series.active.set(1);
        }
    }

    /// Records what was learnt of `peer` (from a request or a check).
    pub fn learnt(&self, peer: &Peer, health: Health) {
        let before = peer.health.swap(health as u8, Ordering::Relaxed);
        peer.series.up.set(i64::from(health == Health::Up));
        if before != health as u8 {
            let (upstream, name) = (&peer.authority, health.name());
            match health {
                Health::Up => tracing::info!(%upstream, health = name, "Livy server changed state"),
                _ => tracing::warn!(%upstream, health = name, "Livy server changed state"),
            }
        }
    }

    /// After a round of health checks: the active server stays while it is up;
    /// otherwise the first one up in the configured order takes over. With none
    /// up, nothing changes (requests still try each in turn).
    pub fn choose(&self) {
        if self.active().health() == Health::Up {
            return;
        }
        if let Some(next) = self.peers.iter().find(|p| p.health() == Health::Up) {
            tracing::warn!(from = %self.active().authority, to = %next.authority, "active Livy server changed");
            self.make_active(next);
        }
    }

    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Closes idle connections past their time.
    pub fn housekeeping(&self) {
        for peer in &self.peers {
            peer.pool.reap();
        }
    }
}

/// The TLS client for `https://` Livy servers: `livy.ca_file`'s certificates, or the
/// system's roots; HTTP/1.1 only.
fn tls_connector(config: &LivyConfig) -> Result<tokio_rustls::TlsConnector, StartupError> {
    let mut tls = crate::tls::client_config(config.ca_file.as_deref(), "Livy CA file")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}
