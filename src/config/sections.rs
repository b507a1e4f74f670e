//! The sections of the config file, each with its defaults in one `Default` impl.
//!
//! Every section is `#[serde(default)]`: a key left out takes the value its
//! section's `Default` gives, and config/gateway.toml documents the same values
//! (a test holds the two together). Keys keep the unit in their name (`_secs`,
//! `_ms`, `_bytes`); the fields hold typed values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::values::{
    days, header_name, header_value, host, millis, secs, HostPattern, UpstreamUrl,
};

/// `[server]`: the public TLS listener.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the TLS listener.
    pub listen: SocketAddr,
    /// `host[:port]` clients use to reach the gateway, sent to Livy as
    /// `X-Forwarded-Host`. Unset: the TLS server name (SNI) each client asked for.
    #[serde(with = "host", skip_serializing_if = "Option::is_none")]
    pub public_host: Option<Authority>,
    /// PEM certificate chain, leaf first. Required.
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Required.
    pub tls_key: PathBuf,
    /// Directory for state the gateway keeps on disk.
    pub data_dir: PathBuf,
    /// A TLS handshake not finished within this is dropped.
    #[serde(rename = "handshake_timeout_secs", with = "secs")]
    pub handshake_timeout: Duration,
    /// Time to send a request's headers, and a new connection's first request.
    #[serde(rename = "header_read_timeout_secs", with = "secs")]
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long is cut (408).
    #[serde(rename = "body_idle_timeout_secs", with = "secs")]
    pub body_idle_timeout: Duration,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    #[serde(rename = "shutdown_grace_secs", with = "secs")]
    pub shutdown_grace: Duration,
    /// `max-age` of `Strict-Transport-Security`; zero leaves the header out.
    #[serde(rename = "hsts_max_age_secs", with = "secs")]
    pub hsts_max_age: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// Open client connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// Open connections from one client address at most (0 = no limit).
    pub max_connections_per_address: usize,
    /// A connection with no bytes moving this long, while nothing waits on the
    /// gateway's side, is closed.
    #[serde(rename = "idle_timeout_secs", with = "secs")]
    pub idle_timeout: Duration,
    /// An idle HTTP/1.1 connection hands back its HTTP buffers after this; zero
    /// keeps them.
    #[serde(rename = "release_idle_buffers_after_ms", with = "millis")]
    pub release_idle_buffers_after: Duration,
    /// Largest total size of a request's headers; beyond → 431.
    pub max_header_bytes: usize,
    /// Most headers a request may have; beyond → 431. Up to
    /// `HYPER_INLINE_HEADERS - 16`, hyper parses headers without allocating.
    pub max_headers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            public_host: None,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            data_dir: PathBuf::from("../data"),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            hsts_max_age: Duration::from_secs(31_536_000),
            h2_max_concurrent_streams: 100,
            max_connections: 10_000,
            max_connections_per_address: 256,
            idle_timeout: Duration::from_secs(120),
            release_idle_buffers_after: Duration::from_millis(500),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Headers hyper parses in place (its default limit); requests beyond hyper's limit
/// get hyper's own bare 431.
pub const HYPER_INLINE_HEADERS: usize = 100;

/// `[gateway]`: how the gateway's URLs look.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Requests are served under `/gateway/<topology>/livy/...`.
    pub topology: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            topology: "default".into(),
        }
    }
}

/// `[auth]`: who may use the gateway.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Realm named in `WWW-Authenticate`.
    pub realm: String,
    /// htpasswd file as Apache's `htpasswd` writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub htpasswd: Option<PathBuf>,
    /// Users who may act as others and see everyone's work.
    pub admins: Vec<String>,
    /// Members of these groups are administrators too (names compared without
    /// regard to case).
    pub admin_groups: Vec<String>,
    /// Non-empty: only members of these groups may use the gateway (users from the
    /// htpasswd file always may).
    pub allowed_groups: Vec<String>,
    /// How long a verified user/password pair (and its groups) is remembered;
    /// zero disables the cache.
    #[serde(rename = "cache_ttl_secs", with = "secs")]
    pub cache_ttl: Duration,
    /// Upper bound on remembered credential pairs.
    pub cache_max_entries: usize,
    /// Password checks that may wait, in each of two lines; beyond → 503.
    pub max_pending_verifications: usize,
    /// `[auth.ldap]`: users in an LDAP directory or Active Directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
    /// `[auth.kerberos]`: users may log in with SPNEGO (`Authorization:
    /// Negotiate`) as well as Basic (cargo feature `kerberos`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<AuthKerberosConfig>,
    /// `[auth.jwt]`: bearer JWTs from an identity provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<super::JwtConfig>,
    /// `[auth.oidc]`: browser sign-in at the identity provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<super::OidcConfig>,
}

