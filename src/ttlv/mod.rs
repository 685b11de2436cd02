//! The KMIP item tree and its three encodings (TTLV, XML, JSON).
//!
//! Nothing here does I/O or reads the clock: the current time for `$NOW` placeholders is a
//! parameter. Unknown tags and enumeration values are kept and round-trip.

pub mod binary;
mod datetime;
pub mod diff;
pub(crate) mod hex;
pub mod json;
mod names;
pub mod tables;
pub mod tree;
pub mod xml;

use std::fmt;

pub use binary::{
    FrameError, Limits, decode as decode_ttlv, encode as encode_ttlv, frame_length,
    to_vec as to_ttlv,
};
pub use datetime::{format_iso8601, parse_iso8601};

/// A KMIP tag: 3 bytes, `0x42xxxx` for the standard tags and `0x54xxxx` for extensions.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u32);

impl Tag {
    /// The XML/JSON name of this tag, if the tables know it.
    pub fn name(self) -> Option<&'static str> {
        tables::tag_info(self).map(|t| t.name)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "0x{:06X}", self.0),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A KMIP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Protocol Version Major.
    pub major: u8,
    /// Protocol Version Minor.
    pub minor: u8,
}

impl Version {
    /// A version from its two parts.
    pub const fn new(major: u8, minor: u8) -> Self {
        Version { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The TTLV item types and their type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemType {
    /// 0x01
    Structure,
    /// 0x02
    Integer,
    /// 0x03
    LongInteger,
    /// 0x04
    BigInteger,
    /// 0x05
    Enumeration,
    /// 0x06
    Boolean,
    /// 0x07
    TextString,
    /// 0x08
    ByteString,
    /// 0x09
    DateTime,
    /// 0x0A
    Interval,
    /// 0x0B (KMIP 2.0)
    DateTimeExtended,
}

impl ItemType {
    /// All item types, in type-code order.
    pub const ALL: [ItemType; 11] = [
        ItemType::Structure,
        ItemType::Integer,
        ItemType::LongInteger,
        ItemType::BigInteger,
        ItemType::Enumeration,
        ItemType::Boolean,
        ItemType::TextString,
        ItemType::ByteString,
        ItemType::DateTime,
        ItemType::Interval,
        ItemType::DateTimeExtended,
    ];

    /// The TTLV type byte.
    pub const fn code(self) -> u8 {
        match self {
            ItemType::Structure => 0x01,
            ItemType::Integer => 0x02,
            ItemType::LongInteger => 0x03,
            ItemType::BigInteger => 0x04,
            ItemType::Enumeration => 0x05,
            ItemType::Boolean => 0x06,
            ItemType::TextString => 0x07,
            ItemType::ByteString => 0x08,
            ItemType::DateTime => 0x09,
            ItemType::Interval => 0x0A,
            ItemType::DateTimeExtended => 0x0B,
        }
    }

    /// The item type for a TTLV type byte.
    pub fn from_code(code: u8) -> Option<ItemType> {
        ItemType::ALL
            .get(usize::from(code).wrapping_sub(1))
            .copied()
    }

    /// The name used by the XML and JSON encodings.
    pub const fn name(self) -> &'static str {
        match self {
            ItemType::Structure => "Structure",
            ItemType::Integer => "Integer",
            ItemType::LongInteger => "LongInteger",
            ItemType::BigInteger => "BigInteger",
            ItemType::Enumeration => "Enumeration",
            ItemType::Boolean => "Boolean",
            ItemType::TextString => "TextString",
            ItemType::ByteString => "ByteString",
            ItemType::DateTime => "DateTime",
            ItemType::Interval => "Interval",
            ItemType::DateTimeExtended => "DateTimeExtended",
        }
    }

    /// The item type called `name` in the XML and JSON encodings.
    pub fn from_name(name: &str) -> Option<ItemType> {
        ItemType::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// One TTLV item: a tag and a typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The tag.
    pub tag: Tag,
    /// The value, which also gives the item type.
    pub value: Value,
}

/// The value of an item.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Child items, in order.
    Structure(Vec<Item>),
    /// 32-bit signed integer (also used for bit masks).
    Integer(i32),
    /// 64-bit signed integer.
    LongInteger(i64),
    /// Two's-complement big-endian bytes, a multiple of 8 long once encoded.
    BigInteger(Vec<u8>),
    /// 32-bit enumeration value.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// UTF-8 text.
    TextString(String),
    /// Opaque bytes (possibly key material: `Debug` shows only the length).
    ByteString(Vec<u8>),
    /// POSIX time in seconds.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// POSIX time in microseconds (KMIP 2.0).
    DateTimeExtended(i64),
    /// An unresolved test-case variable (e.g. `$DATA_0`) standing where a value of the given type
    /// belongs. It survives XML and JSON but cannot be encoded as TTLV.
    Placeholder(ItemType, String),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger({} bytes)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration(0x{v:08X})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            Value::ByteString(v) => write!(f, "ByteString({} bytes)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
            Value::DateTimeExtended(v) => write!(f, "DateTimeExtended({v})"),
            Value::Placeholder(t, name) => write!(f, "Placeholder({}, {name})", t.name()),
        }
    }
}

impl Value {
    /// The item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
            Value::Placeholder(t, _) => *t,
        }
    }
}

