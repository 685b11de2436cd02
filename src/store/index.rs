//! The in-memory state of the keystore: every object of this gateway's HSM_name, and an inverted
//! index on attribute values (Name, Object Type, State, algorithm, length, dates, Object Group,
//! custom attributes …) so that Locate answers in microseconds at 100,000 objects.

use std::collections::HashMap;
use std::sync::Arc;

use super::attributes::{Fnv, Scalar, known_number, name_number, scalar};
use super::object::{Change, StoredObject};
use crate::ttlv::{Item, Tag, Value};

/// An attribute value in the index's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Integers, enumerations, booleans, date-times, intervals.
    Int(i64),
    /// Text (Name values, custom text attributes, Object Group …).
    Text(Box<str>),
    /// Short byte strings.
    Bytes(Box<[u8]>),
}

/// What to look for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Some instance of the attribute equals the key.
    Equals(String, Key),
    /// Some instance of the attribute lies in `[from, to]`.
    Range(String, Key, Key),
}

/// Pseudo-attribute names under which the object fields are indexed.
pub const OBJECT_TYPE: &str = "Object Type";
/// See [`OBJECT_TYPE`].
pub const STATE: &str = "State";

/// Byte strings longer than this are not indexed (key material, certificates): Locate looks
/// for identifiers and digests, not for values that size.
const MAX_BYTES_KEY: usize = 64;

/// The key of an indexable value, borrowed from it; structures index only a Name's text.
fn scalar_of<'a>(name: &str, value: &'a Item) -> Option<Scalar<'a>> {
    match &value.value {
        Value::Integer(v) => Some(Scalar::Int(i64::from(*v))),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            Some(Scalar::Int(*v))
        }
        Value::Enumeration(v) | Value::Interval(v) => Some(Scalar::Int(i64::from(*v))),
        Value::Boolean(b) => Some(Scalar::Int(i64::from(*b))),
        Value::TextString(s) => Some(Scalar::Text(s)),
        Value::ByteString(b) if b.len() <= MAX_BYTES_KEY => Some(Scalar::Bytes(b)),
        Value::Structure(_) if name == "Name" => {
            match value.child(Tag::NAME_VALUE).map(|v| &v.value) {
                Some(Value::TextString(s)) => Some(Scalar::Text(s)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The key of an indexable value (see [`scalar_of`]).
pub fn key_of(name: &str, value: &Item) -> Option<Key> {
    scalar_of(name, value).map(Key::from)
}

impl From<Scalar<'_>> for Key {
    fn from(s: Scalar<'_>) -> Key {
        match s {
            Scalar::Int(i) => Key::Int(i),
            Scalar::Text(t) => Key::Text(t.into()),
            Scalar::Bytes(b) => Key::Bytes(b.into()),
        }
    }
}

impl Key {
    /// The borrowed form.
    fn scalar(&self) -> Scalar<'_> {
        match self {
            Key::Int(i) => Scalar::Int(*i),
            Key::Text(t) => Scalar::Text(t),
            Key::Bytes(b) => Scalar::Bytes(b),
        }
    }
}

/// [`scalar_of`] for a value still in its compact form (`attributes::scalar`): the same key for
/// the same value. `is_name` says the attribute is Name.
pub fn key_of_encoded(value: &[u8], is_name: bool) -> Option<Scalar<'_>> {
    scalar(value, is_name).filter(|s| !matches!(s, Scalar::Bytes(b) if b.len() > MAX_BYTES_KEY))
}

/// How a text or byte-string key is looked up: `name number (LE) | kind | bytes`, built in a
/// reused buffer so that a lookup allocates nothing.
fn other_key<'b>(buf: &'b mut Vec<u8>, name: u32, key: Scalar<'_>) -> &'b [u8] {
    let (kind, bytes) = match key {
        Scalar::Text(t) => (b'T', t.as_bytes()),
        Scalar::Bytes(b) => (b'B', b),
        Scalar::Int(_) => unreachable!("integer keys are kept apart"),
    };
    buf.clear();
    buf.extend_from_slice(&name.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(bytes);
    buf
}

/// The name number and key an [`other_key`] spells.
fn split_other_key(k: &[u8]) -> Option<(u32, Scalar<'_>)> {
    let (name, rest) = k.split_first_chunk::<4>()?;
    let (&kind, bytes) = rest.split_first()?;
    let key = match kind {
        b'T' => Scalar::Text(std::str::from_utf8(bytes).ok()?),
        _ => Scalar::Bytes(bytes),
    };
    Some((u32::from_le_bytes(*name), key))
}

/// A posting list, sized to what it holds: most values (a Name, a Digest) are held by one
/// object, which costs no allocation; a few objects' slots are a sorted vector; a value most
/// objects share (State, Object Type, algorithm, length, a date) is a bitmap, one bit a slot.
#[derive(Clone, Debug)]
enum Posting {
    One(u32),
    // Boxed so that a posting is 16 bytes: most are `One`, and there is one per distinct value.
    #[allow(clippy::box_collection)]
    Few(Box<Vec<u32>>),
    Dense(Box<Bitmap>),
}

/// Slots as bits, with their count.
#[derive(Clone, Debug, Default)]
struct Bitmap {
    words: Vec<u64>,
    count: u32,
}

impl Bitmap {
    fn insert(&mut self, id: u32) {
        let (w, bit) = (id as usize / 64, 1u64 << (id % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        if self.words[w] & bit == 0 {
            self.words[w] |= bit;
            self.count += 1;
        }
    }

    fn remove(&mut self, id: u32) {
        let (w, bit) = (id as usize / 64, 1u64 << (id % 64));
        if let Some(word) = self.words.get_mut(w)
            && *word & bit != 0
        {
            *word &= !bit;
            self.count -= 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros();
                rest &= rest - 1;
                Some(w as u32 * 64 + bit)
            })
        })
    }
}

