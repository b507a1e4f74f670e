//! Livy's web UI as Livy serves it (`/ui`, `/ui/session/<id>`,
//! `/ui/session/<id>/log`, `/ui/batch/<id>/log`, assets under `/static/`), built
//! the way Livy's `UIServlet` and scripts build it: every link, asset and the
//! scripts' `setBasePath('…')` start with `livy.ui.basePath` (`--ui-base-path`,
//! empty by default), and the scripts call `location.origin + basePath +
//! "/sessions"` (and batches, statements, logs). Like Livy's session page, the
//! session summary writes the session's name into the page unescaped — the
//! gateway's tests rely on that to show such markup never runs.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// The answer for `path` if it is one of the UI's; `base` is `livy.ui.basePath`.
pub fn page(path: &str, base: &str) -> Option<Response<Body>> {
    if let Some(asset) = path.strip_prefix("/static/") {
        return Some(match asset {
            "js/livy-ui.js" => typed(StatusCode::OK, "application/javascript", LIVY_UI_JS),
            "js/all-sessions.js" => {
                typed(StatusCode::OK, "application/javascript", ALL_SESSIONS_JS)
            }
            "js/session.js" => typed(StatusCode::OK, "application/javascript", SESSION_JS),
            "js/session-log.js" => typed(StatusCode::OK, "application/javascript", SESSION_LOG_JS),
            "css/livy-ui.css" => typed(
                StatusCode::OK,
                "text/css",
                "body { font-family: sans-serif }\n",
            ),
            _ => typed(StatusCode::NOT_FOUND, "text/plain", "not found"),
        });
    }
    let rest = path.strip_prefix("/ui")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let numeric = |s: &str| s.parse::<u64>().ok();
    let (title, content) = match segments[..] {
        [] => (
            "Sessions".to_owned(),
            content(
                "all-sessions",
                &["interactive-sessions", "batches"],
                "all-sessions.js",
                base,
            ),
        ),
        ["session", id] if numeric(id).is_some() => (
            format!("Session {id}"),
            content(
                "session-page",
                &["session-summary", "session-statements"],
                "session.js",
                base,
            ),
        ),
        ["session", id, "log"] | ["batch", id, "log"] if numeric(id).is_some() => (
            format!("{} {id} Log", segments[0]),
            content("log-page", &["session-log"], "session-log.js", base),
        ),
        _ => ("404".to_owned(), "<h3>404 No Such Page</h3>".to_owned()),
    };
    let status = match title.as_str() {
        "404" => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    };
    let page = format!(
        r#"<html><head>
<link rel="stylesheet" href="{base}/static/css/livy-ui.css" type="text/css"/>
<script src="{base}/static/js/livy-ui.js"></script>
<script type="text/javascript">
        setBasePath('{base}');
      </script>
<title>Livy - {title}</title></head>
<body><div class="container-fluid"><nav class="navbar"><a class="navbar-brand" href="{base}/ui">Livy</a></nav>
{content}
</div></body></html>
"#
    );
    Some(typed(status, "text/html;charset=utf-8", &page))
}

/// A page's content: its containers and the script that fills them.
fn content(id: &str, parts: &[&str], script: &str, base: &str) -> String {
    let divs: String = parts
        .iter()
        .map(|p| format!("<div id=\"{p}\"></div>"))
        .collect();
    format!("<div id=\"{id}\">{divs}<script src=\"{base}/static/js/{script}\"></script></div>")
}

/// The base path and helpers every page's scripts share.
const LIVY_UI_JS: &str = r#"var basePath = "";
function setBasePath(path) { basePath = path; }
function prependBasePath(path) { return basePath + path; }
function getPathArray() {
  var parts = location.pathname.split("/");
  parts.splice(0, 2 + (basePath.match(/\//g) || []).length);
  return parts;
}
function escapeHtml(text) {
  var div = document.createElement("div");
  div.textContent = String(text);
  return div.innerHTML;
}
function anchor(href, inner) { return '<a href="' + href + '">' + inner + "</a>"; }
function appIdLink(view) {
  var url = view.appInfo && view.appInfo.sparkUiUrl;
  return url ? anchor(url, view.appId) : (view.appId || "");
}
function getJson(path, then) {
  fetch(location.origin + prependBasePath(path), { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(then);
}
"#;

/// The list page: sessions and batches, each row linking to its pages.
const ALL_SESSIONS_JS: &str = r#"function table(id, views, kind) {
  var rows = views.map(function (view) {
    var own = kind == "session" ? anchor(prependBasePath("/ui/session/" + view.id), view.id) : view.id;
    return "<tr class='" + kind + "'><td>" + own + "</td><td>" + appIdLink(view) + "</td><td>"
      + escapeHtml(view.name) + "</td><td>" + view.owner + "</td><td>" + view.proxyUser + "</td><td>"
      + view.state + "</td><td>" + anchor(prependBasePath("/ui/" + kind + "/" + view.id + "/log"), "session")
      + "</td></tr>";
  });
  document.getElementById(id).innerHTML = "<table id='" + id + "-table'>" + rows.join("") + "</table>";
}
document.addEventListener("DOMContentLoaded", function () {
  getJson("/sessions", function (answer) { table("interactive-sessions", answer.sessions, "session"); });
  getJson("/batches", function (answer) { table("batches", answer.sessions, "batch"); });
});
"#;

/// A session's page: its summary (the name unescaped, as Livy's is) and statements.
const SESSION_JS: &str = r#"document.addEventListener("DOMContentLoaded", function () {
  var id = getPathArray().pop();
  getJson("/sessions/" + id, function (view) {
    document.getElementById("session-summary").innerHTML = "<h3>Session " + view.id + "</h3><ul>"
      + "<li><strong>Application Id: </strong>" + appIdLink(view) + "</li>"
      + "<li><strong>Name: </strong>" + view.name + "</li>"
      + "<li><strong>Owner: </strong>" + view.owner + "</li>"
      + "<li><strong>State: </strong>" + view.state + "</li></ul>";
    getJson("/sessions/" + id + "/statements", function (answer) {
      document.getElementById("session-statements").innerHTML = answer.statements.map(function (s) {
        return "<pre class='statement'>" + escapeHtml(s.code) + "</pre>";
      }).join("");
    });
  });
});
"#;

/// A session's or batch's log page.
const SESSION_LOG_JS: &str = r#"document.addEventListener("DOMContentLoaded", function () {
  var parts = getPathArray();
  var path = (parts[0] == "session" ? "/sessions/" : "/batches/") + parts[1] + "/log?size=-1";
  getJson(path, function (answer) {
    document.getElementById("session-log").innerHTML = "<pre>" + escapeHtml(answer.log.join("\n")) + "</pre>";
  });
});
"#;

fn typed(status: StatusCode, kind: &'static str, content: &str) -> Response<Body> {
    let mut response = Response::new(body::full(content.to_owned()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}
