//! Phase 1, limit: what is refused about a request's head before anything else
//! (header counts and sizes, a second `Host`). The client address's rate limit is
//! checked right after, through the state's [`crate::state::RateLimiter`].

use http::header::HOST;
use http::HeaderMap;

use super::Gateway;
use crate::error::RequestError;

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
}
