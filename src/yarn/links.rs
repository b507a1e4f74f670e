//! Links into the cluster's YARN web UIs, made into links through the gateway.
//!
//! In Livy's JSON views, `appInfo.sparkUiUrl` (the ResourceManager's proxy,
//! `<rm>/proxy/<application>/…`) and `appInfo.driverLogUrl` (a NodeManager,
//! `http://<host>:<port>/node/containerlogs/…`) become absolute URLs under the
//! gateway's public address, the NodeManager only where `[yarn] nodemanagers`
//! allows it. NodeManagers are reached with the ResourceManager's scheme
//! ([`YarnConfig::nodemanager_scheme`]), so a link to a NodeManager with the other
//! scheme is not one the gateway serves. In pages fetched through the gateway,
//! absolute links of the same kinds and the root-relative links the page's own
//! server means (`/proxy/…` from the ResourceManager, `/node/…` from a
//! NodeManager) become paths under `/gateway/<topology>/yarn`. Anything else is
//! left as it is: a link to a host the gateway does not serve stays a link to
//! that host.

use serde_json::Value;

use crate::config::{is_host_name, HostPattern, UpstreamUrl, YarnConfig};

/// The server a page came from, which decides what its root-relative links mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    ResourceManager,
    /// A NodeManager, by `host:port`.
    NodeManager(String),
    /// The Spark History Server.
    HistoryServer,
}

/// The rules for one configuration.
pub struct Links {
    /// `/gateway/<topology>/yarn`.
    prefix: String,
    /// `scheme://host:port` of the ResourceManager.
    rm_origin: String,
    /// `http://` or `https://`: how NodeManagers are reached (the ResourceManager's).
    nm_scheme: &'static str,
    nodemanagers: Vec<HostPattern>,
    /// `/gateway/<topology>/sparkhistory`.
    history_prefix: String,
    /// `scheme://host:port` of the Spark History Server, if `[yarn]` names one.
    history_origin: Option<String>,
}

impl Links {
    pub fn new(config: &YarnConfig, gateway_path: &str) -> Self {
        Self {
            prefix: format!("{gateway_path}/yarn"),
            rm_origin: config.resourcemanager.origin(),
            nm_scheme: config.nodemanager_scheme(),
            nodemanagers: config.nodemanagers.clone(),
            history_prefix: format!("{gateway_path}/sparkhistory"),
            history_origin: config.historyserver.as_ref().map(UpstreamUrl::origin),
        }
    }

    /// `/gateway/<topology>/sparkhistory`: where the history server's root is
    /// served, and the `X-Forwarded-Context` it is told, so Spark writes that
    /// prefix into its links, scripts and REST calls.
    pub fn history_prefix(&self) -> &str {
        &self.history_prefix
    }

    /// The gateway path of the ResourceManager's proxy of `application`
    /// (`/gateway/<topology>/yarn/proxy/<application>`).
    pub fn proxy_path(&self, application: &str) -> String {
        format!("{}/proxy/{application}", self.prefix)
    }

    /// `scheme://host:port` of the NodeManager at `authority` (`host:port`).
    pub fn nodemanager_origin(&self, authority: &str) -> String {
        format!("{}{authority}", self.nm_scheme)
    }

