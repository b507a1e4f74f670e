//! Livy's web UI pages made to work under the gateway and kept from running
//! anyone's markup as the gateway's origin.
//!
//! Livy writes its UI's base path (`livy.ui.basePath`, empty by default) into
//! every link, asset and its scripts (`setBasePath('…')`, from which they call
//! `location.origin + basePath + "/sessions"`). The page is rewritten so that
//! base is the gateway's (`/gateway/<topology>/livy`) whatever Livy was told;
//! its scripts then load the listings through the gateway, which narrows them.
//!
//! Livy's pages put data users choose into the page unescaped (a session's name
//! in its summary, an application's tracking URL in a link): every page gets a
//! policy that runs only the scripts Livy's page itself names, each marked with a
//! nonce made for this answer, so markup injected by such data runs nothing.

use base64::Engine;
use lol_html::{element, rewrite_str, text, RewriteStrSettings};
use rand::RngCore;

/// How Livy's pages tell their scripts the UI's base path.
const BASE_PATH_CALL: &str = "setBasePath('";

/// A fresh nonce for one page's scripts: 128 random bits.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `Content-Security-Policy` of a Livy UI page whose scripts carry `nonce`:
/// only they run (no inline handlers, no `javascript:` links, nothing injected),
/// everything else loads from the gateway alone, nothing frames the page and it
/// submits no form.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; object-src 'none'; frame-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// `page` (Livy's HTML) with its base path made `base` and its scripts marked
/// with `nonce`; `None` if it cannot be parsed.
pub fn rewrite(page: &str, base: &str, nonce: &str) -> Option<String> {
    let theirs = declared_base(page).unwrap_or_default().to_owned();
    let moved = move |value: &str| -> Option<String> {
        let rest = value.strip_prefix(theirs.as_str())?;
        (rest == "/ui" || rest.starts_with("/ui/") || rest.starts_with("/static/"))
            .then(|| format!("{base}{rest}"))
    };
    let attribute = |selector: &'static str, name: &'static str| {
        let moved = moved.clone();
        element!(selector, move |el| {
            if let Some(value) = el.get_attribute(name).and_then(|v| moved(&v)) {
                el.set_attribute(name, &value)?;
            }
            Ok(())
        })
    };
    // An inline script may arrive in pieces: held until it ends, then its base
    // path call made the gateway's.
    let mut held = String::new();
    let settings = RewriteStrSettings {
        element_content_handlers: vec![
            attribute("[href]", "href"),
            attribute("[src]", "src"),
            element!("script", |el| {
                el.set_attribute("nonce", nonce)?;
                Ok(())
            }),
            text!("script", |chunk| {
                held.push_str(chunk.as_str());
                if chunk.last_in_text_node() {
                    let script = std::mem::take(&mut held);
                    chunk.set_str(with_base(&script, base));
                } else {
                    chunk.remove();
                }
                Ok(())
            }),
        ],
        ..RewriteStrSettings::new()
    };
    rewrite_str(page, settings).ok()
}

/// The base path a page gives its scripts.
fn declared_base(page: &str) -> Option<&str> {
    let start = page.find(BASE_PATH_CALL)? + BASE_PATH_CALL.len();
    let end = start + page[start..].find('\'')?;
    Some(&page[start..end])
}

/// `script` with the path in its `setBasePath('…')` call made `base`.
fn with_base(script: &str, base: &str) -> String {
    let Some(start) = script
        .find(BASE_PATH_CALL)
        .map(|i| i + BASE_PATH_CALL.len())
    else {
        return script.to_owned();
    };
    let Some(end) = script[start..].find('\'').map(|i| start + i) else {
        return script.to_owned();
    };
    format!("{}{base}{}", &script[..start], &script[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/gateway/default/livy";

    /// A page as Livy writes it with `livy.ui.basePath` = `theirs`.
    fn page(theirs: &str) -> String {
        format!(
            "<html><head><link rel=\"stylesheet\" href=\"{theirs}/static/css/livy-ui.css\"/>\
             <script src=\"{theirs}/static/js/livy-ui.js\"></script>\
             <script type=\"text/javascript\">\n        setBasePath('{theirs}');\n      </script>\
             </head><body><a class=\"navbar-brand\" href=\"{theirs}/ui\">\
             <img alt=\"Livy\" src=\"{theirs}/static/img/livy-mini-logo.png\"/></a>\
             <a href=\"https://livy.apache.org/\">Livy</a>\
             <script src=\"{theirs}/static/js/all-sessions.js\"></script></body></html>"
        )
    }

    #[test]
    fn the_base_path_is_the_gateways_whatever_livy_was_told() {
        for theirs in ["", "/livy", BASE] {
            let out = rewrite(&page(theirs), BASE, "n0nce").unwrap();
            assert!(
                out.contains(&format!("href=\"{BASE}/static/css/livy-ui.css\"")),
                "{out}"
            );
            assert!(
                out.contains(&format!("src=\"{BASE}/static/js/livy-ui.js\"")),
                "{out}"
            );
            assert!(out.contains(&format!("href=\"{BASE}/ui\"")), "{out}");
            assert!(out.contains(&format!("src=\"{BASE}/static/img/livy-mini-logo.png\"")));
            assert!(out.contains(&format!("setBasePath('{BASE}')")), "{out}");
            assert!(out.contains("href=\"https://livy.apache.org/\""));
            assert_eq!(out.matches("nonce=\"n0nce\"").count(), 3, "{out}");
        }
    }

    #[test]
    fn the_policy_runs_only_scripts_with_the_nonce() {
        let policy = policy("abc");
        assert!(policy.contains("script-src 'nonce-abc';"));
        assert!(!policy.contains("unsafe-inline';") || !policy.contains("script-src 'unsafe"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 24);
    }
}
