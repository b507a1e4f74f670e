//! The `livy-gateway` command line: every subcommand, its output and its errors.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A valid config in `dir` (certificates, users, upstream), returning its path.
fn write_config(dir: &Path, listen: &str, extra: &str) -> std::path::PathBuf {
    let out = gateway(&["gen-cert", "--dir", dir.join("certs").to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(
        dir.join("users.htpasswd"),
        format!("alice:{}\n", bcrypt::hash("pw", 4).unwrap()),
    )
    .unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"{listen}\"\ntls_cert = \"certs/gateway.crt\"\ntls_key = \"certs/gateway.key\"\ndata_dir = \"data\"\n\
             [auth]\nhtpasswd = \"users.htpasswd\"\n\
             [livy]\nupstreams = [\"http://127.0.0.1:8998\"]\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn version_and_help() {
    let out = gateway(&["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("livy-gateway "));
    let out = gateway(&["--help"]);
    let help = text(&out.stdout);
    for sub in ["serve", "check-config", "hash-password", "gen-cert", "demo"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn gen_cert_writes_a_ca_and_a_server_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = gateway(&[
        "gen-cert",
        "--dir",
        dir.path().to_str().unwrap(),
        "--san",
        "gw.example.test",
        "--san",
        "10.1.2.3",
    ]);
    assert!(out.status.success(), "{out:?}");
    for f in ["ca.crt", "ca.key", "gateway.crt", "gateway.key"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    livy_gateway::tls::server_config(
        &dir.path().join("gateway.crt"),
        &dir.path().join("gateway.key"),
    )
    .unwrap();
    assert!(text(&out.stdout).contains("gw.example.test, 10.1.2.3"));
}

#[test]
fn hash_password_prints_a_bcrypt_hash_or_line() {
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["hash-password", "--cost", "4"], b"correct horse\n");
    assert!(out.status.success());
    let hash = text(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$2y$04$"), "{hash}");
    assert!(bcrypt::verify("correct horse", &hash).unwrap());
    let out = run(
        &["hash-password", "--user", "alice", "--cost", "4"],
        b"pw\r\n",
    );
    let line = text(&out.stdout);
    let (user, hash) = line.trim().split_once(':').unwrap();
    assert_eq!(user, "alice");
    assert!(bcrypt::verify("pw", hash).unwrap());
    let out = run(&["hash-password"], b"\n");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("empty password"));
}

#[test]
fn check_config_accepts_a_good_config_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "127.0.0.1:0", "");
    let out = gateway(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("OK"), "{report}");
    assert!(report.contains("/gateway/default/livy/v1/"), "{report}");
    assert!(report.contains("http://127.0.0.1:8998"), "{report}");
}

#[test]
fn a_token_id_starting_with_a_hyphen_is_an_id_not_an_option() {
    // Ids are URL-safe base64: one in 64 starts with `-`.
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "127.0.0.1:0", "[tokens]\nenabled = true\n");
    let p = path.to_str().unwrap();
    for args in [
        ["token", "revoke", "-qGZO5arsvFJsunM", "--config", p],
        ["token", "revoke", "--config", p, "-qGZO5arsvFJsunM"],
    ] {
        let out = gateway(&args);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("no live token \"-qGZO5arsvFJsunM\""), "{err}");
    }
}

#[test]
fn check_config_prints_the_effective_policy_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "127.0.0.1:0", "");
    let policy = r#"
[policy]
max_sessions_per_user = 3
max_creating = 20
max_executor_memory = "16g"
queues = ["adhoc"]
[policy.groups.data-eng]
max_sessions_per_user = 10
queues = ["data-eng", "adhoc"]
"#;
    let text_ = std::fs::read_to_string(&path).unwrap() + policy;
    std::fs::write(&path, text_).unwrap();
    let out = gateway(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("creations in flight at once: 20"),
        "{report}"
    );
    let everyone = report.lines().find(|l| l.contains("everyone:")).unwrap();
    assert!(
        everyone.contains("sessions 3 and batches none per user"),
        "{everyone}"
    );
    assert!(everyone.contains("executor memory 16g") && everyone.contains("queues: adhoc"));
    let group = report
        .lines()
        .find(|l| l.contains("group data-eng:"))
        .unwrap();
    assert!(
        group.contains("sessions 10 and") && group.contains("queues: data-eng, adhoc"),
        "{group}"
    );
    assert!(
        group.contains("executor memory 16g"),
        "keys a group leaves out are [policy]'s"
    );
    // A group may not set the cluster's cap.
    let bad = std::fs::read_to_string(&path).unwrap() + "max_creating = 3\n";
    std::fs::write(&path, bad).unwrap();
    let out = gateway(&["check-config", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("max_creating"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "127.0.0.1:0", "");
    let p = path.to_str().unwrap();
    let original = std::fs::read_to_string(&path).unwrap();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            original.replace("[auth]", "[auth]\nrelam = \"x\""),
            vec!["relam", "line 7", "gateway.toml"],
        ),
        (
            original.replace("certs/gateway.crt", "certs/missing.crt"),
            vec!["missing.crt"],
        ),
        (
            original.replace("http://127.0.0.1:8998", "ftp://livy"),
            vec!["livy.upstreams"],
        ),
        (
            original.replace("listen = \"127.0.0.1:0\"", "listen = \"nonsense\""),
            vec!["listen"],
        ),
    ];
    for (config, expect) in cases {
        std::fs::write(&path, &config).unwrap();
        let out = gateway(&["check-config", "--config", p]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        for e in expect {
            assert!(err.contains(e), "expected {e:?} in {err}");
        }
    }
    // Bad PEM and a bad htpasswd line.
    std::fs::write(&path, &original).unwrap();
    std::fs::write(dir.path().join("certs/gateway.key"), "not a key").unwrap();
    let err = text(&gateway(&["check-config", "--config", p]).stderr);
    assert!(err.contains("gateway.key"), "{err}");
    gateway(&[
        "gen-cert",
        "--dir",
        dir.path().join("certs").to_str().unwrap(),
    ]);
    std::fs::write(
        dir.path().join("users.htpasswd"),
        "# users\nbob:plaintext\n",
    )
    .unwrap();
    let err = text(&gateway(&["check-config", "--config", p]).stderr);
    assert!(err.contains("line 2") && err.contains("bob"), "{err}");
    assert!(
        !err.contains("plaintext\""),
        "the password itself is not echoed: {err}"
    );
}

