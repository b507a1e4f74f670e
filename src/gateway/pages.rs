//! The gateway's own small HTML pages, and telling a browser's navigation from
//! a script's request: sign-in's pages, and the error page a person gets where a
//! script would get JSON (a page route of the cluster's web UIs failing).

use http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::body::{self, Body};
use crate::error::RequestError;

/// Whether a request is a browser's navigation to a page: a GET whose `Accept`
/// prefers HTML, not made by a page's script (`X-Requested-With`,
/// `Sec-Fetch-Mode` other than `navigate`), and not for Livy's API.
pub(super) fn is_navigation(
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    prefix: &str,
) -> bool {
    if *method != Method::GET || headers.contains_key("x-requested-with") {
        return false;
    }
    if let Some(mode) = headers.get("sec-fetch-mode") {
        if mode.as_bytes() != b"navigate" {
            return false;
        }
    }
    let api = path
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("/livy/"))
        .is_some_and(|rest| !rest.starts_with("ui"));
    !api && prefers_html(headers)
}

/// Whether `Accept` ranks `text/html` above `application/json` (a browser's
/// navigation does; `*/*` alone does not).
fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let weight = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let kind = parts.next()?.trim();
                let q = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (kind.eq_ignore_ascii_case(wanted)).then_some(q)
            })
            .fold(0.0f32, f32::max)
    };
    let html = weight("text/html");
    html > 0.0 && html >= weight("application/json")
}

/// HTML text with `&`, `<`, `>`, `"` and `'` escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small page of the gateway's own: a title, a sentence, a link; with
/// `refresh`, the browser follows the link at once.
pub(super) fn html_page(
    status: StatusCode,
    title: &str,
    text: &str,
    link: &str,
    refresh: bool,
) -> Response<Body> {
    let (title, text, link) = (escape(title), escape(text), escape(link));
    let refresh = match refresh {
        true => format!(r#"<meta http-equiv="refresh" content="0;url={link}">"#),
        false => String::new(),
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{refresh}<title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p><p><a href=\"{link}\">{link}</a></p></body></html>"
    );
    let mut response = Response::new(body::full(page));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; form-action 'none'; frame-ancestors 'none'"),
    );
    response
}

/// The answer to `error` for a person's navigation to a page of the cluster's
/// web UIs (`service` names it): `response` (the JSON answer, whose status and
/// headers stay: `Retry-After`, challenges) with a small page for a body.
pub(super) fn error_page(
    error: &RequestError,
    service: &str,
    link: &str,
    mut response: Response<Body>,
) -> Response<Body> {
    let status = response.status();
    let text = match status {
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            format!("{service} could not be reached or did not answer in time ({error}). Try again shortly.")
        }
        _ => error.to_string(),
    };
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = html_page(status, &title, &text, link, false);
    let (head, body) = page.into_parts();
    let headers = response.headers_mut();
    headers.remove(CONTENT_LENGTH);
    for (name, value) in head.headers {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
    *response.body_mut() = body;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/gateway/default";

    #[test]
    fn only_a_browsers_navigation_to_a_page_is_sent_to_sign_in() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.insert(*name, HeaderValue::from_static(value));
            }
            h
        };
        let browser = headers(&[
            (
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("sec-fetch-mode", "navigate"),
        ]);
        let page = "/gateway/default/yarn/proxy/application_1_0001/";
        assert!(is_navigation(&Method::GET, &browser, page, PREFIX));
        assert!(is_navigation(
            &Method::GET,
            &browser,
            "/gateway/default/livy/ui",
            PREFIX
        ));
        assert!(!is_navigation(&Method::POST, &browser, page, PREFIX));
        assert!(!is_navigation(
            &Method::GET,
            &browser,
            "/gateway/default/livy/v1/batches",
            PREFIX
        ));
        let script = headers(&[("accept", "text/html"), ("sec-fetch-mode", "cors")]);
        assert!(!is_navigation(&Method::GET, &script, page, PREFIX));
        let xhr = headers(&[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest"),
        ]);
        assert!(!is_navigation(&Method::GET, &xhr, page, PREFIX));
        for api in [
            "*/*",
            "application/json",
            "application/json, text/html;q=0.5",
        ] {
            let h = headers(&[("accept", Box::leak(api.to_string().into_boxed_str()))]);
            assert!(!is_navigation(&Method::GET, &h, page, PREFIX), "{api}");
        }
        assert!(!is_navigation(
            &Method::GET,
            &HeaderMap::new(),
            page,
            PREFIX
        ));
    }

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn an_error_page_keeps_the_answers_status_and_headers() {
        let error = RequestError::UpstreamTimeout;
        let mut json = error.to_response(&[]);
        json.headers_mut()
            .insert("retry-after", HeaderValue::from_static("5"));
        let page = error_page(
            &error,
            "The Spark History Server",
            "/gateway/default/sparkhistory/",
            json,
        );
        assert_eq!(page.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(page.headers()["retry-after"], "5");
        assert!(page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
    }
}
