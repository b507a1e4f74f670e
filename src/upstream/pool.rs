//! Keep-alive connections to one Livy server, and the exchange of one request over
//! one of them.
//!
//! Connections are HTTP/1.1 (Livy speaks nothing else), plain or over TLS for an
//! `https://` upstream, opened on demand ([`super::dial`]: each resolved address
//! with its share) with a connect timeout (covering the TLS handshake) and
//! `TCP_NODELAY`, and kept once a response has been read to the
//! end: at most `max_idle` of them, each for at most `idle_timeout` unused. The most
//! recently used idle connection goes first (the least likely to have been closed by
//! Livy meanwhile). A request that a kept connection cannot take after all (Livy
//! closed it while idle) goes out on another one; hyper hands back a request it did
//! not send, so nothing is ever sent twice. A response whose body is dropped before
//! its end takes its connection with it.
//!
//! A connection has no task of its own: the request using it drives it, writing the
//! request and reading the response head while waiting for the answer, and reading
//! the body as the body is read. With a task per connection every request went
//! through two more task switches (request to connection task, response back), and
//! under bursts of requests each waited behind the whole burst for both (what that
//! cost is in bench/README.md). An idle connection is looked at when it is next
//! taken or swept (so one Livy closed is let go then, not at once).
//!
//! Connections are numbered as they are opened. A request may be held to the
//! connections opened before a number ([`Over::OpenBefore`]), and an answer may
//! say which connection carried it ([`Opened`]): a TCP connection does not outlive
//! the server process at its other end, so a request sent on a connection that
//! was already open when an earlier answer came reaches the same process that
//! gave that answer, or fails; it never reaches a server restarted since
//! (`crate::gateway` confirms owners on this).
//!
//! One pool per upstream needs no key: hyper-util's general-purpose pool keys
//! connections by scheme and authority, hashes the key on every checkout and return,
//! and wraps each exchange in further boxed futures, all on every request.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::body::{self, Body};

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: nothing was sent.
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    /// The exchange failed on an open connection; the request may have been sent.
    #[error(transparent)]
    Failed(#[from] hyper::Error),
    /// No connection open before the number asked for is free ([`Over::OpenBefore`]):
    /// nothing was sent.
    #[error("no connection open since the number asked for is free")]
    NotOpenBefore,
}

/// Which connection a request may go on, and whether its answer says which it
/// went on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Any, kept or new.
    Any,
    /// Any, kept or new; the answer carries [`Opened`].
    Noted,
    /// Only a kept connection numbered below this (opened before it); the answer
    /// carries [`Opened`]. None free: [`SendError::NotOpenBefore`], nothing sent.
    OpenBefore(u64),
}

/// In an answer's extensions (asked for with [`Over::Noted`] or
/// [`Over::OpenBefore`]): the number of the connection that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened(pub u64);

/// An exchange that gave no answer: why, and the request itself when none of it
/// was sent (hyper hands back a request it did not write).
pub struct Unanswered {
    pub error: SendError,
    pub unsent: Option<Request<Body>>,
}

/// A connection to Livy: plain TCP, or TLS over it for an `https://` upstream.
enum Stream {
    Plain(TcpStream),
    /// Boxed: the TLS state is large, and most upstreams are plain.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How to talk TLS to an `https://` upstream: the client configuration (trust,
/// ALPN `http/1.1`) and the name its certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    pub connector: TlsConnector,
    pub server_name: ServerName<'static>,
}

/// Connections to one upstream.
pub struct Pool {
    /// `host:port`, as given to the resolver.
    address: String,
    /// Set for an `https://` upstream.
    tls: Option<TlsTarget>,
    idle: Mutex<Vec<Idle>>,
    /// How many connections have been opened: the next one's number.
    opened: AtomicU64,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

/// One connection to Livy: hyper's handle for sending requests on it, and the
/// connection itself, which whoever is using it drives (it has no task of its own,
/// so a request goes out and its answer comes in without a hop between tasks).
struct Link {
    sender: SendRequest<Body>,
    connection: http1::Connection<TokioIo<Stream>, Body>,
    /// Its number in the order connections were opened (from 1).
    number: u64,
}

impl Link {
    /// Lets hyper take in what has come meanwhile (the end of an exchange, Livy's
    /// close) without waiting for more; false once the connection is over.
    fn poll_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(&mut self.connection).poll(&mut cx).is_pending()
    }

    /// Whether the connection can take a request now.
    fn usable(&mut self) -> bool {
        self.poll_idle() && self.sender.is_ready()
    }
}

/// A kept connection, ready for its next request.
struct Idle {
    link: Box<Link>,
    since: Instant,
}

