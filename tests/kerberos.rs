//! Kerberos on both sides (cargo feature `kerberos`): SPNEGO from the gateway to a
//! Kerberized Livy (`[livy.kerberos]`), and users' SPNEGO logins with their
//! tickets (`[auth.kerberos]`, with curl and a python3-gssapi client that checks
//! the gateway's mutual-authentication token), against a real MIT KDC started by
//! the suite in a throwaway realm (tests/common/kdc.rs) and, as Livy's front
//! door, a stand-in that behaves as Hadoop's AuthenticationFilter does (tests/fixtures/kerberos/hadoop_auth_livy.py,
//! on Debian's python3-gssapi) in front of livy-sim, and an independent acceptor,
//! Apache httpd with Debian's mod_auth_gssapi in front of livy-sim. The gateway
//! runs as its own process, with the realm's `KRB5_CONFIG`, as an operator would
//! run it.
#![cfg(feature = "kerberos")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::kdc::{Kdc, REALM};
use common::*;
use http::Method;
use livy_gateway::sim::{self, SimConfig};

const BATCHES: &str = "/gateway/default/livy/v1/batches";
const SESSIONS: &str = "/gateway/default/livy/v1/sessions";
const STAND_IN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kerberos/hadoop_auth_livy.py"
);

/// Kills a child process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The realm with Livy's `HTTP/localhost` and the gateway's principal, and the
/// simulator behind a Kerberized front door.
struct Realm {
    kdc: Kdc,
    livy_port: u16,
    sim_url: String,
    log: PathBuf,
    front: Option<Running>,
    gateway_keytab: PathBuf,
}

impl Realm {
    async fn start() -> Self {
        Self::with(Kdc::start().await).await
    }

    async fn with(kdc: Kdc) -> Self {
        kdc.service("HTTP/localhost", &kdc.path("http.keytab"))
            .await;
        let gateway_keytab = kdc.path("gateway.keytab");
        kdc.service("livy-gateway/localhost", &gateway_keytab).await;
        let sim_url = start_sim(|_| SimConfig {
            speed: 1_000_000.0,
            ..SimConfig::default()
        })
        .await;
        let mut realm = Self {
            log: kdc.path("livy-front.log"),
            kdc,
            livy_port: free_port(),
            sim_url,
            front: None,
            gateway_keytab,
        };
        realm.start_front(false);
        realm
    }

    /// (Re)starts Livy's front door: a new process, so a new cookie secret.
    fn start_front(&mut self, bad_mutual: bool) {
        self.front = None;
        self.front = Some(self.front_door(self.livy_port, &self.sim_url, &self.log, bad_mutual));
    }

    /// A Kerberized front door on `port` for the Livy at `sim_url`, logging what it
    /// sees to `log`.
    fn front_door(&self, port: u16, sim_url: &str, log: &Path, bad_mutual: bool) -> Running {
        let mut command = Command::new("/usr/bin/python3");
        command
            .envs(self.kdc.env())
            .env("KRB5_KTNAME", self.kdc.path("http.keytab"))
            .arg(STAND_IN)
            .arg(port.to_string())
            .arg(sim_url)
            .arg(log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if bad_mutual {
            command.env("BAD_MUTUAL", "1");
        }
        let child = command
            .spawn()
            .expect("python3 with python3-gssapi (scripts/test.sh installs it)");
        let mut running = Running(child);
        assert!(
            wait_until_listening(port),
            "Livy's front door did not listen"
        );
        // Alive: what listens is the front door, not a server that took its port.
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "Livy's front door exited"
        );
        running
    }

    /// What Livy's front door saw, one entry a request.
    fn seen(&self) -> Vec<serde_json::Value> {
        front_door_log(&self.log)
    }
}

/// What a front door logging to `log` saw, one entry a request.
fn front_door_log(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A gateway process in front of `realm`'s Livy, with its keytab.
struct Gateway {
    dir: tempfile::TempDir,
    client: Client,
    process: Running,
}

/// Writes a gateway's config (and, the first time, its certificates and users).
fn write_gateway(dir: &Path, realm: &Realm, keytab: &Path, port: u16, admin: u16) -> PathBuf {
    write_gateway_with(dir, realm, keytab, port, admin, "")
}

/// [`write_gateway`], with `extra` sections at the end.
fn write_gateway_with(
    dir: &Path,
    realm: &Realm,
    keytab: &Path,
    port: u16,
    admin: u16,
    extra: &str,
) -> PathBuf {
    if !dir.join("certs").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .args(["gen-cert", "--dir"])
            .arg(dir.join("certs"))
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let users: String = ["alice", "bob"]
        .iter()
        .map(|u| htpasswd_line(u, PASSWORD))
        .collect();
    std::fs::write(dir.join("users.htpasswd"), users).unwrap();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"certs/gateway.crt\"\n\
             tls_key = \"certs/gateway.key\"\ndata_dir = \"data\"\nmax_header_bytes = 262144\n\
             [auth]\nhtpasswd = \"users.htpasswd\"\n\
             [livy]\nupstreams = [\"http://localhost:{}\"]\n\
             [livy.kerberos]\nkeytab = \"{}\"\nprincipal = \"livy-gateway/localhost@{REALM}\"\n\
             [rate_limit]\nper_ip_rps = 0.0\nper_user_rps = 0.0\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n{extra}",
            realm.livy_port,
            keytab.display()
        ),
    )
    .unwrap();
    config
}

