//! Which Livy server a request goes to, kept apart from how it is sent.
//!
//! Requests go to the server that last answered; when a connection cannot be made
//! and the request can be replayed (it has no body), the others are tried in the
//! configured order. Each server has its own connection pool; `https://` servers
//! share one TLS client configuration, trusting `livy.ca_file` or the system roots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::pool::{Pool, TlsTarget};
use crate::config::LivyConfig;
use crate::error::StartupError;

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
}

impl Peer {
    /// Its host name, without the port.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub fn host_name(&self) -> &str {
        &self.host_name
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
    /// The first configured server.
    pub fn first(&self) -> Option<&Peer> {
        self.peers.first()
    }

    pub fn new(config: &LivyConfig) -> Result<Self, StartupError> {
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
                    authority,
                })
            })
            .collect::<Result<Vec<_>, StartupError>>()?;
        Ok(Self {
            origins: config.upstreams.iter().map(|u| u.origin()).collect(),
            peers,
            active: AtomicUsize::new(0),
        })
    }

    /// The servers to try, in order: the active one first, then (for a request that
    /// can be replayed) the others.
    pub fn in_order(&self, all: bool) -> impl ExactSizeIterator<Item = &Peer> {
        let first = self.active.load(Ordering::Relaxed) % self.peers.len();
        let count = if all { self.peers.len() } else { 1 };
        (0..count).map(move |n| &self.peers[(first + n) % self.peers.len()])
    }

    /// `peer` answered: it is where the next requests go.
    pub fn answered(&self, peer: &Peer) {
        self.active.store(peer.index, Ordering::Relaxed);
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
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|source| StartupError::Io {
                what: "Livy CA file",
                path: path.clone(),
                source,
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| StartupError::Pem {
                    what: "Livy CA file",
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| StartupError::Pem {
                    what: "Livy CA file",
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system CA certificate could not be read");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(
                added,
                "system CA certificates trusted for https:// Livy servers"
            );
        }
    }
    if roots.is_empty() {
        return Err(StartupError::Tls(
            "no CA certificate to trust for https:// Livy servers (set livy.ca_file)".into(),
        ));
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StartupError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}
