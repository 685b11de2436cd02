//! An object's attribute instances, kept compact: one byte buffer per object instead of a tree
//! of allocations per value. A store holds every object in memory for the gateway's life, so
//! this is what decides the resident memory at 100,000 or 1,000,000 objects.
//!
//! Each instance is `name number | Attribute Index | value length | value`, the three numbers
//! as LEB128 varints (one byte each in practice). Values use a compact form of TTLV made for
//! memory, not for the wire: a type byte (the TTLV type code, with 0x80 set when a 3-byte tag
//! follows; without it the tag is Attribute Value), then 4 bytes for Integer, Enumeration and
//! Interval, 8 for Long Integer and the date-times, 1 for Boolean, a varint length and the bytes
//! for text, byte strings and big integers, a varint count and the children for a structure.
//! A typical key's fourteen attributes take ~150 bytes instead of ~320 as TTLV. Names are
//! numbered once per process ([`name_number`]); a store has a few dozen distinct names and
//! millions of instances.
//!
//! Values are decoded when read; every value in a buffer was encoded here from a decoded
//! [`Item`], so reading it back cannot fail short of a bug (which then drops the instance from
//! the view and is caught by `debug_assert`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::ttlv::binary::{Leaf, Node, Walker, Writer as TtlvWriter};
use crate::ttlv::{DecodeError, EncodeError, Item, ItemType, Tag, Value};

/// One instance of one attribute, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttribute {
    /// The attribute's name (KMIP 1.x Attribute Name, e.g. `Cryptographic Length`, `x-ID`).
    pub name: Arc<str>,
    /// Attribute Index of this instance.
    pub index: u32,
    /// The value (its tag is Attribute Value).
    pub value: Item,
}

#[derive(Default)]
struct Names {
    by_number: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
}

fn names() -> &'static RwLock<Names> {
    static NAMES: OnceLock<RwLock<Names>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// FNV-1a, for tables no client can fill at will (the per-thread memo below: small and
/// bounded; the gateway's own numeric Unique Identifiers), where SipHash's defence buys nothing.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Names a thread remembers the numbers of before it starts over.
const MEMO_NAMES: usize = 1024;

/// The number of `name` as this thread last learnt it: the operations look the same few names
/// up many times per request, and the shared registry costs a lock and a SipHash each time.
/// Only numbers given are remembered (a name unknown now may be numbered by another thread).
fn memo(name: &str, lookup: impl FnOnce() -> Option<u32>) -> Option<u32> {
    type Memo = HashMap<Box<str>, u32, std::hash::BuildHasherDefault<Fnv>>;
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
    }
    if let Some(n) = MEMO.with_borrow(|m| m.get(name).copied()) {
        return Some(n);
    }
    let n = lookup()?;
    MEMO.with_borrow_mut(|m| {
        if m.len() >= MEMO_NAMES {
            m.clear();
        }
        m.insert(name.into(), n);
    });
    Some(n)
}

/// The process-wide number of an attribute name, given on first use and kept for the life of
/// the process (names outlive objects: the same few recur on every object).
pub fn name_number(name: &str) -> u32 {
    memo(name, || Some(register(name))).unwrap_or_else(|| register(name))
}

fn register(name: &str) -> u32 {
    if let Some(&n) = names()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .numbers
        .get(name)
    {
        return n;
    }
    let mut w = names().write().unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = w.numbers.get(name) {
        return n;
    }
    let n = w.by_number.len() as u32;
    let shared: Arc<str> = Arc::from(name);
    w.by_number.push(shared.clone());
    w.numbers.insert(shared, n);
    n
}

/// The number of `name` if it was ever used (a name never used is on no object).
pub fn known_number(name: &str) -> Option<u32> {
    memo(name, || {
        names()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .numbers
            .get(name)
            .copied()
    })
}

fn name_of(number: u32) -> Arc<str> {
    names()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .by_number
        .get(number as usize)
        .cloned()
        .unwrap_or_else(|| Arc::from(""))
}

/// Deepest structure in a value kept, the value itself being depth 1. A record holds a value at
/// depth 3 (object or change, attribute, value) and its decoder refuses a structure at depth 64
/// and beyond, so this is the deepest structure a record carries; a value with a deeper one is
/// refused here, before any record is written, and every value a record carries is kept.
const MAX_DEPTH: usize = 61;

/// Type-byte flag: a 3-byte tag follows (else the tag is Attribute Value).
const TAGGED: u8 = 0x80;

