//! The keystore: one append-only, encrypted, chained log file (`<data>/keystore.ksg`) holding
//! every managed object's KMIP metadata and every value not kept in an HSM, plus the in-memory
//! index built from it at start.
//!
//! A change is answered only after its record is on disk: writers queue sealed records and one
//! of them (the leader) writes and fsyncs everything queued, so concurrent writers share one
//! sync (group commit). See `record.rs` for the format and `docs/ARCHITECTURE.md` for the rules
//! on damage, torn tails and recovery.

pub mod attributes;
pub mod index;
pub mod key;
pub mod object;
pub mod record;
pub mod secret;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::{self, Thread};

use zeroize::Zeroizing;

pub use index::{Criterion, Index, Key};
use key::Key256;
pub use object::{Attributes, Change, Kind, StoredAttribute, StoredObject, TokenRef};
use record::{FILE_HEADER, FLAG_MORE, FileKeys, HeaderError, MAC, RECORD_HEADER};
pub use secret::SecretBytes;

use crate::ttlv::Limits;

/// The keystore's file name in the data directory.
pub const FILE_NAME: &str = "keystore.ksg";

/// Why the keystore failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// A file operation failed.
    Io(String),
    /// The file was sealed with a different store key.
    WrongKey(PathBuf),
    /// The file is not a keystore (or of an unknown version).
    NotAKeystore(String),
    /// The chain does not verify.
    Damaged(Damage),
    /// Another process holds the keystore.
    Locked(PathBuf),
    /// Opened after damage with the recover flag: readable, not writable until re-sealed.
    ReadOnly(String),
    /// A change does not fit the current state (unknown object, no such instance …).
    Invalid(String),
    /// Writing failed (disk full …); nothing was changed.
    WriteFailed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(m) => write!(f, "keystore: {m}"),
            StoreError::WrongKey(p) => write!(
                f,
                "keystore {}: wrong store key (the file was sealed with a different key; check baseKeyPath/customerKeyPath)",
                p.display()
            ),
            StoreError::NotAKeystore(m) => write!(f, "keystore: {m}"),
            StoreError::Damaged(d) => write!(
                f,
                "keystore signature check failed at byte {} (record {}): {}; {} bytes after it cannot be trusted. \
                 Restore a backup, or set gateFlags 0x0001 (recover signature) to open what precedes the damage",
                d.offset, d.seq, d.what, d.dropped_bytes
            ),
            StoreError::Locked(p) => {
                write!(
                    f,
                    "keystore {} is in use by another process (is the gateway running?)",
                    p.display()
                )
            }
            StoreError::ReadOnly(m) => write!(f, "keystore is read-only: {m}"),
            StoreError::Invalid(m) => write!(f, "keystore: {m}"),
            StoreError::WriteFailed(m) => {
                write!(f, "keystore write failed, nothing was changed: {m}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Where and how the chain broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the first record that does not verify.
    pub offset: u64,
    /// The sequence number it should have had.
    pub seq: u64,
    /// What failed.
    pub what: String,
    /// Bytes from the damage to the end of the file.
    pub dropped_bytes: u64,
}

/// What reading the file found.
#[derive(Debug)]
pub struct Scan {
    /// Index built from the good records.
    pub index: Index,
    /// Records that verified and were applied.
    pub records: u64,
    /// Records per kind (index = kind byte).
    pub by_kind: [u64; 9],
    /// Bytes of a torn tail (an unfinished last write) that were or would be cut.
    pub torn_bytes: u64,
    /// Zero bytes after the last record: room the writer made ahead (see [`SPARE`]), kept.
    pub spare_bytes: u64,
    /// The damage, when the chain broke and recovery was asked for.
    pub damage: Option<Damage>,
    /// Records that verified but could not be applied (logged, skipped).
    pub inconsistent: Vec<String>,
    /// Length of the good prefix.
    pub good_len: u64,
    /// Chain value after the good prefix.
    prev_mac: [u8; 32],
    /// Next sequence number.
    next_seq: u64,
    keys: FileKeys,
    /// Whether the file was created by this scan.
    pub created: bool,
    /// A read error met while scanning.
    io_error: Option<StoreError>,
}

impl Scan {
    /// The file's format version (see `record.rs`).
    pub fn format_version(&self) -> u32 {
        self.keys.version
    }

    fn empty(hsm_name: &str, keys: FileKeys, header: &[u8; FILE_HEADER], created: bool) -> Scan {
        Scan {
            index: Index::new(hsm_name),
            records: 0,
            by_kind: [0; 9],
            torn_bytes: 0,
            spare_bytes: 0,
            damage: None,
            inconsistent: Vec::new(),
            good_len: FILE_HEADER as u64,
            prev_mac: keys.chain_start(header),
            next_seq: 1,
            keys,
            created,
            io_error: None,
        }
    }

    /// Takes a verified, decoded record: applied with the rest of its batch when it is the
    /// batch's last.
    fn accept(&mut self, batch: &mut Vec<Change>, change: Change, at: &Placed) {
        self.by_kind[usize::from(at.kind).min(8)] += 1;
        batch.push(change);
        if at.more {
            return;
        }
        let end = at.end();
        for c in batch.drain(..) {
            if let Err(e) = self.index.apply(c) {
                self.inconsistent
                    .push(format!("record before byte {end}: {e}"));
            }
            self.records += 1;
        }
        self.good_len = end;
        self.prev_mac = at.mac;
        self.next_seq = at.seq + 1;
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

/// Decodes the body of a record whose MAC verified (`kind`: the record kind byte); what the
/// fuzz targets reach.
pub fn decode_record_body(kind: u8, plain: &[u8]) -> Result<Change, String> {
    decode_body(kind, plain)
}

fn decode_body(kind: u8, plain: &[u8]) -> Result<Change, String> {
    let kind = Kind::from_byte(kind).ok_or_else(|| format!("unknown record kind {kind}"))?;
    let limits = Limits {
        max_size: record::MAX_BODY,
        max_depth: 64,
        max_items: 1 << 20,
    };
    object::decode_change(kind, plain, &limits)
}

/// Reads and verifies a keystore file, building the index. A missing file reads as empty
/// (and is created when `create` is set).
pub fn scan(
    path: &Path,
    store_key: &Key256,
    hsm_name: &str,
    recover: bool,
    create: bool,
) -> Result<Scan, StoreError> {
    let when_idle = HandOver {
        buffers: MAX_HANDED_BUFFERS,
        only_when_idle: true,
    };
    scan_with(path, store_key, hsm_name, recover, create, when_idle)
}

/// When the reading stage of [`scan`] hands buffers of opened records over for decoding.
#[derive(Clone, Copy)]
struct HandOver {
    /// At most this many buffers at once (none: the reader decodes everything).
    buffers: usize,
    /// Only while the applying stage has nothing queued (else: whenever a buffer is free).
    only_when_idle: bool,
}

fn scan_with(
    path: &Path,
    store_key: &Key256,
    hsm_name: &str,
    recover: bool,
    create: bool,
    hand_over: HandOver,
) -> Result<Scan, StoreError> {
    let file = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(path, e)),
    };
    let Some(file) = file else {
        let keys = FileKeys::new(store_key).map_err(StoreError::Io)?;
        let header = keys.file_header();
        if create {
            write_new_file(path, &header, &[])?;
        }
        return Ok(Scan::empty(hsm_name, keys, &header, true));
    };
    let file_len = file.metadata().map_err(|e| io(path, e))?.len();
    let mut r = file;
    let mut header = [0u8; FILE_HEADER];
    r.read_exact(&mut header)
        .map_err(|e| io(path, format!("cannot read the header: {e}")))?;
    let keys = match record::open_header(store_key, &header) {
        Ok(k) => k,
        Err(HeaderError::WrongKey) => return Err(StoreError::WrongKey(path.to_path_buf())),
        Err(HeaderError::NotAKeystore(m)) => {
            return Err(StoreError::NotAKeystore(format!("{}: {m}", path.display())));
        }
        Err(HeaderError::NoRandom(m)) => return Err(io(path, m)),
    };
    let mut s = Scan::empty(hsm_name, keys, &header, false);
    s.index.reserve(expected_objects(file_len));
    // Two stages on two cores: one thread reads, verifies, decrypts and decodes records; this
    // one applies them to the index. Decoding is the part that moves: when this stage has
    // caught up, the reader hands it whole buffers of opened records to decode (no copy), so
    // neither core waits while the other has work.
    // 16 groups of 256: about as many decoded records waiting as before grouping.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(16);
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Zeroizing<Vec<u8>>>();
    let queued = AtomicUsize::new(0);
    let producer_keys = s.keys.clone();
    let start = s.prev_mac;
    let mut outcome: Option<Result<(), Damage>> = None;
    // Records of an unfinished batch wait here until its last record arrives.
    let mut batch: Vec<Change> = Vec::new();
    thread::scope(|scope| {
        let queued = &queued;
        scope.spawn(move || {
            // Handed over in groups: one wake-up per record cost more than the record.
            let mut pending = Vec::with_capacity(EVENTS_PER_HANDOVER);
            let mut send = |e: Event| {
                // Anything but a decoded record goes at once: the applying stage may be
                // waiting for it, and an opened buffer must come back for reuse.
                let now = !matches!(e, Event::Record { .. });
                pending.push(e);
                if pending.len() < EVENTS_PER_HANDOVER && !now {
                    return true;
                }
                queued.fetch_add(1, Ordering::Relaxed);
                let group =
                    std::mem::replace(&mut pending, Vec::with_capacity(EVENTS_PER_HANDOVER));
                tx.send(group).is_ok()
            };
            let mut buffers = Buffers {
                returned: spare_rx,
                made: 0,
                policy: hand_over,
                queued,
            };
            produce(
                path,
                r,
                &producer_keys,
                start,
                file_len,
                &mut buffers,
                &mut send,
            );
            if !pending.is_empty() {
                queued.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(pending);
            }
        });
        'events: for group in rx {
            queued.fetch_sub(1, Ordering::Relaxed);
            for event in group {
                match event {
                    Event::Record { change, at } => s.accept(&mut batch, change, &at),
                    Event::Opened { buffer, records } => {
                        for (plain, at) in records {
                            match decode_body(at.kind, &buffer[plain]) {
                                Ok(change) => s.accept(&mut batch, change, &at),
                                Err(e) => {
                                    outcome = Some(Err(at.damage(e, file_len)));
                                    // Dropping the receiver stops the reader.
                                    break 'events;
                                }
                            }
                        }
                        let _ = spare_tx.send(buffer);
                    }
                    Event::Torn(bytes) => s.torn_bytes = bytes,
                    Event::Room(bytes) => s.spare_bytes = bytes,
                    Event::Damaged(d) => outcome = Some(Err(d)),
                    Event::Failed(e) => {
                        outcome = Some(Ok(()));
                        s.inconsistent.push(e.to_string());
                        s.io_error = Some(e);
                    }
                }
            }
        }
    });
    if let Some(e) = s.io_error.take() {
        return Err(e);
    }
    if let Some(Err(d)) = outcome {
        return finish_damaged(s, d, recover);
    }
    if !batch.is_empty() {
        // An unfinished batch was never acknowledged: it is part of the torn tail.
        s.torn_bytes = file_len - s.good_len;
        s.spare_bytes = 0;
    }
    s.index.shrink_to_fit();
    Ok(s)
}

