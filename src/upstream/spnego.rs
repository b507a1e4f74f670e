//! SPNEGO to a Kerberized Livy (`[livy.kerberos]`, cargo feature `kerberos`), as
//! Hadoop's `AuthenticationFilter` in front of Livy expects it: an
//! `Authorization: Negotiate` token from the gateway's keytab, the mutual
//! authentication token in the answer checked, and the `hadoop.auth` cookie the
//! answer sets kept per Livy server and sent instead of a new token while Livy
//! accepts it.
//!
//! That cookie is signed with a secret of the Livy process that issued it, so it
//! stops working when it expires or Livy restarts. No request fails for that: a
//! request with a body always carries a fresh token (its body is never sent twice),
//! and one without a body that Livy refuses with the cookie goes once more with a
//! token. A cookie is given up a minute before the expiry it names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, StatusCode};
use libgssapi::context::ClientCtx;
use libgssapi::credential::Cred;

use super::auth::{Pending, UpstreamAuth, Verdict};
use super::peers::Peer;
use crate::config::LivyKerberosConfig;
use crate::error::{RequestError, StartupError};
use crate::kerberos;

/// A cookie is given up this long before the expiry it names.
const COOKIE_MARGIN: Duration = Duration::from_secs(60);

/// What one attempt sent.
enum Sent {
    /// A token: the context whose mutual authentication the answer completes.
    Token(ClientCtx),
    /// The remembered cookie.
    Cookie,
}

/// A `hadoop.auth` cookie and when it stops being sent.
struct Held {
    value: HeaderValue,
    until: SystemTime,
}

/// The [`UpstreamAuth`] for a Kerberized Livy.
pub struct Spnego {
    keytab: std::path::PathBuf,
    principal: String,
    /// This configuration's private credential cache.
    ccache: String,
    /// Acquired when first needed, and again after a failure (a keytab without
    /// the principal, a KDC out of reach): the gateway starts either way and
    /// answers 502 until they can be had.
    cred: Mutex<Option<Cred>>,
    service: String,
    /// Cookies by Livy server (`host:port`).
    cookies: Mutex<HashMap<String, Held>>,
    calls: kerberos::Calls,
}

impl Spnego {
    /// Checks that the keytab can be read; no credentials are acquired, nor a
    /// ticket asked for, until the first request (or the probe).
    pub fn new(config: &LivyKerberosConfig) -> Result<Self, StartupError> {
        kerberos::check_keytab(&config.keytab, "livy.kerberos keytab")?;
        Ok(Self {
            keytab: config.keytab.clone(),
            principal: config.principal.clone(),
            ccache: kerberos::private_ccache(),
            cred: Mutex::new(None),
            service: config.service.clone(),
            cookies: Mutex::new(HashMap::new()),
            calls: kerberos::Calls::default(),
        })
    }

    /// A first token for `peer`, on the blocking pool: the credentials acquired
    /// first if they are not held yet or are about to expire (MIT then gets a new
    /// ticket-granting ticket from the keytab into the same cache).
    async fn token(&self, peer: &Peer) -> Result<(ClientCtx, Vec<u8>), RequestError> {
        let held = self.cred.lock().expect("cred lock").clone();
        let (keytab, principal) = (self.keytab.clone(), self.principal.clone());
        let ccache = self.ccache.clone();
        let (service, host) = (self.service.clone(), peer.host_name().to_owned());
        let made = self
            .calls
            .run(move || {
                // Held and good for a while yet, or acquired (again) from the keytab.
                let cred = match held.filter(kerberos::fresh) {
                    Some(cred) => cred,
                    None => kerberos::initiator(&keytab, &principal, &ccache)?,
                };
                kerberos::start(&cred, &service, &host).map(|started| (cred, started))
            })
            .await?;
        match made {
            Ok((cred, started)) => {
                *self.cred.lock().expect("cred lock") = Some(cred);
                Ok(started)
            }
            Err(error) => {
                tracing::error!(upstream = %peer.authority, %error, "no Kerberos token for Livy");
                Err(RequestError::UpstreamAuth)
            }
        }
    }

