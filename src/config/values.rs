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
}