/// Whether every byte `r` reads after the first `skip` is zero; stops at the first other one.
fn zeros_to_end(r: &mut impl Read, mut skip: usize) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let passed = skip.min(n);
        skip -= passed;
        if chunk[passed..n].iter().any(|&x| x != 0) {
            return Ok(false);
        }
    }
}

/// How far the writer fills the file with zeros ahead of its records: an fdatasync that only
/// overwrites blocks the file already has needs no journal commit (no size or extent change),
/// which made it ~25 % faster here. Opening a store reads an all-zero tail as such room.
const SPARE: u64 = 1 << 20;

/// The largest write buffer kept for the next batch (a batch of a few dozen records fits).
const KEPT_WRITE_BUFFER: usize = 256 << 10;

/// Bytes of file per object assumed when sizing the index before a scan: smaller than any
/// object record (a bare key's is ~600 bytes), so that the tables rarely grow while a store
/// opens.
const BYTES_PER_OBJECT: u64 = 512;

/// Objects the index makes room for at most before a scan (a file's length is no promise).
const MAX_RESERVED_OBJECTS: u64 = 2 << 20;

/// How many objects a keystore file of `file_len` bytes is sized for.
fn expected_objects(file_len: u64) -> usize {
    let objects = file_len.saturating_sub(FILE_HEADER as u64) / BYTES_PER_OBJECT;
    objects.min(MAX_RESERVED_OBJECTS) as usize
}

/// Where a verified record lies in the file and what its header says.
#[derive(Clone, Copy)]
struct Placed {
    kind: u8,
    /// More records of its batch follow.
    more: bool,
    /// Offset of its first byte.
    offset: u64,
    /// Its whole length.
    len: u64,
    seq: u64,
    mac: [u8; 32],
}

impl Placed {
    /// The offset just past it.
    fn end(&self) -> u64 {
        self.offset + self.len
    }

    /// The chain breaks at this record (its body does not decode).
    fn damage(&self, what: String, file_len: u64) -> Damage {
        Damage {
            offset: self.offset,
            seq: self.seq,
            what,
            dropped_bytes: file_len - self.offset,
        }
    }
}

/// Records opened in place in a read buffer: where each one's plaintext lies, and the record.
type OpenedRecords = Vec<(std::ops::Range<usize>, Placed)>;

/// What the reading stage of [`scan`] hands to the applying stage.
enum Event {
    /// A verified, decoded record.
    Record { change: Change, at: Placed },
    /// Verified records, decrypted in place in `buffer` but left for the applying stage to
    /// decode (it was idle); the buffer goes back to the reader afterwards.
    Opened {
        buffer: Zeroizing<Vec<u8>>,
        records: OpenedRecords,
    },
    /// The file ends in this many bytes of an unfinished write.
    Torn(u64),
    /// The file ends in this many zero bytes: room made ahead of the records.
    Room(u64),
    /// The chain breaks here.
    Damaged(Damage),
    /// Reading failed.
    Failed(StoreError),
}

/// Read buffers for the reading stage beyond its own: the ones the applying stage gave back,
/// then new ones up to the policy's number.
struct Buffers<'a> {
    returned: std::sync::mpsc::Receiver<Zeroizing<Vec<u8>>>,
    made: usize,
    policy: HandOver,
    /// Groups of events sent and not yet taken by the applying stage.
    queued: &'a AtomicUsize,
}

impl Buffers<'_> {
    /// A buffer to swap in when the current one is handed over, if the policy allows it now
    /// and one is free.
    fn for_hand_over(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        if self.policy.only_when_idle && self.queued.load(Ordering::Relaxed) > 0 {
            return None;
        }
        while let Ok(b) = self.returned.try_recv() {
            if b.len() <= READ_CHUNK {
                return Some(b);
            }
            // Grown for a record larger than a chunk: not kept, so the buffers out at once
            // stay chunk-sized (a new one may take its place).
            self.made -= 1;
        }
        (self.made < self.policy.buffers).then(|| {
            self.made += 1;
            Zeroizing::new(vec![0; READ_CHUNK])
        })
    }
}

/// Read buffers handed to the applying stage at most at once (bounds the memory an open takes).
const MAX_HANDED_BUFFERS: usize = 3;

/// Records the reading stage of [`scan`] hands over at a time.
const EVENTS_PER_HANDOVER: usize = 256;

/// Bytes read from the file at a time while records are read.
const READ_CHUNK: usize = 1 << 20;

/// The file after its header, read a chunk at a time into one buffer where records are
/// verified and decrypted in place (no copy per record; zeroed when dropped).
struct Input {
    file: File,
    buf: Zeroizing<Vec<u8>>,
    /// The unread bytes are `buf[at..end]`.
    at: usize,
    end: usize,
}

