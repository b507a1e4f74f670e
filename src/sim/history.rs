//! A stand-in Spark History Server (`livy-sim --history-listen`), enough to try
//! the gateway's `/sparkhistory/` routes without a cluster: the application list
//! (a page whose script loads `/api/v1/applications`), an application's pages, and
//! the REST API with `attempts[].sparkUser`, `executorLogs` and a redacted
//! environment.
//!
//! As Spark does, it takes the root its pages, scripts and REST calls are written
//! under from `X-Forwarded-Context` (its `UIUtils.uiRoot`, without
//! `spark.ui.proxyBase`), and some links it writes absolute anyway: redirections
//! to an application's first page (to the host the request named) and executor
//! logs (to the NodeManager). Applications run on YARN, one attempt each (`1`).

use http::header::{CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};
use serde_json::{json, Value};

use http::Request;
use tokio::time::Instant;

use super::model::{driver_container, Cluster};
use super::requests::parse_query;
use super::Simulator;
use crate::body::{self, Body};

/// An application the history server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// `application_<cluster start>_<number>`.
    pub id: String,
    pub name: String,
    /// `sparkUser`: whom it ran as (Livy's `proxyUser`).
    pub user: String,
    pub completed: bool,
}

impl Simulator {
    /// Answers one request to the stand-in history server ([`history`]).
    pub fn handle_history<B>(&self, request: &Request<B>) -> Response<Body> {
        let uri = request.uri();
        let asked = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        self.history_requests
            .lock()
            .expect("history lock")
            .push(asked.to_owned());
        answer(
            uri,
            request.headers(),
            &self.applications(),
            &self.config.cluster,
        )
    }

    /// What the history server was asked for so far (paths with queries).
    pub fn history_requests(&self) -> Vec<String> {
        self.history_requests.lock().expect("history lock").clone()
    }

    /// The applications the history server holds: every batch's and session's
    /// that has started, then [`SimConfig::history_apps`].
    pub(super) fn applications(&self) -> Vec<App> {
        let state = self.state.lock().expect("sim lock");
        let now = Instant::now();
        let user = |proxy: &Option<String>, owner: &Option<String>| {
            proxy
                .clone()
                .or_else(|| owner.clone())
                .unwrap_or_else(|| "livy".into())
        };
        let batches = state.batches.values().filter_map(|b| {
            let phase = b.state(now, &self.timings);
            (phase != "starting").then(|| App {
                id: b.app_id(),
                name: b.name.clone().unwrap_or_else(|| format!("batch {}", b.id)),
                user: user(&b.proxy_user, &b.owner),
                completed: matches!(phase, "success" | "dead"),
            })
        });
        let started = state
            .sessions
            .values()
            .filter(|s| s.state(now, &self.timings) != "starting");
        let sessions = started.map(|s| App {
            id: s.app_id(),
            name: s
                .name
                .clone()
                .unwrap_or_else(|| format!("session {}", s.id)),
            user: user(&s.proxy_user, &s.owner),
            completed: false,
        });
        batches
            .chain(sessions)
            .chain(self.config.history_apps.iter().cloned())
            .collect()
    }
}

