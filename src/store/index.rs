//! The in-memory state of the keystore: every object of this gateway's HSM_name, and an inverted
//! index on attribute values (Name, Object Type, State, algorithm, length, dates, Object Group,
//! custom attributes …) so that Locate answers in microseconds at 100,000 objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::object::{Change, StoredAttribute, StoredObject};
use crate::ttlv::{Item, Tag, Value};

/// An attribute value in the index's order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// Integers, enumerations, booleans, date-times, intervals.
    Int(i64),
    /// Text (Name values, custom text attributes, Object Group …).
    Text(String),
    /// Short byte strings.
    Bytes(Vec<u8>),
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

/// The key of an indexable value; structures index only a Name's text.
pub fn key_of(name: &str, value: &Item) -> Option<Key> {
    match &value.value {
        Value::Integer(v) => Some(Key::Int(i64::from(*v))),
        Value::LongInteger(v) | Value::DateTime(v) | Value::DateTimeExtended(v) => {
            Some(Key::Int(*v))
        }
        Value::Enumeration(v) => Some(Key::Int(i64::from(*v))),
        Value::Interval(v) => Some(Key::Int(i64::from(*v))),
        Value::Boolean(b) => Some(Key::Int(i64::from(*b))),
        Value::TextString(s) => Some(Key::Text(s.clone())),
        Value::ByteString(b) if b.len() <= 64 => Some(Key::Bytes(b.clone())),
        Value::Structure(_) if name == "Name" => {
            match value.child(Tag::NAME_VALUE).map(|v| &v.value) {
                Some(Value::TextString(s)) => Some(Key::Text(s.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A posting list: most values are held by one object, so that case costs no allocation.
#[derive(Clone, Debug)]
enum Posting {
    One(u32),
    Many(BTreeSet<u32>),
}

impl Posting {
    fn insert(&mut self, id: u32) {
        match self {
            Posting::One(x) if *x == id => {}
            Posting::One(x) => *self = Posting::Many(BTreeSet::from([*x, id])),
            Posting::Many(s) => {
                s.insert(id);
            }
        }
    }

    /// Removes `id`; true when the list is now empty.
    fn remove(&mut self, id: u32) -> bool {
        match self {
            Posting::One(x) => *x == id,
            Posting::Many(s) => {
                s.remove(&id);
                if s.len() == 1 {
                    let only = *s.iter().next().expect("one element");
                    *self = Posting::One(only);
                }
                s_is_empty(self)
            }
        }
    }

    fn extend_into(&self, out: &mut Vec<u32>) {
        match self {
            Posting::One(x) => out.push(*x),
            Posting::Many(s) => out.extend(s.iter().copied()),
        }
    }
}

fn s_is_empty(p: &Posting) -> bool {
    matches!(p, Posting::Many(s) if s.is_empty())
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
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::NotFound(u) => write!(f, "no object {u}"),
            ApplyError::Exists(u) => write!(f, "object {u} already exists"),
            ApplyError::NoSuchInstance(a) => write!(f, "no such attribute instance: {a}"),
        }
    }
}

/// All objects of one HSM_name, indexed; objects of other HSM_names are kept aside (for
/// compaction) but not indexed or visible.
#[derive(Debug, Default)]
pub struct Index {
    hsm_name: String,
    slots: Vec<Option<StoredObject>>,
    free: Vec<u32>,
    by_uid: HashMap<String, u32>,
    names: HashMap<String, u16>,
    postings: BTreeMap<(u16, Key), Posting>,
    foreign: HashMap<String, StoredObject>,
    interned: std::collections::HashSet<Arc<str>>,
    /// Unique Identifiers below this are used (or were).
    pub next_uid: u64,
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
            .and_then(|&i| self.slots[i as usize].as_ref())
    }

    /// Every visible object.
    pub fn iter(&self) -> impl Iterator<Item = &StoredObject> {
        self.slots.iter().flatten()
    }

    /// Every object, of every HSM_name (for compaction).
    pub fn all(&self) -> impl Iterator<Item = &StoredObject> {
        self.slots.iter().flatten().chain(self.foreign.values())
    }

    /// One shared copy of each attribute name, owner and HSM_name.
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.interned.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.interned.insert(a.clone());
        a
    }

    /// The kept copy of `a`'s text: `a` itself when the text is new (a decoded record usually
    /// shares the kept copy already: see `object::shared_name`).
    fn adopt(&mut self, a: &mut Arc<str>) {
        match self.interned.get(&**a) {
            Some(kept) if Arc::ptr_eq(kept, a) => {}
            Some(kept) => *a = kept.clone(),
            None => {
                self.interned.insert(a.clone());
            }
        }
    }

    fn intern_object(&mut self, o: &mut StoredObject) {
        // Objects stay in memory for the gateway's life: no spare capacity.
        o.attributes.shrink_to_fit();
        self.adopt(&mut o.hsm_name);
        if let Some(owner) = &mut o.owner {
            self.adopt(owner);
        }
        for a in &mut o.attributes {
            self.adopt(&mut a.name);
        }
    }

    fn name_id(&mut self, name: &str) -> u16 {
        if let Some(&id) = self.names.get(name) {
            return id;
        }
        let id = self.names.len() as u16;
        self.names.insert(name.to_string(), id);
        id
    }

    fn index_value(&mut self, slot: u32, name: &str, value: &Item) {
        if let Some(k) = key_of(name, value) {
            let n = self.name_id(name);
            self.postings
                .entry((n, k))
                .and_modify(|p| p.insert(slot))
                .or_insert(Posting::One(slot));
        }
    }

    fn unindex_value(&mut self, slot: u32, name: &str, value: &Item) {
        let (Some(k), Some(&n)) = (key_of(name, value), self.names.get(name)) else {
            return;
        };
        let key = (n, k);
        if self.postings.get_mut(&key).is_some_and(|p| p.remove(slot)) {
            self.postings.remove(&key);
        }
    }

    fn index_object(&mut self, slot: u32, o: &StoredObject, add: bool) {
        let fields = [
            (
                OBJECT_TYPE,
                Item::new(Tag::OBJECT_TYPE, Value::Enumeration(o.object_type)),
            ),
            (STATE, Item::new(Tag::STATE, Value::Enumeration(o.state))),
        ];
        for (name, v) in fields.iter() {
            if add {
                self.index_value(slot, name, v)
            } else {
                self.unindex_value(slot, name, v)
            }
        }
        for a in &o.attributes {
            if add {
                self.index_value(slot, &a.name, &a.value)
            } else {
                self.unindex_value(slot, &a.name, &a.value)
            }
        }
    }

    fn note_uid(&mut self, uid: &str) {
        if let Ok(n) = uid.parse::<u64>() {
            self.next_uid = self.next_uid.max(n.saturating_add(1));
        }
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
                if self.by_uid.contains_key(&o.uid) || self.foreign.contains_key(&o.uid) {
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
                    .is_some_and(|o| o.attribute(name).any(|a| a.index == *index));
                if found {
                    Ok(())
                } else {
                    Err(ApplyError::NoSuchInstance(format!("{name}[{index}]")))
                }
            }
            Change::DeleteAttribute { uid, name, index } => {
                exists(uid)?;
                let found = self.get(uid).is_some_and(|o| {
                    o.attribute(name)
                        .any(|a| index.is_none_or(|i| a.index == i))
                });
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
                self.note_uid(&o.uid);
                self.intern_object(&mut o);
                if self.foreign.contains_key(&o.uid) || self.by_uid.contains_key(&o.uid) {
                    return Err(ApplyError::Exists(o.uid));
                }
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
            && !self.by_uid.contains_key(&uid)
            && self.foreign.contains_key(&uid)
        {
            return self.apply_foreign(&uid, change);
        }
        self.check(&change)?;
        match change {
            Change::Create(mut o) => {
                self.note_uid(&o.uid);
                self.intern_object(&mut o);
                let slot = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.slots.push(None);
                        (self.slots.len() - 1) as u32
                    }
                };
                self.index_object(slot, &o, true);
                self.by_uid.insert(o.uid.clone(), slot);
                self.slots[slot as usize] = Some(o);
                Ok(None)
            }
            Change::AddAttribute {
                uid,
                name,
                index,
                value,
            } => {
                let slot = self.by_uid[&uid];
                let o = self.slots[slot as usize].as_ref().expect("checked");
                let index = index.unwrap_or_else(|| o.next_index(&name));
                self.index_value(slot, &name, &value);
                let name = self.intern(&name);
                let o = self.slots[slot as usize].as_mut().expect("checked");
                o.attributes.reserve_exact(1);
                o.attributes.push(StoredAttribute { name, index, value });
                Ok(Some(index))
            }
            Change::ModifyAttribute {
                uid,
                name,
                index,
                value,
            } => {
                let slot = self.by_uid[&uid];
                let o = self.slots[slot as usize].as_mut().expect("checked");
                let a = o
                    .attributes
                    .iter_mut()
                    .find(|a| *a.name == *name && a.index == index)
                    .expect("checked");
                let old = std::mem::replace(&mut a.value, value.clone());
                self.unindex_value(slot, &name, &old);
                self.index_value(slot, &name, &value);
                Ok(Some(index))
            }
            Change::DeleteAttribute { uid, name, index } => {
                let slot = self.by_uid[&uid];
                let o = self.slots[slot as usize].as_mut().expect("checked");
                let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut o.attributes)
                    .into_iter()
                    .partition(|a| *a.name == *name && index.is_none_or(|i| a.index == i));
                o.attributes = kept;
                for a in gone {
                    self.unindex_value(slot, &a.name, &a.value);
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
                self.next_uid = self.next_uid.max(n);
                Ok(None)
            }
        }
    }

    fn set_state(&mut self, uid: &str, state: u32, destroy: bool) {
        let slot = self.by_uid[uid];
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
                o.attributes.push(StoredAttribute {
                    name: name.into(),
                    index,
                    value,
                });
            }
            Change::ModifyAttribute {
                name, index, value, ..
            } => {
                if let Some(a) = o
                    .attributes
                    .iter_mut()
                    .find(|a| *a.name == *name && a.index == index)
                {
                    a.value = value;
                }
            }
            Change::DeleteAttribute { name, index, .. } => {
                o.attributes
                    .retain(|a| !(*a.name == *name && index.is_none_or(|i| a.index == i)));
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
            Criterion::Equals(n, k) => (n, Bound::Included(k.clone()), Bound::Included(k.clone())),
            Criterion::Range(n, a, b) => {
                (n, Bound::Included(a.clone()), Bound::Included(b.clone()))
            }
        };
        let Some(&n) = self.names.get(name) else {
            return out;
        };
        let map = |b: Bound<Key>| match b {
            Bound::Included(k) => Bound::Included((n, k)),
            Bound::Excluded(k) => Bound::Excluded((n, k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        for (_, p) in self.postings.range((map(lo), map(hi))) {
            p.extend_into(&mut out);
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
