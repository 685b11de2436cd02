//! The keystore file format: a header, then records, each sealed (AES key wrap with padding,
//! RFC 5649) and chained (HMAC-SHA-256 over the previous record's MAC, the sequence number, the
//! header and the ciphertext) — the seed's keystore "signature".
//!
//! ```text
//! file header (80 bytes): "KSGSTOR1" | version u32 | salt [32] | key check [32] | reserved u32
//! record:  body_len u32 | seq u64 | kind u8 | flags u8 | reserved u16 | header tag [8]
//!          | ciphertext [body_len] | mac [32]
//! header tag = HMAC(K_mac, prev_mac | "H" | first 16 bytes)[..8]   (so a damaged length is
//!              told apart from a torn tail)
//! mac        = HMAC(K_mac, prev_mac | first 24 bytes | ciphertext)
//! ```
//! The first record's `prev_mac` is HMAC(K_mac, file header). flags bit 0: more records of the
//! same atomic batch follow.

use aes_kw::KwpAes256;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::key::Key256;

/// File magic.
pub const MAGIC: &[u8; 8] = b"KSGSTOR1";
/// Format version.
pub const VERSION: u32 = 1;
/// File header length.
pub const FILE_HEADER: usize = 80;
/// Record header length (including the header tag).
pub const RECORD_HEADER: usize = 24;
/// MAC length.
pub const MAC: usize = 32;
/// Largest sealed body accepted (a longer length is damage, not a record).
pub const MAX_BODY: usize = 64 << 20;
/// flags: more records of this batch follow.
pub const FLAG_MORE: u8 = 0x01;

type HmacSha256 = Hmac<Sha256>;

/// The keys of one keystore file.
#[derive(Clone, Debug)]
pub struct FileKeys {
    enc: Key256,
    mac: Key256,
    /// The file's salt.
    pub salt: [u8; 32],
}

impl FileKeys {
    /// Derives the keys of a file with `salt` from the store key.
    pub fn derive(store_key: &Key256, salt: [u8; 32]) -> FileKeys {
        FileKeys {
            enc: store_key.derive("enc", &salt),
            mac: store_key.derive("mac", &salt),
            salt,
        }
    }

    fn hmac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.mac.0).expect("HMAC takes any key length")
    }

    /// The file header for these keys.
    pub fn file_header(&self) -> [u8; FILE_HEADER] {
        let mut h = [0u8; FILE_HEADER];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_be_bytes());
        h[12..44].copy_from_slice(&self.salt);
        h[44..76].copy_from_slice(&self.key_check());
        h
    }

    fn key_check(&self) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(b"key check");
        m.finalize().into_bytes().into()
    }

    /// The chain's starting value for a file header.
    pub fn chain_start(&self, header: &[u8; FILE_HEADER]) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(header);
        m.finalize().into_bytes().into()
    }

    fn header_tag(&self, prev: &[u8; 32], head: &[u8]) -> [u8; 8] {
        let mut m = self.hmac();
        m.update(prev);
        m.update(b"H");
        m.update(head);
        let full = m.finalize().into_bytes();
        let mut t = [0u8; 8];
        t.copy_from_slice(&full[..8]);
        t
    }

    fn record_mac(&self, prev: &[u8; 32], head: &[u8], ciphertext: &[u8]) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(prev);
        m.update(head);
        m.update(ciphertext);
        m.finalize().into_bytes().into()
    }

    /// Seals `plaintext` as record `seq`, appending it to `out`; returns the new chain value.
    pub fn seal(
        &self,
        prev: &[u8; 32],
        seq: u64,
        kind: u8,
        flags: u8,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> [u8; 32] {
        let kwp = KwpAes256::new_from_slice(&self.enc.0).expect("a 32-byte key");
        let ct_len = (plaintext.len().div_ceil(8) + 1) * 8;
        let mut ct = vec![0u8; ct_len];
        let ct = kwp
            .wrap_key(plaintext, &mut ct)
            .expect("the buffer is sized for RFC 5649")
            .to_vec();
        let mut head = [0u8; RECORD_HEADER];
        head[..4].copy_from_slice(&(ct.len() as u32).to_be_bytes());
        head[4..12].copy_from_slice(&seq.to_be_bytes());
        head[12] = kind;
        head[13] = flags;
        let tag = self.header_tag(prev, &head[..16]);
        head[16..].copy_from_slice(&tag);
        let mac = self.record_mac(prev, &head, &ct);
        out.extend_from_slice(&head);
        out.extend_from_slice(&ct);
        out.extend_from_slice(&mac);
        mac
    }
}

