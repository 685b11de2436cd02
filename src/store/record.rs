//! The keystore file format: a header holding the file's data key wrapped under the store key
//! (AES key wrap, RFC 3394), then records, each encrypted with AES-256-GCM under a key derived
//! from the data key and chained with HMAC-SHA-256 (over the previous record's MAC, the sequence
//! number, the header and the sealed body) — the seed's keystore "signature".
//!
//! ```text
//! file header (128 bytes): "KSGSTOR1" | version u32 | salt [32] | wrapped data key [40] | zeros
//! record:  body_len u32 | seq u64 | kind u8 | flags u8 | reserved u16 | header tag [8]
//!          | nonce [12] | ciphertext | GCM tag [16] | mac [32]
//! header tag = HMAC(K_mac, prev_mac | "H" | first 16 bytes)[..8]   (so a damaged length is
//!              told apart from a torn tail)
//! mac (version 2) = HMAC(K_mac, prev_mac | first 24 bytes | nonce | GCM tag)
//! mac (version 1) = HMAC(K_mac, prev_mac | first 24 bytes | nonce | ciphertext | GCM tag)
//! ```
//! Version 2 chains the GCM tag rather than hashing the ciphertext a second time: the tag
//! already authenticates the ciphertext and the header (its associated data) under a key
//! derived from the data key, so the chain still binds every byte, and opening a store hashes
//! ~100 bytes per record instead of the whole body (HMAC-SHA-256 was ~15 % of a million-object
//! open). New files are version 2; a version 1 file is read and appended to as version 1 until
//! `ksg keystore compact` rewrites it.
//! The first record's `prev_mac` is HMAC(K_mac, file header). flags bit 0: more records of the
//! same atomic batch follow. Because the record keys come from the data key, changing the store
//! key only re-wraps the header.
//!
//! Why GCM for record bodies rather than AES key wrap: key wrap runs 6 sequential AES calls per
//! 8 bytes; measured here it cost ~12 µs per 460-byte record (44 % of open time), against well
//! under 1 µs for GCM with AES-NI. Key wrap keeps the job it is made for: the data key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_kw::KwAes256;
use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag as GcmTag, UnboundKey};
use sha2::Sha256;

use super::key::Key256;

/// File magic.
pub const MAGIC: &[u8; 8] = b"KSGSTOR1";
/// Format version of new files: the chain covers each record's GCM tag.
pub const VERSION: u32 = 2;
/// The first format version: the chain covers each record's whole body.
pub const VERSION_WHOLE_BODY_MAC: u32 = 1;
/// File header length.
pub const FILE_HEADER: usize = 128;
/// Record header length (including the header tag).
pub const RECORD_HEADER: usize = 24;
/// MAC length.
pub const MAC: usize = 32;
/// Nonce and GCM tag around each body.
const NONCE: usize = 12;
const GCM_TAG: usize = 16;
/// Largest sealed body accepted (a longer length is damage, not a record).
pub const MAX_BODY: usize = 64 << 20;
/// The largest plaintext a record can seal (the body adds a nonce and a tag).
pub const MAX_PLAIN: usize = MAX_BODY - NONCE - GCM_TAG;
/// flags: more records of this batch follow.
pub const FLAG_MORE: u8 = 0x01;

type HmacSha256 = Hmac<Sha256>;

/// Record nonces under one file's key: a random 96-bit start drawn when the keys are made, then
/// a counter. Never repeated within the process, whatever happens to sequence numbers (they are
/// reused after a failed write), and apart across processes unless two random starts fall
/// within one run's count of records of each other. One `getrandom` per open instead of one per
/// record (it was two system calls in every create, get and destroy of the lifecycle load).
#[derive(Debug)]
struct Nonces {
    start: u128,
    taken: AtomicU64,
}

impl Nonces {
    /// No generator, no keys: a start made up without one (the clock, say) could meet another
    /// open's, and a GCM nonce must never repeat under its key.
    fn new() -> Result<Nonces, String> {
        let mut start = [0u8; 16];
        getrandom::fill(&mut start[4..])
            .map_err(|e| format!("no random numbers for record nonces: {e}"))?;
        Ok(Nonces::starting_at(u128::from_be_bytes(start)))
    }

    fn starting_at(start: u128) -> Nonces {
        Nonces {
            start,
            taken: AtomicU64::new(0),
        }
    }

