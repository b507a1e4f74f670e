//! The simulator's journal of creations: one line per batch or session created,
//! `<kind> <name> <proxyUser>`, appended and flushed as each is created, so a test
//! can count what reached this Livy by name, even after the process was killed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// An append-only file of creations.
pub struct Journal(Mutex<File>);

impl Journal {
    /// Opens (creating, appending to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self(Mutex::new(file)))
    }

    /// Notes one creation (`batch` or `session`). A failed write is logged: the
    /// journal serves tests, and must not fail the creation itself.
    pub fn created(&self, kind: &str, name: Option<&str>, proxy_user: Option<&str>) {
        let line = format!(
            "{kind} {} {}\n",
            name.unwrap_or("-"),
            proxy_user.unwrap_or("-")
        );
        let mut file = self.0.lock().expect("journal lock");
        if let Err(error) = file.write_all(line.as_bytes()) {
            tracing::warn!(%error, "livy-sim: the creation journal could not be written");
        }
    }
}
