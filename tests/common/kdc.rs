//! A real MIT KDC for the Kerberos tests, run as an administrator would run one
//! for a throwaway realm: `krb5.conf` and `kdc.conf` generated in a scratch
//! directory, the database made with `kdb5_util`, principals and keytabs with
//! `kadmin.local`, `krb5kdc -n` on a free loopback port (UDP and TCP). Clocks may
//! differ by 5 s (MIT's `clockskew`, 300 s by default), so expired tickets show in
//! seconds. Processes that should use it get `KRB5_CONFIG` (and
//! `KRB5_KDC_PROFILE`) pointing at the generated files; the test process never
//! changes its own environment. It can be stopped and started again, and is
//! stopped when dropped. scripts/test.sh installs Debian's `krb5-kdc`,
//! `krb5-admin-server` and `krb5-user`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub const REALM: &str = "LIVY.TEST";
const MASTER: &str = "master-pw";

/// A running (or stopped) KDC for [`REALM`].
pub struct Kdc {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Kdc {
    /// Makes the realm and starts the KDC; tickets last 10 hours.
    pub async fn start() -> Self {
        Self::start_with_ticket_life("10h").await
    }

    /// The same with tickets that last `life` at most (`"12s"`: expiry in a test).
    pub async fn start_with_ticket_life(life: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Readable by a server that drops root (Apache's children run as www-data).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let port = super::free_port();
        let root = dir.path();
        std::fs::write(
            root.join("krb5.conf"),
            format!(
                "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_kdc = false\n  \
                 dns_lookup_realm = false\n  rdns = false\n  dns_canonicalize_hostname = false\n  \
                 ticket_lifetime = {life}\n  udp_preference_limit = 1\n  clockskew = 5\n\
                 [realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n\
                 [domain_realm]\n  localhost = {REALM}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("kdc.conf"),
            format!(
                "[kdcdefaults]\n  kdc_ports = {port}\n  kdc_tcp_ports = {port}\n\
                 [realms]\n  {REALM} = {{\n    database_name = {0}/principal\n    \
                 key_stash_file = {0}/stash\n    acl_file = {0}/kadm5.acl\n    \
                 max_life = {life}\n    max_renewable_life = 7d\n  }}\n\
                 [logging]\n  kdc = FILE:{0}/kdc.log\n",
                root.display()
            ),
        )
        .unwrap();
        std::fs::write(root.join("kadm5.acl"), "").unwrap();
        let mut kdc = Self {
            dir,
            port,
            child: None,
        };
        kdc.tool("kdb5_util", &["create", "-s", "-r", REALM, "-P", MASTER])
            .await;
        kdc.kadmin(&format!("modprinc -maxlife {life} krbtgt/{REALM}"))
            .await;
        kdc.run().await;
        kdc
    }

    /// The environment a process using this realm needs (an acceptor's replay
    /// cache in the realm's directory, not the machine's `/var/tmp`).
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("KRB5_CONFIG", self.dir.path().join("krb5.conf")),
            ("KRB5_KDC_PROFILE", self.dir.path().join("kdc.conf")),
            ("KRB5RCACHEDIR", self.dir.path().to_path_buf()),
        ]
    }

    /// A scratch path inside the realm's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Adds `principal` with a random key and writes its key to `keytab`.
    pub async fn service(&self, principal: &str, keytab: &Path) {
        self.kadmin(&format!("addprinc -randkey {principal}")).await;
        self.kadmin(&format!("ktadd -k {} {principal}", keytab.display()))
            .await;
    }

    /// Adds a user principal with a password.
    pub async fn user(&self, principal: &str, password: &str) {
        self.kadmin(&format!("addprinc -pw {password} {principal}"))
            .await;
    }

    /// `kinit` as `principal` into the credential cache `ccache`.
    pub async fn kinit(&self, principal: &str, password: &str, ccache: &Path) {
        self.kinit_with(principal, password, ccache, &[]).await;
    }

    /// [`Kdc::kinit`] with more options (`["-l", "12s"]`: a short-lived ticket).
    pub async fn kinit_with(
        &self,
        principal: &str,
        password: &str,
        ccache: &Path,
        options: &[&str],
    ) {
        let mut command = Command::new("kinit");
        command
            .envs(self.env())
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .args(options)
            .arg(principal)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .expect("kinit runs (scripts/test.sh installs krb5-user)");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(format!("{password}\n").as_bytes())
                .await
                .unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "kinit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn kadmin(&self, query: &str) {
        self.tool("kadmin.local", &["-r", REALM, "-q", query]).await;
    }

    async fn tool(&self, tool: &str, args: &[&str]) {
        let out = Command::new(tool)
            .envs(self.env())
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{tool} runs (scripts/test.sh installs it): {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `krb5kdc` in the foreground and waits (bounded) until it listens.
    async fn run(&mut self) {
        let child = Command::new("krb5kdc")
            .envs(self.env())
            .arg("-n")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("krb5kdc runs (scripts/test.sh installs krb5-kdc)");
        self.child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("krb5kdc did not listen");
    }

    /// Stops the KDC (its database stays).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    /// Starts it again on the same port and database.
    pub async fn restart(&mut self) {
        self.run().await;
    }
}
