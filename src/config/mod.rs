//! The gateway's configuration: the TOML file format, its defaults, and its validation.
//!
//! This is the only module that reads the config file. It is parsed once into typed
//! values (`sections`: durations, parsed upstream URLs, header names), relative
//! paths resolved against the file's directory, and checked (`Config::validate`);
//! everything else receives a [`Config`] whose values are known to be usable.
//! Unknown keys are an error, so a typo never silently falls back to a default.
//! `check-config` prints the effective settings through [`Config`]'s `Display`.

mod display;
mod oidc;
mod policy;
mod sections;
mod tokens;
mod values;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StartupError;
pub use oidc::OidcConfig;
pub use policy::{EffectivePolicy, GroupPolicy, PolicyConfig, SparkSize};
pub use sections::*;
pub use tokens::{JwtConfig, TokensConfig, DEFAULT_JWT_ALGORITHMS};
pub use values::{is_host_name, HostPattern, UpstreamUrl};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub gateway: GatewayConfig,
    pub auth: AuthConfig,
    pub session: SessionConfig,
    pub livy: LivyConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub audit: AuditConfig,
    pub rate_limit: RateLimitConfig,
    pub login: LoginConfig,
    pub admin: AdminConfig,
    /// `[tokens]`: personal access tokens the gateway issues.
    pub tokens: TokensConfig,
    /// `[policy]`: quotas, the cap on creations in flight, idle sessions' end and
    /// the rules create bodies keep.
    pub policy: PolicyConfig,
    /// `[yarn]`: present, Spark UI and driver-log links lead through the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yarn: Option<YarnConfig>,
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
        let fail = |message: String| StartupError::Config {
            path: origin.to_path_buf(),
            message,
        };
        // Through `serde_path_to_error`, so an error names the key it is about
        // (`livy.upstreams[0]`) as well as its line.
        let mut config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| match e.path().to_string() {
                path if path == "." => fail(e.inner().to_string()),
                path => fail(format!("key {path}: {}", e.inner())),
            })?;
        config.resolve_paths(base);
        config.validate().map_err(fail)?;
        Ok(config)
    }

    /// The config as TOML (what `from_toml` reads back to the same values).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every config value has a TOML form")
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() && !path.as_os_str().is_empty() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.server.tls_cert);
        resolve(&mut self.server.tls_key);
        resolve(&mut self.server.data_dir);
        let ldap = self.auth.ldap.as_mut();
        let (ldap_ca, ldap_password) = match ldap {
            Some(l) => (l.ca_file.as_mut(), l.bind_password_file.as_mut()),
            None => (None, None),
        };
        for path in [
            self.auth.htpasswd.as_mut(),
            self.livy.ca_file.as_mut(),
            self.audit.path.as_mut(),
            self.log.access_path.as_mut(),
            ldap_ca,
            ldap_password,
            self.state.ca_file.as_mut(),
            self.state.redis_password_file.as_mut(),
            self.livy.kerberos.as_mut().map(|k| &mut k.keytab),
            self.auth.kerberos.as_mut().map(|k| &mut k.keytab),
            self.auth.jwt.as_mut().and_then(|j| j.ca_file.as_mut()),
        ]
        .into_iter()
        .flatten()
        {
            resolve(path);
        }
        if let Some(oidc) = self.auth.oidc.as_mut() {
            resolve(&mut oidc.client_secret_file);
            if let Some(ca) = oidc.ca_file.as_mut() {
                resolve(ca);
            }
        }
        if self.audit.path.is_none() {
            self.audit.path = Some(self.server.data_dir.join("audit.log"));
        }
    }

    /// Checks what the types alone cannot: required keys, non-zero timeouts and
    /// limits, names that must be tokens, rates that must be finite.
    fn validate(&self) -> Result<(), String> {
        let required = [
            (
                "server.tls_cert",
                self.server.tls_cert.as_os_str().is_empty(),
            ),
            ("server.tls_key", self.server.tls_key.as_os_str().is_empty()),
            ("livy.upstreams", self.livy.upstreams.is_empty()),
        ];
        for (key, missing) in required {
            if missing {
                return Err(format!("key {key}: required"));
            }
        }
        self.policy.validate()?;
        let a = &self.auth;
        let sources = [
            a.htpasswd.is_some(),
            a.ldap.is_some(),
            a.kerberos.is_some(),
            a.jwt.is_some(),
            a.oidc.is_some(),
        ];
        if !sources.contains(&true) {
            return Err(
                "key auth.htpasswd: required (or an [auth.ldap], [auth.kerberos], \
                 [auth.jwt] or [auth.oidc] section)"
                    .into(),
            );
        }
        if let Some(oidc) = &self.auth.oidc {
            oidc::validate_oidc(oidc)?;
        }
        if let Some(jwt) = &self.auth.jwt {
            tokens::validate_jwt(jwt)?;
        }
        tokens::validate_tokens(&self.tokens)?;
        if let Some(kerberos) = &self.auth.kerberos {
            validate_auth_kerberos(kerberos)?;
        }
        if let Some(ldap) = &self.auth.ldap {
            validate_ldap(ldap)?;
        }
        validate_state(&self.state)?;
        if let Some(kerberos) = &self.livy.kerberos {
            if kerberos.keytab.as_os_str().is_empty() {
                return Err("key livy.kerberos.keytab: required".into());
            }
            if kerberos.service.is_empty() || kerberos.service.contains(['/', '@']) {
                return Err(format!(
                    "key livy.kerberos.service: {:?}: a service name such as HTTP",
                    kerberos.service
                ));
            }
        }
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
        if self.auth.realm.contains('"') || self.auth.realm.chars().any(char::is_control) {
            return Err("key auth.realm: must not contain quotes or control characters".into());
        }
        let cookie = &self.session.cookie_name;
        if cookie.is_empty() || !cookie.bytes().all(is_cookie_name_byte) {
            return Err(format!(
                "key session.cookie_name: {cookie:?} is not a valid cookie name"
            ));
        }
        let positive = [
            (
                "server.handshake_timeout_secs",
                self.server.handshake_timeout.is_zero(),
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout.is_zero(),
            ),
            (
                "server.body_idle_timeout_secs",
                self.server.body_idle_timeout.is_zero(),
            ),
            (
                "session.idle_timeout_secs",
                self.session.idle_timeout.is_zero(),
            ),
            (
                "session.absolute_timeout_secs",
                self.session.absolute_timeout.is_zero(),
            ),
            (
                "livy.connect_timeout_secs",
                self.livy.connect_timeout.is_zero(),
            ),
            (
                "livy.response_timeout_secs",
                self.livy.response_timeout.is_zero(),
            ),
            (
                "server.h2_max_concurrent_streams",
                self.server.h2_max_concurrent_streams == 0,
            ),
            ("session.max_sessions", self.session.max_sessions == 0),
            (
                "livy.max_create_body_bytes",
                self.livy.max_create_body_bytes == 0,
            ),
            (
                "livy.max_buffered_response_bytes",
                self.livy.max_buffered_response_bytes == 0,
            ),
        ];
        for (key, zero) in positive {
            if zero {
                return Err(format!("key {key}: must be greater than 0"));
            }
        }
        let r = &self.rate_limit;
        let rates = [
            ("rate_limit.per_ip_rps".to_string(), r.per_ip_rps),
            ("rate_limit.per_user_rps".to_string(), r.per_user_rps),
        ]
        .into_iter()
        .chain(
            r.overrides
                .iter()
                .map(|(u, spec)| (format!("rate_limit.overrides.{u}.rps"), spec.rps)),
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
}

/// Checks `[state]`: a Redis URL the client can use, timeouts that are not zero.
fn validate_state(s: &StateConfig) -> Result<(), String> {
    if s.timeout.is_zero() {
        return Err("key state.timeout_ms: must be greater than 0".into());
    }
    if s.ownership_retention.is_zero() {
        return Err("key state.ownership_retention_days: must be greater than 0".into());
    }
    // A copy outlives a lost invalidation message by at most this: keep it short.
    if s.local_cache > std::time::Duration::from_secs(60) {
        return Err("key state.local_cache_ms: at most 60000".into());
    }
    if s.backend == StateBackend::Redis {
        let scheme = s.redis_url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("redis" | "rediss")) {
            return Err(format!(
                "key state.redis_url: {:?}: use redis:// or rediss://",
                s.redis_url
            ));
        }
        let info = redis::IntoConnectionInfo::into_connection_info(s.redis_url.as_str())
            .map_err(|error| format!("key state.redis_url: {error}"))?;
        if info.redis_settings().password().is_some() {
            return Err(
                "key state.redis_url: holds a password; put it in state.redis_password_file".into(),
            );
        }
    }
    Ok(())
}

