//! The gateway's configuration: the TOML file format, its defaults, and its validation.
//!
//! This is the only module that reads the config file. Everything else receives a
//! [`Config`] whose values have been checked: paths are absolute (relative ones are
//! resolved against the config file's directory), upstream URLs parse, timeouts are
//! non-zero. Unknown keys are an error, so a typo never silently falls back to a
//! default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use crate::error::StartupError;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub session: SessionConfig,
    pub livy: LivyConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub login: LoginConfig,
    #[serde(default)]
    pub admin: AdminConfig,
}

/// `[admin]`: the operators' listener (metrics, health), plain HTTP, kept off the
/// public TLS port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    "127.0.0.1:9090".parse().expect("constant address")
}

/// `[server]`: the public TLS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the TLS listener.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `host[:port]` clients use to reach the gateway, sent to Livy as
    /// `X-Forwarded-Host`. Unset: the TLS server name (SNI) each client asked for,
    /// with the listener's port. Never the client's `Host` header.
    #[serde(default)]
    pub public_host: Option<String>,
    /// PEM certificate chain, leaf first.
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: PathBuf,
    /// Directory for state the gateway keeps on disk.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A TLS handshake not finished within this many seconds is dropped.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_secs: u64,
    /// Time allowed to read a request's headers (HTTP/1) before the connection is closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
    /// `max-age` of the `Strict-Transport-Security` header; 0 leaves the header out.
    #[serde(default = "default_hsts")]
    pub hsts_max_age_secs: u64,
    /// Concurrent HTTP/2 streams per connection.
    #[serde(default = "default_h2_streams")]
    pub h2_max_concurrent_streams: u32,
    /// Open client connections at most; further ones are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one client address at most (0 = no limit), so one
    /// address cannot hold every slot. Mind clients behind one NAT address.
    #[serde(default = "default_max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// A request body that sends nothing for this long is cut with 408.
    #[serde(default = "default_body_idle_timeout")]
    pub body_idle_timeout_secs: u64,
    /// A connection with no request in flight and no bytes moving for this long is
    /// closed (idle keep-alive).
    #[serde(default = "default_conn_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// An HTTP/1.1 connection with nothing in flight and no bytes moving for this
    /// many milliseconds hands back its HTTP buffers until its next request arrives;
    /// 0 = keep them.
    #[serde(default = "default_release_idle_buffers_after")]
    pub release_idle_buffers_after_ms: u64,
    /// Largest total size of a request's headers (names and values); beyond → 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most headers a request may have; beyond → 431. Up to
    /// `HYPER_INLINE_HEADERS - 16`, hyper parses a request's headers without
    /// allocating; above, each request pays for a heap array.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
}

/// `[gateway]`: how the gateway's URLs look.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Requests are served under `/gateway/<topology>/livy/...`.
    #[serde(default = "default_topology")]
    pub topology: String,
}

/// `[auth]`: who may use the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Realm named in `WWW-Authenticate`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// htpasswd file as Apache's `htpasswd` writes it.
    pub htpasswd: PathBuf,
    /// Users who may act as others and see everyone's work.
    #[serde(default)]
    pub admins: Vec<String>,
    /// How long a verified user/password pair is remembered, so per-request Basic
    /// credentials do not pay bcrypt every time. 0 disables the cache.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// Upper bound on remembered credential pairs.
    #[serde(default = "default_cache_entries")]
    pub cache_max_entries: usize,
    /// Password checks that may wait for a core, in each of two lines (logins from
    /// familiar addresses and users, and the rest); beyond, a login is answered 503
    /// with `Retry-After` at once.
    #[serde(default = "default_pending_verifications")]
    pub max_pending_verifications: usize,
}

/// `[session]`: the cookie that stands in for credentials after a login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
    /// A session unused for this long ends.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// A session ends this long after login, however busy.
    #[serde(default = "default_absolute_timeout")]
    pub absolute_timeout_secs: u64,
    /// Upper bound on live sessions; the least recently used one is evicted past it.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

