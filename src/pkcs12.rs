//! PKCS#12 (RFC 7292) as KMIP 1.4 uses it: a private key with its certificate chain, protected
//! by a password. Pure functions: no I/O, and the salts and IV come from the caller.
//!
//! Reading takes what common tools write: the key in a PKCS#8 shrouded key bag (or a plain key
//! bag), certificates in plain or encrypted safe contents, encrypted either with PBES2 (PBKDF2
//! with HMAC-SHA-1/224/256/384/512, AES-128/192/256-CBC or DES-EDE3-CBC; OpenSSL 3's default)
//! or with the PKCS#12 PBE with SHA-1 and two- or three-key Triple-DES (Java's and OpenSSL 1.x's
//! default), and a MAC with HMAC over SHA-1 or SHA-2. RC2 and RC4 (40- and 128-bit export-era
//! ciphers) are refused by name. Only definite-length DER is read.
//!
//! Writing makes what OpenSSL 3 makes by default: the key under PBES2 (PBKDF2-HMAC-SHA-256,
//! AES-256-CBC), the certificates in plain safe contents (they are public), an HMAC-SHA-256 MAC.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use zeroize::Zeroizing;

use crate::der::{self, Der};
use crate::token::Hash;
use crate::token::mechanism::{digest, hmac, pbkdf2};

/// Iteration counts above this are refused: a hostile file must not hold a thread for minutes.
pub const MAX_ITERATIONS: u64 = 1_000_000;
/// At most this many bags are read from one file.
pub const MAX_BAGS: usize = 64;
/// Iterations of the key derivations in files ksg writes (OpenSSL 3 uses 2,048).
pub const WRITE_ITERATIONS: u32 = 10_000;

const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
const OID_ENCRYPTED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x06];
const OID_BAG_PREFIX: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x0A, 0x01];
const OID_PBE_PREFIX: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x01];
const OID_PBES2: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0D];
const OID_PBKDF2: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0C];
const OID_HMAC_PREFIX: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02];
const OID_AES_CBC_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01];
const OID_DES_EDE3_CBC: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x03, 0x07];
const OID_X509_CERTIFICATE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x16, 0x01];
const OID_FRIENDLY_NAME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x14];
const OID_LOCAL_KEY_ID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x15];
const OID_SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
const OID_SHA2_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];

const BAG_KEY: u8 = 1;
const BAG_SHROUDED_KEY: u8 = 2;
const BAG_CERT: u8 = 3;

/// Why a PKCS#12 file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pkcs12Error {
    /// Not well-formed DER PKCS#12 (what was expected where).
    Malformed(&'static str),
    /// The MAC does not verify or a decryption fails: the password is wrong or the file damaged.
    WrongPassword,
    /// A well-formed file using an algorithm ksg does not read.
    Unsupported(String),
}

impl std::fmt::Display for Pkcs12Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pkcs12Error::Malformed(what) => write!(f, "malformed PKCS#12: {what}"),
            Pkcs12Error::WrongPassword => {
                f.write_str("the PKCS#12 password is wrong or the file is damaged")
            }
            Pkcs12Error::Unsupported(what) => write!(f, "PKCS#12 with {what} is not supported"),
        }
    }
}

type Result<T> = std::result::Result<T, Pkcs12Error>;

/// A certificate from a PKCS#12 file, with its bag attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The X.509 certificate, DER.
    pub der: Vec<u8>,
    /// Its friendlyName, if any.
    pub friendly_name: Option<String>,
    /// Its localKeyId, if any (equal to the key's for the key's own certificate).
    pub local_key_id: Option<Vec<u8>>,
}

