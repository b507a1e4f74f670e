//! Keep-alive connections to one Livy server, and the exchange of one request over
//! one of them.
//!
//! Connections are HTTP/1.1 (Livy speaks nothing else), opened on demand with a
//! connect timeout and `TCP_NODELAY`, and kept once a response has been read to the
//! end: at most `max_idle` of them, each for at most `idle_timeout` unused. The most
//! recently used idle connection goes first (the least likely to have been closed by
//! Livy meanwhile). A request that a kept connection cannot take after all (Livy
//! closed it while idle) goes out on another one; hyper hands back a request it did
//! not send, so nothing is ever sent twice. A response whose body is dropped before
//! its end takes its connection with it.
//!
//! hyper-util's general-purpose pool did the same job at about 5,000 instructions a
//! request (it keys connections by scheme and authority, hashed with SipHash on every
//! checkout and return, and wraps each exchange in further boxed futures): some 7% of
//! all the gateway spent on a proxied request. One pool per upstream needs no key.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

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
}

/// Connections to one upstream.
pub struct Pool {
    /// `host:port`, as given to the resolver.
    address: String,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

/// A kept connection, ready for its next request.
struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

impl Pool {
    pub fn new(
        address: String,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            address,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            connect_timeout,
        })
    }

    /// Sends `request` (origin-form URI, `Host` set) on a kept connection or a new
    /// one, and returns the response with its body still streaming.
    pub async fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, SendError> {
        loop {
            let (mut sender, kept) = match self.take_idle() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.clone().track(response, sender)),
                Err(mut error) => match error.take_message() {
                    // Closed while idle, before taking the request: try the next.
                    Some(unsent) if kept => request = unsent,
                    _ => return Err(SendError::Failed(error.into_error())),
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
            .retain(|idle| !idle.sender.is_closed() && !self.expired(idle, now));
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
    fn take_idle(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().expect("upstream pool lock");
        let now = Instant::now();
        while let Some(candidate) = idle.pop() {
            if candidate.sender.is_ready() && !self.expired(&candidate, now) {
                return Some(candidate.sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let fail = |reason: String| SendError::Connect {
            address: self.address.clone(),
            reason,
        };
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(fail(error.to_string())),
                Err(_) => return Err(fail(format!("timed out after {:?}", self.connect_timeout))),
            };
        stream
            .set_nodelay(true)
            .map_err(|error| fail(error.to_string()))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| fail(error.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "Livy connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Wraps the response body so the connection comes back when it has been read.
    fn track(
        self: Arc<Self>,
        response: Response<Incoming>,
        sender: SendRequest<Body>,
    ) -> Response<Body> {
        let (parts, incoming) = response.into_parts();
        let mut body = Returning {
            body: incoming,
            connection: Some((sender, self)),
        };
        if body.body.is_end_stream() {
            // Nothing to read (204, `Content-Length: 0`): the connection is free.
            body.give_back();
        }
        Response::from_parts(parts, body::boxed(body))
    }

    /// Keeps a connection whose exchange is over, once hyper says it can take the
    /// next request (at once, usually; else when its request body has gone out).
    fn put(self: Arc<Self>, mut sender: SendRequest<Body>) {
        if sender.is_ready() {
            self.keep(sender);
        } else if !sender.is_closed() {
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    self.keep(sender);
                }
            });
        }
    }

    fn keep(&self, sender: SendRequest<Body>) {
        let mut idle = self.idle.lock().expect("upstream pool lock");
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// A response body that gives its connection back once read to the end.
struct Returning {
    body: Incoming,
    connection: Option<(SendRequest<Body>, Arc<Pool>)>,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.connection.take() {
            pool.put(sender);
        }
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
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            Some(Ok(_)) if !this.body.is_end_stream() => {}
            // A broken exchange leaves the connection unusable: drop it.
            Some(Err(_)) => this.connection = None,
            _ => this.give_back(),
        }
        Poll::Ready(frame)
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

    async fn read(response: Response<Body>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// One whole exchange: the response body, read to the end.
    async fn fetch(pool: &Arc<Pool>) -> Bytes {
        read(pool.send(request()).await.unwrap()).await
    }

    /// Moves the clock past the pools' idle timeout (90 s).
    async fn outlive_idle_timeout() {
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(91)).await;
        tokio::time::resume();
    }

    /// Lets the connection tasks run until the pool holds `n` idle connections
    /// (bounded: a connection goes back as soon as hyper has seen the exchange end).
    async fn settle(pool: &Pool, n: usize) {
        for _ in 0..1000 {
            if pool.idle_count() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("pool holds {} idle connections, not {n}", pool.idle_count());
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_is_used_again() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        for _ in 0..3 {
            let response = pool.send(request()).await.unwrap();
            assert_eq!(read(response).await, "hello");
            settle(&pool, 1).await;
        }
        assert_eq!(livy.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_takes_its_connection_with_it() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        drop(pool.send(request()).await.unwrap());
        settle(&pool, 0).await;
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
                .iter()
                .any(|i| !i.sender.is_closed());
            if !usable {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn idle_connections_expire() {
        let livy = livy(true).await;
        let pool = pool(&livy, 8);
        assert_eq!(fetch(&pool).await, "hello");
        settle(&pool, 1).await;
        outlive_idle_timeout().await;
        assert_eq!(fetch(&pool).await, "hello");
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
        // And the housekeeping sweep drops one that sat too long.
        settle(&pool, 1).await;
        outlive_idle_timeout().await;
        pool.reap();
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn no_more_than_max_idle_are_kept() {
        let livy = livy(true).await;
        let pool = pool(&livy, 1);
        let first = pool.send(request()).await.unwrap();
        let second = pool.send(request()).await.unwrap();
        assert_eq!(livy.connections.load(Ordering::SeqCst), 2);
        assert_eq!(read(first).await, "hello");
        assert_eq!(read(second).await, "hello");
        settle(&pool, 1).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let pool = Pool::new(address, 8, Duration::from_secs(90), Duration::from_secs(5));
        let error = pool.send(request()).await.unwrap_err();
        assert!(matches!(error, SendError::Connect { .. }), "{error}");
    }
}