/// Appends a type byte, and the tag when it is not Attribute Value.
fn put_head(out: &mut Vec<u8>, tag: Tag, ty: ItemType) {
    if tag == Tag::ATTRIBUTE_VALUE {
        out.push(ty.code());
    } else {
        out.push(ty.code() | TAGGED);
        out.extend_from_slice(&tag.0.to_be_bytes()[1..]);
    }
}

/// Appends the compact form of a leaf; false when it has none (a tag wider than three bytes,
/// a text or byte string of 4 GiB or more).
fn put_leaf(out: &mut Vec<u8>, tag: Tag, leaf: Leaf<'_>) -> bool {
    if tag.0 > 0xFF_FFFF {
        return false;
    }
    put_head(out, tag, leaf.item_type());
    let put_bytes = |out: &mut Vec<u8>, b: &[u8]| {
        u32::try_from(b.len()).is_ok_and(|len| {
            put_varint(out, len);
            out.extend_from_slice(b);
            true
        })
    };
    match leaf {
        Leaf::Integer(v) => out.extend_from_slice(&v.to_le_bytes()),
        Leaf::Enumeration(v) | Leaf::Interval(v) => out.extend_from_slice(&v.to_le_bytes()),
        Leaf::LongInteger(v) | Leaf::DateTime(v) | Leaf::DateTimeExtended(v) => {
            out.extend_from_slice(&v.to_le_bytes());
        }
        Leaf::Boolean(b) => out.push(u8::from(b)),
        Leaf::TextString(t) => return put_bytes(out, t.as_bytes()),
        Leaf::ByteString(b) | Leaf::BigInteger(b) => return put_bytes(out, b),
    }
    true
}

/// Whether a structure at `depth` with `tag` can be kept.
fn structure_fits(tag: Tag, depth: usize) -> bool {
    depth <= MAX_DEPTH && tag.0 <= 0xFF_FFFF
}

/// Appends the compact form of `item`; false (and `out` partly written) when it has none: a
/// placeholder, a tag wider than TTLV's three bytes, or a structure deeper than [`MAX_DEPTH`].
fn put_value(out: &mut Vec<u8>, item: &Item, depth: usize) -> bool {
    let Value::Structure(children) = &item.value else {
        return Leaf::of(&item.value).is_some_and(|leaf| put_leaf(out, item.tag, leaf));
    };
    let Ok(count) = u32::try_from(children.len()) else {
        return false;
    };
    if !structure_fits(item.tag, depth) {
        return false;
    }
    put_head(out, item.tag, ItemType::Structure);
    put_varint(out, count);
    children.iter().all(|c| put_value(out, c, depth + 1))
}

/// Appends the compact form of the item `walker` just read, reading a structure's children
/// straight from the TTLV (no tree is built: how a keystore opens fast). Ok(false) as
/// [`put_value`]; Err when the TTLV itself is malformed.
fn put_node(
    out: &mut Vec<u8>,
    walker: &mut Walker,
    tag: Tag,
    node: Node<'_>,
    depth: usize,
) -> Result<bool, DecodeError> {
    let mut children = match node {
        Node::Leaf(leaf) => return Ok(put_leaf(out, tag, leaf)),
        Node::Structure(children) => children,
    };
    if !structure_fits(tag, depth) {
        return Ok(false);
    }
    put_head(out, tag, ItemType::Structure);
    let count_at = out.len();
    let mut count = 0u32;
    while !children.is_empty() {
        let (tag, node) = walker.next(&mut children)?;
        if !put_node(out, walker, tag, node, depth + 1)? {
            return Ok(false);
        }
        count += 1;
    }
    insert_varints(out, count_at, &[count]);
    Ok(true)
}

/// Inserts `numbers` as varints at `at` (a count or length known only once what follows is
/// written; moving a few bytes costs less than a second pass).
fn insert_varints(out: &mut Vec<u8>, at: usize, numbers: &[u32]) {
    let mut head = [0u8; 15];
    let mut len = 0;
    for &n in numbers {
        let mut n = n;
        while n >= 0x80 {
            head[len] = (n as u8) | 0x80;
            n >>= 7;
            len += 1;
        }
        head[len] = n as u8;
        len += 1;
    }
    let end = out.len();
    out.resize(end + len, 0);
    out.copy_within(at..end, at + len);
    out[at..at + len].copy_from_slice(&head[..len]);
}

/// Reads `n` bytes at `*at`.
fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Option<&'a [u8]> {
    let b = buf.get(*at..at.checked_add(n)?)?;
    *at += n;
    b.into()
}

fn take_array<const N: usize>(buf: &[u8], at: &mut usize) -> Option<[u8; N]> {
    take(buf, at, N)?.try_into().ok()
}

