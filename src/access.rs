//! The access log: one line per request (request id, client, method, path, status,
//! user, Livy action, how the caller was identified, failure, total and Livy's
//! time), in the log's format (`text` or `json`, as the rest of the log), to standard
//! error with the rest of the log or to `log.access_path`.
//!
//! The line is written off the request's path: formatted here, by hand, into a
//! per-thread buffer (no formatter machinery, no allocation per line), then handed
//! to a [`LineWriter`] thread that writes what has queued up in batches; a disk
//! that cannot keep up sheds lines (counted) rather than stalling requests, and a
//! graceful shutdown writes out every queued line. Lines are written when the log
//! filter enables `info` for the target `livy_gateway::access` (`log.level`,
//! `RUST_LOG`), as before.

use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;

use crate::audit::{json_key, json_opt_str, json_str, write_rfc3339};
use crate::config::{LogConfig, LogFormat};
use crate::error::StartupError;
use crate::linewriter::{LineWriter, Target};

/// The target access lines are filtered by.
pub const TARGET: &str = "livy_gateway::access";

/// Bytes waiting for the writer before new lines are dropped.
const QUEUE_BYTES: usize = 16 << 20;

/// One request, as the access log tells it.
pub struct AccessLine<'a> {
    pub time: SystemTime,
    pub request_id: &'a str,
    pub client: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub user: Option<&'a str>,
    pub action: Option<&'a str>,
    /// How the caller was identified: `password`, `cached`, `session`.
    pub auth: Option<&'a str>,
    /// Whether the request carried the gateway's session cookie.
    pub session_cookie: bool,
    pub auth_failure: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The whole request, as `duration_ms`.
    pub duration: Duration,
    /// Waiting for Livy's answer, as `upstream_ms`.
    pub upstream: Option<Duration>,
}

impl AccessLine<'_> {
    /// As one JSON object (no newline), the keys the rest of the JSON log uses.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        write_rfc3339(out, self.time);
        out.extend_from_slice(
            b"\",\"level\":\"INFO\",\"message\":\"request\",\"target\":\"livy_gateway::access\"",
        );
        for (key, value) in [
            ("request_id", Some(self.request_id)),
            ("client", Some(self.client)),
            ("method", Some(self.method)),
            ("path", Some(self.path)),
        ] {
            json_key(out, key);
            json_opt_str(out, value);
        }
        json_key(out, "status");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        json_key(out, "user");
        json_str(out, self.user.unwrap_or("-"));
        for (key, value) in [
            ("action", self.action),
            ("auth", self.auth),
            ("auth_failure", self.auth_failure),
            ("error", self.error),
        ] {
            if let Some(value) = value {
                json_key(out, key);
                json_str(out, value);
            }
        }
        json_key(out, "session_cookie");
        out.extend_from_slice(if self.session_cookie {
            b"true"
        } else {
            b"false"
        });
        json_key(out, "duration_ms");
        write_ms(out, self.duration);
        if let Some(time) = self.upstream {
            json_key(out, "upstream_ms");
            write_ms(out, time);
        }
        out.push(b'}');
    }

    /// As one text line (no newline), shaped like the rest of the text log:
    /// `<time>  INFO livy_gateway::access: request key=value …`, strings quoted.
    fn write_text(&self, out: &mut Vec<u8>) {
        write_rfc3339(out, self.time);
        out.extend_from_slice(b"  INFO livy_gateway::access: request request_id=");
        out.extend_from_slice(self.request_id.as_bytes());
        out.extend_from_slice(b" client=");
        out.extend_from_slice(self.client.as_bytes());
        out.extend_from_slice(b" method=");
        out.extend_from_slice(self.method.as_bytes());
        out.extend_from_slice(b" path=");
        json_str(out, self.path);
        out.extend_from_slice(b" status=");
        out.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
        out.extend_from_slice(b" user=");
        json_str(out, self.user.unwrap_or("-"));
        for (key, value) in [
            (&b" action="[..], self.action),
            (b" auth=", self.auth),
            (b" auth_failure=", self.auth_failure),
            (b" error=", self.error),
        ] {
            if let Some(value) = value {
                out.extend_from_slice(key);
                json_str(out, value);
            }
        }
        out.extend_from_slice(if self.session_cookie {
            b" session_cookie=true"
        } else {
            b" session_cookie=false"
        });
        out.extend_from_slice(b" duration_ms=");
        write_ms(out, self.duration);
        if let Some(time) = self.upstream {
            out.extend_from_slice(b" upstream_ms=");
            write_ms(out, time);
        }
    }
}