impl Gateway {
    /// A gateway with `keytab` in front of `realm`'s Livy.
    fn start(realm: &Realm, keytab: &Path) -> Self {
        Self::start_edited(realm, keytab, "", |text| text)
    }

    /// [`Gateway::start`] with `extra` sections at the end of its config, and
    /// `edit` applied to the whole text.
    fn start_edited(
        realm: &Realm,
        keytab: &Path,
        extra: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin) = (free_port(), free_port());
        let config = write_gateway_with(dir.path(), realm, keytab, port, admin, extra);
        let text = edit(std::fs::read_to_string(&config).unwrap());
        std::fs::write(&config, text).unwrap();
        Self::serve(realm, dir, &config, port)
    }

    /// Runs `livy-gateway serve` on `config` (in `dir`, listening on `port`) with
    /// the realm's environment, its log in `dir`.
    fn serve(realm: &Realm, dir: tempfile::TempDir, config: &Path, port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .envs(realm.kdc.env())
            .args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gateway.log")).unwrap())
            .spawn()
            .unwrap();
        let process = Running(child);
        let log = || std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
        assert!(wait_until_listening(port), "{}", log());
        let ca = std::fs::read_to_string(dir.path().join("certs/ca.crt")).unwrap();
        Self {
            client: Client::new(([127, 0, 0, 1], port).into(), &ca),
            dir,
            process,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }
}

fn created(answer: &Answer) -> u64 {
    assert_eq!(
        answer.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );
    answer.json()["id"].as_u64().unwrap()
}

/// alice creates a batch over `proto` and reads it back: Livy ran it for her
/// (`doAs`), whoever authenticated to Livy. Its id.
async fn create_and_read(c: &Client, proto: Proto) -> u64 {
    let made = c
        .as_user_over(
            proto,
            "alice",
            Method::POST,
            BATCHES,
            r#"{"file":"/jobs/a.jar"}"#,
        )
        .await;
    let id = created(&made);
    let view = c
        .as_user_over(proto, "alice", Method::GET, &format!("{BATCHES}/{id}"), "")
        .await;
    assert_eq!(view.status, 200);
    assert_eq!(view.json()["proxyUser"], "alice");
    id
}

#[tokio::test]
async fn batches_reach_a_kerberized_livy_as_the_gateway_acting_for_the_user() {
    let realm = Realm::start().await;
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let c = &gw.client;
    for proto in [Proto::H1, Proto::H2] {
        let id = create_and_read(c, proto).await;
        assert_eq!(
            c.as_user_over(proto, "bob", Method::GET, &format!("{BATCHES}/{id}"), "")
                .await
                .status,
            404
        );
    }
    let seen = realm.seen();
    assert!(
        seen.iter()
            .all(|s| s["user"] == "livy-gateway" || s["status"] == 401),
        "{seen:?}"
    );
    // Creations carry a token; the reads after the first answer ride the cookie.
    let posts: Vec<_> = seen.iter().filter(|s| s["method"] == "POST").collect();
    assert!(posts.iter().all(|s| s["auth"] == "negotiate"), "{posts:?}");
    assert!(
        seen.iter()
            .any(|s| s["method"] == "GET" && s["auth"] == "cookie"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s["status"] == 401),
        "no request needed a second try: {seen:?}"
    );
}

#[tokio::test]
async fn a_passive_kerberized_livy_is_followed_with_credentials_for_the_active_one() {
    let realm = Realm::start().await;
    // A passive livy-sim behind a front door of its own, pointing at the active one.
    let passive_sim = start_sim(|_| SimConfig {
        redirect_to: Some(format!("http://localhost:{}", realm.livy_port)),
        ..SimConfig::default()
    })
    .await;
    let passive_port = free_port();
    let passive_log = realm.kdc.path("passive-front.log");
    let _passive = realm.front_door(passive_port, &passive_sim, &passive_log, false);

    // The passive server first, no health checks: the first request meets the 307.
    let gw = Gateway::start_edited(&realm, &realm.gateway_keytab, "", |text| {
        text.replace(
            &format!("upstreams = [\"http://localhost:{}\"]", realm.livy_port),
            &format!(
                "upstreams = [\"http://localhost:{passive_port}\", \"http://localhost:{}\"]\n\
                 health_check_interval_secs = 0",
                realm.livy_port
            ),
        )
    });
    create_and_read(&gw.client, Proto::H2).await;

    // The passive server was asked with a token and answered 307; the active one
    // got the same creation, with a token of its own and alice's doAs.
    let passive = front_door_log(&passive_log);
    assert!(
        passive.iter().any(|s| s["method"] == "POST"
            && s["auth"] == "negotiate"
            && s["user"] == "livy-gateway"
            && s["status"] == 307),
        "{passive:?}\n{}",
        gw.log()
    );
    let active = realm.seen();
    let posts: Vec<_> = active.iter().filter(|s| s["method"] == "POST").collect();
    assert_eq!(posts.len(), 1, "{active:?}");
    assert_eq!(posts[0]["auth"], "negotiate");
    assert_eq!(posts[0]["user"], "livy-gateway");
    assert_eq!(posts[0]["status"], 201);
    assert!(
        posts[0]["path"].as_str().unwrap().contains("doAs=alice"),
        "{posts:?}"
    );
}

