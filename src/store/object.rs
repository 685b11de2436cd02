//! What the keystore keeps per managed object, and the changes its log records.
//! Bodies are TTLV (our own codec) with a few private tags in the 0x54FFxx extension range;
//! they never leave the keystore.

use std::sync::Arc;

pub use super::attributes::{Attributes, StoredAttribute};
use super::secret::SecretBytes;
use crate::ttlv::{Item, Tag, Value};

/// Private tags of the record bodies.
pub mod tags {
    use crate::ttlv::Tag;
    /// A whole object.
    pub const OBJECT: Tag = Tag(0x54FF01);
    /// Owner (client identity).
    pub const OWNER: Tag = Tag(0x54FF02);
    /// HSM_name.
    pub const HSM_NAME: Tag = Tag(0x54FF03);
    /// Token reference structure.
    pub const TOKEN_REFERENCE: Tag = Tag(0x54FF04);
    /// CKA_ID.
    pub const TOKEN_ID: Tag = Tag(0x54FF05);
    /// CKA_CLASS.
    pub const TOKEN_CLASS: Tag = Tag(0x54FF06);
    /// CKA_LABEL.
    pub const TOKEN_LABEL: Tag = Tag(0x54FF07);
    /// The object's value (TTLV of its Key Block or data), kept when not in an HSM.
    pub const OBJECT_VALUE: Tag = Tag(0x54FF08);
    /// The next Unique Identifier number.
    pub const NEXT_UID: Tag = Tag(0x54FF09);
    /// A change record body.
    pub const CHANGE: Tag = Tag(0x54FF0A);
}

/// Where an HSM-resident object lives on the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRef {
    /// CKA_ID.
    pub id: Vec<u8>,
    /// CKA_CLASS.
    pub class: u64,
    /// CKA_LABEL.
    pub label: String,
}

/// A managed object's metadata, and its value when the keystore holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    /// Unique Identifier.
    pub uid: String,
    /// Object Type enumeration value.
    pub object_type: u32,
    /// State enumeration value.
    pub state: u32,
    /// The client identity that created it.
    pub owner: Option<Arc<str>>,
    /// HSM_name of the gateway that made it.
    pub hsm_name: Arc<str>,
    /// Every attribute instance (besides Unique Identifier, Object Type and State).
    pub attributes: Attributes,
    /// Where it lives on a token, if it does.
    pub token_ref: Option<Box<TokenRef>>,
    /// Its value, if kept here (software token, Secret Data); dropped on Destroy.
    pub value: Option<SecretBytes>,
}

impl StoredObject {
    /// The Attribute Index a new instance of `name` gets: one past the highest in use.
    pub fn next_index(&self, name: &str) -> u32 {
        self.attributes
            .indexes(name)
            .map(|i| i + 1)
            .max()
            .unwrap_or(0)
    }

    /// The instances of attribute `name`, decoded, in the order they were added.
    pub fn attribute(&self, name: &str) -> impl Iterator<Item = StoredAttribute> + '_ {
        self.attributes.named(name)
    }
}

/// One change, as one log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An object created or registered.
    Create(StoredObject),
    /// A new attribute instance (index chosen by the store when `None`).
    AddAttribute {
        uid: String,
        name: String,
        index: Option<u32>,
        value: Item,
    },
    /// An attribute instance replaced.
    ModifyAttribute {
        uid: String,
        name: String,
        index: u32,
        value: Item,
    },
    /// One instance deleted, or all instances when `index` is `None`.
    DeleteAttribute {
        uid: String,
        name: String,
        index: Option<u32>,
    },
    /// A new state.
    State { uid: String, state: u32 },
    /// The value is destroyed (metadata stays, in `state`).
    Destroy { uid: String, state: u32 },
    /// The object is forgotten entirely.
    Erase { uid: String },
    /// Unique Identifiers below this number are never handed out again (kept by compaction).
    UidFloor(u64),
}

