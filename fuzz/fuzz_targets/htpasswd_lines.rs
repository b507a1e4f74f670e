//! htpasswd files as an operator might write them: parsing never panics, and every
//! user it loads has a name and a supported hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livy_gateway::auth::htpasswd::Htpasswd;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Htpasswd::parse(text) {
        Ok((file, _warnings)) => {
            for name in file.names() {
                assert!(!name.is_empty());
                assert!(!name.chars().any(|c| c.is_whitespace() || c.is_control()));
                assert!(file.get(name).is_some());
            }
        }
        Err((line, _message)) => assert!(line >= 1 && line <= text.split('\n').count()),
    }
});
