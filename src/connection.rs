//! One client connection: TLS handshake, HTTP/1.1 or HTTP/2 on top (as ALPN chose),
//! when to close it, and what it holds while idle.
//!
//! A handshake that does not finish within its timeout is dropped. A connection that
//! has sent no request within the header read timeout of its handshake, or that has
//! had no bytes moving for the idle timeout while nothing waits on the gateway's
//! side, is asked to close gracefully, as is every connection when the gateway
//! shuts down; one that has not closed a grace period later is dropped. Activity is
//! observed at the I/O level ([`Tracked`]) as a flag the watchdog samples on its own
//! timer (a quarter of the idle timeout, or half the release time).
//!
//! "Waits on the gateway's side" means a request whose handler is still running
//! (bounded by Livy's timeouts and the body idle timeout), or a response body
//! waiting for Livy's next bytes. A response the *client* does not take (an HTTP/2
//! stream whose flow-control window stays shut, a reader that stopped reading) is
//! not a reason to keep a connection: a client could otherwise hold a slot forever
//! with one request and a zero window. A response streaming to a slow reader moves
//! bytes, so it is never mistaken for idleness.
//!
//! An idle HTTP/1.1 keep-alive connection gives back hyper's per-connection buffers
//! (read and write buffers, some 25 KB) after `release_buffers_after`: the stream
//! reports end-of-input to hyper, which ends its connection cleanly without closing
//! the socket, and the connection waits, holding only its TLS state, until the
//! client sends again; then a fresh hyper connection serves it. This is only done
//! when nothing is in flight, every byte hyper wrote has been flushed and no bytes of
//! an unfinished request have arrived, so nothing is lost or cut. Clients see one
//! ordinary keep-alive connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::body::{Body, BoxError};
use crate::gateway::ConnInfo;
use crate::metrics::Metrics;
use crate::runtime::{ConnectionSettings, Runtime};
use crate::tls::ALPN_H2;

/// What one connection's parts know about its traffic. The I/O path only raises
/// flags; the watchdog samples them on its own timer, so no request reads the clock
/// for it.
struct Activity {
    /// Bytes moved, or a request started or ended, since the watchdog last looked.
    moved: AtomicBool,
    /// Requests whose responses are not yet fully handed to hyper.
    in_flight: AtomicUsize,
    /// Requests whose handler is still running (no response head yet).
    handling: AtomicUsize,
    /// Response bodies whose last poll found nothing from Livy yet.
    awaiting_upstream: AtomicUsize,
    /// Whether any request has arrived on the connection.
    requested: AtomicBool,
    /// Bytes arrived that no finished request accounts for (part of a request).
    unanswered_bytes: AtomicBool,
    /// The watchdog asks the stream to end hyper's connection at its next idle read.
    release_requested: AtomicBool,
    /// The stream did so: the connection lives on without hyper.
    released: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            moved: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            handling: AtomicUsize::new(0),
            awaiting_upstream: AtomicUsize::new(0),
            requested: AtomicBool::new(false),
            unanswered_bytes: AtomicBool::new(false),
            release_requested: AtomicBool::new(false),
            released: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        if !self.moved.load(Ordering::Relaxed) {
            self.moved.store(true, Ordering::Relaxed);
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }

    /// Whether something on the gateway's side is under way (a handler running, a
    /// response waiting for Livy), which keeps a quiet connection open.
    fn working(&self) -> bool {
        self.handling.load(Ordering::Relaxed) > 0
            || self.awaiting_upstream.load(Ordering::Relaxed) > 0
    }

    /// Whether hyper may be told the input ended: asked for, and nothing is in
    /// flight or half received.
    fn may_release(&self) -> bool {
        self.release_requested.load(Ordering::Relaxed)
            && !self.busy()
            && !self.unanswered_bytes.load(Ordering::Relaxed)
    }
}

/// Counts a request in flight for as long as it lives; it travels inside the
/// response body, so it ends when hyper has taken the last byte.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.requested.store(true, Ordering::Relaxed);
        activity.release_requested.store(false, Ordering::Relaxed);
        activity.touch();
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.unanswered_bytes.store(false, Ordering::Relaxed);
        }
    }
}

