//! Query strings going to Livy: identity and method-override parameters removed, the
//! asserted `doAs` appended.
//!
//! Livy takes the effective user from `doAs` (impersonation on) and its framework
//! routes a POST by `_method`. A client must not be able to set either, so `doAs`,
//! `proxyUser`, `user.name` and `_method` are removed however they are spelt: in any
//! case, repeated, with percent-encoded names, or with blanks around the name. A
//! parameter ends at `&` for Livy's Jetty and at `&` or `;` for Hadoop's filters in
//! front of YARN and a Kerberized Livy (which take the first `doAs` and
//! `user.name` they find), so identity parameters are looked for in every `;`- or
//! `&`-separated piece; the other pieces are kept with the separators they had.
//!
//! The removal is only sound if the gateway decodes names exactly as Livy's Jetty
//! does. Jetty decodes `%XX` (UTF-8) and `+`, and Jetty 9.3 (Livy 0.6/0.7) also the
//! non-standard `%uXXXX`, so `%u0064oAs` is `doAs` to Livy. [`check`] therefore
//! refuses every query holding a `%` that is not followed by two hex digits, and
//! any parameter name that does not decode to UTF-8, before anything is forwarded:
//! what remains decodes one way only.

use std::fmt::Write;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::RequestError;

/// Parameter names (lower case, decoded) that never reach Livy from a client.
const REMOVED: [&str; 4] = ["doas", "proxyuser", "user.name", "_method"];

/// Characters left unescaped in a user name put into the query.
const USER: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Whether a piece of a query (`name=value`) is an identity or override parameter.
fn is_identity(piece: &str) -> bool {
    let name = decoded_name(piece);
    REMOVED.contains(&name.trim().to_ascii_lowercase().as_str())
}

/// A parameter's name as Livy's server would read it: `+` as space, `%XX` decoded.
fn decoded_name(pair: &str) -> String {
    let name = pair.split_once('=').map_or(pair, |(n, _)| n);
    percent_decode_str(&name.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Refuses a query whose parameter names Livy's Jetty could decode differently from
/// the gateway: a `%` not followed by two hex digits (`%u0064`, `%zz`, a trailing
/// `%`), a raw control character, or a name that is not UTF-8 once decoded.
pub fn check(query: &str) -> Result<(), RequestError> {
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(RequestError::BadQuery(
                        "malformed percent-encoding in the query (only %XX is accepted)".into(),
                    ));
                }
                i += 3;
            }
            b if b < 0x20 || b == 0x7f => {
                return Err(RequestError::BadQuery(
                    "control character in the query".into(),
                ))
            }
            _ => i += 1,
        }
    }
    for pair in query.split(['&', ';']) {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        if percent_decode_str(name).decode_utf8().is_err() {
            return Err(RequestError::BadQuery(
                "a parameter name in the query is not UTF-8".into(),
            ));
        }
    }
    Ok(())
}

/// The result of rewriting a query.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// The new query, without `?`; `None` when empty.
    pub query: Option<String>,
    /// Names of the identity/override parameters that were removed, as sent.
    pub removed: Vec<String>,
}

/// Removes identity and override parameters and parameters named in `also_remove`
/// (decoded, case-sensitive), then appends `doAs=<user>` when `assert_user` is set and
/// `extra` pairs as given.
pub fn rewrite(
    query: Option<&str>,
    assert_user: Option<&str>,
    also_remove: &[&str],
    extra: &[(&str, &str)],
) -> Rewritten {
    let mut kept = String::new();
    let mut removed = Vec::new();
    fn keep(kept: &mut String, pair: std::fmt::Arguments<'_>) {
        if !kept.is_empty() {
            kept.push('&');
        }
        let _ = kept.write_fmt(pair);
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if !pair.split(';').any(is_identity) {
            if !also_remove.contains(&decoded_name(pair).as_str()) {
                keep(&mut kept, format_args!("{pair}"));
            }
            continue;
        }
        // The pieces Hadoop's filters see: the others kept, joined again by `;`.
        let mut rest = Vec::new();
        for piece in pair.split(';').filter(|p| !p.is_empty()) {
            match is_identity(piece) {
                true => removed.push(decoded_name(piece)),
                false => rest.push(piece),
            }
        }
        if !rest.is_empty() {
            keep(&mut kept, format_args!("{}", rest.join(";")));
        }
    }
    for (name, value) in extra {
        keep(
            &mut kept,
            format_args!("{name}={}", utf8_percent_encode(value, USER)),
        );
    }
    if let Some(user) = assert_user {
        keep(
            &mut kept,
            format_args!("doAs={}", utf8_percent_encode(user, USER)),
        );
    }
    Rewritten {
        query: (!kept.is_empty()).then_some(kept),
        removed,
    }
}

