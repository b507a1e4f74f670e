//! Process-wide diagnostics: installs the `tracing` subscriber in the configured
//! format (text or JSON) and level, tags every line written while serving a request
//! with its id, and keeps what clients can make the gateway write bounded. (Access
//! lines have a writer of their own: [`crate::access`].)
//!
//! The request id comes from a task-local value set by [`in_request`] rather than
//! a `tracing` span: a span costs every request its bookkeeping on each poll (a
//! tenth of the proxy's time in the benchmark) for the few requests that log
//! anything, while the task-local costs a swap per poll and is read only when a
//! line is written. Text lines end in ` request_id=…`; JSON lines get a
//! `"request_id"` key. Colours (on a terminal only) are left off lines that carry
//! one.
//!
//! Unauthenticated traffic must not be able to fill the disk: text that comes from
//! a client (paths, parameter names) is [`clip`]ped in every line, and warnings and
//! errors are rate-limited per call site (and, for lines bridged from the `log`
//! crate, such as rustls's, per target): [`PER_WINDOW`] each per [`WINDOW`], the
//! rest counted and reported in one line by [`report_suppressed`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderValue;
use tracing::callsite::Identifier;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Longest client-supplied text written into one log or audit field, in bytes.
pub const MAX_LOGGED_TEXT: usize = 1024;

/// Warnings (and errors) from one call site written per [`WINDOW`]; the rest are
/// counted.
pub const PER_WINDOW: u32 = 10;
/// The window [`PER_WINDOW`] applies to.
pub const WINDOW: Duration = Duration::from_secs(60);

/// `text` cut to at most [`MAX_LOGGED_TEXT`] bytes (on a character boundary),
/// marked with `…` when cut.
pub fn clip(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LOGGED_TEXT {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_LOGGED_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Installs the global subscriber, writing to standard error (in colour when that
/// is a terminal). `RUST_LOG`, when set, overrides the configured level. Calling it
/// twice is harmless (the second call does nothing).
pub fn init(config: &LogConfig) {
    install(config, std::io::stderr, std::io::stderr().is_terminal());
}

/// [`init`], writing to `writer` without colours (tests capture the log this way).
pub fn init_with_writer<W>(config: &LogConfig, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    install(config, writer, false);
}

fn install<W>(config: &LogConfig, writer: W, ansi: bool)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = subscriber(config, writer, ansi).try_init();
}

/// The subscriber [`init`] installs.
fn subscriber<W>(config: &LogConfig, writer: W, ansi: bool) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let limiter = limiter();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter);
    match config.format {
        LogFormat::Text => Box::new(
            registry.with(
                fmt.event_format(WithRequestId::text(format::format()))
                    .with_filter(limiter),
            ),
        ),
        LogFormat::Json => Box::new(
            registry.with(
                fmt.fmt_fields(JsonFields::new())
                    .event_format(WithRequestId::json(
                        format::format().json().flatten_event(true),
                    ))
                    .with_filter(limiter),
            ),
        ),
    }
}

tokio::task_local! {
    /// The id of the request the current task is serving.
    static REQUEST_ID: HeaderValue;
}

/// Runs `future` as the work of request `id`: every line it writes carries the id.
pub fn in_request<F: Future>(id: HeaderValue, future: F) -> impl Future<Output = F::Output> {
    REQUEST_ID.scope(id, future)
}

/// An event format that adds the current request's id (see [`in_request`]) to the
/// lines `inner` writes while a request is served.
struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<F> WithRequestId<F> {
    fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Ok(id) = REQUEST_ID.try_with(HeaderValue::clone) else {
            return self.inner.format_event(ctx, writer, event);
        };
        // Request ids are letters, digits and `-_.:` (checked when taken from a
        // client): nothing to escape in either format.
        let id = id.to_str().unwrap_or("-");
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        match line.strip_suffix('}').filter(|_| self.json) {
            Some(open) => writeln!(writer, "{open},\"request_id\":\"{id}\"}}"),
            None => writeln!(writer, "{line} request_id={id}"),
        }
    }
}

/// Writes one warning per call site whose warnings were suppressed since the last
/// report, saying how many. Called periodically.
pub fn report_suppressed() {
    for (target, suppressed) in limiter().take_suppressed() {
        tracing::warn!(
            target: "livy_gateway::log",
            from = %target,
            suppressed,
            "repeated warnings suppressed"
        );
    }
}

/// The process's warning limiter (one, shared by every subscriber installed).
fn limiter() -> &'static WarnLimiter {
    static LIMITER: OnceLock<WarnLimiter> = OnceLock::new();
    LIMITER.get_or_init(WarnLimiter::default)
}

