//! Sign-ins under way (`[auth.oidc]`): what the callback needs to finish one (the
//! PKCE verifier, the nonce, the page first asked for), kept server-side under
//! the `state` the provider hands back, so the callback may reach any instance.
//! Each is taken once (a replayed `state` finds nothing) and expires unused.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// How long a sign-in may take, from the redirect to the callback.
pub const SIGN_IN_TTL: Duration = Duration::from_secs(600);

/// A sign-in begun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The PKCE code verifier (its S256 challenge went to the provider).
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The path on this gateway to return to.
    pub return_to: String,
}

/// Where sign-ins under way are kept.
#[async_trait]
pub trait SignInStore: Send + Sync {
    /// Keeps `pending` under `state` for [`SIGN_IN_TTL`].
    async fn begin(&self, state: &str, pending: &PendingSignIn) -> Result<(), StoreError>;
    /// Takes what `state` names, if it is there and young enough: once.
    async fn take(&self, state: &str) -> Result<Option<PendingSignIn>, StoreError>;
}
