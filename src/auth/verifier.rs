//! Credential verifiers: what decides whether a user name and password match, and
//! which groups the user is in.
//!
//! A [`CredentialVerifier`] answers for the users it knows ([`Verdict`]); one that
//! cannot reach its backing store (a directory that is down) says so with a
//! [`VerifyError`], which the gateway answers 503 without counting a failed login.
//! Verifiers [`Chain`]: a file of service accounts first, then a directory: the
//! first that knows the user decides. Caching, lockouts, the bound on concurrent
//! checks and equal timing for unknown users are wrapped around any verifier by
//! [`super::Authenticator`], not built into each.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::basic::Credentials;
use super::Identity;

/// What a verifier says about a user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// They match: the user, with their groups.
    Accepted(Identity),
    /// A user this verifier knows, and the wrong password.
    Rejected,
    /// A user this verifier does not know (a chain asks the next one).
    Unknown,
}

/// What a verifier knows of a user now, without their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The user, with their groups as they are now.
    Found(Identity),
    /// No such user any more.
    Gone,
    /// This verifier cannot look users up (a file's users change on reload).
    Unsupported,
}

/// The verifier could not decide: its backing store is unreachable, timed out or
/// refused the gateway's own credentials. The text is for the log only.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);

/// Checks user names and passwords.
#[async_trait]
pub trait CredentialVerifier: Send + Sync {
    /// Checks `credentials`.
    async fn verify(&self, credentials: &Credentials) -> Result<Verdict, VerifyError>;
    /// Every user it knows, where it can list them (a file can, a directory cannot):
    /// a reload ends the sessions of users gone from the list.
    fn users(&self) -> Option<HashSet<String>> {
        None
    }
    /// How many checks it can usefully run at once.
    fn concurrency(&self) -> usize;
    /// What it knows of `user` now (a session's user, whose groups may have
    /// changed since the login).
    async fn lookup(&self, _user: &str) -> Result<Lookup, VerifyError> {
        Ok(Lookup::Unsupported)
    }
    /// Whether it can check credentials now (`/readyz`); `Err` says why not.
    async fn ready(&self) -> Result<(), VerifyError> {
        Ok(())
    }
    /// What it can tell an operator about its backing store (`check-config
    /// --probe`); `None` when there is nothing to probe.
    async fn probe(&self) -> Option<Result<String, VerifyError>> {
        None
    }
}

/// Verifiers asked in order: the first that knows the user decides.
pub struct Chain {
    verifiers: Vec<Arc<dyn CredentialVerifier>>,
}

impl Chain {
    pub fn new(verifiers: Vec<Arc<dyn CredentialVerifier>>) -> Self {
        Self { verifiers }
    }
}

#[async_trait]
impl CredentialVerifier for Chain {
    async fn verify(&self, credentials: &Credentials) -> Result<Verdict, VerifyError> {
        for verifier in &self.verifiers {
            match verifier.verify(credentials).await? {
                Verdict::Unknown => continue,
                decided => return Ok(decided),
            }
        }
        Ok(Verdict::Unknown)
    }

    fn users(&self) -> Option<HashSet<String>> {
        let listed: Vec<HashSet<String>> =
            self.verifiers.iter().filter_map(|v| v.users()).collect();
        (!listed.is_empty()).then(|| listed.into_iter().flatten().collect())
    }

    fn concurrency(&self) -> usize {
        self.verifiers
            .iter()
            .map(|v| v.concurrency())
            .max()
            .unwrap_or(1)
    }

    async fn lookup(&self, user: &str) -> Result<Lookup, VerifyError> {
        let mut answer = Lookup::Unsupported;
        for verifier in &self.verifiers {
            match verifier.lookup(user).await? {
                found @ Lookup::Found(_) => return Ok(found),
                Lookup::Gone => answer = Lookup::Gone,
                Lookup::Unsupported => {}
            }
        }
        Ok(answer)
    }

    async fn ready(&self) -> Result<(), VerifyError> {
        for verifier in &self.verifiers {
            verifier.ready().await?;
        }
        Ok(())
    }

    async fn probe(&self) -> Option<Result<String, VerifyError>> {
        let mut reports = Vec::new();
        for verifier in &self.verifiers {
            match verifier.probe().await {
                Some(Ok(report)) => reports.push(report),
                Some(Err(error)) => return Some(Err(error)),
                None => {}
            }
        }
        (!reports.is_empty()).then(|| Ok(reports.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Knows one user, with one password; or fails every check.
    struct One {
        user: &'static str,
        password: &'static str,
        down: bool,
    }

    #[async_trait]
    impl CredentialVerifier for One {
        async fn verify(&self, c: &Credentials) -> Result<Verdict, VerifyError> {
            if self.down {
                return Err(VerifyError("unreachable".into()));
            }
            Ok(match (c.user == self.user, c.password == self.password) {
                (true, true) => Verdict::Accepted(Identity::new(self.user, vec![])),
                (true, false) => Verdict::Rejected,
                (false, _) => Verdict::Unknown,
            })
        }
        fn users(&self) -> Option<HashSet<String>> {
            Some(HashSet::from([self.user.to_string()]))
        }
        fn concurrency(&self) -> usize {
            2
        }
    }

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// A file that knows `svc`, then a directory that knows `alice` (or is down).
    fn file_then_directory(directory_down: bool) -> Chain {
        let file = Arc::new(One {
            user: "svc",
            password: "a",
            down: false,
        });
        let directory = Arc::new(One {
            user: "alice",
            password: "b",
            down: directory_down,
        });
        Chain::new(vec![file, directory])
    }

    #[tokio::test]
    async fn the_first_verifier_that_knows_the_user_decides() {
        let chain = file_then_directory(false);
        assert!(matches!(
            chain.verify(&creds("svc", "a")).await,
            Ok(Verdict::Accepted(_))
        ));
        assert_eq!(
            chain.verify(&creds("svc", "b")).await.unwrap(),
            Verdict::Rejected
        );
        assert!(matches!(
            chain.verify(&creds("alice", "b")).await,
            Ok(Verdict::Accepted(_))
        ));
        assert_eq!(
            chain.verify(&creds("eve", "b")).await.unwrap(),
            Verdict::Unknown
        );
        assert_eq!(chain.users().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_verifier_that_is_down_stops_the_chain_for_users_it_might_know() {
        let chain = file_then_directory(true);
        assert!(matches!(
            chain.verify(&creds("svc", "a")).await,
            Ok(Verdict::Accepted(_))
        ));
        assert!(chain.verify(&creds("alice", "b")).await.is_err());
    }
}