/// A sorted vector becomes a bitmap once the bitmap is no larger (32 slots a member or denser).
fn bitmap_is_smaller(members: usize, highest: u32) -> bool {
    members >= 64 && (highest as usize) < members * 32
}

impl Posting {
    fn insert(&mut self, id: u32) {
        match self {
            Posting::One(x) if *x == id => {}
            Posting::One(x) => {
                let (a, b) = if *x < id { (*x, id) } else { (id, *x) };
                *self = Posting::Few(Box::new(vec![a, b]));
            }
            Posting::Few(v) => {
                // Slots come in rising order while a store opens: append without a search.
                if v.last().is_some_and(|&last| last < id) {
                    v.push(id);
                } else if let Err(at) = v.binary_search(&id) {
                    v.insert(at, id);
                }
                let highest = *v.last().expect("not empty");
                if bitmap_is_smaller(v.len(), highest) {
                    let mut b = Bitmap::default();
                    b.words.reserve_exact(highest as usize / 64 + 1);
                    v.iter().for_each(|&i| b.insert(i));
                    *self = Posting::Dense(Box::new(b));
                }
            }
            Posting::Dense(b) => b.insert(id),
        }
    }

    /// Removes `id`; true when the list is now empty.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Posting::One(x) => *x == id,
            Posting::Few(v) => {
                if let Ok(at) = v.binary_search(&id) {
                    v.remove(at);
                }
                if let [only] = v[..] {
                    *self = Posting::One(only);
                }
                false
            }
            Posting::Dense(b) => {
                b.remove(id);
                if b.count == 1 {
                    let only = b.iter().next().expect("one member");
                    *self = Posting::One(only);
                } else if (b.count as usize) * 32 * 4 < b.words.len() * 64 {
                    // Back to a vector once the bitmap is four times larger than one would be
                    // (the margin keeps a list near the threshold from switching to and fro).
                    *self = Posting::Few(Box::new(b.iter().collect()));
                }
                false
            }
        }
    }

    fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            Posting::One(x) => out.push(*x),
            Posting::Few(v) => out.extend_from_slice(v),
            Posting::Dense(b) => out.extend(b.iter()),
        }
    }

    /// Gives back spare capacity once a store is opened.
    fn shrink_to_fit(&mut self) {
        match self {
            Posting::One(_) => {}
            Posting::Few(v) => v.shrink_to_fit(),
            Posting::Dense(b) => b.words.shrink_to_fit(),
        }
    }
}

/// Slots of [`IntPostings::recent`].
const RECENT_INTS: usize = 64;

/// The postings of integer keys. Most objects share their integers with the object before
/// (State, Object Type, algorithm, length, a date): a small table of the posting each
/// attribute used last answers those without hashing, which is most of the work of opening a
/// store. The postings live in a vector the hashed table points into, so that table can
/// remember them.
#[derive(Debug)]
struct IntPostings {
    ids: HashMap<(u32, i64), u32>,
    postings: Vec<Posting>,
    /// Entries of `postings` no key uses.
    free: Vec<u32>,
    /// By name number modulo [`RECENT_INTS`]: the key an attribute used last and its posting.
    recent: Vec<Option<(u32, i64, u32)>>,
}

impl Default for IntPostings {
    fn default() -> Self {
        IntPostings {
            ids: HashMap::new(),
            postings: Vec::new(),
            free: Vec::new(),
            recent: vec![None; RECENT_INTS],
        }
    }
}

impl IntPostings {
    fn id(&self, name: u32, value: i64) -> Option<u32> {
        match self.recent[name as usize % RECENT_INTS] {
            Some((n, v, id)) if n == name && v == value => Some(id),
            _ => self.ids.get(&(name, value)).copied(),
        }
    }

    fn get(&self, name: u32, value: i64) -> Option<&Posting> {
        self.id(name, value).map(|id| &self.postings[id as usize])
    }

    fn insert(&mut self, name: u32, value: i64, slot: u32) {
        let id = match self.id(name, value) {
            Some(id) => {
                self.postings[id as usize].insert(slot);
                id
            }
            None => {
                let posting = Posting::One(slot);
                let id = match self.free.pop() {
                    Some(id) => {
                        self.postings[id as usize] = posting;
                        id
                    }
                    None => {
                        self.postings.push(posting);
                        (self.postings.len() - 1) as u32
                    }
                };
                self.ids.insert((name, value), id);
                id
            }
        };
        self.recent[name as usize % RECENT_INTS] = Some((name, value, id));
    }

    fn remove(&mut self, name: u32, value: i64, slot: u32) {
        let Some(id) = self.id(name, value) else {
            return;
        };
        if self.postings[id as usize].remove(slot) {
            self.ids.remove(&(name, value));
            // Nothing points here any more: no slot is left in it to find.
            self.postings[id as usize] = Posting::Few(Box::default());
            self.free.push(id);
            let recent = &mut self.recent[name as usize % RECENT_INTS];
            if recent.is_some_and(|(_, _, r)| r == id) {
                *recent = None;
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = ((u32, i64), &Posting)> {
        self.ids
            .iter()
            .map(|(&key, &id)| (key, &self.postings[id as usize]))
    }

    fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.postings.iter_mut().for_each(Posting::shrink_to_fit);
    }
}

/// Why a change cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// No object with that Unique Identifier.
    NotFound(String),
    /// The object already exists.
    Exists(String),
    /// No instance with that name and index.
    NoSuchInstance(String),
    /// A value of this attribute without a compact form (`attributes::Attributes::push`).
    Unstorable(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::NotFound(u) => write!(f, "no object {u}"),
            ApplyError::Exists(u) => write!(f, "object {u} already exists"),
            ApplyError::NoSuchInstance(a) => write!(f, "no such attribute instance: {a}"),
            ApplyError::Unstorable(a) => write!(f, "a value of {a} cannot be stored"),
        }
    }
}

