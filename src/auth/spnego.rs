//! The GSSAPI [`TicketAcceptor`] (cargo feature `kerberos`): users' SPNEGO
//! tokens checked with the HTTP service key in `auth.kerberos.keytab`, by MIT's
//! acceptor, which also refuses replayed tokens (its replay cache).
//!
//! The acceptor's credentials are acquired when first needed and again after a
//! failure, so a keytab that was missing or empty at startup is used once it
//! appears, without a restart; MIT reads the keytab itself on each token, so a
//! rotated one takes effect at once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use libgssapi::credential::Cred;

use super::negotiate::{Ticket, TicketAcceptor, TicketError};
use crate::config::AuthKerberosConfig;
use crate::error::StartupError;
use crate::kerberos;

/// Checks users' tokens with the gateway's HTTP service key.
pub struct GssAcceptor {
    keytab: PathBuf,
    principal: String,
    cred: Arc<Mutex<Option<Cred>>>,
    calls: kerberos::Calls,
}

impl GssAcceptor {
    /// Checks that the keytab can be read; its keys are looked at when the first
    /// token arrives (or by `/readyz` and the probe).
    pub fn new(config: &AuthKerberosConfig) -> Result<Self, StartupError> {
        kerberos::check_keytab(&config.keytab, "auth.kerberos keytab")?;
        Ok(Self {
            keytab: config.keytab.clone(),
            principal: config.principal.clone(),
            cred: Arc::new(Mutex::new(None)),
            calls: kerberos::Calls::default(),
        })
    }

    /// Runs `call` with the acceptor's credentials (acquired first if not held)
    /// on the blocking pool.
    async fn with_cred<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Cred) -> Result<T, TicketError> + Send + 'static,
    ) -> Result<T, TicketError> {
        let (keytab, principal) = (self.keytab.clone(), self.principal.clone());
        let held = self.cred.clone();
        self.calls
            .run(move || {
                let cred = held.lock().expect("cred lock").clone();
                let cred = match cred {
                    Some(cred) => cred,
                    None => {
                        let cred = kerberos::acceptor(&keytab, &principal).map_err(|e| {
                            TicketError::Unavailable(format!("{}: {e}", keytab.display()))
                        })?;
                        *held.lock().expect("cred lock") = Some(cred.clone());
                        cred
                    }
                };
                call(&cred)
            })
            .await
            .map_err(|_| TicketError::Unavailable("the GSSAPI call did not finish".into()))?
    }
}

#[async_trait]
impl TicketAcceptor for GssAcceptor {
    async fn accept(&self, token: Vec<u8>) -> Result<Ticket, TicketError> {
        self.with_cred(move |cred| {
            let (principal, reply) =
                kerberos::accept(cred, &token).map_err(TicketError::Refused)?;
            Ok(Ticket { principal, reply })
        })
        .await
    }

    async fn ready(&self) -> Result<(), TicketError> {
        self.with_cred(|_| Ok(())).await
    }

    async fn probe(&self) -> Result<String, TicketError> {
        let keytab = self.keytab.display().to_string();
        self.with_cred(move |cred| {
            Ok(format!(
                "negotiate: tickets accepted for {} (keytab {keytab})",
                match kerberos::principal_of(cred).as_str() {
                    "(unknown)" => "any key in the keytab".into(),
                    name => name.to_owned(),
                }
            ))
        })
        .await
    }
}