    fn next(&self) -> [u8; NONCE] {
        let n = self
            .start
            .wrapping_add(u128::from(self.taken.fetch_add(1, Ordering::Relaxed)));
        let mut nonce = [0u8; NONCE];
        nonce.copy_from_slice(&n.to_be_bytes()[16 - NONCE..]);
        nonce
    }
}

/// The keys of one keystore file.
#[derive(Clone)]
pub struct FileKeys {
    enc: LessSafeKey,
    /// Shared by clones: whichever seals, the nonce is new.
    nonces: Arc<Nonces>,
    mac: HmacSha256,
    wrapped: [u8; 40],
    /// The file's salt.
    pub salt: [u8; 32],
    /// The file's format version.
    pub version: u32,
}

impl std::fmt::Debug for FileKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKeys(***)")
    }
}

fn wrapping_key(store_key: &Key256, salt: &[u8; 32]) -> KwAes256 {
    let k = store_key.derive("wrap", salt);
    KwAes256::new_from_slice(&k.0).expect("a 32-byte key")
}

impl FileKeys {
    /// Keys for a new file: a fresh data key, wrapped under the store key.
    pub fn new(store_key: &Key256) -> Result<FileKeys, String> {
        FileKeys::new_of_version(store_key, VERSION)
    }

    /// Keys for a new file of format `version` (tests write version 1 files with it).
    pub(crate) fn new_of_version(store_key: &Key256, version: u32) -> Result<FileKeys, String> {
        let salt = Key256::random()?.0;
        let data_key = Key256::random()?;
        let mut wrapped = [0u8; 40];
        wrapping_key(store_key, &salt)
            .wrap_key(&data_key.0, &mut wrapped)
            .map_err(|e| e.to_string())?;
        FileKeys::from_data_key(&data_key, wrapped, salt, version)
    }

    fn from_data_key(
        data_key: &Key256,
        wrapped: [u8; 40],
        salt: [u8; 32],
        version: u32,
    ) -> Result<FileKeys, String> {
        let enc = data_key.derive("enc", &salt);
        let mac = data_key.derive("mac", &salt);
        Ok(FileKeys {
            enc: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &enc.0).expect("a 32-byte AES-256-GCM key"),
            ),
            nonces: Arc::new(Nonces::new()?),
            mac: <HmacSha256 as KeyInit>::new_from_slice(&mac.0)
                .expect("HMAC takes any key length"),
            wrapped,
            salt,
            version,
        })
    }

    fn hmac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// The file header for these keys.
    pub fn file_header(&self) -> [u8; FILE_HEADER] {
        let mut h = [0u8; FILE_HEADER];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&self.version.to_be_bytes());
        h[12..44].copy_from_slice(&self.salt);
        h[44..84].copy_from_slice(&self.wrapped);
        h
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

    /// The chain value after a record: `body` is its nonce, ciphertext and GCM tag.
    fn record_mac(&self, prev: &[u8; 32], head: &[u8], body: &[u8]) -> [u8; 32] {
        let mut m = self.hmac();
        m.update(prev);
        m.update(head);
        if self.version == VERSION_WHOLE_BODY_MAC {
            m.update(body);
        } else {
            m.update(&body[..NONCE]);
            m.update(&body[body.len() - GCM_TAG..]);
        }
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
        let body_len = NONCE + plaintext.len() + GCM_TAG;
        let mut head = [0u8; RECORD_HEADER];
        head[..4].copy_from_slice(&(body_len as u32).to_be_bytes());
        head[4..12].copy_from_slice(&seq.to_be_bytes());
        head[12] = kind;
        head[13] = flags;
        let tag = self.header_tag(prev, &head[..16]);
        head[16..].copy_from_slice(&tag);
        let start = out.len();
        out.reserve(RECORD_HEADER + body_len + MAC);
        out.extend_from_slice(&head);
        let nonce = self.nonces.next();
        out.extend_from_slice(&nonce);
        let ct_at = out.len();
        out.extend_from_slice(plaintext);
        let gcm_tag = self
            .enc
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&head[..16]),
                &mut out[ct_at..],
            )
            .expect("GCM seals any length below 64 GiB");
        out.extend_from_slice(gcm_tag.as_ref());
        let mac = self.record_mac(prev, &head, &out[start + RECORD_HEADER..]);
        out.extend_from_slice(&mac);
        mac
    }
}

