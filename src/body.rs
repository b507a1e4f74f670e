//! The response body type shared by every part of the gateway, and constructors for
//! the gateway's own (non-proxied) responses.
//!
//! Proxied bodies are streamed frame by frame; only small synthetic bodies (JSON
//! errors, simulator views) are built in memory. Request bodies are watched while
//! they stream ([`Guarded`]: past their size limit, or when they pause too long),
//! and an answer sent before a request body was read goes out through
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

/// What went wrong with a [`Guarded`] request body, for the answer: 413 rather than
/// 502 when it overran its limit, 408 when it stalled.
#[derive(Debug, Default)]
pub struct BodyTrouble {
    pub too_large: AtomicBool,
    pub stalled: AtomicBool,
}

/// A client's request body as the gateway reads it: it fails once more than its
/// limit went through, or once it has sent nothing for `timeout`, noting which in
/// its [`BodyTrouble`]. The timer only exists while the body is waiting, and
/// restarts with every frame.
pub struct Guarded<B> {
    inner: B,
    remaining: usize,
    timeout: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
    trouble: Arc<BodyTrouble>,
}

impl<B> Guarded<B> {
    /// Wraps `inner`, with no size limit yet (see [`Guarded::limit`]).
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            remaining: usize::MAX,
            timeout,
            waiting: None,
            trouble: Arc::default(),
        }
    }

    /// Lets at most `limit` more bytes through.
    pub fn limit(mut self, limit: usize) -> Self {
        self.remaining = limit;
        self
    }

    /// Where what went wrong with it is noted.
    pub fn trouble(&self) -> Arc<BodyTrouble> {
        self.trouble.clone()
    }
}

impl<B> http_body::Body for Guarded<B>
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
                this.waiting = None;
                let len = frame.data_ref().map_or(0, Bytes::len);
                if len > this.remaining {
                    this.trouble.too_large.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err("request body too large".into())));
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(other) => {
                this.waiting = None;
                Poll::Ready(other.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                let waiting = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match waiting.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.trouble.stalled.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err("request body stalled".into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
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
        // Draining adds no bytes, but its end is not the answer's last byte: an
        // exact length would let HTTP/1.1 end the answer (and never poll the
        // drain) once that many bytes are out, then close the connection with
        // the request body unread, which resets it under a client still sending.
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(self.answer.size_hint().lower());
        hint
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
    async fn guarded_bodies_flag_overruns() {
        let ok = Guarded::new(full("abc"), Duration::from_secs(1)).limit(3);
        let trouble = ok.trouble();
        assert_eq!(&ok.collect().await.unwrap().to_bytes()[..], b"abc");
        assert!(!trouble.too_large.load(Ordering::Relaxed));
        let over = Guarded::new(full("abcd"), Duration::from_secs(1)).limit(3);
        let trouble = over.trouble();
        assert!(over.collect().await.is_err());
        assert!(trouble.too_large.load(Ordering::Relaxed));
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
        let (mut feed, body) = fed();
        let mut body = Guarded::new(body, Duration::from_secs(30));
        let trouble = body.trouble();
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
        assert!(trouble.stalled.load(Ordering::Relaxed));
        assert!(!trouble.too_large.load(Ordering::Relaxed));
        drop(feed);
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_answer_reads_the_rest_of_the_request_then_ends() {
        let (mut feed, request) = fed();
        let mut answer = Draining::new(full("401"), request);
        assert!(!answer.is_end_stream());
        // No exact length: HTTP/1.1 would end the answer at its last byte and
        // never let the drain run.
        assert_eq!(answer.size_hint().exact(), None);
        assert_eq!(answer.size_hint().lower(), 3);
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