/// What a PKCS#12 file holds (the key is zeroed when dropped; `Debug` does not show it).
pub struct Contents {
    /// The private key, PKCS#8 PrivateKeyInfo DER.
    pub private_key: Option<Zeroizing<Vec<u8>>>,
    /// The key's friendlyName, if any.
    pub key_friendly_name: Option<String>,
    /// The key's localKeyId, if any.
    pub key_local_key_id: Option<Vec<u8>>,
    /// The certificates, in file order.
    pub certificates: Vec<Certificate>,
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("private_key", &self.private_key.as_ref().map(|_| "…"))
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl Contents {
    /// The key's own certificate: the one whose localKeyId is the key's, else the one that
    /// issued no other certificate in the file, else the first.
    pub fn key_certificate(&self) -> Option<usize> {
        if let Some(id) = &self.key_local_key_id
            && let Some(i) = self
                .certificates
                .iter()
                .position(|c| c.local_key_id.as_ref() == Some(id))
        {
            return Some(i);
        }
        let names: Vec<Option<(Vec<u8>, Vec<u8>)>> = self
            .certificates
            .iter()
            .map(|c| crate::x509::details(&c.der).map(|d| (d.subject_der, d.issuer_der)))
            .collect();
        let issued_another = |i: usize| {
            names.iter().enumerate().any(|(j, n)| {
                j != i
                    && matches!((n, &names[i]), (Some((_, issuer)), Some((subject, _))) if issuer == subject)
            })
        };
        (0..self.certificates.len())
            .find(|&i| !issued_another(i))
            .or((!self.certificates.is_empty()).then_some(0))
    }
}

/// Reads a PKCS#12 file with `password` (UTF-8 as the client gave it).
pub fn parse(pfx: &[u8], password: &[u8]) -> Result<Contents> {
    let mut outer = Der(pfx);
    let mut pfx_seq = Der(outer
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("PFX SEQUENCE"))?);
    let version = pfx_seq
        .expect(0x02)
        .and_then(der::uint_value)
        .ok_or(Pkcs12Error::Malformed("PFX version"))?;
    if version != 3 {
        return Err(Pkcs12Error::Unsupported(format!("PFX version {version}")));
    }
    let auth_safe = pfx_seq
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("authSafe ContentInfo"))?;
    let auth_data = data_content(auth_safe)?
        .ok_or(Pkcs12Error::Unsupported("public-key integrity mode".into()))?;
    match pfx_seq.expect(0x30) {
        Some(mac_data) => verify_mac(mac_data, auth_data, password)?,
        None => return Err(Pkcs12Error::Unsupported("no MAC".into())),
    }
    let mut contents = Contents {
        private_key: None,
        key_friendly_name: None,
        key_local_key_id: None,
        certificates: Vec::new(),
    };
    let mut bags = 0usize;
    let mut infos = Der(Der(auth_data)
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("AuthenticatedSafe"))?);
    while !infos.0.is_empty() {
        let info = infos
            .expect(0x30)
            .ok_or(Pkcs12Error::Malformed("ContentInfo"))?;
        let safe = match data_content(info)? {
            Some(plain) => Zeroizing::new(plain.to_vec()),
            None => decrypt_encrypted_data(info, password)?,
        };
        let mut safe_bags = Der(Der(&safe)
            .expect(0x30)
            .ok_or(Pkcs12Error::Malformed("SafeContents"))?);
        while !safe_bags.0.is_empty() {
            bags += 1;
            if bags > MAX_BAGS {
                return Err(Pkcs12Error::Unsupported(format!(
                    "more than {MAX_BAGS} bags"
                )));
            }
            let bag = safe_bags
                .expect(0x30)
                .ok_or(Pkcs12Error::Malformed("SafeBag"))?;
            read_bag(bag, password, &mut contents)?;
        }
    }
    Ok(contents)
}

/// The octets of a ContentInfo of type data; `None` when it is another type.
fn data_content(info: &[u8]) -> Result<Option<&[u8]>> {
    let mut r = Der(info);
    let oid = r
        .expect(0x06)
        .ok_or(Pkcs12Error::Malformed("ContentInfo type"))?;
    if oid != OID_DATA {
        return Ok(None);
    }
    let explicit = r
        .expect(0xA0)
        .ok_or(Pkcs12Error::Malformed("ContentInfo content"))?;
    Der(explicit)
        .expect(0x04)
        .map(Some)
        .ok_or(Pkcs12Error::Malformed(
            "data OCTET STRING (BER is not read)",
        ))
}

/// An EncryptedData ContentInfo's SafeContents, decrypted.
fn decrypt_encrypted_data(info: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut r = Der(info);
    if r.expect(0x06) != Some(OID_ENCRYPTED_DATA) {
        return Err(Pkcs12Error::Unsupported(
            "contents other than data and encryptedData".into(),
        ));
    }
    let mut ed = Der(r
        .expect(0xA0)
        .and_then(|c| Der(c).expect(0x30))
        .ok_or(Pkcs12Error::Malformed("EncryptedData"))?);
    ed.expect(0x02)
        .ok_or(Pkcs12Error::Malformed("EncryptedData version"))?;
    let mut eci = Der(ed
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("EncryptedContentInfo"))?);
    eci.expect(0x06)
        .ok_or(Pkcs12Error::Malformed("EncryptedContentInfo type"))?;
    let algorithm = eci
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("content encryption algorithm"))?;
    let ciphertext = eci
        .expect(0x80)
        .ok_or(Pkcs12Error::Malformed("encryptedContent (primitive)"))?;
    decrypt(algorithm, ciphertext, password)
}

