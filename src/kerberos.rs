//! GSSAPI glue for Kerberos (cargo feature `kerberos`): the gateway's own
//! credentials from a keytab, through MIT's credential store rather than the
//! process environment (so a reload can name another keytab, and nothing changes
//! the environment of a running process); SPNEGO tokens as the initiator (towards
//! Livy) and as the acceptor (users' logins).
//!
//! As the acceptor, MIT checks each ticket's authenticator against its replay
//! cache (a file per user id under `KRB5RCACHEDIR`, `/var/tmp` by default), so a
//! token captured and sent again is refused.
//!
//! MIT obtains the ticket-granting ticket from the keytab when a token is first
//! asked for and keeps it in a private in-memory credential cache; credentials
//! with less than five minutes left are acquired again (MIT then gets a new ticket
//! from the keytab), so tickets renew without a restart. Service tickets are
//! cached too, so once they are held a KDC outage interrupts nothing until they
//! expire. Every call here may wait on the KDC or the disk: callers run them
//! through [`Calls`], on the blocking pool, a few at a time.

use std::ffi::CString;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::Cred;
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};
use libgssapi_sys as sys;
use tokio::sync::Semaphore;

use crate::error::{RequestError, StartupError};

/// GSSAPI calls running at once, for each user of this module (each call may wait
/// on the KDC or read a keytab).
const BLOCKING_CALLS: usize = 4;

/// Runs GSSAPI calls on the blocking pool, a few at a time.
pub struct Calls(Arc<Semaphore>);

impl Default for Calls {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(BLOCKING_CALLS)))
    }
}

impl Calls {
    /// Runs `call` on the blocking pool once one of the slots is free.
    pub async fn run<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        let permit = self
            .0
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RequestError::Internal)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            call()
        })
        .await
        .map_err(|_| RequestError::Internal)
    }
}

/// Tells the credential caches of successive configurations (one per reload) apart.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A private in-memory credential cache's name, new for each call.
pub fn private_ccache() -> String {
    format!(
        "MEMORY:livy-gateway-{}-{}",
        std::process::id(),
        GENERATION.fetch_add(1, Ordering::Relaxed)
    )
}

/// Credentials that expire sooner than this are acquired again (from the keytab,
/// into the same cache) before they are used.
const RENEW_BEFORE: std::time::Duration = std::time::Duration::from_secs(300);

/// The initiator's credentials for `principal` (empty: the keytab's first) from
/// `keytab`, kept in the credential cache `ccache`: MIT gets a ticket-granting
/// ticket from the keytab when the cache has none that is current.
pub fn initiator(keytab: &Path, principal: &str, ccache: &str) -> Result<Cred, String> {
    let keytab = format!("FILE:{}", keytab.display());
    acquire(
        principal,
        sys::GSS_C_INITIATE as sys::gss_cred_usage_t,
        &[("client_keytab", &keytab), ("ccache", ccache)],
    )
}

/// The acceptor's credentials: the keys of `principal` (empty: any key) in
/// `keytab`. MIT reads the keytab when a token is accepted, so a rotated keytab
/// takes effect at once.
pub fn acceptor(keytab: &Path, principal: &str) -> Result<Cred, String> {
    let keytab = format!("FILE:{}", keytab.display());
    acquire(
        principal,
        sys::GSS_C_ACCEPT as sys::gss_cred_usage_t,
        &[("keytab", &keytab)],
    )
}

/// Accepts a client's first (and, for Kerberos, only) token: the client's
/// principal, and the token that proves the acceptor to it (mutual
/// authentication) if the mechanism made one. A mechanism that wants more legs
/// (NTLM wrapped in SPNEGO) is refused.
pub fn accept(cred: &Cred, token: &[u8]) -> Result<(String, Option<Vec<u8>>), String> {
    let mut ctx = ServerCtx::new(Some(cred.clone()));
    let reply = ctx.step(token, None).map_err(|e| e.to_string())?;
    if !ctx.is_complete() {
        return Err("the mechanism wants more than one round trip".into());
    }
    let principal = ctx.source_name().map_err(|e| e.to_string())?.to_string();
    Ok((
        principal,
        reply.map(|t| t.to_vec()).filter(|t| !t.is_empty()),
    ))
}

/// Refuses to start with a keytab that cannot be read (`what`: the config key);
/// its keys are looked at only when first needed.
pub fn check_keytab(keytab: &Path, what: &'static str) -> Result<(), StartupError> {
    match std::fs::File::open(keytab) {
        Ok(_) => Ok(()),
        Err(source) => Err(StartupError::Io {
            what,
            path: keytab.to_path_buf(),
            source,
        }),
    }
}

/// Whether `cred` is still good for a while (else it is acquired again).
pub fn fresh(cred: &Cred) -> bool {
    cred.lifetime().is_ok_and(|left| left > RENEW_BEFORE)
}