/// Reads a type byte and tag.
fn get_head(buf: &[u8], at: &mut usize) -> Option<(Tag, ItemType)> {
    let b = take_array::<1>(buf, at)?[0];
    let tag = if b & TAGGED != 0 {
        let t = take_array::<3>(buf, at)?;
        Tag(u32::from_be_bytes([0, t[0], t[1], t[2]]))
    } else {
        Tag::ATTRIBUTE_VALUE
    };
    Some((tag, ItemType::from_code(b & !TAGGED)?))
}

fn get_bytes<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = get_varint(buf, at)? as usize;
    take(buf, at, len)
}

/// One compact value's head: a leaf, or a structure with its child count.
enum Compact<'a> {
    Leaf(Leaf<'a>),
    Structure(u32),
}

/// Reads one value's head written by [`put_value`] (a structure's children follow it).
fn get_compact<'a>(buf: &'a [u8], at: &mut usize) -> Option<(Tag, Compact<'a>)> {
    let (tag, ty) = get_head(buf, at)?;
    let leaf = match ty {
        ItemType::Structure => return Some((tag, Compact::Structure(get_varint(buf, at)?))),
        ItemType::Integer => Leaf::Integer(i32::from_le_bytes(take_array(buf, at)?)),
        ItemType::Enumeration => Leaf::Enumeration(u32::from_le_bytes(take_array(buf, at)?)),
        ItemType::Interval => Leaf::Interval(u32::from_le_bytes(take_array(buf, at)?)),
        ItemType::LongInteger => Leaf::LongInteger(i64::from_le_bytes(take_array(buf, at)?)),
        ItemType::DateTime => Leaf::DateTime(i64::from_le_bytes(take_array(buf, at)?)),
        ItemType::DateTimeExtended => {
            Leaf::DateTimeExtended(i64::from_le_bytes(take_array(buf, at)?))
        }
        ItemType::Boolean => match take_array::<1>(buf, at)?[0] {
            0 => Leaf::Boolean(false),
            1 => Leaf::Boolean(true),
            _ => return None,
        },
        ItemType::TextString => Leaf::TextString(std::str::from_utf8(get_bytes(buf, at)?).ok()?),
        ItemType::ByteString => Leaf::ByteString(get_bytes(buf, at)?),
        ItemType::BigInteger => Leaf::BigInteger(get_bytes(buf, at)?),
    };
    Some((tag, Compact::Leaf(leaf)))
}

/// Reads back one value written by [`put_value`].
fn get_value(buf: &[u8], at: &mut usize, depth: usize) -> Option<Item> {
    let (tag, compact) = get_compact(buf, at)?;
    let value = match compact {
        Compact::Leaf(leaf) => leaf.to_value(),
        Compact::Structure(_) if depth > MAX_DEPTH => return None,
        Compact::Structure(count) => {
            // Every child takes at least two bytes: no reservation beyond what the buffer holds.
            let mut children = Vec::with_capacity((count as usize).min(buf.len() / 2));
            for _ in 0..count {
                children.push(get_value(buf, at, depth + 1)?);
            }
            Value::Structure(children)
        }
    };
    Some(Item::new(tag, value))
}

/// Writes one value written by [`put_value`] as TTLV, the value itself (depth 1) under Attribute
/// Value; Ok(false) when it does not read back (`w` then holds part of it).
fn write_value(
    buf: &[u8],
    at: &mut usize,
    depth: usize,
    w: &mut TtlvWriter<'_>,
) -> Result<bool, EncodeError> {
    let Some((tag, compact)) = get_compact(buf, at) else {
        return Ok(false);
    };
    let tag = if depth == 1 {
        Tag::ATTRIBUTE_VALUE
    } else {
        tag
    };
    match compact {
        Compact::Leaf(leaf) => w.leaf(tag, leaf)?,
        Compact::Structure(_) if depth > MAX_DEPTH => return Ok(false),
        Compact::Structure(count) => {
            let open = w.begin(tag);
            for _ in 0..count {
                if !write_value(buf, at, depth + 1, w)? {
                    return Ok(false);
                }
            }
            w.end(open)?;
        }
    }
    Ok(true)
}