/// Record kinds in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Change::Create`].
    Create = 1,
    /// [`Change::AddAttribute`].
    AddAttribute = 2,
    /// [`Change::ModifyAttribute`].
    ModifyAttribute = 3,
    /// [`Change::DeleteAttribute`].
    DeleteAttribute = 4,
    /// [`Change::State`].
    State = 5,
    /// [`Change::Destroy`].
    Destroy = 6,
    /// [`Change::Erase`].
    Erase = 7,
    /// [`Change::UidFloor`].
    UidFloor = 8,
}

impl Kind {
    /// The kind for a record byte.
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Create,
            2 => Kind::AddAttribute,
            3 => Kind::ModifyAttribute,
            4 => Kind::DeleteAttribute,
            5 => Kind::State,
            6 => Kind::Destroy,
            7 => Kind::Erase,
            8 => Kind::UidFloor,
            _ => return None,
        })
    }

    /// Its name, for `ksg keystore verify`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::AddAttribute => "add-attribute",
            Kind::ModifyAttribute => "modify-attribute",
            Kind::DeleteAttribute => "delete-attribute",
            Kind::State => "state",
            Kind::Destroy => "destroy",
            Kind::Erase => "erase",
            Kind::UidFloor => "uid-floor",
        }
    }
}

impl Change {
    /// The Unique Identifier of the object the change is about (none for a UID floor).
    pub fn uid(&self) -> Option<&str> {
        match self {
            Change::Create(o) => Some(&o.uid),
            Change::AddAttribute { uid, .. }
            | Change::ModifyAttribute { uid, .. }
            | Change::DeleteAttribute { uid, .. }
            | Change::State { uid, .. }
            | Change::Destroy { uid, .. }
            | Change::Erase { uid } => Some(uid),
            Change::UidFloor(_) => None,
        }
    }

    /// The record kind.
    pub fn kind(&self) -> Kind {
        match self {
            Change::Create(_) => Kind::Create,
            Change::AddAttribute { .. } => Kind::AddAttribute,
            Change::ModifyAttribute { .. } => Kind::ModifyAttribute,
            Change::DeleteAttribute { .. } => Kind::DeleteAttribute,
            Change::State { .. } => Kind::State,
            Change::Destroy { .. } => Kind::Destroy,
            Change::Erase { .. } => Kind::Erase,
            Change::UidFloor(_) => Kind::UidFloor,
        }
    }
}

fn text(tag: Tag, s: &str) -> Item {
    Item::new(tag, Value::TextString(s.to_string()))
}

fn attribute_item(name: &str, index: Option<u32>, value: Option<&Item>) -> Item {
    let mut c = vec![text(Tag::ATTRIBUTE_NAME, name)];
    if let Some(i) = index {
        c.push(Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(i as i32)));
    }
    if let Some(v) = value {
        c.push(Item {
            tag: Tag::ATTRIBUTE_VALUE,
            value: v.value.clone(),
        });
    }
    Item::structure(Tag::ATTRIBUTE, c)
}

/// The record body of a change (may hold key material: the caller zeroes the encoding).
pub fn encode_change(change: &Change) -> Item {
    let c = match change {
        Change::Create(o) => return object_item(o),
        Change::AddAttribute {
            uid,
            name,
            index,
            value,
        } => {
            vec![
                text(Tag::UNIQUE_IDENTIFIER, uid),
                attribute_item(name, *index, Some(value)),
            ]
        }
        Change::ModifyAttribute {
            uid,
            name,
            index,
            value,
        } => {
            vec![
                text(Tag::UNIQUE_IDENTIFIER, uid),
                attribute_item(name, Some(*index), Some(value)),
            ]
        }
        Change::DeleteAttribute { uid, name, index } => {
            vec![
                text(Tag::UNIQUE_IDENTIFIER, uid),
                attribute_item(name, *index, None),
            ]
        }
        Change::State { uid, state } | Change::Destroy { uid, state } => {
            vec![
                text(Tag::UNIQUE_IDENTIFIER, uid),
                Item::new(Tag::STATE, Value::Enumeration(*state)),
            ]
        }
        Change::Erase { uid } => vec![text(Tag::UNIQUE_IDENTIFIER, uid)],
        Change::UidFloor(n) => vec![Item::new(tags::NEXT_UID, Value::LongInteger(*n as i64))],
    };
    Item::structure(tags::CHANGE, c)
}

