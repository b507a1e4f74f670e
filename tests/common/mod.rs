//! Shared test harness: a gateway on 127.0.0.1:0 with a freshly generated CA and
//! certificate, users in an htpasswd file, and either the Livy simulator or a
//! recording upstream behind it; plus a TLS client that trusts that CA and speaks
//! HTTP/1.1 or HTTP/2.
#![allow(dead_code)]

pub mod idp;
pub mod kdc;
pub mod redis;
pub mod sim_process;
pub mod slapd;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use livy_gateway::certgen;
use livy_gateway::config::{Config, UpstreamUrl};
use livy_gateway::runtime::Runtime;
use livy_gateway::server;
use livy_gateway::sim::{self, SimConfig, Simulator};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Passwords of the test users (alice, bob, admin).
pub const PASSWORD: &str = "s3cret-pw";
pub const BASE: &str = "/gateway/default/livy/v1";

/// What stands behind the gateway in a test.
pub enum Backend {
    /// The Livy simulator with this configuration.
    Sim(SimConfig),
    /// A recording upstream answering with `Responder`.
    Recorder(Responder),
    /// The same over TLS (`https://localhost`, with a certificate from the test CA).
    TlsRecorder(Responder),
    /// A URL where nothing listens.
    Refusing,
    /// These upstream URLs, as given.
    Urls(Vec<String>),
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How the recording upstream answers.
pub enum Reply {
    Now(Response<Full<Bytes>>),
    /// Answer after a delay (for requests in flight).
    After(std::time::Duration, Response<Full<Bytes>>),
    /// Never answer (for upstream timeouts).
    Never,
}

pub type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// The simulator with time running so fast that every job is done when asked.
pub fn fast_sim() -> Backend {
    Backend::Sim(SimConfig {
        speed: 1_000_000.0,
        ..SimConfig::default()
    })
}

/// A recording upstream that answers 200 `{"ok":true}` to everything.
pub fn ok_responder() -> Responder {
    Arc::new(|_| Reply::Now(json_reply(StatusCode::OK, r#"{"ok":true}"#)))
}

pub fn json_reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A running gateway and what it needs.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub dir: tempfile::TempDir,
    pub recorded: Arc<Mutex<Vec<Recorded>>>,
    /// The upstream URL(s), separated by spaces.
    pub upstream: String,
    /// What the gateway runs (for reloads and metrics).
    pub runtime: Arc<Runtime>,
    /// The admin listener (metrics, health).
    pub admin_addr: SocketAddr,
    admin: Option<tokio::task::JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

/// One change to the harness's configuration.
type Change = Box<dyn FnOnce(&mut Config) + Send>;

/// How a test gateway is set up: what stands behind it, and changes to the
/// harness's configuration (typed: the harness writes the file from them).
pub struct Options {
    pub backend: Backend,
    configure: Vec<Change>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sim(SimConfig {
                speed: 1000.0,
                ..SimConfig::default()
            }),
            configure: Vec::new(),
        }
    }
}

impl Options {
    /// The default configuration in front of `backend`.
    pub fn backend(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }

    /// The same changes in front of `backend` instead.
    pub fn with_backend(self, backend: Backend) -> Self {
        Self { backend, ..self }
    }

    /// Also applies `change` to the configuration.
    pub fn with(mut self, change: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.configure.push(Box::new(change));
        self
    }
}

/// Whole seconds, for configuration durations.
pub fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

/// Rate limits high enough that only tests about them ever hit them.
fn relaxed_limits(config: &mut Config) {
    let r = &mut config.rate_limit;
    r.per_ip_rps = 100_000.0;
    r.per_ip_burst = 100_000;
    r.per_user_rps = 100_000.0;
    r.per_user_burst = 100_000;
    r.create_per_user_per_min = 100_000;
}

/// A rate-limit override for `user`: its own rate and burst.
pub fn override_rate(config: &mut Config, user: &str, rps: f64, burst: u32) {
    config.rate_limit.overrides.insert(
        user.to_string(),
        livy_gateway::config::RateSpec { rps, burst },
    );
}

pub fn htpasswd_line(user: &str, password: &str) -> String {
    format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap())
}

impl TestGateway {
    pub async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sans: Vec<String> = certgen::DEFAULT_SANS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let files = certgen::write_to_dir(&dir.path().join("certs"), &sans).unwrap();
        let users: String = ["alice", "bob", "admin"]
            .iter()
            .map(|u| htpasswd_line(u, PASSWORD))
            .collect();
        std::fs::write(dir.path().join("users.htpasswd"), users).unwrap();

