//! The step that authenticates the gateway to Livy, for a Livy whose own
//! authentication is on: it adds credentials to each request for a Livy server and
//! looks at that server's answers (a cookie to keep, a token to check). A Livy with
//! authentication off needs none, and the gateway then runs no step at all.

use async_trait::async_trait;
use http::HeaderMap;

use super::peers::Peer;
use crate::error::RequestError;

/// Authenticates the gateway to Livy.
#[async_trait]
pub trait UpstreamAuth: Send + Sync {
    /// Adds what `peer` needs to accept the request (`Authorization`, a cookie).
    async fn authorize(&self, peer: &Peer, headers: &mut HeaderMap) -> Result<(), RequestError>;
    /// Looks at `peer`'s answer headers (keeps a session cookie, checks a mutual
    /// authentication token).
    fn answered(&self, peer: &Peer, headers: &HeaderMap) -> Result<(), RequestError>;
}
