//! What the simulator reads from a request: create bodies with Livy's own fields
//! (unknown ones are refused, as Jackson refuses them), the query as Livy's framework
//! decodes it, Scalatra's method override, and Livy's error answers.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::LOCATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::Body;
use crate::error::json_response;

/// Statement create body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatementRequest {
    pub(super) code: Option<String>,
    #[allow(dead_code)]
    pub(super) kind: Option<String>,
}

/// Batch create body: every field Livy's `CreateBatchRequest` has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct BatchRequest {
    pub(super) file: Option<String>,
    pub(super) proxy_user: Option<String>,
    pub(super) class_name: Option<String>,
    pub(super) args: Option<Vec<String>>,
    pub(super) jars: Option<Vec<String>>,
    pub(super) py_files: Option<Vec<String>>,
    pub(super) files: Option<Vec<String>>,
    pub(super) driver_memory: Option<String>,
    pub(super) driver_cores: Option<i32>,
    pub(super) executor_memory: Option<String>,
    pub(super) executor_cores: Option<i32>,
    pub(super) num_executors: Option<i32>,
    pub(super) archives: Option<Vec<String>>,
    pub(super) queue: Option<String>,
    pub(super) name: Option<String>,
    pub(super) conf: Option<BTreeMap<String, String>>,
}

/// Session create body: every field Livy's `CreateInteractiveRequest` has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct SessionRequest {
    pub(super) kind: Option<String>,
    pub(super) proxy_user: Option<String>,
    pub(super) jars: Option<Vec<String>>,
    pub(super) py_files: Option<Vec<String>>,
    pub(super) files: Option<Vec<String>>,
    pub(super) driver_memory: Option<String>,
    pub(super) driver_cores: Option<i32>,
    pub(super) executor_memory: Option<String>,
    pub(super) executor_cores: Option<i32>,
    pub(super) num_executors: Option<i32>,
    pub(super) archives: Option<Vec<String>>,
    pub(super) queue: Option<String>,
    pub(super) name: Option<String>,
    pub(super) conf: Option<BTreeMap<String, String>>,
    pub(super) heartbeat_timeout_in_second: Option<i64>,
    pub(super) ttl: Option<String>,
    pub(super) idle_timeout: Option<String>,
}

/// A parsed request, as the handlers need it.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) segments: Vec<String>,
    pub(super) query: Vec<(String, String)>,
    pub(super) body: Bytes,
}

impl Call {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn int_param(&self, name: &str) -> Result<Option<i64>, LivyError> {
        self.param(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| fail(StatusCode::BAD_REQUEST, &format!("Invalid {name}: {v}")))
            })
            .transpose()
    }
}

pub(super) fn msg(status: StatusCode, text: &str) -> Response<Body> {
    json_response(status, &json!({ "msg": text }))
}

/// An error answer in Livy's form: a status and `{"msg": …}`.
#[derive(Debug)]
pub struct LivyError {
    status: StatusCode,
    msg: String,
}

impl LivyError {
    pub(super) fn into_response(self) -> Response<Body> {
        msg(self.status, &self.msg)
    }
}

pub(super) fn fail(status: StatusCode, text: &str) -> LivyError {
    LivyError {
        status,
        msg: text.to_owned(),
    }
}

pub(super) fn not_found(id: &str) -> LivyError {
    fail(StatusCode::NOT_FOUND, &format!("Session '{id}' not found."))
}

pub(super) fn created(location: String, view: Value) -> Response<Body> {
    let mut response = json_response(StatusCode::CREATED, &view);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, LivyError> {
    serde_json::from_slice(body).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            &format!("Rejected, Reason: cannot parse the request: {e}"),
        )
    })
}

/// Livy's query decoding: `+` is a space, `%XX` escapes.
pub(super) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// Scalatra's method override: a POST may claim to be another method.
pub(super) fn effective_method<B>(request: &Request<B>, query: &[(String, String)]) -> Method {
    if request.method() != Method::POST {
        return request.method().clone();
    }
    let from_header = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ]
    .iter()
    .find_map(|h| request.headers().get(*h))
    .and_then(|v| v.to_str().ok())
    .map(str::to_owned);
    let from_query = query
        .iter()
        .find(|(k, _)| k == "_method")
        .map(|(_, v)| v.clone());
    from_header
        .or(from_query)
        .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
        .unwrap_or(Method::POST)
}
