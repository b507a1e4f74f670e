//! A real OpenID provider for the token tests: npm's `oidc-provider` on Node,
//! run by tests/oidc/provider.mjs over HTTPS (a development CA of its own) on a
//! free loopback port, as a normal user would run it; stopped when dropped.
//! Commands go to its standard input, one per line, and each answer is a line
//! (tokens by client credentials and by a user's login, key rotation, hostile
//! tokens made with `jose`). tests/oidc/setup.sh installs its packages
//! (scripts/test.sh runs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The audience the provider's access tokens carry.
pub const AUDIENCE: &str = "livy-gateway";

/// The next answer (a line starting `= `), without the marker; `None` once the
/// provider has exited.
async fn answer(output: &mut Lines<BufReader<ChildStdout>>) -> Option<String> {
    while let Some(line) = output.next_line().await.ok().flatten() {
        if let Some(answer) = line.strip_prefix("= ") {
            return Some(answer.to_owned());
        }
    }
    None
}

/// A running provider.
pub struct Idp {
    pub issuer: String,
    dir: tempfile::TempDir,
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

impl Idp {
    /// Starts a provider on a free port.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sans = ["127.0.0.1".to_string(), "localhost".to_string()];
        livy_gateway::certgen::write_to_dir(dir.path(), &sans).unwrap();
        Self::spawn(dir, None).await
    }

    /// Starts it again on the same port, with new keys (a provider restarted
    /// after an outage).
    pub async fn restart(self) -> Self {
        let port: u16 = self.issuer.rsplit(':').next().unwrap().parse().unwrap();
        let Idp { dir, mut child, .. } = self;
        let _ = child.kill().await;
        Self::spawn(dir, Some(port)).await
    }

    async fn spawn(dir: tempfile::TempDir, port: Option<u16>) -> Self {
        assert!(
            script_dir().join("node_modules/oidc-provider").exists(),
            "the provider's packages are missing: run tests/oidc/setup.sh (scripts/test.sh does)"
        );
        let mut command = Command::new("node");
        command
            .arg(script_dir().join("provider.mjs"))
            .arg(dir.path().join("gateway.crt"))
            .arg(dir.path().join("gateway.key"))
            .env("NODE_EXTRA_CA_CERTS", dir.path().join("ca.crt"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        // The port may take a moment to be free again after a restart.
        for _ in 0..50 {
            let mut child = command.spawn().expect("node runs (scripts/test.sh checks)");
            let input = child.stdin.take().unwrap();
            let mut output = BufReader::new(child.stdout.take().unwrap()).lines();
            let first = tokio::time::timeout(Duration::from_secs(30), answer(&mut output))
                .await
                .expect("the provider starts within 30 s");
            if let Some(issuer) = first.as_deref().and_then(|l| l.strip_prefix("issuer ")) {
                return Self {
                    issuer: issuer.to_owned(),
                    dir,
                    child,
                    input,
                    output,
                };
            }
            let _ = child.kill().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the provider did not start");
    }

    /// The CA that signed its certificate (the gateway's `auth.jwt.ca_file`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// One command's answer; panics on `error ...`.
    pub async fn ask(&mut self, command: &str) -> String {
        self.input
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        let line = tokio::time::timeout(Duration::from_secs(30), answer(&mut self.output))
            .await
            .expect("the provider answers within 30 s")
            .expect("the provider is running");
        assert!(!line.starts_with("error "), "{command}: {line}");
        line
    }

    /// An access token for the service `airflow` (user svc-airflow).
    pub async fn service_token(&mut self) -> String {
        self.ask("client airflow airflow-secret").await
    }

    /// An access token after `user` logged in.
    pub async fn user_token(&mut self, user: &str) -> String {
        self.ask(&format!("user {user}")).await
    }

    /// Registers a web client for browser sign-in (the gateway's).
    pub async fn register(&mut self, id: &str, secret: &str, redirect: &str, post_logout: &str) {
        self.ask(&format!("register {id} {secret} {redirect} {post_logout}"))
            .await;
    }

    /// `user` logs in through the authorization request `url` (any password);
    /// the redirect back to `redirect`, unfollowed.
    pub async fn authorize(&mut self, url: &str, user: &str, redirect: &str) -> String {
        self.ask(&format!("authorize {url} {user} {redirect}"))
            .await
    }

    /// A hostile token of `kind` for `user` (see provider.mjs).
    pub async fn forge(&mut self, kind: &str, user: &str) -> String {
        self.ask(&format!("forge {kind} {user}")).await
    }

    /// Stops it (an outage).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