impl Item {
    /// A new item.
    pub fn new(tag: Tag, value: Value) -> Self {
        Item { tag, value }
    }

    /// A new structure.
    pub fn structure(tag: Tag, children: Vec<Item>) -> Self {
        Item {
            tag,
            value: Value::Structure(children),
        }
    }

    /// The children if this is a structure, else an empty slice.
    pub fn children(&self) -> &[Item] {
        match &self.value {
            Value::Structure(c) => c,
            _ => &[],
        }
    }

    /// The first child with `tag`.
    pub fn child(&self, tag: Tag) -> Option<&Item> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Every child with `tag`.
    pub fn children_with(&self, tag: Tag) -> impl Iterator<Item = &Item> {
        self.children().iter().filter(move |c| c.tag == tag)
    }

    /// The first placeholder anywhere in this item, depth first.
    pub fn first_placeholder(&self) -> Option<&str> {
        match &self.value {
            Value::Placeholder(_, name) => Some(name),
            Value::Structure(children) => children.iter().find_map(Item::first_placeholder),
            _ => None,
        }
    }
}

/// Several messages in one file, as an OASIS test case holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The messages, in order.
    pub messages: Vec<Item>,
    /// The name of the element (XML) that wrapped them, if any; a JSON array of messages reads
    /// as `KMIP`.
    pub container: Option<String>,
}

impl Document {
    /// The one message of a document that is a single message (not a container).
    pub fn into_single(self) -> Result<Item, DecodeError> {
        match (self.container, <[Item; 1]>::try_from(self.messages)) {
            (None, Ok([item])) => Ok(item),
            _ => Err(DecodeError::new(
                DecodeErrorKind::Malformed,
                "1:1",
                "expected a single message",
            )),
        }
    }
}

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What class of problem it is.
    pub kind: DecodeErrorKind,
    /// Where: a byte offset for TTLV, `line:column` for XML and JSON.
    pub at: String,
    /// A short human explanation, safe to show a client (never contains input bytes).
    pub detail: String,
}

/// Classes of decoding problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input is not well-formed for the encoding.
    Malformed,
    /// The input exceeds the caller's size limit.
    TooLarge,
    /// Structures nest deeper than the caller's limit.
    TooDeep,
    /// More items than the caller's limit.
    TooManyItems,
    /// A name (tag, type, enumeration value, mask flag) the tables do not know.
    UnknownName,
}

impl DecodeError {
    pub(crate) fn new(
        kind: DecodeErrorKind,
        at: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        DecodeError {
            kind,
            at: at.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.at, self.detail)
    }
}

impl std::error::Error for DecodeError {}

/// Why a tree could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// A test-case placeholder is still in the tree where TTLV needs a real value.
    Placeholder {
        /// The placeholder, e.g. `$DATA_0`.
        name: String,
        /// The tag of the item holding it.
        tag: Tag,
    },
    /// A length does not fit the 32-bit TTLV length field.
    TooLong(Tag),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Placeholder { name, tag } => {
                write!(
                    f,
                    "placeholder {name} in {tag} has no value to encode as TTLV"
                )
            }
            EncodeError::TooLong(tag) => write!(f, "{tag} is too long for TTLV"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Sign-extends two's-complement big-endian bytes to a multiple of 8 bytes (at least 8), the
/// canonical Big Integer form in TTLV.
pub fn canonical_big_integer(mut bytes: Vec<u8>) -> Vec<u8> {
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xFF
    } else {
        0x00
    };
    let len = bytes.len().max(1).div_ceil(8) * 8;
    let pad = len - bytes.len();
    if pad > 0 {
        bytes.splice(0..0, std::iter::repeat_n(fill, pad));
    }
    bytes
}