/// How many warnings one call site wrote in its current window.
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// A per-layer filter that lets through at most [`PER_WINDOW`] warnings and errors
/// per call site and target per [`WINDOW`]. Everything less severe passes
/// untouched (and without a lookup: such call sites are always enabled).
#[derive(Default)]
pub struct WarnLimiter {
    windows: Mutex<HashMap<(Identifier, String), Window>>,
}

/// Distinct call sites and targets tracked; past it, finished windows are dropped.
const MAX_TRACKED: usize = 1024;

impl WarnLimiter {
    /// Whether the next warning from `key` may be written at `now`.
    fn allow(&self, site: Identifier, target: &str, now: Instant) -> bool {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, w| w.suppressed > 0 || now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry((site, target.to_owned())).or_insert(Window {
            started: now,
            written: 0,
            suppressed: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            window.started = now;
            window.written = 0;
        }
        if window.written < PER_WINDOW {
            window.written += 1;
            true
        } else {
            window.suppressed += 1;
            false
        }
    }

    /// Targets with suppressed warnings since the last call, and how many.
    fn take_suppressed(&self) -> Vec<(String, u64)> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        for ((_, target), window) in windows.iter_mut() {
            if window.suppressed > 0 {
                taken.push((target.clone(), std::mem::take(&mut window.suppressed)));
            }
        }
        taken
    }
}

impl<S> Filter<S> for &'static WarnLimiter {
    fn enabled(&self, _: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    // Counted here, once per event (`enabled` may be asked more than once for one
    // line, as it is for lines bridged from the `log` crate).
    fn event_enabled(&self, event: &tracing::Event<'_>, _: &Context<'_, S>) -> bool {
        if *event.metadata().level() > Level::WARN {
            return true;
        }
        // Lines from the `log` crate share one call site per level: their target
        // (the logger's module) tells them apart.
        let normalized = event.normalized_metadata();
        let target = normalized
            .as_ref()
            .map_or(event.metadata().target(), |m| m.target());
        self.allow(event.metadata().callsite(), target, Instant::now())
    }

    fn callsite_enabled(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Everything written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines written by `log` (run inside and outside a request) in `format`.
    fn lines_in(format: LogFormat) -> Vec<String> {
        let captured = Captured::default();
        let writer = captured.clone();
        let config = LogConfig {
            level: "info".into(),
            format,
            access_path: None,
        };
        let subscriber = subscriber(&config, move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                tracing::info!(n = 1, "before");
                in_request(HeaderValue::from_static("req-1.a:b_c"), async {
                    tokio::task::yield_now().await;
                    tracing::info!(n = 2, "inside");
                })
                .await;
                tracing::info!(n = 3, "after");
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn lines_written_for_a_request_carry_its_id() {
        let text = lines_in(LogFormat::Text);
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[1].ends_with("inside n=2 request_id=req-1.a:b_c"),
            "{text:?}"
        );
        assert!(!text[0].contains("request_id") && !text[2].contains("request_id"));

        let json: Vec<serde_json::Value> = lines_in(LogFormat::Json)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json[1]["message"], "inside");
        assert_eq!(json[1]["n"], 2);
        assert_eq!(json[1]["request_id"], "req-1.a:b_c");
        assert!(json[0].get("request_id").is_none() && json[2].get("request_id").is_none());
    }

    #[test]
    fn long_client_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("/short"), "/short");
        let long = "é".repeat(MAX_LOGGED_TEXT);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_LOGGED_TEXT + "…".len());
        assert!(clipped.ends_with('…'));
        assert!(clipped.trim_end_matches('…').chars().all(|c| c == 'é'));
    }

    // Not zero-sized: two statics must have two addresses (an identifier is one).
    struct Site(#[allow(dead_code)] u8);
    impl tracing::callsite::Callsite for Site {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unimplemented!("not needed: only the identity is used")
        }
    }
    static SITE_A: Site = Site(1);
    static SITE_B: Site = Site(2);

    #[test]
    fn warnings_are_limited_per_call_site_and_window() {
        let limiter = WarnLimiter::default();
        let a = Identifier(&SITE_A);
        let b = Identifier(&SITE_B);
        let hs = "rustls::server::hs";
        let start = Instant::now();
        let allowed = (0..100)
            .filter(|_| limiter.allow(a.clone(), hs, start))
            .count();
        assert_eq!(allowed, PER_WINDOW as usize);
        assert!(
            limiter.allow(b.clone(), hs, start),
            "another call site has its own"
        );
        assert!(
            limiter.allow(a.clone(), "rustls::other", start),
            "another target too"
        );
        assert_eq!(limiter.take_suppressed(), vec![(hs.to_string(), 90)]);
        assert!(limiter.take_suppressed().is_empty(), "reported once");
        assert!(!limiter.allow(a.clone(), hs, start + WINDOW / 2));
        assert!(limiter.allow(a, hs, start + WINDOW), "a new window");
    }
}