/// `[auth.kerberos]`: the gateway's HTTP service key, with which it accepts users'
/// Kerberos tickets, and the realms whose users it serves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthKerberosConfig {
    /// The keytab holding `HTTP/<gateway host>@REALM`. Required.
    pub keytab: PathBuf,
    /// The one principal tickets must be for; empty: any key in the keytab.
    pub principal: String,
    /// `alice@EXAMPLE.ORG` is user `alice` when `EXAMPLE.ORG` is listed here;
    /// principals of other realms are refused. Required.
    pub realms: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            realm: "application".into(),
            htpasswd: None,
            admins: Vec::new(),
            admin_groups: Vec::new(),
            allowed_groups: Vec::new(),
            cache_ttl: Duration::from_secs(300),
            cache_max_entries: 10_000,
            max_pending_verifications: 32,
            ldap: None,
            kerberos: None,
            jwt: None,
            oidc: None,
        }
    }
}

/// `[auth.ldap]`: logins checked against an LDAP directory (or Active Directory):
/// search-then-bind with a service account, or a direct bind to a DN template;
/// groups by a server-side filter or from `memberOf`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://` or `ldaps://` URLs, tried in order when one is unreachable.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with StartTLS.
    pub start_tls: bool,
    /// Trust for `ldaps://` and StartTLS (PEM); system roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches; empty: anonymous searches.
    pub bind_dn: String,
    /// Its password: the file's first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched for (search-then-bind).
    pub user_search_base: String,
    /// `{user}` is replaced by the login name, escaped per RFC 4515.
    pub user_filter: String,
    /// Non-empty: bind directly to this DN (`{user}` escaped per RFC 4514) instead
    /// of searching.
    pub user_dn_template: String,
    /// The attribute whose value on the user's entry is the user's name at the
    /// gateway (whatever case or spelling was typed at the login); empty: the
    /// attribute `user_filter` (or the first RDN of `user_dn_template`) matches
    /// `{user}` against.
    pub user_name_attribute: String,
    /// Where groups are searched for.
    pub group_search_base: String,
    /// `{dn}` is the user's DN, `{user}` the login name, both escaped per RFC 4515.
    pub group_filter: String,
    /// The attribute holding a group's name.
    pub group_name_attribute: String,
    /// Take groups from the user entry's `memberOf` values instead of a search.
    pub use_member_of: bool,
    /// Each directory operation (connecting included) must finish within this.
    #[serde(rename = "timeout_secs", with = "secs")]
    pub timeout: Duration,
    /// Connections kept to the directory, for searches and for users' binds each.
    pub pool_size: usize,
}

impl Default for LdapConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            start_tls: false,
            ca_file: None,
            bind_dn: String::new(),
            bind_password_file: None,
            user_search_base: String::new(),
            user_filter: "(uid={user})".into(),
            user_dn_template: String::new(),
            user_name_attribute: String::new(),
            group_search_base: String::new(),
            group_filter: "(member={dn})".into(),
            group_name_attribute: "cn".into(),
            use_member_of: false,
            timeout: Duration::from_secs(5),
            pool_size: 8,
        }
    }
}

impl LdapConfig {
    /// The attribute naming users (see `user_name_attribute`): the configured one,
    /// else the one `{user}` is matched against; `None` when that cannot be told.
    pub fn name_attribute(&self) -> Option<String> {
        if !self.user_name_attribute.is_empty() {
            return Some(self.user_name_attribute.clone());
        }
        let (text, marker) = match self.user_dn_template.is_empty() {
            true => (&self.user_filter, "={user}"),
            false => (&self.user_dn_template, "={user}"),
        };
        let before = &text[..text.find(marker)?];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.'))
            .map_or(0, |i| i + 1);
        let attribute = &before[start..];
        // `attr:rule:={user}` (an extensible match) names no plain attribute.
        (!attribute.is_empty() && !before[..start].ends_with(':')).then(|| attribute.to_owned())
    }
}

/// `[session]`: the cookie that stands in for credentials after a login.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// A session unused for this long ends.
    #[serde(rename = "idle_timeout_secs", with = "secs")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, however busy.
    #[serde(rename = "absolute_timeout_secs", with = "secs")]
    pub absolute_timeout: Duration,
    /// Upper bound on live sessions (local state); the least recently used goes.
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "JSESSIONID".into(),
            idle_timeout: Duration::from_secs(1800),
            absolute_timeout: Duration::from_secs(28_800),
            max_sessions: 100_000,
        }
    }
}

