//! Lines written to a file (or standard error) by a thread of their own, so that a
//! request never waits on a disk: the audit log and the access log.
//!
//! A request appends a complete line to a bounded buffer; the writer thread takes
//! whatever has queued up every [`FLUSH_INTERVAL`] and writes it in one go. When
//! the buffer is full (a disk slower than the requests) the line is dropped and
//! counted, never waited for. [`LineWriter::reopen`] (SIGHUP) reopens a file after
//! log rotation without losing a queued line; [`LineWriter::finish`] writes out
//! everything queued and stops the thread, for a graceful shutdown.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use crate::error::StartupError;

/// How often the writer wakes to write what has queued up. Waking per line would
/// cost every request a context switch.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Appended to this file (created if missing; reopened on SIGHUP).
    File(PathBuf),
    /// Standard error, as the rest of the log.
    Stderr,
}

/// What requests and the writer thread share.
struct Shared {
    /// Complete lines, newline-terminated.
    queue: Mutex<Vec<u8>>,
    /// Bytes waiting beyond which new lines are dropped.
    limit: usize,
    reopen: AtomicBool,
    closed: AtomicBool,
    dropped: AtomicU64,
    /// The metric dropped lines are counted in.
    dropped_metric: Counter,
}

/// Wakes the writer for a last write when the last [`LineWriter`] goes away.
struct Handle {
    /// For the log: which log this is.
    name: &'static str,
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    thread: std::thread::Thread,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// A handle to one writer thread; cheap to share.
#[derive(Clone)]
pub struct LineWriter {
    handle: Arc<Handle>,
}

impl LineWriter {
    /// Opens `target` and starts its writer thread, queuing at most `limit` bytes;
    /// lines dropped for want of room are counted in `dropped`.
    pub fn open(
        name: &'static str,
        target: Target,
        limit: usize,
        dropped: Counter,
    ) -> Result<Self, StartupError> {
        let out = Output::open(&target, name)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            limit,
            reopen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            dropped_metric: dropped,
        });
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name(format!("{name}-writer"))
            .spawn(move || write_queued(name, target, out, &for_writer))
            .map_err(|e| StartupError::Other(format!("cannot start the {name} writer: {e}")))?;
        Ok(Self {
            handle: Arc::new(Handle {
                name,
                shared,
                thread: writer.thread().clone(),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Queues `line` (one or more complete, newline-terminated lines), or drops and
    /// counts it when the queue is full.
    pub fn write(&self, line: &[u8]) {
        let shared = &self.handle.shared;
        {
            let mut queue = shared.queue.lock().expect("line queue lock");
            if queue.len() + line.len() <= shared.limit {
                queue.extend_from_slice(line);
                return;
            }
        }
        shared.dropped_metric.inc();
        let n = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::error!(
                log = self.handle.name,
                dropped = n,
                "log queue full: lines dropped"
            );
        }
    }

    /// Closes and reopens the file (after logrotate moved it).
    pub fn reopen(&self) {
        self.handle.shared.reopen.store(true, Ordering::Release);
        self.handle.thread.unpark();
    }

    /// Writes out everything queued and stops the writer thread, waiting for it.
    pub fn finish(&self) {
        self.handle.shared.closed.store(true, Ordering::Release);
        self.handle.thread.unpark();
        let writer = self.handle.writer.lock().expect("writer lock").take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Bytes queued now.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.handle.shared.queue.lock().unwrap().len()
    }
}

/// An open destination.
enum Output {
    File(BufWriter<File>),
    Stderr,
}

impl Output {
    fn open(target: &Target, name: &'static str) -> Result<Self, StartupError> {
        match target {
            Target::Stderr => Ok(Output::Stderr),
            Target::File(path) => Ok(Output::File(BufWriter::new(open_append(path, name)?))),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::File(file) => {
                file.write_all(bytes)?;
                file.flush()
            }
            // Under stderr's lock, so lines never interleave with the rest of the log.
            Output::Stderr => {
                let mut stderr = std::io::stderr().lock();
                stderr.write_all(bytes)?;
                stderr.flush()
            }
        }
    }
}

fn open_append(path: &Path, name: &'static str) -> Result<File, StartupError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::Io {
            what: "log directory",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| StartupError::Io {
            what: name,
            path: path.to_path_buf(),
            source,
        })
}

/// The writer thread: every `FLUSH_INTERVAL` (or when woken to reopen or close),
/// reopens the file if asked, then writes what queued up.
fn write_queued(name: &'static str, target: Target, mut out: Output, shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        std::thread::park_timeout(FLUSH_INTERVAL);
        let closed = shared.closed.load(Ordering::Acquire);
        // Reopen first: lines still queued then go to the new file, none is lost.
        if shared.reopen.swap(false, Ordering::AcqRel) {
            match Output::open(&target, name) {
                Ok(reopened) => out = reopened,
                Err(error) => {
                    tracing::error!(%error, log = name, "cannot reopen the log; keeping the old file")
                }
            }
        }
        std::mem::swap(
            &mut batch,
            &mut *shared.queue.lock().expect("line queue lock"),
        );
        if !batch.is_empty() {
            if let Err(error) = out.write_all(&batch) {
                tracing::error!(%error, log = name, "cannot write the log");
            }
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn lines_are_written_and_follow_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let log = LineWriter::open(
            "test log",
            Target::File(path.clone()),
            1 << 20,
            Counter::default(),
        )
        .unwrap();
        log.write(b"one\n");
        for _ in 0..500 {
            if read(&path) == "one\n" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(read(&path), "one\n");
        std::fs::rename(&path, dir.path().join("x.log.1")).unwrap();
        log.reopen();
        log.write(b"two\n");
        log.finish();
        assert_eq!(read(&path), "two\n");
        assert_eq!(read(&dir.path().join("x.log.1")), "one\n");
    }

    #[test]
    fn a_full_queue_sheds_and_counts_lines() {
        // A writer whose thread never takes the queue (a disk that does not keep up).
        let dropped = Counter::default();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            limit: 10,
            reopen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            dropped_metric: dropped.clone(),
        });
        let log = LineWriter {
            handle: Arc::new(Handle {
                name: "test log",
                shared,
                writer: Mutex::new(None),
                thread: std::thread::current(),
            }),
        };
        log.write(b"1234\n");
        log.write(b"5678\n");
        log.write(b"9999\n");
        assert_eq!(dropped.get(), 1);
        assert_eq!(log.queued(), 10);
        assert_eq!(&*log.handle.shared.queue.lock().unwrap(), b"1234\n5678\n");
    }
}
