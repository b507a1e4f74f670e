//! The response body type shared by every part of the gateway, and constructors for
//! the gateway's own (non-proxied) responses.
//!
//! Proxied bodies are streamed frame by frame; only small synthetic bodies (JSON
//! errors, simulator views) are built in memory.

use bytes::{Bytes, BytesMut};
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

/// Why [`collect_limited`] stopped.
#[derive(Debug)]
pub enum CollectError<E> {
    /// The body is longer than the limit.
    TooLarge,
    /// The body stream failed.
    Failed(E),
}

/// Reads a whole body into memory, refusing more than `limit` bytes.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError<B::Error>>
where
    B: http_body::Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(CollectError::Failed)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(CollectError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_stops_at_the_limit() {
        assert_eq!(&collect_limited(full("abc"), 3).await.unwrap()[..], b"abc");
        assert!(matches!(
            collect_limited(full("abcd"), 3).await,
            Err(CollectError::TooLarge)
        ));
    }
}
