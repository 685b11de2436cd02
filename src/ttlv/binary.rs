//! The binary TTLV encoding: Tag (3 bytes), Type (1), Length (4, big-endian), Value padded with
//! zeros to a multiple of 8 bytes.
//!
//! Decoding validates every rule of the specification before it allocates: fixed lengths, zero
//! padding, Boolean 0/1, UTF-8, structure lengths that add up, and the caller's limits.

use super::{DecodeError, DecodeErrorKind, EncodeError, Item, ItemType, Tag, Value};

/// Bounds a decoder enforces, set by the caller (the server takes them from its configuration).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest encoded message, in bytes.
    pub max_size: usize,
    /// Deepest structure nesting; the outermost item is depth 1.
    pub max_depth: usize,
    /// Most items in one message, structures included.
    pub max_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size: 16 << 20,
            max_depth: 32,
            max_items: 1 << 20,
        }
    }
}

const HEADER: usize = 8;

/// The most children a structure's vector is sized for before they are read (a structure with
/// more grows as usual).
const MAX_CHILDREN_HINT: usize = 256;

/// Why an 8-byte TTLV header cannot start an acceptable message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not a TTLV structure header (wrong tag prefix or type).
    NotTtlv,
    /// The structure length is not a multiple of 8.
    BadLength,
    /// The whole message would exceed the limit; holds the announced total size.
    TooLarge(u64),
}

/// Checks the 8-byte header of a message and returns its total length (header included), so a
/// server knows how much to read before it allocates anything.
pub fn frame_length(header: &[u8; HEADER], max_size: usize) -> Result<usize, FrameError> {
    if !matches!(header[0], 0x42 | 0x54) || header[3] != ItemType::Structure.code() {
        return Err(FrameError::NotTtlv);
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if !len.is_multiple_of(8) {
        return Err(FrameError::BadLength);
    }
    let total = u64::from(len) + HEADER as u64;
    if total > max_size as u64 {
        return Err(FrameError::TooLarge(total));
    }
    usize::try_from(total).map_err(|_| FrameError::TooLarge(total))
}

/// Decodes exactly one item that fills `input`.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Item, DecodeError> {
    let mut walker = Walker::new(limits);
    let (tag, node, rest) = walker.root(input)?;
    let item = build(&mut walker, tag, node)?;
    rest.finish()?;
    Ok(item)
}

/// An owned item from a validated node (the tree the rest of the crate works on).
fn build(walker: &mut Walker, tag: Tag, node: Node<'_>) -> Result<Item, DecodeError> {
    let value = match node {
        Node::Leaf(leaf) => leaf.to_value(),
        Node::Structure(mut inner) => {
            // Sized once: growing by pushes cost a reallocation or two per structure. The
            // headers are not checked yet, so hostile ones get no more than a small start.
            let hint = inner
                .count_hint()
                .min(walker.items_left())
                .min(MAX_CHILDREN_HINT);
            let mut children = Vec::with_capacity(hint);
            while !inner.is_empty() {
                let (tag, node) = walker.next(&mut inner)?;
                children.push(build(walker, tag, node)?);
            }
            Value::Structure(children)
        }
    };
    Ok(Item { tag, value })
}

/// Decodes a sequence of items laid end to end (a capture of several messages).
pub fn decode_stream(input: &[u8], limits: &Limits) -> Result<Vec<Item>, DecodeError> {
    let mut items = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let rest = &input[at..];
        if rest.len() < HEADER {
            return Err(err(DecodeErrorKind::Malformed, at, "truncated item header"));
        }
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as u64;
        let total = HEADER as u64 + len.div_ceil(8) * 8;
        if total > limits.max_size as u64 {
            return Err(err(
                DecodeErrorKind::TooLarge,
                at,
                "message exceeds the size limit",
            ));
        }
        let total = total as usize;
        if total > rest.len() {
            return Err(err(DecodeErrorKind::Malformed, at, "truncated item"));
        }
        let item = decode(&rest[..total], limits).map_err(|mut e| {
            e.at = format!("message {} ({})", items.len() + 1, e.at);
            e
        })?;
        items.push(item);
        at += total;
    }
    Ok(items)
}

fn err(kind: DecodeErrorKind, offset: usize, detail: &str) -> DecodeError {
    DecodeError::new(kind, format!("byte {offset}"), detail)
}

/// The bytes left under a cursor, and their absolute offset (for error messages).
struct Reader<'a> {
    buf: &'a [u8],
    start: usize,
}