/// Why a file header is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a keystore file, or an unknown version.
    NotAKeystore(String),
    /// The data key does not unwrap: sealed with another store key.
    WrongKey,
    /// The operating system's random generator failed (the keys need it for record nonces).
    NoRandom(String),
}

/// Checks a file header against the store key and returns the file's keys.
pub fn open_header(store_key: &Key256, header: &[u8]) -> Result<FileKeys, HeaderError> {
    if header.len() < FILE_HEADER || &header[..8] != MAGIC {
        return Err(HeaderError::NotAKeystore(
            "not a ksg keystore (bad magic)".into(),
        ));
    }
    let version = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if !matches!(version, VERSION_WHOLE_BODY_MAC | VERSION) {
        return Err(HeaderError::NotAKeystore(format!(
            "keystore format version {version} is not supported"
        )));
    }
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&header[12..44]);
    let mut wrapped = [0u8; 40];
    wrapped.copy_from_slice(&header[44..84]);
    let mut data_key = Key256([0u8; 32]);
    wrapping_key(store_key, &salt)
        .unwrap_key(&wrapped, &mut data_key.0)
        .map_err(|_| HeaderError::WrongKey)?;
    FileKeys::from_data_key(&data_key, wrapped, salt, version).map_err(HeaderError::NoRandom)
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
    if tag[..] != head[16..RECORD_HEADER] {
        return None;
    }
    parse_head(head)
}