/// The name numbers of Object Type, State and Name, which every object is indexed under
/// (looked up once, not per object).
fn fixed_numbers() -> &'static [u32; 3] {
    static NUMBERS: std::sync::OnceLock<[u32; 3]> = std::sync::OnceLock::new();
    NUMBERS.get_or_init(|| [OBJECT_TYPE, STATE, "Name"].map(name_number))
}

/// Unique Identifier to slot. The identifiers this gateway makes are decimal numbers, kept as
/// numbers (no second copy of the text); any other (from an older store or another tool) as text.
#[derive(Debug, Default)]
struct UidMap {
    /// The slot of number `n` at `dense[n]` ([`NO_SLOT`] where there is none). The gateway hands
    /// numbers out in order, so a table indexed by number is no larger than a hashed one and
    /// is filled in order while a store opens (a hashed table took a cache miss per object).
    dense: Vec<u32>,
    /// Entries of `dense` that hold a slot.
    dense_count: usize,
    /// Numbers too far past the dense table's end to stretch it (a few, if any): FNV, not
    /// SipHash, since the gateway hands them out (a client cannot pick them).
    numbers: HashMap<u64, u32, std::hash::BuildHasherDefault<Fnv>>,
    texts: HashMap<String, u32>,
}

/// An empty entry of [`UidMap::dense`] (slots are far fewer).
const NO_SLOT: u32 = u32::MAX;

/// How far past its end the dense table stretches for a number regardless of how full it is.
const DENSE_REACH: usize = 1 << 16;

/// The number a decimal Unique Identifier spells, when it spells exactly one (no sign, no
/// leading zero), so that text and number map one to one.
fn uid_number(uid: &str) -> Option<u64> {
    let canonical = !uid.is_empty()
        && uid.len() <= 19
        && uid.bytes().all(|b| b.is_ascii_digit())
        && (uid == "0" || !uid.starts_with('0'));
    if canonical { uid.parse().ok() } else { None }
}

impl UidMap {
    fn dense_slot(&self, n: u64) -> Option<u32> {
        let slot = *self.dense.get(usize::try_from(n).ok()?)?;
        (slot != NO_SLOT).then_some(slot)
    }

    fn number(&self, n: u64) -> Option<u32> {
        self.dense_slot(n).or_else(|| self.numbers.get(&n).copied())
    }

    fn get(&self, uid: &str) -> Option<u32> {
        match uid_number(uid) {
            Some(n) => self.number(n),
            None => self.texts.get(uid).copied(),
        }
    }

    /// Whether number `n` belongs in the dense table: inside it, or near enough its end that
    /// stretching it keeps it at most about twice the numbers it holds.
    fn fits_dense(&self, n: u64) -> bool {
        let reach = self.dense.len().max(self.len() * 2) + DENSE_REACH;
        usize::try_from(n).is_ok_and(|n| n < reach)
    }

    /// Maps `uid` to `slot` unless it is mapped already (then false, nothing changed).
    fn insert_new(&mut self, uid: &str, slot: u32) -> bool {
        use std::collections::hash_map::Entry;
        let Some(n) = uid_number(uid) else {
            return match self.texts.entry(uid.to_string()) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(slot);
                    true
                }
            };
        };
        if self.number(n).is_some() {
            return false;
        }
        if self.fits_dense(n) {
            let at = n as usize;
            if at >= self.dense.len() {
                self.dense.resize(at + 1, NO_SLOT);
            }
            self.dense[at] = slot;
            self.dense_count += 1;
        } else {
            self.numbers.insert(n, slot);
        }
        true
    }

    fn remove(&mut self, uid: &str) -> Option<u32> {
        let Some(n) = uid_number(uid) else {
            return self.texts.remove(uid);
        };
        match self.dense_slot(n) {
            Some(slot) => {
                self.dense[n as usize] = NO_SLOT;
                self.dense_count -= 1;
                Some(slot)
            }
            None => self.numbers.remove(&n),
        }
    }

    fn len(&self) -> usize {
        self.dense_count + self.numbers.len() + self.texts.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn reserve(&mut self, objects: usize) {
        let _ = self.dense.try_reserve(objects);
    }

    fn shrink_to_fit(&mut self) {
        self.dense.shrink_to_fit();
        self.numbers.shrink_to_fit();
        self.texts.shrink_to_fit();
    }
}

/// All objects of one HSM_name, indexed; objects of other HSM_names are kept aside (for
/// compaction) but not indexed or visible.
#[derive(Debug, Default)]
pub struct Index {
    hsm_name: String,
    slots: Vec<Option<StoredObject>>,
    free: Vec<u32>,
    by_uid: UidMap,
    /// Integer keys (enumerations, lengths, dates …) by the attribute's process-wide name
    /// number (`attributes::name_number`). Hashed, not ordered: Locate asks for equality, and
    /// opening a store makes eight or more of these lookups per object.
    ints: IntPostings,
    /// Text and byte-string keys ([`other_key`]): hashed too — a store holds as many distinct
    /// Names as objects, and opening one inserts them all.
    others: HashMap<Box<[u8]>, Posting>,
    /// The buffer [`other_key`] builds lookups in.
    key_buf: Vec<u8>,
    foreign: HashMap<String, StoredObject>,
    interned: std::collections::HashSet<Arc<str>>,
    /// The kept copies adopted last (see [`Index::adopt`]).
    last_adopted: [Option<Arc<str>>; 2],
    /// Unique Identifiers below this are used by the records read (the open store hands out
    /// numbers from its own counter, which starts here).
    next_uid: u64,
}

impl Index {
    /// An empty index for `hsm_name`.
    pub fn new(hsm_name: &str) -> Index {
        Index {
            hsm_name: hsm_name.to_string(),
            next_uid: 1,
            ..Index::default()
        }
    }

    /// Makes room for about `objects` more objects: growing a hashed table rehashes every key
    /// it holds (with SipHash for the text keys), which cost a store of a million objects as
    /// much as inserting them. [`Index::shrink_to_fit`] gives back what was not used.
    pub fn reserve(&mut self, objects: usize) {
        // Only a hint: where the memory is not to be had, the tables grow as they fill.
        let _ = self.slots.try_reserve(objects);
        self.by_uid.reserve(objects);
        // About one distinct text per object (its Name); a few integers shared by many.
        let _ = self.others.try_reserve(objects);
    }