impl Input {
    /// Makes the next `n` bytes readable at `buf[at..at + n]`; an error when the file ends
    /// first (the caller asks only for bytes its length promised: the file shrank).
    fn fill(&mut self, n: usize) -> std::io::Result<()> {
        if self.end - self.at >= n {
            return Ok(());
        }
        let size = n.max(READ_CHUNK);
        if self.buf.len() < size {
            // A new buffer rather than a resize: the old one holds opened records, and is
            // zeroed as it drops (a reallocation would free it as it is).
            let mut grown = Zeroizing::new(vec![0; size]);
            grown[..self.end - self.at].copy_from_slice(&self.buf[self.at..self.end]);
            self.buf = grown;
        } else {
            self.buf.copy_within(self.at..self.end, 0);
        }
        self.end -= self.at;
        self.at = 0;
        while self.end < n {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was read",
                    ));
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the whole record at the reading position is in the buffer.
    fn holds_record(&self) -> bool {
        let unread = &self.buf[self.at..self.end];
        unread.len() >= RECORD_HEADER
            && record::parse_head(&unread[..RECORD_HEADER])
                .is_some_and(|h| h.total() <= unread.len())
    }

    /// Hands the buffer over with the opened `records` in it, reading on in `next` (which
    /// takes the unread bytes).
    fn hand_over(&mut self, mut next: Zeroizing<Vec<u8>>, records: OpenedRecords) -> Event {
        let unread = self.end - self.at;
        if next.len() < unread.max(READ_CHUNK) {
            next = Zeroizing::new(vec![0; unread.max(READ_CHUNK)]);
        }
        next[..unread].copy_from_slice(&self.buf[self.at..self.end]);
        self.at = 0;
        self.end = unread;
        Event::Opened {
            buffer: std::mem::replace(&mut self.buf, next),
            records,
        }
    }

    /// Whether every byte from `skip` bytes past the reading position to the end of the file
    /// is zero (true when the file ends before). Reads on only as far as the first other byte,
    /// into the buffer it has.
    fn zeros_after(&mut self, skip: usize) -> std::io::Result<bool> {
        let buffered = &self.buf[self.at..self.end];
        if buffered
            .get(skip..)
            .is_some_and(|b| b.iter().any(|&x| x != 0))
        {
            return Ok(false);
        }
        zeros_to_end(&mut self.file, skip.saturating_sub(buffered.len()))
    }
}

/// Reads, verifies, decrypts and decodes every record after the header, in order, giving each
/// to `send` (false: stop). While the applying stage is idle, the records of the current read
/// buffer are left for it to decode, and the buffer goes to it whole.
fn produce(
    path: &Path,
    file: File,
    keys: &FileKeys,
    start: [u8; 32],
    file_len: u64,
    buffers: &mut Buffers<'_>,
    send: &mut impl FnMut(Event) -> bool,
) {
    let mut offset = FILE_HEADER as u64;
    let mut prev = start;
    let mut seq = 1u64;
    let mut input = Input {
        file,
        buf: Zeroizing::new(Vec::new()),
        at: 0,
        end: 0,
    };
    // While handing over: the buffer that takes the current one's place when it goes, and the
    // opened records of the current one left to the applying stage.
    let mut handing: Option<(Zeroizing<Vec<u8>>, OpenedRecords)> = None;
    let last = loop {
        if let Some((next, left)) = handing.take_if(|_| !input.holds_record()) {
            // The next record is not all here: reading on would move the bytes `left` points to.
            if !send(input.hand_over(next, left)) {
                return;
            }
        }
        if offset == file_len {
            break None;
        }
        let remaining = file_len - offset;
        if remaining < RECORD_HEADER as u64 {
            break Some(match input.zeros_after(0) {
                Ok(true) => Event::Room(remaining),
                Ok(false) => Event::Torn(remaining),
                Err(e) => Event::Failed(io(path, e)),
            });
        }
        let position = Position {
            seq,
            offset,
            file_len,
        };
        let (h, mac, plain) = match open_next(&mut input, keys, &prev, position) {
            Ok(Ok(opened)) => opened,
            Ok(Err(Unopened::Damaged(what))) => {
                break Some(Event::Damaged(Damage {
                    offset,
                    seq,
                    what,
                    dropped_bytes: remaining,
                }));
            }
            Ok(Err(Unopened::Torn)) => break Some(Event::Torn(remaining)),
            Ok(Err(Unopened::Room)) => break Some(Event::Room(remaining)),
            Err(e) => break Some(Event::Failed(io(path, e))),
        };
        let at = Placed {
            kind: h.kind,
            more: h.flags & FLAG_MORE != 0,
            offset,
            len: h.total() as u64,
            seq,
            mac,
        };
        let plain = input.at + plain.start..input.at + plain.end;
        input.at += h.total();
        prev = mac;
        seq += 1;
        offset = at.end();
        if handing.is_none() {
            handing = buffers.for_hand_over().map(|next| (next, Vec::new()));
        }
        if let Some((_, left)) = &mut handing {
            left.push((plain, at));
            continue;
        }
        let change = match decode_body(h.kind, &input.buf[plain]) {
            Ok(c) => c,
            Err(e) => break Some(Event::Damaged(at.damage(e, file_len))),
        };
        if !send(Event::Record { change, at }) {
            return;
        }
    };
    if let Some((next, left)) = handing
        && !send(input.hand_over(next, left))
    {
        return;
    }
    if let Some(event) = last {
        send(event);
    }
}

/// A record opened in place: its header, MAC and where its plaintext lies in the buffer.
type Opened = (record::RecordHead, [u8; 32], std::ops::Range<usize>);

/// Where the reader stands: the sequence number due next, its offset, and the file's length.
#[derive(Clone, Copy)]
struct Position {
    seq: u64,
    offset: u64,
    file_len: u64,
}

impl Position {
    /// Bytes of the file from here.
    fn remaining(self) -> u64 {
        self.file_len - self.offset
    }
}

/// Opens the record at the reading position, or says why not as [`classify`] does.
fn open_next(
    input: &mut Input,
    keys: &FileKeys,
    prev: &[u8; 32],
    at: Position,
) -> std::io::Result<Result<Opened, Unopened>> {
    input.fill(RECORD_HEADER)?;
    // The common case first: a whole record whose MAC verifies needs no separate check of its
    // header's tag. The MAC covers the header, tag included, so only a holder of the keys could
    // make a record this accepts; a damaged length costs at most one MAC over `MAX_BODY` bytes
    // before `classify` reads the tag.
    let head = &input.buf[input.at..input.at + RECORD_HEADER];
    if let Some(h) = record::parse_head(head)
        && h.seq == at.seq
        && h.total() as u64 <= at.remaining()
    {
        input.fill(h.total())?;
        let rec = &mut input.buf[input.at..input.at + h.total()];
        if let Some((mac, plain)) = record::open_record(keys, prev, rec) {
            return Ok(Ok((h, mac, plain)));
        }
    }
    classify(input, keys, prev, at).map(Err)
}

/// Why no record opened at the reading position.
enum Unopened {
    /// The chain breaks here.
    Damaged(String),
    /// The last write was cut short here.
    Torn,
    /// Only zeros from here on: room made ahead of the records.
    Room,
}

/// Why the record at the reading position failed to open: damage, or the end of what was
/// written (torn, or the room). The writer writes records over zeros it made ahead
/// ([`SPARE`]), so the log ends where a record header is all zeros (a header never is), and a
/// write cut short leaves the start of a record followed by zeros to the end of the file. A
/// record that fails is therefore torn when it ends in zeros that begin where a write can stop
/// and only zeros follow it; a whole record that fails, or one with more data after it, is
/// damage. Zeroing the end of the last record removes it as cutting the file would; it cannot
/// hide damage before other records.
fn classify(
    input: &mut Input,
    keys: &FileKeys,
    prev: &[u8; 32],
    at: Position,
) -> std::io::Result<Unopened> {
    let damaged_unless_torn = |torn: bool, what: &str| {
        if torn {
            Unopened::Torn
        } else {
            Unopened::Damaged(what.to_string())
        }
    };
    let head = &input.buf[input.at..input.at + RECORD_HEADER];
    if head.iter().all(|&b| b == 0) {
        // Nothing was written here; what a reader may see after it is a write landing while
        // it reads (a live copy), or one a power loss left half done: never acknowledged.
        return Ok(if input.zeros_after(RECORD_HEADER)? {
            Unopened::Room
        } else {
            Unopened::Torn
        });
    }
    let Some(h) = record::read_head(keys, prev, head) else {
        let torn = input.zeros_after(RECORD_HEADER)?;
        return Ok(damaged_unless_torn(torn, "record header does not verify"));
    };
    if h.seq != at.seq {
        return Ok(Unopened::Damaged(format!(
            "sequence {} where {} was due",
            h.seq, at.seq
        )));
    }
    if (h.total() as u64) > at.remaining() {
        return Ok(Unopened::Torn);
    }
    input.fill(h.total())?;
    let rec = &input.buf[input.at..input.at + h.total()];
    let trailing_zeros = rec[RECORD_HEADER..]
        .iter()
        .rev()
        .take_while(|&&b| b == 0)
        .count();
    let end = at.offset + h.total() as u64;
    let torn = unwritten_end(end, trailing_zeros) && input.zeros_after(h.total())?;
    Ok(damaged_unless_torn(
        torn,
        "record does not verify (its MAC or GCM tag)",
    ))
}