/// A record header's fields, before its tag is checked: a reader may skip the tag when the
/// whole record's MAC (which covers the header) verifies, and check it only to tell damage
/// from a torn write. `None` when the fields themselves are impossible.
pub fn parse_head(head: &[u8]) -> Option<RecordHead> {
    if head.len() < RECORD_HEADER || head[14] != 0 || head[15] != 0 {
        return None;
    }
    let body_len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if !(NONCE + GCM_TAG..=MAX_BODY).contains(&body_len) {
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

/// Verifies a whole record (whose head verified) and decrypts its body in place; returns the
/// MAC and where the plaintext lies in `record`. `None` on damage.
pub fn open_record(
    keys: &FileKeys,
    prev: &[u8; 32],
    record: &mut [u8],
) -> Option<([u8; 32], std::ops::Range<usize>)> {
    let body_end = record.len() - MAC;
    let (head, rest) = record.split_at_mut(RECORD_HEADER);
    let (body, stored_mac) = rest.split_at_mut(body_end - RECORD_HEADER);
    if body.len() < NONCE + GCM_TAG {
        return None;
    }
    let mac = keys.record_mac(prev, head, body);
    if mac[..] != stored_mac[..] {
        return None;
    }
    let (nonce, sealed) = body.split_at_mut(NONCE);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let (ct, tag) = sealed.split_at_mut(sealed.len() - GCM_TAG);
    let tag = GcmTag::try_from(&tag[..]).ok()?;
    keys.enc
        .open_in_place_separate_tag(nonce, Aad::from(&head[..16]), tag, ct, 0..)
        .ok()?;
    let start = RECORD_HEADER + NONCE;
    Some((mac, start..start + ct.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of a record is covered, in both format versions: a flipped byte anywhere
    /// fails the header tag, the chain MAC or the GCM tag.
    #[test]
    fn seal_open_and_tamper_in_both_format_versions() {
        let store = Key256([7u8; 32]);
        for version in [VERSION_WHOLE_BODY_MAC, VERSION] {
            let keys = FileKeys::new_of_version(&store, version).expect("keys");
            let header = keys.file_header();
            let reopened = open_header(&store, &header).expect("opens");
            assert_eq!(reopened.version, version);
            assert_eq!(
                open_header(&Key256([8u8; 32]), &header).err(),
                Some(HeaderError::WrongKey)
            );
            let start = keys.chain_start(&header);
            let mut out = Vec::new();
            let mac = keys.seal(&start, 1, 2, 0, b"hello keystore", &mut out);
            let head = read_head(&keys, &start, &out[..RECORD_HEADER]).expect("head");
            assert_eq!((head.seq, head.kind, head.total()), (1, 2, out.len()));
            let mut opened = out.clone();
            let (mac2, body) = open_record(&reopened, &start, &mut opened).expect("opens");
            assert_eq!((mac2, &opened[body]), (mac, &b"hello keystore"[..]));
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x40;
                let head_ok = read_head(&keys, &start, &bad[..RECORD_HEADER]).is_some();
                assert!(
                    !head_ok || open_record(&keys, &start, &mut bad).is_none(),
                    "version {version}, byte {i}"
                );
            }
            assert!(
                read_head(&keys, &mac, &out[..RECORD_HEADER]).is_none(),
                "wrong predecessor"
            );
        }
        // Two records sealed at the same place (a sequence number is reused after a failed
        // write) with the same length: one's body under the other's header and MAC is refused,
        // though its GCM tag is genuine for that header, because the chain covers the tag.
        for version in [VERSION_WHOLE_BODY_MAC, VERSION] {
            let keys = FileKeys::new_of_version(&store, version).expect("keys");
            let start = keys.chain_start(&keys.file_header());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            keys.seal(&start, 1, 2, 0, b"first  body", &mut a);
            keys.seal(&start, 1, 2, 0, b"second body", &mut b);
            let body = RECORD_HEADER..a.len() - MAC;
            let mut spliced = a.clone();
            spliced[body.clone()].copy_from_slice(&b[body]);
            assert!(
                open_record(&keys, &start, &mut spliced).is_none(),
                "version {version}: a body spliced from another record"
            );
        }
        // The two versions chain differently: a record of one does not verify as the other.
        let v1 = FileKeys::new_of_version(&store, VERSION_WHOLE_BODY_MAC).expect("keys");
        let mut header = v1.file_header();
        header[8..12].copy_from_slice(&VERSION.to_be_bytes());
        let as_v2 = open_header(&store, &header).expect("opens");
        let start = v1.chain_start(&v1.file_header());
        let mut out = Vec::new();
        v1.seal(&start, 1, 2, 0, b"hello keystore", &mut out);
        assert!(open_record(&as_v2, &start, &mut out).is_none());
        let mut unknown = v1.file_header();
        unknown[8..12].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            open_header(&store, &unknown),
            Err(HeaderError::NotAKeystore(m)) if m.contains("version 3")
        ));
    }

    /// Counting past the top of the 96-bit nonce space wraps to its bottom, still distinct.
    #[test]
    fn nonces_wrap_within_96_bits() {
        let top = (1u128 << 96) - 2;
        let n = Nonces::starting_at(top);
        let got: Vec<[u8; NONCE]> = (0..4).map(|_| n.next()).collect();
        let mut expected = vec![[0xff; NONCE], [0xff; NONCE], [0; NONCE], [0; NONCE]];
        expected[0][NONCE - 1] = 0xfe;
        expected[3][NONCE - 1] = 1;
        assert_eq!(got, expected);
    }

    fn nonce_of(record: &[u8]) -> [u8; NONCE] {
        record[RECORD_HEADER..RECORD_HEADER + NONCE]
            .try_into()
            .expect("twelve bytes")
    }

    /// A record's nonce is new each time under the same key: for the same sequence number
    /// sealed again (after a failed write), from a clone of the keys, and from the same file
    /// opened again (another process, say), which starts elsewhere in the nonce space.
    #[test]
    fn record_nonces_are_never_reused_under_one_file_key() {
        let store = Key256([9u8; 32]);
        let keys = FileKeys::new(&store).expect("keys");
        let header = keys.file_header();
        let start = keys.chain_start(&header);
        let clone = keys.clone();
        let reopened = open_header(&store, &header).expect("opens");
        let mut seen = std::collections::HashSet::new();
        for k in [&keys, &clone, &keys, &reopened, &clone, &reopened] {
            for _ in 0..100 {
                let mut out = Vec::new();
                k.seal(&start, 1, 2, 0, b"same place, same text", &mut out);
                let mut opened = out.clone();
                assert!(open_record(&reopened, &start, &mut opened).is_some());
                assert!(seen.insert(nonce_of(&out)), "a nonce came back");
            }
        }
        // Counted on from the start: consecutive, so the space a run uses is one interval.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        keys.seal(&start, 1, 2, 0, b"x", &mut a);
        clone.seal(&start, 1, 2, 0, b"x", &mut b);
        let (a, b) = (nonce_of(&a), nonce_of(&b));
        let as_int = |n: [u8; NONCE]| {
            let mut w = [0u8; 16];
            w[16 - NONCE..].copy_from_slice(&n);
            u128::from_be_bytes(w)
        };
        assert_eq!(as_int(b).wrapping_sub(as_int(a)) & ((1u128 << 96) - 1), 1);
    }
}