/// A ResourceManager behind SPNEGO, as YARN's web UIs are in a Kerberized
/// cluster, is reached with the gateway's own credentials; its warning to an
/// administrator before someone else's application is passed through the SPNEGO
/// layer both ways (the warning's cookie out to the browser, and back to YARN
/// beside the gateway's own `hadoop.auth`).
#[tokio::test]
async fn the_resourcemanager_behind_kerberos_is_reached_with_the_gateways_credentials() {
    let realm = Realm::start().await;
    // A secured ResourceManager stand-in (livy-sim's YARN pages) behind a front
    // door that wants SPNEGO.
    let rm_port = free_port();
    let rm_sim = start_sim(|_| SimConfig {
        serve_yarn: true,
        cluster: sim::Cluster {
            resourcemanager: format!("http://localhost:{rm_port}"),
            secure: true,
            ..sim::Cluster::default()
        },
        ..SimConfig::default()
    })
    .await;
    let rm_log = realm.kdc.path("rm-front.log");
    let _rm = realm.front_door(rm_port, &rm_sim, &rm_log, false);
    // alice's application, as YARN knows it.
    let id = create_at_sim(&rm_sim, r#"{"file":"x.jar","proxyUser":"alice"}"#).await;
    let alices = format!("application_1491850285904_{id:04}");

    let yarn = format!("[yarn]\nresourcemanager = \"http://localhost:{rm_port}\"\n");
    // bob administers: any application's pages, whoever's they are.
    let gw = Gateway::start_edited(&realm, &realm.gateway_keytab, &yarn, |text| {
        text.replace(
            "htpasswd = \"users.htpasswd\"\n",
            "htpasswd = \"users.htpasswd\"\nadmins = [\"bob\"]\n",
        )
    });
    let warning = "WARNING: The following page may not be safe!";
    for proto in [Proto::H1, Proto::H2] {
        // An application YARN names no owner of: straight to its page.
        let app = "application_1491850285904_0042";
        let path = format!("/gateway/default/yarn/proxy/{app}/");
        let r = gw
            .client
            .as_user_over(proto, "bob", Method::GET, &path, "")
            .await;
        assert_eq!(r.status, 200, "{:?}\n{}", r.body, gw.log());
        let page = String::from_utf8_lossy(&r.body);
        let jobs = format!(r#"href="/gateway/default/yarn/proxy/{app}/jobs/""#);
        assert!(page.contains(&jobs), "{page}");

        // alice's: warned, with YARN's cookie and never the front door's.
        let path = format!("/gateway/default/yarn/proxy/{alices}/");
        let r = gw
            .client
            .as_user_over(proto, "bob", Method::GET, &path, "")
            .await;
        assert!(String::from_utf8_lossy(&r.body).contains(warning));
        let cookies = set_cookies(&r);
        let checked = cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("checked_{alices}=")))
            .expect("YARN's cookie");
        assert!(checked.starts_with("false;"), "{cookies:?}");
        assert!(
            !cookies.iter().any(|c| c.starts_with("hadoop.auth")),
            "{cookies:?}"
        );
        // Back with the cookie and the warning's link: alice's page.
        let link = format!("{path}?proxyapproved=true");
        let r = gw
            .client
            .as_user_with_cookie(proto, "bob", &link, &format!("checked_{alices}=false"))
            .await;
        assert_eq!(r.status, 200);
        let page = String::from_utf8_lossy(&r.body);
        assert!(
            page.contains("<h1>Spark Jobs") && !page.contains(warning),
            "{page}"
        );
    }
    let seen = front_door_log(&rm_log);
    let served: Vec<_> = seen.iter().filter(|s| s["status"] == 200).collect();
    assert_eq!(served.len(), 6, "{seen:?}");
    for s in served {
        assert_eq!(s["user"], "livy-gateway", "{seen:?}");
        assert!(s["path"].as_str().unwrap().contains("doAs=bob"), "{seen:?}");
    }
}

