//! `livy-gateway demo`, the README's first command: it starts from an empty state
//! directory, prints working credentials and curl commands for every request of the
//! seed document, and stops cleanly on a signal.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn demo_prints_curl_commands_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_livy-gateway"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "1000000",
            "--state-dir",
        ])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("demo printed its instructions");
        let done = line.contains("Press Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    let commands: Vec<&String> = lines.iter().filter(|l| l.starts_with("curl ")).collect();
    assert_eq!(commands.len(), 6, "{lines:#?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("user:") && l.contains("demo")));
    assert!(commands
        .iter()
        .all(|c| c.contains("--cacert") && !c.contains(" -k ")));

    let expectations = [" 201", " 200", " 200", " 200", " 200", " 200"];
    let bodies = [
        "\"starting\"",
        "\"sessions\"",
        "\"appId\"",
        "\"state\"",
        "\"log\"",
        "{\"msg\":\"deleted\"}",
    ];
    for ((command, status), body) in commands.iter().zip(expectations).zip(bodies) {
        let out = Command::new("bash").args(["-c", command]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let status_line = text.lines().next().unwrap_or("");
        assert!(status_line.contains(status), "{command}\n{text}");
        assert!(text.contains(body), "{command}\n{text}");
    }

    let status = common::signal_and_wait(&mut child, "INT");
    assert!(status.success(), "{status:?}");
    assert!(state.join("certs/ca.crt").exists());
}