    /// Whether the gateway may fetch from the NodeManager at `host:port`.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        is_host_name(host) && self.nodemanagers.iter().any(|p| p.matches(host, port))
    }

    /// The gateway path for an absolute URL of the ResourceManager's proxy, of an
    /// allowed NodeManager's pages or of the history server; `None` for anything
    /// else.
    pub fn path_for(&self, url: &str) -> Option<String> {
        if let Some(rest) = strip_origin(url, &self.rm_origin).filter(|r| r.starts_with("/proxy/"))
        {
            return Some(format!("{}{rest}", self.prefix));
        }
        if let Some(origin) = &self.history_origin {
            if let Some(rest) = strip_origin(url, origin) {
                return Some(format!("{}{}", self.history_prefix, or_root(rest)));
            }
        }
        let rest = strip_ignoring_case(url, self.nm_scheme)?;
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (host, port) = authority.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        (path.starts_with("/node/") && self.allows(host, port))
            .then(|| format!("{}/nm/{host}:{port}{path}", self.prefix))
    }

    /// What a link in a page from `source` becomes: absolute links as
    /// [`Links::path_for`], root-relative links into the same server's pages the
    /// gateway serves under its own path; `None`: unchanged.
    pub fn href(&self, href: &str, source: &Source) -> Option<String> {
        if !href.starts_with('/') {
            return self.path_for(href);
        }
        if href.starts_with("//") {
            return None;
        }
        match source {
            Source::ResourceManager if href.starts_with("/proxy/") => {
                Some(format!("{}{href}", self.prefix))
            }
            Source::NodeManager(authority) if href.starts_with("/node/") => {
                Some(format!("{}/nm/{authority}{href}", self.prefix))
            }
            Source::HistoryServer if is_history_path(href) => {
                Some(format!("{}{href}", self.history_prefix))
            }
            _ => None,
        }
    }

    /// Rewrites the links in Livy's JSON answer: a view (with `appInfo`) or a
    /// listing of them (`sessions`). `base` is the gateway's public
    /// `https://host[:port]`. Returns the application ids of the views.
    pub fn rewrite_views(&self, answer: &mut Value, base: &str) -> Vec<String> {
        let mut apps = Vec::new();
        match answer.get_mut("sessions").and_then(Value::as_array_mut) {
            Some(views) => {
                for view in views {
                    self.rewrite_view(view, base, &mut apps);
                }
            }
            None => self.rewrite_view(answer, base, &mut apps),
        }
        apps
    }

    fn rewrite_view(&self, view: &mut Value, base: &str, apps: &mut Vec<String>) {
        if let Some(app) = view.get("appId").and_then(Value::as_str) {
            apps.push(app.to_owned());
        }
        let Some(info) = view.get_mut("appInfo").and_then(Value::as_object_mut) else {
            return;
        };
        for key in ["sparkUiUrl", "driverLogUrl"] {
            let Some(Value::String(url)) = info.get_mut(key) else {
                continue;
            };
            if let Some(path) = self.path_for(url) {
                *url = format!("{base}{path}");
            }
        }
    }
}

/// Whether a root-relative link from the history server is one of its own pages
/// written without the gateway's prefix (a server whose Spark ignores
/// `X-Forwarded-Context`, or a link Spark builds without the UI root).
fn is_history_path(href: &str) -> bool {
    ["/history/", "/api/v1/", "/static/"]
        .iter()
        .any(|p| href.starts_with(p))
        || href == "/"
        || href.starts_with("/?")
}

/// A path that may be empty (an origin alone) as a path: `/`.
fn or_root(rest: &str) -> &str {
    match rest {
        "" => "/",
        rest => rest,
    }
}

/// `url` after `prefix`, which it starts with in any case (schemes and host names
/// are case-insensitive).
fn strip_ignoring_case<'a>(url: &'a str, prefix: &str) -> Option<&'a str> {
    let head = url.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &url[prefix.len()..])
}

