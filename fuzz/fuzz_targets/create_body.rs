//! Create bodies as a client can send them: whatever the gateway accepts is one
//! JSON object whose `proxyUser` ends up the caller's (for a non-administrator),
//! and whose re-serialised form Livy reads the same way.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use livy_gateway::auth::{Principal, Source};
use livy_gateway::livy::body;

fuzz_target!(|data: &[u8]| {
    let Ok(mut object) = body::parse_object(data) else {
        return;
    };
    let caller = Principal {
        user: Arc::from("alice"),
        groups: Arc::from(Vec::new()),
        admin: false,
        grants: None,
        source: Source::File,
        token: None,
    };
    if let Ok(effective) = body::assert_proxy_user(&mut object, &caller) {
        assert_eq!(effective, "alice");
        assert_eq!(object["proxyUser"], "alice");
        let sent = serde_json::Value::Object(object.clone()).to_string();
        let again = body::parse_object(sent.as_bytes()).expect("what is sent parses");
        assert_eq!(again, object);
    }
});
