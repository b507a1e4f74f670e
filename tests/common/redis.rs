//! A real `redis-server` for the shared-state tests, run as a normal user would
//! run it: a generated `redis.conf` in a scratch directory, on a free loopback
//! port, with an append-only file synced on every write (so a restart loses
//! nothing), optionally a password and a TLS port with a certificate from a
//! development CA of its own. It can be stopped and started again on the same
//! port and data, and is stopped when dropped. scripts/test.sh installs Debian's
//! `redis-server` (and `redis-tools` for `redis-cli`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The password of servers started with one.
pub const PASSWORD: &str = "redis-test-pw";

/// A running (or stopped) redis-server.
pub struct RedisServer {
    dir: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    password: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// A plain server, no password.
    pub async fn start() -> Self {
        Self::start_with(false, false).await
    }

    /// A server with a password and a TLS port besides the plain one.
    pub async fn start_secured() -> Self {
        Self::start_with(true, true).await
    }

    async fn start_with(tls: bool, password: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let tls_port = tls.then(super::free_port);
        let mut conf = format!(
            "bind 127.0.0.1\nport {port}\ndir {}\nappendonly yes\nappendfsync always\n\
             save \"\"\ndaemonize no\nlogfile \"\"\n",
            dir.path().display()
        );
        if password {
            conf += &format!("requirepass {PASSWORD}\n");
        }
        if let Some(tls_port) = tls_port {
            let sans = ["localhost".to_string(), "127.0.0.1".to_string()];
            let certs = dir.path().join("certs");
            livy_gateway::certgen::write_to_dir(&certs, &sans).unwrap();
            conf += &format!(
                "tls-port {tls_port}\ntls-cert-file {0}/gateway.crt\ntls-key-file {0}/gateway.key\n\
                 tls-ca-cert-file {0}/ca.crt\ntls-auth-clients no\n",
                certs.display()
            );
        }
        std::fs::write(dir.path().join("redis.conf"), conf).unwrap();
        let mut server = Self {
            dir,
            port,
            tls_port,
            password,
            child: None,
        };
        server.run().await;
        server
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `rediss://localhost:<tls port>/0` (the name its certificate carries).
    pub fn tls_url(&self) -> String {
        format!("rediss://localhost:{}/0", self.tls_port.unwrap())
    }

    /// The CA its certificate is signed by.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    /// A file holding its password (written on first ask).
    pub fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("redis.password");
        if !path.exists() {
            std::fs::write(&path, format!("{PASSWORD}\n")).unwrap();
        }
        path
    }

    /// Runs the server and waits (bounded) until it answers.
    async fn run(&mut self) {
        let child = Command::new("redis-server")
            .arg(self.dir.path().join("redis.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..400 {
            if self
                .cli(&["PING"])
                .await
                .is_some_and(|r| r.contains("PONG"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not answer");
    }

    /// Runs `redis-cli` with `args` against it; its output, or `None` if it failed.
    pub async fn cli(&self, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.password {
            command.env("REDISCLI_AUTH", PASSWORD);
        }
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("redis-cli runs (scripts/test.sh installs it)");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server as an operator would (SIGTERM: it syncs and exits); its
    /// data stays.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
            }
        }
        for _ in 0..400 {
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts it again, on the same port with the same data.
    pub async fn restart(&mut self) {
        self.run().await;
    }
}