/// The history server's answer to a request, given the applications it holds.
pub fn answer(uri: &Uri, headers: &HeaderMap, apps: &[App], cluster: &Cluster) -> Response<Body> {
    let root = ui_root(headers);
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_owned();
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let find = |id: &str| apps.iter().find(|app| app.id == id);
    match segments[..] {
        [] => html(StatusCode::OK, home(&root)),
        ["static", "historypage.js"] => asset("application/javascript", HISTORY_PAGE_JS),
        ["static", "webui.js"] => asset("application/javascript", WEBUI_JS),
        ["static", "webui.css"] => asset("text/css", "body { font-family: sans-serif }\n"),
        ["api", "v1", "applications"] => list(uri.query(), apps),
        ["api", "v1", "applications", id, ref rest @ ..] => match find(id) {
            None => text(StatusCode::NOT_FOUND, &format!("unknown app: {id}")),
            Some(app) => match rest {
                [] => json_answer(&record(app)),
                [.., "allexecutors" | "executors"] => json_answer(&executors(app, cluster)),
                [.., "environment"] => json_answer(&environment(app)),
                _ => text(StatusCode::NOT_FOUND, "unknown resource"),
            },
        },
        ["history", id, ref rest @ ..] => match (find(id), rest) {
            (None, _) => html(
                StatusCode::NOT_FOUND,
                format!(
                    "<html><body><h2>Application {} not found.</h2></body></html>",
                    escape(id)
                ),
            ),
            // Spark's redirection to the first tab: absolute, to the host asked.
            (Some(app), [] | [_]) => {
                let mut response = html(StatusCode::FOUND, String::new());
                let location = format!("http://{host}/history/{}/1/jobs/", app.id);
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            (Some(app), [_, tab, ..]) => {
                html(StatusCode::OK, app_page(app, tab, &root, &host, cluster))
            }
        },
        _ => html(
            StatusCode::NOT_FOUND,
            "<html><body><h2>Not found</h2></body></html>".into(),
        ),
    }
}

/// The UI root a request asks for: `X-Forwarded-Context`, when it is a plain path.
fn ui_root(headers: &HeaderMap) -> String {
    headers
        .get("x-forwarded-context")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.starts_with('/')
                && v.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"'\"<>\\".contains(&b))
        })
        .map(|v| v.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The REST list: `status` (`completed`, `running`) and `limit` honoured.
fn list(query: Option<&str>, apps: &[App]) -> Response<Body> {
    let params = parse_query(query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = param("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let wanted = |app: &&App| match param("status") {
        Some("completed") => app.completed,
        Some("running") => !app.completed,
        _ => true,
    };
    let records: Vec<Value> = apps.iter().filter(wanted).take(limit).map(record).collect();
    json_answer(&Value::Array(records))
}

/// An application's REST record.
fn record(app: &App) -> Value {
    json!({
        "id": app.id,
        "name": app.name,
        "attempts": [{
            "attemptId": "1",
            "startTime": "2026-12-01T10:00:00.000GMT",
            "endTime": if app.completed { "2026-12-01T10:05:00.000GMT" } else { "1969-12-31T23:59:59.999GMT" },
            "sparkUser": app.user,
            "completed": app.completed,
            "appSparkVersion": "3.5.1",
        }],
    })
}

/// The driver, with its logs on the NodeManager (absolute, as Spark reports them).
fn executors(app: &App, cluster: &Cluster) -> Value {
    let logs = format!(
        "{}/node/containerlogs/{}/{}",
        cluster.nodemanager_origin(),
        driver_container(&app.id),
        app.user
    );
    json!([{
        "id": "driver",
        "hostPort": cluster.nodemanager,
        "isActive": !app.completed,
        "executorLogs": {
            "stdout": format!("{logs}/stdout?start=-4096"),
            "stderr": format!("{logs}/stderr?start=-4096"),
        },
    }])
}

/// The environment, its secrets redacted as `spark.redaction.regex` does.
fn environment(app: &App) -> Value {
    json!({
        "sparkProperties": [
            ["spark.app.name", app.name],
            ["spark.master", "yarn"],
            ["spark.ssl.keyPassword", "*********(redacted)"],
        ],
    })
}

fn home(root: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><head><title>History Server</title>
<link rel="stylesheet" href="{root}/static/webui.css" type="text/css">
<script src="{root}/static/webui.js"></script>
<script src="{root}/static/historypage.js"></script>
<script>setUIRoot('{root}')</script></head>
<body><h3>History Server</h3><div id="history-summary"></div></body></html>
"#
    )
}

fn app_page(app: &App, tab: &str, root: &str, host: &str, cluster: &Cluster) -> String {
    let (id, user) = (&app.id, &app.user);
    let nm = cluster.nodemanager_origin();
    let container = driver_container(id);
    format!(
        r#"<!DOCTYPE html><html><head><title>{name} - Spark {tab}</title>
<link rel="stylesheet" href="{root}/static/webui.css" type="text/css">
<script src="{root}/static/webui.js"></script>
<script>setUIRoot('{root}')</script></head>
<body><h1>Spark {tab} ({id})</h1><p id="tab">{tab}</p><p id="user">{user}</p>
<a href="{root}/history/{id}/1/jobs/">Jobs</a> <a href="{root}/history/{id}/1/executors/">Executors</a>
<a href="http://{host}/history/{id}/1/environment/">Environment</a>
<a href="{nm}/node/containerlogs/{container}/{user}/stdout?start=-4096">driver stdout</a>
<a href="{root}/">Applications</a>
</body></html>
"#,
        name = escape(&app.name),
        tab = escape(tab),
    )
}

/// The list page's script: the REST list, each application linked to its pages.
const HISTORY_PAGE_JS: &str = r#"document.addEventListener("DOMContentLoaded", function () {
  fetch(uiRoot + "/api/v1/applications?limit=50", { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (apps) {
      var list = document.createElement("ul");
      list.id = "applications";
      apps.forEach(function (app) {
        var attempt = app.attempts[0];
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = uiRoot + "/history/" + app.id + "/" + attempt.attemptId + "/jobs/";
        link.textContent = app.id;
        item.appendChild(link);
        item.appendChild(document.createTextNode(" " + app.name + " (" + attempt.sparkUser + ")"));
        list.appendChild(item);
      });
      document.getElementById("history-summary").appendChild(list);
    });
});
"#;

/// Where Spark's scripts keep the UI root.
const WEBUI_JS: &str = "var uiRoot = \"\";\nfunction setUIRoot(root) { uiRoot = root; }\n";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(status: StatusCode, page: String) -> Response<Body> {
    typed(status, "text/html;charset=utf-8", page)
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    typed(status, "text/plain;charset=utf-8", message.to_owned())
}

fn asset(kind: &'static str, content: &'static str) -> Response<Body> {
    typed(StatusCode::OK, kind, content.to_owned())
}

fn json_answer(value: &Value) -> Response<Body> {
    typed(StatusCode::OK, "application/json", value.to_string())
}

fn typed(status: StatusCode, kind: &'static str, content: String) -> Response<Body> {
    let mut response = Response::new(body::full(content));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}