impl Pool {
    pub fn new(
        address: String,
        tls: Option<TlsTarget>,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            address,
            tls,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
            max_idle,
            idle_timeout,
            connect_timeout,
        })
    }

    /// Sends `request` (origin-form URI, `Host` set) on a kept connection or a new
    /// one, as `over` allows, and returns the response with its body still
    /// streaming. On failure the request comes back with the error when none of it
    /// was sent, so it may go to another server.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
        over: Over,
    ) -> Result<Response<Body>, Unanswered> {
        loop {
            let kept = match over {
                Over::OpenBefore(limit) => self.take_idle_before(limit),
                Over::Any | Over::Noted => self.take_idle(),
            };
            let (link, kept) = match (kept, over) {
                (Some(link), _) => (link, true),
                (None, Over::OpenBefore(_)) => {
                    return Err(Unanswered {
                        error: SendError::NotOpenBefore,
                        unsent: Some(request),
                    })
                }
                // Boxed: connecting is rare, and would size every request's future.
                (None, _) => match Box::pin(self.connect()).await {
                    Ok(link) => (link, false),
                    Err(error) => {
                        return Err(Unanswered {
                            error,
                            unsent: Some(request),
                        })
                    }
                },
            };
            let number = link.number;
            match exchange(link, request).await {
                (link, Ok(response)) => {
                    let mut response = self.clone().track(response, link);
                    if over != Over::Any {
                        response.extensions_mut().insert(Opened(number));
                    }
                    return Ok(response);
                }
                (_, Err(mut error)) => match error.take_message() {
                    // Closed while idle, before taking the request: try the next.
                    Some(unsent) if kept => request = unsent,
                    unsent => {
                        return Err(Unanswered {
                            error: SendError::Failed(error.into_error()),
                            unsent,
                        })
                    }
                },
            }
        }
    }

    /// Closes idle connections past their time, and forgets those Livy closed.
    pub fn reap(&self) {
        let now = Instant::now();
        self.idle
            .lock()
            .expect("upstream pool lock")
            .retain_mut(|idle| !self.expired(idle, now) && idle.link.poll_idle());
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().expect("upstream pool lock").len()
    }

    fn expired(&self, idle: &Idle, now: Instant) -> bool {
        now.duration_since(idle.since) >= self.idle_timeout
    }

    /// The most recently kept connection that is still usable.
    fn take_idle(&self) -> Option<Box<Link>> {
        let now = Instant::now();
        loop {
            let mut candidate = self.idle.lock().expect("upstream pool lock").pop()?;
            if !self.expired(&candidate, now) && candidate.link.usable() {
                return Some(candidate.link);
            }
        }
    }

    /// The most recently kept connection numbered below `limit` that is still
    /// usable; those of them found closed or past their time are let go.
    fn take_idle_before(&self, limit: u64) -> Option<Box<Link>> {
        let now = Instant::now();
        loop {
            let mut candidate = {
                let mut idle = self.idle.lock().expect("upstream pool lock");
                let at = idle.iter().rposition(|i| i.link.number < limit)?;
                idle.remove(at)
            };
            if !self.expired(&candidate, now) && candidate.link.usable() {
                return Some(candidate.link);
            }
        }
    }

    async fn connect(&self) -> Result<Box<Link>, SendError> {
        let fail = |reason: String| SendError::Connect {
            address: self.address.clone(),
            reason,
        };
        let stream = match tokio::time::timeout(self.connect_timeout, self.open()).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(fail(error.to_string())),
            Err(_) => return Err(fail(format!("timed out after {:?}", self.connect_timeout))),
        };
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| fail(error.to_string()))?;
        let number = self.opened.fetch_add(1, Ordering::Relaxed) + 1;
        // Boxed: it moves between the pool and requests' futures as one pointer.
        Ok(Box::new(Link {
            sender,
            connection,
            number,
        }))
    }

    /// A new connection: TCP, then TLS for an `https://` upstream.
    async fn open(&self) -> std::io::Result<Stream> {
        let tcp = super::dial::connect(&self.address, self.connect_timeout).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(tls) => {
                let stream = tls.connector.connect(tls.server_name.clone(), tcp).await?;
                Ok(Stream::Tls(Box::new(stream)))
            }
        }
    }

    /// Wraps the response body so the connection comes back when it has been read.
    fn track(
        self: Arc<Self>,
        response: Response<Incoming>,
        link: Option<Box<Link>>,
    ) -> Response<Body> {
        let (parts, incoming) = response.into_parts();
        let mut body = Returning {
            body: incoming,
            link: link.map(|link| (link, self)),
        };
        if body.body.is_end_stream() {
            // Nothing to read (204, `Content-Length: 0`): the connection is free.
            body.give_back();
        }
        Response::from_parts(parts, body::boxed(body))
    }

    /// Keeps a connection whose exchange is over, if hyper says it can take the
    /// next request (it cannot while Livy, having answered early, is still being
    /// sent the request body: such a connection is closed).
    fn put(&self, mut link: Box<Link>) {
        if !link.usable() {
            return;
        }
        let mut idle = self.idle.lock().expect("upstream pool lock");
        if idle.len() < self.max_idle {
            idle.push(Idle {
                link,
                since: Instant::now(),
            });
        }
    }
}