    /// Gives back the spare capacity of growing (after a store is opened: the tables stay).
    pub fn shrink_to_fit(&mut self) {
        self.slots.shrink_to_fit();
        self.by_uid.shrink_to_fit();
        self.foreign.shrink_to_fit();
        self.others.shrink_to_fit();
        self.ints.shrink_to_fit();
        self.others.values_mut().for_each(Posting::shrink_to_fit);
    }

    /// Objects visible to this gateway.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }

    /// Objects of other HSM_names.
    pub fn foreign_len(&self) -> usize {
        self.foreign.len()
    }

    /// The object with `uid`.
    pub fn get(&self, uid: &str) -> Option<&StoredObject> {
        self.by_uid
            .get(uid)
            .and_then(|i| self.slots[i as usize].as_ref())
    }

    /// Every visible object.
    pub fn iter(&self) -> impl Iterator<Item = &StoredObject> {
        self.slots.iter().flatten()
    }

    /// Every object, of every HSM_name (for compaction).
    pub fn all(&self) -> impl Iterator<Item = &StoredObject> {
        self.slots.iter().flatten().chain(self.foreign.values())
    }

    /// The kept copy of `a`'s text: `a` itself when the text is new (a decoded record usually
    /// shares the kept copy already: see `object::shared_name`).
    fn adopt(&mut self, a: &mut Arc<str>) {
        // Most records carry the very copy adopted last (one owner, one HSM_name): no lookup.
        if self
            .last_adopted
            .iter()
            .flatten()
            .any(|kept| Arc::ptr_eq(kept, a))
        {
            return;
        }
        match self.interned.get(&**a) {
            Some(kept) if Arc::ptr_eq(kept, a) => {}
            Some(kept) => *a = kept.clone(),
            None => {
                self.interned.insert(a.clone());
            }
        }
        self.last_adopted.rotate_right(1);
        self.last_adopted[0] = Some(a.clone());
    }

    fn intern_object(&mut self, o: &mut StoredObject) {
        self.adopt(&mut o.hsm_name);
        if let Some(owner) = &mut o.owner {
            self.adopt(owner);
        }
    }

    fn index_key(&mut self, slot: u32, name: u32, key: Scalar<'_>) {
        if let Scalar::Int(i) = key {
            self.ints.insert(name, i, slot);
            return;
        }
        let k = other_key(&mut self.key_buf, name, key);
        match self.others.get_mut(k) {
            Some(p) => p.insert(slot),
            None => {
                self.others.insert(k.into(), Posting::One(slot));
            }
        }
    }

    fn unindex_key(&mut self, slot: u32, name: u32, key: Scalar<'_>) {
        if let Scalar::Int(i) = key {
            self.ints.remove(name, i, slot);
            return;
        }
        let k = other_key(&mut self.key_buf, name, key);
        if self.others.get_mut(k).is_some_and(|p| p.remove(slot)) {
            self.others.remove(k);
        }
    }

    fn index_value(&mut self, slot: u32, name: &str, value: &Item) {
        if let Some(k) = scalar_of(name, value) {
            self.index_key(slot, name_number(name), k);
        }
    }

    /// Unindexes a value that left the object in `slot`, unless another instance of the same
    /// attribute still holds an equal value: a posting has one entry per object.
    fn unindex_unless_held(&mut self, slot: u32, name: &str, value: &Item) {
        let (Some(key), Some(n)) = (scalar_of(name, value), known_number(name)) else {
            return;
        };
        let is_name = n == name_number("Name");
        let held = self.slots[slot as usize].as_ref().is_some_and(|o| {
            o.attributes
                .encoded()
                .any(|(m, v)| m == n && key_of_encoded(v, is_name) == Some(key))
        });
        if !held {
            self.unindex_key(slot, n, key);
        }
    }

    fn unindex_value(&mut self, slot: u32, name: &str, value: &Item) {
        if let (Some(k), Some(n)) = (scalar_of(name, value), known_number(name)) {
            self.unindex_key(slot, n, k);
        }
    }

    /// Indexes (or unindexes) every value of `o`, read straight from the compact encoding.
    fn index_object(&mut self, slot: u32, o: &StoredObject, add: bool) {
        let [object_type, state, names] = *fixed_numbers();
        let fields = [(object_type, o.object_type), (state, o.state)];
        let keys = fields
            .into_iter()
            .map(|(n, v)| (n, Some(Scalar::Int(i64::from(v)))))
            .chain(
                o.attributes
                    .encoded()
                    .map(|(n, ttlv)| (n, key_of_encoded(ttlv, n == names))),
            );
        for (n, key) in keys {
            match key {
                Some(k) if add => self.index_key(slot, n, k),
                Some(k) => self.unindex_key(slot, n, k),
                None => {}
            }
        }
    }

    /// Whether an object of another HSM_name has `uid` (no hashing while there are none).
    fn is_foreign(&self, uid: &str) -> bool {
        !self.foreign.is_empty() && self.foreign.contains_key(uid)
    }

    fn note_uid(&mut self, uid: &str) {
        if let Ok(n) = uid.parse::<u64>() {
            self.raise_next_uid(n.saturating_add(1));
        }
    }

    /// The lowest Unique Identifier number not used yet.
    pub fn next_uid(&self) -> u64 {
        self.next_uid
    }

    /// Makes sure no number below `floor` counts as unused.
    pub fn raise_next_uid(&mut self, floor: u64) {
        self.next_uid = self.next_uid.max(floor);
    }

