//! The audit log: one JSON line per request, to a file, for security review.
//!
//! Each line says who asked (user, client address), as whom it ran (effective user),
//! what it was (method, path, Livy action, resource id), what Livy answered and
//! whether the gateway allowed, denied or failed it, with the reason for a denial
//! and what granted the caller's roles (an administrators' group, an allowed group).
//! Secrets never appear: no passwords, Authorization values, cookies or bodies.
//!
//! Lines go out through a [`LineWriter`] (a bounded queue and a writer thread of
//! its own), so a slow disk never stalls a request; if the queue is full the line is
//! dropped and counted. Each line is serialised outside the queue's lock, into a
//! per-thread scratch buffer, by [`AuditEvent::write_json`]: the line's shape is
//! fixed, so its keys are written as literals and only values that need escaping go
//! through `serde_json` (the output is byte for byte what `serde_json` makes of the
//! event; a test holds it to that). [`AuditLog::reopen`] (wired to SIGHUP) reopens
//! the file, so logrotate can move it away.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use crate::error::StartupError;
use crate::linewriter::{LineWriter, Target};

/// One audit line. (`Serialize` is the reference for [`AuditEvent::write_json`].)
#[derive(Debug, Serialize)]
pub struct AuditEvent<'a> {
    /// Written as RFC 3339 with milliseconds, UTC.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub request_id: &'a str,
    pub client: &'a str,
    pub user: Option<&'a str>,
    /// How the caller was identified: `password`, `cached`, `negotiate`, `jwt`,
    /// `token`, `oidc` or `session`.
    pub auth: Option<&'a str>,
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
    /// What made the caller an administrator or let them in (a group, the admins
    /// list), when anything but the login did.
    pub grants: Option<&'a str>,
    /// The token the request was proved with (a gateway token's id, a JWT's
    /// `jti`): never the token itself.
    pub token: Option<&'a str>,
}

impl AuditEvent<'_> {
    /// Appends the event as one JSON object (no newline): the same bytes
    /// `serde_json::to_writer` writes, at a fraction of the cost on the request path.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        write_rfc3339(out, self.time);
        out.push(b'"');
        let texts = [
            ("request_id", Some(self.request_id)),
            ("client", Some(self.client)),
            ("user", self.user),
            ("auth", self.auth),
            ("effective_user", self.effective_user),
            ("method", Some(self.method)),
            ("path", Some(self.path)),
            ("action", self.action),
            ("resource", self.resource),
        ];
        for (name, value) in texts {
            json_key(out, name);
            json_opt_str(out, value);
        }
        json_key(out, "status");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        json_key(out, "upstream_status");
        match self.upstream_status {
            Some(status) => out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        json_key(out, "outcome");
        json_str(out, self.outcome);
        json_key(out, "reason");
        json_opt_str(out, self.reason.as_deref());
        json_key(out, "grants");
        json_opt_str(out, self.grants);
        json_key(out, "token");
        json_opt_str(out, self.token);
        out.push(b'}');
    }
}

/// `,"name":` for a key that needs no escaping.
pub(crate) fn json_key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A JSON string. Text with nothing to escape (the usual case) is copied as is;
/// anything else is left to `serde_json`, which escapes exactly `"`, `\\` and
/// control characters.
pub(crate) fn json_str(out: &mut Vec<u8>, value: &str) {
    // A fold rather than `any`: without the early exit the check vectorises.
    let plain = !value.bytes().fold(false, |dirty, b| {
        dirty | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, value).expect("writing to a Vec cannot fail");
    }
}

pub(crate) fn json_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => json_str(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// `time` as RFC 3339 with milliseconds, UTC, as `humantime` writes it. The text up
/// to the seconds is made once per second (per thread) and reused.
pub(crate) fn write_rfc3339(out: &mut Vec<u8>, time: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let Ok(since_epoch) = time.duration_since(SystemTime::UNIX_EPOCH) else {
        write!(out, "{}", humantime::format_rfc3339_millis(time)).expect("writing to a Vec");
        return;
    };
    let seconds = since_epoch.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != seconds {
        // `YYYY-MM-DDTHH:MM:SSZ`: keep all but the `Z`.
        let whole = humantime::format_rfc3339_seconds(time).to_string();
        match whole
            .as_bytes()
            .get(..19)
            .and_then(|p| <[u8; 19]>::try_from(p).ok())
        {
            Some(p) => prefix = p,
            None => {
                // Years past 9999: not worth a cache.
                write!(out, "{}", humantime::format_rfc3339_millis(time))
                    .expect("writing to a Vec");
                return;
            }
        }
        SECOND.set((seconds, prefix));
    }
    let millis = since_epoch.subsec_millis();
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

/// Bytes waiting for the writer before new lines are dropped.
const QUEUE_BYTES: usize = 32 << 20;

/// Handle to the audit writer; cheap to share.
#[derive(Clone)]
pub struct AuditLog {
    writer: LineWriter,
}

impl AuditLog {
    /// Opens (appending) or creates the file and starts the writer thread; lines
    /// dropped for a full queue are counted in `dropped`.
    pub fn open(path: &Path, dropped: Counter) -> Result<Self, StartupError> {
        let target = Target::File(path.to_path_buf());
        Ok(Self {
            writer: LineWriter::open("audit log", target, QUEUE_BYTES, dropped)?,
        })
    }

    /// Queues one event.
    pub fn record(&self, event: &AuditEvent<'_>) {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            event.write_json(line);
            line.push(b'\n');
            self.writer.write(line);
        });
    }

    /// Closes and reopens the file (after logrotate moved it).
    pub fn reopen(&self) {
        self.writer.reopen();
    }

    /// Writes out every queued line and stops the writer (graceful shutdown).
    pub fn finish(&self) {
        self.writer.finish();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(id: &str) -> AuditEvent<'_> {
        AuditEvent {
            time: SystemTime::now(),
            request_id: id,
            client: "127.0.0.1",
            auth: None,
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
            grants: None,
            token: None,
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
    fn lines_are_what_serde_json_writes() {
        let awkward = [
            "plain",
            "",
            "quote \" and backslash \\",
            "control \u{0} \u{1f} \n \t \u{7f}",
            "ünïcödé ✓ \u{10ffff}",
            "</script>",
        ];
        for text in awkward {
            let mut event = event(text);
            event.user = Some(text);
            event.effective_user = None;
            event.path = text;
            event.resource = Some(text);
            event.reason = Some(format!("denied: {text}"));
            event.grants = Some(text);
            event.token = Some(text);
            event.upstream_status = None;
            let mut line = Vec::new();
            event.write_json(&mut line);
            assert_eq!(
                String::from_utf8(line).unwrap(),
                serde_json::to_string(&event).unwrap(),
                "{text:?}"
            );
        }
        let plain = event("r1");
        let mut line = Vec::new();
        plain.write_json(&mut line);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }

    #[test]
    fn times_match_humantime_within_and_across_seconds() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let offsets_ms = [
            0, 1, 9, 10, 99, 100, 999, 1_000, 1_001, 59_999, 86_400_123, 5,
        ];
        for ms in offsets_ms {
            let time = base + Duration::from_millis(ms) + Duration::from_nanos(999_999);
            let mut out = Vec::new();
            write_rfc3339(&mut out, time);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                humantime::format_rfc3339_millis(time).to_string(),
                "{ms} ms"
            );
        }
    }

    #[test]
    fn lines_are_json_and_reopen_follows_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, Counter::default()).unwrap();
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