/// `time` in milliseconds to the microsecond (`12.345`), by integer arithmetic:
/// formatting a float costs more than the rest of the line.
fn write_ms(out: &mut Vec<u8>, time: Duration) {
    let micros = time.as_micros();
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let fraction = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

/// The access log's writer.
#[derive(Clone)]
pub struct AccessLog {
    writer: LineWriter,
    format: LogFormat,
}

impl AccessLog {
    /// Starts the writer for `config`'s destination and format; lines dropped for
    /// a full queue are counted in `dropped`.
    pub fn open(config: &LogConfig, dropped: Counter) -> Result<Self, StartupError> {
        let target = match &config.access_path {
            Some(path) => Target::File(path.clone()),
            None => Target::Stderr,
        };
        Ok(Self {
            writer: LineWriter::open("access log", target, QUEUE_BYTES, dropped)?,
            format: config.format,
        })
    }

    /// Whether access lines are wanted (the log filter enables them).
    pub fn enabled() -> bool {
        tracing::enabled!(target: TARGET, tracing::Level::INFO)
    }

    /// Queues one line.
    pub fn record(&self, line: &AccessLine<'_>) {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
        }
        LINE.with_borrow_mut(|buffer| {
            buffer.clear();
            match self.format {
                LogFormat::Json => line.write_json(buffer),
                LogFormat::Text => line.write_text(buffer),
            }
            buffer.push(b'\n');
            self.writer.write(buffer);
        });
    }

    /// Reopens the file (after logrotate moved it).
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
    use super::*;

    fn line<'a>(path: &'a str, user: Option<&'a str>) -> AccessLine<'a> {
        AccessLine {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
            request_id: "0123456789abcdef",
            client: "127.0.0.1",
            method: "GET",
            path,
            status: 401,
            user,
            action: None,
            auth: None,
            session_cookie: true,
            auth_failure: Some("unknown_session"),
            error: Some("unauthorized"),
            duration: Duration::from_micros(1_500),
            upstream: None,
        }
    }

    #[test]
    fn json_lines_carry_the_log_s_keys_and_escape_client_text() {
        let mut out = Vec::new();
        line("/gateway/\"x\"\n", None).write_json(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["target"], TARGET);
        assert_eq!(v["message"], "request");
        assert_eq!(v["path"], "/gateway/\"x\"\n");
        assert_eq!(v["user"], "-");
        assert_eq!(v["status"], 401);
        assert_eq!(v["session_cookie"], true);
        assert_eq!(v["auth_failure"], "unknown_session");
        assert!(v.get("action").is_none(), "absent fields are left out");
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["timestamp"], "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn text_lines_are_one_line_whatever_the_client_sent() {
        let mut out = Vec::new();
        line("/a b\n\"c\"", Some("alice")).write_text(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\n'));
        assert!(text.starts_with("2026-11-18T11:06:40.123Z  INFO livy_gateway::access: request request_id=0123456789abcdef"));
        assert!(text.contains(r#" path="/a b\n\"c\"""#), "{text}");
        assert!(text.contains(r#" user="alice""#));
        assert!(
            text.ends_with(" session_cookie=true duration_ms=1.500"),
            "{text}"
        );
    }

    #[test]
    fn times_are_milliseconds_to_the_microsecond() {
        for (micros, text) in [
            (0, "0.000"),
            (7, "0.007"),
            (1_050, "1.050"),
            (123_456_789, "123456.789"),
        ] {
            let mut out = Vec::new();
            write_ms(&mut out, Duration::from_nanos(micros * 1000 + 999));
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
    }
}