/// Acquires credentials from MIT's credential store (`gss_acquire_cred_from`).
fn acquire(
    principal: &str,
    usage: sys::gss_cred_usage_t,
    store: &[(&str, &str)],
) -> Result<Cred, String> {
    let owned: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| {
            (
                CString::new(*k).expect("a key"),
                CString::new(*v).map_err(|_| "a NUL in a path".to_string()),
            )
        })
        .map(|(k, v)| v.map(|v| (k, v)))
        .collect::<Result<_, _>>()?;
    let mut elements: Vec<sys::gss_key_value_element_desc> = owned
        .iter()
        .map(|(k, v)| sys::gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = sys::gss_key_value_set_desc {
        count: elements.len() as sys::OM_uint32,
        elements: elements.as_mut_ptr(),
    };
    let name = match principal.is_empty() {
        true => None,
        false => Some(ImportedName::principal(principal)?),
    };
    let mut minor: sys::OM_uint32 = 0;
    let mut cred: sys::gss_cred_id_t = ptr::null_mut();
    // SAFETY: every pointer passed lives until the call returns (`owned`,
    // `elements`, `set`, `name`); the output handle is owned by the `Cred` made
    // from it below, which releases it.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            name.as_ref().map_or(ptr::null_mut(), |n| n.0),
            sys::_GSS_C_INDEFINITE,
            ptr::null_mut(),
            usage,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if major != sys::GSS_S_COMPLETE {
        return Err(status(major, minor));
    }
    // SAFETY: a credential handle gss_acquire_cred_from just made, owned by no one
    // else.
    Ok(unsafe { Cred::from_c(cred) })
}

/// A name imported from text, released when dropped.
struct ImportedName(sys::gss_name_t);

impl ImportedName {
    fn principal(principal: &str) -> Result<Self, String> {
        let mut minor: sys::OM_uint32 = 0;
        let mut name: sys::gss_name_t = ptr::null_mut();
        let mut buffer = sys::gss_buffer_desc {
            length: principal.len(),
            value: principal.as_ptr() as *mut std::ffi::c_void,
        };
        // The Kerberos principal name type, 1.2.840.113554.1.2.2.1.
        let mut oid_bytes = *b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
        let mut oid = sys::gss_OID_desc {
            length: oid_bytes.len() as sys::OM_uint32,
            elements: oid_bytes.as_mut_ptr() as *mut std::ffi::c_void,
        };
        // SAFETY: `buffer` and `oid` point at live memory for the call; the name
        // made is released in `drop`.
        let major = unsafe { sys::gss_import_name(&mut minor, &mut buffer, &mut oid, &mut name) };
        match major == sys::GSS_S_COMPLETE {
            true => Ok(Self(name)),
            false => Err(format!("principal {principal:?}: {}", status(major, minor))),
        }
    }
}

impl Drop for ImportedName {
    fn drop(&mut self) {
        let mut minor: sys::OM_uint32 = 0;
        // SAFETY: a name gss_import_name made, released once.
        unsafe { sys::gss_release_name(&mut minor, &mut self.0) };
    }
}

/// A GSSAPI status as text (MIT's messages, e.g. "Cannot contact any KDC").
fn status(major: sys::OM_uint32, minor: sys::OM_uint32) -> String {
    libgssapi::error::Error {
        major: libgssapi::error::MajorFlags::from_bits_retain(major),
        minor,
    }
    .to_string()
}

/// Starts a SPNEGO context with `<service>@<host>` and returns it with the first
/// token, asking for mutual authentication.
pub fn start(cred: &Cred, service: &str, host: &str) -> Result<(ClientCtx, Vec<u8>), String> {
    let target = Name::new(
        format!("{service}@{host}").as_bytes(),
        Some(GSS_NT_HOSTBASED_SERVICE),
    )
    .map_err(|e| e.to_string())?;
    let mut ctx = ClientCtx::new(
        Some(cred.clone()),
        target,
        CtxFlags::GSS_C_MUTUAL_FLAG,
        Some(GSS_MECH_SPNEGO),
    );
    let token = ctx.step(None, None).map_err(|e| e.to_string())?;
    let token = token.map(|t| t.to_vec()).unwrap_or_default();
    if token.is_empty() {
        return Err("GSSAPI made no token".into());
    }
    Ok((ctx, token))
}

/// Completes `ctx` with the acceptor's answer token (mutual authentication): an
/// error if the token does not prove the acceptor holds the service's key.
pub fn finish(ctx: &mut ClientCtx, token: &[u8]) -> Result<(), String> {
    match ctx.step(Some(token), None) {
        Ok(None) if ctx.is_complete() => Ok(()),
        Ok(_) => Err("the context is not complete after the acceptor's token".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The principal `cred` stands for.
pub fn principal_of(cred: &Cred) -> String {
    cred.name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "(unknown)".into())
}
