//! Stand-in YARN web pages (`livy-sim --serve-yarn`), enough to try the gateway's
//! `[yarn]` routes without a cluster: the ResourceManager's proxy of a Spark UI
//! (`/proxy/<application>/...`) and a NodeManager's container logs
//! (`/node/containerlogs/<container>/<user>[/<file>]`), with the kinds of links
//! the real pages carry — absolute ones to the ResourceManager and NodeManager,
//! root-relative ones, links elsewhere — and a log long enough to stream.
//!
//! As a secured cluster's ResourceManager (`--secure-yarn`), the proxy also does
//! what YARN's `WebAppProxyServlet` does for anyone but an application's owner
//! (here the `doAs` user): a warning page first, remembered in a
//! `checked_<application>` cookie ([`check`]); and every answer carries the
//! `hadoop.auth` cookie of its SPNEGO login, as a real one does. A finished
//! application's pages, with a history server in the cluster, are a redirection
//! to it.

use cookie::Cookie;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};

use super::model::{driver_container, Cluster};
use super::requests::parse_query;
use crate::body::{self, Body};

/// Lines in each stand-in container log file.
const LOG_LINES: usize = 20_000;

/// The cookie a secured ResourceManager's SPNEGO login sets on its answers.
const HADOOP_AUTH: &str =
    "hadoop.auth=\"u=livy&p=livy/gateway@EXAMPLE.COM&t=kerberos&e=1&s=c2lt\"; Path=/; HttpOnly";

/// The page for a request, if it is one of the stand-in's; `owner` says whom an
/// application runs as.
pub fn page(
    uri: &Uri,
    headers: &HeaderMap,
    cluster: &Cluster,
    owner: impl Fn(&str) -> Option<String>,
    finished: impl Fn(&str) -> bool,
) -> Option<Response<Body>> {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/proxy/") {
        let (app, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(history) = cluster.historyserver.as_ref().filter(|_| finished(app)) {
            // A finished application's pages are the history server's: YARN's
            // proxy sends the browser to the tracking URL Spark left behind.
            return Some(redirect(&format!("{history}/history/{app}/1{sub}")));
        }
        if !cluster.secure {
            return Some(proxied(app, sub, cluster));
        }
        let owner = owner(app);
        let mut response = match check(app, uri.query(), headers, owner.as_deref()) {
            Check::Pass => proxied(app, sub, cluster),
            Check::Approved => {
                let mut response = proxied(app, sub, cluster);
                set_cookie(&mut response, &checked_cookie(app, true));
                response
            }
            Check::Warn(owner) => warning(app, sub, uri.query(), owner),
        };
        set_cookie(&mut response, HADOOP_AUTH);
        return Some(response);
    }
    let rest = path.strip_prefix("/node/containerlogs/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts[..] {
        [container, user] => Some(html(StatusCode::OK, log_index(container, user))),
        [container, _, file] => Some(html(StatusCode::OK, log_file(container, file))),
        _ => None,
    }
}

/// A `302` to `location`.
fn redirect(location: &str) -> Response<Body> {
    let mut response = html(StatusCode::FOUND, String::new());
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// What the ResourceManager's proxy relays of `app`'s Spark UI at `sub`.
fn proxied(app: &str, sub: &str, cluster: &Cluster) -> Response<Body> {
    if sub.is_empty() {
        // The ResourceManager adds the slash with an absolute redirection.
        let mut response = html(StatusCode::FOUND, String::new());
        let location = format!("{}/proxy/{app}/", cluster.resourcemanager);
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, location);
        }
        return response;
    }
    if sub.ends_with(".css") {
        let mut response = Response::new(body::full("body { font-family: sans-serif }\n"));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/css"));
        return response;
    }
    html(StatusCode::OK, spark_ui(app, sub, cluster))
}