/// Counts a handler as running for as long as it lives.
struct HandlerRunning(Arc<Activity>);

impl HandlerRunning {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for HandlerRunning {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request [`InFlight`], and notes while it waits
/// for Livy's next bytes.
struct ResponseBody {
    inner: Body,
    in_flight: InFlight,
    /// Its last poll was pending (counted in `awaiting_upstream`).
    awaiting: bool,
}

impl ResponseBody {
    fn awaiting(&mut self, now: bool) {
        if now != self.awaiting {
            self.awaiting = now;
            let counter = &self.in_flight.0.awaiting_upstream;
            match now {
                true => counter.fetch_add(1, Ordering::Relaxed),
                false => counter.fetch_sub(1, Ordering::Relaxed),
            };
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.awaiting(false);
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.awaiting(polled.is_pending());
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// hyper's service for one connection: each request goes to the gateway current
/// when it arrives.
#[derive(Clone)]
struct Handler {
    runtime: Arc<Runtime>,
    conn: ConnInfo,
    activity: Arc<Activity>,
}

type Handling = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    // Boxed: an idle connection then keeps a pointer, not a request's whole state.
    type Future = Handling;

    fn call(&self, request: Request<Incoming>) -> Handling {
        let gateway = self.runtime.gateway();
        let conn = self.conn.clone();
        let in_flight = InFlight::new(&self.activity);
        let running = HandlerRunning::new(&self.activity);
        Box::pin(async move {
            let response = gateway.handle(request, &conn).await;
            drop(running);
            Ok(response.map(|inner| ResponseBody {
                inner,
                in_flight,
                awaiting: false,
            }))
        })
    }
}

/// The TLS stream under hyper: records when bytes move and whether hyper's writes
/// are flushed, and ends the input for hyper when the connection is released.
struct Tracked {
    inner: Tls,
    activity: Arc<Activity>,
    /// hyper wrote since its last completed flush.
    unflushed: bool,
}

type Io = TokioIo<Tracked>;

/// A client's TLS stream, boxed so that moving it between phases moves a pointer.
type Tls = Box<TlsStream<TcpStream>>;

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match result {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                let activity = &self.activity;
                activity.touch();
                activity.unanswered_bytes.store(true, Ordering::Relaxed);
                activity.release_requested.store(false, Ordering::Relaxed);
            }
            Poll::Pending if !self.unflushed && self.activity.may_release() => {
                self.activity.released.store(true, Ordering::Relaxed);
                return Poll::Ready(Ok(()));
            }
            _ => {}
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.unflushed = true;
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
        self.unflushed = true;
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
        // hyper flushes the stream only once its own buffer is empty.
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.unflushed = false;
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A hyper connection as the watchdog drives it.
trait Served {
    fn poll_served(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>>;
    fn close_gracefully(&mut self);
}

impl Served for http1::Connection<Io, Handler> {
    fn poll_served(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        // The socket stays open: it may only have been released.
        self.poll_without_shutdown(cx)
    }

    fn close_gracefully(&mut self) {
        Pin::new(self).graceful_shutdown();
    }
}

impl Served for Pin<Box<http2::Connection<Io, Handler, TokioExecutor>>> {
    fn poll_served(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        self.as_mut().poll(cx)
    }

    fn close_gracefully(&mut self) {
        self.as_mut().graceful_shutdown();
    }
}

/// Everything one connection's loops share.
struct Conn {
    peer: std::net::SocketAddr,
    settings: Arc<ConnectionSettings>,
    activity: Arc<Activity>,
    shutdown: watch::Receiver<bool>,
    closing: bool,
    runtime: Arc<Runtime>,
    /// When the watchdog last saw the connection active (within one check).
    quiet_since: Instant,
    /// When its TLS handshake finished: the first request is due within the header
    /// read timeout of it.
    opened: Instant,
}

/// Serves one accepted TCP connection until it closes, is idle too long, or
/// `shutdown` turns true. TLS and connection settings are those current when it was
/// accepted; each request is served by the gateway current when it arrives.
pub async fn serve(
    stream: TcpStream,
    mut conn: ConnInfo,
    runtime: Arc<Runtime>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = conn.peer;
    let settings = runtime.current().connection.clone();
    match tokio::time::timeout(settings.handshake_timeout, speaks_tls(&stream)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            tracing::debug!(%peer, "plain HTTP on the TLS port");
            Metrics::kind(&runtime.metrics().tls_handshake_failures, "plain_http");
            // Boxed: rare, and it would size every connection's future.
            Box::pin(refuse_plain_http(stream, settings.handshake_timeout)).await;
            return;
        }
        Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            Metrics::kind(&runtime.metrics().tls_handshake_failures, "timeout");
            return;
        }
    }
    // Boxed, like the stream it yields: the task's own future stays small, which is
    // what every idle connection keeps.
    let handshake = Box::pin(settings.acceptor.accept(stream));
    let tls = match tokio::time::timeout(settings.handshake_timeout, handshake).await {
        Ok(Ok(tls)) => Box::new(tls),
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
    conn.set_server_name(tls.get_ref().1.server_name());
    let activity = Arc::new(Activity::new());
    let handler = Handler {
        runtime: runtime.clone(),
        conn,
        activity: activity.clone(),
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(ALPN_H2);
    let closing = *shutdown.borrow();
    let mut conn = Conn {
        peer,
        settings,
        activity,
        shutdown,
        closing,
        runtime,
        quiet_since: Instant::now(),
        opened: Instant::now(),
    };
    if h2 {
        conn.serve_http2(tls, handler).await;
    } else {
        conn.serve_http1(tls, handler).await;
    }
}

impl Conn {
    fn tracked(&self, tls: Tls) -> Io {
        TokioIo::new(Tracked {
            inner: tls,
            activity: self.activity.clone(),
            unflushed: false,
        })
    }

    async fn serve_http2(&mut self, tls: Tls, handler: Handler) {
        let io = self.tracked(tls);
        let mut connection = Box::pin(self.settings.http2.serve_connection(io, handler));
        Box::pin(self.watch(&mut connection, None)).await;
    }

    /// Serves HTTP/1.1 in rounds: a round ends when the client closes, the
    /// connection is closed, or it was released while idle; then the connection
    /// waits for the client's next bytes without hyper.
    async fn serve_http1(&mut self, mut tls: Tls, handler: Handler) {
        let release_after = self.settings.release_buffers_after;
        loop {
            self.activity
                .release_requested
                .store(false, Ordering::Relaxed);
            let io = self.tracked(tls);
            let mut connection =
                Box::new(self.settings.http1.serve_connection(io, handler.clone()));
            if !Box::pin(self.watch(&mut *connection, release_after)).await {
                return;
            }
            let parts = connection.into_parts();
            tls = parts.io.into_inner().inner;
            if !self.activity.released.swap(false, Ordering::Relaxed) {
                close(tls, self.settings.handshake_timeout).await;
                return;
            }
            if !parts.read_buf.is_empty() {
                // Not expected (nothing is released with bytes pending), but never
                // carry on without bytes hyper had read.
                tracing::debug!(peer = %self.peer, "released connection had unread bytes; closing");
                return;
            }
            // The (empty) read buffer still shares hyper's allocation: free it before
            // the wait, which is the point of releasing.
            drop(parts.read_buf);
            if !Box::pin(self.wait_released(&tls)).await {
                close(tls, self.settings.handshake_timeout).await;
                return;
            }
        }
    }

    /// Waits, holding no HTTP state, until the client sends again (true), or the
    /// connection is idle too long or the gateway shuts down (false).
    async fn wait_released(&mut self, tls: &Tls) -> bool {
        if self.closing {
            return false;
        }
        let parked = &self.runtime.metrics().released_connections;
        parked.inc();
        let mut idle_deadline = self.quiet_since + self.settings.idle_timeout;
        if !self.activity.requested.load(Ordering::Relaxed) {
            // Released before its first request: that is still due in time.
            idle_deadline = idle_deadline.min(self.opened + self.settings.header_read_timeout);
        }
        let woken = loop {
            tokio::select! {
                ready = tls.get_ref().0.readable() => break ready.is_ok(),
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        self.closing = true;
                        break false;
                    }
                }
                _ = tokio::time::sleep_until(idle_deadline) => {
                    tracing::debug!(peer = %self.peer, "closing idle connection");
                    break false;
                }
            }
        };
        parked.dec();
        woken
    }

    /// Drives `connection` until it ends (true when it ended without an error),
    /// closing it gracefully when it sent no request in time, when idle too long or
    /// on shutdown, and asking for its release after `release_after` idle. A
    /// connection closed for idleness that has not ended a grace period later is
    /// dropped (false): its client is not taking what it asked for.
    async fn watch(
        &mut self,
        connection: &mut impl Served,
        release_after: Option<Duration>,
    ) -> bool {
        let activity = self.activity.clone();
        let idle_timeout = self.settings.idle_timeout;
        let first_request_by = self.opened + self.settings.header_read_timeout;
        if self.closing {
            connection.close_gracefully();
        }
        // Checked often enough to release within 1.5 × `release_after`, close within
        // 1.25 × the idle timeout of the last activity, and within 1.25 × the
        // header read timeout of the handshake when no request came.
        let check_every = |requested: bool| {
            let mut every =
                release_after.map_or(idle_timeout / 4, |after| (after / 2).min(idle_timeout / 4));
            if !requested {
                every = every.min(self.settings.header_read_timeout / 4);
            }
            every.max(Duration::from_millis(10))
        };
        // Set once the connection is being closed for idleness.
        let mut give_up_at: Option<Instant> = None;
        loop {
            let requested = activity.requested.load(Ordering::Relaxed);
            let deadline = Instant::now() + check_every(requested);
            tokio::select! {
                result = std::future::poll_fn(|cx| connection.poll_served(cx)) => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, %error, "connection ended with an error");
                        return false;
                    }
                    return true;
                }
                changed = self.shutdown.changed(), if !self.closing => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        self.closing = true;
                        connection.close_gracefully();
                    }
                }
                _ = tokio::time::sleep_until(give_up_at.unwrap_or(deadline)), if give_up_at.is_some() => {
                    tracing::debug!(peer = %self.peer, "connection did not close in time; dropping it");
                    return false;
                }
                _ = tokio::time::sleep_until(deadline), if !self.closing => {
                    let now = Instant::now();
                    if !requested && now >= first_request_by {
                        // Nothing to finish: no request ever came.
                        tracing::debug!(peer = %self.peer, "no request within the header read timeout; closing");
                        return false;
                    }
                    if activity.moved.swap(false, Ordering::Relaxed) || activity.working() {
                        self.quiet_since = now;
                        continue;
                    }
                    let idle = now.saturating_duration_since(self.quiet_since);
                    if idle >= idle_timeout {
                        tracing::debug!(peer = %self.peer, "closing idle connection");
                        self.closing = true;
                        give_up_at = Some(now + self.close_grace());
                        connection.close_gracefully();
                    } else if release_after.is_some_and(|after| idle >= after) {
                        // The next poll of the connection reaches the stream's read.
                        activity.release_requested.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// How long a connection closed for idleness may take to finish closing.
    fn close_grace(&self) -> Duration {
        (self.settings.idle_timeout / 4).max(Duration::from_secs(1))
    }
}

/// Whether the client's first byte opens a TLS record (a handshake, 0x16) rather
/// than a plain HTTP request (a method's capital letter). Anything else goes on to
/// the TLS handshake, which fails it.
async fn speaks_tls(stream: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    Ok(n == 0 || !first[0].is_ascii_uppercase())
}

/// Answers a plain HTTP request sent to the TLS port with a 400 saying to use
/// https (as nginx does), then closes. What the client sent is read and dropped
/// for a moment first (a bounded lingering close), so the answer is not lost to a
/// reset caused by unread bytes.
async fn refuse_plain_http(mut stream: TcpStream, within: Duration) {
    use tokio::io::AsyncReadExt;
    let answer = crate::error::RequestError::PlainHttp.to_bytes();
    let _ = tokio::time::timeout(within, async {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Ends a connection hyper has let go of: TLS close_notify, then the socket.
async fn close(mut tls: Tls, within: Duration) {
    let _ = tokio::time::timeout(within, tls.shutdown()).await;
}
