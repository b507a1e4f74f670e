//! SPNEGO logins (`[auth.kerberos]`): a user's Kerberos ticket, presented as
//! `Authorization: Negotiate <token>`, instead of a password.
//!
//! A [`TicketAcceptor`] checks the token with the gateway's HTTP service key and
//! names the client principal; [`Realms`] turns that principal into a user name
//! (`alice@EXAMPLE.ORG` is `alice` when the realm is listed). Only principals of
//! one component are users: `alice/admin@EXAMPLE.ORG` or a host's service
//! principal is refused rather than taken for `alice`, since any holder of that
//! other key would otherwise act as her; so are enterprise names (`a\@b@REALM`). The acceptor chosen by the configuration
//! is GSSAPI's, built with the cargo feature `kerberos`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::AuthKerberosConfig;
use crate::error::StartupError;

/// A token that established a context.
#[derive(Debug)]
pub struct Ticket {
    /// The client principal, `user@REALM`.
    pub principal: String,
    /// The token that proves the gateway to the client (mutual authentication).
    pub reply: Option<Vec<u8>>,
}

/// Why a token established nothing.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// The client's fault: garbage, a replay, a ticket for another service, an
    /// expired one.
    #[error("ticket refused: {0}")]
    Refused(String),
    /// The gateway's own: the keytab cannot be read or has no key for the
    /// principal.
    #[error("tickets cannot be checked: {0}")]
    Unavailable(String),
}

/// Checks users' tokens with the gateway's service key.
#[async_trait]
pub trait TicketAcceptor: Send + Sync {
    /// The principal `token` proves, and the reply to send back.
    async fn accept(&self, token: Vec<u8>) -> Result<Ticket, TicketError>;
    /// Whether tokens can be checked now (the keys can be read).
    async fn ready(&self) -> Result<(), TicketError>;
    /// Which keys tokens are checked with (`check-config --probe`).
    async fn probe(&self) -> Result<String, TicketError>;
}

/// Which principals are users, by realm.
#[derive(Debug, Clone)]
pub struct Realms(Vec<String>);

impl Realms {
    pub fn new(realms: &[String]) -> Self {
        Self(realms.to_vec())
    }

    /// The user `principal` stands for, or why it stands for none.
    pub fn user_of<'a>(&self, principal: &'a str) -> Result<&'a str, String> {
        let (name, realm) = principal
            .rsplit_once('@')
            .ok_or_else(|| format!("principal {principal:?} names no realm"))?;
        if !self.0.iter().any(|r| r == realm) {
            return Err(format!("realm {realm:?} is not in auth.kerberos.realms"));
        }
        if name.is_empty()
            || name.contains(['/', ':', '@', '\\'])
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "principal {principal:?} is not a user (one component, no instance)"
            ));
        }
        Ok(name)
    }
}

/// How SPNEGO logins are checked: who accepts tickets, and which realms are users.
#[derive(Clone)]
pub struct Tickets {
    pub acceptor: Arc<dyn TicketAcceptor>,
    pub realms: Realms,
}

/// The acceptor `[auth.kerberos]` asks for, with its realms; `None` without the
/// section.
#[cfg_attr(not(feature = "kerberos"), allow(clippy::unnecessary_wraps))]
pub fn from_config(config: Option<&AuthKerberosConfig>) -> Result<Option<Tickets>, StartupError> {
    let Some(config) = config else {
        return Ok(None);
    };
    #[cfg(feature = "kerberos")]
    {
        Ok(Some(Tickets {
            acceptor: Arc::new(super::spnego::GssAcceptor::new(config)?),
            realms: Realms::new(&config.realms),
        }))
    }
    #[cfg(not(feature = "kerberos"))]
    {
        let _ = config;
        Err(StartupError::Other(
            "[auth.kerberos]: this build has no Kerberos support; build it with \
             `cargo build --release --features kerberos` (needs libkrb5-dev and clang)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_realms_one_component_principals() {
        let realms = Realms::new(&["EXAMPLE.ORG".into(), "AD.EXAMPLE.ORG".into()]);
        assert_eq!(realms.user_of("alice@EXAMPLE.ORG"), Ok("alice"));
        assert_eq!(realms.user_of("bob@AD.EXAMPLE.ORG"), Ok("bob"));
        for refused in [
            "alice@OTHER.ORG",
            "alice@example.org",
            "alice",
            "alice/admin@EXAMPLE.ORG",
            "HTTP/gw.example.org@EXAMPLE.ORG",
            "@EXAMPLE.ORG",
            "al:ice@EXAMPLE.ORG",
            // Enterprise principals (an '@' of their own, escaped when shown).
            "a@b@EXAMPLE.ORG",
            "a\\@b@EXAMPLE.ORG",
        ] {
            assert!(realms.user_of(refused).is_err(), "{refused}");
        }
    }
}
