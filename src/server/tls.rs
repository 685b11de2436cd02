//! The built-in TLS server (rustls; TLS 1.2 and 1.3 only) and the client identity it verifies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::DevPki;
use crate::config::{IdentitySource, ServerConf};
use crate::x509;

/// The files TLS uses, after filling in the development PKI where the conf names none.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Server certificate chain.
    pub cert: PathBuf,
    /// Server private key.
    pub key: PathBuf,
    /// CA for client certificates.
    pub ca: Option<PathBuf>,
    /// Whether the development PKI supplied the files (and was made now).
    pub dev_pki_created: bool,
}

/// Chooses the TLS files: the conf's, or the development PKI's (made on first use).
pub fn files(conf: &ServerConf, data_dir: &Path, now: i64) -> Result<TlsFiles, String> {
    match (&conf.tls_cert_file, &conf.tls_key_file) {
        (Some(cert), Some(key)) => Ok(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: conf.tls_ca_file.clone(),
            dev_pki_created: false,
        }),
        (None, None) => {
            let pki = DevPki::new(data_dir);
            let created = !pki.exists();
            if created {
                if pki.dir.exists()
                    && std::fs::read_dir(&pki.dir)
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(false)
                {
                    return Err(format!(
                        "{} holds an incomplete development PKI; remove it to make a new one",
                        pki.dir.display()
                    ));
                }
                pki.create(now)?;
            }
            Ok(TlsFiles {
                cert: pki.server_cert(),
                key: pki.server_key(),
                ca: Some(conf.tls_ca_file.clone().unwrap_or_else(|| pki.ca_cert())),
                dev_pki_created: created,
            })
        }
        _ => Err("tlsCertFile and tlsKeyFile must be set together".to_string()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// A private key file every user can read is refused (group access is left to the site, as
/// with an `ssl-cert` group).
fn refuse_world_readable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "{}: the private key is readable by every user (mode {:o}); run `chmod 600` on it",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

/// The rustls server configuration, and the server certificate's notAfter (POSIX seconds).
pub fn server_config(
    conf: &ServerConf,
    files: &TlsFiles,
) -> Result<(Arc<ServerConfig>, Option<i64>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&files.cert)?;
    let not_after = x509::parse(&chain[0]).map(|i| i.not_after);
    refuse_world_readable(&files.key)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?;
    let builder = match &files.ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in read_certs(ca)? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if conf.tls_require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        None if conf.tls_require_client_cert => {
            return Err(
                "tlsRequireClientCert = 1 needs tlsCAFile (the CA client certificates chain to)"
                    .into(),
            );
        }
        None => builder.with_no_client_auth(),
    };
    // No ALPN: KMIP clients rarely offer it, and a mismatch would fail the handshake.
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{}: {e}", files.key.display()))?;
    Ok((Arc::new(config), not_after))
}

/// The client identity of a verified certificate, as `clientIdentity` says: its subject
/// Common Name (the default), its whole subject DN, its first subject alternative name, or
/// `CN/OU`.
pub fn identity(cert: &CertificateDer<'_>, source: IdentitySource) -> Option<String> {
    match source {
        IdentitySource::CommonName => {
            x509::parse(cert).and_then(|i| i.common_names.into_iter().next())
        }
        IdentitySource::CommonNameAndOu => {
            let info = x509::parse(cert)?;
            let cn = info.common_names.into_iter().next()?;
            Some(match info.organizational_units.into_iter().next() {
                Some(ou) => format!("{cn}/{ou}"),
                None => cn,
            })
        }
        IdentitySource::SubjectDn => x509::details(cert).map(|d| x509::dn_text(&d.subject)),
        IdentitySource::SubjectAltName => x509::subject_alt_names(cert).into_iter().next(),
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn each_client_identity_source_names_the_client() {
        let mut p =
            rcgen::CertificateParams::new(vec!["app.example.com".to_string()]).expect("params");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "storage-array-7");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationalUnitName, "backup");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("cert");
        let der = cert.der();
        let id = |s| identity(der, s);
        assert_eq!(
            id(IdentitySource::CommonName).as_deref(),
            Some("storage-array-7")
        );
        assert_eq!(
            id(IdentitySource::CommonNameAndOu).as_deref(),
            Some("storage-array-7/backup")
        );
        assert_eq!(
            id(IdentitySource::SubjectDn).as_deref(),
            Some("OU=backup,CN=storage-array-7")
        );
        assert_eq!(
            id(IdentitySource::SubjectAltName).as_deref(),
            Some("app.example.com")
        );
    }
}