#[tokio::test]
async fn a_restarted_livy_costs_no_request_and_no_body_is_sent_twice() {
    let mut realm = Realm::start().await;
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let c = &gw.client;
    let id = created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
            .await,
    );
    let item = format!("{BATCHES}/{id}");
    assert_eq!(c.as_user("alice", Method::GET, &item, "").await.status, 200);
    // A new Livy process: the cookie the gateway holds is signed with a secret
    // no one has any more.
    realm.start_front(false);
    let before = realm.seen().len();
    assert_eq!(c.as_user("alice", Method::GET, &item, "").await.status, 200);
    let after: Vec<_> = realm.seen()[before..].to_vec();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        (after[0]["auth"].as_str(), after[0]["status"].as_u64()),
        (Some("cookie"), Some(401))
    );
    assert_eq!(
        (after[1]["auth"].as_str(), after[1]["status"].as_u64()),
        (Some("negotiate"), Some(200))
    );
    // Another restart, then a creation: its token goes up front, its body once.
    realm.start_front(false);
    let before = realm.seen().len();
    created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/b.jar"}"#)
            .await,
    );
    let after: Vec<_> = realm.seen()[before..].to_vec();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["auth"], "negotiate");
}

#[tokio::test]
async fn a_livy_that_cannot_prove_itself_is_refused() {
    let mut realm = Realm::start().await;
    realm.start_front(true);
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let r = gw.client.as_user("alice", Method::GET, BATCHES, "").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "upstream_auth_failed");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("localhost"),
        "names no host"
    );
    assert!(gw.log().contains("mutual-authentication"), "{}", gw.log());
}

#[tokio::test]
async fn tickets_are_renewed_from_the_keytab_when_they_expire() {
    // Tickets that last 12 seconds: the ones the first request gets have expired
    // by the second, which needs new ones from the keytab, without a restart.
    let realm = Realm::with(Kdc::start_with_ticket_life("12s").await).await;
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let c = &gw.client;
    created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
            .await,
    );
    let first = std::time::Instant::now();
    // Bounded: past the tickets' lifetime, and no longer.
    tokio::time::sleep(Duration::from_secs(14).saturating_sub(first.elapsed())).await;
    created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/b.jar"}"#)
            .await,
    );
    let posts: Vec<_> = realm
        .seen()
        .into_iter()
        .filter(|s| s["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts
        .iter()
        .all(|s| s["auth"] == "negotiate" && s["status"] == 201));
}

#[tokio::test]
async fn a_kdc_outage_after_a_ticket_is_held_interrupts_nothing() {
    let mut realm = Realm::start().await;
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let c = &gw.client;
    created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
            .await,
    );
    realm.kdc.stop().await;
    // Tokens from the service ticket held, cookies: neither needs the KDC.
    created(
        &c.as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/b.jar"}"#)
            .await,
    );
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        200
    );
    realm.start_front(false);
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        200
    );
}

