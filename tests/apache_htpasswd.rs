//! Interoperability with Apache's own `htpasswd` (Debian's apache2-utils, installed by
//! `scripts/test.sh`): files it writes work for login, and hashes we write verify
//! with it.

mod common;

use std::process::Command;

use common::*;
use http::Method;

fn htpasswd(args: &[&str]) -> std::process::Output {
    Command::new("htpasswd")
        .args(args)
        .output()
        .expect("Apache's htpasswd must be installed (apt-get install apache2-utils; scripts/test.sh does it)")
}

#[tokio::test]
async fn a_file_written_by_apache_htpasswd_logs_users_in() {
    let gw = TestGateway::start(Options::default()).await;
    let file = gw.dir.path().join("users.htpasswd");
    let path = file.to_str().unwrap();
    // Replace the harness's users with ones Apache writes: bcrypt, SHA-512, SHA-256, apr1.
    for (flags, user) in [
        (vec!["-c", "-B", "-C", "5"], "carol"),
        (vec!["-5"], "dave"),
        (vec!["-2"], "erin"),
        (vec!["-m"], "frank"),
    ] {
        let mut args: Vec<&str> = vec!["-b"];
        args.extend(flags);
        args.extend([path, user, "apache-pw"]);
        let out = htpasswd(&args);
        assert!(out.status.success(), "{out:?}");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("carol:$2y$05$"), "{text}");
    assert!(
        text.contains("dave:$6$") && text.contains("erin:$5$") && text.contains("frank:$apr1$")
    );

    // A gateway started on that file.
    let gw = gw.restart().await;
    let c = gw.client();
    for user in ["carol", "dave", "erin", "frank"] {
        let auth = basic(user, "apache-pw");
        let r = c
            .send(
                Proto::H1,
                Method::GET,
                "/gateway/default/livy/v1/batches",
                &[("authorization", auth.as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{user}");
        let wrong = basic(user, "apache-pw2");
        let r = c
            .send(
                Proto::H1,
                Method::GET,
                "/gateway/default/livy/v1/batches",
                &[("authorization", wrong.as_bytes())],
                "",
            )
            .await;
        assert_eq!(r.status, 401, "{user}");
    }
}

#[test]
fn plaintext_and_sha1_files_from_apache_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["-p", "-s", "-d"] {
        let file = dir.path().join(format!("users{flag}"));
        let out = htpasswd(&["-c", "-b", flag, file.to_str().unwrap(), "mallory", "pw"]);
        assert!(out.status.success(), "{out:?}");
        let err = livy_gateway::auth::htpasswd::Htpasswd::load(&file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{flag}: {err}");
        assert!(err.contains("mallory"), "{flag}: {err}");
    }
}

#[test]
fn hashes_from_hash_password_verify_with_apache_htpasswd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.htpasswd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args(["hash-password", "--user", "grace", "--cost", "5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-gateway\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(&file, &out.stdout).unwrap();
    let ok = htpasswd(&["-v", "-b", file.to_str().unwrap(), "grace", "from-gateway"]);
    assert!(ok.status.success(), "{ok:?}");
    let bad = htpasswd(&["-v", "-b", file.to_str().unwrap(), "grace", "other"]);
    assert!(!bad.status.success());
}