fn object_item(o: &StoredObject) -> Item {
    let mut c = vec![
        text(Tag::UNIQUE_IDENTIFIER, &o.uid),
        Item::new(Tag::OBJECT_TYPE, Value::Enumeration(o.object_type)),
        Item::new(Tag::STATE, Value::Enumeration(o.state)),
        text(tags::HSM_NAME, &o.hsm_name),
    ];
    if let Some(owner) = &o.owner {
        c.push(text(tags::OWNER, owner));
    }
    for a in o.attributes.iter() {
        c.push(attribute_item(&a.name, Some(a.index), Some(&a.value)));
    }
    if let Some(t) = &o.token_ref {
        c.push(Item::structure(
            tags::TOKEN_REFERENCE,
            vec![
                Item::new(tags::TOKEN_ID, Value::ByteString(t.id.clone())),
                Item::new(tags::TOKEN_CLASS, Value::LongInteger(t.class as i64)),
                text(tags::TOKEN_LABEL, &t.label),
            ],
        ));
    }
    if let Some(v) = &o.value {
        c.push(Item::new(
            tags::OBJECT_VALUE,
            Value::ByteString(v.expose().to_vec()),
        ));
    }
    Item::structure(tags::OBJECT, c)
}

fn bad(what: &str) -> String {
    format!("record body: {what}")
}

fn take_text(v: Value) -> Result<String, String> {
    match v {
        Value::TextString(s) => Ok(s),
        _ => Err(bad("expected text")),
    }
}

fn take_enum(v: &Value) -> Result<u32, String> {
    match v {
        Value::Enumeration(e) => Ok(*e),
        _ => Err(bad("expected an enumeration")),
    }
}

fn take_attribute(item: Item) -> Result<(String, Option<u32>, Option<Item>), String> {
    let Value::Structure(children) = item.value else {
        return Err(bad("attribute is not a structure"));
    };
    let (mut name, mut index, mut value) = (None, None, None);
    for c in children {
        match c.tag {
            Tag::ATTRIBUTE_NAME => name = Some(take_text(c.value)?),
            Tag::ATTRIBUTE_INDEX => match c.value {
                Value::Integer(i) if i >= 0 => index = Some(i as u32),
                _ => return Err(bad("bad attribute index")),
            },
            Tag::ATTRIBUTE_VALUE => value = Some(c),
            _ => return Err(bad("unexpected item in attribute")),
        }
    }
    Ok((
        name.ok_or_else(|| bad("attribute without a name"))?,
        index,
        value,
    ))
}

/// Reads a change back from its record body (taking it apart by value: key material moves).
pub fn decode_change(kind: Kind, body: Item) -> Result<Change, String> {
    if kind == Kind::Create {
        return decode_object(body).map(Change::Create);
    }
    let Value::Structure(children) = body.value else {
        return Err(bad("not a structure"));
    };
    let mut uid = None;
    let mut attr = None;
    let mut state = None;
    let mut floor = None;
    for c in children {
        match c.tag {
            Tag::UNIQUE_IDENTIFIER => uid = Some(take_text(c.value)?),
            Tag::ATTRIBUTE => attr = Some(take_attribute(c)?),
            Tag::STATE => state = Some(take_enum(&c.value)?),
            tags::NEXT_UID => match c.value {
                Value::LongInteger(n) if n >= 0 => floor = Some(n as u64),
                _ => return Err(bad("bad uid floor")),
            },
            _ => return Err(bad("unexpected item")),
        }
    }
    let uid = || uid.clone().ok_or_else(|| bad("missing unique identifier"));
    let state = || state.ok_or_else(|| bad("missing state"));
    Ok(match kind {
        Kind::Create => return Err(bad("a create record is read as an object")),
        Kind::AddAttribute => {
            let (name, index, value) = attr.ok_or_else(|| bad("missing attribute"))?;
            Change::AddAttribute {
                uid: uid()?,
                name,
                index,
                value: value.ok_or_else(|| bad("missing value"))?,
            }
        }
        Kind::ModifyAttribute => {
            let (name, index, value) = attr.ok_or_else(|| bad("missing attribute"))?;
            Change::ModifyAttribute {
                uid: uid()?,
                name,
                index: index.ok_or_else(|| bad("missing index"))?,
                value: value.ok_or_else(|| bad("missing value"))?,
            }
        }
        Kind::DeleteAttribute => {
            let (name, index, _) = attr.ok_or_else(|| bad("missing attribute"))?;
            Change::DeleteAttribute {
                uid: uid()?,
                name,
                index,
            }
        }
        Kind::State => Change::State {
            uid: uid()?,
            state: state()?,
        },
        Kind::Destroy => Change::Destroy {
            uid: uid()?,
            state: state()?,
        },
        Kind::Erase => Change::Erase { uid: uid()? },
        Kind::UidFloor => Change::UidFloor(floor.ok_or_else(|| bad("missing floor"))?),
    })
}

