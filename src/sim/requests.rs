//! What the simulator reads from a request: create bodies with Livy's own fields
//! (unknown ones are refused, as Jackson refuses them), the query as Livy's framework
//! decodes it, Scalatra's method override, and Livy's error answers.
//!
//! Create bodies are read as Livy's Jackson reads them (default `ObjectMapper`
//! with the Scala module): a scalar where a string is expected is taken as its
//! text (`"conf": {"spark.executor.instances": 6}` is `"6"`; `"driverMemory": 4`
//! is `"4"`); an array or object there, or a scalar where a list is expected, is a
//! 400. The `Option[Int]` fields (`driverCores`, `executorCores`,
//! `numExecutors`) lose their type to erasure, so Jackson keeps whatever JSON
//! value came; anything but an integer then fails when Livy unboxes it, and Livy
//! answers 500 with the `ClassCastException` as a JSON string.

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
    pub(super) kind: Option<String>,
}

/// Batch create body: every field Livy's `CreateBatchRequest` has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct BatchRequest {
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) file: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) proxy_user: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) class_name: Option<String>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) args: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) jars: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) py_files: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) files: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) driver_memory: Option<String>,
    pub(super) driver_cores: Option<Value>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) executor_memory: Option<String>,
    pub(super) executor_cores: Option<Value>,
    pub(super) num_executors: Option<Value>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) archives: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) queue: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "jackson::string_map")]
    pub(super) conf: Option<BTreeMap<String, String>>,
}

/// Session create body: every field Livy's `CreateInteractiveRequest` has.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub(super) struct SessionRequest {
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) kind: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) proxy_user: Option<String>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) jars: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) py_files: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) files: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) driver_memory: Option<String>,
    pub(super) driver_cores: Option<Value>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) executor_memory: Option<String>,
    pub(super) executor_cores: Option<Value>,
    pub(super) num_executors: Option<Value>,
    #[serde(default, deserialize_with = "jackson::strings")]
    pub(super) archives: Option<Vec<String>>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) queue: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "jackson::string_map")]
    pub(super) conf: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "jackson::int")]
    pub(super) heartbeat_timeout_in_second: Option<i64>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) ttl: Option<String>,
    #[serde(default, deserialize_with = "jackson::string")]
    pub(super) idle_timeout: Option<String>,
}

/// Livy's answer when it unboxes an erased `Option[Int]` that holds something
/// else: 500, the exception as a JSON string (Scalatra's rendering of
/// `InternalServerError(e.toString)`).
pub(super) fn erased_int_failure(fields: [&Option<Value>; 3]) -> Option<Response<Body>> {
    for value in fields.into_iter().flatten() {
        let class = match value {
            Value::Null => continue,
            Value::Number(n) if n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) => continue,
            Value::Number(n) if n.is_f64() => "java.lang.Double",
            Value::Number(_) => "java.lang.Long",
            Value::String(_) => "java.lang.String",
            Value::Bool(_) => "java.lang.Boolean",
            Value::Array(_) => "scala.collection.immutable.$colon$colon",
            Value::Object(_) => "scala.collection.immutable.Map$Map1",
        };
        let text =
            format!("java.lang.ClassCastException: {class} cannot be cast to java.lang.Integer");
        return Some(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!(text),
        ));
    }
    None
}

/// Jackson's coercions for the field types Livy's requests use.
mod jackson {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A scalar as Jackson's `StringDeserializer` takes it.
    fn text<E: Error>(value: Value, what: &str) -> Result<Option<String>, E> {
        match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Array(_) => Err(E::custom(format!(
                "Cannot deserialize value of type `{what}` from Array value"
            ))),
            Value::Object(_) => Err(E::custom(format!(
                "Cannot deserialize value of type `{what}` from Object value"
            ))),
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        text(Value::deserialize(d)?, "java.lang.String")
    }

    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Array(items) => items
                .into_iter()
                .map(|v| text(v, "java.lang.String").map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()
                .map(Some),
            _ => Err(D::Error::custom(
                "Cannot deserialize value of type `scala.collection.immutable.List<java.lang.String>` from a scalar value",
            )),
        }
    }

    pub fn string_map<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, String>>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| Ok((k, text(v, "java.lang.String")?.unwrap_or_default())))
                .collect::<Result<_, _>>()
                .map(Some),
            _ => Err(D::Error::custom(
                "Cannot deserialize value of type `scala.collection.immutable.Map<java.lang.String,java.lang.String>` from a non-object value",
            )),
        }
    }

    /// A primitive `Int`: numbers (a fraction dropped) and numeric strings.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let refused = || D::Error::custom("Cannot coerce value to `int`");
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(refused),
            Value::String(s) => s.trim().parse().map(Some).map_err(|_| refused()),
            _ => Err(refused()),
        }
    }
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
