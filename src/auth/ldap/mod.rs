//! Logins checked against an LDAP directory or Active Directory (`[auth.ldap]`).
//!
//! Search-then-bind: the service account finds the user's entry with
//! `user_filter` under `user_search_base` (the name escaped per RFC 4515, so `*`
//! and parentheses match only themselves); a bind as that DN with the given
//! password decides. Or, with `user_dn_template`, a direct bind to the DN it makes
//! (the name escaped per RFC 4514). Groups come from a server-side search
//! (`group_filter` under `group_search_base`, never a listing of every group:
//! Active Directory's `member:1.2.840.113556.1.4.1941:=` filter finds nested
//! groups) or from the entry's `memberOf` values.
//!
//! The user's name at the gateway is the directory's own value of the naming
//! attribute on the entry found (`user_name_attribute`, by default the attribute
//! the filter or DN template matches `{user}` against): directories compare
//! `uid` and `sAMAccountName` without regard to case (and to outer spaces), so
//! `ALICE` finds alice's entry, and must become `alice`, not a second identity
//! for Livy, the ownership records and the limits. Of several values the
//! smallest is taken, whichever was typed, so an entry is always the same user.
//!
//! A wrong password and an unknown user are both a failed login; a directory that
//! cannot be reached, times out or refuses the service account is a
//! [`VerifyError`] (503, not a failed login). Connections are pooled ([`pool`]).
//! Every operation is counted by kind and outcome, with its duration.