/// `[livy]`: the upstream Livy server(s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivyConfig {
    /// Base URLs of Livy servers, `http://host:port`. Requests go to the first that
    /// accepts a connection; the others are tried, in order, only when a connection
    /// cannot be made.
    pub upstreams: Vec<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Time allowed for Livy to start answering (response headers). A response body
    /// (such as a long log) is never cut by it.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// Idle upstream connections are closed after this long.
    #[serde(default = "default_pool_idle")]
    pub pool_idle_timeout_secs: u64,
    #[serde(default = "default_pool_max_idle")]
    pub pool_max_idle_per_host: usize,
    /// How the caller's identity is asserted to Livy in the query string.
    #[serde(default)]
    pub identity: IdentityMode,
    /// A header injected into state-changing requests that lack it, for a Livy with
    /// CSRF protection on (e.g. `X-Requested-By`). Unset: nothing is injected.
    #[serde(default)]
    pub csrf_header: Option<String>,
    /// The value of the injected CSRF header.
    #[serde(default = "default_csrf_value")]
    pub csrf_value: String,
    /// Largest accepted body of `POST …/batches` and `POST …/sessions`.
    #[serde(default = "default_max_create_body")]
    pub max_create_body_bytes: usize,
    /// Largest body of any other request (statements, completion, …).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest body of the job API's upload endpoints (`…/upload-jar` and the like).
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: usize,
    /// Largest Livy answer the gateway reads in full to apply its policy (listings it
    /// narrows per user, creation answers it takes ids from). Other answers stream.
    #[serde(default = "default_max_buffered_response")]
    pub max_buffered_response_bytes: usize,
}

/// How the gateway tells Livy who a request runs as.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Append `doAs=<effective user>` to every request (for a Livy with
    /// `livy.impersonation.enabled`).
    #[default]
    Doas,
    /// Add nothing (client identity parameters are still removed).
    None,
}

/// `[rate_limit]`: request rates. A rate of 0 (or a burst of 0) disables a limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second per client address, counted before authentication.
    #[serde(default = "default_per_ip_rps")]
    pub per_ip_rps: f64,
    #[serde(default = "default_per_ip_burst")]
    pub per_ip_burst: u32,
    /// Requests per second per authenticated user.
    #[serde(default = "default_per_user_rps")]
    pub per_user_rps: f64,
    #[serde(default = "default_per_user_burst")]
    pub per_user_burst: u32,
    /// Batches and sessions a user may create per minute (also the burst).
    #[serde(default = "default_creates_per_min")]
    pub create_per_user_per_min: u32,
    /// Keys (addresses, users) a limiter tracks before it is reset.
    #[serde(default = "default_max_tracked")]
    pub max_tracked_keys: usize,
    /// Per-user rates replacing the per-user limit (service accounts).
    #[serde(default)]
    pub overrides: std::collections::HashMap<String, RateSpec>,
}

/// A rate and burst for one user.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub rps: f64,
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_rps: default_per_ip_rps(),
            per_ip_burst: default_per_ip_burst(),
            per_user_rps: default_per_user_rps(),
            per_user_burst: default_per_user_burst(),
            create_per_user_per_min: default_creates_per_min(),
            max_tracked_keys: default_max_tracked(),
            overrides: Default::default(),
        }
    }
}

/// `[login]`: failed-login throttling (see `auth::throttle` for the policy).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Failures of one user from one address before that pair is locked; 0 = off.
    #[serde(default = "default_fail_pair")]
    pub max_failures_per_pair: u32,
    /// Failures from one address (any users) before it is locked; 0 = off.
    #[serde(default = "default_fail_address")]
    pub max_failures_per_address: u32,
    /// Failures of one user from anywhere before the user is locked on addresses
    /// without a recent successful login; 0 = off.
    #[serde(default = "default_fail_user")]
    pub max_failures_per_user: u32,
    /// Failures older than this are forgotten.
    #[serde(default = "default_fail_window")]
    pub failure_window_secs: u64,
    /// First lockout; each further one doubles, up to `max_lockout_secs`.
    #[serde(default = "default_lockout")]
    pub lockout_secs: u64,
    #[serde(default = "default_max_lockout")]
    pub max_lockout_secs: u64,
    /// An address where a user logged in successfully stays exempt from that user's
    /// global lockout this long.
    #[serde(default = "default_trusted")]
    pub trusted_address_secs: u64,
    #[serde(default = "default_max_tracked")]
    pub max_tracked_keys: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_pair: default_fail_pair(),
            max_failures_per_address: default_fail_address(),
            max_failures_per_user: default_fail_user(),
            failure_window_secs: default_fail_window(),
            lockout_secs: default_lockout(),
            max_lockout_secs: default_max_lockout(),
            trusted_address_secs: default_trusted(),
            max_tracked_keys: default_max_tracked(),
        }
    }
}