/// The value of parameter `name` (exact, decoded), if present.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .find(|pair| decoded_name(pair) == name)
        .map(|pair| {
            let value = pair.split_once('=').map_or("", |(_, v)| v);
            percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_parameters_go_in_every_spelling() {
        let r = rewrite(
            Some("from=0&doAs=bob&DoAs=bob&DOAS=x&%64oAs=eve&doas&proxyUser=m&PROXYUSER=n&user.name=x&user%2Ename=y&_method=DELETE&_METHOD=GET&size=10"),
            Some("alice"),
            &[],
            &[],
        );
        assert_eq!(r.query.as_deref(), Some("from=0&size=10&doAs=alice"));
        assert_eq!(r.removed.len(), 11);
    }

    #[test]
    fn identity_parameters_go_from_semicolon_separated_pieces_too() {
        for query in [
            ";doAs=alice",
            "a=1;doAs=alice",
            "a=1;DOAS=alice",
            "a=1;%64oAs=alice",
            "a=1;user.name=alice",
            "a=1;User%2EName=alice",
            "a=1;proxyUser=alice;",
            "a=1;+doAs=alice",
            "a=1;doAs%20=alice",
        ] {
            let r = rewrite(Some(query), Some("bob"), &[], &[]);
            let sent = r.query.unwrap();
            assert!(
                sent == "a=1&doAs=bob" || sent == "doAs=bob",
                "{query} became {sent}"
            );
            assert_eq!(r.removed.len(), 1, "{query}");
        }
        // Other pieces keep their separators.
        let r = rewrite(Some("x=1;y=2&z=3;doAs=a;w"), Some("bob"), &[], &[]);
        assert_eq!(r.query.as_deref(), Some("x=1;y=2&z=3;w&doAs=bob"));
    }

    #[test]
    fn user_names_are_encoded_and_empty_queries_stay_empty() {
        let r = rewrite(None, Some("a b&c=d"), &[], &[]);
        assert_eq!(r.query.as_deref(), Some("doAs=a%20b%26c%3Dd"));
        assert_eq!(rewrite(Some("doAs=x"), None, &[], &[]).query, None);
        let r = rewrite(
            Some("from=5&size=2&order=desc"),
            Some("u"),
            &["from", "size"],
            &[("from", "0")],
        );
        assert_eq!(r.query.as_deref(), Some("order=desc&from=0&doAs=u"));
    }

    #[test]
    fn escapes_jetty_could_read_otherwise_are_refused() {
        for bad in [
            "%u0064oAs=alice",
            "from=0&%U0064oAs=alice",
            "doAs=%u0061lice",
            "a=%zz",
            "a=%4",
            "a=1%",
            "a=\u{1}",
            "%ff%fe=x",
            "%C0%A4oAs=alice",
        ] {
            assert!(
                matches!(check(bad), Err(RequestError::BadQuery(_))),
                "{bad}"
            );
        }
        for good in [
            "",
            "from=0&size=10",
            "doAs=%C3%A9",
            "a=%ff",
            "na%C3%AFve=1",
            "x+y=1",
        ] {
            assert!(check(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn params_are_read_decoded() {
        assert_eq!(
            param(Some("a=1&from=%31%30"), "from").as_deref(),
            Some("10")
        );
        assert_eq!(param(Some("a=1"), "from"), None);
    }
}
