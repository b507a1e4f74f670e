//! The response body type shared by every part of the gateway, and constructors for
//! the gateway's own (non-proxied) responses.
//!
//! Proxied bodies are streamed frame by frame; only small synthetic bodies (JSON
//! errors, simulator views) are built in memory.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};

/// Errors a body stream can produce, boxed so upstream and local bodies share a type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the gateway sends, and of every request it forwards.
pub type Body = BoxBody<Bytes, BoxError>;

/// A body that holds `bytes` in full.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Boxes any body whose errors convert into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}
