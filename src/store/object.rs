//! What the keystore keeps per managed object, and the changes its log records.
//! Bodies are TTLV (our own codec) with a few private tags in the 0x54FFxx extension range;
//! they never leave the keystore.

use std::sync::Arc;

pub use super::attributes::{Attributes, StoredAttribute};
use super::secret::SecretBytes;
use crate::ttlv::binary::{self, Leaf, Limits, Node, Walker, Writer};
use crate::ttlv::{EncodeError, Item, Tag, Value};

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

fn text(w: &mut Writer<'_>, tag: Tag, s: &str) -> Result<(), EncodeError> {
    w.leaf(tag, Leaf::TextString(s))
}

fn write_attribute(
    w: &mut Writer<'_>,
    name: &str,
    index: Option<u32>,
    value: Option<&Item>,
) -> Result<(), EncodeError> {
    let open = w.begin(Tag::ATTRIBUTE);
    text(w, Tag::ATTRIBUTE_NAME, name)?;
    if let Some(i) = index {
        w.leaf(Tag::ATTRIBUTE_INDEX, Leaf::Integer(i as i32))?;
    }
    if let Some(v) = value {
        w.item(Tag::ATTRIBUTE_VALUE, &v.value)?;
    }
    w.end(open)
}

/// Appends the record body of a change to `out`, written straight from the object (no tree is
/// built). It may hold key material: `out` should zero itself when dropped; the writer leaves
/// no copy behind as the buffer grows.
pub fn write_change(change: &Change, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let written = write_change_fields(change, &mut Writer::new(out));
    if written.is_err() {
        // As `binary::encode`: nothing of a change that cannot be written is left behind.
        out.truncate(start);
    }
    written
}

fn write_change_fields(change: &Change, w: &mut Writer<'_>) -> Result<(), EncodeError> {
    if let Change::Create(o) = change {
        return write_object(w, o);
    }
    let open = w.begin(tags::CHANGE);
    if let Some(uid) = change.uid() {
        text(w, Tag::UNIQUE_IDENTIFIER, uid)?;
    }
    match change {
        Change::AddAttribute {
            name, index, value, ..
        } => write_attribute(w, name, *index, Some(value))?,
        Change::ModifyAttribute {
            name, index, value, ..
        } => write_attribute(w, name, Some(*index), Some(value))?,
        Change::DeleteAttribute { name, index, .. } => write_attribute(w, name, *index, None)?,
        Change::State { state, .. } | Change::Destroy { state, .. } => {
            w.leaf(Tag::STATE, Leaf::Enumeration(*state))?;
        }
        Change::UidFloor(n) => w.leaf(tags::NEXT_UID, Leaf::LongInteger(*n as i64))?,
        // Erase carries its identifier alone; Create was written above.
        Change::Erase { .. } | Change::Create(_) => {}
    }
    w.end(open)
}

