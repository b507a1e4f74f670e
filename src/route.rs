//! Which Livy URL a gateway URL stands for, and which URLs are refused outright.
//!
//! `/gateway/<topology>/livy/v1/<path>?<query>` and `/gateway/<topology>/livy/<path>?<query>`
//! both map to `<livy>/<path>?<query>` (Livy itself has no `/v1`). The path is checked
//! as received, before any decoding: dot segments, percent-encoded `/`, `\` or `.`,
//! backslashes, empty segments, path parameters (`;`, raw or encoded: old Jetty
//! strips `;…` from a segment before resolving `..`), control characters (raw or
//! encoded) and any `%` not followed by two hex digits (`%u0064` is an escape Jetty
//! 9.3 decodes) are refused with 400, so Livy and the gateway can never disagree
//! about which resource a path names. The query gets the same escape check
//! ([`query::check`]). Everything else outside the prefix is 404.

use http::Method;

use crate::error::RequestError;
use crate::livy::query;

/// A request's destination inside Livy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path on the Livy server, starting with `/`, still percent-encoded as received.
    pub path: String,
    /// Query string as received, without `?`.
    pub query: Option<String>,
}

impl Route {
    /// `path?query` as it goes to Livy.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{}", self.path, q),
            None => self.path.clone(),
        }
    }
}

/// Maps a request to its Livy route. `prefix` is `/gateway/<topology>`.
pub fn resolve(
    method: &Method,
    path: &str,
    query: Option<&str>,
    prefix: &str,
) -> Result<Route, RequestError> {
    check_path(path)?;
    if let Some(query) = query {
        query::check(query)?;
    }
    let rest = path
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix("/livy/"))
        .ok_or(RequestError::NotFound)?;
    let rest = match rest.strip_prefix("v1") {
        Some("") => "",
        Some(r) if r.starts_with('/') => &r[1..],
        _ => rest,
    };
    if rest.is_empty() {
        return Err(RequestError::NotFound);
    }
    if !matches!(*method, Method::GET | Method::POST | Method::DELETE) {
        return Err(RequestError::MethodNotAllowed);
    }
    let mut livy_path = String::with_capacity(rest.len() + 1);
    livy_path.push('/');
    livy_path.push_str(rest);
    Ok(Route {
        path: livy_path,
        query: query.map(str::to_owned),
    })
}

/// A request for the YARN web UIs (`[yarn]`): where it goes, and the application
/// it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YarnRoute {
    pub target: YarnTarget,
    /// The YARN application the page belongs to.
    pub application: String,
    /// Path on the ResourceManager or NodeManager, still percent-encoded.
    pub path: String,
    /// Query string as received, without `?`.
    pub query: Option<String>,
}

/// Which YARN server a [`YarnRoute`] goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YarnTarget {
    /// The ResourceManager's proxy (the Spark UI).
    ResourceManager,
    /// A NodeManager's container logs, at `host:port` (not yet checked against
    /// `[yarn] nodemanagers`).
    NodeManager { host: String, port: u16 },
}

/// Maps `/gateway/<topology>/yarn/...` to a YARN route: `None` for any other path,
/// 404 for a YARN path the gateway does not serve. The path and query get the same
/// checks as Livy's.
///
/// - `/yarn/proxy/<application id>[/...]` → `<resourcemanager>/proxy/<application id>[/...]`
/// - `/yarn/nm/<host>:<port>/node/containerlogs/<container id>/...` →
///   `http://<host>:<port>/node/containerlogs/<container id>/...`
pub fn resolve_yarn(
    path: &str,
    query: Option<&str>,
    prefix: &str,
) -> Option<Result<YarnRoute, RequestError>> {
    let rest = path.strip_prefix(prefix)?.strip_prefix("/yarn/")?;
    Some(yarn_route(path, rest, query))
}

