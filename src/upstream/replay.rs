//! A request body the gateway may have to send more than once, and only where
//! that is safe: to the server a passive Livy redirects to, or again with fresh
//! credentials after Livy refused the remembered ones. In both cases Livy has
//! acted on nothing.
//!
//! With several Livy servers a body is kept in memory up to a cap (the create-body
//! limit); a longer one streams, once. A body that could not be sent at all (no
//! connection) comes back from the pool and goes to the next server either way.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::body::{self, Body, BoxError};

/// A request body, kept for another sending or not.
pub enum Replay {
    /// Read whole: can be sent any number of times.
    Kept(Bytes),
    /// Streams once; `None` once taken (and not handed back).
    Once(Option<Body>),
}

impl Replay {
    /// A body that is sent once, as it streams.
    pub fn once(body: Body) -> Self {
        match body.is_end_stream() {
            true => Replay::Kept(Bytes::new()),
            false => Replay::Once(Some(body)),
        }
    }

    /// Reads `body` whole when it is at most `cap` bytes; a longer one keeps
    /// streaming after what was read of it.
    pub async fn keep(mut body: Body, cap: usize) -> Result<Self, BoxError> {
        if body.is_end_stream() {
            return Ok(Replay::Kept(Bytes::new()));
        }
        if body.size_hint().lower() > cap as u64 {
            return Ok(Replay::Once(Some(body)));
        }
        let mut kept = BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                kept.extend_from_slice(&data);
                if kept.len() > cap {
                    let read = Prefixed {
                        first: Some(kept.freeze()),
                        rest: body,
                    };
                    return Ok(Replay::Once(Some(body::boxed(read))));
                }
            }
        }
        Ok(Replay::Kept(kept.freeze()))
    }

    /// Whether it can be sent again after being sent once.
    pub fn resendable(&self) -> bool {
        matches!(self, Replay::Kept(_))
    }

    /// The body to send now.
    pub fn take(&mut self) -> Body {
        match self {
            Replay::Kept(bytes) if bytes.is_empty() => body::empty(),
            Replay::Kept(bytes) => body::full(bytes.clone()),
            Replay::Once(body) => body.take().unwrap_or_else(body::empty),
        }
    }

    /// A body that was not sent after all, for the next attempt.
    pub fn give_back(&mut self, unsent: Body) {
        if let Replay::Once(slot) = self {
            *slot = Some(unsent);
        }
    }
}

/// What was read of a body, then the rest of it.
struct Prefixed {
    first: Option<Bytes>,
    rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |b| b.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A body in several frames, of unknown length.
    struct Chunks(VecDeque<Bytes>);

    impl http_body::Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunked(parts: &[&'static str]) -> Body {
        body::boxed(Chunks(
            parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        ))
    }

    async fn text(body: Body) -> String {
        String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_body_under_the_cap_is_sent_as_often_as_needed() {
        let mut replay = Replay::keep(chunked(&["ab", "cd"]), 4).await.unwrap();
        assert!(replay.resendable());
        assert_eq!(text(replay.take()).await, "abcd");
        assert_eq!(text(replay.take()).await, "abcd");
    }

    #[tokio::test]
    async fn a_longer_body_streams_once_whole() {
        let mut replay = Replay::keep(chunked(&["ab", "cd", "ef"]), 3).await.unwrap();
        assert!(!replay.resendable());
        assert_eq!(text(replay.take()).await, "abcdef");
        assert_eq!(text(replay.take()).await, "");
    }

    #[tokio::test]
    async fn a_body_not_sent_comes_back() {
        let mut replay = Replay::once(chunked(&["ab"]));
        let body = replay.take();
        replay.give_back(body);
        assert_eq!(text(replay.take()).await, "ab");
    }
}