/// Distinct names (attribute names, owners, HSM_names) a thread keeps shared copies of.
const SHARED_NAMES: usize = 4096;

/// One shared copy per thread of each name a record carries: a store holds the same few dozen
/// names on every object, and opening one decodes millions of them.
fn shared_name(name: &str) -> Arc<str> {
    thread_local! {
        static NAMES: std::cell::RefCell<std::collections::HashSet<Arc<str>>> =
            std::cell::RefCell::new(std::collections::HashSet::new());
    }
    NAMES.with_borrow_mut(|names| {
        if let Some(a) = names.get(name) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(name);
        if names.len() < SHARED_NAMES {
            names.insert(a.clone());
        }
        a
    })
}

fn decode_object(body: Item) -> Result<StoredObject, String> {
    if body.tag != tags::OBJECT {
        return Err(bad("not an object"));
    }
    let Value::Structure(children) = body.value else {
        return Err(bad("not a structure"));
    };
    let mut o = StoredObject {
        uid: String::new(),
        object_type: 0,
        state: 0,
        owner: None,
        hsm_name: Arc::from(""),
        attributes: Attributes::new(),
        token_ref: None,
        value: None,
    };
    let mut attributes = Vec::new();
    for c in children {
        match c.tag {
            Tag::UNIQUE_IDENTIFIER => o.uid = take_text(c.value)?,
            Tag::OBJECT_TYPE => o.object_type = take_enum(&c.value)?,
            Tag::STATE => o.state = take_enum(&c.value)?,
            tags::HSM_NAME => o.hsm_name = shared_name(&take_text(c.value)?),
            tags::OWNER => o.owner = Some(shared_name(&take_text(c.value)?)),
            Tag::ATTRIBUTE => {
                let (name, index, value) = take_attribute(c)?;
                let value = value.ok_or_else(|| bad("attribute without a value"))?;
                attributes.push((name, index.unwrap_or(0), value));
            }
            tags::TOKEN_REFERENCE => {
                let mut t = TokenRef {
                    id: Vec::new(),
                    class: 0,
                    label: String::new(),
                };
                for f in c.children() {
                    match (&f.tag, &f.value) {
                        (&tags::TOKEN_ID, Value::ByteString(b)) => t.id = b.clone(),
                        (&tags::TOKEN_CLASS, Value::LongInteger(n)) => t.class = *n as u64,
                        (&tags::TOKEN_LABEL, Value::TextString(s)) => t.label = s.clone(),
                        _ => return Err(bad("bad token reference")),
                    }
                }
                o.token_ref = Some(Box::new(t));
            }
            tags::OBJECT_VALUE => match c.value {
                Value::ByteString(b) => o.value = Some(SecretBytes::new(b)),
                _ => return Err(bad("bad object value")),
            },
            _ => return Err(bad("unexpected item in object")),
        }
    }
    if o.uid.is_empty() {
        return Err(bad("object without a unique identifier"));
    }
    o.attributes =
        Attributes::try_from_instances(attributes.iter().map(|(n, i, v)| (n.as_str(), *i, v)))
            .ok_or_else(|| bad("attribute value cannot be encoded"))?;
    Ok(o)
}
