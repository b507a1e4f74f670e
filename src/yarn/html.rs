//! Pages from the YARN web UIs, streamed through an HTML rewriter (`lol_html`)
//! that points their links at the gateway ([`Links::href`]): `href`, `src` and
//! `action` attributes. The page streams: each chunk that arrives is rewritten and
//! passed on (a long container log is never held whole), the rewriter keeping only
//! a tag split across chunks, bounded by [`MAX_PARSER_MEMORY`].

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, MemorySettings, OutputSink};

use super::links::{Links, Source};
use crate::body::{self, Body, BoxError};

/// What the rewriter may hold of a page at once (a tag split across chunks).
const MAX_PARSER_MEMORY: usize = 4 * 1024 * 1024;

/// `body`, an HTML page from `source`, with its links rewritten as it streams.
pub fn rewrite(body: Body, links: Arc<Links>, source: Source) -> Body {
    let out = Arc::new(Mutex::new(BytesMut::new()));
    let attribute = |selector: &'static str, name: &'static str| {
        let (links, source) = (links.clone(), source.clone());
        element!(selector, move |el| {
            if let Some(value) = el.get_attribute(name) {
                if let Some(rewritten) = links.href(&value, &source) {
                    el.set_attribute(name, &rewritten)?;
                }
            }
            Ok(())
        })
    };
    let settings = Settings {
        element_content_handlers: vec![
            attribute("[href]", "href"),
            attribute("[src]", "src"),
            attribute("form[action]", "action"),
        ],
        memory_settings: MemorySettings {
            max_allowed_memory_usage: MAX_PARSER_MEMORY,
            ..MemorySettings::new()
        },
        ..Settings::new_send()
    };
    let rewriter = HtmlRewriter::new(settings, Sink(out.clone()));
    body::boxed(Rewriting {
        inner: body,
        rewriter: Mutex::new(Some(rewriter)),
        out,
    })
}

/// Where the rewriter writes: a buffer the body drains after each chunk.
struct Sink(Arc<Mutex<BytesMut>>);

impl OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0.lock().expect("page buffer").extend_from_slice(chunk);
    }
}

/// The rewritten page.
struct Rewriting {
    inner: Body,
    /// `None` once the page has ended. In a mutex only so the body is `Sync`.
    rewriter: Mutex<Option<HtmlRewriter<'static, Sink>>>,
    out: Arc<Mutex<BytesMut>>,
}

impl Rewriting {
    fn drain(&self) -> Option<Bytes> {
        let mut out = self.out.lock().expect("page buffer");
        (!out.is_empty()).then(|| out.split().freeze())
    }
}

impl http_body::Body for Rewriting {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let mut rewriter = self.rewriter.lock().expect("rewriter");
                    if let Some(rewriter) = rewriter.as_mut() {
                        rewriter.write(&data)?;
                    }
                    drop(rewriter);
                    if let Some(bytes) = self.drain() {
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => {
                    let rewriter = self.rewriter.lock().expect("rewriter").take();
                    if let Some(rewriter) = rewriter {
                        rewriter.end()?;
                    }
                    return Poll::Ready(self.drain().map(|bytes| Ok(Frame::data(bytes))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && self.rewriter.lock().map_or(true, |r| r.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        // Rewritten links change the length.
        SizeHint::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostPattern, UpstreamUrl, YarnConfig};
    use http_body_util::BodyExt;

    fn links() -> Arc<Links> {
        let config = YarnConfig {
            resourcemanager: UpstreamUrl::parse("http://rm:8088").unwrap(),
            nodemanagers: vec![HostPattern::parse("*.cluster:8042").unwrap()],
        };
        Arc::new(Links::new(&config, "/gateway/default"))
    }

    async fn through(page: &'static str, source: Source) -> String {
        let body = rewrite(body::full(page), links(), source);
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn page_links_point_at_the_gateway() {
        let page = r#"<html><head><link rel="stylesheet" href="/proxy/application_1_1/static/app.css"><script src="http://rm:8088/proxy/application_1_1/static/app.js"></script></head>
<body><a href="/proxy/application_1_1/jobs/">Jobs</a> <a href='http://nm1.cluster:8042/node/containerlogs/container_1_1_01_000001/alice'>logs</a>
<a href="http://elsewhere:8042/node/x">other</a> <a href="/cluster/apps">apps</a> <a href="stages/">stages</a></body></html>"#;
        let out = through(page, Source::ResourceManager).await;
        assert!(
            out.contains(r#"href="/gateway/default/yarn/proxy/application_1_1/static/app.css""#),
            "{out}"
        );
        assert!(
            out.contains(r#"src="/gateway/default/yarn/proxy/application_1_1/static/app.js""#),
            "{out}"
        );
        assert!(
            out.contains(r#"href="/gateway/default/yarn/proxy/application_1_1/jobs/""#),
            "{out}"
        );
        assert!(out.contains("/gateway/default/yarn/nm/nm1.cluster:8042/node/containerlogs/container_1_1_01_000001/alice"), "{out}");
        assert!(
            out.contains(r#"href="http://elsewhere:8042/node/x""#),
            "{out}"
        );
        assert!(out.contains(r#"href="/cluster/apps""#), "{out}");
        assert!(out.contains(r#"href="stages/""#), "{out}");
    }

    #[tokio::test]
    async fn node_manager_pages_keep_their_own_root() {
        let page = r#"<a href="/node/containerlogs/c/alice/stderr/?start=-4096">stderr</a><pre>line &lt;1&gt;</pre>"#;
        let out = through(page, Source::NodeManager("nm1.cluster:8042".into())).await;
        assert_eq!(
            out,
            r#"<a href="/gateway/default/yarn/nm/nm1.cluster:8042/node/containerlogs/c/alice/stderr/?start=-4096">stderr</a><pre>line &lt;1&gt;</pre>"#
        );
    }
}