/// `[livy]`: the upstream Livy server(s).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivyConfig {
    /// Base URLs of Livy servers. Required.
    pub upstreams: Vec<UpstreamUrl>,
    /// Trust for `https://` upstreams (PEM); system roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(rename = "connect_timeout_secs", with = "secs")]
    pub connect_timeout: Duration,
    /// Time for Livy to start answering (response headers); bodies are never cut.
    #[serde(rename = "response_timeout_secs", with = "secs")]
    pub response_timeout: Duration,
    /// Idle upstream connections are closed after this long.
    #[serde(rename = "pool_idle_timeout_secs", with = "secs")]
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
    /// With several upstreams, each is asked `GET /version` this often to choose
    /// the active one (answers: active; 307: standby; fails: down); zero turns the
    /// checks off (requests alone then tell which one answers).
    #[serde(rename = "health_check_interval_secs", with = "secs")]
    pub health_check_interval: Duration,
    /// How the caller's identity is asserted to Livy in the query string.
    pub identity: IdentityMode,
    /// A header injected into state-changing requests that lack it.
    #[serde(with = "header_name", skip_serializing_if = "Option::is_none")]
    pub csrf_header: Option<HeaderName>,
    /// The value of the injected CSRF header.
    #[serde(with = "header_value")]
    pub csrf_value: HeaderValue,
    /// Largest body of `POST …/batches` and `POST …/sessions`.
    pub max_create_body_bytes: usize,
    /// Largest body of any other request.
    pub max_body_bytes: usize,
    /// Largest body of the job API's upload endpoints.
    pub max_upload_bytes: usize,
    /// Largest Livy answer read whole to apply the gateway's policy.
    pub max_buffered_response_bytes: usize,
    /// `[livy.kerberos]`: present, every request to Livy is authenticated with
    /// SPNEGO from the gateway's keytab (cargo feature `kerberos`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<LivyKerberosConfig>,
}

/// `[livy.kerberos]`: the gateway's own Kerberos identity towards a Kerberized Livy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivyKerberosConfig {
    /// The gateway's key. Required.
    pub keytab: PathBuf,
    /// The gateway's principal, e.g. `livy-gateway/gw.example.org@EXAMPLE.ORG`;
    /// empty: the keytab's first.
    pub principal: String,
    /// Livy's principal is `<service>/<host of the upstream URL>`.
    pub service: String,
}

impl Default for LivyKerberosConfig {
    fn default() -> Self {
        Self {
            keytab: PathBuf::new(),
            principal: String::new(),
            service: "HTTP".into(),
        }
    }
}

impl Default for LivyConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            health_check_interval: Duration::from_secs(5),
            identity: IdentityMode::Doas,
            csrf_header: None,
            csrf_value: HeaderValue::from_static("livy-gateway"),
            max_create_body_bytes: 1024 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            max_upload_bytes: 1024 * 1024 * 1024,
            max_buffered_response_bytes: 64 * 1024 * 1024,
            kerberos: None,
        }
    }
}

/// `[yarn]`: the cluster's YARN web UIs through the gateway: the Spark UI behind
/// the ResourceManager's proxy, and driver logs on NodeManagers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct YarnConfig {
    /// The ResourceManager's web address, e.g. `http://rm.internal:8088`.
    pub resourcemanager: UpstreamUrl,
    /// The NodeManagers container logs may be fetched from (`host:port`,
    /// `*.<domain>:port`); none: driver-log links are not rewritten.
    #[serde(default)]
    pub nodemanagers: Vec<HostPattern>,
    /// The Spark History Server's web address, e.g. `http://shs.internal:18080`
    /// (`https://` trusted with `[livy] ca_file`): finished applications' pages
    /// under `/sparkhistory/`, each user seeing only their own.
    #[serde(default)]
    pub historyserver: Option<UpstreamUrl>,
}

impl YarnConfig {
    /// `http://` or `https://`: how NodeManagers are reached. YARN's
    /// `yarn.http.policy` (`HTTP_ONLY`, `HTTPS_ONLY`) holds for the ResourceManager
    /// and every NodeManager alike, so the ResourceManager's scheme is theirs.
    pub fn nodemanager_scheme(&self) -> &'static str {
        if self.resourcemanager.is_https() {
            "https://"
        } else {
            "http://"
        }
    }
}

/// How the gateway tells Livy who a request runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityMode {
    /// Append `doAs=<effective user>` to every request.
    #[default]
    Doas,
    /// Add nothing (client identity parameters are still removed).
    None,
}