/// A validated leaf value, still borrowed from the input: what a walk hands out without
/// allocating (the keystore turns record bodies into its compact form straight from these).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf<'a> {
    /// Integer.
    Integer(i32),
    /// Long Integer.
    LongInteger(i64),
    /// Big Integer (a positive multiple of 8 bytes).
    BigInteger(&'a [u8]),
    /// Enumeration.
    Enumeration(u32),
    /// Boolean.
    Boolean(bool),
    /// Text String (checked UTF-8).
    TextString(&'a str),
    /// Byte String.
    ByteString(&'a [u8]),
    /// Date-Time.
    DateTime(i64),
    /// Interval.
    Interval(u32),
    /// Date-Time Extended.
    DateTimeExtended(i64),
}

impl std::fmt::Debug for Leaf<'_> {
    /// As [`Value`]'s: a byte string (maybe key material) shows only its length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leaf::BigInteger(b) | Leaf::ByteString(b) => {
                write!(f, "{:?}({} bytes)", self.item_type(), b.len())
            }
            Leaf::TextString(t) => write!(f, "TextString({t:?})"),
            Leaf::Integer(v) => write!(f, "Integer({v})"),
            Leaf::LongInteger(v) | Leaf::DateTime(v) | Leaf::DateTimeExtended(v) => {
                write!(f, "{:?}({v})", self.item_type())
            }
            Leaf::Enumeration(v) | Leaf::Interval(v) => write!(f, "{:?}({v})", self.item_type()),
            Leaf::Boolean(v) => write!(f, "Boolean({v})"),
        }
    }
}

impl<'a> Leaf<'a> {
    /// The owned value.
    #[inline]
    pub fn to_value(self) -> Value {
        match self {
            Leaf::Integer(v) => Value::Integer(v),
            Leaf::LongInteger(v) => Value::LongInteger(v),
            Leaf::BigInteger(b) => Value::BigInteger(b.to_vec()),
            Leaf::Enumeration(v) => Value::Enumeration(v),
            Leaf::Boolean(v) => Value::Boolean(v),
            Leaf::TextString(t) => Value::TextString(t.to_owned()),
            Leaf::ByteString(b) => Value::ByteString(b.to_vec()),
            Leaf::DateTime(v) => Value::DateTime(v),
            Leaf::Interval(v) => Value::Interval(v),
            Leaf::DateTimeExtended(v) => Value::DateTimeExtended(v),
        }
    }

    /// The leaf view of a value: none for a structure or a placeholder.
    pub fn of(value: &'a Value) -> Option<Leaf<'a>> {
        Some(match value {
            Value::Structure(_) | Value::Placeholder(..) => return None,
            Value::Integer(v) => Leaf::Integer(*v),
            Value::LongInteger(v) => Leaf::LongInteger(*v),
            Value::BigInteger(b) => Leaf::BigInteger(b),
            Value::Enumeration(v) => Leaf::Enumeration(*v),
            Value::Boolean(v) => Leaf::Boolean(*v),
            Value::TextString(t) => Leaf::TextString(t),
            Value::ByteString(b) => Leaf::ByteString(b),
            Value::DateTime(v) => Leaf::DateTime(*v),
            Value::Interval(v) => Leaf::Interval(*v),
            Value::DateTimeExtended(v) => Leaf::DateTimeExtended(*v),
        })
    }

    /// Its item type.
    pub fn item_type(self) -> ItemType {
        match self {
            Leaf::Integer(_) => ItemType::Integer,
            Leaf::LongInteger(_) => ItemType::LongInteger,
            Leaf::BigInteger(_) => ItemType::BigInteger,
            Leaf::Enumeration(_) => ItemType::Enumeration,
            Leaf::Boolean(_) => ItemType::Boolean,
            Leaf::TextString(_) => ItemType::TextString,
            Leaf::ByteString(_) => ItemType::ByteString,
            Leaf::DateTime(_) => ItemType::DateTime,
            Leaf::Interval(_) => ItemType::Interval,
            Leaf::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

/// One validated item's value: a leaf, or a cursor over a structure's children.
#[derive(Debug)]
pub enum Node<'a> {
    /// A structure; walk its children with [`Walker::next`].
    Structure(Cursor<'a>),
    /// Any other type.
    Leaf(Leaf<'a>),
}

/// The items of one structure's value (or of a whole message), not yet read.
pub struct Cursor<'a> {
    reader: Reader<'a>,
    depth: usize,
}

impl std::fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cursor(byte {}, {} bytes left, depth {})",
            self.reader.start,
            self.reader.buf.len(),
            self.depth
        )
    }
}

impl Cursor<'_> {
    /// Whether every child has been read.
    pub fn is_empty(&self) -> bool {
        self.reader.buf.is_empty()
    }