/// What YARN's check in a secured cluster makes of a request.
enum Check<'a> {
    /// The owner, or an application the stand-in does not know: relayed.
    Pass,
    /// Someone else who saw the warning (its cookie) and went on (its link's
    /// `proxyapproved=true`, or the cookie saying `true`): relayed, and the
    /// cookie set to `true`.
    Approved,
    /// Anyone else: the warning page (naming the owner), which sets the cookie
    /// to `false`.
    Warn(&'a str),
}

/// YARN's check of a request for `app`, whose viewer is the `doAs` user.
fn check<'a>(
    app: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    owner: Option<&'a str>,
) -> Check<'a> {
    let params = parse_query(query);
    let viewer = params
        .iter()
        .find(|(k, _)| k == "doAs")
        .map(|(_, v)| v.as_str());
    let name = format!("checked_{app}");
    let cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name);
    let approved = params
        .iter()
        .any(|(k, v)| k == "proxyapproved" && v.eq_ignore_ascii_case("true"))
        || cookie
            .as_ref()
            .is_some_and(|c| c.value().eq_ignore_ascii_case("true"));
    match owner {
        None => Check::Pass,
        Some(owner) if viewer == Some(owner) => Check::Pass,
        Some(_) if cookie.is_some() && approved => Check::Approved,
        Some(owner) => Check::Warn(owner),
    }
}

/// YARN's warning page for `app`: its link is the page asked for with
/// `proxyapproved=true` added.
fn warning(app: &str, sub: &str, query: Option<&str>, owner: &str) -> Response<Body> {
    let mut link = format!("/proxy/{app}{sub}?");
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        link.push_str(query);
        link.push('&');
    }
    link.push_str("proxyapproved=true");
    // As YARN writes it: the link's `&` escaped in the attribute.
    let page = format!(
        "<html><body><h1>WARNING: The following page may not be safe!</h1>\
         <h3>click <a href=\"{}\">here</a> to continue to an Application Master \
         web interface owned by {owner}</h3></body></html>\n",
        link.replace('&', "&amp;")
    );
    let mut response = html(StatusCode::OK, page);
    set_cookie(&mut response, &checked_cookie(app, false));
    response
}

/// YARN's record that a viewer was warned about `app` (`false`) or went on (`true`).
fn checked_cookie(app: &str, approved: bool) -> String {
    format!("checked_{app}={approved}; Path=/proxy/{app}; Max-Age=7200; HttpOnly")
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut response = Response::new(body::full(page));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    response
}

fn spark_ui(app: &str, sub: &str, cluster: &Cluster) -> String {
    let rm = &cluster.resourcemanager;
    let nm = cluster.nodemanager_origin();
    let container = driver_container(app);
    format!(
        r#"<!DOCTYPE html><html><head><title>Spark Jobs</title>
<link rel="stylesheet" href="/proxy/{app}/static/bootstrap.min.css" type="text/css">
<script src="{rm}/proxy/{app}/static/utils.js"></script>
<script>setUIRoot('/proxy/{app}')</script></head>
<body><h1>Spark Jobs ({app})</h1><p id="page">{sub}</p>
<a href="/proxy/{app}/jobs/">Jobs</a> <a href="{rm}/proxy/{app}/executors/">Executors</a>
<a href="stages/">Stages</a> <a href="{nm}/node/containerlogs/{container}/spark">stdout</a>
<a href="{rm}/cluster/app/{app}">Application</a> <a href="https://spark.apache.org/docs/">Docs</a>
</body></html>
"#
    )
}

fn log_index(container: &str, user: &str) -> String {
    format!(
        r#"<html><body><h1>Logs for {container}</h1>
<a href="/node/containerlogs/{container}/{user}/stderr/?start=-4096">stderr</a>
<a href="/node/containerlogs/{container}/{user}/stdout/?start=-4096">stdout</a>
</body></html>
"#
    )
}

fn log_file(container: &str, file: &str) -> String {
    let mut page = format!("<html><body><h1>{file}</h1><pre>");
    for n in 0..LOG_LINES {
        page.push_str(&format!(
            "26/12/02 10:00:00 INFO {container}: {file} line {n} &lt;ok&gt;\n"
        ));
    }
    page.push_str("</pre></body></html>\n");
    page
}