/// What the index keys a value by, read from its compact form without decoding it (ordered as
/// `index::Key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scalar<'a> {
    /// Integers, enumerations, booleans, date-times, intervals.
    Int(i64),
    /// Text; for a Name, its Name Value.
    Text(&'a str),
    /// A byte string.
    Bytes(&'a [u8]),
}

/// The scalar of an encoded value: structures have none, except a Name (`is_name`), whose
/// scalar is its first Name Value child when that is text.
pub fn scalar(value: &[u8], is_name: bool) -> Option<Scalar<'_>> {
    let mut at = 0;
    let (_, ty) = get_head(value, &mut at)?;
    let rest = &value[at..];
    let mut at = 0;
    Some(match ty {
        ItemType::Integer => Scalar::Int(i64::from(i32::from_le_bytes(take_array(rest, &mut at)?))),
        ItemType::Enumeration | ItemType::Interval => {
            Scalar::Int(i64::from(u32::from_le_bytes(take_array(rest, &mut at)?)))
        }
        ItemType::LongInteger | ItemType::DateTime | ItemType::DateTimeExtended => {
            Scalar::Int(i64::from_le_bytes(take_array(rest, &mut at)?))
        }
        ItemType::Boolean => Scalar::Int(i64::from(take_array::<1>(rest, &mut at)?[0])),
        ItemType::TextString => Scalar::Text(std::str::from_utf8(get_bytes(rest, &mut at)?).ok()?),
        ItemType::ByteString => Scalar::Bytes(get_bytes(rest, &mut at)?),
        ItemType::Structure if is_name => {
            let count = get_varint(rest, &mut at)?;
            for _ in 0..count {
                let child_at = at;
                let (tag, child_type) = get_head(rest, &mut at)?;
                if tag == Tag::NAME_VALUE {
                    return match child_type {
                        ItemType::TextString => Some(Scalar::Text(
                            std::str::from_utf8(get_bytes(rest, &mut at)?).ok()?,
                        )),
                        _ => None,
                    };
                }
                at = child_at;
                get_value(rest, &mut at, 1)?;
            }
            return None;
        }
        ItemType::Structure | ItemType::BigInteger => return None,
    })
}

/// Appends `n` as an unsigned LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads an unsigned LEB128 varint of at most five bytes at `*at`.
fn get_varint(buf: &[u8], at: &mut usize) -> Option<u32> {
    // Names and indexes below 128 and values below 128 bytes: nearly every varint is one byte.
    if let Some(&b) = buf.get(*at)
        && b < 0x80
    {
        *at += 1;
        return Some(u32::from(b));
    }
    let mut n = 0u32;
    for shift in (0..35).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        n |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(n);
        }
    }
    None
}

/// Every attribute instance of one object, in insertion order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes(Box<[u8]>);

/// One instance still encoded: where it sits in the buffer.
struct Entry {
    name: u32,
    index: u32,
    /// Where the instance (its two numbers) begins.
    head: usize,
    /// Where its value's TTLV begins and ends.
    start: usize,
    end: usize,
}

