//! One client connection: TLS handshake, HTTP/1.1 or HTTP/2 on top, and when to
//! close it.
//!
//! A handshake that does not finish within its timeout is dropped. A connection with
//! no request in flight and no bytes moving for the idle timeout is asked to close
//! gracefully, as is every connection when the gateway shuts down. Activity is
//! observed at the I/O level ([`Tracked`]), so a long response streaming to a slow
//! reader is never mistaken for idleness.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::gateway::ConnInfo;
use crate::metrics::Metrics;
use crate::runtime::Runtime;

/// When a connection last moved bytes, and how many requests it has in flight.
struct Activity {
    origin: Instant,
    /// Milliseconds since `origin` of the last read or write.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Marks a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An I/O stream that records when bytes move.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one accepted TCP connection until it closes, is idle too long, or
/// `shutdown` turns true. TLS and connection settings are those current when it was
/// accepted; each request is served by the gateway current when it arrives.
pub async fn serve(
    stream: TcpStream,
    conn: ConnInfo,
    runtime: Arc<Runtime>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = conn.peer;
    let settings = runtime.current().connection.clone();
    let handshake = settings.acceptor.accept(stream);
    let tls = match tokio::time::timeout(settings.handshake_timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            Metrics::kind(&runtime.metrics().tls_handshake_failures, "error");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            Metrics::kind(&runtime.metrics().tls_handshake_failures, "timeout");
            return;
        }
    };
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: tls,
        activity: activity.clone(),
    };
    let service = {
        let activity = activity.clone();
        let runtime = runtime.clone();
        service_fn(move |request| {
            let gateway = runtime.gateway();
            let conn = conn.clone();
            let in_flight = InFlight::new(&activity);
            async move {
                let response = gateway.handle(request, &conn).await;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let connection = settings.builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = *shutdown.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let idle_deadline = activity.last() + settings.idle_timeout;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ = tokio::time::sleep_until(idle_deadline), if !closing => {
                let idle = activity.in_flight.load(Ordering::Relaxed) == 0
                    && activity.last() + settings.idle_timeout <= Instant::now();
                if idle {
                    tracing::debug!(%peer, "closing idle connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
