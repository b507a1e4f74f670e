//! TLS for the public listener: loading the certificate chain and key, and the rustls
//! server configuration every connection uses; and the client side the gateway
//! uses towards the services it calls ([`client_config`]: a CA file's
//! certificates, or the system's roots).
//!
//! TLS 1.2 and 1.3 only (rustls offers nothing older), ALPN `h2` then `http/1.1`,
//! stateless session tickets plus the in-memory session cache for resumption.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring as provider;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::StartupError;

/// ALPN protocol ids, in order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Reads a PEM certificate chain (leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartupError> {
    let pem = read(path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(
            "certificate",
            path,
            "no PEM CERTIFICATE block found".into(),
        ));
    }
    Ok(certs)
}

/// Reads a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartupError> {
    let pem = read(path, "private key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        pem_error(
            "private key",
            path,
            format!("no usable PKCS#8, PKCS#1 or SEC1 key ({e})"),
        )
    })
}

/// Builds the server configuration from a certificate chain file and a key file.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, StartupError> {
    let certs = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StartupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            StartupError::Tls(format!(
                "certificate {} and key {} do not form a usable pair: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    config.ticketer = provider::Ticketer::new().map_err(|e| StartupError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// A TLS client configuration trusting the certificates in `ca_file` (`what` names
/// it in errors: "Livy CA file"), or the system's roots when it is `None`; an
/// error when that leaves nothing to trust.
pub fn client_config(
    ca_file: Option<&Path>,
    what: &'static str,
) -> Result<rustls::ClientConfig, StartupError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = read(path, what)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let added = cert
                    .map_err(|e| e.to_string())
                    .and_then(|c| roots.add(c).map_err(|e| e.to_string()));
                added.map_err(|message| pem_error(what, path, message))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system CA certificate could not be read");
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(StartupError::Tls(format!(
            "no CA certificate to trust (set the {what})"
        )));
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| StartupError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, StartupError> {
    std::fs::read(path).map_err(|source| StartupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(what: &'static str, path: &Path, message: String) -> StartupError {
    StartupError::Pem {
        what,
        path: path.to_path_buf(),
        message,
    }
}
