//! `p6kmip_credentials.conf`: the usernames and salted password hashes a KMIP Credential
//! (Username and Password) is checked against when `requireCredential = 1`.
//!
//! ```ini
//! [credentials]
//! ; made by `ksg credential hash --user alice` (the password is read from standard input)
//! alice = pbkdf2-sha256$100000$<salt, hex>$<hash, hex>
//! ```

use std::path::Path;

use super::ini::{ConfError, Ini};
use crate::token::Hash;
use crate::token::mechanism::pbkdf2;

/// The credentials file's name in the confs directory.
pub const CREDENTIAL_CONF: &str = "p6kmip_credentials.conf";

/// The hash scheme written and accepted.
const SCHEME: &str = "pbkdf2-sha256";

/// Iterations of new hashes.
pub const ITERATIONS: u32 = 100_000;

/// One user's salted password hash (the hash is no secret worth redacting, but `Debug` shows
/// only the user).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The username.
    pub user: String,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl StoredCredential {
    /// A new entry for `user` and `password`, salted with `salt`.
    pub fn new(user: &str, password: &[u8], salt: &[u8]) -> StoredCredential {
        StoredCredential {
            user: user.to_string(),
            iterations: ITERATIONS,
            salt: salt.to_vec(),
            hash: pbkdf2(Hash::Sha256, password, salt, ITERATIONS, 32),
        }
    }

    /// The line of the credentials file for this entry.
    pub fn line(&self) -> String {
        format!(
            "{} = {SCHEME}${}${}${}",
            self.user,
            self.iterations,
            crate::ttlv::hex::encode(&self.salt),
            crate::ttlv::hex::encode(&self.hash)
        )
    }

    /// Whether `password` is this user's (compared in constant time).
    pub fn verify(&self, password: &[u8]) -> bool {
        let h = pbkdf2(
            Hash::Sha256,
            password,
            &self.salt,
            self.iterations,
            self.hash.len(),
        );
        h.len() == self.hash.len()
            && h.iter().zip(&self.hash).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
    }
}

/// Loads the credentials file from `confs_dir` (None when absent).
pub fn load(confs_dir: &Path) -> Result<Option<Vec<StoredCredential>>, ConfError> {
    let path = confs_dir.join(CREDENTIAL_CONF);
    if !path.exists() {
        return Ok(None);
    }
    parse(&Ini::load(&path)?).map(Some)
}

/// Reads the entries of a parsed file.
pub fn parse(ini: &Ini) -> Result<Vec<StoredCredential>, ConfError> {
    let err = |line: usize, message: String| ConfError {
        path: ini.path.clone(),
        line,
        message,
    };
    let mut out: Vec<StoredCredential> = Vec::new();
    for section in &ini.sections {
        if section.name != "credentials" {
            return Err(err(
                section.line,
                format!("unknown section [{}]; expected [credentials]", section.name),
            ));
        }
        for e in &section.entries {
            let bad = || {
                err(
                    e.line,
                    format!(
                        "`{}`: expected {SCHEME}$ITERATIONS$SALT$HASH (from `ksg credential hash`)",
                        e.key
                    ),
                )
            };
            let parts: Vec<&str> = e.value.split('$').collect();
            let [scheme, iterations, salt, hash] = parts.as_slice() else {
                return Err(bad());
            };
            let iterations: u32 = iterations.parse().map_err(|_| bad())?;
            if *scheme != SCHEME || iterations == 0 || iterations > 10_000_000 {
                return Err(bad());
            }
            let salt = crate::ttlv::hex::decode(salt).ok_or_else(bad)?;
            let hash = crate::ttlv::hex::decode(hash).ok_or_else(bad)?;
            if salt.len() < 8 || hash.len() != 32 {
                return Err(bad());
            }
            if out.iter().any(|c| c.user == e.key) {
                return Err(err(e.line, format!("user `{}` is listed twice", e.key)));
            }
            out.push(StoredCredential {
                user: e.key.clone(),
                iterations,
                salt,
                hash,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_line_reads_back_and_checks_the_password() {
        let c = StoredCredential::new("alice", b"s3cret", &[7; 16]);
        let ini = Ini::parse(
            &format!("[credentials]\n{}\n", c.line()),
            Path::new(CREDENTIAL_CONF),
        )
        .expect("ini");
        let read = parse(&ini).expect("parse");
        assert_eq!(read, vec![c]);
        assert!(read[0].verify(b"s3cret"));
        assert!(!read[0].verify(b"s3cret "));
        let bad = Ini::parse(
            "[credentials]\nbob = md5$1$00$00\n",
            Path::new(CREDENTIAL_CONF),
        )
        .expect("ini");
        assert_eq!(parse(&bad).expect_err("md5").line, 2);
    }
}