/// `url` after `origin`, when it starts with it and a path (or nothing) follows.
fn strip_origin<'a>(url: &'a str, origin: &str) -> Option<&'a str> {
    let rest = strip_ignoring_case(url, origin)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn links() -> Links {
        let config = YarnConfig {
            resourcemanager: UpstreamUrl::parse("http://rm.internal:8088").unwrap(),
            nodemanagers: vec![HostPattern::parse("*.cluster.internal:8042").unwrap()],
            historyserver: None,
        };
        Links::new(&config, "/gateway/default")
    }

    #[test]
    fn view_links_lead_through_the_gateway() {
        let mut view = json!({
            "id": 3,
            "appId": "application_1_0003",
            "appInfo": {
                "sparkUiUrl": "http://rm.internal:8088/proxy/application_1_0003/",
                "driverLogUrl": "http://nm7.cluster.internal:8042/node/containerlogs/container_1_0003_01_000001/alice"
            }
        });
        let apps = links().rewrite_views(&mut view, "https://gw.example:8443");
        assert_eq!(apps, ["application_1_0003"]);
        assert_eq!(
            view["appInfo"]["sparkUiUrl"],
            "https://gw.example:8443/gateway/default/yarn/proxy/application_1_0003/"
        );
        assert_eq!(
            view["appInfo"]["driverLogUrl"],
            "https://gw.example:8443/gateway/default/yarn/nm/nm7.cluster.internal:8042/node/containerlogs/container_1_0003_01_000001/alice"
        );
    }

    #[test]
    fn an_https_only_cluster_has_its_node_managers_on_https() {
        let config = YarnConfig {
            resourcemanager: UpstreamUrl::parse("https://rm.internal:8090").unwrap(),
            nodemanagers: vec![HostPattern::parse("*.cluster.internal:8044").unwrap()],
            historyserver: None,
        };
        let l = Links::new(&config, "/gateway/default");
        assert_eq!(
            l.nodemanager_origin("nm7.cluster.internal:8044"),
            "https://nm7.cluster.internal:8044"
        );
        assert_eq!(
            l.path_for("HTTPS://nm7.cluster.internal:8044/node/containerlogs/c/alice")
                .as_deref(),
            Some("/gateway/default/yarn/nm/nm7.cluster.internal:8044/node/containerlogs/c/alice")
        );
        assert_eq!(
            l.path_for("https://rm.internal:8090/proxy/application_1_1/")
                .as_deref(),
            Some("/gateway/default/yarn/proxy/application_1_1/")
        );
        // The other scheme is not how this cluster's NodeManagers are reached.
        assert_eq!(
            l.path_for("http://nm7.cluster.internal:8044/node/containerlogs/c/alice"),
            None
        );
        assert_eq!(
            links().path_for("https://nm7.cluster.internal:8042/node/containerlogs/c/alice"),
            None
        );
        assert_eq!(
            links().nodemanager_origin("nm7.cluster.internal:8042"),
            "http://nm7.cluster.internal:8042"
        );
    }

    #[test]
    fn links_elsewhere_are_left_alone() {
        let mut listing = json!({"from": 0, "total": 1, "sessions": [{
            "id": 1,
            "appId": null,
            "appInfo": {
                "sparkUiUrl": "http://history.internal:18080/history/application_1_1/",
                "driverLogUrl": "http://nm1.elsewhere.org:8042/node/containerlogs/c/alice"
            }
        }]});
        let before = listing.clone();
        assert!(links().rewrite_views(&mut listing, "https://gw").is_empty());
        assert_eq!(listing, before);
    }

    #[test]
    fn page_links_follow_their_server() {
        let l = links();
        let rm = Source::ResourceManager;
        let nm = Source::NodeManager("nm1.cluster.internal:8042".into());
        assert_eq!(
            l.href("/proxy/application_1_1/jobs/", &rm).as_deref(),
            Some("/gateway/default/yarn/proxy/application_1_1/jobs/")
        );
        assert_eq!(
            l.href("/node/containerlogs/c/alice/stderr", &nm).as_deref(),
            Some("/gateway/default/yarn/nm/nm1.cluster.internal:8042/node/containerlogs/c/alice/stderr")
        );
        assert_eq!(l.href("/node/x", &rm), None);
        assert_eq!(l.href("/cluster/apps", &rm), None);
        assert_eq!(l.href("//evil.org/proxy/x", &rm), None);
        assert_eq!(l.href("jobs/", &rm), None);
        assert_eq!(
            l.href("HTTP://RM.internal:8088/proxy/application_1_1/", &nm)
                .as_deref(),
            Some("/gateway/default/yarn/proxy/application_1_1/")
        );
        assert_eq!(l.href("http://rm.internal:80880/proxy/x", &rm), None);
        assert_eq!(l.href("http://127.0.0.1:8042/node/x", &rm), None);
    }

    #[test]
    fn history_server_links_lead_to_its_route() {
        let config = YarnConfig {
            resourcemanager: UpstreamUrl::parse("http://rm.internal:8088").unwrap(),
            nodemanagers: Vec::new(),
            historyserver: Some(UpstreamUrl::parse("http://shs.internal:18080").unwrap()),
        };
        let l = Links::new(&config, "/gateway/default");
        let shs = Source::HistoryServer;
        // YARN's redirection of a finished application, and Spark's absolute links.
        assert_eq!(
            l.path_for("http://SHS.internal:18080/history/application_1_1/1")
                .as_deref(),
            Some("/gateway/default/sparkhistory/history/application_1_1/1")
        );
        assert_eq!(
            l.path_for("http://shs.internal:18080").as_deref(),
            Some("/gateway/default/sparkhistory/")
        );
        assert_eq!(l.path_for("http://shs.internal:180800/history/x"), None);
        assert_eq!(
            l.href("/history/application_1_1/1/jobs/", &shs).as_deref(),
            Some("/gateway/default/sparkhistory/history/application_1_1/1/jobs/")
        );
        // Already the gateway's (Spark honoured `X-Forwarded-Context`): unchanged.
        assert_eq!(
            l.href("/gateway/default/sparkhistory/static/webui.js", &shs),
            None
        );
        assert_eq!(l.href("/history/x", &Source::ResourceManager), None);
        assert_eq!(l.history_prefix(), "/gateway/default/sparkhistory");
        // Without a history server, its links are left alone.
        assert_eq!(
            links().path_for("http://shs.internal:18080/history/application_1_1/1"),
            None
        );
    }
}