impl Attributes {
    /// No instances.
    pub fn new() -> Attributes {
        Attributes::default()
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let buf = &self.0;
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= buf.len() {
                return None;
            }
            let head = at;
            let mut next = at;
            let name = get_varint(buf, &mut next);
            let index = get_varint(buf, &mut next);
            let len = get_varint(buf, &mut next);
            let (Some(name), Some(index), Some(len)) = (name, index, len) else {
                debug_assert!(false, "attribute buffer overrun");
                return None;
            };
            let (start, end) = (next, next.saturating_add(len as usize));
            debug_assert!(end <= buf.len(), "attribute buffer overrun");
            if end > buf.len() {
                return None;
            }
            at = end;
            Some(Entry {
                name,
                index,
                head,
                start,
                end,
            })
        })
    }

    fn decode(&self, e: &Entry) -> Option<StoredAttribute> {
        let mut at = 0;
        let value = get_value(&self.0[e.start..e.end], &mut at, 1);
        debug_assert!(value.is_some(), "attribute value does not read back");
        Some(StoredAttribute {
            name: name_of(e.name),
            index: e.index,
            value: value?,
        })
    }

    /// Every instance, decoded.
    pub fn iter(&self) -> impl Iterator<Item = StoredAttribute> + '_ {
        self.entries().filter_map(|e| self.decode(&e))
    }

    /// The instances of `name`, decoded, in insertion order.
    pub fn named(&self, name: &str) -> impl Iterator<Item = StoredAttribute> + '_ {
        let number = known_number(name);
        self.entries()
            .filter(move |e| Some(e.name) == number)
            .filter_map(|e| self.decode(&e))
    }

    /// The value of the first instance of `name`, decoded.
    pub fn first(&self, name: &str) -> Option<Item> {
        let number = known_number(name)?;
        let e = self.entries().find(|e| e.name == number)?;
        let mut at = 0;
        get_value(&self.0[e.start..e.end], &mut at, 1)
    }

    /// Whether an instance of `name` with `index` (any index when `None`) exists; reads no value.
    pub fn has(&self, name: &str, index: Option<u32>) -> bool {
        let Some(number) = known_number(name) else {
            return false;
        };
        self.entries()
            .any(|e| e.name == number && index.is_none_or(|i| e.index == i))
    }

    /// The Attribute Indexes in use for `name`; reads no value.
    pub fn indexes(&self, name: &str) -> impl Iterator<Item = u32> + '_ {
        let number = known_number(name);
        self.entries()
            .filter(move |e| Some(e.name) == number)
            .map(|e| e.index)
    }

    /// Writes every instance as a TTLV Attribute (Attribute Name, Attribute Index, Attribute
    /// Value) straight from the compact form, for a record: no tree is built. An instance that
    /// does not read back (a bug, caught by `debug_assert`) is left out, as [`Attributes::iter`]
    /// leaves it out.
    pub fn write_ttlv(&self, w: &mut TtlvWriter<'_>) -> Result<(), EncodeError> {
        for e in self.entries() {
            let open = w.begin(Tag::ATTRIBUTE);
            w.leaf(Tag::ATTRIBUTE_NAME, Leaf::TextString(&name_of(e.name)))?;
            w.leaf(Tag::ATTRIBUTE_INDEX, Leaf::Integer(e.index as i32))?;
            if write_value(&self.0[e.start..e.end], &mut 0, 1, w)? {
                w.end(open)?;
            } else {
                debug_assert!(false, "attribute value does not read back");
                w.abandon(open);
            }
        }
        Ok(())
    }

    /// Every instance still encoded: its name number and its value (for the index: [`scalar`]).
    pub fn encoded(&self) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.entries().map(|e| (e.name, &self.0[e.start..e.end]))
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Encoded size in bytes (for reports).
    pub fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode_entry(out: &mut Vec<u8>, name: &str, index: u32, value: &Item) -> bool {
        let value_at = out.len();
        let fits = put_value(out, value, 1);
        fits && finish_entry(out, value_at, || name_number(name), index) || {
            out.truncate(value_at);
            false
        }
    }

    /// Adds an instance at the end. A value the TTLV encoder refuses (none that a decoder
    /// produced) is not added; the result says whether it was.
    pub fn push(&mut self, name: &str, index: u32, value: &Item) -> bool {
        let mut added = false;
        *self = build(|out| {
            out.extend_from_slice(&self.0);
            added = Self::encode_entry(out, name, index, value);
        });
        added
    }

    /// Replaces the value of instance `name[index]`; returns the old value.
    pub fn replace(&mut self, name: &str, index: u32, value: &Item) -> Option<Item> {
        let number = known_number(name)?;
        let e = self
            .entries()
            .find(|e| e.name == number && e.index == index)?;
        let old = self.decode(&e)?.value;
        let mut entry = Vec::new();
        if !Self::encode_entry(&mut entry, &name_of(e.name), index, value) {
            return None;
        }
        *self = build(|out| {
            out.extend_from_slice(&self.0[..e.head]);
            out.extend_from_slice(&entry);
            out.extend_from_slice(&self.0[e.end..]);
        });
        Some(old)
    }

    /// Removes every instance for which `gone(name, index)` holds; returns them, decoded.
    pub fn remove(&mut self, mut gone: impl FnMut(&str, u32) -> bool) -> Vec<StoredAttribute> {
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(self.0.len());
        for e in self.entries() {
            if gone(&name_of(e.name), e.index) {
                removed.extend(self.decode(&e));
            } else {
                kept.extend_from_slice(&self.0[e.head..e.end]);
            }
        }
        if !removed.is_empty() {
            self.0 = kept.into_boxed_slice();
        }
        removed
    }
}

/// Builds a buffer in a reused scratch vector and keeps an exact copy: objects stay in memory
/// for the gateway's life, so neither spare capacity nor the holes of growing in place.
fn build(fill: impl FnOnce(&mut Vec<u8>)) -> Attributes {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        fill(scratch);
        let built = Attributes(Box::from(&scratch[..]));
        // An unusually large object does not leave its buffer behind in every thread.
        if scratch.capacity() > 1 << 16 {
            *scratch = Vec::new();
        }
        built
    })
}

