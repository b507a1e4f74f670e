//! Phase 1, limit: what is refused about a request's head before anything else
//! (header counts and sizes, a second `Host`), then the client address's rate
//! limit, checked by the session store together with the session the cookie
//! names, its user's limit and the ownership record the path names
//! ([`crate::state::SessionStore::admit`]: one round trip to a shared store on the
//! cookie path).

use http::header::{AUTHORIZATION, HOST};
use http::HeaderMap;

use super::context::ConnInfo;
use super::Gateway;
use crate::error::RequestError;
use crate::session;
use crate::state::{Admission, Admitted, Kind};

impl Gateway {
    /// Refuses heads with too many or too large headers (431) or more than one
    /// `Host` (400, RFC 9112 §3.2).
    pub(super) fn check_head(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        if headers.len() > self.settings.max_headers {
            return Err(RequestError::HeadersTooLarge);
        }
        let size: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if size > self.settings.max_header_bytes {
            return Err(RequestError::HeadersTooLarge);
        }
        if headers.get_all(HOST).iter().nth(1).is_some() {
            return Err(RequestError::BadHeader("more than one Host header"));
        }
        Ok(())
    }

    /// The address's rate limit, and the first live session among the cookie's
    /// ids, marked used. The session user's limit is checked with it when no
    /// credentials come with the request (with credentials, the limit that applies
    /// is that of the user they name, checked after authentication), and `record`
    /// (the one the path names) fetched with it where the store can.
    pub(super) async fn admit(
        &self,
        headers: &HeaderMap,
        conn: &ConnInfo,
        record: Option<(Kind, u64)>,
    ) -> Result<Admitted, RequestError> {
        let ids: Vec<&str> = session::session_ids(headers, &self.settings.cookie_name).collect();
        let admission = Admission {
            ip: conn.peer.ip(),
            ids: &ids,
            check_user: !headers.contains_key(AUTHORIZATION),
            record,
        };
        self.state
            .sessions
            .admit(&*self.state.limits, admission)
            .await
    }
}