/// Sends `request` on `link` and drives the connection until the response head is
/// in. The link comes back unless the connection ended meanwhile.
async fn exchange(
    mut link: Box<Link>,
    request: Request<Body>,
) -> (
    Option<Box<Link>>,
    Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<Body>>>,
) {
    let mut answer = pin!(link.sender.try_send_request(request));
    let mut link = Some(link);
    let result = poll_fn(|cx| {
        if let Poll::Ready(result) = answer.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if let Some(open) = link.as_mut() {
            if Pin::new(&mut open.connection).poll(cx).is_pending() {
                return answer.as_mut().poll(cx);
            }
            // Over before answering: dropping it hands back what it still held.
            link = None;
        }
        answer.as_mut().poll(cx)
    })
    .await;
    (link, result)
}

/// A response body that drives its connection as it is read, and gives the
/// connection back once read to the end.
struct Returning {
    body: Incoming,
    link: Option<(Box<Link>, Arc<Pool>)>,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some((link, pool)) = self.link.take() {
            pool.put(link);
        }
    }

    fn frame(
        &mut self,
        frame: Option<Result<Frame<Bytes>, hyper::Error>>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &frame {
            Some(Ok(_)) if !self.body.is_end_stream() => {}
            // A broken exchange leaves the connection unusable: drop it.
            Some(Err(_)) => self.link = None,
            _ => self.give_back(),
        }
        Poll::Ready(frame)
    }
}

