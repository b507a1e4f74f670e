//! Pages from the YARN web UIs, streamed through an HTML rewriter (`lol_html`)
//! that points their links at the gateway ([`Links::href`]): `href`, `src` and
//! `action` attributes, and the root Spark's pages give their scripts
//! (`setUIRoot('/proxy/<application>')`), which the scripts build links and REST
//! calls from. The page streams: each chunk that arrives is rewritten and passed
//! on (a long container log is never held whole), the rewriter keeping only a tag
//! split across chunks, bounded by [`MAX_PARSER_MEMORY`], and an inline script up
//! to [`MAX_HELD_SCRIPT`].

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use lol_html::send::{HtmlRewriter, Settings};
use lol_html::{element, text, MemorySettings, OutputSink};

use super::links::{Links, Source};
use crate::body::{self, Body, BoxError};

/// What the rewriter may hold of a page at once (a tag split across chunks).
const MAX_PARSER_MEMORY: usize = 4 * 1024 * 1024;

/// The longest inline script held whole to look for Spark's `setUIRoot` call in
/// (Spark's is one line); a longer one streams unchanged.
const MAX_HELD_SCRIPT: usize = 64 * 1024;

/// How Spark's pages tell their scripts where the UI is served from.
const UI_ROOT_CALL: &str = "setUIRoot('";

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
    // An inline script arrives in pieces: held until it ends, then written out
    // whole, its UI root pointed at the gateway.
    let (mut held, mut passing) = (String::new(), false);
    let (script_links, script_source) = (links.clone(), source.clone());
    let ui_root = text!("script", move |chunk| {
        if passing {
            passing = !chunk.last_in_text_node();
            return Ok(());
        }
        held.push_str(chunk.as_str());
        if chunk.last_in_text_node() {
            let script = std::mem::take(&mut held);
            chunk.set_str(with_ui_root(&script, &script_links, &script_source).unwrap_or(script));
        } else if held.len() > MAX_HELD_SCRIPT {
            chunk.set_str(std::mem::take(&mut held));
            passing = true;
        } else {
            chunk.remove();
        }
        Ok(())
    });
    let settings = Settings {
        element_content_handlers: vec![
            attribute("[href]", "href"),
            attribute("[src]", "src"),
            attribute("form[action]", "action"),
            ui_root,
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

/// `script` with the root in its `setUIRoot('…')` call made the gateway's, when
/// that root is a page the gateway serves (`/proxy/<application>` from the
/// ResourceManager); `None`: unchanged.
fn with_ui_root(script: &str, links: &Links, source: &Source) -> Option<String> {
    let start = script.find(UI_ROOT_CALL)? + UI_ROOT_CALL.len();
    let end = start + script[start..].find('\'')?;
    let root = links.href(&script[start..end], source)?;
    Some(format!("{}{root}{}", &script[..start], &script[end..]))
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
            historyserver: None,
        };
        Arc::new(Links::new(&config, "/gateway/default"))
    }

    async fn through(page: &'static str, source: Source) -> String {
        in_pieces(vec![page.to_owned()], source).await
    }

    /// `pieces` as the chunks of one page, rewritten.
    async fn in_pieces(pieces: Vec<String>, source: Source) -> String {
        let frames = pieces
            .into_iter()
            .map(|piece| Ok::<_, BoxError>(Frame::data(Bytes::from(piece))));
        let page = body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )));
        let body = rewrite(page, links(), source);
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_ui_root_spark_gives_its_scripts_is_the_gateways() {
        let page = "<head><script src=\"/proxy/application_1_1/static/webui.js\"></script>\
            <script nonce=\"n1\">setUIRoot('/proxy/application_1_1')</script>\
            <script>var x = '/proxy/application_1_1/a' < 2;</script></head>";
        // Split inside the call, as a page may arrive.
        let at = page.find("_1_1')").unwrap();
        let pieces = vec![page[..at].to_owned(), page[at..].to_owned()];
        let out = in_pieces(pieces, Source::ResourceManager).await;
        assert!(
            out.contains(r#"<script nonce="n1">setUIRoot('/gateway/default/yarn/proxy/application_1_1')</script>"#),
            "{out}"
        );
        // Other scripts are left as they were.
        assert!(
            out.contains("<script>var x = '/proxy/application_1_1/a' < 2;</script>"),
            "{out}"
        );
        // A NodeManager's page has no such root to give.
        let out = through(
            "<script>setUIRoot('/proxy/application_1_1')</script>",
            Source::NodeManager("nm1.cluster:8042".into()),
        )
        .await;
        assert_eq!(out, "<script>setUIRoot('/proxy/application_1_1')</script>");

        // A script longer than what is held streams through unchanged, whole.
        let long = format!(
            "<script>setUIRoot('/proxy/application_1_1'); /*{}*/</script><p>after</p>",
            "x".repeat(MAX_HELD_SCRIPT * 2)
        );
        let pieces = long
            .as_bytes()
            .chunks(8192)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(in_pieces(pieces, Source::ResourceManager).await, long);
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