fn write_object(w: &mut Writer<'_>, o: &StoredObject) -> Result<(), EncodeError> {
    let open = w.begin(tags::OBJECT);
    text(w, Tag::UNIQUE_IDENTIFIER, &o.uid)?;
    w.leaf(Tag::OBJECT_TYPE, Leaf::Enumeration(o.object_type))?;
    w.leaf(Tag::STATE, Leaf::Enumeration(o.state))?;
    text(w, tags::HSM_NAME, &o.hsm_name)?;
    if let Some(owner) = &o.owner {
        text(w, tags::OWNER, owner)?;
    }
    o.attributes.write_ttlv(w)?;
    if let Some(t) = &o.token_ref {
        let token = w.begin(tags::TOKEN_REFERENCE);
        w.leaf(tags::TOKEN_ID, Leaf::ByteString(&t.id))?;
        w.leaf(tags::TOKEN_CLASS, Leaf::LongInteger(t.class as i64))?;
        text(w, tags::TOKEN_LABEL, &t.label)?;
        w.end(token)?;
    }
    if let Some(v) = &o.value {
        w.leaf(tags::OBJECT_VALUE, Leaf::ByteString(v.expose()))?;
    }
    w.end(open)
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

/// Reads a change back from its record body. An object is read straight from the TTLV into
/// its compact form ([`decode_object`]); the other, small, changes through a tree.
pub fn decode_change(kind: Kind, body: &[u8], limits: &Limits) -> Result<Change, String> {
    if kind == Kind::Create {
        return decode_object(body, limits).map(Change::Create);
    }
    let body = binary::decode(body, limits).map_err(|e| bad(&e.to_string()))?;
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

thread_local! {
    static EMPTY_NAME: Arc<str> = Arc::from("");
}

/// Distinct names (attribute names, owners, HSM_names) a thread keeps shared copies of.
const SHARED_NAMES: usize = 4096;

/// One shared copy per thread of each name a record carries: a store holds the same few dozen
/// names on every object, and opening one decodes millions of them.
fn shared_name(name: &str) -> Arc<str> {
    thread_local! {
        static NAMES: std::cell::RefCell<std::collections::HashSet<Arc<str>>> =
            std::cell::RefCell::new(std::collections::HashSet::new());
        // The two names met last (an owner and an HSM_name): one comparison, no hashing.
        static RECENT: std::cell::RefCell<[Option<Arc<str>>; 2]> =
            const { std::cell::RefCell::new([None, None]) };
    }
    if let Some(a) = RECENT.with_borrow(|r| r.iter().flatten().find(|a| ***a == *name).cloned()) {
        return a;
    }
    let a = NAMES.with_borrow_mut(|names| {
        if let Some(a) = names.get(name) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(name);
        if names.len() < SHARED_NAMES {
            names.insert(a.clone());
        }
        a
    });
    RECENT.with_borrow_mut(|r| {
        r.rotate_right(1);
        r[0] = Some(a.clone());
    });
    a
}

/// What a record field of `tag` must be, when it is not.
fn wrong(tag: Tag) -> String {
    match tag {
        Tag::UNIQUE_IDENTIFIER | tags::HSM_NAME | tags::OWNER | Tag::ATTRIBUTE_NAME => {
            bad("expected text")
        }
        Tag::OBJECT_TYPE | Tag::STATE => bad("expected an enumeration"),
        Tag::ATTRIBUTE_INDEX => bad("bad attribute index"),
        Tag::ATTRIBUTE => bad("attribute is not a structure"),
        tags::OBJECT_VALUE => bad("bad object value"),
        _ => bad("bad token reference"),
    }
}

/// An object record, read field by field from its TTLV: attribute values go straight into
/// their compact form, so opening a store builds no tree per object.
fn decode_object(body: &[u8], limits: &Limits) -> Result<StoredObject, String> {
    let malformed = |e: crate::ttlv::DecodeError| bad(&e.to_string());
    let mut w = Walker::new(limits);
    let (tag, node, rest) = w.root(body).map_err(malformed)?;
    if tag != tags::OBJECT {
        return Err(bad("not an object"));
    }
    let Node::Structure(mut fields) = node else {
        return Err(bad("not a structure"));
    };
    let mut o = StoredObject {
        uid: String::new(),
        object_type: 0,
        state: 0,
        owner: None,
        // Replaced by the record's (no allocation per object for a placeholder).
        hsm_name: EMPTY_NAME.with(Arc::clone),
        attributes: Attributes::new(),
        token_ref: None,
        value: None,
    };
    let (attributes, read) = Attributes::write(|attributes| -> Result<(), String> {
        while !fields.is_empty() {
            let (tag, node) = w.next(&mut fields).map_err(malformed)?;
            match (tag, node) {
                (Tag::UNIQUE_IDENTIFIER, Node::Leaf(Leaf::TextString(t))) => o.uid = t.to_owned(),
                (Tag::OBJECT_TYPE, Node::Leaf(Leaf::Enumeration(e))) => o.object_type = e,
                (Tag::STATE, Node::Leaf(Leaf::Enumeration(e))) => o.state = e,
                (tags::HSM_NAME, Node::Leaf(Leaf::TextString(t))) => o.hsm_name = shared_name(t),
                (tags::OWNER, Node::Leaf(Leaf::TextString(t))) => o.owner = Some(shared_name(t)),
                (Tag::ATTRIBUTE, Node::Structure(mut parts)) => {
                    let (mut name, mut index) = (None, 0);
                    while !parts.is_empty() {
                        match w.next(&mut parts).map_err(malformed)? {
                            (Tag::ATTRIBUTE_NAME, Node::Leaf(Leaf::TextString(t))) => {
                                name = Some(t);
                            }
                            (Tag::ATTRIBUTE_INDEX, Node::Leaf(Leaf::Integer(i))) if i >= 0 => {
                                index = i as u32;
                            }
                            (Tag::ATTRIBUTE_VALUE, node) => {
                                if !attributes
                                    .value(&mut w, Tag::ATTRIBUTE_VALUE, node)
                                    .map_err(malformed)?
                                {
                                    return Err(bad("attribute value cannot be encoded"));
                                }
                            }
                            (tag @ (Tag::ATTRIBUTE_NAME | Tag::ATTRIBUTE_INDEX), _) => {
                                return Err(wrong(tag));
                            }
                            _ => return Err(bad("unexpected item in attribute")),
                        }
                    }
                    let name = name.ok_or_else(|| bad("attribute without a name"))?;
                    if !attributes.finish(name, index) {
                        return Err(bad("attribute without a value"));
                    }
                }
                (tags::TOKEN_REFERENCE, Node::Structure(mut parts)) => {
                    let mut t = TokenRef {
                        id: Vec::new(),
                        class: 0,
                        label: String::new(),
                    };
                    while !parts.is_empty() {
                        match w.next(&mut parts).map_err(malformed)? {
                            (tags::TOKEN_ID, Node::Leaf(Leaf::ByteString(b))) => t.id = b.to_vec(),
                            (tags::TOKEN_CLASS, Node::Leaf(Leaf::LongInteger(n))) => {
                                t.class = n as u64;
                            }
                            (tags::TOKEN_LABEL, Node::Leaf(Leaf::TextString(s))) => {
                                t.label = s.to_owned();
                            }
                            _ => return Err(bad("bad token reference")),
                        }
                    }
                    o.token_ref = Some(Box::new(t));
                }
                (tags::OBJECT_VALUE, Node::Leaf(Leaf::ByteString(b))) => {
                    o.value = Some(SecretBytes::new(b.to_vec()));
                }
                (
                    tag @ (Tag::UNIQUE_IDENTIFIER
                    | Tag::OBJECT_TYPE
                    | Tag::STATE
                    | tags::HSM_NAME
                    | tags::OWNER
                    | Tag::ATTRIBUTE
                    | tags::TOKEN_REFERENCE
                    | tags::OBJECT_VALUE),
                    _,
                ) => return Err(wrong(tag)),
                _ => return Err(bad("unexpected item in object")),
            }
        }
        Ok(())
    });
    read?;
    rest.finish().map_err(malformed)?;
    if o.uid.is_empty() {
        return Err(bad("object without a unique identifier"));
    }
    o.attributes = attributes;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttlv::binary::to_vec;

    fn limits() -> Limits {
        Limits {
            max_size: 1 << 20,
            max_depth: 64,
            max_items: 1 << 16,
        }
    }

    fn text(tag: Tag, s: &str) -> Item {
        Item::new(tag, Value::TextString(s.to_string()))
    }

    fn written(change: &Change) -> Vec<u8> {
        let mut out = Vec::new();
        write_change(change, &mut out).expect("writes");
        out
    }

    fn read(body: &Item) -> Result<StoredObject, String> {
        decode_object(&to_vec(body).expect("encodes"), &limits())
    }

    fn attribute(children: Vec<Item>) -> Item {
        Item::structure(Tag::ATTRIBUTE, children)
    }

    fn name(n: &str) -> Item {
        text(Tag::ATTRIBUTE_NAME, n)
    }

    fn value(v: Value) -> Item {
        Item::new(Tag::ATTRIBUTE_VALUE, v)
    }

    fn object(extra: Vec<Item>) -> Item {
        let mut c = vec![
            text(Tag::UNIQUE_IDENTIFIER, "7"),
            Item::new(Tag::OBJECT_TYPE, Value::Enumeration(2)),
            Item::new(Tag::STATE, Value::Enumeration(1)),
            text(tags::HSM_NAME, "hsm"),
        ];
        c.extend(extra);
        Item::structure(tags::OBJECT, c)
    }

    #[test]
    fn an_object_record_reads_back_field_for_field() {
        let link = Item::structure(
            Tag::ATTRIBUTE_VALUE,
            vec![
                Item::new(Tag::LINK_TYPE, Value::Enumeration(0x103)),
                text(Tag::LINKED_OBJECT_IDENTIFIER, "6"),
            ],
        );
        let o = StoredObject {
            uid: "7".into(),
            object_type: 2,
            state: 1,
            owner: Some("client-a".into()),
            hsm_name: "hsm".into(),
            attributes: [
                ("Cryptographic Length", 0, value(Value::Integer(256))),
                ("Link", 0, link),
                ("x-big", 70_000, value(Value::BigInteger(vec![1; 16]))),
                ("x-when", 2, value(Value::DateTimeExtended(-1))),
                ("x-flag", 0, value(Value::Boolean(true))),
                ("x-text", 0, value(Value::TextString("ü".into()))),
            ]
            .into_iter()
            .map(|(n, i, v)| StoredAttribute {
                name: n.into(),
                index: i,
                value: v,
            })
            .collect(),
            token_ref: Some(Box::new(TokenRef {
                id: vec![1, 2, 3],
                class: 4,
                label: "ksg-7".into(),
            })),
            value: Some(SecretBytes::new(vec![9; 32])),
        };
        let body = written(&Change::Create(o.clone()));
        assert_eq!(decode_object(&body, &limits()), Ok(o));
    }

    #[test]
    fn an_object_record_is_written_as_the_ttlv_tree_of_its_fields() {
        let link = |tag| {
            Item::structure(
                tag,
                vec![
                    Item::new(Tag::LINK_TYPE, Value::Enumeration(0x103)),
                    text(Tag::LINKED_OBJECT_IDENTIFIER, "6"),
                ],
            )
        };
        let attributes = [
            ("Name", 0, link(Tag::NAME)),
            ("x-big", 1, value(Value::BigInteger(vec![0x80; 3]))),
            ("x-when", 2, value(Value::DateTime(-1))),
            ("x-flag", 0, value(Value::Boolean(false))),
            ("x-bytes", 0, value(Value::ByteString(vec![7; 9]))),
            ("x-long", 0, value(Value::LongInteger(-2))),
            ("x-interval", 0, value(Value::Interval(9))),
        ];
        let o = StoredObject {
            uid: "7".into(),
            object_type: 2,
            state: 1,
            owner: None,
            hsm_name: "hsm".into(),
            attributes: Attributes::try_from_instances(
                attributes.iter().map(|(n, i, v)| (*n, *i, v)),
            )
            .expect("kept"),
            token_ref: None,
            value: Some(SecretBytes::new(vec![9; 5])),
        };
        // Every value goes under Attribute Value whatever its own tag; a big integer is padded
        // to a multiple of 8 with its sign.
        let mut expected: Vec<Item> = attributes
            .iter()
            .map(|(n, i, v)| {
                let v = match &v.value {
                    Value::BigInteger(_) => {
                        Value::BigInteger(vec![0xFF; 5].into_iter().chain([0x80; 3]).collect())
                    }
                    other => other.clone(),
                };
                attribute(vec![
                    name(n),
                    Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(*i as i32)),
                    Item::new(Tag::ATTRIBUTE_VALUE, v),
                ])
            })
            .collect();
        expected.push(Item::new(tags::OBJECT_VALUE, Value::ByteString(vec![9; 5])));
        let body = written(&Change::Create(o));
        assert_eq!(binary::decode(&body, &limits()), Ok(object(expected)));
    }

    #[test]
    fn change_records_are_written_as_the_ttlv_tree_of_their_fields() {
        let uid = || text(Tag::UNIQUE_IDENTIFIER, "7");
        let change = |c: Vec<Item>| Item::structure(tags::CHANGE, c);
        let v = Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(128));
        let cases = [
            (
                Change::AddAttribute {
                    uid: "7".into(),
                    name: "x-a".into(),
                    index: None,
                    value: v.clone(),
                },
                change(vec![
                    uid(),
                    attribute(vec![name("x-a"), value(Value::Integer(128))]),
                ]),
            ),
            (
                Change::ModifyAttribute {
                    uid: "7".into(),
                    name: "x-a".into(),
                    index: 2,
                    value: v,
                },
                change(vec![
                    uid(),
                    attribute(vec![
                        name("x-a"),
                        Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(2)),
                        value(Value::Integer(128)),
                    ]),
                ]),
            ),
            (
                Change::DeleteAttribute {
                    uid: "7".into(),
                    name: "x-a".into(),
                    index: None,
                },
                change(vec![uid(), attribute(vec![name("x-a")])]),
            ),
            (
                Change::Destroy {
                    uid: "7".into(),
                    state: 6,
                },
                change(vec![uid(), Item::new(Tag::STATE, Value::Enumeration(6))]),
            ),
            (Change::Erase { uid: "7".into() }, change(vec![uid()])),
            (
                Change::UidFloor(9),
                change(vec![Item::new(tags::NEXT_UID, Value::LongInteger(9))]),
            ),
        ];
        for (c, expected) in cases {
            let body = written(&c);
            assert_eq!(binary::decode(&body, &limits()), Ok(expected), "{c:?}");
            // A value reads back under Attribute Value, whatever tag it came with.
            let mut back = c.clone();
            if let Change::AddAttribute { value, .. } | Change::ModifyAttribute { value, .. } =
                &mut back
            {
                value.tag = Tag::ATTRIBUTE_VALUE;
            }
            assert_eq!(decode_change(c.kind(), &body, &limits()), Ok(back));
        }
    }

    #[test]
    fn attribute_fields_may_come_in_any_order_and_a_repeated_one_counts_last() {
        let body = object(vec![attribute(vec![
            value(Value::Integer(1)),
            Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(3)),
            name("x-first-name"),
            value(Value::TextString("the last value".into())),
            name("x-order"),
        ])]);
        let o = read(&body).expect("reads");
        let all: Vec<_> = o.attributes.iter().collect();
        assert_eq!(all.len(), 1);
        assert_eq!((&*all[0].name, all[0].index), ("x-order", 3));
        assert_eq!(
            all[0].value,
            value(Value::TextString("the last value".into()))
        );
    }

    #[test]
    fn malformed_object_records_are_refused_with_the_reason() {
        let cases = [
            (Item::structure(Tag::ATTRIBUTE, vec![]), "not an object"),
            (
                Item::new(tags::OBJECT, Value::Integer(1)),
                "not a structure",
            ),
            (
                object(vec![Item::new(Tag::UNIQUE_IDENTIFIER, Value::Integer(7))]),
                "expected text",
            ),
            (
                object(vec![text(Tag::STATE, "active")]),
                "expected an enumeration",
            ),
            (
                object(vec![attribute(vec![value(Value::Integer(1))])]),
                "attribute without a name",
            ),
            (
                object(vec![attribute(vec![name("x-a")])]),
                "attribute without a value",
            ),
            (
                object(vec![attribute(vec![
                    name("x-a"),
                    Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(-1)),
                    value(Value::Integer(1)),
                ])]),
                "bad attribute index",
            ),
            (
                object(vec![attribute(vec![
                    name("x-a"),
                    Item::new(Tag::STATE, Value::Enumeration(1)),
                ])]),
                "unexpected item in attribute",
            ),
            (
                object(vec![Item::new(Tag::ATTRIBUTE, Value::Integer(1))]),
                "attribute is not a structure",
            ),
            (
                object(vec![Item::structure(
                    tags::TOKEN_REFERENCE,
                    vec![text(tags::TOKEN_ID, "not bytes")],
                )]),
                "bad token reference",
            ),
            (
                object(vec![text(tags::OBJECT_VALUE, "not bytes")]),
                "bad object value",
            ),
            (
                // A tree decoder once read this as an empty reference; nothing writes one.
                object(vec![Item::new(tags::TOKEN_REFERENCE, Value::Integer(1))]),
                "bad token reference",
            ),
            (
                object(vec![Item::new(
                    Tag::CRYPTOGRAPHIC_LENGTH,
                    Value::Integer(1),
                )]),
                "unexpected item in object",
            ),
            (
                Item::structure(tags::OBJECT, vec![text(tags::HSM_NAME, "hsm")]),
                "object without a unique identifier",
            ),
        ];
        for (body, reason) in cases {
            let got = read(&body);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(reason)),
                "{reason}: {got:?}"
            );
        }
    }

    #[test]
    fn malformed_ttlv_inside_an_attribute_value_is_refused() {
        let body = to_vec(&object(vec![attribute(vec![
            name("x-flag"),
            value(Value::Boolean(true)),
        ])]))
        .expect("encodes");
        // The Boolean's last byte: 1 is true, 2 is neither.
        let at = body.len() - 1;
        assert_eq!(body[at], 1);
        let mut bad = body.clone();
        bad[at] = 2;
        let e = decode_object(&bad, &limits()).expect_err("not a Boolean");
        assert!(e.contains("Boolean"), "{e}");
        let mut deep = value(Value::Integer(1));
        for _ in 0..64 {
            deep = Item::structure(Tag::ATTRIBUTE_VALUE, vec![deep]);
        }
        let e = read(&object(vec![attribute(vec![name("x-deep"), deep])]))
            .expect_err("deeper than a record carries");
        assert!(e.contains("deep"), "{e}");
    }
}