fn yarn_route(path: &str, rest: &str, query: Option<&str>) -> Result<YarnRoute, RequestError> {
    check_path(path)?;
    if let Some(query) = query {
        query::check(query)?;
    }
    let query = query.map(str::to_owned);
    if let Some(proxied) = rest.strip_prefix("proxy/") {
        let application = proxied.split('/').next().unwrap_or_default();
        if !crate::yarn::apps::is_application_id(application) {
            return Err(RequestError::NotFound);
        }
        return Ok(YarnRoute {
            target: YarnTarget::ResourceManager,
            application: application.to_owned(),
            path: format!("/{rest}"),
            query,
        });
    }
    let node = rest.strip_prefix("nm/").ok_or(RequestError::NotFound)?;
    let (authority, node_path) = node.split_at(node.find('/').ok_or(RequestError::NotFound)?);
    let (host, port) = authority.rsplit_once(':').ok_or(RequestError::NotFound)?;
    let port: u16 = port.parse().map_err(|_| RequestError::NotFound)?;
    let container = node_path
        .strip_prefix("/node/containerlogs/")
        .and_then(|r| r.split('/').next())
        .ok_or(RequestError::NotFound)?;
    let application =
        crate::yarn::apps::application_of_container(container).ok_or(RequestError::NotFound)?;
    if !crate::config::is_host_name(host) {
        return Err(RequestError::NotFound);
    }
    Ok(YarnRoute {
        target: YarnTarget::NodeManager {
            host: host.to_owned(),
            port,
        },
        application,
        path: node_path.to_owned(),
        query,
    })
}

/// A request for the Spark History Server (`[yarn] historyserver`): what it is
/// for, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRoute {
    pub target: HistoryTarget,
    /// Path on the history server, still percent-encoded.
    pub path: String,
    /// Query string as received, without `?`.
    pub query: Option<String>,
}

/// What a [`HistoryRoute`] asks for, which decides who may have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryTarget {
    /// The application list's page (its entries come from [`Self::Applications`]).
    Home,
    /// Scripts, styles and images.
    Static,
    /// `/api/v1/applications`: the list, narrowed to the caller's.
    Applications,
    /// An application's pages or REST resources, for its owner.
    Application(String),
}

/// Maps `/gateway/<topology>/sparkhistory[/...]` to a history server route: `None`
/// for any other path, 404 for one the gateway does not serve. The path and query
/// get the same checks as Livy's; an application must be named by its exact YARN
/// id (no other case, nothing percent-encoded), or the answer is 404 without
/// anything sent.
///
/// - `/sparkhistory/` → `/` (the list), `/sparkhistory/static/...` → `/static/...`
/// - `/sparkhistory/api/v1/applications` → the list's REST answer
/// - `/sparkhistory/history/<application>[/...]`,
///   `/sparkhistory/api/v1/applications/<application>[/...]` → the application's
pub fn resolve_history(
    path: &str,
    query: Option<&str>,
    prefix: &str,
) -> Option<Result<HistoryRoute, RequestError>> {
    let rest = path.strip_prefix(prefix)?.strip_prefix("/sparkhistory")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(history_route(path, rest, query))
}

fn history_route(
    path: &str,
    rest: &str,
    query: Option<&str>,
) -> Result<HistoryRoute, RequestError> {
    check_path(path)?;
    if let Some(query) = query {
        query::check(query)?;
    }
    let path = match rest {
        "" => "/",
        rest => rest,
    };
    let owned = path
        .strip_prefix("/api/v1/applications/")
        .or_else(|| path.strip_prefix("/history/"))
        .filter(|r| !r.is_empty());
    let target = if path == "/" {
        HistoryTarget::Home
    } else if path.starts_with("/static/") {
        HistoryTarget::Static
    } else if matches!(path, "/api/v1/applications" | "/api/v1/applications/") {
        HistoryTarget::Applications
    } else if let Some(owned) = owned {
        let application = owned.split('/').next().unwrap_or_default();
        if !crate::yarn::apps::is_application_id(application) {
            return Err(RequestError::NotFound);
        }
        HistoryTarget::Application(application.to_owned())
    } else {
        return Err(RequestError::NotFound);
    };
    Ok(HistoryRoute {
        target,
        path: path.to_owned(),
        query: query.map(str::to_owned),
    })
}