fn read_bag(bag: &[u8], password: &[u8], contents: &mut Contents) -> Result<()> {
    let mut r = Der(bag);
    let oid = r.expect(0x06).ok_or(Pkcs12Error::Malformed("bag type"))?;
    let value = r.expect(0xA0).ok_or(Pkcs12Error::Malformed("bag value"))?;
    let (friendly_name, local_key_id) = match r.expect(0x31) {
        Some(set) => bag_attributes(set)?,
        None => (None, None),
    };
    let kind = oid.strip_prefix(OID_BAG_PREFIX).and_then(|k| match k {
        [k] => Some(*k),
        _ => None,
    });
    match kind {
        Some(BAG_KEY | BAG_SHROUDED_KEY) => {
            if contents.private_key.is_some() {
                return Err(Pkcs12Error::Unsupported("more than one private key".into()));
            }
            let key = if kind == Some(BAG_KEY) {
                Zeroizing::new(
                    Der(value)
                        .read_raw()
                        .ok_or(Pkcs12Error::Malformed("key bag"))?
                        .to_vec(),
                )
            } else {
                decrypt_private_key(value, password)?
            };
            contents.private_key = Some(key);
            contents.key_friendly_name = friendly_name;
            contents.key_local_key_id = local_key_id;
        }
        Some(BAG_CERT) => {
            let mut cert = Der(Der(value)
                .expect(0x30)
                .ok_or(Pkcs12Error::Malformed("CertBag"))?);
            if cert.expect(0x06) != Some(OID_X509_CERTIFICATE) {
                return Err(Pkcs12Error::Unsupported(
                    "certificates other than X.509".into(),
                ));
            }
            let der = cert
                .expect(0xA0)
                .and_then(|c| Der(c).expect(0x04))
                .ok_or(Pkcs12Error::Malformed("CertBag value"))?;
            contents.certificates.push(Certificate {
                der: der.to_vec(),
                friendly_name,
                local_key_id,
            });
        }
        // CRLs, secrets and nested safe contents carry nothing KMIP registers with a key.
        _ => {}
    }
    Ok(())
}

/// friendlyName and localKeyId of a bag.
fn bag_attributes(set: &[u8]) -> Result<(Option<String>, Option<Vec<u8>>)> {
    let (mut name, mut id) = (None, None);
    let mut r = Der(set);
    while !r.0.is_empty() {
        let mut a = Der(r
            .expect(0x30)
            .ok_or(Pkcs12Error::Malformed("bag attribute"))?);
        let oid = a
            .expect(0x06)
            .ok_or(Pkcs12Error::Malformed("bag attribute type"))?;
        let mut values = Der(a
            .expect(0x31)
            .ok_or(Pkcs12Error::Malformed("bag attribute values"))?);
        if oid == OID_FRIENDLY_NAME {
            let bmp = values
                .expect(0x1E)
                .ok_or(Pkcs12Error::Malformed("friendlyName BMPString"))?;
            let units: Vec<u16> = bmp
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            name = Some(String::from_utf16_lossy(&units));
        } else if oid == OID_LOCAL_KEY_ID {
            id = Some(
                values
                    .expect(0x04)
                    .ok_or(Pkcs12Error::Malformed("localKeyId"))?
                    .to_vec(),
            );
        }
    }
    Ok((name, id))
}

/// An EncryptedPrivateKeyInfo (PKCS#8), decrypted to its PrivateKeyInfo DER.
pub fn decrypt_private_key(encrypted: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut r = Der(Der(encrypted)
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("EncryptedPrivateKeyInfo"))?);
    let algorithm = r
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("key encryption algorithm"))?;
    let ciphertext = r
        .expect(0x04)
        .ok_or(Pkcs12Error::Malformed("encrypted key"))?;
    let plain = decrypt(algorithm, ciphertext, password)?;
    let der = Der(&plain)
        .read_raw()
        .ok_or(Pkcs12Error::WrongPassword)?
        .to_vec();
    Ok(Zeroizing::new(der))
}

