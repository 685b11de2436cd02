//! `<data>/PKCS11`, the file that says how to reach the HSM (the seed's p6pkcs11tool output),
//! signed with an HMAC under `<data>/pkcs11baseKey.txt` in `<data>/PKCS11.sig`.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::store::key;

/// The module file name in the data directory.
pub const FILE: &str = "PKCS11";
/// Its signature.
pub const SIG: &str = "PKCS11.sig";
/// The signing key.
pub const KEY: &str = "pkcs11baseKey.txt";

/// What `<data>/PKCS11` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleFile {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The label of the token to use (slot IDs can change; SoftHSM2 renumbers them).
    pub token_label: Option<String>,
}

impl ModuleFile {
    fn render(&self) -> String {
        let mut s = format!(
            "; written by `ksg pkcs11 setup`; signed in {SIG}\nmodule = {}\n",
            self.module.display()
        );
        if let Some(l) = &self.token_label {
            s.push_str(&format!("tokenLabel = {l}\n"));
        }
        s
    }

    fn parse(text: &str) -> Result<ModuleFile, String> {
        let mut module = None;
        let mut token_label = None;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
        {
            match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("module", v)) => module = Some(PathBuf::from(v)),
                Some(("tokenLabel", v)) => token_label = Some(v.to_string()),
                _ => return Err(format!("unexpected line {line:?}")),
            }
        }
        Ok(ModuleFile {
            module: module.ok_or("no `module =` line")?,
            token_label,
        })
    }
}

fn mac(data_dir: &Path, text: &str, create_key: bool) -> Result<String, String> {
    let key_path = data_dir.join(KEY);
    let k = if create_key && !key_path.exists() {
        let k = key::Key256::random()?;
        key::write_key_file(&key_path, &k)?;
        k
    } else {
        key::read_key_file(&key_path).map_err(|e| format!("{}: {e}", key_path.display()))?
    };
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&k.0).expect("HMAC takes any key length");
    m.update(text.as_bytes());
    Ok(m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Writes `<data>/PKCS11` and its signature (making the signing key on first use).
pub fn write(data_dir: &Path, file: &ModuleFile) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let text = file.render();
    let sig = mac(data_dir, &text, true)?;
    std::fs::write(data_dir.join(FILE), &text).map_err(|e| format!("{FILE}: {e}"))?;
    std::fs::write(data_dir.join(SIG), format!("{sig}\n")).map_err(|e| format!("{SIG}: {e}"))
}

/// Why reading the module file failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not set up (no file): run `ksg pkcs11 setup`.
    Missing(String),
    /// The signature does not match the file.
    BadSignature,
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Missing(m) => write!(f, "{m}: run `ksg pkcs11 setup --module PATH` first"),
            ReadError::BadSignature => write!(
                f,
                "{FILE}.sig does not match {FILE}: the PKCS#11 set-up was changed outside `ksg pkcs11 setup` \
                 (re-run it, or set gateFlags 0x0001 to start anyway)"
            ),
            ReadError::Other(m) => f.write_str(m),
        }
    }
}

/// Reads and checks `<data>/PKCS11`. With `recover`, a bad signature is accepted (the caller
/// logs it loudly).
pub fn read(data_dir: &Path, recover: bool) -> Result<(ModuleFile, bool), ReadError> {
    let path = data_dir.join(FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ReadError::Missing(format!("{}: {e}", path.display())))?;
    let file = ModuleFile::parse(&text)
        .map_err(|e| ReadError::Other(format!("{}: {e}", path.display())))?;
    let expected = mac(data_dir, &text, false).map_err(ReadError::Other)?;
    let sig = std::fs::read_to_string(data_dir.join(SIG)).unwrap_or_default();
    let good = sig.trim() == expected;
    if !good && !recover {
        return Err(ReadError::BadSignature);
    }
    Ok((file, good))
}