#[test]
fn serve_reports_a_port_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &addr, "");
    let out = gateway(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot listen on"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_exits_cleanly_on_sigterm() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("127.0.0.1:{port}"), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        common::wait_until_listening(port),
        "gateway did not start listening"
    );
    let status = common::signal_and_wait(&mut child, "TERM");
    assert!(status.success(), "{status:?}");
}

/// Runs `curl` against the gateway at `port` for `path`, `times` times over one
/// connection, discarding the answers.
fn curl_times(dir: &Path, port: u16, times: usize) {
    let ca = dir.join("certs/ca.crt");
    let url = format!("https://localhost:{port}/gateway/default/livy/v1/batches");
    let mut args = vec![
        "-s".to_string(),
        "--cacert".into(),
        ca.display().to_string(),
    ];
    for _ in 0..times {
        args.extend(["-o".into(), "/dev/null".into(), url.clone()]);
    }
    let status = Command::new("curl").args(&args).status().unwrap();
    assert!(status.success(), "curl: {status:?}");
}

fn line_count(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Polls until `file` has at least `lines` lines.
fn wait_for_lines(file: &Path, lines: usize) -> bool {
    for _ in 0..400 {
        if line_count(file) >= lines {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[test]
fn sighup_reopens_the_access_and_audit_logs() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        "[log]\naccess_path = \"logs/access.log\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let audit = dir.path().join("data/audit.log");
    let access = dir.path().join("logs/access.log");
    assert!(common::wait_until_listening(port));
    curl_times(dir.path(), port, 1);
    assert!(wait_for_lines(&audit, 1), "first audit line");
    assert!(wait_for_lines(&access, 1), "first access line");
    std::fs::rename(&audit, dir.path().join("data/audit.log.1")).unwrap();
    std::fs::rename(&access, dir.path().join("logs/access.log.1")).unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    // The reopen is asynchronous: keep requesting until new files appear.
    let mut reopened = false;
    for _ in 0..5 {
        curl_times(dir.path(), port, 1);
        if wait_for_lines(&audit, 1) && wait_for_lines(&access, 1) {
            reopened = true;
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(reopened, "no new audit.log and access.log after SIGHUP");
    assert!(line_count(&dir.path().join("data/audit.log.1")) >= 1);
    let rotated = std::fs::read_to_string(dir.path().join("logs/access.log.1")).unwrap();
    let first = rotated.lines().next().unwrap();
    assert!(
        first.contains("INFO livy_gateway::access: request ") && first.contains(" status=401 "),
        "{first}"
    );
}

#[test]
fn no_access_or_audit_line_is_lost_on_sigterm() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        "[log]\nformat = \"json\"\naccess_path = \"logs/access.log\"\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(common::wait_until_listening(port));
    // Lines are written in batches every 100 ms: stopping right after the last
    // answer leaves some queued, which the shutdown must write out.
    curl_times(dir.path(), port, 200);
    let status = common::signal_and_wait(&mut child, "TERM");
    assert!(status.success(), "{status:?}");
    let access = std::fs::read_to_string(dir.path().join("logs/access.log")).unwrap();
    let lines: Vec<serde_json::Value> = access
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 200);
    assert!(lines
        .iter()
        .all(|l| l["target"] == "livy_gateway::access" && l["status"] == 401));
    assert_eq!(line_count(&dir.path().join("data/audit.log")), 200);
}

/// A build without the `kerberos` feature refuses either Kerberos section, saying
/// how to get one that has it.
#[cfg(not(feature = "kerberos"))]
#[test]
fn a_kerberos_section_needs_a_build_with_kerberos() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gw.keytab"), b"").unwrap();
    for (section, extra) in [
        (
            "[livy.kerberos]",
            "[livy.kerberos]\nkeytab = \"gw.keytab\"\n",
        ),
        (
            "[auth.kerberos]",
            "[auth.kerberos]\nkeytab = \"gw.keytab\"\nrealms = [\"EXAMPLE.ORG\"]\n",
        ),
    ] {
        let path = write_config(dir.path(), "127.0.0.1:0", extra);
        let out = gateway(&["check-config", "--config", path.to_str().unwrap()]);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(section) && stderr.contains("--features kerberos"),
            "{stderr}"
        );
    }
}
