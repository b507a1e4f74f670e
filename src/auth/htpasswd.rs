//! htpasswd files as Apache's `htpasswd` writes them, and the [`HtpasswdVerifier`]
//! that checks passwords against their entries.
//!
//! bcrypt (`$2y$`, `$2b$`, `$2a$`) is the expected scheme. SHA-256/512-crypt (`$5$`,
//! `$6$`) and Apache MD5 (`$apr1$`) are accepted with a warning at load. Plaintext,
//! unsalted SHA-1 (`{SHA}`) and DES crypt are refused at load, naming the line, so a
//! weak file never goes live silently. Hash values are never logged.
//!
//! Hashes are computed on the blocking pool, at most one per core at a time (the
//! permit travels with the computation, so a request that goes away does not free
//! a core still hashing). A user the file does not name is checked against a dummy
//! hash of the file's cost, so such a check costs the same CPU as a real one.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use rand::distr::{Alphanumeric, SampleString};
use tokio::sync::Semaphore;

use super::basic::Credentials;
use super::verifier::{CredentialVerifier, Verdict, VerifyError};
use super::Identity;
use crate::error::StartupError;

/// bcrypt cost of the dummy hash when the file has no bcrypt entry to copy.
const DEFAULT_DUMMY_COST: u32 = 10;

/// The hashing scheme of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bcrypt,
    Sha256Crypt,
    Sha512Crypt,
    Apr1,
}

impl Scheme {
    fn of(hash: &str) -> Option<Scheme> {
        if ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
            Some(Scheme::Bcrypt)
        } else if hash.starts_with("$5$") {
            Some(Scheme::Sha256Crypt)
        } else if hash.starts_with("$6$") {
            Some(Scheme::Sha512Crypt)
        } else if hash.starts_with("$apr1$") {
            Some(Scheme::Apr1)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Bcrypt => "bcrypt",
            Scheme::Sha256Crypt => "SHA-256-crypt",
            Scheme::Sha512Crypt => "SHA-512-crypt",
            Scheme::Apr1 => "Apache MD5 (apr1)",
        }
    }
}

/// One user's stored password hash.
#[derive(Clone)]
pub struct Entry {
    pub hash: String,
    pub scheme: Scheme,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// Checks `password` against this entry. CPU-heavy for bcrypt: call it off the
    /// async workers.
    pub fn verify(&self, password: &str) -> bool {
        match self.scheme {
            Scheme::Bcrypt => bcrypt::verify(password, &self.hash).unwrap_or(false),
            Scheme::Sha256Crypt => crypt3_rs::crypt::sha256::verify(password, &self.hash),
            Scheme::Sha512Crypt => crypt3_rs::crypt::sha512::verify(password, &self.hash),
            Scheme::Apr1 => crypt3_rs::crypt::apr1::verify(password, &self.hash),
        }
    }
}

/// A loaded htpasswd file: user name → entry.
#[derive(Debug, Clone, Default)]
pub struct Htpasswd {
    users: HashMap<String, Entry>,
}