/// A page of Livy's own web UI, by the Livy path a [`Route`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiPage {
    /// `/ui`: the sessions and batches (its scripts load the narrowed listings).
    List,
    /// `/ui/session/<id>`.
    Session(u64),
    /// `/ui/session/<id>/log`.
    SessionLog(u64),
    /// `/ui/batch/<id>/log`.
    BatchLog(u64),
    /// `/static/...`: the UI's scripts, styles and images.
    Static,
}

impl UiPage {
    /// The batch or session the page shows, if one.
    pub fn resource(self) -> Option<(crate::state::Kind, u64)> {
        use crate::state::Kind;
        match self {
            UiPage::Session(id) | UiPage::SessionLog(id) => Some((Kind::Session, id)),
            UiPage::BatchLog(id) => Some((Kind::Batch, id)),
            UiPage::List | UiPage::Static => None,
        }
    }
}

/// Which page of Livy's UI `livy_path` is: `None` for a path outside the UI
/// (`/ui`, `/static/`), 404 for one of its paths the gateway does not serve.
pub fn livy_ui(livy_path: &str) -> Option<Result<UiPage, RequestError>> {
    if livy_path.starts_with("/static/") {
        return Some(Ok(UiPage::Static));
    }
    let rest = livy_path.strip_prefix("/ui")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let id = |segment: &str| crate::livy::numeric_id(segment).ok_or(RequestError::NotFound);
    Some(match segments[..] {
        [] => Ok(UiPage::List),
        ["session", n] => id(n).map(UiPage::Session),
        ["session", n, "log"] => id(n).map(UiPage::SessionLog),
        ["batch", n, "log"] => id(n).map(UiPage::BatchLog),
        _ => Err(RequestError::NotFound),
    })
}

