//! A real OpenLDAP `slapd` for the directory tests, run as a normal user would run
//! it: a generated `slapd.conf` (tests/fixtures/ldap/slapd.conf) in a scratch
//! directory, plain LDAP and LDAPS on free loopback ports, TLS from a development
//! CA of its own, seeded with tests/fixtures/ldap/seed.ldif through `ldapadd` (so
//! the memberof overlay keeps `memberOf`). It can be stopped and started again on
//! the same ports and data, and is stopped when dropped. scripts/test.sh installs
//! Debian's `slapd` and `ldap-utils`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

const CONF: &str = include_str!("../fixtures/ldap/slapd.conf");
const SEED: &str = include_str!("../fixtures/ldap/seed.ldif");
pub const BASE: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "admin-secret";

/// A running (or stopped) slapd.
pub struct Slapd {
    dir: tempfile::TempDir,
    ldap_port: u16,
    ldaps_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// Starts a fresh server and seeds it.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sans = ["localhost".to_string(), "127.0.0.1".to_string()];
        livy_gateway::certgen::write_to_dir(&dir.path().join("certs"), &sans).unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let conf = CONF
            .replace("@DIR@", dir.path().to_str().unwrap())
            .replace("@CERTS@", dir.path().join("certs").to_str().unwrap());
        std::fs::write(dir.path().join("slapd.conf"), conf).unwrap();
        let mut slapd = Self {
            dir,
            ldap_port: super::free_port(),
            ldaps_port: super::free_port(),
            child: None,
        };
        slapd.run().await;
        slapd.ldif("ldapadd", SEED).await;
        slapd
    }

    /// `[auth.ldap]` for this server: search-then-bind with the service account,
    /// groups by filter.
    pub fn directory(&self) -> livy_gateway::config::LdapConfig {
        livy_gateway::config::LdapConfig {
            urls: vec![self.url()],
            bind_dn: "cn=gateway,dc=example,dc=org".into(),
            bind_password_file: Some(self.password_file()),
            user_search_base: "ou=people,dc=example,dc=org".into(),
            group_search_base: "ou=groups,dc=example,dc=org".into(),
            group_filter: "(&(objectClass=groupOfNames)(member={dn}))".into(),
            timeout: Duration::from_secs(2),
            ..Default::default()
        }
    }

    /// `ldap://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://localhost:<port>` (the name its certificate carries).
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.ldaps_port)
    }

    /// The CA its certificate is signed by.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    /// A file holding the service account's password (written on first ask).
    pub fn password_file(&self) -> PathBuf {
        let path = self.dir.path().join("ldap-bind.password");
        if !path.exists() {
            std::fs::write(&path, "gateway-pw\n").unwrap();
        }
        path
    }

    /// Runs slapd on its ports and waits (bounded) until it answers.
    async fn run(&mut self) {
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap_port, self.ldaps_port
        );
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .args(["-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("slapd runs (scripts/test.sh installs it)");
        self.child = Some(child);
        for _ in 0..400 {
            let ready = tokio::net::TcpStream::connect(("127.0.0.1", self.ldap_port)).await;
            if ready.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("slapd did not listen");
    }

    /// Stops the server (its data stays).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
        // Until the port is free again.
        for _ in 0..400 {
            if std::net::TcpListener::bind(("127.0.0.1", self.ldap_port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Starts it again, on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.run().await;
    }

    /// Changes entries with `ldapmodify` as the directory's administrator.
    pub async fn modify(&self, ldif: &str) {
        self.ldif("ldapmodify", ldif).await;
    }

    async fn ldif(&self, tool: &str, ldif: &str) {
        let path = self.dir.path().join(format!("{tool}.ldif"));
        std::fs::write(&path, ldif).unwrap();
        let out = Command::new(tool)
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&path)
            .output()
            .await
            .expect("ldap-utils runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