impl Htpasswd {
    /// Reads and checks a file; warnings about weak schemes go to the log.
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        let text = std::fs::read(path).map_err(|source| StartupError::Io {
            what: "htpasswd file",
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(text).map_err(|e| StartupError::Htpasswd {
            path: path.to_path_buf(),
            line: line_of_offset(e.as_bytes(), e.utf8_error().valid_up_to()),
            message: "not valid UTF-8".into(),
        })?;
        let (file, warnings) =
            Self::parse(&text).map_err(|(line, message)| StartupError::Htpasswd {
                path: path.to_path_buf(),
                line,
                message,
            })?;
        for warning in warnings {
            tracing::warn!(file = %path.display(), "{warning}");
        }
        Ok(file)
    }

    /// Parses file text. On success also returns warnings; on failure the 1-based line
    /// number and what is wrong with it.
    pub fn parse(text: &str) -> Result<(Self, Vec<String>), (usize, String)> {
        let mut users = HashMap::new();
        let mut warnings = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err((line_no, "expected `user:hash`".into()));
            };
            if user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err((line_no, "user name is empty or contains white space".into()));
            }
            let hash = hash.trim_end();
            let Some(scheme) = Scheme::of(hash) else {
                return Err((
                    line_no,
                    format!(
                        "user {user:?}: the password is plaintext or uses an unsupported hash \
                         (use bcrypt: htpasswd -B)"
                    ),
                ));
            };
            if scheme == Scheme::Bcrypt && hash.parse::<bcrypt::HashParts>().is_err() {
                return Err((line_no, format!("user {user:?}: malformed bcrypt hash")));
            }
            if scheme != Scheme::Bcrypt {
                warnings.push(format!(
                    "line {line_no}: user {user:?} uses {}, which is weaker than bcrypt; re-hash with `htpasswd -B`",
                    scheme.name()
                ));
            }
            let entry = Entry {
                hash: hash.to_owned(),
                scheme,
            };
            if users.insert(user.to_owned(), entry).is_some() {
                return Err((line_no, format!("user {user:?} appears more than once")));
            }
        }
        Ok((Self { users }, warnings))
    }

    /// Every user name in the file.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    pub fn get(&self, user: &str) -> Option<&Entry> {
        self.users.get(user)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The bcrypt cost used by this file's entries (the highest), so that checking an
    /// unknown user can cost as much as checking a known one.
    pub fn bcrypt_cost(&self) -> Option<u32> {
        self.users
            .values()
            .filter(|e| e.scheme == Scheme::Bcrypt)
            .filter_map(|e| e.hash.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
    }
}

/// Checks passwords against an htpasswd file. Users from the file belong to no
/// groups.
pub struct HtpasswdVerifier {
    users: Htpasswd,
    /// Checked in place of a user the file does not name. Made on first use (it
    /// costs as much as a login), so startup does not wait for it.
    dummy: Arc<OnceLock<Entry>>,
    /// One permit per core: hashes running at once.
    cores: Arc<Semaphore>,
}

impl HtpasswdVerifier {
    /// Loads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        let users = Htpasswd::load(path)?;
        if users.is_empty() {
            tracing::warn!(file = %path.display(), "htpasswd file has no users: every login will fail");
        }
        Ok(Self::new(users))
    }

    pub fn new(users: Htpasswd) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            users,
            dummy: Arc::new(OnceLock::new()),
            cores: Arc::new(Semaphore::new(cores)),
        }
    }
}

