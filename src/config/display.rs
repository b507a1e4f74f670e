//! What `check-config` prints: the effective settings of a [`Config`], one line
//! per concern, secrets never shown.

use std::fmt;

use super::*;

/// The effective settings, as `check-config` prints them.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, l, r) = (&self.server, &self.livy, &self.rate_limit);
        let list = |items: &[String]| match items.join(", ") {
            none if none.is_empty() => "(none)".to_string(),
            some => some,
        };
        let rate = |rps: f64, burst: u32| match rps > 0.0 && burst > 0 {
            true => format!("{rps}/s, burst {burst}"),
            false => "off".to_string(),
        };
        writeln!(f, "  listen:        {}", s.listen)?;
        writeln!(f, "  topology:      {}/livy/v1/", self.gateway_path())?;
        let upstreams: Vec<String> = l.upstreams.iter().map(ToString::to_string).collect();
        writeln!(f, "  upstreams:     {}", upstreams.join(", "))?;
        if let Some(y) = &self.yarn {
            let scheme = y.nodemanager_scheme();
            let nodes: Vec<String> = y
                .nodemanagers
                .iter()
                .map(|node| format!("{scheme}{node}"))
                .collect();
            writeln!(
                f,
                "  yarn:          {} (proxy), container logs from {}",
                y.resourcemanager,
                match nodes.is_empty() {
                    true => "no NodeManager".to_string(),
                    false => nodes.join(", "),
                }
            )?;
            if let Some(history) = &y.historyserver {
                writeln!(f, "  history:       {history} (Spark History Server)")?;
            }
        }
        if let Some(k) = &l.kerberos {
            let principal = match k.principal.is_empty() {
                true => "the keytab's first principal",
                false => k.principal.as_str(),
            };
            writeln!(
                f,
                "  livy auth:     SPNEGO as {principal} ({}), to {}/<upstream host>",
                k.keytab.display(),
                k.service
            )?;
        }
        if let Some(htpasswd) = &self.auth.htpasswd {
            writeln!(f, "  htpasswd:      {}", htpasswd.display())?;
        }
        if let Some(k) = &self.auth.kerberos {
            let principal = match k.principal.is_empty() {
                true => "any key",
                false => k.principal.as_str(),
            };
            writeln!(
                f,
                "  negotiate:     tickets for {principal} in {}, realms {}",
                k.keytab.display(),
                list(&k.realms)
            )?;
        }
        writeln!(f, "  admins:        {}", list(&self.auth.admins))?;
        writeln!(f, "  admin groups:  {}", list(&self.auth.admin_groups))?;
        writeln!(
            f,
            "  sessions:      cookie {}, idle {}s, absolute {}s, at most {}",
            self.session.cookie_name,
            self.session.idle_timeout.as_secs(),
            self.session.absolute_timeout.as_secs(),
            self.session.max_sessions
        )?;
        writeln!(
            f,
            "  identity:      {}",
            match l.identity {
                IdentityMode::Doas => "doAs=<user> appended to every request",
                IdentityMode::None => "none asserted (client identity parameters still removed)",
            }
        )?;
        writeln!(
            f,
            "  csrf header:   {}",
            l.csrf_header
                .as_ref()
                .map_or("(not injected)", |h| h.as_str())
        )?;
        match self.state.backend {
            StateBackend::Local => writeln!(f, "  state:         local")?,
            StateBackend::Redis => writeln!(
                f,
                "  state:         redis at {} (keys {}*; near cache {})",
                self.state.redis_url,
                self.state.key_prefix,
                match self.state.local_cache.as_millis() {
                    0 => "off".to_owned(),
                    ms => format!("{ms} ms"),
                }
            )?,
        }
        writeln!(f, "  data dir:      {}", s.data_dir.display())?;
        match self.admin.enabled {
            true => writeln!(
                f,
                "  admin:         http://{}/metrics, /healthz, /readyz",
                self.admin.listen
            )?,
            false => writeln!(f, "  admin:         off")?,
        }
        match (&self.audit.path, self.audit.enabled) {
            (Some(path), true) => writeln!(f, "  audit log:     {}", path.display())?,
            _ => writeln!(f, "  audit log:     off")?,
        }
        match &self.log.access_path {
            Some(path) => writeln!(f, "  access log:    {}", path.display())?,
            None => writeln!(f, "  access log:    standard error")?,
        }
        writeln!(
            f,
            "  timeouts:      handshake {}s, header read {}s, body idle {}s, idle {}s, upstream connect {}s, upstream response {}s",
            s.handshake_timeout.as_secs(),
            s.header_read_timeout.as_secs(),
            s.body_idle_timeout.as_secs(),
            s.idle_timeout.as_secs(),
            l.connect_timeout.as_secs(),
            l.response_timeout.as_secs()
        )?;
        writeln!(
            f,
            "  rate limits:   per address {}",
            rate(r.per_ip_rps, r.per_ip_burst)
        )?;
        writeln!(
            f,
            "                 per user {}",
            rate(r.per_user_rps, r.per_user_burst)
        )?;
        writeln!(
            f,
            "                 creations per user {}/min",
            r.create_per_user_per_min
        )?;
        let mut overrides: Vec<_> = r.overrides.iter().collect();
        overrides.sort_by(|a, b| a.0.cmp(b.0));
        for (user, spec) in overrides {
            writeln!(
                f,
                "                 user {user}: {}",
                rate(spec.rps, spec.burst)
            )?;
        }
        let g = &self.login;
        writeln!(
            f,
            "  login lockout: after {} failures per user+address, {} per address, {} per user (except trusted addresses); {}s doubling to {}s",
            g.max_failures_per_pair,
            g.max_failures_per_address,
            g.max_failures_per_user,
            g.lockout.as_secs(),
            g.max_lockout.as_secs()
        )?;
        let p = &self.policy;
        let creating = match p.max_creating {
            0 => "no cap".to_string(),
            n => n.to_string(),
        };
        writeln!(
            f,
            "  policy:        creations in flight at once: {creating}"
        )?;
        writeln!(f, "                 everyone: {}", p.effective(&[]))?;
        for name in p.groups.keys() {
            let member = p.effective(std::slice::from_ref(name));
            writeln!(f, "                 group {name}: {member}")?;
        }
        write!(
            f,
            "  size limits:   {} connections ({} per address), headers {} bytes / {} fields, bodies: create {} B, other {} B, upload {} B",
            s.max_connections,
            s.max_connections_per_address,
            s.max_header_bytes,
            s.max_headers,
            l.max_create_body_bytes,
            l.max_body_bytes,
            l.max_upload_bytes
        )
    }
}