impl Attributes {
    /// Every instance given, in order; `None` when one of them has no compact form (nothing is
    /// dropped silently, and no second pass counts what was kept).
    pub fn try_from_instances<'a>(
        instances: impl IntoIterator<Item = (&'a str, u32, &'a Item)>,
    ) -> Option<Attributes> {
        let mut complete = true;
        let built = build(|out| {
            complete = instances
                .into_iter()
                .all(|(name, index, value)| Attributes::encode_entry(out, name, index, value));
        });
        complete.then_some(built)
    }
}

/// Puts an instance's numbers before its value, written at `value_at..`; false (nothing
/// changed) when the value is 4 GiB or more. The name is numbered (`number`) only here, once the
/// value is known to fit: a refused value adds no name.
fn finish_entry(
    out: &mut Vec<u8>,
    value_at: usize,
    number: impl FnOnce() -> u32,
    index: u32,
) -> bool {
    let Ok(len) = u32::try_from(out.len() - value_at) else {
        return false;
    };
    insert_varints(out, value_at, &[number(), index, len]);
    true
}

/// Name positions in an object that [`recent_number`] remembers.
const RECENT_POSITIONS: usize = 64;

/// The number of the name of an object's `position`-th attribute as a record is read: the
/// objects of a store carry the same names in the same order, so one comparison with the name
/// last seen there usually answers (numbers never change, so a remembered one stays right).
fn recent_number(position: usize, name: &str) -> u32 {
    type Recent = Vec<Option<(Box<str>, u32)>>;
    thread_local! {
        static RECENT: std::cell::RefCell<Recent> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if position >= RECENT_POSITIONS {
        return name_number(name);
    }
    RECENT.with_borrow_mut(|recent| {
        if recent.len() <= position {
            recent.resize(position + 1, None);
        }
        match &recent[position] {
            Some((seen, number)) if **seen == *name => *number,
            _ => {
                let number = name_number(name);
                recent[position] = Some((name.into(), number));
                number
            }
        }
    })
}

/// Writes an object's attributes as a decoder meets them in TTLV ([`Attributes::write`]).
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    /// Where the value being written begins.
    value_at: usize,
    /// Instances finished.
    written: usize,
}

impl std::fmt::Debug for Writer<'_> {
    /// Sizes only: values may be key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Writer({} instances, {} bytes)",
            self.written,
            self.out.len()
        )
    }
}

impl Writer<'_> {
    /// Writes the value of the next instance from the item `walker` just read, replacing one
    /// written since the last [`Writer::finish`] (a repeated value: the last one counts, as in
    /// a tree). Ok(false) when the value has no compact form — which a record's depth limit
    /// rules out — even if a later repeat would have one: refusing is the safe side.
    pub fn value(
        &mut self,
        walker: &mut Walker,
        tag: Tag,
        node: Node<'_>,
    ) -> Result<bool, DecodeError> {
        self.out.truncate(self.value_at);
        let fits = put_node(self.out, walker, tag, node, 1)?;
        if !fits {
            self.out.truncate(self.value_at);
        }
        Ok(fits)
    }

    /// Completes the instance whose value was just written; false when none was, or it is too
    /// long.
    pub fn finish(&mut self, name: &str, index: u32) -> bool {
        let number = || recent_number(self.written, name);
        let done =
            self.out.len() > self.value_at && finish_entry(self.out, self.value_at, number, index);
        self.value_at = self.out.len();
        self.written += 1;
        done
    }
}

