//! The Lua scripts every Redis operation runs (`lua/`), each prefixed with the
//! shared helpers of `lua/prelude.lua` (Redis's clock, GCRA), and a [`Call`] of
//! one: sent by its hash, and loaded into Redis when Redis says it does not know
//! it (first use, or after Redis restarted).

use std::sync::LazyLock;

use redis::{Cmd, Script, ToRedisArgs};

/// One run of a script: its keys, then its arguments.
pub struct Call {
    pub script: &'static Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call {
    pub fn new(script: &'static Script) -> Self {
        Self {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    pub fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    /// `EVALSHA <hash> <number of keys> <keys…> <arguments…>`.
    pub fn command(&self) -> Cmd {
        let mut command = Cmd::with_capacity(
            3 + self.keys.len() + self.args.len(),
            self.keys
                .iter()
                .chain(&self.args)
                .map(Vec::len)
                .sum::<usize>()
                + 64,
        );
        command
            .arg("EVALSHA")
            .arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys[..])
            .arg(&self.args[..]);
        command
    }
}

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
script!(TOKEN_CREATE, "token_create.lua");
script!(QUOTA_RESERVE, "quota_reserve.lua");
script!(QUOTA_SETTLE, "quota_settle.lua");
script!(QUOTA_RELEASE, "quota_release.lua");
script!(QUOTA_RECONCILE, "quota_reconcile.lua");