    /// How many items are left, counted by hopping from header to header without checking
    /// them (the walk does that): a size for the vector that will hold them. Never more than
    /// the bytes left allow, since every item takes at least 8.
    pub fn count_hint(&self) -> usize {
        let buf = self.reader.buf;
        let (mut at, mut count) = (0usize, 0usize);
        while let Some(head) = at.checked_add(HEADER).and_then(|end| buf.get(at..end)) {
            let len = u64::from(u32::from_be_bytes([head[4], head[5], head[6], head[7]]));
            count += 1;
            // In u64: a length near 4 GiB must not overflow a 32-bit target's usize.
            let next = at as u64 + HEADER as u64 + len.div_ceil(8) * 8;
            let Ok(next) = usize::try_from(next) else {
                break;
            };
            at = next;
        }
        count
    }
}

/// What follows the item [`Walker::root`] read.
#[derive(Debug)]
#[must_use = "trailing bytes are refused only by `finish`"]
pub struct Rest {
    at: usize,
    len: usize,
}

impl Rest {
    /// Refuses bytes after the item.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.len == 0 {
            Ok(())
        } else {
            Err(err(
                DecodeErrorKind::Malformed,
                self.at,
                "trailing bytes after the item",
            ))
        }
    }
}

/// Walks TTLV item by item, checking every rule of the specification and the caller's limits
/// (size, depth, item count) before anything is allocated. [`decode`] builds its tree on it; a
/// caller that needs no tree walks it directly.
#[derive(Debug)]
pub struct Walker {
    limits: Limits,
    items: usize,
}

impl Walker {
    /// A walker enforcing `limits` over one message.
    pub fn new(limits: &Limits) -> Walker {
        Walker {
            limits: *limits,
            items: 0,
        }
    }

    /// How many more items the item-count limit lets the walk read.
    pub fn items_left(&self) -> usize {
        self.limits.max_items.saturating_sub(self.items)
    }

