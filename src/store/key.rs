//! The store key: the customer's AES-256 key (`customerKeyPath`, PEM) when set, otherwise the
//! generated base key (`baseKeyPath`, made with the OS RNG on first start, mode 0600). Record
//! keys are derived from it with HMAC-SHA-256 and a per-file salt.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// PEM label of the generated base key.
const BASE_KEY_LABEL: &str = "KSG STORE KEY";

/// A 256-bit key, zeroed on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key256(pub(crate) [u8; 32]);

impl std::fmt::Debug for Key256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key256(***)")
    }
}

impl Key256 {
    /// `HMAC-SHA-256(self, label || salt)`: a key for one purpose and one file.
    pub fn derive(&self, label: &str, salt: &[u8]) -> Key256 {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"ksg-keystore-v1 ");
        mac.update(label.as_bytes());
        mac.update(salt);
        let out = mac.finalize().into_bytes();
        let mut k = [0u8; 32];
        k.copy_from_slice(&out);
        Key256(k)
    }

    /// 32 random bytes from the operating system.
    pub fn random() -> Result<Key256, String> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k)
            .map_err(|e| format!("the OS random number generator failed: {e}"))?;
        Ok(Key256(k))
    }
}

/// Where the store key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// customerKeyPath.
    Customer(PathBuf),
    /// baseKeyPath, read.
    Base(PathBuf),
    /// baseKeyPath, generated now.
    Generated(PathBuf),
}

/// Loads the store key as the configuration says, generating the base key on first use.
pub fn load(customer: Option<&Path>, base: &Path) -> Result<(Key256, KeySource), String> {
    if let Some(path) = customer {
        let key =
            read_key_file(path).map_err(|e| format!("customerKeyPath {}: {e}", path.display()))?;
        return Ok((key, KeySource::Customer(path.to_path_buf())));
    }
    if base.exists() {
        let key =
            read_key_file(base).map_err(|e| format!("baseKeyPath {}: {e}", base.display()))?;
        return Ok((key, KeySource::Base(base.to_path_buf())));
    }
    let key = Key256::random()?;
    write_key_file(base, &key).map_err(|e| format!("baseKeyPath {}: {e}", base.display()))?;
    Ok((key, KeySource::Generated(base.to_path_buf())))
}

/// Reads an AES-256 key from a PEM file (any label; the content is the 32 raw bytes or a DER
/// OCTET STRING holding them). Refuses a file that other users can read.
pub fn read_key_file(path: &Path) -> Result<Key256, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "the key file is readable by other users (mode {:o}); run `chmod 600 {}`",
            meta.permissions().mode() & 0o777,
            path.display()
        ));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| e.to_string())?);
    let der =
        pem_body(&text).ok_or("not a PEM file (expected -----BEGIN …----- / -----END …-----)")?;
    let raw: &[u8] = match der.as_slice() {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        all if all.len() == 32 => all,
        other => {
            return Err(format!(
                "expected an AES-256 key (32 bytes), found {} bytes",
                other.len()
            ));
        }
    };
    let mut k = [0u8; 32];
    k.copy_from_slice(raw);
    Ok(Key256(k))
}

/// Writes `key` as PEM to a new file with mode 0600.
pub fn write_key_file(path: &Path, key: &Key256) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let body = Zeroizing::new(base64(&key.0));
    let text = Zeroizing::new(format!(
        "-----BEGIN {BASE_KEY_LABEL}-----\n{}\n-----END {BASE_KEY_LABEL}-----\n",
        *body
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| e.to_string())
}

fn pem_body(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let start = text.find("-----BEGIN ")?;
    let after = &text[start..];
    let header_end = after.find('\n')?;
    let end = after.find("-----END ")?;
    let body: Zeroizing<String> = Zeroizing::new(
        after[header_end + 1..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    unbase64(&body).map(Zeroizing::new)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn unbase64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in t {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    acc.zeroize();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(unbase64(&base64(&data)), Some(data));
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }

    #[test]
    fn generated_key_is_private_and_reads_back() {
        let dir = crate::test_dir::TempDir::new("key");
        let base = dir.join("ksgbaseKey.txt");
        let (k1, src) = load(None, &base).expect("generate");
        assert!(matches!(src, KeySource::Generated(_)));
        assert_eq!(
            std::fs::metadata(&base).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let (k2, src) = load(None, &base).expect("read");
        assert!(matches!(src, KeySource::Base(_)));
        assert_eq!(k1.0, k2.0);
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(
            load(None, &base)
                .expect_err("world-readable")
                .contains("chmod 600")
        );
        let missing = dir.join("customer.pem");
        assert!(
            load(Some(&missing), &base)
                .expect_err("missing")
                .starts_with("customerKeyPath")
        );
    }
}