        let recorded = Arc::new(Mutex::new(Vec::new()));
        let upstream = match options.backend {
            Backend::Sim(config) => start_sim(|_| config).await,
            Backend::Recorder(responder) => {
                format!(
                    "http://{}",
                    start_recorder(responder, recorded.clone()).await
                )
            }
            Backend::TlsRecorder(responder) => {
                let certs = dir.path().join("certs");
                let tls = livy_gateway::tls::server_config(
                    &certs.join("gateway.crt"),
                    &certs.join("gateway.key"),
                )
                .unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                let addr = start_recorder_with(responder, recorded.clone(), Some(acceptor)).await;
                format!("https://localhost:{}", addr.port())
            }
            Backend::Refusing => refusing_url(),
            Backend::Urls(urls) => urls.join(" "),
        };
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.tls_cert = "certs/gateway.crt".into();
        config.server.tls_key = "certs/gateway.key".into();
        config.server.data_dir = "data".into();
        config.auth.htpasswd = Some("users.htpasswd".into());
        config.auth.admins = vec!["admin".into()];
        config.livy.upstreams = upstream
            .split(' ')
            .map(|url| UpstreamUrl::parse(url).unwrap())
            .collect();
        config.admin.listen = "127.0.0.1:0".parse().unwrap();
        if upstream.starts_with("https://") {
            config.livy.ca_file = Some("certs/ca.crt".into());
        }
        relaxed_limits(&mut config);
        for change in options.configure {
            change(&mut config);
        }
        let text = config.to_toml();
        std::fs::write(dir.path().join("gateway.toml"), text).unwrap();
        let ca_pem = std::fs::read_to_string(files.ca_cert).unwrap();
        Self::serve(dir, ca_pem, recorded, upstream).await
    }