/// `[state]`: where sessions, ownership records, rate limits and lockouts live.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    pub backend: StateBackend,
    /// `redis://` or `rediss://` (TLS), with the database number as the path.
    pub redis_url: String,
    /// Trust for `rediss://`; the system's roots when unset or empty.
    pub ca_file: Option<PathBuf>,
    /// The Redis password, first line of the file; never in the TOML.
    pub redis_password_file: Option<PathBuf>,
    /// Put before every key the gateway writes, so several gateways (or other
    /// programs) can share one Redis.
    pub key_prefix: String,
    /// Longest wait for one Redis operation; past it the operation fails (503, or
    /// the local rate limiter).
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// Ownership records not looked at for this long are dropped (both backends):
    /// Livy forgets finished batches and sessions long before.
    #[serde(rename = "ownership_retention_days", with = "days")]
    pub ownership_retention: Duration,
    /// How long an instance may answer a session cookie (and the record its path
    /// names) from what Redis last told it, when no rate limit applies to the
    /// request; ended sessions and changed records reach every instance at once
    /// through Redis pub/sub. Zero: ask Redis at every request.
    #[serde(rename = "local_cache_ms", with = "millis")]
    pub local_cache: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackend::Local,
            redis_url: "redis://127.0.0.1:6379/0".into(),
            ca_file: None,
            redis_password_file: None,
            key_prefix: "livy-gateway:".into(),
            timeout: Duration::from_millis(200),
            ownership_retention: Duration::from_secs(30 * 86_400),
            local_cache: Duration::from_millis(1000),
        }
    }
}

/// Which state backend a gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// In memory, ownership records also in `<data_dir>/ownership.redb`: one
    /// instance.
    Local,
    /// In a Redis server shared by every instance.
    Redis,
}

/// `[rate_limit]`: request rates. A rate of 0 (or a burst of 0) disables a limit.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second per client address, counted before authentication.
    pub per_ip_rps: f64,
    pub per_ip_burst: u32,
    /// Requests per second per authenticated user.
    pub per_user_rps: f64,
    pub per_user_burst: u32,
    /// Batches and sessions a user may create per minute (also the burst).
    pub create_per_user_per_min: u32,
    /// Keys (addresses, users) a limiter tracks before it is reset.
    pub max_tracked_keys: usize,
    /// Per-user rates replacing the per-user limit (service accounts).
    pub overrides: HashMap<String, RateSpec>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_rps: 100.0,
            per_ip_burst: 200,
            per_user_rps: 20.0,
            per_user_burst: 40,
            create_per_user_per_min: 30,
            max_tracked_keys: 100_000,
            overrides: HashMap::new(),
        }
    }
}

/// A rate and burst for one user.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub rps: f64,
    pub burst: u32,
}

/// `[login]`: failed-login throttling (see `auth::throttle` for the policy).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Failures of one user from one address before that pair is locked; 0 = off.
    pub max_failures_per_pair: u32,
    /// Failures from one address (any users) before it is locked; 0 = off.
    pub max_failures_per_address: u32,
    /// Failures of one user from anywhere before the user is locked on addresses
    /// without a recent successful login; 0 = off.
    pub max_failures_per_user: u32,
    /// Failures older than this are forgotten.
    #[serde(rename = "failure_window_secs", with = "secs")]
    pub failure_window: Duration,
    /// First lockout; each further one doubles, up to `max_lockout`.
    #[serde(rename = "lockout_secs", with = "secs")]
    pub lockout: Duration,
    #[serde(rename = "max_lockout_secs", with = "secs")]
    pub max_lockout: Duration,
    /// An address where a user logged in successfully stays exempt from that user's
    /// global lockout this long (and counts as familiar).
    #[serde(rename = "trusted_address_secs", with = "secs")]
    pub trusted_address: Duration,
    pub max_tracked_keys: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_pair: 5,
            max_failures_per_address: 20,
            max_failures_per_user: 50,
            failure_window: Duration::from_secs(900),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(3600),
            trusted_address: Duration::from_secs(86_400),
            max_tracked_keys: 100_000,
        }
    }
}

/// `[admin]`: the operators' listener (metrics, health), plain HTTP, kept off the
/// public TLS port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

/// `[audit]`: the per-request audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub enabled: bool,
    /// JSON-lines file; default `<server.data_dir>/audit.log`.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `livy_gateway=debug,hyper=warn`, …
    pub level: String,
    pub format: LogFormat,
    /// Where access lines go; standard error (with the rest of the log) when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_path: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
            access_path: None,
        }
    }
}

/// Output format of the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
