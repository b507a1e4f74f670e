//! Sign-ins under way, in this process's memory: at most [`CAPACITY`] (the
//! oldest dropped first, so a flood of abandoned sign-ins cannot grow it), each
//! taken once and gone after [`SIGN_IN_TTL`].

use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_trait::async_trait;
use lru::LruCache;
use tokio::time::Instant;

use crate::state::signins::{PendingSignIn, SignInStore, SIGN_IN_TTL};
use crate::state::StoreError;

/// Sign-ins kept at once.
pub const CAPACITY: usize = 10_000;

/// A [`SignInStore`] in memory.
pub struct MemorySignIns {
    pending: Mutex<LruCache<String, (PendingSignIn, Instant)>>,
}

impl Default for MemorySignIns {
    fn default() -> Self {
        Self {
            pending: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("non-zero"),
            )),
        }
    }
}

#[async_trait]
impl SignInStore for MemorySignIns {
    async fn begin(&self, state: &str, pending: &PendingSignIn) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("sign-ins lock")
            .put(state.to_owned(), (pending.clone(), Instant::now()));
        Ok(())
    }

    async fn take(&self, state: &str) -> Result<Option<PendingSignIn>, StoreError> {
        let taken = self.pending.lock().expect("sign-ins lock").pop(state);
        Ok(taken
            .filter(|(_, at)| at.elapsed() < SIGN_IN_TTL)
            .map(|(pending, _)| pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingSignIn {
        PendingSignIn {
            verifier: "v".into(),
            nonce: "n".into(),
            return_to: "/gateway/default/yarn/proxy/application_1_0001/".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sign_in_is_taken_once_and_not_after_its_time() {
        let store = MemorySignIns::default();
        store.begin("s1", &pending()).await.unwrap();
        assert_eq!(store.take("s1").await.unwrap(), Some(pending()));
        assert_eq!(store.take("s1").await.unwrap(), None, "single use");
        store.begin("s2", &pending()).await.unwrap();
        tokio::time::advance(SIGN_IN_TTL).await;
        assert_eq!(store.take("s2").await.unwrap(), None, "expired");
    }
}