/// Why a file header is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a keystore file, or an unknown version.
    NotAKeystore(String),
    /// The key check failed: sealed with another store key.
    WrongKey,
}

/// Checks a file header against the store key and returns the file's keys.
pub fn open_header(store_key: &Key256, header: &[u8]) -> Result<FileKeys, HeaderError> {
    if header.len() < FILE_HEADER || &header[..8] != MAGIC {
        return Err(HeaderError::NotAKeystore(
            "not a ksg keystore (bad magic)".into(),
        ));
    }
    let version = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if version != VERSION {
        return Err(HeaderError::NotAKeystore(format!(
            "keystore format version {version} is not supported"
        )));
    }
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&header[12..44]);
    let keys = FileKeys::derive(store_key, salt);
    let mut m = keys.hmac();
    m.update(b"key check");
    m.verify_slice(&header[44..76])
        .map_err(|_| HeaderError::WrongKey)?;
    Ok(keys)
}

/// A parsed record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHead {
    /// Ciphertext length.
    pub body_len: usize,
    /// Sequence number.
    pub seq: u64,
    /// Kind byte.
    pub kind: u8,
    /// Flags byte.
    pub flags: u8,
}

impl RecordHead {
    /// The whole record's length.
    pub fn total(&self) -> usize {
        RECORD_HEADER + self.body_len + MAC
    }
}

/// Checks a record header's tag; `None` if it does not verify (damage).
pub fn read_head(keys: &FileKeys, prev: &[u8; 32], head: &[u8]) -> Option<RecordHead> {
    let tag = keys.header_tag(prev, &head[..16]);
    if tag[..] != head[16..RECORD_HEADER] || head[14] != 0 || head[15] != 0 {
        return None;
    }
    let body_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(16..=MAX_BODY).contains(&body_len) || !body_len.is_multiple_of(8) {
        return None;
    }
    let seq = u64::from_be_bytes(head[4..12].try_into().ok()?);
    Some(RecordHead {
        body_len,
        seq,
        kind: head[12],
        flags: head[13],
    })
}

/// Verifies a whole record (whose head verified) and opens its body. `None` on damage.
pub fn open_record(
    keys: &FileKeys,
    prev: &[u8; 32],
    record: &[u8],
) -> Option<([u8; 32], Zeroizing<Vec<u8>>)> {
    let head = &record[..RECORD_HEADER];
    let ct_end = record.len() - MAC;
    let ct = &record[RECORD_HEADER..ct_end];
    let mut m = keys.hmac();
    m.update(prev);
    m.update(head);
    m.update(ct);
    let mac = m.finalize().into_bytes();
    if mac[..] != record[ct_end..] {
        return None;
    }
    let kwp = KwpAes256::new_from_slice(&keys.enc.0).expect("a 32-byte key");
    let mut buf = Zeroizing::new(vec![0u8; ct.len()]);
    let len = kwp.unwrap_key(ct, &mut buf).ok()?.len();
    buf.truncate(len);
    Some((mac.into(), buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let store = Key256([7u8; 32]);
        let keys = FileKeys::derive(&store, [1u8; 32]);
        let header = keys.file_header();
        assert!(open_header(&store, &header).is_ok());
        assert_eq!(
            open_header(&Key256([8u8; 32]), &header).err(),
            Some(HeaderError::WrongKey)
        );
        let start = keys.chain_start(&header);
        let mut out = Vec::new();
        let mac = keys.seal(&start, 1, 2, 0, b"hello keystore", &mut out);
        let head = read_head(&keys, &start, &out[..RECORD_HEADER]).expect("head");
        assert_eq!((head.seq, head.kind, head.total()), (1, 2, out.len()));
        let (mac2, body) = open_record(&keys, &start, &out).expect("opens");
        assert_eq!((mac2, body.as_slice()), (mac, &b"hello keystore"[..]));
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            let head_ok = read_head(&keys, &start, &bad[..RECORD_HEADER]).is_some();
            assert!(
                !head_ok || open_record(&keys, &start, &bad).is_none(),
                "byte {i}"
            );
        }
        assert!(
            read_head(&keys, &mac, &out[..RECORD_HEADER]).is_none(),
            "wrong predecessor"
        );
    }
}