    /// Checks that `change` can be applied, without applying it.
    pub fn check(&self, change: &Change) -> Result<(), ApplyError> {
        let exists = |uid: &String| {
            if self.get(uid).is_some() {
                Ok(())
            } else {
                Err(ApplyError::NotFound(uid.clone()))
            }
        };
        match change {
            Change::Create(o) => {
                if self.is_foreign(&o.uid) || self.by_uid.get(&o.uid).is_some() {
                    Err(ApplyError::Exists(o.uid.clone()))
                } else {
                    Ok(())
                }
            }
            Change::ModifyAttribute {
                uid, name, index, ..
            } => {
                exists(uid)?;
                let found = self
                    .get(uid)
                    .is_some_and(|o| o.attributes.has(name, Some(*index)));
                if found {
                    Ok(())
                } else {
                    Err(ApplyError::NoSuchInstance(format!("{name}[{index}]")))
                }
            }
            Change::DeleteAttribute { uid, name, index } => {
                exists(uid)?;
                let found = self
                    .get(uid)
                    .is_some_and(|o| o.attributes.has(name, *index));
                if found {
                    Ok(())
                } else {
                    Err(ApplyError::NoSuchInstance(name.clone()))
                }
            }
            Change::AddAttribute { uid, .. }
            | Change::State { uid, .. }
            | Change::Destroy { uid, .. }
            | Change::Erase { uid } => exists(uid),
            Change::UidFloor(_) => Ok(()),
        }
    }

    /// Applies a change (checked first). Returns the Attribute Index given to a new instance.
    pub fn apply(&mut self, change: Change) -> Result<Option<u32>, ApplyError> {
        let change = match change {
            Change::Create(mut o) if *o.hsm_name != *self.hsm_name => {
                // Refused before its names are interned: a refused record leaves nothing behind.
                if self.is_foreign(&o.uid) || self.by_uid.get(&o.uid).is_some() {
                    return Err(ApplyError::Exists(o.uid));
                }
                self.note_uid(&o.uid);
                self.intern_object(&mut o);
                self.foreign.insert(o.uid.clone(), o);
                return Ok(None);
            }
            other => other,
        };
        let uid_of = |c: &Change| match c {
            Change::Create(_) | Change::UidFloor(_) => None,
            Change::AddAttribute { uid, .. }
            | Change::ModifyAttribute { uid, .. }
            | Change::DeleteAttribute { uid, .. }
            | Change::State { uid, .. }
            | Change::Destroy { uid, .. }
            | Change::Erase { uid } => Some(uid.clone()),
        };
        if let Some(uid) = uid_of(&change)
            && self.by_uid.get(&uid).is_none()
            && self.foreign.contains_key(&uid)
        {
            return self.apply_foreign(&uid, change);
        }
        if !matches!(change, Change::Create(_)) {
            self.check(&change)?;
        }
        match change {
            Change::Create(mut o) => {
                // Checked by the insertion itself: one lookup of the identifier, not two.
                let slot = self.free.last().copied().unwrap_or(self.slots.len() as u32);
                if self.is_foreign(&o.uid) || !self.by_uid.insert_new(&o.uid, slot) {
                    return Err(ApplyError::Exists(o.uid));
                }
                if self.free.pop().is_none() {
                    self.slots.push(None);
                }
                self.note_uid(&o.uid);
                self.intern_object(&mut o);
                self.index_object(slot, &o, true);
                self.slots[slot as usize] = Some(o);
                Ok(None)
            }
            Change::AddAttribute {
                uid,
                name,
                index,
                value,
            } => {
                let slot = self.by_uid.get(&uid).expect("checked");
                let o = self.slots[slot as usize].as_ref().expect("checked");
                let index = index.unwrap_or_else(|| o.next_index(&name));
                let o = self.slots[slot as usize].as_mut().expect("checked");
                if !o.attributes.push(&name, index, &value) {
                    return Err(ApplyError::Unstorable(name));
                }
                self.index_value(slot, &name, &value);
                Ok(Some(index))
            }
            Change::ModifyAttribute {
                uid,
                name,
                index,
                value,
            } => {
                let slot = self.by_uid.get(&uid).expect("checked");
                let o = self.slots[slot as usize].as_mut().expect("checked");
                // The instance was checked to exist: only a value without a compact form fails.
                let Some(old) = o.attributes.replace(&name, index, &value) else {
                    return Err(ApplyError::Unstorable(name));
                };
                self.unindex_unless_held(slot, &name, &old);
                self.index_value(slot, &name, &value);
                Ok(Some(index))
            }
            Change::DeleteAttribute { uid, name, index } => {
                let slot = self.by_uid.get(&uid).expect("checked");
                let o = self.slots[slot as usize].as_mut().expect("checked");
                let gone = o
                    .attributes
                    .remove(|n, i| n == name && index.is_none_or(|x| x == i));
                for a in gone {
                    self.unindex_unless_held(slot, &a.name, &a.value);
                }
                Ok(index)
            }
            Change::State { uid, state } => {
                self.set_state(&uid, state, false);
                Ok(None)
            }
            Change::Destroy { uid, state } => {
                self.set_state(&uid, state, true);
                Ok(None)
            }
            Change::Erase { uid } => {
                let slot = self.by_uid.remove(&uid).expect("checked");
                let o = self.slots[slot as usize].take().expect("checked");
                self.index_object(slot, &o, false);
                self.free.push(slot);
                Ok(None)
            }
            Change::UidFloor(n) => {
                self.raise_next_uid(n);
                Ok(None)
            }
        }
    }

    fn set_state(&mut self, uid: &str, state: u32, destroy: bool) {
        let slot = self.by_uid.get(uid).expect("checked");
        let o = self.slots[slot as usize].as_mut().expect("checked");
        let old = Item::new(Tag::STATE, Value::Enumeration(o.state));
        o.state = state;
        if destroy {
            o.value = None;
        }
        self.unindex_value(slot, STATE, &old);
        self.index_value(
            slot,
            STATE,
            &Item::new(Tag::STATE, Value::Enumeration(state)),
        );
    }

