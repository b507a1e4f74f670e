//! The cluster's YARN web UIs through the gateway (`[yarn]`): the Spark UI behind
//! the ResourceManager's proxy, driver logs on NodeManagers and finished
//! applications on the Spark History Server, so the links in Livy's answers work
//! for users outside the cluster.
//!
//! In a secured cluster the ResourceManager warns anyone but an application's
//! owner before its pages; the cookie that remembers the warning is carried
//! through ([`approval`]).
//!
//! [`Yarn`] holds what a configuration needs: the ResourceManager as an
//! [`Upstream`] (kept-alive connections, Livy's own Kerberos credentials when
//! `[livy.kerberos]` is set, as YARN's web UIs in such a cluster want the same
//! SPNEGO), an upstream per NodeManager made when first needed — only for a
//! `host:port` that `[yarn] nodemanagers` allows, so the gateway never fetches
//! from a host a caller chose — and the rules for links ([`links`], [`html`]).
//! Whose application is whose is learnt from the views the gateway relays
//! ([`apps`]).

pub mod approval;
pub mod apps;
pub mod html;
pub mod links;

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::config::{Config, LivyConfig, UpstreamUrl};
use crate::error::{RequestError, StartupError};
use crate::metrics::Metrics;
use crate::upstream::auth::{self, UpstreamAuth};
use crate::upstream::Upstream;
use apps::Apps;
use links::Links;

/// Why a NodeManager's logs are refused.
const NOT_ALLOWED: &str = "that NodeManager is not one the gateway serves";

/// NodeManagers with connections kept at once (the least recently used go).
const NODE_MANAGERS_KEPT: usize = 256;

/// The YARN web UIs of one configuration.
pub struct Yarn {
    pub links: Arc<Links>,
    /// Owners of applications; outlives a configuration.
    pub apps: Arc<Apps>,
    resourcemanager: Arc<Upstream>,
    /// The Spark History Server, if `[yarn] historyserver` names one.
    historyserver: Option<Arc<Upstream>>,
    /// Settings for each NodeManager's upstream (`[livy]`'s timeouts and pool).
    template: LivyConfig,
    auth: Option<Arc<dyn UpstreamAuth>>,
    nodemanagers: Mutex<LruCache<String, Arc<Upstream>>>,
}

impl Yarn {
    /// The YARN UIs `config` names, if it has `[yarn]`; `apps` carries what an
    /// earlier configuration learnt.
    pub fn from_config(
        config: &Config,
        apps: Arc<Apps>,
        metrics: &Metrics,
    ) -> Result<Option<Self>, StartupError> {
        let Some(yarn) = &config.yarn else {
            return Ok(None);
        };
        let auth = auth::from_config(&config.livy)?;
        let template = LivyConfig {
            // One server each: nothing to check or choose between.
            health_check_interval: std::time::Duration::ZERO,
            ..config.livy.clone()
        };
        let resourcemanager = Arc::new(Upstream::new(
            &LivyConfig {
                upstreams: vec![yarn.resourcemanager.clone()],
                ..template.clone()
            },
            auth.clone(),
            metrics,
        )?);
        let historyserver = match &yarn.historyserver {
            Some(url) => Some(Arc::new(Upstream::new(
                &LivyConfig {
                    upstreams: vec![url.clone()],
                    ..template.clone()
                },
                auth.clone(),
                metrics,
            )?)),
            None => None,
        };
        Ok(Some(Self {
            links: Arc::new(Links::new(yarn, &config.gateway_path())),
            apps,
            resourcemanager,
            historyserver,
            template,
            auth,
            nodemanagers: Mutex::new(LruCache::new(
                NonZeroUsize::new(NODE_MANAGERS_KEPT).expect("not zero"),
            )),
        }))
    }

    pub fn resourcemanager(&self) -> Arc<Upstream> {
        self.resourcemanager.clone()
    }

    /// The Spark History Server, if `[yarn]` names one.
    pub fn historyserver(&self) -> Option<Arc<Upstream>> {
        self.historyserver.clone()
    }

    /// The NodeManager at `host:port`, if `[yarn] nodemanagers` allows it; 403
    /// otherwise, before anything is sent anywhere.
    pub fn nodemanager(&self, host: &str, port: u16) -> Result<Arc<Upstream>, RequestError> {
        if !self.links.allows(host, port) {
            tracing::warn!(
                host,
                port,
                "container logs asked of a NodeManager [yarn] does not allow"
            );
            return Err(RequestError::Forbidden(NOT_ALLOWED.into()));
        }
        let authority = format!("{}:{port}", host.to_ascii_lowercase());
        let mut kept = self.nodemanagers.lock().expect("nodemanagers lock");
        if let Some(upstream) = kept.get(&authority) {
            return Ok(upstream.clone());
        }
        let url = UpstreamUrl::parse(&self.links.nodemanager_origin(&authority))
            .map_err(|_| RequestError::Forbidden(NOT_ALLOWED.into()))?;
        let config = LivyConfig {
            upstreams: vec![url],
            ..self.template.clone()
        };
        // Its own metrics, not exported: NodeManagers are many and come and go.
        let upstream = Upstream::new(&config, self.auth.clone(), &Metrics::new())
            .map(Arc::new)
            .map_err(|error| {
                tracing::error!(%error, "a NodeManager upstream could not be prepared");
                RequestError::UpstreamUnavailable
            })?;
        kept.put(authority, upstream.clone());
        Ok(upstream)
    }

    /// The ResourceManager's and the history server's state, as the Livy
    /// servers' (their metric series).
    pub fn servers(&self) -> Vec<crate::upstream::ServerState> {
        use crate::upstream::Livy;
        let mut servers = self.resourcemanager.servers();
        if let Some(history) = &self.historyserver {
            servers.extend(history.servers());
        }
        servers
    }

    /// Closes idle connections past their time.
    pub fn housekeeping(&self) {
        use crate::upstream::Livy;
        self.resourcemanager.housekeeping();
        if let Some(history) = &self.historyserver {
            history.housekeeping();
        }
        for (_, upstream) in self.nodemanagers.lock().expect("nodemanagers lock").iter() {
            upstream.housekeeping();
        }
    }
}