/// Decrypts under a password-based AlgorithmIdentifier (its contents).
fn decrypt(algorithm: &[u8], ciphertext: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut r = Der(algorithm);
    let oid = r
        .expect(0x06)
        .ok_or(Pkcs12Error::Malformed("encryption algorithm"))?;
    let params = r
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("encryption parameters"))?;
    if oid == OID_PBES2 {
        return pbes2_decrypt(params, ciphertext, password);
    }
    let scheme = match oid.strip_prefix(OID_PBE_PREFIX) {
        Some([3]) => 24,
        Some([4]) => 16,
        Some([1 | 2]) => return Err(Pkcs12Error::Unsupported("RC4".into())),
        Some([5 | 6]) => return Err(Pkcs12Error::Unsupported("RC2".into())),
        _ => return Err(Pkcs12Error::Unsupported("this encryption algorithm".into())),
    };
    let mut p = Der(params);
    let salt = p.expect(0x04).ok_or(Pkcs12Error::Malformed("PBE salt"))?;
    let iterations = iterations(p.expect(0x02))?;
    let bmp = bmp_password(password);
    let mut key = pkcs12_kdf(Hash::Sha1, &bmp, salt, 1, iterations, 24);
    if scheme == 16 {
        // Two-key Triple-DES: K1, K2, K1.
        key.copy_within(..8, 16);
    }
    let iv = pkcs12_kdf(Hash::Sha1, &bmp, salt, 2, iterations, 8);
    cbc_decrypt::<des::TdesEde3>(&key, &iv, ciphertext)
}

fn pbes2_decrypt(params: &[u8], ciphertext: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut p = Der(params);
    let mut kdf = Der(p
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("PBES2 key derivation"))?);
    if kdf.expect(0x06) != Some(OID_PBKDF2) {
        return Err(Pkcs12Error::Unsupported(
            "PBES2 with a key derivation other than PBKDF2".into(),
        ));
    }
    let mut kp = Der(kdf
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("PBKDF2 parameters"))?);
    let salt = kp
        .expect(0x04)
        .ok_or(Pkcs12Error::Malformed("PBKDF2 salt"))?;
    let iterations = iterations(kp.expect(0x02))?;
    let mut prf = Hash::Sha1;
    while let Some((tag, c)) = kp.read() {
        // keyLength (0x02) is implied by the cipher; the PRF defaults to HMAC-SHA-1.
        if tag == 0x30 {
            let oid = Der(c)
                .expect(0x06)
                .ok_or(Pkcs12Error::Malformed("PBKDF2 PRF"))?;
            prf = match oid.strip_prefix(OID_HMAC_PREFIX) {
                Some([7]) => Hash::Sha1,
                Some([8]) => Hash::Sha224,
                Some([9]) => Hash::Sha256,
                Some([10]) => Hash::Sha384,
                Some([11]) => Hash::Sha512,
                _ => return Err(Pkcs12Error::Unsupported("this PBKDF2 PRF".into())),
            };
        }
    }
    let mut enc = Der(p
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("PBES2 encryption scheme"))?);
    let oid = enc
        .expect(0x06)
        .ok_or(Pkcs12Error::Malformed("PBES2 cipher"))?;
    let iv = enc.expect(0x04).ok_or(Pkcs12Error::Malformed("PBES2 IV"))?;
    let derive = |len| Zeroizing::new(pbkdf2(prf, password, salt, iterations, len));
    match oid.strip_prefix(OID_AES_CBC_PREFIX) {
        Some([0x02]) if iv.len() == 16 => cbc_decrypt::<aes::Aes128>(&derive(16), iv, ciphertext),
        Some([0x16]) if iv.len() == 16 => cbc_decrypt::<aes::Aes192>(&derive(24), iv, ciphertext),
        Some([0x2A]) if iv.len() == 16 => cbc_decrypt::<aes::Aes256>(&derive(32), iv, ciphertext),
        _ if oid == OID_DES_EDE3_CBC && iv.len() == 8 => {
            cbc_decrypt::<des::TdesEde3>(&derive(24), iv, ciphertext)
        }
        _ => Err(Pkcs12Error::Unsupported("this PBES2 cipher".into())),
    }
}

