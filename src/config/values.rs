//! How typed configuration values are written in the TOML file: durations as whole
//! seconds or milliseconds (the key says which), upstream URLs, header names and
//! values, host names. Each is checked when the file is read, so the rest of the
//! gateway only ever sees values that are known to be usable.

use std::fmt;
use std::time::Duration;

use http::uri::Authority;
use http::{HeaderName, HeaderValue, Uri};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` written as whole seconds (keys ending in `_secs`).
pub mod secs {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A `Duration` written as whole milliseconds (keys ending in `_ms`).
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A `Duration` written as whole days (keys ending in `_days`).
pub mod days {
    use super::*;

    const DAY: u64 = 86_400;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs() / DAY)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(|days| Duration::from_secs(days.saturating_mul(DAY)))
    }
}

/// A Livy server's base URL: `http://` or `https://`, a host and optional port, no
/// path (Livy serves from its root), no query, no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    uri: Uri,
}

impl UpstreamUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => {
                return Err(format!(
                    "scheme {other:?} is not supported; use http or https"
                ))
            }
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
        Ok(Self { uri })
    }

    /// Whether requests to it go over TLS.
    pub fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// `host[:port]` as written.
    pub fn authority(&self) -> &Authority {
        self.uri.authority().expect("checked at parse")
    }

    /// The host, without brackets for an IPv6 address.
    pub fn host(&self) -> &str {
        self.authority()
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// The port, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority()
            .port_u16()
            .unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// `scheme://host[:port]`, as Livy's absolute links would start.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            self.uri.scheme_str().unwrap_or("http"),
            self.authority()
        )
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
    }
}

impl Serialize for UpstreamUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A NodeManager the gateway may fetch container logs from: `host:port`, where
/// the host is a name or IPv4 address, or `*.<domain>` (any name ending in
/// `.<domain>`, one label or more). The port is always exact; a bare `*` host is
/// refused, as it would let callers make the gateway fetch from anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lower-cased; for `*.<domain>`, the suffix `.<domain>`.
    host: String,
    wildcard: bool,
    port: u16,
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or("write host:port, e.g. \"*.cluster.internal:8042\"")?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the port must be a number from 1 to 65535")?;
        let (wildcard, name) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if !is_host_name(name) {
            return Err(format!(
                "{host:?} is not a host name, an IPv4 address or *.<domain>"
            ));
        }
        let name = name.to_ascii_lowercase();
        Ok(Self {
            host: if wildcard { format!(".{name}") } else { name },
            wildcard,
            port,
        })
    }

    /// Whether `host` (checked with [`is_host_name`]) and `port` match.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        port == self.port
            && match self.wildcard {
                true => host.len() > self.host.len() && host.ends_with(&self.host),
                false => host == self.host,
            }
    }
}

/// A DNS name or IPv4 address: letters, digits, `-` and `.` in non-empty labels.
pub fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wildcard {
            true => write!(f, "*{}:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(|e| de::Error::custom(format!("{text:?}: {e}")))
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An HTTP header name, checked when read.
pub mod header_name {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<HeaderName>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(name) => s.serialize_some(name.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderName>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        HeaderName::from_bytes(text.as_bytes())
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{text:?} is not a header name")))
    }
}

/// An HTTP header value, checked when read.
pub mod header_value {
    use super::*;

    pub fn serialize<S: Serializer>(v: &HeaderValue, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.to_str().unwrap_or_default())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderValue, D::Error> {
        let text = String::deserialize(d)?;
        HeaderValue::from_str(&text)
            .map_err(|_| de::Error::custom(format!("{text:?} is not a valid header value")))
    }
}

/// `host[:port]`, checked when read.
pub mod host {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Authority>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(host) => s.serialize_some(host.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Authority>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        match text.parse::<Authority>() {
            Ok(host) if !text.contains('@') && !text.is_empty() => Ok(Some(host)),
            _ => Err(de::Error::custom(format!(
                "{text:?} is not a host or host:port"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls_are_checked_once() {
        let u = UpstreamUrl::parse("http://127.0.0.1:8998").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.is_https()),
            ("127.0.0.1", 8998, false)
        );
        assert_eq!(u.origin(), "http://127.0.0.1:8998");
        let u = UpstreamUrl::parse("https://livy.example.org/").unwrap();
        assert_eq!(
            (u.host(), u.port(), u.is_https()),
            ("livy.example.org", 443, true)
        );
        let u = UpstreamUrl::parse("http://[::1]:8998").unwrap();
        assert_eq!(u.host(), "::1");
        for bad in [
            "ftp://livy:8998",
            "livy:8998",
            "http://user:pw@livy:8998",
            "http://livy:8998/api",
            "http://livy:8998/?x=1",
            "not a url",
        ] {
            assert!(UpstreamUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn node_manager_patterns_match_what_they_say() {
        let any = HostPattern::parse("*.cluster.internal:8042").unwrap();
        assert!(any.matches("nm1.cluster.internal", 8042));
        assert!(any.matches("NM1.rack2.Cluster.Internal", 8042));
        assert!(!any.matches("cluster.internal", 8042));
        assert!(!any.matches("nm1.cluster.internal", 8088));
        assert!(!any.matches("nm1.cluster.internal.evil.org", 8042));
        assert!(!any.matches("evilcluster.internal", 8042));
        let one = HostPattern::parse("127.0.0.1:8042").unwrap();
        assert!(one.matches("127.0.0.1", 8042));
        assert!(!one.matches("127.0.0.2", 8042));
        assert_eq!(any.to_string(), "*.cluster.internal:8042");
        for bad in [
            "*:8042",
            "nm1",
            "nm1:0",
            "nm1:x",
            "a..b:1",
            "a b:1",
            "*.:1",
            "[::1]:8042",
            "user@h:1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