    fn cookie(&self, peer: &Peer) -> Option<HeaderValue> {
        let cookies = self.cookies.lock().expect("cookie lock");
        let held = cookies.get(&peer.authority)?;
        (SystemTime::now() < held.until).then(|| held.value.clone())
    }

    /// Keeps the `hadoop.auth` cookie an answer sets (an empty one clears it).
    fn keep(&self, peer: &Peer, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Some((pair, expiry)) = hadoop_auth(value.as_bytes()) else {
                continue;
            };
            let mut cookies = self.cookies.lock().expect("cookie lock");
            match (HeaderValue::from_bytes(pair), expiry) {
                (Ok(value), Some(until)) => {
                    let until = until.checked_sub(COOKIE_MARGIN).unwrap_or(UNIX_EPOCH);
                    cookies.insert(peer.authority.clone(), Held { value, until });
                }
                _ => {
                    cookies.remove(&peer.authority);
                }
            }
        }
    }

    fn forget(&self, peer: &Peer) {
        self.cookies
            .lock()
            .expect("cookie lock")
            .remove(&peer.authority);
    }
}

/// From a `Set-Cookie` value: the `hadoop.auth=…` pair to send back, and the
/// expiry its `e=` field names (ms since the epoch); `None` for other cookies,
/// the pair without an expiry for an empty (clearing) one.
fn hadoop_auth(set_cookie: &[u8]) -> Option<(&[u8], Option<SystemTime>)> {
    let pair = set_cookie.split(|b| *b == b';').next()?;
    let pair = pair.trim_ascii();
    let value = pair.strip_prefix(b"hadoop.auth=")?;
    let value = value.strip_prefix(b"\"").unwrap_or(value);
    let value = value.strip_suffix(b"\"").unwrap_or(value);
    let expiry = value
        .split(|b| *b == b'&')
        .find_map(|field| field.strip_prefix(b"e="))
        .and_then(|ms| std::str::from_utf8(ms).ok()?.parse::<u64>().ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    Some((pair, expiry))
}

/// Puts `ours` (a `hadoop.auth=…` pair) into the request's `Cookie` header, after
/// the client's other cookies; a `hadoop.auth` cookie of the client's own never
/// reaches Livy, which would take it for the gateway's.
fn set_cookie(headers: &mut HeaderMap, ours: Option<&HeaderValue>) {
    let theirs: Vec<&[u8]> = headers
        .get(COOKIE)
        .map(|value| {
            value
                .as_bytes()
                .split(|b| *b == b';')
                .map(<[u8]>::trim_ascii)
                .filter(|pair| !pair.is_empty() && !pair.starts_with(b"hadoop.auth="))
                .collect()
        })
        .unwrap_or_default();
    let mut joined: Vec<u8> = theirs.join(&b"; "[..]);
    if let Some(ours) = ours {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(ours.as_bytes());
    }
    match HeaderValue::from_bytes(&joined) {
        Ok(value) if !joined.is_empty() => {
            headers.insert(COOKIE, value);
        }
        _ => {
            headers.remove(COOKIE);
        }
    }
}

/// The token of a `WWW-Authenticate: Negotiate <token>` header, if any.
fn negotiate_token(headers: &HeaderMap) -> Option<Vec<u8>> {
    headers.get_all(WWW_AUTHENTICATE).iter().find_map(|value| {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("negotiate") {
            return None;
        }
        base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()
    })
}

#[async_trait]
impl UpstreamAuth for Spnego {
    async fn authorize(
        &self,
        peer: &Peer,
        headers: &mut HeaderMap,
        replayable: bool,
        fresh: bool,
    ) -> Result<Pending, RequestError> {
        if replayable && !fresh {
            if let Some(cookie) = self.cookie(peer) {
                set_cookie(headers, Some(&cookie));
                return Ok(Some(Box::new(Sent::Cookie)));
            }
        }
        set_cookie(headers, None);
        let (ctx, token) = self.token(peer).await?;
        let value = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(token)
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&value).map_err(|_| RequestError::Internal)?,
        );
        Ok(Some(Box::new(Sent::Token(ctx))))
    }

    async fn answered(
        &self,
        peer: &Peer,
        pending: Pending,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Verdict, RequestError> {
        let sent = pending.and_then(|p| p.downcast::<Sent>().ok()).map(|b| *b);
        match (sent, status) {
            (Some(Sent::Cookie), StatusCode::UNAUTHORIZED) => {
                // Expired, or from a Livy process since restarted.
                tracing::info!(upstream = %peer.authority, "Livy refused its cookie: authenticating afresh");
                self.forget(peer);
                Ok(Verdict::Retry)
            }
            (Some(Sent::Token(_)), StatusCode::UNAUTHORIZED) => {
                tracing::error!(upstream = %peer.authority, "Livy refused the gateway's Kerberos token (is its principal in Livy's keytab, and the clocks in step?)");
                Err(RequestError::UpstreamAuth)
            }
            (Some(Sent::Token(mut ctx)), _) => {
                let Some(token) = negotiate_token(headers) else {
                    tracing::error!(upstream = %peer.authority, "Livy's answer carries no mutual-authentication token");
                    return Err(RequestError::UpstreamAuth);
                };
                let checked = self
                    .calls
                    .run(move || kerberos::finish(&mut ctx, &token))
                    .await?;
                if let Err(error) = checked {
                    tracing::error!(upstream = %peer.authority, %error, "Livy's mutual-authentication token does not check out");
                    return Err(RequestError::UpstreamAuth);
                }
                self.keep(peer, headers);
                Ok(Verdict::Accept)
            }
            _ => {
                self.keep(peer, headers);
                Ok(Verdict::Accept)
            }
        }
    }

    async fn probe(&self, peer: &Peer) -> Result<String, RequestError> {
        self.token(peer).await?;
        let cred = self.cred.lock().expect("cred lock").clone();
        Ok(format!(
            "Kerberos: a ticket for {}/{} obtained as {}",
            self.service,
            peer.host_name(),
            cred.as_ref()
                .map_or_else(|| "(unknown)".into(), kerberos::principal_of)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hadoop_auth_cookie_and_its_expiry_are_read_from_set_cookie() {
        let value = b"hadoop.auth=\"u=livy-gateway&p=livy-gateway/gw@LIVY.TEST&t=kerberos&e=1700000000000&s=abc=\"; Path=/; HttpOnly";
        let (pair, expiry) = hadoop_auth(value).unwrap();
        assert!(pair.starts_with(b"hadoop.auth=\"u=livy-gateway"));
        assert!(pair.ends_with(b"s=abc=\""));
        assert_eq!(
            expiry,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_000))
        );
        assert_eq!(hadoop_auth(b"JSESSIONID=x; Path=/"), None);
        assert_eq!(hadoop_auth(b"hadoop.auth=; Path=/").unwrap().1, None);
    }

    #[test]
    fn the_clients_own_hadoop_auth_cookie_never_reaches_livy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; hadoop.auth=\"forged\"; b=2"),
        );
        set_cookie(
            &mut headers,
            Some(&HeaderValue::from_static("hadoop.auth=\"ours\"")),
        );
        assert_eq!(headers[COOKIE], "a=1; b=2; hadoop.auth=\"ours\"");
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("hadoop.auth=forged"));
        set_cookie(&mut headers, None);
        assert!(headers.get(COOKIE).is_none());
    }

    #[test]
    fn only_negotiate_tokens_are_taken_from_www_authenticate() {
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"x\""),
        );
        assert_eq!(negotiate_token(&headers), None);
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Negotiate aGVsbG8="),
        );
        assert_eq!(negotiate_token(&headers).as_deref(), Some(&b"hello"[..]));
    }
}
