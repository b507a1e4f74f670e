//! The Lua scripts every Redis operation runs (`lua/`), each prefixed with the
//! shared helpers of `lua/prelude.lua` (Redis's clock, GCRA). Loaded into Redis
//! on first use by their hash, and again after Redis restarts.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                include_str!(concat!("lua/", $file))
            ))
        });
    };
}

script!(LIMIT, "limit.lua");
script!(ADMIT, "admit.lua");
script!(SESSION_CREATE, "session_create.lua");
script!(SESSION_REMOVE, "session_remove.lua");
script!(SESSION_REMOVE_USER, "session_remove_user.lua");
script!(LOCKOUTS, "lockouts.lua");
script!(OWNERS_GET, "owners_get.lua");
script!(OWNERS_BY_NAME, "owners_by_name.lua");
script!(OWNERS_APPLY, "owners_apply.lua");
