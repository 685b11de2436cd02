//! The development PKI: on the first start with TLS on and no certificate files configured, a CA
//! and a server and client certificate (ECDSA P-256) are made under `<data>/tls/`.
//!
//! For development and evaluation only; production deployments configure their own files.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// The CA's subject Common Name.
pub const CA_COMMON_NAME: &str = "ksg development CA";
/// The Common Name (and so the identity) of the generated client certificate.
pub const CLIENT_COMMON_NAME: &str = "ksg-client";

/// The files of the development PKI in `<data>/tls/`.
#[derive(Clone, Debug)]
pub struct DevPki {
    /// The folder.
    pub dir: PathBuf,
}

impl DevPki {
    /// The development PKI under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        DevPki {
            dir: data_dir.join("tls"),
        }
    }

    /// `ca.pem`.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// `ca.key`.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// `server.pem`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// `client.pem`.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }
    /// `client.key`.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// Whether all six files are there.
    pub fn exists(&self) -> bool {
        [
            self.ca_cert(),
            self.ca_key(),
            self.server_cert(),
            self.server_key(),
            self.client_cert(),
            self.client_key(),
        ]
        .iter()
        .all(|p| p.is_file())
    }

    /// Makes the CA, server and client certificates. `now` (POSIX seconds) sets the validity.
    pub fn create(&self, now: i64) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let err = |e: rcgen::Error| format!("certificate generation failed: {e}");
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let ca_params = ca_params(now)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut server = leaf_params(
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            "localhost",
            now,
        )?;
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;

        let (client_cert, client_key) = issue_client(&issuer, CLIENT_COMMON_NAME, now)?;

        write_file(&self.ca_cert(), ca_cert.pem().as_bytes(), 0o644)?;
        write_file(&self.ca_key(), ca_key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&self.server_cert(), server_cert.pem().as_bytes(), 0o644)?;
        write_file(
            &self.server_key(),
            server_key.serialize_pem().as_bytes(),
            0o600,
        )?;
        write_file(&self.client_cert(), client_cert.as_bytes(), 0o644)?;
        write_file(&self.client_key(), client_key.as_bytes(), 0o600)?;
        Ok(())
    }
}

impl DevPki {
    /// Issues a client certificate for `cn` from the development CA into `out`: `client.pem`,
    /// `client.key` (0600) and a copy of `ca.pem`, the same layout as `<data>/tls`, so the
    /// folder can stand in for it (`ksg client --ca/--cert/--key`, PyKMIP). Existing files are
    /// not replaced.
    pub fn issue_client_into(&self, cn: &str, now: i64, out: &Path) -> Result<(), String> {
        if cn.is_empty() || cn.chars().any(char::is_control) {
            return Err(format!("--cn {cn:?} is not a usable Common Name"));
        }
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).map_err(|e| {
                format!(
                    "{}: {e} (the development CA is made by the first `ksg serve` with TLS on)",
                    p.display()
                )
            })
        };
        let ca_key = KeyPair::from_pem(&read(self.ca_key())?)
            .map_err(|e| format!("{}: {e}", self.ca_key().display()))?;
        let ca_pem = read(self.ca_cert())?;
        // The CA's name and key are all a signature needs: the same parameters give the same
        // issuer name as the certificate on disk.
        let issuer = Issuer::new(ca_params(now)?, &ca_key);
        let (cert, key) = issue_client(&issuer, cn, now)?;
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let cert_path = out.join("client.pem");
        let key_path = out.join("client.key");
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(format!("{} exists; not replacing it", p.display()));
            }
        }
        write_file(&key_path, key.as_bytes(), 0o600)?;
        write_file(&cert_path, cert.as_bytes(), 0o644)?;
        let ca_copy = out.join("ca.pem");
        if !ca_copy.exists() {
            write_file(&ca_copy, ca_pem.as_bytes(), 0o644)?;
        }
        Ok(())
    }
}

fn validity(params: &mut CertificateParams, now: i64, days: i64) -> Result<(), String> {
    let date = |t: i64| {
        let (y, m, d) = civil(t.div_euclid(86_400));
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    params.not_before = date(now - 86_400);
    params.not_after = date(now + days * 86_400);
    Ok(())
}

fn civil(days: i64) -> (i64, i64, i64) {
    let text = crate::ttlv::format_iso8601(days * 86_400, None);
    let part = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap_or(1);
    (part(0..4), part(5..7), part(8..10))
}

fn ca_params(now: i64) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    p.distinguished_name.push(DnType::OrganizationName, "ksg");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut p, now, 3650)?;
    Ok(p)
}

fn leaf_params(sans: Vec<String>, cn: &str, now: i64) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(sans).map_err(|e| format!("bad name: {e}"))?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, "ksg");
    p.use_authority_key_identifier_extension = true;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut p, now, 825)?;
    Ok(p)
}

/// Issues a client certificate for `cn` from `issuer`: (certificate PEM, key PEM).
fn issue_client(
    issuer: &Issuer<'_, &KeyPair>,
    cn: &str,
    now: i64,
) -> Result<(String, String), String> {
    let err = |e: rcgen::Error| format!("certificate generation failed: {e}");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let mut p = leaf_params(Vec::new(), cn, now)?;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, issuer).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `bytes` to a new file with `mode` (private keys 0600), replacing nothing.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}