fn iterations(contents: Option<&[u8]>) -> Result<u32> {
    let n = contents
        .and_then(der::uint_value)
        .ok_or(Pkcs12Error::Malformed("iteration count"))?;
    if n == 0 || n > MAX_ITERATIONS {
        return Err(Pkcs12Error::Unsupported(format!(
            "an iteration count of {n} (1 to {MAX_ITERATIONS})"
        )));
    }
    Ok(n as u32)
}

fn verify_mac(mac_data: &[u8], auth_data: &[u8], password: &[u8]) -> Result<()> {
    let mut r = Der(mac_data);
    let mut digest_info = Der(r
        .expect(0x30)
        .ok_or(Pkcs12Error::Malformed("MAC DigestInfo"))?);
    let alg = digest_info
        .expect(0x30)
        .and_then(|a| Der(a).expect(0x06))
        .ok_or(Pkcs12Error::Malformed("MAC algorithm"))?;
    let hash =
        hash_of_oid(alg).ok_or_else(|| Pkcs12Error::Unsupported("this MAC digest".into()))?;
    let expected = digest_info
        .expect(0x04)
        .ok_or(Pkcs12Error::Malformed("MAC value"))?;
    let salt = r.expect(0x04).ok_or(Pkcs12Error::Malformed("MAC salt"))?;
    let iterations = match r.expect(0x02) {
        Some(c) => iterations(Some(c))?,
        None => 1,
    };
    let key = pkcs12_kdf(
        hash,
        &bmp_password(password),
        salt,
        3,
        iterations,
        hash_len(hash),
    );
    let mac = hmac(hash, &key, auth_data);
    // Compared in full: the MAC is no secret, and a wrong password fails either way.
    if mac != expected {
        return Err(Pkcs12Error::WrongPassword);
    }
    Ok(())
}

fn hash_of_oid(oid: &[u8]) -> Option<Hash> {
    if oid == OID_SHA1 {
        return Some(Hash::Sha1);
    }
    match oid.strip_prefix(OID_SHA2_PREFIX)? {
        [1] => Some(Hash::Sha256),
        [2] => Some(Hash::Sha384),
        [3] => Some(Hash::Sha512),
        [4] => Some(Hash::Sha224),
        _ => None,
    }
}

fn hash_len(h: Hash) -> usize {
    crate::token::mechanism::hash_len(h) as usize
}

/// The hash's input block size, the `v` of RFC 7292 appendix B.
fn block_len(h: Hash) -> usize {
    match h {
        Hash::Sha1 | Hash::Sha224 | Hash::Sha256 => 64,
        Hash::Sha384 | Hash::Sha512 => 128,
    }
}

