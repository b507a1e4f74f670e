//! The response body type shared by every part of the gateway, and constructors for
//! the gateway's own (non-proxied) responses.
//!
//! Proxied bodies are streamed frame by frame; only small synthetic bodies (JSON
//! errors, simulator views) are built in memory.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

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

/// A streamed body that fails once more than a set number of bytes went through,
/// noting it in a shared flag so the caller can answer 413 rather than 502.
pub struct Capped<B> {
    inner: B,
    remaining: usize,
    exceeded: Arc<AtomicBool>,
}

impl<B> Capped<B> {
    /// Wraps `inner`; `exceeded` is set if it turns out longer than `limit`.
    pub fn new(inner: B, limit: usize, exceeded: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            remaining: limit,
            exceeded,
        }
    }
}

impl<B> http_body::Body for Capped<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                if len > this.remaining {
                    this.exceeded.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err("request body too large".into())));
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
    async fn capped_bodies_flag_overruns() {
        let flag = Arc::new(AtomicBool::new(false));
        let ok = Capped::new(full("abc"), 3, flag.clone());
        assert_eq!(&ok.collect().await.unwrap().to_bytes()[..], b"abc");
        assert!(!flag.load(Ordering::Relaxed));
        let over = Capped::new(full("abcd"), 3, flag.clone());
        assert!(over.collect().await.is_err());
        assert!(flag.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn collect_stops_at_the_limit() {
        assert_eq!(&collect_limited(full("abc"), 3).await.unwrap()[..], b"abc");
        assert!(matches!(
            collect_limited(full("abcd"), 3).await,
            Err(CollectError::TooLarge)
        ));
    }
}
