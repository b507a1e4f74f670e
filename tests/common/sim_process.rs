//! A `livy-sim` process on a fixed loopback port, to be killed and started again
//! as a crashed Livy would be (failover, restarts without session recovery).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{free_port, signal_and_wait, wait_until_listening};

/// A `livy-sim` process on a fixed loopback port, journaling creations.
pub struct SimProcess {
    pub port: u16,
    pub journal: PathBuf,
    pub extra: Vec<String>,
    pub child: Option<Child>,
}

impl SimProcess {
    pub fn start(dir: &Path, name: &str, extra: &[String]) -> Self {
        let mut sim = Self {
            port: free_port(),
            journal: dir.join(format!("{name}.journal")),
            extra: extra.to_vec(),
            child: None,
        };
        sim.restart();
        sim
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it (again), on its port, and waits until it listens.
    pub fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_livy-sim"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args(["--speed", "1000000", "--journal"])
            .arg(&self.journal)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("livy-sim starts");
        self.child = Some(child);
        assert!(wait_until_listening(self.port), "livy-sim listens");
    }

    /// SIGKILL, as a crashed server: no goodbye on its connections.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        signal_and_wait(&mut child, "KILL");
    }

    /// The creations that reached it: `(name, proxyUser)`.
    pub fn creations(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                (fields[1].to_owned(), fields[2].to_owned())
            })
            .collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