#[async_trait]
impl CredentialVerifier for HtpasswdVerifier {
    async fn verify(&self, credentials: &Credentials) -> Result<Verdict, VerifyError> {
        let known = self.users.get(&credentials.user).cloned();
        let core = self
            .cores
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| VerifyError("password checks have stopped".into()))?;
        let password = credentials.password.clone();
        let dummy = self.dummy.clone();
        let entry = known.clone();
        let cost = self.users.bcrypt_cost().unwrap_or(DEFAULT_DUMMY_COST);
        let matches = tokio::task::spawn_blocking(move || {
            // The core is held until the hash is done, even if the request is not.
            let _core = core;
            match entry {
                Some(entry) => entry.verify(&password),
                None => {
                    // Same work as for a known user, and never a match.
                    dummy.get_or_init(|| dummy_entry(cost)).verify(&password);
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        Ok(match (known, matches) {
            (Some(_), true) => Verdict::Accepted(Identity::new(&credentials.user, Vec::new())),
            (Some(_), false) => Verdict::Rejected,
            (None, _) => Verdict::Unknown,
        })
    }

    fn users(&self) -> Option<HashSet<String>> {
        Some(self.users.names().map(str::to_owned).collect())
    }

    fn concurrency(&self) -> usize {
        self.cores.available_permits().max(1)
    }
}

/// A bcrypt entry for a random password no one knows.
fn dummy_entry(cost: u32) -> Entry {
    let random = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let hash = bcrypt::hash(random, cost)
        .or_else(|_| {
            bcrypt::hash(
                Alphanumeric.sample_string(&mut rand::rng(), 24),
                DEFAULT_DUMMY_COST,
            )
        })
        .expect("bcrypt of a short random string");
    Entry {
        hash,
        scheme: Scheme::Bcrypt,
    }
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_variants_verify() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        for prefix in ["$2y$", "$2b$", "$2a$"] {
            let h = format!("{prefix}{}", &hash[4..]);
            let (file, warnings) = Htpasswd::parse(&format!("alice:{h}\n")).unwrap();
            assert!(warnings.is_empty());
            let entry = file.get("alice").unwrap();
            assert!(entry.verify("secret"), "{prefix}");
            assert!(!entry.verify("Secret"), "{prefix}");
        }
    }

    #[test]
    #[allow(deprecated)] // making weak hashes on purpose, to check they still verify
    fn weaker_schemes_load_with_a_warning_and_verify() {
        let sha512 = crypt3_rs::crypt::sha512::hash("secret")
            .unwrap()
            .to_string();
        let sha256 = crypt3_rs::crypt::sha256::hash("secret")
            .unwrap()
            .to_string();
        let apr1 = crypt3_rs::crypt::apr1::hash("secret").unwrap().to_string();
        let text = format!("a:{sha512}\nb:{sha256}\nc:{apr1}\n");
        let (file, warnings) = Htpasswd::parse(&text).unwrap();
        assert_eq!(warnings.len(), 3);
        assert!(
            !warnings.iter().any(|w| w.contains('$')),
            "hashes must not be logged"
        );
        for user in ["a", "b", "c"] {
            assert!(file.get(user).unwrap().verify("secret"), "{user}");
            assert!(!file.get(user).unwrap().verify("wrong"), "{user}");
        }
    }

    #[test]
    fn known_apr1_vector_verifies() {
        // From OpenSSL's passwd documentation: `openssl passwd -apr1 -salt xxxxxxxx password`.
        let (file, _) = Htpasswd::parse("u:$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0\n").unwrap();
        assert!(file.get("u").unwrap().verify("password"));
    }

    #[test]
    fn plaintext_and_unsalted_hashes_are_refused_with_the_line_number() {
        let bcrypt = bcrypt::hash("x", 4).unwrap();
        for bad in [
            "bob:secret",
            "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "bob:abJnggxhB/yWI",
        ] {
            let text = format!("# users\nalice:{bcrypt}\n\n{bad}\n");
            let (line, message) = Htpasswd::parse(&text).unwrap_err();
            assert_eq!(line, 4, "{bad}");
            assert!(message.contains("bob"), "{message}");
            assert!(!message.contains("secret"), "the value must not be echoed");
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        let bcrypt = bcrypt::hash("x", 4).unwrap();
        assert_eq!(Htpasswd::parse("no-colon\n").unwrap_err().0, 1);
        assert_eq!(Htpasswd::parse(&format!(":{bcrypt}")).unwrap_err().0, 1);
        assert_eq!(Htpasswd::parse("a:$2y$05$short").unwrap_err().0, 1);
        let dup = format!("a:{bcrypt}\na:{bcrypt}\n");
        assert_eq!(Htpasswd::parse(&dup).unwrap_err().0, 2);
    }

    #[tokio::test]
    async fn the_verifier_tells_known_from_unknown_users_in_the_same_work() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let (file, _) = Htpasswd::parse(&format!("alice:{hash}\n")).unwrap();
        let verifier = HtpasswdVerifier::new(file);
        let creds = |user: &str, password: &str| Credentials {
            user: user.into(),
            password: password.into(),
        };
        assert_eq!(
            verifier.verify(&creds("alice", "pw")).await.unwrap(),
            Verdict::Accepted(Identity::new("alice", vec![]))
        );
        assert_eq!(
            verifier.verify(&creds("alice", "no")).await.unwrap(),
            Verdict::Rejected
        );
        assert!(
            verifier.dummy.get().is_none(),
            "not made before it is needed"
        );
        assert_eq!(
            verifier.verify(&creds("mallory", "pw")).await.unwrap(),
            Verdict::Unknown
        );
        let dummy = verifier.dummy.get().expect("made for the unknown user");
        let cost = dummy.hash.parse::<bcrypt::HashParts>().unwrap().get_cost();
        assert_eq!(cost, 4, "the file's own cost");
        assert_eq!(
            verifier.users().unwrap(),
            HashSet::from(["alice".to_string()])
        );
    }

    #[test]
    fn crlf_and_comments_are_tolerated() {
        let h = bcrypt::hash("pw", 4).unwrap();
        let (file, _) = Htpasswd::parse(&format!("# c\r\n\r\nalice:{h}\r\n")).unwrap();
        assert!(file.get("alice").unwrap().verify("pw"));
        assert_eq!(file.bcrypt_cost(), Some(4));
    }
}
