//! Development certificates: a private CA and a server certificate signed by it, for
//! `livy-gateway gen-cert`, the demo and the tests. Production deployments bring
//! their own certificates.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::StartupError;

/// Names used when none are given: the loopback host in all its spellings.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The files `gen-cert` writes, by role.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// The standard file names inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            cert: dir.join("gateway.crt"),
            key: dir.join("gateway.key"),
        }
    }
}

/// PEM text of a generated CA and server certificate.
pub struct DevCerts {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a server certificate for `sans` (DNS names or IP addresses).
pub fn generate(sans: &[String]) -> Result<DevCerts, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "livy-gateway development CA");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        sans.first().map(String::as_str).unwrap_or("livy-gateway"),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;

    Ok(DevCerts {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Generates certificates and writes them into `dir` (created if missing). Keys are
/// written readable by their owner only.
pub fn write_to_dir(dir: &Path, sans: &[String]) -> Result<CertFiles, StartupError> {
    let certs = generate(sans)
        .map_err(|e| StartupError::Other(format!("cannot generate certificates: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|source| StartupError::Io {
        what: "certificate directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let files = CertFiles::in_dir(dir);
    write_file(&files.ca_cert, &certs.ca_cert_pem, false)?;
    write_file(&files.ca_key, &certs.ca_key_pem, true)?;
    write_file(&files.cert, &certs.cert_pem, false)?;
    write_file(&files.key, &certs.key_pem, true)?;
    Ok(files)
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), StartupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| StartupError::Io {
        what: "certificate output",
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_as_a_tls_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let sans: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
        let files = write_to_dir(dir.path(), &sans).unwrap();
        crate::tls::server_config(&files.cert, &files.key).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&files.key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