pub mod pool;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use ldap3::{dn_escape, ldap_escape, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use tokio::time::Instant;

use super::basic::Credentials;
use super::verifier::{CredentialVerifier, Lookup, Verdict, VerifyError};
use super::Identity;
use crate::config::LdapConfig;
use crate::error::StartupError;
use crate::metrics::Metrics;
use pool::{outcome_of, Conn, Pool, INVALID_CREDENTIALS};

/// LDAP result code 4: sizeLimitExceeded (more than one entry matched).
const SIZE_LIMIT_EXCEEDED: u32 = 4;
/// LDAP result code 32: noSuchObject (a user's DN that does not exist).
const NO_SUCH_OBJECT: u32 = 32;

/// Counts directory operations and their durations.
pub struct Ops {
    metrics: Arc<Metrics>,
}

impl Ops {
    /// Records one operation of `kind` that ended with `outcome`.
    pub fn record(&self, kind: &'static str, outcome: &'static str, started: Instant) {
        self.metrics
            .directory_operation(kind, outcome, started.elapsed());
    }
}

/// Checks logins against a directory.
pub struct LdapVerifier {
    config: LdapConfig,
    /// The attribute whose value is a user's name (`uid`, `sAMAccountName`).
    name_attribute: String,
    /// Bound as the service account: searches.
    searches: Pool,
    /// Only ever carries users' binds.
    binds: Pool,
    ops: Arc<Ops>,
}

impl LdapVerifier {
    /// Reads the service account's password and the trust, and prepares the pools
    /// (nothing connects until the first login).
    pub fn new(config: &LdapConfig, metrics: Arc<Metrics>) -> Result<Self, StartupError> {
        let password = match &config.bind_password_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| StartupError::Io {
                    what: "directory bind password file",
                    path: path.clone(),
                    source,
                })?;
                Some(text.lines().next().unwrap_or_default().to_owned())
            }
            None => None,
        };
        let service = match (config.bind_dn.is_empty(), password) {
            (false, Some(password)) => Some(pool::Credentials {
                dn: config.bind_dn.clone(),
                password,
            }),
            _ => None,
        };
        let settings = settings(config)?;
        let ops = Arc::new(Ops { metrics });
        let pool = |bind| {
            Pool::new(
                config.urls.clone(),
                settings.clone(),
                bind,
                config.timeout,
                config.pool_size,
                ops.clone(),
            )
        };
        let name_attribute = config.name_attribute().ok_or_else(|| {
            StartupError::Other(
                "auth.ldap.user_name_attribute: cannot be told from the filter".into(),
            )
        })?;
        Ok(Self {
            searches: pool(service),
            binds: pool(None),
            config: config.clone(),
            name_attribute,
            ops,
        })
    }

    /// The attributes read from a user's entry: the name, and `memberOf` when
    /// groups come from it.
    fn entry_attributes(&self) -> Vec<&str> {
        let mut attrs = vec![self.name_attribute.as_str()];
        if self.config.use_member_of {
            attrs.push("memberOf");
        }
        attrs
    }

    /// `dn`'s entry with [`Self::entry_attributes`], read on `bound` (the user's
    /// own connection) when there is no service account, else as the service
    /// account; `None` if there is no such entry.
    async fn read_entry(
        &self,
        dn: &str,
        bound: Option<&mut Conn<'_>>,
    ) -> Result<Option<SearchEntry>, VerifyError> {
        let query = Query {
            kind: "search_user",
            base: dn,
            scope: Scope::Base,
            filter: "(objectClass=*)",
            attrs: self.entry_attributes(),
            limit: 1,
        };
        let entries = self.search_as(&query, bound).await?;
        Ok(entries.into_iter().next())
    }

    /// The user's name at the gateway: `entry`'s value of the naming attribute
    /// (the typed name, `typed`, when the entry has none readable, with a
    /// warning).
    fn canonical(&self, entry: &SearchEntry, typed: &str) -> String {
        let values = entry
            .attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&self.name_attribute))
            .map(|(_, values)| values.as_slice())
            .unwrap_or_default();
        // One entry is one user: of several values, always the same one.
        match values.iter().min() {
            Some(name) => name.trim().to_owned(),
            None => {
                tracing::warn!(
                    attribute = %self.name_attribute,
                    "a user's entry has no readable naming attribute: the typed name is used"
                );
                typed.to_owned()
            }
        }
    }

    /// The user's entry: its DN, and its attributes when searched for.
    async fn find_user(&self, user: &str) -> Result<Option<SearchEntry>, VerifyError> {
        if !self.config.user_dn_template.is_empty() {
            let dn = self
                .config
                .user_dn_template
                .replace("{user}", &dn_escape(user));
            return Ok(Some(SearchEntry {
                dn,
                attrs: Default::default(),
                bin_attrs: Default::default(),
            }));
        }
        let filter = self
            .config
            .user_filter
            .replace("{user}", &ldap_escape(user));
        let attrs = self.entry_attributes();
        let entries = self
            .search(&Query {
                kind: "search_user",
                base: &self.config.user_search_base,
                scope: Scope::Subtree,
                filter: &filter,
                attrs,
                limit: 2,
            })
            .await?;
        match entries.len() {
            1 => Ok(entries.into_iter().next()),
            0 => Ok(None),
            _ => {
                tracing::warn!(
                    user,
                    "more than one directory entry matches the login name: refused"
                );
                Ok(None)
            }
        }
    }

    /// Binds as `dn` with `password` on a connection kept for users' binds: the
    /// connection, bound as the user, if they matched; `None` if refused.
    async fn bind(&self, dn: &str, password: &str) -> Result<Option<Conn<'_>>, VerifyError> {
        for attempt in 0..2 {
            let mut conn = self.binds.get().await?;
            let started = Instant::now();
            match conn.ldap().simple_bind(dn, password).await {
                Ok(result) if result.rc == 0 => {
                    self.ops.record("bind_user", "ok", started);
                    return Ok(Some(conn));
                }
                Ok(result) if result.rc == INVALID_CREDENTIALS || result.rc == NO_SUCH_OBJECT => {
                    self.ops.record("bind_user", "invalid_credentials", started);
                    return Ok(None);
                }
                Ok(result) => {
                    self.ops.record("bind_user", "refused", started);
                    return Err(VerifyError(format!(
                        "the directory refused a bind: {result}"
                    )));
                }
                Err(error) => {
                    self.ops.record("bind_user", outcome_of(&error), started);
                    conn.discard();
                    if attempt == 1 {
                        return Err(VerifyError(format!("directory bind failed: {error}")));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A search as the service account, or, without one, on `bound` (the user's
    /// own connection, just bound) when given.
    async fn search_as(
        &self,
        query: &Query<'_>,
        bound: Option<&mut Conn<'_>>,
    ) -> Result<Vec<SearchEntry>, VerifyError> {
        match (self.config.bind_dn.is_empty(), bound) {
            (true, Some(conn)) => match self.search_on(conn, query).await? {
                Searched::Entries(entries) => Ok(entries),
                Searched::Broken(error) => {
                    Err(VerifyError(format!("directory search failed: {error}")))
                }
            },
            _ => self.search(query).await,
        }
    }

    /// A search as the service account (retried once on a fresh connection if the
    /// kept one has gone).
    async fn search(&self, query: &Query<'_>) -> Result<Vec<SearchEntry>, VerifyError> {
        for attempt in 0..2 {
            let mut conn = self.searches.get().await?;
            match self.search_on(&mut conn, query).await? {
                Searched::Entries(entries) => return Ok(entries),
                Searched::Broken(error) => {
                    conn.discard();
                    if attempt == 1 {
                        return Err(VerifyError(format!("directory search failed: {error}")));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// One search on `conn`: its entries (at most `query.limit`; an entry that does
    /// not exist is none), or the connection's failure.
    async fn search_on(
        &self,
        conn: &mut Conn<'_>,
        query: &Query<'_>,
    ) -> Result<Searched, VerifyError> {
        let started = Instant::now();
        let found = conn
            .ldap()
            .with_search_options(SearchOptions::new().sizelimit(query.limit))
            .search(query.base, query.scope, query.filter, query.attrs.clone())
            .await;
        let ldap3::SearchResult(entries, result) = match found {
            Ok(found) => found,
            Err(error) => {
                self.ops.record(query.kind, outcome_of(&error), started);
                return Ok(Searched::Broken(error.to_string()));
            }
        };
        match result.rc {
            0 | SIZE_LIMIT_EXCEEDED => {
                self.ops.record(query.kind, "ok", started);
                Ok(Searched::Entries(
                    entries.into_iter().map(SearchEntry::construct).collect(),
                ))
            }
            NO_SUCH_OBJECT => {
                self.ops.record(query.kind, "ok", started);
                Ok(Searched::Entries(Vec::new()))
            }
            _ => {
                self.ops.record(query.kind, "refused", started);
                Err(VerifyError(format!(
                    "the directory refused a search: {result}"
                )))
            }
        }
    }

    /// The names of `entry`'s groups: from its `memberOf` values, or by the group
    /// filter; without either configured, none. Read as the service account, or,
    /// without one, as the user on `bound` (their own connection, just bound).
    async fn groups(
        &self,
        user: &str,
        entry: &SearchEntry,
        bound: Option<&mut Conn<'_>>,
    ) -> Result<Vec<String>, VerifyError> {
        let name_attribute = self.config.group_name_attribute.as_str();
        let filter;
        let query = if self.config.use_member_of {
            if let Some(values) = entry.attrs.get("memberOf") {
                return Ok(group_names(values, name_attribute));
            }
            // A direct bind read no attributes: read them now.
            Query {
                kind: "search_groups",
                base: &entry.dn,
                scope: Scope::Base,
                filter: "(objectClass=*)",
                attrs: vec!["memberOf"],
                limit: 1,
            }
        } else if self.config.group_search_base.is_empty() {
            return Ok(Vec::new());
        } else {
            filter = self
                .config
                .group_filter
                .replace("{dn}", &ldap_escape(&entry.dn))
                .replace("{user}", &ldap_escape(user));
            Query {
                kind: "search_groups",
                base: &self.config.group_search_base,
                scope: Scope::Subtree,
                filter: &filter,
                attrs: vec![name_attribute],
                limit: 0,
            }
        };
        let entries = self.search_as(&query, bound).await?;
        Ok(match self.config.use_member_of {
            true => entries
                .iter()
                .flat_map(|e| e.attrs.get("memberOf"))
                .flat_map(|values| group_names(values, name_attribute))
                .collect(),
            false => entries
                .into_iter()
                .filter_map(|group| {
                    group
                        .attrs
                        .get(name_attribute)
                        .and_then(|values| values.first().cloned())
                })
                .collect(),
        })
    }
}

/// A search, as the verifier makes them.
struct Query<'a> {
    /// Its kind, for the metrics.
    kind: &'static str,
    base: &'a str,
    scope: Scope,
    filter: &'a str,
    attrs: Vec<&'a str>,
    /// Most entries wanted (0: all).
    limit: i32,
}

/// What one search on one connection gave.
enum Searched {
    Entries(Vec<SearchEntry>),
    /// The connection failed (not the directory's answer): try another.
    Broken(String),
}

/// The group names of `memberOf` values (group DNs).
fn group_names(values: &[String], attribute: &str) -> Vec<String> {
    values
        .iter()
        .filter_map(|dn| first_rdn_value(dn, attribute))
        .collect()
}

#[async_trait]
impl CredentialVerifier for LdapVerifier {
    async fn verify(&self, credentials: &Credentials) -> Result<Verdict, VerifyError> {
        let Some(entry) = self.find_user(&credentials.user).await? else {
            return Ok(Verdict::Unknown);
        };
        let Some(mut bound) = self.bind(&entry.dn, &credentials.password).await? else {
            // (With a DN template, a refused bind cannot tell a wrong password from
            // a DN that names no one: both are a failed login.)
            return Ok(Verdict::Rejected);
        };
        let entry = match self.config.user_dn_template.is_empty() {
            true => entry,
            // A direct bind read nothing: the entry's name (and memberOf) now.
            false => match self.read_entry(&entry.dn, Some(&mut bound)).await? {
                Some(read) => read,
                None => entry,
            },
        };
        let user = self.canonical(&entry, &credentials.user);
        let groups = self.groups(&user, &entry, Some(&mut bound)).await?;
        Ok(Verdict::Accepted(Identity::from_directory(&user, groups)))
    }

    fn concurrency(&self) -> usize {
        self.config.pool_size
    }

    async fn lookup(&self, user: &str) -> Result<Lookup, VerifyError> {
        if !self.config.user_dn_template.is_empty() && self.config.bind_dn.is_empty() {
            // Without a service account, a directory bound only by users cannot be
            // asked about a user.
            return Ok(Lookup::Unsupported);
        }
        let entry = match self.config.user_dn_template.is_empty() {
            true => self.find_user(user).await?,
            false => {
                let dn = self
                    .config
                    .user_dn_template
                    .replace("{user}", &dn_escape(user));
                self.read_entry(&dn, None).await?
            }
        };
        match entry {
            Some(entry) => {
                let name = self.canonical(&entry, user);
                let groups = self.groups(&name, &entry, None).await?;
                Ok(Lookup::Found(Identity::from_directory(&name, groups)))
            }
            None => Ok(Lookup::Gone),
        }
    }

    async fn ready(&self) -> Result<(), VerifyError> {
        // A service connection (connected and bound) proves the directory answers.
        let conn = self.searches.get().await?;
        drop(conn);
        Ok(())
    }

    async fn probe(&self) -> Option<Result<String, VerifyError>> {
        let base = match self.config.user_dn_template.is_empty() {
            true => self.config.user_search_base.clone(),
            false => String::new(),
        };
        let who = match self.config.bind_dn.is_empty() {
            true => "anonymously".to_string(),
            false => format!("as {}", self.config.bind_dn),
        };
        let report = async {
            let found = self
                .search(&Query {
                    kind: "search_user",
                    base: &base,
                    scope: Scope::Base,
                    filter: "(objectClass=*)",
                    attrs: vec!["1.1"],
                    limit: 1,
                })
                .await?;
            Ok(format!(
                "directory {}: bound {who}; user names from attribute {:?}; {} {}",
                self.config.urls.join(", "),
                self.name_attribute,
                match base.is_empty() {
                    true => "root DSE".to_string(),
                    false => format!("user_search_base {base:?}"),
                },
                match found.is_empty() {
                    true => "found no entry (check the base and the account's rights)",
                    false => "readable",
                }
            ))
        };
        Some(report.await)
    }

    fn users(&self) -> Option<HashSet<String>> {
        None
    }
}

/// The value of `dn`'s first RDN when its attribute is `attribute`
/// (`cn=livy-admins,ou=groups,…` → `livy-admins`).
fn first_rdn_value(dn: &str, attribute: &str) -> Option<String> {
    let first = split_unescaped(dn, ',').next()?;
    let (name, value) = first.split_once('=')?;
    name.trim()
        .eq_ignore_ascii_case(attribute)
        .then(|| unescape_dn_value(value.trim()))
}

/// `text` split at each `separator` not escaped with a backslash.
fn split_unescaped(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut escaped = false;
    let mut parts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == separator => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter()
}

/// An RDN value with its RFC 4514 escapes (`\,` and `\2c` alike) undone.
fn unescape_dn_value(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i + 1]);
                    i += 2;
                }
            }
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Connection settings: StartTLS when asked, and the trust for TLS (the CA file,
/// else the system's roots).
fn settings(config: &LdapConfig) -> Result<LdapConnSettings, StartupError> {
    let uses_tls = config.start_tls || config.urls.iter().any(|u| u.starts_with("ldaps://"));
    let mut settings = LdapConnSettings::new().set_starttls(config.start_tls);
    if uses_tls {
        let tls = crate::tls::client_config(config.ca_file.as_deref(), "directory CA file")?;
        settings = settings.set_config(Arc::new(tls));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_come_from_the_first_rdn() {
        let cn = |dn| first_rdn_value(dn, "cn");
        assert_eq!(
            cn("cn=livy-admins,ou=groups,dc=example,dc=org").as_deref(),
            Some("livy-admins")
        );
        assert_eq!(
            cn("CN=Livy Users,OU=Groups,DC=corp").as_deref(),
            Some("Livy Users")
        );
        assert_eq!(cn("cn=a\\,b,ou=groups").as_deref(), Some("a,b"));
        assert_eq!(cn("cn=a\\2cb,ou=groups").as_deref(), Some("a,b"));
        assert_eq!(cn("ou=groups,dc=example"), None);
    }

    #[test]
    fn login_names_cannot_widen_a_filter_or_move_a_dn() {
        assert_eq!(
            "(uid={user})".replace("{user}", &ldap_escape("*")),
            "(uid=\\2a)"
        );
        assert_eq!(
            "(uid={user})".replace("{user}", &ldap_escape("a)(uid=*")),
            "(uid=a\\29\\28uid=\\2a)"
        );
        assert_eq!(
            "uid={user},ou=people".replace("{user}", &dn_escape("a,ou=admins")),
            "uid=a\\2cou\\3dadmins,ou=people"
        );
    }
}