/// Whether a record ending at file offset `end` in `trailing_zeros` zero bytes looks cut short:
/// a write stops at a sector (512 bytes) or page boundary, so the zeros it leaves begin at one;
/// eight or more zeros end a finished record's MAC once in 2^64.
fn unwritten_end(end: u64, trailing_zeros: usize) -> bool {
    let start = end - trailing_zeros as u64;
    trailing_zeros >= 8 || (trailing_zeros > 0 && start.div_ceil(512) * 512 < end)
}

fn finish_damaged(mut s: Scan, damage: Damage, recover: bool) -> Result<Scan, StoreError> {
    if !recover {
        return Err(StoreError::Damaged(damage));
    }
    s.index.shrink_to_fit();
    s.damage = Some(Damage {
        dropped_bytes: damage.dropped_bytes + (damage.offset - s.good_len),
        ..damage
    });
    Ok(s)
}

fn write_new_file(path: &Path, header: &[u8], records: &[u8]) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.write_all(header)
        .and_then(|()| f.write_all(records))
        .and_then(|()| f.sync_all())
        .map_err(|e| io(path, e))?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// What opening found, for the start-up log.
#[derive(Debug)]
pub struct OpenReport {
    /// Records applied.
    pub records: u64,
    /// Objects of this HSM_name.
    pub objects: usize,
    /// Objects of other HSM_names.
    pub foreign: usize,
    /// Torn tail bytes cut off.
    pub torn_bytes: u64,
    /// Damage tolerated under the recover flag.
    pub damage: Option<Damage>,
    /// Verified records that could not be applied.
    pub inconsistent: Vec<String>,
    /// Whether the file was new.
    pub created: bool,
}

struct LogState {
    pending: Vec<u8>,
    /// The buffer of the last write, emptied, to seal the next records into: a batch's records
    /// then go into room already there instead of growing a new buffer record by record.
    spare: Vec<u8>,
    next_seq: u64,
    prev_mac: [u8; 32],
    durable_len: u64,
    durable_mac: [u8; 32],
    /// (generation, the last durable sequence number when it ended), for the last few.
    ended: std::collections::VecDeque<(u64, u64)>,
    failure: String,
    leader: bool,
    /// Committers parked until a leader's write covers their last sequence number. Each is
    /// woken by name, so a write wakes only those it made durable (and one to lead the next).
    waiters: Vec<(u64, Thread)>,
}

/// The log's generation and last durable sequence number: written only under the log's lock,
/// and readable without it.
#[derive(Debug)]
struct DurableMark {
    /// Bumped by every failed write: what was sealed in an earlier generation and not yet
    /// durable when it ended is lost (sequence numbers are reused after a failure).
    generation: AtomicU64,
    seq: AtomicU64,
}

impl DurableMark {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Whether record `seq`, sealed in `generation`, is on disk. The generation is read again
    /// after the sequence number: sequence numbers are reused after a failed write, and a
    /// number from a later generation is published only after that generation is.
    fn covers(&self, generation: u64, seq: u64) -> bool {
        self.generation() == generation && self.seq() >= seq && self.generation() == generation
    }
}

/// The keystore file as the writer holds it.
#[derive(Debug)]
struct LogFile {
    file: File,
    /// The file's length: records, then zeros up to here.
    allocated: u64,
    /// The block the room is zero-filled from, made at the first fill and kept.
    zeros: Vec<u8>,
}

impl LogFile {
    /// Writes `records` at `at` and makes them durable, making room ahead first when they
    /// would pass the end.
    fn write_durable(&mut self, at: u64, records: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let end = at + records.len() as u64;
        if end > self.allocated {
            let room = (end + SPARE).div_ceil(4096) * 4096;
            match self
                .write_zeros(self.allocated, room)
                .and_then(|()| self.file.sync_all())
            {
                Ok(()) => self.allocated = room,
                // No space for the room (a nearly full disk): the records alone may still fit,
                // growing the file as appending did.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                    ) =>
                {
                    self.allocated = self.file.metadata()?.len().max(self.allocated);
                }
                Err(e) => return Err(e),
            }
        }
        self.file.write_all_at(records, at)?;
        self.allocated = self.allocated.max(end);
        #[cfg(test)]
        if tests::injected(&tests::FAIL_SYNC) {
            return Err(std::io::Error::other("injected sync failure"));
        }
        self.file.sync_data()
    }

    /// Writes zeros over `from..to` from one kept 64 KiB block: a fresh 1 MiB buffer for each
    /// room raised glibc's mmap threshold once freed, so the later ones came from the heap and
    /// their holes stayed resident (~6 MB after 110,000 creates). (Not a static: that would be
    /// 64 KiB more binary.)
    fn write_zeros(&mut self, from: u64, to: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if self.zeros.is_empty() {
            self.zeros = vec![0; 64 * 1024];
        }
        let mut at = from;
        while at < to {
            let n = (to - at).min(self.zeros.len() as u64) as usize;
            self.file.write_all_at(&self.zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Takes back a failed write of `at..written_to`: the file ends after the durable records.
    /// If that fails too, the failed records are zeroed where they may stand, so that neither
    /// the rebuild after the failure nor the next open reads them back as changes that were
    /// refused; and the next write zero-fills from `at` before its records (`allocated`).
    fn cut(&mut self, at: u64, written_to: u64) -> std::io::Result<()> {
        self.allocated = at;
        self.truncate(at)
            .and_then(|()| self.file.sync_all())
            .inspect_err(|_| {
                let _ = self.write_zeros(at, written_to);
            })
    }

    fn truncate(&self, at: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if tests::injected(&tests::FAIL_CUT) {
            return Err(std::io::Error::other("injected truncate failure"));
        }
        self.file.set_len(at)
    }
}

/// The open keystore.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    file: Mutex<LogFile>,
    index: RwLock<Index>,
    log: Mutex<LogState>,
    durable_mark: DurableMark,
    /// Set by a failed write (before its generation is published): memory is ahead of the
    /// file until the next commit rebuilds it.
    needs_reload: AtomicBool,
    /// The next Unique Identifier number to hand out. Never lowered: a number whose commit
    /// failed is not given again, and a commit may hold one across a reload.
    next_uid: AtomicU64,
    keys: FileKeys,
    store_key: Key256,
    hsm_name: String,
    read_only: Option<String>,
}

impl std::fmt::Debug for LogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LogState(next_seq {}, durable_len {})",
            self.next_seq, self.durable_len
        )
    }
}