impl Attributes {
    /// Builds the attributes that `fill` writes, instance by instance.
    pub fn write<R>(fill: impl FnOnce(&mut Writer<'_>) -> R) -> (Attributes, R) {
        let mut result = None;
        let built = build(|out| {
            let mut w = Writer {
                value_at: out.len(),
                out,
                written: 0,
            };
            result = Some(fill(&mut w));
        });
        (built, result.expect("fill ran"))
    }
}

impl FromIterator<StoredAttribute> for Attributes {
    fn from_iter<I: IntoIterator<Item = StoredAttribute>>(iter: I) -> Attributes {
        build(|out| {
            for a in iter {
                Attributes::encode_entry(out, &a.name, a.index, &a.value);
            }
        })
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::{Tag, Value};

    fn value(v: Value) -> Item {
        Item::new(Tag::ATTRIBUTE_VALUE, v)
    }

    fn name_value(text: &str) -> Item {
        Item::structure(
            Tag::ATTRIBUTE_VALUE,
            vec![
                Item::new(Tag::NAME_VALUE, Value::TextString(text.into())),
                Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
            ],
        )
    }

    #[test]
    fn every_value_type_reads_back_exactly_with_its_tags() {
        let child = |tag: Tag, v: Value| Item::new(tag, v);
        let values = [
            value(Value::Integer(i32::MIN)),
            value(Value::LongInteger(-1)),
            value(Value::BigInteger(vec![0xFF; 16])),
            value(Value::Enumeration(0x8000_0001)),
            value(Value::Boolean(true)),
            value(Value::Boolean(false)),
            value(Value::TextString(
                "ünïcode and a longer text than 127 bytes ".repeat(4),
            )),
            value(Value::ByteString(vec![])),
            value(Value::DateTime(-86_400)),
            value(Value::Interval(u32::MAX)),
            value(Value::DateTimeExtended(1_700_000_000_123_456)),
            // A value under its own tag (KMIP 2.0 style), and a structure of tagged children.
            child(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(256)),
            Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![
                    child(Tag::HASHING_ALGORITHM, Value::Enumeration(6)),
                    child(Tag::DIGEST_VALUE, Value::ByteString(vec![7; 32])),
                    Item::structure(
                        Tag::LINK,
                        vec![child(Tag::ATTRIBUTE_VALUE, Value::Integer(1))],
                    ),
                    Item::structure(Tag::LINK, vec![]),
                ],
            ),
        ];
        let mut a = Attributes::new();
        for (i, v) in values.iter().enumerate() {
            assert!(a.push("x-every", i as u32, v), "{v:?}");
        }
        let back: Vec<Item> = a.iter().map(|x| x.value).collect();
        assert_eq!(back, values);
    }

    #[test]
    fn values_without_a_compact_form_are_refused_and_leave_nothing_behind() {
        let mut a = Attributes::new();
        a.push("x-kept", 0, &value(Value::Integer(1)));
        let before = a.clone();
        let placeholder = value(Value::Placeholder(ItemType::Integer, "$X".into()));
        assert!(!a.push("x-bad", 0, &placeholder));
        assert!(!a.push("x-bad", 0, &Item::new(Tag(0x0100_0000), Value::Integer(1))));
        let mut deep = value(Value::Integer(0));
        for _ in 0..=MAX_DEPTH {
            deep = Item::structure(Tag::ATTRIBUTE_VALUE, vec![deep]);
        }
        assert!(!a.push("x-bad", 0, &deep));
        assert_eq!(a, before);
        assert_eq!(a.replace("x-kept", 0, &placeholder), None);
        assert_eq!(a, before);
    }

    #[test]
    fn scalars_are_read_without_decoding() {
        let name_later = Item::structure(
            Tag::ATTRIBUTE_VALUE,
            vec![
                Item::new(Tag::NAME_TYPE, Value::Enumeration(1)),
                Item::new(Tag::NAME_VALUE, Value::TextString("later".into())),
            ],
        );
        let mut a = Attributes::new();
        a.push("Name", 0, &name_later);
        a.push("x-bytes", 0, &value(Value::ByteString(vec![1, 2])));
        a.push("Fresh", 0, &value(Value::Boolean(true)));
        let got: Vec<_> = a.encoded().map(|(_, v)| scalar(v, true)).collect();
        assert_eq!(
            got,
            [
                Some(Scalar::Text("later")),
                Some(Scalar::Bytes(&[1, 2])),
                Some(Scalar::Int(1))
            ]
        );
        let (_, name) = a.encoded().next().expect("one");
        assert_eq!(scalar(name, false), None, "a structure that is not a Name");
    }

    #[test]
    fn values_are_kept_exactly_as_deep_as_a_record_carries_them() {
        use crate::store::object::{Change, Kind, write_change};
        let record_of = |v: &Item| {
            let change = Change::AddAttribute {
                uid: "1".into(),
                name: "x-deep".into(),
                index: Some(0),
                value: v.clone(),
            };
            let mut body = Vec::new();
            write_change(&change, &mut body).expect("encodes");
            crate::store::decode_record_body(Kind::AddAttribute as u8, &body)
        };
        // Structures down to depth MAX_DEPTH, a leaf below the deepest.
        let mut deepest = value(Value::Integer(1));
        for _ in 0..MAX_DEPTH {
            deepest = Item::structure(Tag::ATTRIBUTE_VALUE, vec![deepest]);
        }
        let mut a = Attributes::new();
        assert!(a.push("x-deep", 0, &deepest));
        assert_eq!(a.iter().next().map(|x| x.value), Some(deepest.clone()));
        assert!(record_of(&deepest).is_ok(), "a record carries it");
        let deeper = Item::structure(Tag::ATTRIBUTE_VALUE, vec![deepest]);
        assert!(!a.push("x-deep", 1, &deeper));
        assert!(record_of(&deeper).is_err(), "no record carries it either");
    }

