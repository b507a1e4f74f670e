//! Simulated spark-submit logs: lines shaped like the seed document's, generated on
//! demand from their index so that a batch with millions of lines costs no memory,
//! and a response body that streams a slice of them as Livy's log JSON.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// Number of lines the fixed spark-submit script has; longer logs repeat progress
/// report lines in its middle.
const SCRIPT_LEN: usize = 32;

/// Line `index` (0-based) of the log of application `app_id`, out of `total` lines.
pub fn line(app_id: &str, index: usize, total: usize) -> String {
    let head = [
        "WARN NativeCodeLoader: Unable to load native-hadoop library for your platform... using builtin-java classes where applicable".to_string(),
        "WARN DomainSocketFactory: The short-circuit local reads feature cannot be used because libhadoop cannot be loaded.".to_string(),
        "INFO RMProxy: Connecting to ResourceManager at livy-sim-rm/127.0.0.1:8050".to_string(),
        "INFO Client: Requesting a new application from cluster with 1 NodeManagers".to_string(),
        "INFO Client: Verifying our application has not requested more than the maximum memory capability of the cluster (12288 MB per container)".to_string(),
        "INFO Client: Will allocate AM container, with 1408 MB memory including 384 MB overhead".to_string(),
        "INFO Client: Setting up container launch context for our AM".to_string(),
        "INFO Client: Setting up the launch environment for our AM container".to_string(),
        "INFO Client: Preparing resources for our AM container".to_string(),
        format!("INFO Client: Submitting application {app_id} to ResourceManager"),
        format!("INFO YarnClientImpl: Submitted application {app_id}"),
    ];
    let tail = [
        "\t client token: N/A".to_string(),
        "\t diagnostics: Application is Activated, waiting for resources to be assigned for AM."
            .to_string(),
        "\t ApplicationMaster host: N/A".to_string(),
        "\t ApplicationMaster RPC port: -1".to_string(),
        "\t queue: default".to_string(),
        "\t start time: 1492198334826".to_string(),
        "\t final status: UNDEFINED".to_string(),
        format!("\t tracking URL: http://livy-sim-rm:8088/proxy/{app_id}/"),
        "INFO ShutdownHookManager: Shutdown hook called".to_string(),
        "INFO ShutdownHookManager: Deleting directory /tmp/spark-livy-sim".to_string(),
    ];
    let stamp = "17/04/14 19:32:14";
    if index < head.len() {
        format!("{stamp} {}", head[index])
    } else if index + tail.len() >= total.max(SCRIPT_LEN) && total >= head.len() + tail.len() {
        let t = index + tail.len() - total.max(SCRIPT_LEN);
        let text = &tail[t.min(tail.len() - 1)];
        if text.starts_with('\t') {
            text.clone()
        } else {
            format!("{stamp} {text}")
        }
    } else {
        format!("{stamp} INFO Client: Application report for {app_id} (state: RUNNING) [{index}]")
    }
}

/// The `[from, from+size)` window Livy's log endpoint returns: `size` defaults to
/// 100 and a negative size means all; without `from`, the last `size` lines.
pub fn window(total: usize, from: Option<i64>, size: Option<i64>) -> (usize, usize) {
    let size = match size {
        Some(s) if s < 0 => total,
        Some(s) => s as usize,
        None => 100,
    };
    let from = match from {
        Some(f) => f.max(0) as usize,
        None => total.saturating_sub(size),
    };
    let from = from.min(total);
    let end = from.saturating_add(size).min(total);
    (from, end)
}

/// Streams `{"id":…,"from":…,"total":…,"log":[…]}` for lines `[from, end)` in chunks.
pub struct LogBody {
    app_id: String,
    id: u64,
    from: usize,
    end: usize,
    total: usize,
    next: usize,
    state: Part,
}

#[derive(PartialEq, Eq)]
enum Part {
    Head,
    Lines,
    Done,
}

impl LogBody {
    pub fn new(id: u64, app_id: String, from: usize, end: usize, total: usize) -> Self {
        Self {
            app_id,
            id,
            from,
            end,
            total,
            next: from,
            state: Part::Head,
        }
    }
}

/// Bytes per streamed chunk.
const CHUNK: usize = 64 * 1024;

impl Body for LogBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let chunk = match this.state {
            Part::Done => return Poll::Ready(None),
            Part::Head => {
                this.state = Part::Lines;
                Bytes::from(format!(
                    "{{\"id\":{},\"from\":{},\"total\":{},\"log\":[",
                    this.id, this.from, this.total
                ))
            }
            Part::Lines => {
                let mut buf = BytesMut::with_capacity(CHUNK + 512);
                while this.next < this.end && buf.len() < CHUNK {
                    if this.next > this.from {
                        buf.extend_from_slice(b",");
                    }
                    let text = line(&this.app_id, this.next, this.total);
                    buf.extend_from_slice(serde_json::Value::from(text).to_string().as_bytes());
                    this.next += 1;
                }
                if this.next >= this.end {
                    buf.extend_from_slice(b"]}");
                    this.state = Part::Done;
                }
                buf.freeze()
            }
        };
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.state == Part::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn window_follows_livy_defaults() {
        assert_eq!(window(32, None, None), (0, 32));
        assert_eq!(window(500, None, None), (400, 500));
        assert_eq!(window(500, Some(0), None), (0, 100));
        assert_eq!(window(500, Some(10), Some(5)), (10, 15));
        assert_eq!(window(500, Some(10), Some(-1)), (10, 500));
        assert_eq!(window(500, None, Some(-1)), (0, 500));
        assert_eq!(window(32, Some(40), None), (32, 32));
        assert_eq!(window(32, None, Some(10)), (22, 32));
    }

    #[tokio::test]
    async fn body_is_the_json_livy_sends() {
        let bytes = LogBody::new(7, "application_1_0007".into(), 2, 40, 40)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["from"], 2);
        assert_eq!(v["total"], 40);
        assert_eq!(v["log"].as_array().unwrap().len(), 38);
        assert!(v["log"][39 - 2]
            .as_str()
            .unwrap()
            .contains("Deleting directory"));
        let empty = LogBody::new(1, "a".into(), 5, 5, 5)
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(v["log"], serde_json::json!([]));
    }
}
