//! The audit log: one JSON line per request, to a file, for security review.
//!
//! Each line says who asked (user, client address), as whom it ran (effective user),
//! what it was (method, path, Livy action, resource id), what Livy answered and
//! whether the gateway allowed, denied or failed it, with the reason for a denial.
//! Secrets never appear: no passwords, Authorization values, cookies or bodies.
//!
//! Lines are appended to a bounded buffer that a writer thread drains every 100 ms,
//! so a slow disk never stalls a request and requests never wake a thread; if the
//! buffer is full the line is dropped and counted in the diagnostic log. Each line
//! is serialised outside the buffer's lock, into a per-thread scratch buffer.
//! [`AuditLog::reopen`] (wired to SIGHUP) reopens the file, so logrotate can move it
//! away.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::error::StartupError;

/// Bytes waiting for the writer before new lines are dropped.
const QUEUE_BYTES: usize = 32 << 20;

/// How often the writer wakes to write what has queued up. Waking per line would
/// cost every request a context switch.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// One audit line.
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    pub time: String,
    pub request_id: &'a str,
    pub client: &'a str,
    pub user: Option<&'a str>,
    pub effective_user: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub action: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    /// `allowed`, `denied` or `error`.
    pub outcome: &'static str,
    pub reason: Option<String>,
}

/// What requests and the writer thread share.
struct Shared {
    /// Complete lines, newline-terminated.
    queue: Mutex<Vec<u8>>,
    reopen: AtomicBool,
    closed: AtomicBool,
    dropped: AtomicU64,
}

/// Wakes the writer for a last flush when the last [`AuditLog`] goes away.
struct Handle {
    shared: Arc<Shared>,
    writer: std::thread::Thread,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.writer.unpark();
    }
}

/// Handle to the audit writer; cheap to share.
#[derive(Clone)]
pub struct AuditLog {
    handle: Arc<Handle>,
}

impl AuditLog {
    /// Opens (appending) or creates the file and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self, StartupError> {
        let file = open_append(path)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            reopen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let path = path.to_path_buf();
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer(path, file, for_writer))
            .map_err(|e| StartupError::Other(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                writer: writer.thread().clone(),
            }),
        })
    }

    /// Queues one event.
    pub fn record(&self, event: &AuditEvent<'_>) {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
        }
        let full = LINE.with_borrow_mut(|line| {
            line.clear();
            if let Err(error) = serde_json::to_writer(&mut *line, event) {
                tracing::error!(%error, "cannot serialise an audit event");
                return false;
            }
            line.push(b'\n');
            let mut queue = self.handle.shared.queue.lock().expect("audit queue lock");
            if queue.len() + line.len() > QUEUE_BYTES {
                return true;
            }
            queue.extend_from_slice(line);
            false
        });
        if !full {
            return;
        }
        let shared = &self.handle.shared;
        let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::error!(dropped = n, "audit queue full: audit lines dropped");
        }
    }

    /// Closes and reopens the file (after logrotate moved it).
    pub fn reopen(&self) {
        self.handle.shared.reopen.store(true, Ordering::Release);
        self.handle.writer.unpark();
    }
}

fn open_append(path: &Path) -> Result<File, StartupError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::Io {
            what: "audit log directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| StartupError::Io {
            what: "audit log",
            path: path.to_path_buf(),
            source,
        })
}

/// Every `FLUSH_INTERVAL` (or when woken to reopen or close): reopens the file if
/// asked, writes what queued up, then flushes.
fn writer(path: PathBuf, file: File, shared: Arc<Shared>) {
    let mut out = BufWriter::new(file);
    let mut batch = Vec::new();
    loop {
        std::thread::park_timeout(FLUSH_INTERVAL);
        let closed = shared.closed.load(Ordering::Acquire);
        // Reopen first: lines still queued then go to the new file, none is lost.
        if shared.reopen.swap(false, Ordering::AcqRel) {
            let _ = out.flush();
            match open_append(&path) {
                Ok(file) => out = BufWriter::new(file),
                Err(error) => {
                    tracing::error!(%error, "cannot reopen the audit log; keeping the old file")
                }
            }
        }
        std::mem::swap(
            &mut batch,
            &mut *shared.queue.lock().expect("audit queue lock"),
        );
        if let Err(error) = out.write_all(&batch) {
            tracing::error!(%error, file = %path.display(), "cannot write the audit log");
        }
        batch.clear();
        if let Err(error) = out.flush() {
            tracing::error!(%error, file = %path.display(), "cannot flush the audit log");
        }
        if closed {
            return;
        }
    }
}

/// The current time as RFC 3339 with milliseconds, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> AuditEvent<'_> {
        AuditEvent {
            time: now_rfc3339(),
            request_id: id,
            client: "127.0.0.1",
            user: Some("alice"),
            effective_user: Some("alice"),
            method: "GET",
            path: "/gateway/default/livy/v1/batches",
            action: Some("batch.list"),
            resource: None,
            status: 200,
            upstream_status: Some(200),
            outcome: "allowed",
            reason: None,
        }
    }

    fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
        for _ in 0..500 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("audit lines did not appear in {}", path.display());
    }

    #[test]
    fn lines_are_json_and_reopen_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path).unwrap();
        log.record(&event("r1"));
        let lines = wait_for_lines(&path, 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["outcome"], "allowed");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));

        // logrotate: move the file away, then SIGHUP → reopen.
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        log.reopen();
        log.record(&event("r2"));
        let lines = wait_for_lines(&path, 1);
        assert!(lines[0].contains("\"r2\""));
        let old = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        assert_eq!(old.lines().count(), 1);
    }
}