    fn apply_foreign(&mut self, uid: &str, change: Change) -> Result<Option<u32>, ApplyError> {
        let o = self
            .foreign
            .get_mut(uid)
            .ok_or_else(|| ApplyError::NotFound(uid.to_string()))?;
        match change {
            Change::AddAttribute {
                name, index, value, ..
            } => {
                let index = index.unwrap_or_else(|| o.next_index(&name));
                if !o.attributes.push(&name, index, &value) {
                    return Err(ApplyError::Unstorable(name));
                }
            }
            Change::ModifyAttribute {
                name, index, value, ..
            } => {
                if o.attributes.has(&name, Some(index))
                    && o.attributes.replace(&name, index, &value).is_none()
                {
                    return Err(ApplyError::Unstorable(name));
                }
            }
            Change::DeleteAttribute { name, index, .. } => {
                o.attributes
                    .remove(|n, i| n == name && index.is_none_or(|x| x == i));
            }
            Change::State { state, .. } => o.state = state,
            Change::Destroy { state, .. } => {
                o.state = state;
                o.value = None;
            }
            Change::Erase { .. } => {
                self.foreign.remove(uid);
            }
            Change::Create(_) | Change::UidFloor(_) => {}
        }
        Ok(None)
    }

    fn candidates(&self, c: &Criterion) -> Vec<u32> {
        let mut out = Vec::new();
        let (name, lo, hi) = match c {
            Criterion::Equals(n, k) => (n, k, k),
            Criterion::Range(n, a, b) => (n, a, b),
        };
        let Some(n) = known_number(name) else {
            return out;
        };
        if lo == hi {
            let posting = match lo {
                Key::Int(i) => self.ints.get(n, *i),
                other => self
                    .others
                    .get(other_key(&mut Vec::new(), n, other.scalar())),
            };
            if let Some(p) = posting {
                p.extend_into(&mut out);
            }
        } else {
            // A range (no operation asks for one yet): every key of the attribute, compared in
            // the order of `Key`.
            let within = |k: Scalar<'_>| (lo.scalar()..=hi.scalar()).contains(&k);
            let ints = self
                .ints
                .iter()
                .filter_map(|((m, i), p)| (m == n && within(Scalar::Int(i))).then_some(p));
            let others = self.others.iter().filter_map(|(k, p)| {
                split_other_key(k).and_then(|(m, key)| (m == n && within(key)).then_some(p))
            });
            for p in ints.chain(others) {
                p.extend_into(&mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The Unique Identifiers of the objects matching every criterion (all objects when there
    /// are none), in creation order of their slots.
    pub fn find(&self, criteria: &[Criterion]) -> Vec<String> {
        let mut sets: Vec<Vec<u32>> = criteria.iter().map(|c| self.candidates(c)).collect();
        sets.sort_by_key(Vec::len);
        let ids: Vec<u32> = match sets.split_first() {
            None => (0..self.slots.len() as u32)
                .filter(|&i| self.slots[i as usize].is_some())
                .collect(),
            Some((first, rest)) => first
                .iter()
                .copied()
                .filter(|id| rest.iter().all(|s| s.binary_search(id).is_ok()))
                .collect(),
        };
        ids.into_iter()
            .filter_map(|i| self.slots[i as usize].as_ref().map(|o| o.uid.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::attributes::Attributes;

    #[test]
    fn numbered_identifiers_find_their_slots_in_order_far_apart_or_as_text() {
        let mut m = UidMap::default();
        assert!(m.insert_new("1", 10));
        assert!(m.insert_new("2", 11));
        assert!(!m.insert_new("2", 12), "a taken identifier is refused");
        assert!(m.insert_new("0", 14));
        assert!(
            m.insert_new("007", 15),
            "not a canonical number: kept as text"
        );
        assert!(m.insert_new("18446744073709551615", 16));
        assert!(
            m.insert_new("150000", 17),
            "beyond the table's reach: hashed"
        );
        assert!(m.dense.len() < 150_000);
        for (uid, slot) in [("1", 10), ("2", 11), ("0", 14), ("007", 15), ("150000", 17)] {
            assert_eq!(m.get(uid), Some(slot), "{uid}");
        }
        assert_eq!((m.get("7"), m.get("3"), m.len()), (None, None, 6));
        // The table grows in order past a number hashed while it was far: still one entry.
        for n in 3..160_000u32 {
            let uid = n.to_string();
            assert_eq!(m.insert_new(&uid, n), n != 150_000, "{uid}");
        }
        assert_eq!(m.get("150000"), Some(17));
        assert_eq!(m.len(), 6 + 160_000 - 3 - 1);
        assert_eq!(m.remove("150000"), Some(17));
        assert_eq!((m.remove("150000"), m.get("150000")), (None, None));
        assert_eq!(m.remove("2"), Some(11));
        assert_eq!(m.get("2"), None);
        assert!(
            m.insert_new("2", 18),
            "a removed identifier's entry is free again"
        );
        assert_eq!(m.get("2"), Some(18));
        assert_eq!(m.remove("007"), Some(15));
        assert_eq!(m.len(), 6 + 160_000 - 3 - 1 - 2);
    }

    #[test]
    fn numeric_and_other_unique_identifiers_find_their_objects() {
        assert_eq!(uid_number("42"), Some(42));
        assert_eq!(uid_number("0"), Some(0));
        for text in ["042", "", "+4", "4a", "12345678901234567890", "-1"] {
            assert_eq!(uid_number(text), None, "{text:?}");
        }
        let mut m = UidMap::default();
        assert!(m.insert_new("42", 1));
        assert!(m.insert_new("042", 2));
        assert!(m.insert_new("a1b2", 3));
        assert!(!m.insert_new("42", 4), "already mapped");
        assert!(!m.insert_new("a1b2", 4), "already mapped");
        assert_eq!(
            (m.get("42"), m.get("042"), m.get("a1b2")),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m.remove("042"), Some(2));
        assert_eq!((m.get("42"), m.get("042")), (Some(1), None));
    }

    #[test]
    fn keys_read_from_compact_values_equal_keys_of_decoded_values() {
        let v = |value: Value| Item::new(Tag::ATTRIBUTE_VALUE, value);
        let name = |text: &str, first: bool| {
            let value = Item::new(Tag::NAME_VALUE, Value::TextString(text.into()));
            let kind = Item::new(Tag::NAME_TYPE, Value::Enumeration(1));
            let children = if first {
                vec![value, kind]
            } else {
                vec![kind, value]
            };
            Item::structure(Tag::ATTRIBUTE_VALUE, children)
        };
        let cases = [
            ("x-i", v(Value::Integer(-7))),
            ("x-l", v(Value::LongInteger(i64::MIN))),
            ("Initial Date", v(Value::DateTime(1_700_000_000))),
            ("x-dx", v(Value::DateTimeExtended(-5))),
            ("State", v(Value::Enumeration(u32::MAX))),
            ("x-iv", v(Value::Interval(86_400))),
            ("Fresh", v(Value::Boolean(true))),
            ("x-b", v(Value::Boolean(false))),
            ("Object Group", v(Value::TextString("group ü".into()))),
            ("x-t", v(Value::TextString(String::new()))),
            ("x-bytes", v(Value::ByteString(vec![1, 2, 3]))),
            ("x-long-bytes", v(Value::ByteString(vec![9; 65]))),
            ("x-big", v(Value::BigInteger(vec![0; 8]))),
            ("Name", name("first name", true)),
            ("Name", name("second", false)),
            ("Link", name("not a name", true)),
            (
                "Name",
                Item::structure(
                    Tag::ATTRIBUTE_VALUE,
                    vec![
                        Item::new(Tag::NAME_VALUE, Value::Integer(1)),
                        Item::new(Tag::NAME_VALUE, Value::TextString("later".into())),
                    ],
                ),
            ),
        ];
        for (attribute, value) in cases {
            let mut kept = Attributes::new();
            assert!(kept.push(attribute, 0, &value));
            let (_, encoded) = kept.encoded().next().expect("one instance");
            assert_eq!(
                key_of_encoded(encoded, attribute == "Name"),
                scalar_of(attribute, &value),
                "{attribute}: {value:?}"
            );
        }
    }

    fn object(uid: &str) -> StoredObject {
        StoredObject {
            uid: uid.into(),
            object_type: 2,
            state: 1,
            owner: None,
            hsm_name: "h".into(),
            attributes: Attributes::new(),
            token_ref: None,
            value: None,
        }
    }

    fn text(t: &str) -> Item {
        Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString(t.into()))
    }

    fn found(idx: &Index, name: &str, t: &str) -> Vec<String> {
        idx.find(&[Criterion::Equals(name.into(), Key::Text(t.into()))])
    }

    fn add(idx: &mut Index, uid: &str, name: &str, value: Item) -> Result<Option<u32>, ApplyError> {
        idx.apply(Change::AddAttribute {
            uid: uid.into(),
            name: name.into(),
            index: None,
            value,
        })
    }

    #[test]
    fn a_refused_record_of_another_hsm_name_leaves_no_names_behind() {
        let mut idx = Index::new("h");
        let foreign = |uid: &str, hsm: &str, owner: &str| StoredObject {
            hsm_name: hsm.into(),
            owner: Some(owner.into()),
            ..object(uid)
        };
        idx.apply(Change::Create(foreign("5", "other", "alice")))
            .expect("kept aside");
        idx.apply(Change::Create(object("6"))).expect("own");
        let interned = idx.interned.len();
        for refused in [foreign("5", "third", "bob"), foreign("5", "other", "carol")] {
            assert!(matches!(
                idx.apply(Change::Create(refused)),
                Err(ApplyError::Exists(_))
            ));
        }
        assert!(matches!(
            idx.apply(Change::Create(foreign("6", "other", "dave"))),
            Err(ApplyError::Exists(_))
        ));
        assert_eq!(idx.interned.len(), interned, "{:?}", idx.interned);
        assert_eq!(idx.foreign_len(), 1);
    }

    #[test]
    fn an_object_stays_found_while_any_instance_holds_the_value() {
        let mut idx = Index::new("h");
        idx.apply(Change::Create(object("1"))).expect("create");
        for _ in 0..3 {
            add(&mut idx, "1", "x-t", text("a")).expect("add");
        }
        idx.apply(Change::DeleteAttribute {
            uid: "1".into(),
            name: "x-t".into(),
            index: Some(1),
        })
        .expect("delete one");
        assert_eq!(
            found(&idx, "x-t", "a"),
            ["1"],
            "instances 0 and 2 still hold it"
        );
        idx.apply(Change::ModifyAttribute {
            uid: "1".into(),
            name: "x-t".into(),
            index: 0,
            value: text("b"),
        })
        .expect("modify");
        assert_eq!(found(&idx, "x-t", "a"), ["1"], "instance 2 still holds it");
        assert_eq!(found(&idx, "x-t", "b"), ["1"]);
        idx.apply(Change::DeleteAttribute {
            uid: "1".into(),
            name: "x-t".into(),
            index: Some(2),
        })
        .expect("delete the last");
        assert!(found(&idx, "x-t", "a").is_empty());
        assert_eq!(found(&idx, "x-t", "b"), ["1"]);
    }

    #[test]
    fn a_value_without_a_compact_form_is_refused_and_never_indexed() {
        let mut idx = Index::new("h");
        idx.apply(Change::Create(object("1"))).expect("create");
        let mut deep = text("deep");
        for _ in 0..70 {
            deep = Item::structure(Tag::ATTRIBUTE_VALUE, vec![deep]);
        }
        let name = |inner: Item| {
            Item::structure(
                Tag::ATTRIBUTE_VALUE,
                vec![
                    Item::new(Tag::NAME_VALUE, Value::TextString("victim".into())),
                    inner,
                ],
            )
        };
        assert_eq!(
            add(&mut idx, "1", "Name", name(deep.clone())),
            Err(ApplyError::Unstorable("Name".into()))
        );
        assert!(found(&idx, "Name", "victim").is_empty());
        assert!(idx.get("1").expect("kept").attributes.is_empty());
        add(&mut idx, "1", "Name", name(text("shallow"))).expect("storable");
        let modify = Change::ModifyAttribute {
            uid: "1".into(),
            name: "Name".into(),
            index: 0,
            value: name(deep),
        };
        assert_eq!(
            idx.apply(modify),
            Err(ApplyError::Unstorable("Name".into()))
        );
        assert_eq!(
            found(&idx, "Name", "victim"),
            ["1"],
            "the stored value is unchanged"
        );
    }

    #[test]
    fn equality_and_ranges_find_exactly_the_matching_objects() {
        let mut idx = Index::new("h");
        for (uid, date, group) in [("1", 100, "a"), ("2", 200, "b"), ("3", 300, "c")] {
            idx.apply(Change::Create(object(uid))).expect("create");
            let date = Item::new(Tag::ATTRIBUTE_VALUE, Value::DateTime(date));
            add(&mut idx, uid, "Initial Date", date).expect("add");
            add(&mut idx, uid, "Object Group", text(group)).expect("add");
        }
        let find = |idx: &Index, c: Criterion| idx.find(&[c]);
        let range = |a: Key, b: Key| Criterion::Range("Initial Date".into(), a, b);
        assert_eq!(find(&idx, range(Key::Int(150), Key::Int(300))), ["2", "3"]);
        assert_eq!(find(&idx, range(Key::Int(100), Key::Int(100))), ["1"]);
        assert!(
            find(&idx, range(Key::Int(300), Key::Int(100))).is_empty(),
            "reversed"
        );
        let groups = |a: &str, b: &str| {
            Criterion::Range(
                "Object Group".into(),
                Key::Text(a.into()),
                Key::Text(b.into()),
            )
        };
        assert_eq!(find(&idx, groups("a", "b")), ["1", "2"]);
        assert!(find(&idx, groups("d", "z")).is_empty());
        assert_eq!(found(&idx, "Object Group", "c"), ["3"]);
        assert!(
            found(&idx, "Initial Date", "c").is_empty(),
            "another attribute"
        );
        let state = Criterion::Equals(STATE.into(), Key::Int(1));
        assert_eq!(find(&idx, state.clone()), ["1", "2", "3"]);
        idx.apply(Change::State {
            uid: "2".into(),
            state: 3,
        })
        .expect("state");
        assert_eq!(find(&idx, state), ["1", "3"]);
        assert_eq!(
            idx.apply(Change::Create(object("3"))),
            Err(ApplyError::Exists("3".into()))
        );
        assert_eq!(idx.len(), 3, "a refused create takes no slot");
        idx.apply(Change::Create(object("4"))).expect("create");
        assert_eq!(idx.find(&[]), ["1", "2", "3", "4"]);
    }

    fn members(p: &Posting) -> Vec<u32> {
        let mut all = Vec::new();
        p.extend_into(&mut all);
        all
    }

    #[test]
    fn integer_postings_remembered_last_stay_right_as_keys_come_and_go() {
        let mut ints = IntPostings::default();
        let members = |ints: &IntPostings, n: u32, v: i64| ints.get(n, v).map_or(vec![], members);
        ints.insert(1, 10, 0);
        ints.insert(1, 10, 1);
        // Name 65 shares name 1's remembered entry (modulo 64) and evicts it.
        ints.insert(65, 10, 2);
        ints.insert(1, 11, 3);
        assert_eq!(members(&ints, 1, 10), [0, 1]);
        assert_eq!(members(&ints, 65, 10), [2]);
        assert_eq!(members(&ints, 1, 11), [3]);
        // The last member leaves: the key is gone, remembered or not, and its entry is reused.
        ints.remove(1, 11, 3);
        assert!(ints.get(1, 11).is_none());
        ints.remove(1, 11, 3);
        ints.insert(2, 7, 4);
        assert_eq!(ints.postings.len(), 3, "the freed entry was reused");
        assert!(
            ints.get(1, 11).is_none(),
            "not found through the reused entry"
        );
        assert_eq!(members(&ints, 2, 7), [4]);
        ints.remove(1, 10, 0);
        assert_eq!(members(&ints, 1, 10), [1]);
        let mut keys: Vec<_> = ints.iter().map(|(k, _)| k).collect();
        keys.sort_unstable();
        assert_eq!(keys, [(1, 10), (2, 7), (65, 10)]);
    }

    #[test]
    fn posting_lists_change_form_and_keep_every_member() {
        let mut p = Posting::One(5);
        for id in (0..2000).rev() {
            p.insert(id);
        }
        assert!(
            matches!(p, Posting::Dense(_)),
            "2,000 of 2,000 slots is dense"
        );
        assert_eq!(members(&p), (0..2000).collect::<Vec<_>>());
        for id in 0..1900 {
            assert!(!p.remove(id));
        }
        let dense = matches!(p, Posting::Dense(_));
        assert!(dense, "100 bits of 2,000 are smaller than a vector");
        for id in 1900..1990 {
            assert!(!p.remove(id));
        }
        let few = matches!(p, Posting::Few(_));
        assert!(few, "10 of 2,000 slots is a vector again");
        assert_eq!(members(&p), (1990..2000).collect::<Vec<_>>());
        for id in 1990..1999 {
            assert!(!p.remove(id));
        }
        assert!(matches!(p, Posting::One(1999)));
        assert!(p.remove(1999), "empty after the last member goes");

        let mut sparse = Posting::One(0);
        for id in (1..100).map(|i| i * 1000) {
            sparse.insert(id);
        }
        assert!(
            matches!(sparse, Posting::Few(_)),
            "1 in 1,000 stays a vector"
        );
        let all = members(&sparse);
        assert_eq!(all.len(), 100);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }
}
