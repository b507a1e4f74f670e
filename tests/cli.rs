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

#[test]
fn sighup_reopens_the_audit_log() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("127.0.0.1:{port}"), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ca = dir.path().join("certs/ca.crt");
    let url = format!("https://localhost:{port}/gateway/default/livy/v1/batches");
    let request = || {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--cacert",
                ca.to_str().unwrap(),
                &url,
            ])
            .status()
            .unwrap();
    };
    let audit = dir.path().join("data/audit.log");
    let wait_for = |file: &Path, lines: usize| {
        for _ in 0..400 {
            let n = std::fs::read_to_string(file)
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if n >= lines {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    };
    assert!(common::wait_until_listening(port));
    request();
    assert!(wait_for(&audit, 1), "first audit line");
    std::fs::rename(&audit, dir.path().join("data/audit.log.1")).unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    // The reopen is asynchronous: keep requesting until a new file appears.
    let mut reopened = false;
    for _ in 0..5 {
        request();
        if wait_for(&audit, 1) {
            reopened = true;
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(reopened, "no new audit.log after SIGHUP");
    assert!(
        std::fs::read_to_string(dir.path().join("data/audit.log.1"))
            .unwrap()
            .lines()
            .count()
            >= 1
    );
}