    /// Starts a gateway from the config file in `dir`.
    async fn serve(
        dir: tempfile::TempDir,
        ca_pem: String,
        recorded: Arc<Mutex<Vec<Recorded>>>,
        upstream: String,
    ) -> Self {
        let path = dir.path().join("gateway.toml");
        let config = Config::load(&path).unwrap();
        // A previous gateway on this directory may still be releasing its stores.
        let mut runtime = None;
        for _ in 0..200 {
            match Runtime::start(&config, Some(&path)) {
                Ok(r) => {
                    runtime = Some(r);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
        let runtime = Arc::new(match runtime {
            Some(r) => r,
            None => Runtime::start(&config, Some(&path)).unwrap(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin_listener.local_addr().unwrap();
        let admin = tokio::spawn(livy_gateway::admin::run(
            admin_listener,
            runtime.clone(),
            std::future::pending(),
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(server::run(listener, runtime.clone(), async {
            let _ = stopped.await;
        }));
        TestGateway {
            addr,
            ca_pem,
            dir,
            recorded,
            upstream,
            runtime,
            admin_addr,
            admin: Some(admin),
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Stops this gateway and starts a new one from the same directory (config,
    /// users, certificates and data), on a new port, with the same upstream.
    pub async fn restart(self) -> Self {
        self.while_stopped(|_| ()).await.0
    }

    /// Stops this gateway and releases its stores, runs `offline` on its
    /// directory (a command an operator runs on a stopped gateway), then starts
    /// it again as [`TestGateway::restart`] does.
    pub async fn while_stopped<R>(
        mut self,
        offline: impl FnOnce(&std::path::Path) -> R,
    ) -> (Self, R) {
        self.stop_serving().await;
        let TestGateway {
            dir,
            ca_pem,
            recorded,
            upstream,
            runtime,
            ..
        } = self;
        drop(runtime);
        // Tasks the gateway left on this runtime (a token's last use being
        // written) may hold its stores a moment longer: wait, bounded, until
        // every store file can be opened, as a command run now will open it.
        let data = dir.path().join("data");
        for _ in 0..500 {
            let files = std::fs::read_dir(&data).into_iter().flatten().flatten();
            let held = files
                .map(|f| f.path())
                .filter(|p| p.extension().is_some_and(|e| e == "redb"))
                .any(|p| redb::Database::open(&p).is_err());
            if !held {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let result = offline(dir.path());
        (Self::serve(dir, ca_pem, recorded, upstream).await, result)
    }

    /// The audit log's lines, parsed.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        let path = self.dir.path().join("data/audit.log");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The audit log's lines once `done` holds of them (a thread of its own
    /// writes them), or as they are after a bounded wait.
    pub async fn audit_until(
        &self,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut lines = self.audit_lines();
        for _ in 0..500 {
            if done(&lines) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            lines = self.audit_lines();
        }
        lines
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    /// The path of a link in an answer (`https://localhost:<port>/gateway/...`),
    /// checking it is absolute and on this gateway.
    pub fn path_of(&self, link: &serde_json::Value) -> String {
        let link = link.as_str().unwrap_or_else(|| panic!("no link: {link}"));
        let origin = format!("https://localhost:{}", self.addr.port());
        link.strip_prefix(&origin)
            .unwrap_or_else(|| panic!("{link} is not on the gateway"))
            .to_owned()
    }

    /// Creates a batch named `name` as `user` through the gateway and returns
    /// Livy's view of it, asked for once the creation has answered.
    pub async fn batch_view(&self, user: &str, name: &str) -> serde_json::Value {
        const BATCHES: &str = "/gateway/default/livy/v1/batches";
        let c = self.client();
        let body = format!(r#"{{"file":"local:/jobs/{name}.jar","name":"{name}"}}"#);
        let r = c.as_user(user, Method::POST, BATCHES, &body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.json()["id"].as_u64().unwrap();
        let r = c
            .as_user(user, Method::GET, &format!("{BATCHES}/{id}"), "")
            .await;
        assert_eq!(r.status, 200);
        r.json()
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr, &self.ca_pem)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// Stops accepting and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        self.stop_serving().await;
    }

    /// Stops this gateway and releases its stores, keeping its directory (config,
    /// users, data) for a command to run on.
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        self.stop_serving().await;
        let TestGateway { dir, runtime, .. } = self;
        drop(runtime);
        dir
    }

    async fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            done.await.unwrap();
        }
        if let Some(admin) = self.admin.take() {
            admin.abort();
            let _ = admin.await;
        }
    }
}

/// The Livy simulator on a free loopback port, configured by `config` from the
/// address it got (for links that point back at it); its URL.
pub async fn start_sim(config: impl FnOnce(SocketAddr) -> SimConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sim::run(
        listener,
        Arc::new(Simulator::new(config(addr))),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// Creates a batch directly at the simulator at `sim_url` (`http://addr`),
/// bypassing any gateway: its id.
pub async fn create_at_sim(sim_url: &str, body: &str) -> u64 {
    let (status, bytes) = at_sim(sim_url, Method::POST, "/batches", body).await;
    assert_eq!(status, StatusCode::CREATED);
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// `method path` with a JSON `body` straight at the simulator at `sim_url`
/// (`http://addr`), bypassing any gateway: its status and body.
pub async fn at_sim(sim_url: &str, method: Method, path: &str, body: &str) -> (StatusCode, Bytes) {
    let addr = sim_url.trim_start_matches("http://").to_string();
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// A loopback port nothing listens on (for a process told to bind it).
///
/// Taken below the kernel's ephemeral range, which servers binding port 0 and
/// outgoing connections draw from, and never twice in one test process: a port
/// asked of the kernel and let go could be handed to another test's server
/// before this test's process binds it, and that test's server would then
/// answer in its place (seen as a flaky "Livy is unreachable" once it stopped).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    let below = ephemeral_range_start().max(FIRST + 1_000);
    let span = below - FIRST;
    // Each test binary starts at its own place, so binaries run one after
    // another do not walk the same ports.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}

/// Where the kernel's ephemeral ports start (32768 when it does not say).
fn ephemeral_range_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Waits (bounded, 5 s) until something accepts connections on `port`.
pub fn wait_until_listening(port: u16) -> bool {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

/// Sends `signal` (`TERM`, `INT`, …) to `child` and waits (bounded, 10 s) for it to
/// exit; kills it and panics if it does not.
pub fn signal_and_wait(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!("process did not exit after SIG{signal}")
}

/// `http://127.0.0.1:<port>` where nothing listens.
pub fn refusing_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Starts a recording upstream; what it sees is pushed to `recorded`.
pub async fn start_recorder(
    responder: Responder,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) -> SocketAddr {
    start_recorder_with(responder, recorded, None).await
}

/// [`start_recorder`], speaking TLS with `tls` when given.
pub async fn start_recorder_with(
    responder: Responder,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (responder, recorded, tls) = (responder.clone(), recorded.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve_recording(stream, responder, recorded).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve_recording(stream, responder, recorded).await
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Serves HTTP/1.1 on one connection, recording each request and answering it
/// with `responder`.
async fn serve_recording<S>(stream: S, responder: Responder, recorded: Arc<Mutex<Vec<Recorded>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let responder = responder.clone();
        let recorded = recorded.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let rec = Recorded {
                method: parts.method,
                uri: parts.uri.to_string(),
                headers: parts.headers,
                body,
            };
            recorded.lock().unwrap().push(rec.clone());
            match responder(&rec) {
                Reply::Now(response) => Ok::<_, hyper::Error>(response),
                Reply::After(delay, response) => {
                    tokio::time::sleep(delay).await;
                    Ok(response)
                }
                Reply::Never => std::future::pending().await,
            }
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// HTTP version the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced), for assertions and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The session id from `Set-Cookie`, if one was issued.
    pub fn session_cookie(&self) -> Option<String> {
        let value = self.header("set-cookie")?;
        let first = value.split(';').next()?;
        Some(first.strip_prefix("JSESSIONID=")?.to_string())
    }
}

/// A TLS client trusting the test CA; one connection per request.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
    /// Local address to connect from (another loopback address stands for another
    /// client machine).
    source: Option<std::net::IpAddr>,
}

/// The cookies an answer sets, but for the gateway's session cookie.
pub fn set_cookies(r: &Answer) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|cookie| !cookie.starts_with("JSESSIONID="))
        .collect()
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl Client {
    pub fn new(addr: SocketAddr, ca_pem: &str) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        Self {
            addr,
            roots: Arc::new(roots),
            source: None,
        }
    }

    /// The same client, connecting from `source` (a loopback address).
    pub fn connecting_from(&self, source: &str) -> Self {
        Self {
            source: Some(source.parse().unwrap()),
            ..self.clone()
        }
    }

    /// A TCP connection to the gateway from this client's source address.
    pub async fn tcp(&self) -> std::io::Result<TcpStream> {
        match self.source {
            None => TcpStream::connect(self.addr).await,
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(self.addr).await
            }
        }
    }

    /// A TLS connection, or the error if the handshake fails.
    pub async fn try_tls(
        &self,
        alpn: &[&[u8]],
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(self.roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let tcp = self.tcp().await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }

    pub async fn tls(&self, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<TcpStream> {
        self.try_tls(alpn).await.unwrap()
    }

    /// Like [`Client::send`] over HTTP/1.1, but reports failures instead of
    /// panicking: `Err(true)` if the connection could not even be made (nothing was
    /// sent), `Err(false)` if it failed after the request was written.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &[u8])],
    ) -> Result<Answer, bool> {
        let tls = self.try_tls(&[b"http/1.1"]).await.map_err(|_| true)?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| true)?;
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("localhost:{}", self.addr.port()));
        for (name, value) in headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let request = builder.body(Full::new(Bytes::new())).unwrap();
        let response = sender.send_request(request).await.map_err(|_| false)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|_| false)?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            version: parts.version,
            body,
        })
    }

    /// Sends one request with the given headers (`(name, value bytes)`).
    pub async fn send(
        &self,
        proto: Proto,
        method: Method,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &str,
    ) -> Answer {
        let uri = match proto {
            Proto::H1 => path.to_string(),
            Proto::H2 => format!("https://localhost:{}{path}", self.addr.port()),
        };
        let mut builder = Request::builder().method(method).uri(uri);
        if proto == Proto::H1 {
            builder = builder.header("host", format!("localhost:{}", self.addr.port()));
        }
        for (name, value) in headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let request = builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = match proto {
            Proto::H1 => {
                let tls = self.tls(&[b"http/1.1"]).await;
                let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .unwrap();
                tokio::spawn(conn);
                sender.send_request(request).await.unwrap()
            }
            Proto::H2 => {
                let tls = self.tls(&[b"h2"]).await;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                let (mut sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                sender.send_request(request).await.unwrap()
            }
        };
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            version: parts.version,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    /// `method path` as `user` (password [`PASSWORD`]) over HTTP/1.1.
    pub async fn as_user(&self, user: &str, method: Method, path: &str, body: &str) -> Answer {
        self.as_user_over(Proto::H1, user, method, path, body).await
    }

    /// `method path` as `user` (password [`PASSWORD`]) over `proto`.
    pub async fn as_user_over(
        &self,
        proto: Proto,
        user: &str,
        method: Method,
        path: &str,
        body: &str,
    ) -> Answer {
        let auth = basic(user, PASSWORD);
        let mut headers: Vec<(&str, &[u8])> = vec![("authorization", auth.as_bytes())];
        if !body.is_empty() {
            headers.push(("content-type", b"application/json"));
        }
        self.send(proto, method, path, &headers, body).await
    }

    /// `GET path` as `user` over `proto`, sending back the cookie a `Set-Cookie`
    /// value set (its first pair), as a browser does.
    pub async fn as_user_with_cookie(
        &self,
        proto: Proto,
        user: &str,
        path: &str,
        set_cookie: &str,
    ) -> Answer {
        let auth = basic(user, PASSWORD);
        let pair = set_cookie.split(';').next().unwrap();
        let headers: [(&str, &[u8]); 2] = [
            ("authorization", auth.as_bytes()),
            ("cookie", pair.as_bytes()),
        ];
        self.send(proto, Method::GET, path, &headers, "").await
    }

    /// `GET path` with only a cookie.
    pub async fn with_cookie(&self, cookie: &str, method: Method, path: &str) -> Answer {
        let value = format!("JSESSIONID={cookie}");
        self.send(Proto::H1, method, path, &[("cookie", value.as_bytes())], "")
            .await
    }
}

/// GET on the admin listener: status and body.
pub async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The metrics exposition as `series → value`.
pub async fn scrape(gw: &TestGateway) -> HashMap<String, f64> {
    let (status, text) = admin_get(gw.admin_addr, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

pub fn metric(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| {
        panic!(
            "no series {series}; have {:#?}",
            m.keys().collect::<Vec<_>>()
        )
    })
}

/// Reads until the server closes the stream, bounded by `limit`.
pub async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    limit: std::time::Duration,
) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