impl Store {
    /// Opens (or creates) `<data_dir>/keystore.ksg`, verifying the whole chain, cutting a torn
    /// tail, and taking an exclusive lock for this process. With `recover`, damage is tolerated:
    /// the good prefix opens read-only.
    pub fn open(
        data_dir: &Path,
        store_key: &Key256,
        hsm_name: &str,
        recover: bool,
    ) -> Result<(Store, OpenReport), StoreError> {
        let path = data_dir.join(FILE_NAME);
        // Lock before reading, so two gateways never append to one file.
        let file = open_locked(&path, store_key)?;
        let s = scan(&path, store_key, hsm_name, recover, false)?;
        let file_len = file.metadata().map_err(|e| io(&path, e))?.len();
        if s.damage.is_none() && s.good_len < file_len && s.spare_bytes == 0 {
            file.set_len(s.good_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| io(&path, e))?;
        }
        let read_only = s.damage.as_ref().map(|d| {
            format!(
                "the keystore failed its signature check at byte {} and was opened with gateFlags 0x0001; \
                 stop the gateway and run `ksg keystore compact --recover` to re-seal it",
                d.offset
            )
        });
        let report = OpenReport {
            records: s.records,
            objects: s.index.len(),
            foreign: s.index.foreign_len(),
            torn_bytes: if s.damage.is_some() { 0 } else { s.torn_bytes },
            damage: s.damage.clone(),
            inconsistent: s.inconsistent.clone(),
            created: s.created,
        };
        let log = LogState {
            pending: Vec::new(),
            spare: Vec::new(),
            next_seq: s.next_seq,
            prev_mac: s.prev_mac,
            durable_len: s.good_len,
            durable_mac: s.prev_mac,
            ended: std::collections::VecDeque::new(),
            failure: String::new(),
            leader: false,
            waiters: Vec::new(),
        };
        let next_uid = s.index.next_uid();
        let store = Store {
            path,
            file: Mutex::new(LogFile {
                // A torn tail was cut above; room is kept.
                allocated: s.good_len + s.spare_bytes,
                file,
                zeros: Vec::new(),
            }),
            index: RwLock::new(s.index),
            durable_mark: DurableMark {
                generation: AtomicU64::new(0),
                seq: AtomicU64::new(s.next_seq - 1),
            },
            log: Mutex::new(log),
            needs_reload: AtomicBool::new(false),
            next_uid: AtomicU64::new(next_uid),
            keys: s.keys,
            store_key: store_key.clone(),
            hsm_name: hsm_name.to_string(),
            read_only,
        };
        Ok((store, report))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why writes are refused, if they are.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Read access to the index.
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls `f` with the object `uid`, if it exists.
    pub fn with_object<R>(&self, uid: &str, f: impl FnOnce(&StoredObject) -> R) -> Option<R> {
        self.read().get(uid).map(f)
    }

    /// The Unique Identifiers matching every criterion.
    pub fn find(&self, criteria: &[Criterion]) -> Vec<String> {
        self.read().find(criteria)
    }

    /// Applies `changes` atomically and returns once they are on disk. A `Create` whose object
    /// has an empty Unique Identifier gets the next one; the results are, per change, the
    /// Unique Identifier (creates) or the Attribute Index (attribute changes).
    pub fn commit(&self, mut changes: Vec<Change>) -> Result<Vec<CommitResult>, StoreError> {
        if let Some(r) = &self.read_only {
            return Err(StoreError::ReadOnly(r.clone()));
        }
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        // New objects get their numbers without a lock, so that their records can be encoded
        // before the index's exclusive lock is taken: readers wait only for the apply.
        for c in &mut changes {
            if let Change::Create(o) = c
                && o.uid.is_empty()
            {
                let n = self.reserve_uid().ok_or_else(|| {
                    StoreError::Invalid("no Unique Identifier is left to give".into())
                })?;
                o.uid = n.to_string();
            }
        }
        // An added attribute's index depends on the object as it is then: encoded under the lock.
        let plains = changes
            .iter()
            .map(|c| match c {
                Change::AddAttribute { index: None, .. } => Ok(None),
                _ => encode_record(c).map(Some),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
        // The generation first: a failed write raises the flag before it publishes a new one.
        let applied_in = self.durable_mark.generation();
        if self.needs_reload.load(Ordering::Acquire) {
            self.reload(&mut idx)?;
        }
        let touched: Vec<String> = changes.iter().filter_map(change_uid).collect();
        let before: Vec<(String, Option<StoredObject>)> = touched
            .iter()
            .map(|u| (u.clone(), idx.get(u).cloned()))
            .collect();
        let mut results = Vec::with_capacity(changes.len());
        let mut sealed_changes = Vec::with_capacity(changes.len());
        for (mut c, plain) in changes.into_iter().zip(plains) {
            let uid = change_uid(&c);
            let kind = c.kind() as u8;
            // An added attribute gets its index here, so that its record says which it became.
            if let Change::AddAttribute {
                uid, name, index, ..
            } = &mut c
                && index.is_none()
                && let Some(o) = idx.get(uid)
            {
                *index = Some(o.next_index(name));
            }
            let plain = plain.map_or_else(|| encode_record(&c), Ok);
            let applied = plain.and_then(|plain| {
                let index = idx
                    .apply(c)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                Ok((index, plain))
            });
            match applied {
                Ok((index, plain)) => {
                    results.push(CommitResult { uid, index });
                    sealed_changes.push((kind, plain));
                }
                Err(e) => {
                    undo(&mut idx, before);
                    return Err(e);
                }
            }
        }
        #[cfg(test)]
        tests::before_seal(self);
        // Sealed in apply order: the log's lock is taken before the index's is let go.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable_mark.generation() != applied_in {
            // A write failed while these changes were applied: they may build on records it
            // lost (a change to an object whose Create never reached the disk). Refused; the
            // next commit rebuilds memory from the file.
            undo(&mut idx, before);
            return Err(StoreError::WriteFailed(log.failure.clone()));
        }
        drop(idx);
        let (my_seq, my_gen) = {
            let n = sealed_changes.len();
            for (i, (kind, plain)) in sealed_changes.iter().enumerate() {
                let flags = if i + 1 < n { FLAG_MORE } else { 0 };
                let (seq, prev) = (log.next_seq, log.prev_mac);
                let mut pending = std::mem::take(&mut log.pending);
                log.prev_mac = self
                    .keys
                    .seal(&prev, seq, *kind, flags, plain, &mut pending);
                log.pending = pending;
                log.next_seq += 1;
            }
            (log.next_seq - 1, self.durable_mark.generation())
        };
        self.wait_durable(log, my_seq, my_gen)?;
        Ok(results)
    }

    fn wait_durable<'a>(
        &'a self,
        mut log: MutexGuard<'a, LogState>,
        my_seq: u64,
        my_gen: u64,
    ) -> Result<(), StoreError> {
        loop {
            if my_gen != self.durable_mark.generation() {
                // A write failed after these records were sealed: they are on disk only if
                // they were durable when their generation ended.
                let durable_then = log
                    .ended
                    .iter()
                    .find(|(g, _)| *g == my_gen)
                    .map_or(0, |(_, d)| *d);
                return if my_seq <= durable_then {
                    Ok(())
                } else {
                    Err(StoreError::WriteFailed(log.failure.clone()))
                };
            }
            if self.durable_mark.seq() >= my_seq {
                return Ok(());
            }
            if log.leader {
                let me = thread::current();
                if !log.waiters.iter().any(|(_, t)| t.id() == me.id()) {
                    log.waiters.push((my_seq, me));
                }
                drop(log);
                thread::park();
                // Woken by the write that covered these records, most likely: then there is no
                // need to queue for the lock. Otherwise (to lead, or spuriously) look again.
                if self.durable_mark.covers(my_gen, my_seq) {
                    return Ok(());
                }
                log = self.log.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            log.leader = true;
            let spare = std::mem::take(&mut log.spare);
            let mut buf = std::mem::replace(&mut log.pending, spare);
            let upto = log.next_seq - 1;
            let last_mac = log.prev_mac;
            let start_len = log.durable_len;
            drop(log);
            let result = {
                let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
                // Take back whatever part of a failed write reached the file, so the chain stays
                // whole; a failure to do so is told with the write's.
                f.write_durable(start_len, &buf).map_err(|e| {
                    match f.cut(start_len, start_len + buf.len() as u64) {
                        Ok(()) => e,
                        Err(cut) => std::io::Error::new(
                            e.kind(),
                            format!(
                                "{e}; cutting the file back to {start_len} bytes failed too: {cut}"
                            ),
                        ),
                    }
                })
            };
            log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.leader = false;
            let answered = match result {
                Ok(()) => {
                    log.durable_len = start_len + buf.len() as u64;
                    log.durable_mac = last_mac;
                    self.durable_mark.seq.store(upto, Ordering::Release);
                    Some(upto)
                }
                Err(e) => {
                    self.end_generation(&mut log, &e);
                    None
                }
            };
            let woken = answered_waiters(&mut log.waiters, answered);
            // Kept unless a large batch grew it (sealed records only: nothing secret).
            if buf.capacity() <= KEPT_WRITE_BUFFER {
                buf.clear();
                log.spare = buf;
            }
            // The leader's records were in its write: they stand or fall with it.
            let outcome = match answered {
                Some(_) => Ok(()),
                None => Err(StoreError::WriteFailed(log.failure.clone())),
            };
            // Woken after the lock is let go: each wake is a system call, and committers wait
            // for this lock while they hold the index's, which every reader then waits for.
            drop(log);
            for t in woken {
                t.unpark();
            }
            return outcome;
        }
    }

    /// After a failed write: everything sealed after the durable point chains from records
    /// that are not on disk, so all of it fails, and memory is rebuilt from the file before the
    /// next commit.
    fn end_generation(&self, log: &mut LogState, e: &dyn std::fmt::Display) {
        let (generation, durable_seq) = (self.durable_mark.generation(), self.durable_mark.seq());
        self.needs_reload.store(true, Ordering::Release);
        log.ended.push_back((generation, durable_seq));
        if log.ended.len() > 64 {
            log.ended.pop_front();
        }
        self.durable_mark
            .generation
            .store(generation + 1, Ordering::Release);
        log.failure = format!("{}: {e}", self.path.display());
        log.pending.clear();
        log.next_seq = durable_seq + 1;
        log.prev_mac = log.durable_mac;
    }

    /// Rebuilds the index from the file (after a failed write left memory ahead of the disk).
    fn reload(&self, idx: &mut Index) -> Result<(), StoreError> {
        let generation = self.durable_mark.generation();
        let s = scan(&self.path, &self.store_key, &self.hsm_name, false, false)?;
        *idx = s.index;
        // Numbers handed out before the failure stay used (commits may hold them now).
        self.next_uid.fetch_max(idx.next_uid(), Ordering::Relaxed);
        // A write that failed during the scan leaves the flag up for the next commit.
        if self.durable_mark.generation() == generation {
            self.needs_reload.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// Takes the next Unique Identifier number for a new object.
    fn reserve_uid(&self) -> Option<u64> {
        self.next_uid
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .ok()
    }

    /// Whether a failed write is waiting for the index to be rebuilt.
    pub fn needs_reload(&self) -> bool {
        self.needs_reload.load(Ordering::Acquire)
    }
}

/// What one committed change produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitResult {
    /// The object's Unique Identifier.
    pub uid: Option<String>,
    /// The Attribute Index of an added or modified instance.
    pub index: Option<u32>,
}

fn change_uid(c: &Change) -> Option<String> {
    c.uid().map(str::to_string)
}

/// Puts back the objects a failed commit touched. Numbers it reserved stay used: others may
/// have been reserved after them.
fn undo(idx: &mut Index, before: Vec<(String, Option<StoredObject>)>) {
    for (uid, _) in &before {
        if idx.get(uid).is_some() {
            let _ = idx.apply(Change::Erase { uid: uid.clone() });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (uid, obj) in before {
        if let Some(o) = obj
            && seen.insert(uid)
        {
            let _ = idx.apply(Change::Create(o));
        }
    }
}

/// A change's record body, checked against the reader's limit.
fn encode_record(c: &Change) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    // The writer never leaves a copy of key material behind as the buffer grows; most records
    // fit the first allocation.
    let mut plain = Zeroizing::new(Vec::with_capacity(1024));
    object::write_change(c, &mut plain)
        .map_err(|e| StoreError::Invalid(format!("cannot encode a record: {e}")))?;
    // A record the reader would refuse must never be written (it would read as damage).
    if plain.len() > record::MAX_PLAIN {
        return Err(StoreError::Invalid(format!(
            "a record of {} bytes exceeds the keystore's {} byte limit",
            plain.len(),
            record::MAX_PLAIN
        )));
    }
    Ok(plain)
}

fn open_locked(path: &Path, store_key: &Key256) -> Result<File, StoreError> {
    if !path.exists() {
        let keys = FileKeys::new(store_key).map_err(StoreError::Io)?;
        write_new_file(path, &keys.file_header(), &[])?;
    }
    // A compaction renames its new file over the path: one that did so between this open and
    // this lock would leave the lock, and every later write, on the file it replaced, while the
    // scan reads the new one. So the locked file must still be the one the path names.
    for _ in 0..3 {
        // Written at explicit offsets (records overwrite the zeros made ahead), not appended.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        #[cfg(test)]
        tests::between_open_and_lock(path);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked(path.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(path, e)),
        }
        if still_at(path, &file).map_err(|e| io(path, e))? {
            return Ok(file);
        }
    }
    // Replaced under us each time: another process is at work on it.
    Err(StoreError::Locked(path.to_path_buf()))
}

/// Whether `path` still names `file` (the same device and inode).
fn still_at(path: &Path, file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (named, held) = (std::fs::metadata(path)?, file.metadata()?);
    Ok(named.dev() == held.dev() && named.ino() == held.ino())
}

/// What compaction did.
#[derive(Debug)]
pub struct CompactReport {
    /// Records in the old file.
    pub old_records: u64,
    /// Objects written (all HSM_names).
    pub objects: usize,
    /// Old and new sizes in bytes.
    pub old_bytes: u64,
    /// New size.
    pub new_bytes: u64,
    /// Where the damaged original was kept, when re-sealing after damage.
    pub damaged_copy: Option<PathBuf>,
}

/// Takes out the committers a leader's write has answered, to be woken: those whose records
/// it made durable (`durable_upto`), or all of them when it failed. If any are left, one is
/// taken too, to lead the write of their records, which are queued already.
fn answered_waiters(waiters: &mut Vec<(u64, Thread)>, durable_upto: Option<u64>) -> Vec<Thread> {
    if waiters.is_empty() {
        return Vec::new();
    }
    let mut woken = Vec::with_capacity(waiters.len());
    let mut next_leader: Option<Thread> = None;
    waiters.retain(|(seq, t)| {
        if durable_upto.is_none_or(|upto| *seq <= upto) {
            woken.push(t.clone());
            false
        } else if next_leader.is_none() {
            next_leader = Some(t.clone());
            false
        } else {
            true
        }
    });
    woken.extend(next_leader);
    woken
}

/// Rewrites the keystore as one record per live object (under a fresh salt), swapping it in
/// atomically. Needs the gateway stopped (it takes the same lock). With `recover`, a damaged
/// file is re-sealed from its good prefix and the original is kept beside it.
pub fn compact(
    data_dir: &Path,
    store_key: &Key256,
    recover: bool,
    now: i64,
) -> Result<CompactReport, StoreError> {
    let path = data_dir.join(FILE_NAME);
    if !path.exists() {
        return Err(io(&path, "no keystore to compact"));
    }
    let lock = open_locked(&path, store_key)?;
    let old_bytes = lock.metadata().map_err(|e| io(&path, e))?.len();
    let s = scan(&path, store_key, "", recover, false)?;
    let keys = FileKeys::new(store_key).map_err(StoreError::Io)?;
    let header = keys.file_header();
    let mut prev = keys.chain_start(&header);
    let mut body = Vec::new();
    // In identifier order (numbers first, as made): compaction reads every object as another
    // HSM_name's, kept in a hashed table, and a store written in that table's order opened
    // ~10 % slower at a million objects (its identifier table filled out of order).
    let mut objects: Vec<&StoredObject> = s.index.all().collect();
    objects.sort_unstable_by(|a, b| {
        let number = |o: &StoredObject| o.uid.parse::<u64>().unwrap_or(u64::MAX);
        number(a).cmp(&number(b)).then_with(|| a.uid.cmp(&b.uid))
    });
    let all: Vec<Change> = std::iter::once(Change::UidFloor(s.index.next_uid()))
        .chain(objects.into_iter().cloned().map(Change::Create))
        .collect();
    for (seq, c) in (1u64..).zip(all.iter()) {
        let mut plain = Zeroizing::new(Vec::new());
        object::write_change(c, &mut plain).map_err(|e| StoreError::Invalid(e.to_string()))?;
        prev = keys.seal(&prev, seq, c.kind() as u8, 0, &plain, &mut body);
    }
    let tmp = data_dir.join(format!("{FILE_NAME}.compact"));
    let _ = std::fs::remove_file(&tmp);
    write_new_file(&tmp, &header, &body)?;
    let damaged_copy = if s.damage.is_some() {
        let copy = data_dir.join(format!("{FILE_NAME}.damaged-{now}"));
        std::fs::hard_link(&path, &copy).map_err(|e| io(&copy, e))?;
        Some(copy)
    } else {
        None
    };
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
    sync_dir(&path)?;
    drop(lock);
    Ok(CompactReport {
        old_records: s.records,
        objects: all.len() - 1,
        old_bytes,
        new_bytes: (FILE_HEADER + body.len()) as u64,
        damaged_copy,
    })
}

/// Bytes of sealed record overhead (header and MAC), for sizing.
pub const RECORD_OVERHEAD: usize = RECORD_HEADER + MAC;

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// What a test injects between a commit's apply and its seal.
    type Hook = Box<dyn FnOnce(&Store)>;
    type PathHook = Box<dyn FnOnce(&Path)>;

    thread_local! {
        /// Runs on this thread between a commit's apply and its seal, once.
        static BEFORE_SEAL: RefCell<Option<Hook>> = RefCell::new(None);
        /// Runs on this thread between opening the keystore file and locking it, once.
        static BETWEEN_OPEN_AND_LOCK: RefCell<Option<PathHook>> = RefCell::new(None);
        /// The next `sync_data` of a write led by this thread fails, once.
        pub(super) static FAIL_SYNC: Cell<bool> = const { Cell::new(false) };
        /// The next cut back of a failed write led by this thread fails, once.
        pub(super) static FAIL_CUT: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether a failure was injected into `flag` on this thread; it is taken.
    pub(super) fn injected(flag: &'static thread::LocalKey<Cell<bool>>) -> bool {
        flag.with(|f| f.replace(false))
    }

    pub(super) fn between_open_and_lock(path: &Path) {
        if let Some(f) = BETWEEN_OPEN_AND_LOCK.with(|h| h.borrow_mut().take()) {
            f(path);
        }
    }

    /// A compaction's rename lands between the gateway's open of the file and its lock: the
    /// gateway locks and writes the new file, so what it commits is there when it opens again
    /// (before, the lock and the writes stayed on the replaced file, and were lost with it).
    #[test]
    fn a_keystore_replaced_between_open_and_lock_is_opened_anew() {
        let (dir, store, _) = store_with_one_key("replaced-old");
        drop(store);
        // The replacement holds one object more than the file it replaces.
        let (other, other_store, _) = store_with_one_key("replaced-new");
        let only_new = create_bare_key(&other_store);
        drop(other_store);
        let replacement = other.join(FILE_NAME);
        BETWEEN_OPEN_AND_LOCK.with(|h| {
            *h.borrow_mut() = Some(Box::new(move |path: &Path| {
                std::fs::rename(&replacement, path).expect("rename over");
            }));
        });
        let (store, _) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("open");
        assert!(
            store.with_object(&only_new, |_| ()).is_some(),
            "the replacement was read"
        );
        let added = create_bare_key(&store);
        drop(store);
        let (store, _) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("reopen");
        assert!(
            store.with_object(&added, |_| ()).is_some(),
            "the create after the replacement is in the file the path names"
        );
    }

    pub(super) fn before_seal(store: &Store) {
        if let Some(f) = BEFORE_SEAL.with(|h| h.borrow_mut().take()) {
            f(store);
        }
    }

    #[test]
    fn a_record_looks_cut_short_when_its_zeros_begin_where_a_write_can_stop() {
        // Eight zeros or more: cut short wherever they begin.
        assert!(unwritten_end(1000, 8));
        assert!(unwritten_end(1000, 300));
        // Fewer: only when a sector boundary lies among them (the write stopped there).
        assert!(unwritten_end(1027, 3), "zeros from 1024");
        assert!(unwritten_end(1030, 7), "zeros from 1023, 1024 among them");
        assert!(unwritten_end(4099, 4), "zeros from 4095, a page boundary");
        assert!(!unwritten_end(1000, 3), "zeros from 997: no boundary");
        assert!(
            !unwritten_end(1024, 7),
            "zeros end at 1024, begin after 512"
        );
        assert!(!unwritten_end(1000, 0), "a record ending in data");
    }

    fn bare_key() -> StoredObject {
        StoredObject {
            uid: String::new(),
            object_type: 2,
            state: 1,
            owner: None,
            hsm_name: "test".into(),
            attributes: Attributes::default(),
            token_ref: None,
            value: None,
        }
    }

    /// A fresh store in a temporary directory holding one key: the directory, the store and
    /// the key's Unique Identifier.
    fn store_with_one_key(test: &str) -> (crate::test_dir::TempDir, Store, String) {
        let dir = crate::test_dir::TempDir::new(test);
        let (store, _) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("open");
        let kept = create_bare_key(&store);
        (dir, store, kept)
    }

    /// Commits a new bare key; its Unique Identifier.
    fn create_bare_key(store: &Store) -> String {
        store
            .commit(vec![Change::Create(bare_key())])
            .expect("create")[0]
            .uid
            .clone()
            .expect("uid")
    }

    /// The change of `uid`'s State to `state`, as a commit takes it.
    fn set_state(uid: &str, state: u32) -> Vec<Change> {
        vec![Change::State {
            uid: uid.to_string(),
            state,
        }]
    }

    /// Checks that a commit was refused as a failed write whose message has `text`.
    fn assert_write_failed<T: std::fmt::Debug>(r: Result<T, StoreError>, text: &str) {
        assert!(
            matches!(r, Err(StoreError::WriteFailed(ref m)) if m.contains(text)),
            "{r:?}"
        );
    }

    /// A key named `name` with a 32-byte value, like the objects of a real store.
    fn named_key(name: &str) -> StoredObject {
        let mut o = bare_key();
        let name = crate::ttlv::Item::structure(
            crate::ttlv::Tag::ATTRIBUTE_VALUE,
            vec![
                crate::ttlv::Item::new(
                    crate::ttlv::Tag::NAME_VALUE,
                    crate::ttlv::Value::TextString(name.into()),
                ),
                crate::ttlv::Item::new(
                    crate::ttlv::Tag::NAME_TYPE,
                    crate::ttlv::Value::Enumeration(1),
                ),
            ],
        );
        assert!(o.attributes.push("Name", 0, &name));
        o.value = Some(SecretBytes::new(vec![0x5A; 32]));
        o
    }

    #[test]
    fn records_open_the_same_whichever_stage_decodes_them_up_to_a_body_that_does_not_decode() {
        let dir = crate::test_dir::TempDir::new("hand-over");
        let store_key = Key256([7; 32]);
        let (store, _) = Store::open(&dir, &store_key, "test", false).expect("open");
        // Several read buffers' worth, in batches (some records carry FLAG_MORE), each batch
        // followed by changes to objects it made: applied out of order, they would not fit.
        for from in (0..16000).step_by(1000) {
            let batch = (from..from + 1000).map(|i| Change::Create(named_key(&format!("k{i}"))));
            let made = store.commit(batch.collect()).expect("batch");
            let uid = |i: usize| made[i].uid.clone().expect("uid");
            store
                .commit(vec![Change::State {
                    uid: uid(0),
                    state: 2,
                }])
                .expect("state");
            store
                .commit(vec![Change::Erase { uid: uid(1) }])
                .expect("erase");
        }
        drop(store);
        let path = dir.join(FILE_NAME);
        let policies = [
            HandOver {
                buffers: 0,
                only_when_idle: true,
            },
            // Every buffer goes to the applying stage (the test file is a few MiB).
            HandOver {
                buffers: usize::MAX,
                only_when_idle: false,
            },
            HandOver {
                buffers: MAX_HANDED_BUFFERS,
                only_when_idle: true,
            },
        ];
        let open = |policy: HandOver| {
            let s = scan_with(&path, &store_key, "test", true, false, policy).expect("scan");
            let mut objects: Vec<StoredObject> = s.index.all().cloned().collect();
            objects.sort_by(|a, b| a.uid.cmp(&b.uid));
            assert!(s.inconsistent.is_empty(), "{:?}", s.inconsistent);
            let summary = (s.records, s.by_kind, s.good_len, s.prev_mac, s.next_seq);
            (summary, s.spare_bytes, s.damage, objects)
        };
        let whole = open(policies[0]);
        assert_eq!((whole.0.0, whole.3.len()), (16000 + 2 * 16, 16000 - 16));
        assert_eq!(whole.3.iter().filter(|o| o.state == 2).count(), 16);
        assert!(
            whole.0.2 > 3 * READ_CHUNK as u64,
            "records straddle read buffers"
        );
        assert!(whole.2.is_none());
        for policy in &policies[1..] {
            assert!(open(*policy) == whole, "the same store, the same index");
        }
        // Seal a record whose body is not a change, then a good one after it, over the room
        // the writer left: the chain verifies through both; the first does not decode.
        let mut bytes = std::fs::read(&path).expect("read");
        let keys = record::open_header(&store_key, &bytes[..FILE_HEADER]).expect("keys");
        let (good_len, prev, seq) = (whole.0.2 as usize, whole.0.3, whole.0.4);
        let mut tail = Vec::new();
        let mac = keys.seal(
            &prev,
            seq,
            Kind::Create as u8,
            0,
            b"not a change",
            &mut tail,
        );
        let mut good = Zeroizing::new(Vec::new());
        object::write_change(&Change::Create(named_key("after")), &mut good).expect("encode");
        keys.seal(&mac, seq + 1, Kind::Create as u8, 0, &good, &mut tail);
        bytes[good_len..good_len + tail.len()].copy_from_slice(&tail);
        std::fs::write(&path, &bytes).expect("write");
        let expected = Damage {
            offset: good_len as u64,
            seq,
            what: String::new(),
            dropped_bytes: (bytes.len() - good_len) as u64,
        };
        for policy in policies {
            let (summary, _, damage, objects) = open(policy);
            assert!(
                summary == whole.0 && objects == whole.3,
                "nothing after the damage"
            );
            let damage = damage.expect("damage");
            assert!(!damage.what.is_empty());
            assert_eq!(
                Damage {
                    what: String::new(),
                    ..damage
                },
                expected
            );
        }
    }

    #[test]
    fn a_version_1_file_is_read_and_appended_to_as_such_until_compaction_makes_it_version_2() {
        let dir = crate::test_dir::TempDir::new("version-1");
        let store_key = Key256([7; 32]);
        let path = dir.join(FILE_NAME);
        let version_of = || {
            let bytes = std::fs::read(&path).expect("read");
            u32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"))
        };
        let v1 =
            FileKeys::new_of_version(&store_key, record::VERSION_WHOLE_BODY_MAC).expect("keys");
        let header = v1.file_header();
        let mut prev = v1.chain_start(&header);
        let mut records = Vec::new();
        for (seq, name) in (1u64..).zip(["a", "b", "c"]) {
            let mut o = named_key(name);
            o.uid = seq.to_string();
            let c = Change::Create(o);
            let mut plain = Zeroizing::new(Vec::new());
            object::write_change(&c, &mut plain).expect("encode");
            prev = v1.seal(&prev, seq, c.kind() as u8, 0, &plain, &mut records);
        }
        write_new_file(&path, &header, &records).expect("write");
        let names = |store: &Store| {
            let mut n: Vec<String> = store
                .read()
                .iter()
                .filter_map(|o| o.attributes.first("Name"))
                .map(|v| format!("{v:?}"))
                .collect();
            n.sort();
            n
        };
        let (store, report) = Store::open(&dir, &store_key, "test", false).expect("open v1");
        assert_eq!(report.objects, 3);
        store
            .commit(vec![Change::Create(named_key("d"))])
            .expect("append");
        let before = names(&store);
        drop(store);
        assert_eq!(
            version_of(),
            record::VERSION_WHOLE_BODY_MAC,
            "appended as version 1"
        );
        let (store, report) = Store::open(&dir, &store_key, "test", false).expect("reopen v1");
        assert_eq!((report.objects, report.records), (4, 4));
        assert_eq!(names(&store), before);
        drop(store);
        compact(&dir, &store_key, false, 0).expect("compact");
        assert_eq!(version_of(), record::VERSION);
        let (store, report) = Store::open(&dir, &store_key, "test", false).expect("open v2");
        assert_eq!(report.objects, 4);
        assert_eq!(names(&store), before);
        drop(store);
    }

    /// Makes a write fail (as another writer's would) when this thread's next commit has
    /// applied its changes and not yet sealed them.
    fn fail_a_write_before_the_next_seal() {
        BEFORE_SEAL.with(|h| {
            *h.borrow_mut() = Some(Box::new(|s: &Store| {
                let mut log = s.log.lock().unwrap_or_else(|p| p.into_inner());
                s.end_generation(&mut log, &"injected write failure");
            }));
        });
    }

    #[test]
    fn a_commit_applied_while_a_write_failed_is_undone_and_refused() {
        let (dir, store, kept) = store_with_one_key("failed-gen");
        // Another writer's write fails after this commit applied its change, before it seals.
        fail_a_write_before_the_next_seal();
        assert_write_failed(store.commit(set_state(&kept, 2)), "injected");
        assert_eq!(store.with_object(&kept, |o| o.state), Some(1), "undone");
        // The next commit rebuilds memory from the file and goes on.
        store
            .commit(vec![Change::Create(bare_key())])
            .expect("create after the failure");
        drop(store);
        let (store, report) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("reopen");
        assert_eq!((report.objects, report.records), (2, 2));
        assert!(report.inconsistent.is_empty(), "{:?}", report.inconsistent);
        assert_eq!(store.with_object(&kept, |o| o.state), Some(1));
        drop(store);
    }

    #[test]
    fn a_write_that_fails_and_cannot_be_cut_back_says_so_and_the_store_goes_on() {
        let (dir, store, kept) = store_with_one_key("uncut");
        // A handle that can neither write nor truncate: the write fails, and so does the cut.
        let read_only = File::open(&store.path).expect("open read-only");
        let writable = std::mem::replace(&mut store.file.lock().expect("file").file, read_only);
        assert_write_failed(store.commit(set_state(&kept, 2)), "cutting the file back");
        store.file.lock().expect("file").file = writable;
        store
            .commit(set_state(&kept, 3))
            .expect("a commit after the failure");
        drop(store);
        let (store, report) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("reopen");
        assert_eq!((report.objects, report.records), (1, 2));
        assert_eq!(report.torn_bytes, 0);
        assert_eq!(store.with_object(&kept, |o| o.state), Some(3));
    }

    #[test]
    fn records_of_a_failed_write_that_could_not_be_cut_back_are_not_read_back() {
        let (dir, store, kept) = store_with_one_key("uncut-written");
        // The records reach the file, their sync fails, and so does the truncate.
        FAIL_SYNC.with(|f| f.set(true));
        FAIL_CUT.with(|f| f.set(true));
        assert_write_failed(store.commit(set_state(&kept, 2)), "cutting the file back");
        // The next commit rebuilds memory from the file: the refused change is not in it.
        store
            .commit(vec![Change::Create(bare_key())])
            .expect("a commit after the failure");
        assert_eq!(store.with_object(&kept, |o| o.state), Some(1));
        drop(store);
        let (store, report) = Store::open(&dir, &Key256([7; 32]), "test", false).expect("reopen");
        assert_eq!(
            (report.objects, report.records, report.torn_bytes),
            (2, 2, 0)
        );
        assert!(report.inconsistent.is_empty(), "{:?}", report.inconsistent);
        assert_eq!(store.with_object(&kept, |o| o.state), Some(1));
    }

    #[test]
    fn a_number_reserved_before_a_failed_write_is_not_given_again_after_the_reload() {
        let (_dir, store, kept) = store_with_one_key("reserved");
        // A commit in flight holds the next number when another write fails; the reload that
        // follows reads a file that never saw that number.
        let in_flight = store.reserve_uid().expect("a number");
        fail_a_write_before_the_next_seal();
        assert!(store.commit(set_state(&kept, 2)).is_err());
        // This commit reloads memory from the file; the Create after it reserves its number.
        store
            .commit(set_state(&kept, 2))
            .expect("a commit after the failure");
        let next: u64 = store
            .commit(vec![Change::Create(bare_key())])
            .expect("create after the failure")[0]
            .uid
            .as_deref()
            .expect("uid")
            .parse()
            .expect("a number");
        assert!(next > in_flight, "{next} given again after {in_flight}");
        drop(store);
    }
}