/// Checks `[auth.ldap]`: URLs, and a way to find users.
fn validate_ldap(l: &LdapConfig) -> Result<(), String> {
    if l.urls.is_empty() {
        return Err("key auth.ldap.urls: at least one directory URL is required".into());
    }
    for url in &l.urls {
        match url.split_once("://") {
            Some(("ldaps", _)) if l.start_tls => {
                return Err(format!(
                    "key auth.ldap.start_tls: {url:?} is ldaps:// already; StartTLS is for ldap://"
                ))
            }
            Some(("ldap" | "ldaps", rest)) if !rest.is_empty() => {}
            _ => {
                return Err(format!(
                    "key auth.ldap.urls: {url:?}: use ldap:// or ldaps://"
                ))
            }
        }
    }
    if l.user_dn_template.is_empty() {
        if l.user_search_base.is_empty() {
            return Err(
                "key auth.ldap.user_search_base: required unless user_dn_template is set".into(),
            );
        }
        if !l.user_filter.contains("{user}") {
            return Err("key auth.ldap.user_filter: must contain {user}".into());
        }
    } else if !l.user_dn_template.contains("{user}") {
        return Err("key auth.ldap.user_dn_template: must contain {user}".into());
    }
    if !l.bind_dn.is_empty() && l.bind_password_file.is_none() {
        return Err("key auth.ldap.bind_password_file: required with bind_dn".into());
    }
    if l.name_attribute().is_none() {
        return Err(
            "key auth.ldap.user_name_attribute: required when the filter or DN template names no attribute for {user}"
                .into(),
        );
    }
    if l.pool_size == 0 || l.timeout.is_zero() {
        return Err("key auth.ldap.pool_size, timeout_secs: must be greater than 0".into());
    }
    Ok(())
}

