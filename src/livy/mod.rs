//! The Livy-specific policy: what each Livy request is, who may make it, and how the
//! caller's identity is asserted to Livy.
//!
//! [`classify`] names the operation (for the audit log and for the rules);
//! [`body`] parses and rewrites create bodies; [`query`] strips identity parameters
//! and appends the asserted `doAs`; [`listing`] filters collection listings down to
//! the caller's own resources; [`rules`] holds create bodies to `[policy]`;
//! [`check_content_type`] refuses bodies Livy's framework would read parameters
//! from; [`ui`] makes Livy's web UI pages work
//! under the gateway, safely.

pub mod body;
pub mod listing;
pub mod query;
pub mod rules;
pub mod ui;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method};

use crate::error::RequestError;
use crate::state::Kind;

/// The media type whose bodies Jetty parses into request parameters.
const FORM: &[u8] = b"application/x-www-form-urlencoded";
/// What Livy's endpoints read (with or without parameters such as a charset).
const JSON: &[u8] = b"application/json";
/// What Livy's upload endpoints take.
const MULTIPART: &[u8] = b"multipart/form-data";

/// Refuses a request whose declared body Livy should not be handed (415):
/// - a form-encoded body on any request: Livy's Jetty would read parameters from
///   it (`doAs`, `_method`);
/// - on a request that may change something (any method but `GET` and `HEAD`), a
///   body declared as anything but JSON: Livy reads JSON whatever the declared
///   type, and a `text/plain` or `multipart/form-data` body is what a browser
///   sends for another page's form without asking first (CORS needs no preflight
///   for them). `multipart/form-data` is taken where Livy takes it, on the
///   session upload endpoints (`upload-jar`, `upload-pyfile`, `upload-file`). A
///   request declaring no type is taken as today (curl with `-d` aside, clients
///   declare JSON).
///
/// The decision is taken on the header's bytes, so a value that is not ASCII
/// (which a text view would skip) cannot hide it: non-ASCII values, and more than
/// one `Content-Type`, are refused outright.
pub fn check_content_type(
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> Result<(), RequestError> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    if values.next().is_some() {
        return Err(RequestError::UnsupportedMediaType(
            "more than one Content-Type",
        ));
    }
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii() && (*b >= 0x20 || *b == b'\t'))
    {
        return Err(RequestError::UnsupportedMediaType(
            "the Content-Type is not plain ASCII",
        ));
    }
    let media_type = bytes
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if media_type.eq_ignore_ascii_case(FORM) {
        return Err(RequestError::UnsupportedMediaType(
            "form-encoded bodies are not accepted; send JSON",
        ));
    }
    if matches!(*method, Method::GET | Method::HEAD) || media_type.eq_ignore_ascii_case(JSON) {
        return Ok(());
    }
    if media_type.eq_ignore_ascii_case(MULTIPART) && is_upload(path) {
        return Ok(());
    }
    Err(RequestError::UnsupportedMediaType(
        "the body must be declared as application/json",
    ))
}

/// Whether `path` (as routed) is one of the session upload endpoints, the only
/// ones where Livy reads `multipart/form-data`.
fn is_upload(path: &str) -> bool {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    matches!(
        (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next()
        ),
        (
            Some("sessions"),
            Some(_),
            Some("upload-jar" | "upload-pyfile" | "upload-file"),
            None
        )
    )
}

/// What a request does, in Livy's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Audit name: `batch.create`, `session.statement`, `livy.version`, …
    pub action: &'static str,
    pub scope: Scope,
}

/// Which resources an operation touches, which decides the rules applied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Information about Livy itself (`/version`): open to every user.
    Open,
    /// `GET /batches` or `GET /sessions`.
    List(Kind),
    /// `POST /batches` or `POST /sessions`.
    Create(Kind),
    /// Anything under `/batches/{id}` or `/sessions/{id}`; `id` is the raw path
    /// segment (digits, or a name).
    Item { kind: Kind, id: String },
    /// Any other Livy path (its UI, metrics, …): administrators only.
    Other,
}

impl Operation {
    /// The ownership record the operation is decided on, when its path names a
    /// batch or session by number.
    pub fn record(&self) -> Option<(Kind, u64)> {
        match &self.scope {
            Scope::Item { kind, id } => numeric_id(id).map(|id| (*kind, id)),
            _ => None,
        }
    }
}

/// Names the operation for a Livy path (as routed, e.g. `/batches/3/log`).
pub fn classify(method: &Method, path: &str) -> Operation {
    // Every pattern below has at most five segments, so six tell them all apart
    // (a longer path is an `other` either way) without allocating.
    let mut segments = [""; 6];
    let mut count = 0;
    for segment in path
        .split('/')
        .filter(|s| !s.is_empty())
        .take(segments.len())
    {
        segments[count] = segment;
        count += 1;
    }
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let delete = *method == Method::DELETE;
    let op = |action, scope| Operation { action, scope };
    let item = |kind, id: &str| Scope::Item {
        kind,
        id: id.to_owned(),
    };
    match &segments[..count] {
        ["version"] if get => op("livy.version", Scope::Open),
        ["batches"] if get => op("batch.list", Scope::List(Kind::Batch)),
        ["batches"] if post => op("batch.create", Scope::Create(Kind::Batch)),
        ["sessions"] if get => op("session.list", Scope::List(Kind::Session)),
        ["sessions"] if post => op("session.create", Scope::Create(Kind::Session)),
        ["batches", id, rest @ ..] => {
            let action = match (rest, method) {
                ([], _) if get => "batch.get",
                ([], _) if delete => "batch.kill",
                (["state"], _) if get => "batch.state",
                (["log"], _) if get => "batch.log",
                _ => "batch.other",
            };
            op(action, item(Kind::Batch, id))
        }
        ["sessions", id, rest @ ..] => {
            let action = match rest {
                [] if get => "session.get",
                [] if delete => "session.kill",
                ["state"] if get => "session.state",
                ["log"] if get => "session.log",
                ["statements"] if get => "session.statements",
                ["statements"] if post => "session.statement",
                ["statements", _] if get => "session.statement.get",
                ["statements", _, "cancel"] if post => "session.statement.cancel",
                ["completion"] if post => "session.completion",
                ["interrupt"] if post => "session.interrupt",
                [upload] if post && upload.starts_with("upload-") => "session.upload",
                [add] if post && add.starts_with("add-") => "session.upload",
                _ => "session.other",
            };
            op(action, item(Kind::Session, id))
        }
        _ => op("livy.other", Scope::Other),
    }
}