/// Refuses paths whose meaning could differ between the gateway and Livy. One pass
/// over the bytes; each segment is checked when its closing `/` (or the end) is seen.
fn check_path(path: &str) -> Result<(), RequestError> {
    let bytes = path.as_bytes();
    // Start of the current segment: just after the latest `/`.
    let mut segment_start = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' => {
                if let Some(start) = segment_start {
                    check_segment(&bytes[start..i], false)?;
                }
                segment_start = Some(i + 1);
            }
            b'\\' => return Err(RequestError::BadPath("backslash in path")),
            b';' => return Err(RequestError::BadPath("path parameter (';') in path")),
            b if b < 0x20 || b == 0x7f => {
                return Err(RequestError::BadPath("control character in path"))
            }
            b'%' => {
                let decoded = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(RequestError::BadPath("malformed percent-encoding in path"))?;
                match decoded {
                    b'/' | b'\\' | b'.' | b';' => {
                        return Err(RequestError::BadPath(
                            "percent-encoded '/', '\\', '.' or ';' in path",
                        ))
                    }
                    b if b < 0x20 || b == 0x7f => {
                        return Err(RequestError::BadPath("control character in path"))
                    }
                    _ => {}
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    match segment_start {
        Some(start) => check_segment(&bytes[start..], true),
        None => Ok(()),
    }
}

/// A segment may not be `.` or `..`, nor empty unless it is the last (a trailing
/// slash).
fn check_segment(segment: &[u8], last: bool) -> Result<(), RequestError> {
    match segment {
        b"." | b".." => Err(RequestError::BadPath("dot segment in path")),
        b"" if !last => Err(RequestError::BadPath("empty segment in path")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/gateway/default";

    fn ok(path: &str) -> String {
        resolve(&Method::GET, path, None, P).unwrap().path
    }

    #[test]
    fn both_prefixes_map_to_livy_paths() {
        assert_eq!(ok("/gateway/default/livy/v1/batches"), "/batches");
        assert_eq!(ok("/gateway/default/livy/v1/batches/"), "/batches/");
        assert_eq!(
            ok("/gateway/default/livy/batches/34/log"),
            "/batches/34/log"
        );
        assert_eq!(
            ok("/gateway/default/livy/v1/sessions/1/statements"),
            "/sessions/1/statements"
        );
        assert_eq!(
            ok("/gateway/default/livy/v1/batches/my%20job"),
            "/batches/my%20job"
        );
        assert_eq!(ok("/gateway/default/livy/v1x"), "/v1x");
        let r = resolve(
            &Method::GET,
            "/gateway/default/livy/v1/batches/34/log",
            Some("from=0&size=10"),
            P,
        )
        .unwrap();
        assert_eq!(r.path_and_query(), "/batches/34/log?from=0&size=10");
    }

    #[test]
    fn other_paths_are_not_found() {
        for path in [
            "/",
            "/livy/v1/batches",
            "/gateway/other/livy/v1/batches",
            "/gateway/default/livy",
            "/gateway/default/livy/",
            "/gateway/default/livy/v1",
            "/gateway/default/livy/v1/",
            "/gateway/defaultx/livy/v1/batches",
            "/gateway/default/hdfs/v1/x",
        ] {
            assert!(
                matches!(
                    resolve(&Method::GET, path, None, P),
                    Err(RequestError::NotFound)
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn hostile_paths_are_bad_requests() {
        for path in [
            "/gateway/default/livy/v1/../../admin",
            "/gateway/default/livy/v1/./batches",
            "/gateway/default/livy/v1/batches/..",
            "/gateway/default/livy/v1/batches%2F34",
            "/gateway/default/livy/v1/batches%2f34",
            "/gateway/default/livy/v1/%2e%2e/x",
            "/gateway/default/livy/v1/batches%5C34",
            "/gateway/default/livy/v1/batches\\34",
            "/gateway/default/livy/v1/batches%00",
            "/gateway/default/livy/v1/batches%0a",
            "/gateway/default/livy/v1/batches\u{1}",
            "/gateway/default/livy/v1/batches%zz",
            "/gateway/default/livy/v1/batches%4",
            "/gateway/default/livy/v1//batches",
            "/gateway/default/livy/v1/batches//",
            "/gateway/default/livy/v1/batches/.",
            "/gateway/default/../default/livy/v1/batches",
            "//gateway/default/livy/v1/batches",
            "/gateway/default/livy/v1/batches/1/..;/..;/sessions/1",
            "/gateway/default/livy/v1/batches/1;x=y",
            "/gateway/default/livy/v1/batches/1%3b",
            "/gateway/default/livy/v1/batches/%u0031",
            "/gateway/default/livy/v1/batches/%u002e%u002e/x",
        ] {
            assert!(
                matches!(
                    resolve(&Method::GET, path, None, P),
                    Err(RequestError::BadPath(_))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn only_livys_methods_are_allowed() {
        for m in [Method::GET, Method::POST, Method::DELETE] {
            assert!(resolve(&m, "/gateway/default/livy/v1/batches", None, P).is_ok());
        }
        for m in [
            Method::PUT,
            Method::PATCH,
            Method::OPTIONS,
            Method::TRACE,
            Method::HEAD,
        ] {
            assert!(matches!(
                resolve(&m, "/gateway/default/livy/v1/batches", None, P),
                Err(RequestError::MethodNotAllowed)
            ));
        }
    }

    #[test]
    fn yarn_paths_name_their_server_and_application() {
        let p = "/gateway/default";
        let r = resolve_yarn(
            "/gateway/default/yarn/proxy/application_1_0002/jobs/",
            Some("id=1"),
            p,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.target, YarnTarget::ResourceManager);
        assert_eq!(r.application, "application_1_0002");
        assert_eq!(r.path, "/proxy/application_1_0002/jobs/");
        assert_eq!(r.query.as_deref(), Some("id=1"));
        let r = resolve_yarn(
            "/gateway/default/yarn/nm/nm1.cluster:8042/node/containerlogs/container_e01_1_0002_01_000001/alice/stderr",
            None,
            p,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r.target,
            YarnTarget::NodeManager {
                host: "nm1.cluster".into(),
                port: 8042
            }
        );
        assert_eq!(r.application, "application_1_0002");
        assert_eq!(
            r.path,
            "/node/containerlogs/container_e01_1_0002_01_000001/alice/stderr"
        );
        assert!(resolve_yarn("/gateway/default/livy/v1/batches", None, p).is_none());
        for bad in [
            "/gateway/default/yarn/proxy/not-an-app/",
            "/gateway/default/yarn/cluster/apps",
            "/gateway/default/yarn/nm/nm1:8042/conf",
            "/gateway/default/yarn/nm/nm1:8042/node/containerlogs/garbage/alice",
            "/gateway/default/yarn/nm/nm1:99999/node/containerlogs/container_1_2_01_000001/a",
            "/gateway/default/yarn/nm/user@nm1:8042/node/containerlogs/container_1_2_01_000001/a",
        ] {
            let answer = resolve_yarn(bad, None, p).unwrap();
            assert!(matches!(answer, Err(RequestError::NotFound)), "{bad}");
        }
        let dotted = "/gateway/default/yarn/proxy/application_1_2/../../nm/evil:80/";
        assert!(matches!(
            resolve_yarn(dotted, None, p).unwrap(),
            Err(RequestError::BadPath(_))
        ));
    }
    #[test]
    fn history_routes_name_their_application() {
        let h = |path: &str| resolve_history(path, None, P);
        let target = |path: &str| h(path).unwrap().unwrap().target;
        assert!(h("/gateway/default/livy/v1/batches").is_none());
        assert!(h("/gateway/default/sparkhistoryx").is_none());
        assert_eq!(target("/gateway/default/sparkhistory"), HistoryTarget::Home);
        assert_eq!(
            target("/gateway/default/sparkhistory/"),
            HistoryTarget::Home
        );
        assert_eq!(
            target("/gateway/default/sparkhistory/static/historypage.js"),
            HistoryTarget::Static
        );
        assert_eq!(
            target("/gateway/default/sparkhistory/api/v1/applications"),
            HistoryTarget::Applications
        );
        let app = HistoryTarget::Application("application_1_2".into());
        assert_eq!(
            target("/gateway/default/sparkhistory/history/application_1_2/1/jobs/"),
            app
        );
        assert_eq!(
            target(
                "/gateway/default/sparkhistory/api/v1/applications/application_1_2/1/allexecutors"
            ),
            app
        );
        let route = h("/gateway/default/sparkhistory/history/application_1_2/1/jobs/")
            .unwrap()
            .unwrap();
        assert_eq!(route.path, "/history/application_1_2/1/jobs/");
        for path in [
            "/gateway/default/sparkhistory/history/APPLICATION_1_2/",
            "/gateway/default/sparkhistory/history/Application_1_2",
            "/gateway/default/sparkhistory/history/%61pplication_1_2/",
            "/gateway/default/sparkhistory/history/application%5F1_2/",
            "/gateway/default/sparkhistory/history/",
            "/gateway/default/sparkhistory/api/v1/version",
            "/gateway/default/sparkhistory/environment/",
        ] {
            assert!(
                matches!(h(path), Some(Err(RequestError::NotFound))),
                "{path}"
            );
        }
        assert!(matches!(
            h("/gateway/default/sparkhistory/history/application_1_2/../application_1_3/"),
            Some(Err(RequestError::BadPath(_)))
        ));
    }

    #[test]
    fn livy_ui_pages_name_their_resource() {
        assert!(livy_ui("/batches").is_none());
        assert!(livy_ui("/uix").is_none());
        assert_eq!(livy_ui("/ui").unwrap().unwrap(), UiPage::List);
        assert_eq!(livy_ui("/ui/").unwrap().unwrap(), UiPage::List);
        assert_eq!(
            livy_ui("/ui/session/3").unwrap().unwrap(),
            UiPage::Session(3)
        );
        assert_eq!(
            livy_ui("/ui/session/3/log").unwrap().unwrap(),
            UiPage::SessionLog(3)
        );
        assert_eq!(
            livy_ui("/ui/batch/4/log").unwrap().unwrap(),
            UiPage::BatchLog(4)
        );
        assert_eq!(
            livy_ui("/static/js/livy-ui.js").unwrap().unwrap(),
            UiPage::Static
        );
        for path in [
            "/ui/session/x",
            "/ui/batch/4",
            "/ui/other",
            "/ui/session/3/log/x",
        ] {
            assert!(
                matches!(livy_ui(path), Some(Err(RequestError::NotFound))),
                "{path}"
            );
        }
    }
}
