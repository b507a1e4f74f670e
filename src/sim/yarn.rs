//! Stand-in YARN web pages (`livy-sim --serve-yarn`), enough to try the gateway's
//! `[yarn]` routes without a cluster: the ResourceManager's proxy of a Spark UI
//! (`/proxy/<application>/...`) and a NodeManager's container logs
//! (`/node/containerlogs/<container>/<user>[/<file>]`), with the kinds of links
//! the real pages carry — absolute ones to the ResourceManager and NodeManager,
//! root-relative ones, links elsewhere — and a log long enough to stream.

use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};

use super::model::{driver_container, Cluster};
use crate::body::{self, Body};

/// Lines in each stand-in container log file.
const LOG_LINES: usize = 20_000;

/// The page for `path`, if it is one of the stand-in's.
pub fn page(path: &str, cluster: &Cluster) -> Option<Response<Body>> {
    if let Some(rest) = path.strip_prefix("/proxy/") {
        let (app, sub) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if sub.is_empty() {
            // The ResourceManager adds the slash with an absolute redirection.
            let mut response = html(StatusCode::FOUND, String::new());
            let location = format!("{}/proxy/{app}/", cluster.resourcemanager);
            response
                .headers_mut()
                .insert(LOCATION, HeaderValue::from_str(&location).ok()?);
            return Some(response);
        }
        if sub.ends_with(".css") {
            let mut response = Response::new(body::full("body { font-family: sans-serif }\n"));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/css"));
            return Some(response);
        }
        return Some(html(StatusCode::OK, spark_ui(app, sub, cluster)));
    }
    let rest = path.strip_prefix("/node/containerlogs/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match parts[..] {
        [container, user] => Some(html(StatusCode::OK, log_index(container, user))),
        [container, _, file] => Some(html(StatusCode::OK, log_file(container, file))),
        _ => None,
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