/// The numeric id in an item segment, if it is one (Livy treats all-digit ids as ids
/// and anything else as a name).
pub fn numeric_id(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(m: Method, p: &str) -> &'static str {
        classify(&m, p).action
    }

    #[test]
    fn operations_are_named() {
        assert_eq!(action(Method::GET, "/batches/"), "batch.list");
        assert_eq!(action(Method::POST, "/batches"), "batch.create");
        assert_eq!(action(Method::DELETE, "/batches/3"), "batch.kill");
        assert_eq!(action(Method::GET, "/batches/3/log"), "batch.log");
        assert_eq!(
            action(Method::POST, "/sessions/3/statements"),
            "session.statement"
        );
        assert_eq!(
            action(Method::POST, "/sessions/3/statements/1/cancel"),
            "session.statement.cancel"
        );
        assert_eq!(
            action(Method::POST, "/sessions/3/completion"),
            "session.completion"
        );
        assert_eq!(
            action(Method::POST, "/sessions/3/upload-jar"),
            "session.upload"
        );
        assert_eq!(action(Method::GET, "/version"), "livy.version");
        // Longer than any named operation: still the resource's `other`.
        assert_eq!(
            action(Method::POST, "/sessions/3/statements/1/cancel/x/y/z"),
            "session.other"
        );
        assert_eq!(action(Method::GET, "/batches/3/a/b/c/d/e/f"), "batch.other");
        assert_eq!(classify(&Method::GET, "/ui").scope, Scope::Other);
        assert_eq!(classify(&Method::DELETE, "/batches").scope, Scope::Other);
        assert_eq!(
            classify(&Method::GET, "/sessions/nightly/state").scope,
            Scope::Item {
                kind: Kind::Session,
                id: "nightly".into()
            }
        );
    }

    fn check(method: Method, path: &str, values: &[&[u8]]) -> Result<(), RequestError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CONTENT_TYPE, http::HeaderValue::from_bytes(v).unwrap());
        }
        check_content_type(&h, &method, path)
    }

    #[test]
    fn form_bodies_are_refused_on_the_bytes_of_the_media_type() {
        let with = |values: &[&[u8]]| check(Method::GET, "/batches", values);
        for ok in [
            &b"application/json"[..],
            b"application/json; charset=utf-8",
            b"text/plain",
            b"multipart/form-data; boundary=x",
        ] {
            assert!(with(&[ok]).is_ok(), "{ok:?}");
        }
        assert!(with(&[]).is_ok());
        for bad in [
            &b"application/x-www-form-urlencoded"[..],
            b"  Application/X-WWW-Form-Urlencoded ; charset=utf-8",
            b"application/x-www-form-urlencoded;x=\xe9",
            b"application/json; x=\xe9",
            b"\xe9",
        ] {
            assert!(
                matches!(with(&[bad]), Err(RequestError::UnsupportedMediaType(_))),
                "{bad:?}"
            );
        }
        assert!(with(&[b"application/json", b"application/json"]).is_err());
    }

    #[test]
    fn bodies_that_change_state_must_be_declared_json() {
        for (method, path) in [
            (Method::POST, "/batches"),
            (Method::POST, "/sessions/0/statements"),
            (Method::DELETE, "/batches/3"),
            (Method::POST, "/sessions/0/add-jar"),
        ] {
            for ok in [&b"application/json"[..], b"Application/JSON;charset=UTF-8"] {
                assert!(check(method.clone(), path, &[ok]).is_ok(), "{path} {ok:?}");
            }
            assert!(
                check(method.clone(), path, &[]).is_ok(),
                "{path}: none declared"
            );
            for bad in [
                &b"text/plain"[..],
                b"text/plain;charset=UTF-8",
                b"multipart/form-data; boundary=x",
                b"application/octet-stream",
                b"application/jsonx",
            ] {
                assert!(
                    matches!(
                        check(method.clone(), path, &[bad]),
                        Err(RequestError::UnsupportedMediaType(_))
                    ),
                    "{path} {bad:?}"
                );
            }
        }
        // Uploads take multipart, and only uploads do.
        for upload in ["upload-jar", "upload-pyfile", "upload-file"] {
            let path = format!("/sessions/4/{upload}");
            let multipart: &[u8] = b"multipart/form-data; boundary=----x";
            assert!(check(Method::POST, &path, &[multipart]).is_ok(), "{path}");
            assert!(
                check(Method::POST, &path, &[b"text/plain"]).is_err(),
                "{path}"
            );
        }
        assert!(check(
            Method::POST,
            "/sessions/4/upload-jar/x",
            &[b"multipart/form-data"]
        )
        .is_err());
    }

    #[test]
    fn numeric_ids() {
        assert_eq!(numeric_id("42"), Some(42));
        assert_eq!(numeric_id("nightly"), None);
        assert_eq!(numeric_id("-1"), None);
        assert_eq!(numeric_id("99999999999999999999999"), None);
    }
}