/// The password as PKCS#12 key derivation takes it: a BMPString (UTF-16 big-endian) with a
/// terminating zero. Bytes that are not UTF-8 are taken one per character.
fn bmp_password(password: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    match std::str::from_utf8(password) {
        Ok(s) => s
            .encode_utf16()
            .for_each(|u| out.extend_from_slice(&u.to_be_bytes())),
        Err(_) => password.iter().for_each(|b| out.extend([0, *b])),
    }
    out.extend([0, 0]);
    out
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2): `len` bytes for purpose `id` (1 key,
/// 2 IV, 3 MAC key).
fn pkcs12_kdf(
    h: Hash,
    bmp: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u32,
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let (u, v) = (hash_len(h), block_len(h));
    let repeat = |s: &[u8]| -> Vec<u8> {
        let n = s.len().div_ceil(v) * v;
        s.iter().copied().cycle().take(n).collect()
    };
    let mut i_buf = Zeroizing::new([repeat(salt), repeat(bmp)].concat());
    let d = vec![id; v];
    let mut out = Zeroizing::new(Vec::with_capacity(len + u));
    while out.len() < len {
        let mut a = digest(h, &[&d[..], &i_buf].concat());
        for _ in 1..iterations {
            a = digest(h, &a);
        }
        out.extend_from_slice(&a);
        if out.len() >= len {
            break;
        }
        let b: Vec<u8> = a.iter().copied().cycle().take(v).collect();
        for block in i_buf.chunks_mut(v) {
            // block = (block + b + 1) mod 2^(8v)
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(&b).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(len);
    out
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>>
where
    C: BlockCipherDecrypt + KeyInit,
{
    let d = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| Pkcs12Error::Malformed("cipher key or IV length"))?;
    let mut buf = Zeroizing::new(data.to_vec());
    let n = d
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| Pkcs12Error::WrongPassword)?
        .len();
    buf.truncate(n);
    Ok(buf)
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8>
where
    C: BlockCipherEncrypt + KeyInit,
{
    let e = cbc::Encryptor::<C>::new_from_slices(key, iv).expect("fixed key and IV sizes");
    let mut buf = data.to_vec();
    buf.resize(data.len() + 16, 0);
    let n = e
        .encrypt_padded::<Pkcs7>(&mut buf, data.len())
        .expect("room for one block of padding")
        .len();
    buf.truncate(n);
    buf
}

/// The salts and IV a new PKCS#12 file needs, from the caller's random generator.
#[derive(Debug)]
pub struct Salts {
    /// PBKDF2 salt of the key encryption.
    pub key_salt: [u8; 16],
    /// AES-CBC IV of the key encryption.
    pub key_iv: [u8; 16],
    /// Salt of the MAC key.
    pub mac_salt: [u8; 16],
}

impl Salts {
    /// Salts from 48 random bytes.
    pub fn from_random(r: &[u8; 48]) -> Salts {
        let part = |i: usize| -> [u8; 16] {
            let mut out = [0; 16];
            out.copy_from_slice(&r[i * 16..i * 16 + 16]);
            out
        };
        Salts {
            key_salt: part(0),
            key_iv: part(1),
            mac_salt: part(2),
        }
    }
}

/// A PKCS#12 file holding `private_key` (PKCS#8 DER) and `certificates` (DER, the key's own
/// first), protected by `password`. The key and its certificate share a localKeyId (SHA-1 of
/// the certificate, as OpenSSL and Java write it); `friendly_name` labels both.
pub fn build(
    private_key: &[u8],
    certificates: &[Vec<u8>],
    friendly_name: Option<&str>,
    password: &[u8],
    salts: &Salts,
) -> Vec<u8> {
    let local_key_id = certificates.first().map(|c| digest(Hash::Sha1, c));
    let attributes = |with_id: bool| -> Vec<u8> {
        let mut attrs = Vec::new();
        if let Some(name) = friendly_name {
            let bmp: Vec<u8> = name.encode_utf16().flat_map(u16::to_be_bytes).collect();
            attrs.push(der::seq(&[
                &der::tlv(0x06, OID_FRIENDLY_NAME),
                &der::tlv(0x31, &der::tlv(0x1E, &bmp)),
            ]));
        }
        if let (true, Some(id)) = (with_id, &local_key_id) {
            attrs.push(der::seq(&[
                &der::tlv(0x06, OID_LOCAL_KEY_ID),
                &der::tlv(0x31, &der::tlv(0x04, id)),
            ]));
        }
        if attrs.is_empty() {
            Vec::new()
        } else {
            der::tlv(0x31, &attrs.concat())
        }
    };
    let bag = |kind: u8, value: &[u8], attrs: Vec<u8>| {
        der::seq(&[
            &der::tlv(0x06, &[OID_BAG_PREFIX, &[kind]].concat()),
            &der::tlv(0xA0, value),
            &attrs,
        ])
    };
    let data_info = |octets: &[u8]| {
        der::seq(&[
            &der::tlv(0x06, OID_DATA),
            &der::tlv(0xA0, &der::tlv(0x04, octets)),
        ])
    };

    let key = Zeroizing::new(pbkdf2(
        Hash::Sha256,
        password,
        &salts.key_salt,
        WRITE_ITERATIONS,
        32,
    ));
    let encrypted_key = cbc_encrypt::<aes::Aes256>(&key, &salts.key_iv, private_key);
    let pbes2 = der::seq(&[
        &der::tlv(0x06, OID_PBES2),
        &der::seq(&[
            &der::seq(&[
                &der::tlv(0x06, OID_PBKDF2),
                &der::seq(&[
                    &der::tlv(0x04, &salts.key_salt),
                    &der::uint(u64::from(WRITE_ITERATIONS)),
                    &der::seq(&[
                        &der::tlv(0x06, &[OID_HMAC_PREFIX, &[9]].concat()),
                        &[0x05, 0x00],
                    ]),
                ]),
            ]),
            &der::seq(&[
                &der::tlv(0x06, &[OID_AES_CBC_PREFIX, &[0x2A]].concat()),
                &der::tlv(0x04, &salts.key_iv),
            ]),
        ]),
    ]);
    let shrouded = der::seq(&[&pbes2, &der::tlv(0x04, &encrypted_key)]);
    let key_safe = der::seq(&[&bag(BAG_SHROUDED_KEY, &shrouded, attributes(true))]);
    let cert_bags: Vec<Vec<u8>> = certificates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let value = der::seq(&[
                &der::tlv(0x06, OID_X509_CERTIFICATE),
                &der::tlv(0xA0, &der::tlv(0x04, c)),
            ]);
            bag(
                BAG_CERT,
                &value,
                if i == 0 { attributes(true) } else { Vec::new() },
            )
        })
        .collect();
    let mut infos = vec![data_info(&key_safe)];
    if !cert_bags.is_empty() {
        infos.push(data_info(&der::tlv(0x30, &cert_bags.concat())));
    }
    let auth_data = der::tlv(0x30, &infos.concat());

    let mac_key = pkcs12_kdf(
        Hash::Sha256,
        &bmp_password(password),
        &salts.mac_salt,
        3,
        WRITE_ITERATIONS,
        32,
    );
    let mac = hmac(Hash::Sha256, &mac_key, &auth_data);
    let mac_data = der::seq(&[
        &der::seq(&[
            &der::seq(&[
                &der::tlv(0x06, &[OID_SHA2_PREFIX, &[1]].concat()),
                &[0x05, 0x00],
            ]),
            &der::tlv(0x04, &mac),
        ]),
        &der::tlv(0x04, &salts.mac_salt),
        &der::uint(u64::from(WRITE_ITERATIONS)),
    ]);
    der::seq(&[&der::uint(3), &data_info(&auth_data), &mac_data])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 7292 B.2, checked against OpenSSL's own implementation (`openssl kdf -kdfopt
    /// hexpass:<BMP password> ... PKCS12KDF`) for SHA-1 key and IV, and a SHA-256 MAC key.
    #[test]
    fn pkcs12_kdf_matches_openssl() {
        let salt = [0x0A, 0x58, 0xCF, 0x64, 0x53, 0x0D, 0x82, 0x3F];
        let smeg = bmp_password(b"smeg");
        assert_eq!(
            hex(&pkcs12_kdf(Hash::Sha1, &smeg, &salt, 1, 1, 24)),
            "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"
        );
        assert_eq!(
            hex(&pkcs12_kdf(Hash::Sha1, &smeg, &salt, 2, 1, 8)),
            "79993dfe048d3b76"
        );
        let salt = [0x05, 0xDE, 0xC9, 0x59, 0xAC, 0xFF, 0x72, 0xF7];
        assert_eq!(
            hex(&pkcs12_kdf(
                Hash::Sha256,
                &bmp_password(b"queeg"),
                &salt,
                3,
                1000,
                32
            )),
            "64bd552bb4ecec8224b888d4fa1dc49c6ff894bfc59b10402d83ad46c0d8da4b"
        );
    }

    #[test]
    fn a_written_file_reads_back_and_refuses_a_wrong_password() {
        let key = der::seq(&[&der::uint(0), &der::seq(&[]), &der::tlv(0x04, b"key")]);
        let cert = der::seq(&[&der::seq(&[]), &der::seq(&[]), &der::tlv(0x03, &[0])]);
        let salts = Salts::from_random(&[7; 48]);
        let pfx = build(
            &key,
            std::slice::from_ref(&cert),
            Some("alias"),
            b"password",
            &salts,
        );
        let got = parse(&pfx, b"password").expect("reads back");
        assert_eq!(got.private_key.as_deref(), Some(&key));
        assert_eq!(got.key_friendly_name.as_deref(), Some("alias"));
        assert_eq!(got.certificates.len(), 1);
        assert_eq!(got.certificates[0].der, cert);
        assert_eq!(got.key_certificate(), Some(0));
        assert_eq!(
            parse(&pfx, b"Password").err(),
            Some(Pkcs12Error::WrongPassword)
        );
    }

    #[test]
    fn hostile_files_are_refused_without_panicking() {
        let salts = Salts::from_random(&[1; 48]);
        let pfx = build(b"\x30\x00", &[], None, b"pw", &salts);
        for cut in 0..pfx.len() {
            assert!(parse(&pfx[..cut], b"pw").is_err());
        }
        for i in 0..pfx.len() {
            let mut bad = pfx.clone();
            bad[i] ^= 0x5A;
            let _ = parse(&bad, b"pw");
        }
        assert!(parse(&[], b"pw").is_err());
    }
}