#[tokio::test]
async fn a_keytab_the_kdc_does_not_know_gives_502_and_readyz_says_so() {
    let realm = Realm::start().await;
    // A key for a principal the KDC has since forgotten.
    let stale = realm.kdc.path("stale.keytab");
    realm.kdc.service("livy-gateway/stale", &stale).await;
    let out = Command::new("kadmin.local")
        .envs(realm.kdc.env())
        .args(["-r", REALM, "-q", "delprinc -force livy-gateway/stale"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let gw = Gateway::start_edited(&realm, &stale, "", |text| {
        text.replace("livy-gateway/localhost@", "livy-gateway/stale@")
    });
    for proto in [Proto::H1, Proto::H2] {
        let r = gw
            .client
            .as_user_over(proto, "alice", Method::GET, BATCHES, "")
            .await;
        assert_eq!(r.status, 502, "{proto:?}");
        assert_eq!(r.json()["error"], "upstream_auth_failed");
        assert!(!String::from_utf8_lossy(&r.body).contains("localhost"));
    }
    let admin = gw.ports().1;
    let (status, body) = admin_get(([127, 0, 0, 1], admin).into(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let log = gw.log();
    assert!(log.contains("no Kerberos token for Livy"), "{log}");
    assert!(
        !realm.seen().iter().any(|s| s["status"] == 200),
        "nothing reached Livy"
    );

    // check-config --probe says so too, and succeeds with the right keytab.
    let probe = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .envs(realm.kdc.env())
            .args(["check-config", "--probe", "--config"])
            .arg(config)
            .output()
            .unwrap()
    };
    let out = probe(&gw.dir.path().join("gateway.toml"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("probe failed"));
    let good_dir = tempfile::tempdir().unwrap();
    let good = write_gateway(
        good_dir.path(),
        &realm,
        &realm.gateway_keytab,
        free_port(),
        free_port(),
    );
    let out = probe(&good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("a ticket for HTTP/localhost obtained as livy-gateway/localhost@LIVY.TEST"),
        "{stdout}"
    );
}

#[tokio::test]
async fn sighup_takes_a_new_keytab() {
    let realm = Realm::start().await;
    // Started with a keytab the KDC has no principal for: nothing works.
    let wrong = realm.kdc.path("wrong.keytab");
    realm.kdc.service("someone-else/localhost", &wrong).await;
    let gw = Gateway::start(&realm, &wrong);
    let client = &gw.client;
    assert_eq!(
        client
            .as_user("alice", Method::GET, BATCHES, "")
            .await
            .status,
        502
    );
    // The operator puts the right keytab in the config and reloads.
    let (port, admin) = gw.ports();
    write_gateway(gw.dir.path(), &realm, &realm.gateway_keytab, port, admin);
    let status = Command::new("kill")
        .args(["-HUP", &gw.process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reloaded = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if gw.log().contains("configuration reloaded") {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "{}", gw.log());
    created(
        &client
            .as_user("alice", Method::POST, BATCHES, r#"{"file":"/jobs/a.jar"}"#)
            .await,
    );
}

/// Apache httpd with mod_auth_gssapi (`AuthType GSSAPI`, the HTTP keytab) proxying
/// to `realm`'s simulator, on a free port; stopped when dropped.
struct Apache {
    port: u16,
    _dir: tempfile::TempDir,
    _process: Running,
}

impl Apache {
    fn start(realm: &Realm) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Its children run as www-data: their own readable copy of the key.
        let keytab = dir.path().join("http.keytab");
        std::fs::copy(realm.kdc.path("http.keytab"), &keytab).unwrap();
        std::fs::set_permissions(&keytab, std::fs::Permissions::from_mode(0o644)).unwrap();
        let port = free_port();
        let modules = "/usr/lib/apache2/modules";
        let d = dir.path().display();
        let conf = format!(
            "ServerRoot {d}\nListen 127.0.0.1:{port}\nServerName localhost\nPidFile {d}/httpd.pid\n\
             ErrorLog {d}/error.log\nDefaultRuntimeDir {d}\nUser www-data\nGroup www-data\n\
             LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
             LoadModule authn_core_module {modules}/mod_authn_core.so\n\
             LoadModule authz_core_module {modules}/mod_authz_core.so\n\
             LoadModule authz_user_module {modules}/mod_authz_user.so\n\
             LoadModule headers_module {modules}/mod_headers.so\n\
             LoadModule proxy_module {modules}/mod_proxy.so\n\
             LoadModule proxy_http_module {modules}/mod_proxy_http.so\n\
             LoadModule auth_gssapi_module {modules}/mod_auth_gssapi.so\n\
             <Location />\n  AuthType GSSAPI\n  AuthName \"Livy\"\n  GssapiCredStore keytab:{}\n\
               Require valid-user\n  RequestHeader set X-Remote-User \"expr=%{{REMOTE_USER}}\"\n</Location>\n\
             ProxyPass / {}/\nProxyPassReverse / {}/\n",
            keytab.display(),
            realm.sim_url,
            realm.sim_url,
        );
        std::fs::write(dir.path().join("httpd.conf"), conf).unwrap();
        // And a replay cache its children may write.
        let rcache = dir.path().join("rcache");
        std::fs::create_dir(&rcache).unwrap();
        std::fs::set_permissions(&rcache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let child = Command::new("apache2")
            .envs(realm.kdc.env())
            .env("KRB5RCACHEDIR", &rcache)
            .arg("-f")
            .arg(dir.path().join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apache2 runs (scripts/test.sh installs it with mod_auth_gssapi)");
        let process = Running(child);
        assert!(
            wait_until_listening(port),
            "{}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        Self {
            port,
            _dir: dir,
            _process: process,
        }
    }
}

#[tokio::test]
async fn an_independent_acceptor_apache_mod_auth_gssapi_takes_the_gateways_tokens() {
    let mut realm = Realm::start().await;
    let apache = Apache::start(&realm);
    // The gateway's upstream is Apache, not the stand-in.
    realm.livy_port = apache.port;
    let gw = Gateway::start(&realm, &realm.gateway_keytab);
    let c = &gw.client;
    for proto in [Proto::H1, Proto::H2] {
        create_and_read(c, proto).await;
    }
}

// Users → gateway: SPNEGO logins with users' tickets (`[auth.kerberos]`).

/// The gateway's own HTTP service key (clients reach it as `127.0.0.1`, so its
/// principal is `HTTP/127.0.0.1`; Livy's is `HTTP/localhost`), and alice with a
/// ticket in a credential cache. The `[auth.kerberos]` section and the cache.
async fn negotiate_setup(realm: &Realm, realms: &str) -> (String, PathBuf) {
    let keytab = realm.kdc.path("gateway-http.keytab");
    realm.kdc.service("HTTP/127.0.0.1", &keytab).await;
    realm.kdc.user("alice", PASSWORD).await;
    let ccache = realm.kdc.path("alice.ccache");
    realm.kdc.kinit("alice", PASSWORD, &ccache).await;
    let section = format!(
        "[auth.kerberos]\nkeytab = \"{}\"\nrealms = [{realms}]\n",
        keytab.display()
    );
    (section, ccache)
}

impl Gateway {
    /// A gateway that takes Negotiate logins as `section` says, `extra` after it.
    fn start_negotiating(realm: &Realm, section: &str, extra: &str) -> Self {
        let extra = format!("{section}{extra}");
        Self::start_edited(realm, &realm.gateway_keytab, &extra, |text| text)
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.ports().0)
    }

    /// `GET` the batches over `proto` with `Authorization: <auth>`.
    async fn negotiate(&self, proto: Proto, auth: &str) -> Answer {
        let headers: Vec<(&str, &[u8])> = match auth.is_empty() {
            true => vec![],
            false => vec![("authorization", auth.as_bytes())],
        };
        self.client
            .send(proto, Method::GET, BATCHES, &headers, "")
            .await
    }

    /// The TLS and admin ports, from its config.
    fn ports(&self) -> (u16, u16) {
        let config = std::fs::read_to_string(self.dir.path().join("gateway.toml")).unwrap();
        let mut ports = config.lines().filter_map(|l| {
            let port = l.strip_prefix("listen = \"127.0.0.1:")?;
            port.trim_end_matches('"').parse().ok()
        });
        (ports.next().unwrap(), ports.next().unwrap())
    }
}

/// A client's tokens for `HTTP@<host>`, made from alice's credential cache by
/// tests/fixtures/kerberos/spnego_token.py; the process stays to check the
/// gateway's replies.
struct Tokens {
    minted: Vec<String>,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    _process: Running,
}

impl Tokens {
    fn mint(realm: &Realm, ccache: &Path, host: &str, count: usize) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("/usr/bin/python3")
            .envs(realm.kdc.env())
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kerberos/spnego_token.py"
            ))
            .args([host, &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with python3-gssapi (scripts/test.sh installs it)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let minted = (0..count)
            .map(|_| {
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                assert!(!line.trim().is_empty(), "no token made");
                line.trim().to_owned()
            })
            .collect();
        Self {
            minted,
            stdin,
            stdout,
            _process: Running(child),
        }
    }

    /// `Authorization` for token `i`.
    fn header(&self, i: usize) -> String {
        format!("Negotiate {}", self.minted[i])
    }

    /// Whether the gateway's answer to token `i` proves the gateway (`ok`).
    fn check(&mut self, i: usize, answer: &Answer) -> String {
        use std::io::{BufRead, Write};
        let reply = answer
            .headers
            .get_all("www-authenticate")
            .iter()
            .find_map(|v| v.to_str().ok()?.strip_prefix("Negotiate "))
            .expect("a mutual-authentication token in the answer");
        writeln!(self.stdin, "{i} {reply}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }
}

/// curl --negotiate as alice (her credential cache), with `args`: the status, the
/// response headers and the body. (Waited for without blocking the test's
/// runtime, which serves Livy's simulator.)
async fn curl(realm: &Realm, ccache: &Path, ca: &Path, args: &[&str]) -> (u16, String, String) {
    let out = tokio::process::Command::new("curl")
        .envs(realm.kdc.env())
        .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
        .args(["-sS", "--negotiate", "-u", ":", "--cacert"])
        .arg(ca)
        .args(["-D", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (rest, status) = text.rsplit_once('\n').unwrap();
    // -D - writes every response's head (the 401, then the answer) before the body.
    let (heads, body) = rest.rsplit_once("\r\n\r\n").unwrap();
    (status.parse().unwrap(), heads.to_owned(), body.to_owned())
}

#[tokio::test]
async fn users_log_in_with_their_tickets_through_curl_on_both_protocols() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    let gw = Gateway::start_negotiating(&realm, &section, "");
    let ca = gw.dir.path().join("certs/ca.crt");
    // POSTs `body` to `path` with curl over `proto`, logging in with the ticket.
    let create = |proto: &'static str, path: &'static str, body: &'static str| {
        let (realm, ccache, ca, url) = (&realm, &ccache, &ca, gw.url(path));
        async move {
            let args = [
                proto,
                "-H",
                "content-type: application/json",
                "-d",
                body,
                &url,
            ];
            curl(realm, ccache, ca, &args).await
        }
    };
    for proto in ["--http1.1", "--http2"] {
        // Both sides Kerberized: alice's ticket to the gateway, the gateway's to
        // Livy, acting for her.
        let (status, heads, body) = create(proto, BATCHES, r#"{"file":"/jobs/a.jar"}"#).await;
        assert_eq!(status, 201, "{proto}: {heads}\n{body}\n{}", gw.log());
        let answer = heads.to_lowercase();
        assert!(answer.contains("www-authenticate: negotiate "), "{heads}");
        let cookie = heads
            .lines()
            .find_map(|l| {
                l.to_lowercase()
                    .strip_prefix("set-cookie: jsessionid=")
                    .map(|_| l.to_owned())
            })
            .expect("a session cookie");
        let cookie = cookie.split_once('=').unwrap().1.split(';').next().unwrap();
        let made: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(made["proxyUser"], "alice");
        // An interactive session too, the ticket again.
        let (status, _, session) = create(proto, SESSIONS, r#"{"kind":"pyspark"}"#).await;
        assert_eq!(status, 201, "{session}");
        let session: serde_json::Value = serde_json::from_str(&session).unwrap();
        assert_eq!(session["proxyUser"], "alice");
        // The cookie alone stands in for the ticket.
        let view = gw
            .client
            .with_cookie(cookie, Method::GET, &format!("{BATCHES}/{}", made["id"]))
            .await;
        assert_eq!(view.status, 200);
        assert_eq!(view.json()["proxyUser"], "alice");
    }
    let last = realm.seen().into_iter().last().unwrap();
    assert_eq!(last["user"], "livy-gateway", "{last}");

    // check-config --probe names the key tickets are checked with.
    let out = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .envs(realm.kdc.env())
        .args(["check-config", "--probe", "--config"])
        .arg(gw.dir.path().join("gateway.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("negotiate: tickets accepted"), "{stdout}");
}

#[tokio::test]
async fn replayed_garbage_empty_oversized_and_misdirected_tokens_get_401() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    let lenient = "[login]\nmax_failures_per_pair = 100\nmax_failures_per_address = 100\n";
    let gw = Gateway::start_negotiating(&realm, &section, lenient);
    let c = &gw.client;

    // Without credentials: both ways to log in are offered.
    let bare = gw.negotiate(Proto::H1, "").await;
    assert_eq!(bare.status, 401);
    let offered: Vec<&str> = bare
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(offered, ["Negotiate", "BASIC realm=\"application\""]);

    // A token logs in once, over either protocol, and proves the gateway to the
    // client; sent again, it is a replay.
    let mut tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 2);
    for (i, (first, again)) in [(Proto::H2, Proto::H1), (Proto::H1, Proto::H2)]
        .into_iter()
        .enumerate()
    {
        let answer = gw.negotiate(first, &tokens.header(i)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert!(answer.session_cookie().is_some());
        assert_eq!(tokens.check(i, &answer), "ok");
        let replayed = gw.negotiate(again, &tokens.header(i)).await;
        assert_eq!(replayed.status, 401, "a replay over {again:?}");
        assert_eq!(replayed.json()["error"], "unauthorized");
    }

    // Tokens that establish nothing.
    let misdirected = Tokens::mint(&realm, &ccache, "localhost", 1); // Livy's key
    let garbage = base64::engine::general_purpose::STANDARD.encode([0x60u8; 64]);
    let cases = [
        ("garbage", format!("Negotiate {garbage}")),
        ("not base64", "Negotiate %%%".to_string()),
        ("empty", "Negotiate ".to_string()),
        ("oversized", format!("Negotiate {}", "A".repeat(70_000))),
        ("for another service", misdirected.header(0)),
    ];
    for proto in [Proto::H1, Proto::H2] {
        for (what, auth) in &cases {
            let answer = gw.negotiate(proto, auth).await;
            assert_eq!(answer.status, 401, "{what} over {proto:?}");
            assert_eq!(answer.json()["error"], "unauthorized", "{what}");
            assert_eq!(answer.headers.get_all("www-authenticate").iter().count(), 2);
        }
    }
    // Passwords still work beside tickets.
    assert_eq!(
        c.as_user("alice", Method::GET, BATCHES, "").await.status,
        200
    );
    let log = gw.log();
    assert!(log.contains("Negotiate login refused"), "{log}");
    assert!(
        !log.contains(&tokens.minted[0][..40]),
        "no token in the log"
    );
}

#[tokio::test]
async fn failed_negotiate_logins_count_in_the_login_throttle() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    let gw = Gateway::start_negotiating(&realm, &section, "[login]\nmax_failures_per_pair = 3\n");
    let tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 1);
    let garbage = format!(
        "Negotiate {}",
        base64::engine::general_purpose::STANDARD.encode([0x60u8; 64])
    );
    for _ in 0..3 {
        assert_eq!(gw.negotiate(Proto::H1, &garbage).await.status, 401);
    }
    // Locked now, for good tokens too; the address's password logins are not.
    let locked = gw.negotiate(Proto::H1, &tokens.header(0)).await;
    assert_eq!(locked.status, 429);
    assert!(locked.header("retry-after").is_some());
    assert_eq!(
        gw.client
            .as_user("alice", Method::GET, BATCHES, "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn tickets_from_realms_not_listed_are_refused() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, "\"OTHER.ORG\"").await;
    let gw = Gateway::start_negotiating(&realm, &section, "");
    let tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 1);
    let answer = gw.negotiate(Proto::H2, &tokens.header(0)).await;
    assert_eq!(answer.status, 401);
    assert!(answer.session_cookie().is_none());
    let log = gw.log();
    assert!(log.contains("is not in auth.kerberos.realms"), "{log}");
}

#[tokio::test]
async fn an_unusable_service_keytab_is_503_until_it_is_fixed_without_a_restart() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    // The configured keytab is there but holds no key yet.
    let good = realm.kdc.path("gateway-http.keytab");
    let configured = realm.kdc.path("pending.keytab");
    std::fs::write(&configured, b"").unwrap();
    let section = section.replace(
        &good.display().to_string(),
        &configured.display().to_string(),
    );
    let gw = Gateway::start_negotiating(&realm, &section, "");
    let tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 2);
    let refused = gw.negotiate(Proto::H2, &tokens.header(0)).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "auth_unavailable");
    let admin = gw.ports().1;
    let (status, body) = admin_get(([127, 0, 0, 1], admin).into(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(gw.log().contains("Negotiate logins cannot be checked"));
    // The key arrives (a keytab rotated into place): logins work, no restart.
    std::fs::copy(&good, &configured).unwrap();
    assert_eq!(gw.negotiate(Proto::H2, &tokens.header(1)).await.status, 200);
    let (status, body) = admin_get(([127, 0, 0, 1], admin).into(), "/readyz").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn tickets_held_work_with_the_kdc_down_and_expired_ones_are_refused() {
    let mut realm = Realm::start().await;
    let (section, _) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    // alice's ticket lasts 12 s.
    let ccache = realm.kdc.path("alice-short.ccache");
    realm
        .kdc
        .kinit_with("alice", PASSWORD, &ccache, &["-l", "12s"])
        .await;
    let issued = tokio::time::Instant::now();
    let gw = Gateway::start_negotiating(&realm, &section, "");
    let tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 2);
    // The gateway holds its own tickets for Livy; then the KDC goes away. Checking
    // a user's ticket needs only the gateway's key: logins go on.
    assert_eq!(
        gw.client
            .as_user("bob", Method::GET, BATCHES, "")
            .await
            .status,
        200
    );
    realm.kdc.stop().await;
    assert_eq!(gw.negotiate(Proto::H1, &tokens.header(0)).await.status, 200);
    // Past the ticket's end and the realm's clock skew: refused.
    tokio::time::sleep_until(issued + Duration::from_secs(12 + 5 + 2)).await;
    let expired = gw.negotiate(Proto::H1, &tokens.header(1)).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.json()["error"], "unauthorized");
    let log = gw.log();
    assert!(
        log.contains("Negotiate login refused") && log.contains("Ticket expired"),
        "{log}"
    );
}

#[tokio::test]
async fn a_gateway_with_tickets_only_offers_and_takes_nothing_else() {
    let realm = Realm::start().await;
    let (section, ccache) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    // No password file: `[auth.kerberos]` alone.
    let gw = Gateway::start_edited(&realm, &realm.gateway_keytab, &section, |text| {
        text.replace("htpasswd = \"users.htpasswd\"\n", "")
    });
    let bare = gw.negotiate(Proto::H2, "").await;
    assert_eq!(bare.status, 401);
    let offered: Vec<_> = bare.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(offered, ["Negotiate"]);
    let tokens = Tokens::mint(&realm, &ccache, "127.0.0.1", 1);
    assert_eq!(gw.negotiate(Proto::H1, &tokens.header(0)).await.status, 200);
    let password = basic("alice", PASSWORD);
    assert_eq!(gw.negotiate(Proto::H1, &password).await.status, 401);
}

/// A ticket for `ALICE@REALM` (what Active Directory's KDC issues for `kinit
/// ALICE`) is alice when the directory says so: the name maps through the
/// directory's entry, as a password login's does.
#[tokio::test]
async fn a_ticket_in_another_case_is_the_directory_users_own_name() {
    let realm = Realm::start().await;
    let (section, _) = negotiate_setup(&realm, &format!("\"{REALM}\"")).await;
    realm.kdc.user("ALICE", PASSWORD).await;
    let ccache = realm.kdc.path("ALICE.ccache");
    realm.kdc.kinit("ALICE", PASSWORD, &ccache).await;
    let slapd = common::slapd::Slapd::start().await;
    let directory = format!(
        "[auth.ldap]\nurls = [\"{}\"]\nbind_dn = \"cn=gateway,dc=example,dc=org\"\n\
         bind_password_file = \"{}\"\nuser_search_base = \"ou=people,dc=example,dc=org\"\n",
        slapd.url(),
        slapd.password_file().display()
    );
    let gw = Gateway::start_negotiating(&realm, &section, &directory);
    let ca = gw.dir.path().join("certs/ca.crt");
    for proto in ["--http1.1", "--http2"] {
        let url = gw.url(BATCHES);
        let args = [
            proto,
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"file":"/jobs/a.jar"}"#,
            &url,
        ];
        let (status, heads, body) = curl(&realm, &ccache, &ca, &args).await;
        assert_eq!(status, 201, "{proto}: {heads}\n{body}\n{}", gw.log());
        let made: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(made["proxyUser"], "alice", "{proto}");
    }
}