    /// The item at the start of `input`, and what follows it: [`Rest::finish`] checks that
    /// nothing does, once the item has been read (so that an error inside the item is the one
    /// reported).
    pub fn root<'a>(&mut self, input: &'a [u8]) -> Result<(Tag, Node<'a>, Rest), DecodeError> {
        if input.len() > self.limits.max_size {
            return Err(err(
                DecodeErrorKind::TooLarge,
                0,
                "message exceeds the size limit",
            ));
        }
        let mut top = Cursor {
            reader: Reader {
                buf: input,
                start: 0,
            },
            depth: 1,
        };
        let (tag, node) = self.next(&mut top)?;
        let rest = Rest {
            at: top.reader.start,
            len: top.reader.buf.len(),
        };
        Ok((tag, node, rest))
    }

    /// The next item under `cursor`, validated.
    #[inline]
    pub fn next<'a>(&mut self, cursor: &mut Cursor<'a>) -> Result<(Tag, Node<'a>), DecodeError> {
        let (r, depth) = (&mut cursor.reader, cursor.depth);
        let at = r.start;
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(err(
                DecodeErrorKind::TooManyItems,
                at,
                "too many items in the message",
            ));
        }
        // One bounds check for the header, one for the padded value: this runs once per item
        // of every request and of every keystore record.
        let Some((h, rest)) = r.buf.split_first_chunk::<HEADER>() else {
            return Err(err(DecodeErrorKind::Malformed, at, "truncated item"));
        };
        let tag = Tag(u32::from_be_bytes([0, h[0], h[1], h[2]]));
        let item_type = ItemType::from_code(h[3])
            .ok_or_else(|| err(DecodeErrorKind::Malformed, at + 3, "unknown item type"))?;
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let fixed = match item_type {
            ItemType::Integer | ItemType::Enumeration | ItemType::Interval => Some(4),
            ItemType::LongInteger
            | ItemType::Boolean
            | ItemType::DateTime
            | ItemType::DateTimeExtended => Some(8),
            _ => None,
        };
        if fixed.is_some_and(|f| f != len) {
            return Err(err(
                DecodeErrorKind::Malformed,
                at + 4,
                "wrong length for the item type",
            ));
        }
        let padded = len.div_ceil(8) * 8;
        let Some((body, after)) = rest.split_at_checked(padded) else {
            return Err(err(
                DecodeErrorKind::Malformed,
                at + 4,
                "length runs past the end",
            ));
        };
        let value_at = at + HEADER;
        let (bytes, padding) = body.split_at(len);
        if padding.iter().any(|&b| b != 0) {
            return Err(err(
                DecodeErrorKind::Malformed,
                value_at + len,
                "non-zero padding",
            ));
        }
        r.buf = after;
        r.start = value_at + padded;
        let leaf = match item_type {
            ItemType::Structure => {
                if depth >= self.limits.max_depth {
                    return Err(err(
                        DecodeErrorKind::TooDeep,
                        at,
                        "structures nest too deeply",
                    ));
                }
                let inner = Cursor {
                    reader: Reader {
                        buf: bytes,
                        start: value_at,
                    },
                    depth: depth + 1,
                };
                return Ok((tag, Node::Structure(inner)));
            }
            ItemType::Integer => Leaf::Integer(i32::from_be_bytes(array(bytes))),
            ItemType::LongInteger => Leaf::LongInteger(i64::from_be_bytes(array(bytes))),
            ItemType::BigInteger => {
                if len == 0 || !len.is_multiple_of(8) {
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        at + 4,
                        "Big Integer length is not a positive multiple of 8",
                    ));
                }
                Leaf::BigInteger(bytes)
            }
            ItemType::Enumeration => Leaf::Enumeration(u32::from_be_bytes(array(bytes))),
            ItemType::Boolean => match u64::from_be_bytes(array(bytes)) {
                0 => Leaf::Boolean(false),
                1 => Leaf::Boolean(true),
                _ => {
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        value_at,
                        "Boolean is not 0 or 1",
                    ));
                }
            },
            ItemType::TextString => match std::str::from_utf8(bytes) {
                Ok(s) => Leaf::TextString(s),
                Err(e) => {
                    let bad = value_at + e.valid_up_to();
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        bad,
                        "Text String is not UTF-8",
                    ));
                }
            },
            ItemType::ByteString => Leaf::ByteString(bytes),
            ItemType::DateTime => Leaf::DateTime(i64::from_be_bytes(array(bytes))),
            ItemType::Interval => Leaf::Interval(u32::from_be_bytes(array(bytes))),
            ItemType::DateTimeExtended => Leaf::DateTimeExtended(i64::from_be_bytes(array(bytes))),
        };
        Ok((tag, Node::Leaf(leaf)))
    }
}

/// Copies a slice whose length the caller has already checked into an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

/// Encodes `item` as TTLV, appending to `out`.
pub fn encode(item: &Item, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = Writer::new(out).item(item.tag, &item.value);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Encodes `item` into a new buffer.
pub fn to_vec(item: &Item) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(256);
    encode(item, &mut out)?;
    Ok(out)
}

