//! The response body type shared by every part of the gateway, and constructors for
//! the gateway's own (non-proxied) responses.
//!
//! Proxied bodies are streamed frame by frame; only small synthetic bodies (JSON
//! errors, simulator views) are built in memory. Request bodies are watched while
//! they stream: [`Capped`] past their size limit, [`Stalling`] when they pause too
//! long, and an answer sent before a request body was read goes out through
//! [`Draining`], which reads the rest of that body (bounded) before ending the
//! answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// A request body that fails once it has sent nothing for `timeout`, noting it in a
/// shared flag so the caller can answer 408 rather than 502. The timer only exists
/// while the body is waiting, and restarts with every frame.
pub struct Stalling<B> {
    inner: B,
    timeout: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl<B> Stalling<B> {
    pub fn new(inner: B, timeout: Duration, stalled: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
            stalled,
        }
    }
}

impl<B> http_body::Body for Stalling<B>
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
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = tokio::time::Instant::now() + this.timeout;
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.stalled.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err("request body stalled".into())))
            }
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

/// Most of an unread request body [`Draining`] reads before giving up on it.
pub const DRAIN_LIMIT: usize = 4 << 20;
/// Longest [`Draining`] waits for the rest of a request body.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// An answer sent before its request body was read (a 401 to an unauthenticated
/// upload, a 413, a 429), followed, once its last byte is out, by reading and
/// dropping the rest of that request body: at most [`DRAIN_LIMIT`] bytes within
/// [`DRAIN_TIME`].
///
/// Without it the request is cut off mid-upload: over HTTP/2 the stream is reset
/// (RFC 9113 §8.1 allows `RST_STREAM(NO_ERROR)` after a complete response, yet
/// clients such as curl 7.x then report a framing error instead of the answer),
/// over HTTP/1.1 the connection is closed. Reading the rest lets the exchange end
/// normally; a body too large or too slow to read is then cut as before.
pub struct Draining<B> {
    answer: Body,
    request: Option<B>,
    left: usize,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> Draining<B> {
    pub fn new(answer: Body, request: B) -> Self {
        Self {
            answer,
            request: Some(request),
            left: DRAIN_LIMIT,
            deadline: None,
        }
    }
}

impl<B> http_body::Body for Draining<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.answer).poll_frame(cx) {
            Poll::Ready(None) => {}
            other => return other,
        }
        let Some(request) = this.request.as_mut() else {
            return Poll::Ready(None);
        };
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(DRAIN_TIME)));
        loop {
            match Pin::new(&mut *request).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    if len >= this.left {
                        break;
                    }
                    this.left -= len;
                }
                Poll::Ready(_) => break,
                Poll::Pending => {
                    if deadline.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    break;
                }
            }
        }
        this.request = None;
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.request.is_none() && self.answer.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        // Draining adds no bytes: the answer's length is the whole length.
        self.answer.size_hint()
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

/// Reads a whole body into memory, refusing more than `limit` bytes. Stopped
/// early, what is left of the body stays with the caller.
pub async fn collect_limited<B>(body: &mut B, limit: usize) -> Result<Bytes, CollectError<B::Error>>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
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
    use http_body::Body as _;

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
        assert_eq!(
            &collect_limited(&mut full("abc"), 3).await.unwrap()[..],
            b"abc"
        );
        assert!(matches!(
            collect_limited(&mut full("abcd"), 3).await,
            Err(CollectError::TooLarge)
        ));
    }

    /// A request body fed by the test: its sender, and the body.
    fn fed() -> (
        http_body_util::channel::Sender<Bytes, BoxError>,
        http_body_util::channel::Channel<Bytes, BoxError>,
    ) {
        http_body_util::channel::Channel::new(4)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_pauses_too_long_stalls() {
        let flag = Arc::new(AtomicBool::new(false));
        let (mut feed, body) = fed();
        let mut body = Stalling::new(body, Duration::from_secs(30), flag.clone());
        let reader = tokio::spawn(async move {
            let mut frames = 0;
            while let Some(frame) = body.frame().await {
                frame?;
                frames += 1;
            }
            Ok::<_, BoxError>(frames)
        });
        // Pauses shorter than the timeout are fine, however many.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(29)).await;
            feed.send_data(Bytes::from_static(b"x")).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert!(reader.await.unwrap().is_err());
        assert!(flag.load(Ordering::Relaxed));
        drop(feed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_answer_reads_the_rest_of_the_request_then_ends() {
        let (mut feed, request) = fed();
        let mut answer = Draining::new(full("401"), request);
        assert!(!answer.is_end_stream());
        assert_eq!(answer.size_hint().exact(), Some(3));
        let writer = tokio::spawn(async move {
            for _ in 0..3 {
                feed.send_data(Bytes::from_static(b"body")).await.unwrap();
            }
        });
        let out = answer.frame().await.unwrap().unwrap();
        assert_eq!(out.into_data().unwrap(), "401");
        assert!(answer.frame().await.is_none(), "ends when the request ends");
        writer.await.unwrap();

        // A request that never ends is given up after DRAIN_TIME.
        let (_feed, request) = fed();
        let mut answer = Draining::new(full("401"), request);
        answer.frame().await.unwrap().unwrap();
        let started = tokio::time::Instant::now();
        assert!(answer.frame().await.is_none());
        assert_eq!(started.elapsed(), DRAIN_TIME);

        // Nor is more than DRAIN_LIMIT read.
        let big = Bytes::from(vec![0u8; DRAIN_LIMIT]);
        let mut answer = Draining::new(full("413"), full(big));
        answer.frame().await.unwrap().unwrap();
        assert!(answer.frame().await.is_none());
    }
}
