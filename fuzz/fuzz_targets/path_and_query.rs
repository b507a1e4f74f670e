//! Request targets as a client can send them: a path the router accepts cannot
//! mean another resource to Livy's Jetty, and a rewritten query carries exactly
//! one identity parameter, the asserted one, however the client spelt its own,
//! in `&`- or `;`-separated pieces (Hadoop's filters split on both).
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use livy_gateway::livy::query;
use livy_gateway::route;
use percent_encoding::percent_decode_str;

const PREFIX: &str = "/gateway/default";
const IDENTITY: [&str; 4] = ["doas", "proxyuser", "user.name", "_method"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    let Ok(route) = route::resolve(&Method::GET, path, query, PREFIX) else {
        return;
    };
    assert!(route.path.starts_with('/'));
    let lower = route.path.to_ascii_lowercase();
    for forbidden in [
        "/../", "/./", "//", ";", "\\", "%2e", "%2f", "%3b", "%5c", "%u",
    ] {
        assert!(!lower.contains(forbidden), "{forbidden} in {}", route.path);
    }
    assert!(!lower.ends_with("/..") && !lower.ends_with("/."));
    let rewritten = query::rewrite(route.query.as_deref(), Some("alice"), &[], &[]);
    let query = rewritten.query.expect("the asserted doAs at least");
    let identities: Vec<String> = query
        .split(['&', ';'])
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .map(|name| {
            percent_decode_str(&name.replace('+', " "))
                .decode_utf8_lossy()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|name| IDENTITY.contains(&name.as_str()))
        .collect();
    assert_eq!(identities, ["doas"], "{query}");
    assert!(query.ends_with("doAs=alice"), "{query}");
});