    #[test]
    fn a_name_numbered_by_another_thread_is_known_here_and_numbers_never_change() {
        assert_eq!(known_number("x-memo-numbered-elsewhere"), None);
        let n = std::thread::spawn(|| name_number("x-memo-numbered-elsewhere"))
            .join()
            .expect("thread");
        assert_eq!(
            known_number("x-memo-numbered-elsewhere"),
            Some(n),
            "absence is not remembered"
        );
        // More names than a thread remembers: the memo starts over, the numbers stay.
        let first: Vec<u32> = (0..MEMO_NAMES + 10)
            .map(|i| name_number(&format!("x-memo-{i}")))
            .collect();
        for (i, &n) in first.iter().enumerate() {
            assert_eq!(known_number(&format!("x-memo-{i}")), Some(n));
            assert_eq!(&*name_of(n), format!("x-memo-{i}"));
        }
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for n in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 21,
            (1 << 28) + 5,
            u32::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(n));
            assert_eq!(at, out.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[0x80, 0x80], &mut at), None, "truncated");
        let mut at = 0;
        assert_eq!(get_varint(&[0xff; 6], &mut at), None, "too long");
    }

    #[test]
    fn large_indexes_survive_removal_of_their_neighbours() {
        let mut a = Attributes::new();
        a.push("x-wide", 0, &value(Value::Integer(1)));
        a.push("x-wide", 70_000, &value(Value::Integer(2)));
        a.push("x-wide", 200, &value(Value::Integer(3)));
        a.remove(|_, i| i == 200);
        let kept: Vec<_> = a.iter().map(|x| (x.index, x.value)).collect();
        assert_eq!(
            kept,
            [
                (0, value(Value::Integer(1))),
                (70_000, value(Value::Integer(2)))
            ]
        );
    }

    #[test]
    fn instances_read_back_in_order_with_their_names_and_indexes() {
        let mut a = Attributes::new();
        assert!(a.is_empty());
        assert!(a.push("Cryptographic Length", 0, &value(Value::Integer(256))));
        assert!(a.push("Name", 0, &name_value("first")));
        assert!(a.push("Name", 3, &name_value("second key name, longer than eight")));
        assert!(a.push("x-empty", 0, &value(Value::TextString(String::new()))));
        let all: Vec<_> = a.iter().collect();
        assert_eq!(all.len(), 4);
        assert_eq!(a.len(), 4);
        assert_eq!(&*all[0].name, "Cryptographic Length");
        assert_eq!(all[0].value, value(Value::Integer(256)));
        assert_eq!(all[2].index, 3);
        assert_eq!(
            all[2].value,
            name_value("second key name, longer than eight")
        );
        assert_eq!(&*all[3].name, "x-empty");
        let names: Vec<_> = a.named("Name").map(|x| x.index).collect();
        assert_eq!(names, [0, 3]);
        assert_eq!(a.indexes("Name").collect::<Vec<_>>(), [0, 3]);
        assert!(a.has("Name", Some(3)) && !a.has("Name", Some(1)) && a.has("Name", None));
        assert!(!a.has("never used anywhere", None));
        assert_eq!(a.named("never used anywhere").count(), 0);
    }

    #[test]
    fn replace_and_remove_keep_the_other_instances_intact() {
        let mut a: Attributes = [
            ("Object Group", 0, value(Value::TextString("g1".into()))),
            ("Object Group", 1, value(Value::TextString("g2".into()))),
            ("Initial Date", 0, value(Value::DateTime(1_700_000_000))),
        ]
        .into_iter()
        .map(|(n, i, v)| StoredAttribute {
            name: n.into(),
            index: i,
            value: v,
        })
        .collect();
        let longer = value(Value::TextString(
            "a much longer group name than before".into(),
        ));
        assert_eq!(
            a.replace("Object Group", 0, &longer),
            Some(value(Value::TextString("g1".into())))
        );
        assert_eq!(a.replace("Object Group", 7, &longer), None);
        let groups: Vec<_> = a.named("Object Group").map(|x| x.value).collect();
        assert_eq!(groups, [longer, value(Value::TextString("g2".into()))]);
        let gone = a.remove(|n, i| n == "Object Group" && i == 1);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].index, 1);
        assert_eq!(a.len(), 2);
        assert_eq!(
            a.named("Initial Date").next().map(|x| x.value),
            Some(value(Value::DateTime(1_700_000_000)))
        );
        assert!(a.remove(|n, _| n == "absent").is_empty());
        let copy = a.clone();
        assert_eq!(copy, a);
    }
}