/// `[audit]`: the per-request audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// JSON-lines file; default `<server.data_dir>/audit.log`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
        }
    }
}

/// `[log]`: diagnostics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `livy_gateway=debug,hyper=warn`, …
    #[serde(default = "default_log_level")]
    pub level: String,
    #[serde(default)]
    pub format: LogFormat,
}

/// Output format of the log.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_listen() -> SocketAddr {
    "0.0.0.0:8443".parse().expect("constant address")
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("../data")
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_header_read_timeout() -> u64 {
    30
}
fn default_shutdown_grace() -> u64 {
    30
}
fn default_hsts() -> u64 {
    31_536_000
}
fn default_h2_streams() -> u32 {
    100
}
fn default_topology() -> String {
    "default".into()
}
fn default_realm() -> String {
    "application".into()
}
fn default_cache_ttl() -> u64 {
    300
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_pending_verifications() -> usize {
    32
}
fn default_cookie_name() -> String {
    "JSESSIONID".into()
}
fn default_idle_timeout() -> u64 {
    1800
}
fn default_absolute_timeout() -> u64 {
    28_800
}
fn default_max_sessions() -> usize {
    100_000
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_response_timeout() -> u64 {
    60
}
fn default_pool_idle() -> u64 {
    90
}
fn default_pool_max_idle() -> usize {
    256
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_connections_per_address() -> usize {
    256
}
fn default_body_idle_timeout() -> u64 {
    30
}
fn default_conn_idle_timeout() -> u64 {
    120
}
fn default_release_idle_buffers_after() -> u64 {
    500
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_headers() -> usize {
    64
}

/// Headers hyper parses in place (its default limit); requests beyond hyper's limit
/// get hyper's own bare 431.
pub const HYPER_INLINE_HEADERS: usize = 100;

fn default_max_body() -> usize {
    10 * 1024 * 1024
}
fn default_max_upload() -> usize {
    1024 * 1024 * 1024
}
fn default_per_ip_rps() -> f64 {
    100.0
}
fn default_per_ip_burst() -> u32 {
    200
}
fn default_per_user_rps() -> f64 {
    20.0
}
fn default_per_user_burst() -> u32 {
    40
}
fn default_creates_per_min() -> u32 {
    30
}
fn default_max_tracked() -> usize {
    100_000
}
fn default_fail_pair() -> u32 {
    5
}
fn default_fail_address() -> u32 {
    20
}
fn default_fail_user() -> u32 {
    50
}
fn default_fail_window() -> u64 {
    900
}
fn default_lockout() -> u64 {
    60
}
fn default_max_lockout() -> u64 {
    3600
}
fn default_trusted() -> u64 {
    86_400
}
fn default_csrf_value() -> String {
    "livy-gateway".into()
}
fn default_max_create_body() -> usize {
    1024 * 1024
}
fn default_max_buffered_response() -> usize {
    64 * 1024 * 1024
}
fn default_true() -> bool {
    true
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            topology: default_topology(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: default_cookie_name(),
            idle_timeout_secs: default_idle_timeout(),
            absolute_timeout_secs: default_absolute_timeout(),
            max_sessions: default_max_sessions(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
            format: LogFormat::Text,
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        let text = std::fs::read_to_string(path).map_err(|source| StartupError::Io {
            what: "config file",
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, path, &base)
    }

    /// Parses and validates config text; `base` is the directory relative paths are
    /// resolved against, `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &Path, base: &Path) -> Result<Self, StartupError> {
        let mut config: Config = toml::from_str(text).map_err(|e| StartupError::Config {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        config.resolve_paths(base);
        config.validate().map_err(|message| StartupError::Config {
            path: origin.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        for path in [
            &mut self.server.tls_cert,
            &mut self.server.tls_key,
            &mut self.server.data_dir,
            &mut self.auth.htpasswd,
        ] {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        match &mut self.audit.path {
            Some(path) if path.is_relative() => *path = base.join(&*path),
            Some(_) => {}
            None => self.audit.path = Some(self.server.data_dir.join("audit.log")),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let topology = &self.gateway.topology;
        if topology.is_empty()
            || !topology
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "key gateway.topology: {topology:?} must be non-empty and use only letters, digits, '-' and '_'"
            ));
        }
        if let Some(host) = &self.server.public_host {
            if host.parse::<http::uri::Authority>().is_err() || host.contains('@') {
                return Err(format!(
                    "key server.public_host: {host:?} is not a host or host:port"
                ));
            }
        }
        if self.auth.realm.contains('"') || self.auth.realm.chars().any(char::is_control) {
            return Err("key auth.realm: must not contain quotes or control characters".into());
        }
        let cookie = &self.session.cookie_name;
        if cookie.is_empty() || !cookie.bytes().all(is_cookie_name_byte) {
            return Err(format!(
                "key session.cookie_name: {cookie:?} is not a valid cookie name"
            ));
        }
        if self.livy.upstreams.is_empty() {
            return Err("key livy.upstreams: at least one Livy URL is required".into());
        }
        for url in &self.livy.upstreams {
            parse_upstream(url).map_err(|e| format!("key livy.upstreams: {url:?}: {e}"))?;
        }
        for (key, value) in [
            (
                "server.handshake_timeout_secs",
                self.server.handshake_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.body_idle_timeout_secs",
                self.server.body_idle_timeout_secs,
            ),
            ("session.idle_timeout_secs", self.session.idle_timeout_secs),
            (
                "session.absolute_timeout_secs",
                self.session.absolute_timeout_secs,
            ),
            ("livy.connect_timeout_secs", self.livy.connect_timeout_secs),
            (
                "livy.response_timeout_secs",
                self.livy.response_timeout_secs,
            ),
            (
                "server.h2_max_concurrent_streams",
                self.server.h2_max_concurrent_streams.into(),
            ),
            ("session.max_sessions", self.session.max_sessions as u64),
        ] {
            if value == 0 {
                return Err(format!("key {key}: must be greater than 0"));
            }
        }
        if let Some(name) = &self.livy.csrf_header {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("key livy.csrf_header: {name:?} is not a header name"))?;
        }
        http::HeaderValue::from_str(&self.livy.csrf_value)
            .map_err(|_| "key livy.csrf_value: not a valid header value".to_string())?;
        for (key, value) in [
            (
                "livy.max_create_body_bytes",
                self.livy.max_create_body_bytes,
            ),
            (
                "livy.max_buffered_response_bytes",
                self.livy.max_buffered_response_bytes,
            ),
        ] {
            if value == 0 {
                return Err(format!("key {key}: must be greater than 0"));
            }
        }
        let rates = std::iter::once((
            "rate_limit.per_ip_rps".to_string(),
            self.rate_limit.per_ip_rps,
        ))
        .chain(std::iter::once((
            "rate_limit.per_user_rps".to_string(),
            self.rate_limit.per_user_rps,
        )))
        .chain(
            self.rate_limit
                .overrides
                .iter()
                .map(|(u, r)| (format!("rate_limit.overrides.{u}.rps"), r.rps)),
        );
        for (key, rate) in rates {
            if !rate.is_finite() || rate < 0.0 || (rate > 0.0 && rate < 1e-6) {
                return Err(format!(
                    "key {key}: {rate} must be 0 (off) or a positive rate"
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| format!("key log.level: {:?}: {e}", self.log.level))?;
        Ok(())
    }

    /// The path prefix every gateway URL starts with: `/gateway/<topology>`.
    pub fn gateway_path(&self) -> String {
        format!("/gateway/{}", self.gateway.topology)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session.idle_timeout_secs)
    }

    pub fn absolute_timeout(&self) -> Duration {
        Duration::from_secs(self.session.absolute_timeout_secs)
    }

    /// The upstream base URLs, parsed. Validation has already checked them.
    pub fn upstream_uris(&self) -> Vec<Uri> {
        self.livy
            .upstreams
            .iter()
            .map(|u| parse_upstream(u).expect("validated at load"))
            .collect()
    }
}

/// Checks an upstream base URL: `http://host[:port]`, with no path beyond `/`, no
/// query and no credentials.
pub fn parse_upstream(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("scheme {other:?} is not supported; use http")),
        None => return Err("missing scheme; write http://host:port".into()),
    }
    let authority = uri.authority().ok_or("missing host")?;
    if authority.as_str().contains('@') {
        return Err("credentials in the URL are not allowed".into());
    }
    if authority.host().is_empty() {
        return Err("missing host".into());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("must not have a path or query (Livy serves from its root)".into());
    }
    Ok(uri)
}

/// RFC 6265 cookie-name characters (an RFC 7230 token).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[server]
tls_cert = "certs/gateway.crt"
tls_key = "/abs/gateway.key"
[auth]
htpasswd = "users.htpasswd"
[livy]
upstreams = ["http://127.0.0.1:8998"]
"#;

    fn parse(text: &str) -> Result<Config, StartupError> {
        Config::from_toml(
            text,
            Path::new("/etc/lg/gateway.toml"),
            Path::new("/etc/lg"),
        )
    }

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(
            c.server.tls_cert,
            PathBuf::from("/etc/lg/certs/gateway.crt")
        );
        assert_eq!(c.server.tls_key, PathBuf::from("/abs/gateway.key"));
        assert_eq!(c.auth.htpasswd, PathBuf::from("/etc/lg/users.htpasswd"));
        assert_eq!(c.gateway.topology, "default");
        assert_eq!(c.session.cookie_name, "JSESSIONID");
        assert_eq!(c.session.idle_timeout_secs, 1800);
        assert_eq!(c.auth.realm, "application");
        assert_eq!(c.gateway_path(), "/gateway/default");
        assert_eq!(c.livy.identity, IdentityMode::Doas);
        assert_eq!(c.livy.csrf_header, None);
        assert_eq!(
            c.audit.path,
            Some(PathBuf::from("/etc/lg/../data/audit.log"))
        );
    }

    #[test]
    fn the_documented_example_config_is_valid() {
        let text = include_str!("../config/gateway.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.auth.admins, vec!["admin".to_string()]);
        assert_eq!(c.livy.upstreams, vec!["http://127.0.0.1:8998".to_string()]);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("[auth]", "[auth]\nhtpasswdd = \"x\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("htpasswdd"), "{err}");
        assert!(err.contains("line"), "{err}");
        assert!(err.contains("/etc/lg/gateway.toml"), "{err}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let text = MINIMAL.replace("htpasswd = \"users.htpasswd\"", "");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("htpasswd"), "{err}");
    }

    #[test]
    fn bad_upstreams_are_rejected() {
        for bad in [
            "https://livy:8998",
            "livy:8998",
            "http://user:pw@livy:8998",
            "http://livy:8998/api",
            "not a url",
        ] {
            let text = MINIMAL.replace("http://127.0.0.1:8998", bad);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("livy.upstreams"), "{bad}: {err}");
        }
        let text = MINIMAL.replace("[\"http://127.0.0.1:8998\"]", "[]");
        assert!(parse(&text).is_err());
    }

    #[test]
    fn bad_topology_cookie_and_level_are_rejected() {
        let t = format!("{MINIMAL}\n[gateway]\ntopology = \"a/b\"\n");
        assert!(parse(&t)
            .unwrap_err()
            .to_string()
            .contains("gateway.topology"));
        let t = format!("{MINIMAL}\n[session]\ncookie_name = \"a b\"\n");
        assert!(parse(&t).unwrap_err().to_string().contains("cookie_name"));
        let t = format!("{MINIMAL}\n[log]\nlevel = \"[[[\"\n");
        assert!(parse(&t).unwrap_err().to_string().contains("log.level"));
        let t = format!("{MINIMAL}\n[session]\nidle_timeout_secs = 0\n");
        assert!(parse(&t)
            .unwrap_err()
            .to_string()
            .contains("idle_timeout_secs"));
    }
}