/// Writes TTLV straight into a buffer, with no tree built first: a structure's length is
/// patched in when it ends. What is written may be key material, so the buffer never grows by
/// `realloc` (which would leave a copy in freed memory): it moves to a larger one and the old
/// one is zeroed.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// A structure begun by [`Writer::begin`] and not ended yet.
#[derive(Debug)]
#[must_use = "a structure's length is written when it ends"]
pub struct Open {
    tag: Tag,
    len_at: usize,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out` (which may hold anything already).
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    fn reserve(&mut self, n: usize) {
        if self.out.capacity() - self.out.len() >= n {
            return;
        }
        let wanted = (self.out.len() + n).max(self.out.capacity() * 2);
        let mut larger = Vec::with_capacity(wanted);
        larger.extend_from_slice(self.out);
        let mut old = std::mem::replace(self.out, larger);
        zeroize::Zeroize::zeroize(&mut old);
    }

    /// Writes an item's header, with room made for its padded value.
    fn head(&mut self, tag: Tag, item_type: ItemType, len: u32) {
        self.reserve(HEADER + (len as usize).div_ceil(8) * 8);
        self.out.extend_from_slice(&tag.0.to_be_bytes()[1..]);
        self.out.push(item_type.code());
        self.out.extend_from_slice(&len.to_be_bytes());
    }

    /// Starts structure `tag`; its children follow until [`Writer::end`].
    pub fn begin(&mut self, tag: Tag) -> Open {
        self.head(tag, ItemType::Structure, 0);
        Open {
            tag,
            len_at: self.out.len() - 4,
        }
    }

    /// Ends a structure: writes its length (children are padded, so no padding follows).
    pub fn end(&mut self, open: Open) -> Result<(), EncodeError> {
        let body_at = open.len_at + 4;
        let len =
            u32::try_from(self.out.len() - body_at).map_err(|_| EncodeError::TooLong(open.tag))?;
        self.out[open.len_at..body_at].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Drops a structure begun and everything written in it since.
    pub fn abandon(&mut self, open: Open) {
        self.out.truncate(open.len_at - 4);
    }

    /// Writes one leaf, padded.
    pub fn leaf(&mut self, tag: Tag, leaf: Leaf<'_>) -> Result<(), EncodeError> {
        match leaf {
            Leaf::Integer(v) => self.fixed(tag, ItemType::Integer, &v.to_be_bytes()),
            Leaf::LongInteger(v) => self.fixed(tag, ItemType::LongInteger, &v.to_be_bytes()),
            Leaf::Enumeration(v) => self.fixed(tag, ItemType::Enumeration, &v.to_be_bytes()),
            Leaf::Interval(v) => self.fixed(tag, ItemType::Interval, &v.to_be_bytes()),
            Leaf::Boolean(v) => self.fixed(tag, ItemType::Boolean, &u64::from(v).to_be_bytes()),
            Leaf::DateTime(v) => self.fixed(tag, ItemType::DateTime, &v.to_be_bytes()),
            Leaf::DateTimeExtended(v) => {
                self.fixed(tag, ItemType::DateTimeExtended, &v.to_be_bytes())
            }
            Leaf::TextString(t) => self.fixed(tag, ItemType::TextString, t.as_bytes()),
            Leaf::ByteString(b) => self.fixed(tag, ItemType::ByteString, b),
            Leaf::BigInteger(b) if b.is_empty() || b.len() % 8 != 0 => {
                let canonical = super::canonical_big_integer(b.to_vec());
                self.fixed(tag, ItemType::BigInteger, &canonical)
            }
            Leaf::BigInteger(b) => self.fixed(tag, ItemType::BigInteger, b),
        }
    }

    fn fixed(&mut self, tag: Tag, item_type: ItemType, bytes: &[u8]) -> Result<(), EncodeError> {
        let len = u32::try_from(bytes.len()).map_err(|_| EncodeError::TooLong(tag))?;
        self.head(tag, item_type, len);
        self.out.extend_from_slice(bytes);
        let padded = bytes.len().div_ceil(8) * 8;
        self.out.resize(self.out.len() + padded - bytes.len(), 0);
        Ok(())
    }

    /// Writes `value` under `tag`, a structure with all its children.
    pub fn item(&mut self, tag: Tag, value: &Value) -> Result<(), EncodeError> {
        match value {
            Value::Structure(children) => {
                let open = self.begin(tag);
                for child in children {
                    self.item(child.tag, &child.value)?;
                }
                self.end(open)
            }
            Value::Placeholder(_, name) => Err(EncodeError::Placeholder {
                name: name.clone(),
                tag,
            }),
            leaf => self.leaf(
                tag,
                Leaf::of(leaf).expect("neither a structure nor a placeholder"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_appended_after_unaligned_bytes_is_padded_from_its_own_start() {
        let item = Item::new(Tag::ATTRIBUTE_VALUE, Value::TextString("abc".into()));
        let alone = to_vec(&item).expect("encodes");
        let mut out = vec![0xAA; 3];
        encode(&item, &mut out).expect("encodes");
        assert_eq!(&out[3..], &alone[..]);
        assert_eq!(alone.len(), 16);
    }

    #[test]
    fn encoded_len_is_the_length_encode_produces() {
        use crate::ttlv::tree::encoded_len;
        let values = [
            Value::ByteString(vec![1; 33]),
            Value::BigInteger(vec![0x80; 9]),
            Value::BigInteger(Vec::new()),
            Value::Boolean(true),
            Value::Interval(7),
            Value::DateTime(7),
            Value::TextString(String::new()),
        ];
        let mut children = vec![
            Item::new(Tag::ATTRIBUTE_NAME, Value::TextString("Name".into())),
            Item::new(Tag::ATTRIBUTE_INDEX, Value::Integer(3)),
        ];
        children.extend(values.map(|v| Item::new(Tag::ATTRIBUTE_VALUE, v)));
        let item = Item::structure(Tag::ATTRIBUTE, children);
        let bytes = to_vec(&item).expect("encodes");
        assert_eq!(encoded_len(&item), Some(bytes.len()));
        assert_eq!(
            encoded_len(&nested()),
            Some(to_vec(&nested()).expect("encodes").len())
        );
    }

    #[test]
    fn frame_header_checks_before_allocation() {
        let mut h = [0x42, 0x00, 0x78, 0x01, 0, 0, 0, 0x10];
        assert_eq!(frame_length(&h, 100), Ok(24));
        assert_eq!(frame_length(&h, 23), Err(FrameError::TooLarge(24)));
        h[7] = 0x11;
        assert_eq!(frame_length(&h, 100), Err(FrameError::BadLength));
        h[3] = 0x02;
        assert_eq!(frame_length(&h, 100), Err(FrameError::NotTtlv));
        let huge = [0x42, 0x00, 0x78, 0x01, 0xFF, 0xFF, 0xFF, 0xF8];
        assert!(matches!(
            frame_length(&huge, 1 << 20),
            Err(FrameError::TooLarge(_))
        ));
    }

    /// An Integer inside ten nested structures.
    fn nested() -> Item {
        let mut item = Item::new(Tag(0x420020), Value::Integer(1));
        for _ in 0..10 {
            item = Item::structure(Tag(0x420021), vec![item]);
        }
        item
    }

    #[test]
    fn a_structure_is_sized_by_its_children_headers_and_never_past_its_bytes() {
        let children_of = |body: &[u8]| {
            let mut bytes = vec![0x42, 0x00, 0x01, 0x01];
            bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
            bytes.extend_from_slice(body);
            let mut walker = Walker::new(&Limits::default());
            match walker.root(&bytes).expect("a structure").1 {
                Node::Structure(c) => c.count_hint(),
                Node::Leaf(_) => unreachable!("a structure"),
            }
        };
        let three = to_vec(&Item::structure(
            Tag(0x420001),
            vec![
                Item::new(Tag(0x420002), Value::TextString("seventeen letters".into())),
                nested(),
                Item::new(Tag(0x420003), Value::Boolean(true)),
            ],
        ))
        .expect("encodes");
        assert_eq!(children_of(&three[8..]), 3);
        // Headers claiming more than is there: one item, not a count from the claims.
        assert_eq!(children_of(&[0xFF; 24]), 1);
        assert_eq!(children_of(&[0; 24]), 3);
    }

    #[test]
    fn depth_and_item_limits_are_enforced() {
        let item = nested();
        let bytes = to_vec(&item).expect("encodes");
        let tight = Limits {
            max_depth: 5,
            ..Limits::default()
        };
        assert_eq!(
            decode(&bytes, &tight).map_err(|e| e.kind),
            Err(DecodeErrorKind::TooDeep)
        );
        let few = Limits {
            max_items: 3,
            ..Limits::default()
        };
        assert_eq!(
            decode(&bytes, &few).map_err(|e| e.kind),
            Err(DecodeErrorKind::TooManyItems)
        );
        let small = Limits {
            max_size: bytes.len() - 1,
            ..Limits::default()
        };
        assert_eq!(
            decode(&bytes, &small).map_err(|e| e.kind),
            Err(DecodeErrorKind::TooLarge)
        );
        assert_eq!(decode(&bytes, &Limits::default()), Ok(item));
    }

    #[test]
    fn an_error_inside_the_item_is_reported_before_trailing_bytes() {
        let mut bytes = to_vec(&nested()).expect("encodes");
        bytes.extend_from_slice(&[0; 8]);
        let tight = Limits {
            max_depth: 5,
            ..Limits::default()
        };
        assert_eq!(
            decode(&bytes, &tight).map_err(|e| e.kind),
            Err(DecodeErrorKind::TooDeep)
        );
        let e = decode(&bytes, &Limits::default()).expect_err("trailing bytes");
        assert_eq!(e.kind, DecodeErrorKind::Malformed);
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    #[test]
    fn leaves_show_byte_strings_by_length_only() {
        let shown = format!("{:?}", Leaf::ByteString(&[0x5A; 32]));
        assert_eq!(shown, "ByteString(32 bytes)");
        assert!(!shown.contains("90"), "no byte value");
        assert_eq!(format!("{:?}", Leaf::Integer(-3)), "Integer(-3)");
    }

    #[test]
    fn placeholder_refuses_ttlv() {
        let item = Item::new(
            Tag(0x4200C2),
            Value::Placeholder(ItemType::ByteString, "$DATA_0".into()),
        );
        let e = to_vec(&item).expect_err("placeholder must not encode");
        assert!(e.to_string().contains("$DATA_0"));
    }
}
