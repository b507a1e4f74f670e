//! Health checks of several Livy servers: every `health_check_interval_secs` each
//! is sent `GET /version` (with Livy's own authentication, as any request), all at
//! once, each bounded by the interval. An answer other than a 5xx or a redirection
//! means up; a 307/308 means standby (a passive Livy); anything else, down. Then the
//! active server is chosen ([`Peers::choose`]): it stays while it is up, otherwise
//! the first server up in the configured order takes over.
//!
//! The checks run in a task of their own that holds the upstream weakly: when a
//! reload replaces it and the last request using it is done, the task ends.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::join_all;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, StatusCode};

use super::peers::{Health, Peer};
use super::replay::Replay;
use super::{Over, Upstream};
use crate::body;

/// Starts checking `upstream`'s servers every `interval`, the first round at once.
pub fn spawn(upstream: &Arc<Upstream>, interval: Duration) {
    let weak = Arc::downgrade(upstream);
    tokio::spawn(run(weak, interval));
}

async fn run(upstream: Weak<Upstream>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(upstream) = upstream.upgrade() else {
            return;
        };
        upstream.check_all(interval).await;
    }
}

impl Upstream {
    /// One round: every server checked, then the active one chosen.
    pub async fn check_all(&self, timeout: Duration) {
        let checks = self
            .peers
            .all()
            .iter()
            .map(|peer| async move { (peer, self.check(peer, timeout).await) });
        for (peer, health) in join_all(checks).await {
            self.peers.learnt(peer, health);
        }
        self.peers.choose();
    }

    /// What `GET /version` on `peer` says of it.
    async fn check(&self, peer: &Peer, timeout: Duration) -> Health {
        let mut body = Replay::once(body::empty());
        let path = PathAndQuery::from_static("/version");
        let sent = self.send_to(
            peer,
            &Method::GET,
            &path,
            HeaderMap::new(),
            &mut body,
            Over::Any,
        );
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(response)) => classify(response.status()),
            Ok(Err(_)) | Err(_) => Health::Down,
        }
    }
}

/// A check's answer as a state.
fn classify(status: StatusCode) -> Health {
    match status {
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => Health::Standby,
        s if s.is_server_error() => Health::Down,
        _ => Health::Up,
    }
}