fn validate_auth_kerberos(k: &AuthKerberosConfig) -> Result<(), String> {
    if k.keytab.as_os_str().is_empty() {
        return Err("key auth.kerberos.keytab: required".into());
    }
    if k.realms.is_empty() {
        return Err(
            "key auth.kerberos.realms: required (the realms whose users may log in)".into(),
        );
    }
    if let Some(realm) = k
        .realms
        .iter()
        .find(|r| r.is_empty() || r.contains(['@', '/']) || r.chars().any(char::is_whitespace))
    {
        return Err(format!(
            "key auth.kerberos.realms: {realm:?} is not a realm name such as EXAMPLE.ORG"
        ));
    }
    Ok(())
}

/// RFC 6265 cookie-name characters (an RFC 7230 token).
fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert_eq!(
            c.auth.htpasswd,
            Some(PathBuf::from("/etc/lg/users.htpasswd"))
        );
        assert_eq!(c.gateway.topology, "default");
        assert_eq!(c.session.cookie_name, "JSESSIONID");
        assert_eq!(c.session.idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.auth.realm, "application");
        assert_eq!(c.gateway_path(), "/gateway/default");
        assert_eq!(c.livy.identity, IdentityMode::Doas);
        assert_eq!(c.livy.csrf_header, None);
        assert_eq!(c.state.backend, StateBackend::Local);
        assert_eq!(
            c.audit.path,
            Some(PathBuf::from("/etc/lg/../data/audit.log"))
        );
    }

    #[test]
    fn the_documented_example_config_is_valid_and_documents_the_defaults() {
        let text = include_str!("../../config/gateway.toml");
        let mut c = parse(text).unwrap();
        assert_eq!(c.auth.admins, vec!["admin".to_string()]);
        assert_eq!(c.livy.upstreams[0].to_string(), "http://127.0.0.1:8998");
        // Everything but the example values (paths, upstream, admin) is the
        // default: the file and the code say the same.
        let defaults = Config::default();
        c.server.tls_cert = defaults.server.tls_cert.clone();
        c.server.tls_key = defaults.server.tls_key.clone();
        c.server.data_dir = defaults.server.data_dir.clone();
        c.auth.htpasswd = None;
        c.auth.admins.clear();
        c.livy.upstreams.clear();
        c.audit.path = None;
        assert_eq!(c, defaults);
    }

    #[test]
    fn a_config_written_out_reads_back_the_same() {
        let mut c = parse(MINIMAL).unwrap();
        c.livy.csrf_header = Some(http::HeaderName::from_static("x-requested-by"));
        c.server.public_host = Some("gw.example.org:8443".parse().unwrap());
        c.server.release_idle_buffers_after = Duration::from_millis(50);
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(again, c);
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
    fn missing_required_keys_are_named() {
        for (key, line) in [
            ("auth.htpasswd", "htpasswd = \"users.htpasswd\""),
            ("server.tls_cert", "tls_cert = \"certs/gateway.crt\""),
            ("livy.upstreams", "upstreams = [\"http://127.0.0.1:8998\"]"),
        ] {
            let err = parse(&MINIMAL.replace(line, "")).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn node_managers_are_shown_with_the_resourcemanagers_scheme() {
        for (rm, shown) in [
            ("http://rm.internal:8088", "http://*.cluster.internal:8044"),
            (
                "https://rm.internal:8090",
                "https://*.cluster.internal:8044",
            ),
        ] {
            let text = format!(
                "{MINIMAL}[yarn]\nresourcemanager = \"{rm}\"\nnodemanagers = [\"*.cluster.internal:8044\"]\n"
            );
            let shown_config = parse(&text).unwrap().to_string();
            assert!(
                shown_config.contains(&format!("container logs from {shown}\n")),
                "{shown_config}"
            );
        }
    }

    #[test]
    fn kerberos_logins_need_a_keytab_and_realms_and_may_stand_alone() {
        let alone = MINIMAL.replace(
            "htpasswd = \"users.htpasswd\"",
            "[auth.kerberos]\nkeytab = \"http.keytab\"\nrealms = [\"EXAMPLE.ORG\"]",
        );
        let c = parse(&alone).unwrap();
        let k = c.auth.kerberos.as_ref().unwrap();
        assert_eq!(k.keytab, PathBuf::from("/etc/lg/http.keytab"));
        assert_eq!(k.realms, ["EXAMPLE.ORG"]);
        assert!(c.to_string().contains("negotiate:"));
        for (bad, key) in [
            ("realms = [\"EXAMPLE.ORG\"]", "auth.kerberos.realms"),
            ("realms = [\"alice@EXAMPLE.ORG\"]", "auth.kerberos.realms"),
            ("realms = [\"\"]", "auth.kerberos.realms"),
        ] {
            let text = alone.replace("realms = [\"EXAMPLE.ORG\"]", bad);
            let text = match bad.starts_with("realms = [\"EXAMPLE") {
                true => text.replace(bad, ""),
                false => text,
            };
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let no_keytab = alone.replace("keytab = \"http.keytab\"", "");
        let err = parse(&no_keytab).unwrap_err().to_string();
        assert!(err.contains("auth.kerberos.keytab"), "{err}");
    }

    #[test]
    fn bad_upstreams_are_rejected() {
        for bad in [
            "ftp://livy:8998",
            "livy:8998",
            "http://user:pw@livy:8998",
            "http://livy:8998/api",
            "not a url",
        ] {
            let text = MINIMAL.replace("http://127.0.0.1:8998", bad);
            let err = parse(&text).unwrap_err().to_string();
            // The line of `[livy] upstreams`, the value and what is wrong with it.
            assert!(
                err.contains("upstreams") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        let text = MINIMAL.replace("http://127.0.0.1:8998", "https://livy.example.org:8998");
        assert!(parse(&text).unwrap().livy.upstreams[0].is_https());
    }

    #[test]
    fn an_unknown_state_backend_is_refused_naming_the_key() {
        let text = format!("{MINIMAL}\n[state]\nbackend = \"etcd\"\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("backend") && err.contains("etcd"), "{err}");
    }

    #[test]
    fn redis_urls_are_checked_and_keep_no_password() {
        let ok = format!("{MINIMAL}\n[state]\nbackend = \"redis\"\nredis_url = \"rediss://redis.internal:6380/2\"\n");
        assert_eq!(parse(&ok).unwrap().state.backend, StateBackend::Redis);
        for (url, says) in [
            ("http://redis.internal:6379", "redis:// or rediss://"),
            (
                "redis://:hunter2@redis.internal:6379/0",
                "redis_password_file",
            ),
        ] {
            let text = format!("{MINIMAL}\n[state]\nbackend = \"redis\"\nredis_url = \"{url}\"\n");
            let err = parse(&text).unwrap_err().to_string();
            assert!(
                err.contains("state.redis_url") && err.contains(says),
                "{err}"
            );
            assert!(
                !err.contains("hunter2"),
                "no password in the message: {err}"
            );
        }
        let text = format!("{MINIMAL}\n[state]\ntimeout_ms = 0\n");
        assert!(parse(&text)
            .unwrap_err()
            .to_string()
            .contains("state.timeout_ms"));
        let text = format!("{MINIMAL}\n[state]\nlocal_cache_ms = 60001\n");
        assert!(parse(&text)
            .unwrap_err()
            .to_string()
            .contains("state.local_cache_ms"));
        let text = format!("{MINIMAL}\n[state]\nlocal_cache_ms = 0\n");
        assert!(parse(&text).unwrap().state.local_cache.is_zero());
    }

    #[test]
    fn bad_topology_cookie_level_and_values_are_rejected() {
        for (extra, key) in [
            ("[gateway]\ntopology = \"a/b\"", "gateway.topology"),
            ("[session]\ncookie_name = \"a b\"", "cookie_name"),
            ("[log]\nlevel = \"[[[\"", "log.level"),
            ("[session]\nidle_timeout_secs = 0", "idle_timeout_secs"),
            ("[server]\npublic_host = \"a b\"", "public_host"),
            ("[rate_limit]\nper_ip_rps = -1.0", "per_ip_rps"),
        ] {
            let text = if extra.starts_with("[server]") {
                MINIMAL.replace("[server]", extra)
            } else {
                format!("{MINIMAL}\n{extra}\n")
            };
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
        let text = MINIMAL.replace("[livy]", "[livy]\ncsrf_header = \"bad header\"");
        assert!(parse(&text)
            .unwrap_err()
            .to_string()
            .contains("csrf_header"));
    }
}
