//! YARN's warning to someone viewing another user's application, carried through
//! the gateway.
//!
//! In a secured cluster the ResourceManager's proxy shows anyone but an
//! application's owner — through the gateway, an administrator — a page warning
//! that what follows may not be safe. It remembers the warning in a cookie,
//! `checked_<application>=false` on the ResourceManager's path for the
//! application; the page's link adds `proxyapproved=true`, and only a request with
//! both goes on (the cookie then says `true`, for two hours). The gateway drops
//! the cookies its upstreams set, so without this the viewer could never get past
//! the warning. [`passed_on`] lets exactly that cookie through, for exactly that
//! application, on the gateway's own path for it; the browser sends it back there,
//! and the gateway passes it up as it does every cookie but its own session's. The
//! cookie holds no credential: it only records that the viewer saw the warning, as
//! it would on YARN. An application master could set it itself (YARN's proxy
//! relays its headers), on YARN as here: what protects the viewer from its pages
//! is the gateway's sandbox, not the warning.

use cookie::{Cookie, SameSite};
use http::header::{HeaderValue, SET_COOKIE};
use http::HeaderMap;

/// The ResourceManager's `Set-Cookie`s in `headers` recording a viewer's way past
/// its warning about `application`, made into cookies of the gateway's path for
/// that application, `proxy_path` (`/gateway/<topology>/yarn/proxy/<application>`).
/// Any other cookie, and one with a value other than YARN's `true`/`false`, is
/// left out.
///
/// The cookie is `SameSite=Lax`, not `Strict` as the gateway's session cookie:
/// the warning page is someone else's application, served in a sandbox (an opaque
/// origin), and the viewer's click on its link is a navigation from another site
/// as far as the browser can tell, which carries `Lax` cookies only.
pub fn passed_on(headers: &HeaderMap, application: &str, proxy_path: &str) -> Vec<HeaderValue> {
    let name = format!("checked_{application}");
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| Cookie::parse(value).ok())
        .filter(|cookie| cookie.name() == name && matches!(cookie.value(), "true" | "false"))
        .filter_map(|upstream| {
            let mut cookie = Cookie::build((name.clone(), upstream.value().to_owned()))
                .path(proxy_path.to_owned())
                .secure(true)
                .http_only(true)
                .same_site(SameSite::Lax);
            if let Some(max_age) = upstream.max_age() {
                cookie = cookie.max_age(max_age);
            }
            HeaderValue::from_str(&cookie.build().to_string()).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/gateway/default/yarn/proxy/application_1_0002";

    fn from_rm(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn the_warning_cookie_moves_to_the_gateways_path_for_its_application() {
        // As Jetty writes it for the ResourceManager.
        let headers = from_rm(&[
            "checked_application_1_0002=false; Path=/proxy/application_1_0002; \
             Expires=Thu, 03 Dec 2026 04:00:00 GMT; Max-Age=7200; HttpOnly",
        ]);
        let passed = passed_on(&headers, "application_1_0002", PATH);
        assert_eq!(passed.len(), 1);
        let cookie = Cookie::parse(passed[0].to_str().unwrap()).unwrap();
        assert_eq!(cookie.name(), "checked_application_1_0002");
        assert_eq!(cookie.value(), "false");
        assert_eq!(cookie.path(), Some(PATH));
        assert_eq!(cookie.secure(), Some(true));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(
            cookie.max_age(),
            Some(cookie::time::Duration::seconds(7200))
        );
        // Nothing of the ResourceManager's own scope or host stays.
        assert_eq!(cookie.domain(), None);
    }

    #[test]
    fn other_cookies_other_applications_and_other_values_are_left_out() {
        let headers = from_rm(&[
            // The ResourceManager's SPNEGO login: a credential, never passed on.
            "hadoop.auth=\"u=livy&p=livy/gw@EXAMPLE.COM&t=kerberos\"; Path=/; HttpOnly",
            "checked_application_1_0003=true; Path=/proxy/application_1_0003",
            "checked_application_1_0002=yes; Path=/proxy/application_1_0002",
            "checked_application_1_0002",
            "JSESSIONID=abc; Path=/",
        ]);
        assert!(passed_on(&headers, "application_1_0002", PATH).is_empty());
        let headers = from_rm(&[
            "hadoop.auth=x; Path=/",
            "checked_application_1_0002=true; Path=/proxy/application_1_0002",
        ]);
        let passed = passed_on(&headers, "application_1_0002", PATH);
        assert_eq!(passed.len(), 1);
        let cookie = Cookie::parse(passed[0].to_str().unwrap()).unwrap();
        assert_eq!(
            (cookie.name(), cookie.value()),
            ("checked_application_1_0002", "true")
        );
        // Without a lifetime from YARN, one for the browser session.
        assert_eq!(cookie.max_age(), None);
    }
}