impl http_body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return this.frame(frame);
        }
        // Nothing yet: let the connection read on, then look again.
        match this.link.as_mut() {
            Some((link, _)) => {
                if Pin::new(&mut link.connection).poll(cx).is_ready() {
                    // Over: dropping it ends the body (in error if cut short).
                    this.link = None;
                }
            }
            None => return Poll::Pending,
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => this.frame(frame),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::header::HOST;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";

    /// A stand-in Livy on loopback answering every request with `hello`; with
    /// `keep_alive` false it closes each connection after one answer, without saying
    /// so (as a server whose idle timeout fires does).
    struct Livy {
        address: String,
        connections: Arc<AtomicUsize>,
    }

    async fn livy(keep_alive: bool) -> Livy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        head.extend_from_slice(&chunk[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            head.drain(..end + 4);
                            if stream.write_all(RESPONSE).await.is_err() || !keep_alive {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Livy {
            address,
            connections,
        }
    }

    fn pool(livy: &Livy, max_idle: usize) -> Arc<Pool> {
        Pool::new(
            livy.address.clone(),
            None,
            max_idle,
            Duration::from_secs(90),
            Duration::from_secs(5),
        )
    }

    fn request() -> Request<Body> {
        Request::get("/version")
            .header(HOST, "livy")
            .body(body::empty())
            .unwrap()
    }

    /// One exchange, up to the response head (bounded: a connection not driven
    /// never answers).
    async fn send(pool: &Arc<Pool>, request: Request<Body>) -> Result<Response<Body>, SendError> {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), pool.send(request, Over::Any)).await;
        answer.expect("answered in time").map_err(|e| e.error)
    }

    /// The whole body (bounded: a body whose connection is not driven never ends).
    async fn read(response: Response<Body>) -> Bytes {
        let body = response.into_body().collect();
        let collected = tokio::time::timeout(Duration::from_secs(10), body).await;
        collected.expect("body read in time").unwrap().to_bytes()
    }

    /// One whole exchange: the response body, read to the end.
    async fn fetch(pool: &Arc<Pool>) -> Bytes {
        read(send(pool, request()).await.unwrap()).await
    }

    /// Moves the clock past the pools' idle timeout (90 s).
    async fn outlive_idle_timeout() {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(91)).await;
        tokio::time::resume();
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_used_again() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        for _ in 0..3 {
            let response = send(&pool, request()).await.unwrap();
            assert_eq!(read(response).await, "hello");
            assert_eq!(pool.idle_count(), 1);
        }
        assert_eq!(livy.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_takes_its_connection_with_it() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        drop(send(&pool, request()).await.unwrap());
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_livy_closed_is_not_used() {
        let livy = livy(false).await;
        let pool = pool(&livy, 8);
        assert_eq!(fetch(&pool).await, "hello");
        // Livy closed it; wait until hyper has noticed.
        for _ in 0..1000 {
            let usable = pool
                .idle
                .lock()
                .unwrap()
                .iter_mut()
                .any(|i| i.link.poll_idle());
            if !usable {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_held_to_older_connections_goes_on_one_or_nowhere() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        let noted = |over| {
            let pool = pool.clone();
            async move {
                let answer = pool.send(request(), over).await;
                answer.map(|r| {
                    let opened = *r.extensions().get::<Opened>().expect("noted");
                    (opened, r)
                })
            }
        };
        let (first, response) = noted(Over::Noted).await.ok().unwrap();
        assert_eq!(first, Opened(1));
        assert_eq!(read(response).await, "hello");
        // No connection opened before the first: nothing is sent, the request
        // comes back.
        let refused = noted(Over::OpenBefore(1)).await.err().unwrap();
        assert!(matches!(refused.error, SendError::NotOpenBefore));
        assert!(refused.unsent.is_some());
        let (again, response) = noted(Over::OpenBefore(2)).await.ok().unwrap();
        assert_eq!(again, Opened(1));
        // While the first is busy, a held request does not open another.
        let refused = noted(Over::OpenBefore(2)).await.err().unwrap();
        assert!(matches!(refused.error, SendError::NotOpenBefore));
        assert_eq!(read(response).await, "hello");
        // Unheld requests number the connections they open.
        let busy = send(&pool, request()).await.unwrap();
        let (second, response) = noted(Over::Noted).await.ok().unwrap();
        assert_eq!(second, Opened(2));
        assert_eq!(read(busy).await, "hello");
        assert_eq!(read(response).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_expire() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(pool.idle_count(), 1);
        outlive_idle_timeout().await;
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
        // And the housekeeping sweep drops one that sat too long.
        assert_eq!(pool.idle_count(), 1);
        outlive_idle_timeout().await;
        pool.reap();
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn no_more_than_max_idle_are_kept() {
        let livy = livy(true).await;
        let pool = pool(&livy, 1);
        let first = send(&pool, request()).await.unwrap();
        let second = send(&pool, request()).await.unwrap();
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
        assert_eq!(read(first).await, "hello");
        assert_eq!(read(second).await, "hello");
        assert_eq!(pool.idle_count(), 1);
    }

    /// A stand-in Livy on one connection that echoes each request body back: the
    /// head, then the body in two writes with a pause between, so the answer
    /// arrives in parts. An empty body is answered with `Content-Length: 0`.
    async fn echo_livy() -> Livy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(echo(stream));
            }
        });
        Livy {
            address,
            connections,
        }
    }

    async fn echo(mut stream: TcpStream) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            buffer.drain(..end + 4);
            while buffer.len() < length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = buffer.drain(..length).collect();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {length}\r\n\r\n");
            let (first, second) = body.split_at(length / 2);
            for part in [head.as_bytes(), first, second] {
                if stream.write_all(part).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    #[tokio::test]
    async fn bodies_stream_both_ways_through_the_connection() {
        let livy = echo_livy().await;
        let pool = pool(&livy, 8);
        // The request body is fed while the exchange is under way.
        let (mut feed, streamed) =
            http_body_util::channel::Channel::<Bytes, body::BoxError>::new(1);
        let post = Request::post("/batches")
            .header(HOST, "livy")
            .header(http::header::CONTENT_LENGTH, "10")
            .body(body::boxed(streamed))
            .unwrap();
        let feeder = tokio::spawn(async move {
            for part in ["hello", "world"] {
                feed.send_data(Bytes::from(part)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let response = send(&pool, post).await.unwrap();
        assert_eq!(read(response).await, "helloworld");
        feeder.await.unwrap();
        assert_eq!(pool.idle_count(), 1);
        // An answer with no body frees its connection at once.
        let response = send(&pool, request()).await.unwrap();
        assert!(response.body().is_end_stream());
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(read(response).await, "");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let pool = Pool::new(
            address,
            None,
            8,
            Duration::from_secs(90),
            Duration::from_secs(5),
        );
        let error = send(&pool, request()).await.unwrap_err();
        assert!(matches!(error, SendError::Connect { .. }), "{error}");
        // Nothing was sent: the request comes back, body and all, for another server.
        let post = Request::post("/batches")
            .header(HOST, "livy")
            .body(body::full("{}"))
            .unwrap();
        let Err(unanswered) = pool.send(post, Over::Any).await else {
            panic!("nothing listens")
        };
        let unsent = unanswered.unsent.expect("handed back");
        let body = unsent.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "{}");
    }
}
