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
    if input.len() > limits.max_size {
        return Err(err(
            DecodeErrorKind::TooLarge,
            0,
            "message exceeds the size limit",
        ));
    }
    let mut decoder = Decoder {
        limits: *limits,
        items: 0,
    };
    let mut reader = Reader {
        buf: input,
        start: 0,
    };
    let item = decoder.item(&mut reader, 1)?;
    if !reader.buf.is_empty() {
        return Err(err(
            DecodeErrorKind::Malformed,
            reader.start,
            "trailing bytes after the item",
        ));
    }
    Ok(item)
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

/// A cursor over a byte slice that knows its absolute offset, for error messages.
struct Reader<'a> {
    buf: &'a [u8],
    start: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(err(
                DecodeErrorKind::Malformed,
                self.start,
                "truncated item",
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        self.start += n;
        Ok(head)
    }

    /// A bounded sub-reader over the next `n` bytes.
    fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let start = self.start;
        Ok(Reader {
            buf: self.take(n)?,
            start,
        })
    }
}

struct Decoder {
    limits: Limits,
    items: usize,
}

impl Decoder {
    fn item(&mut self, r: &mut Reader<'_>, depth: usize) -> Result<Item, DecodeError> {
        let at = r.start;
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(err(
                DecodeErrorKind::TooManyItems,
                at,
                "too many items in the message",
            ));
        }
        let h = r.take(HEADER)?;
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
        if padded > r.buf.len() {
            return Err(err(
                DecodeErrorKind::Malformed,
                at + 4,
                "length runs past the end",
            ));
        }
        let mut body = r.sub(padded)?;
        let value_at = body.start;
        let bytes = body.take(len)?;
        if body.buf.iter().any(|&b| b != 0) {
            return Err(err(
                DecodeErrorKind::Malformed,
                value_at + len,
                "non-zero padding",
            ));
        }
        let value = match item_type {
            ItemType::Structure => {
                if depth >= self.limits.max_depth {
                    return Err(err(
                        DecodeErrorKind::TooDeep,
                        at,
                        "structures nest too deeply",
                    ));
                }
                let mut inner = Reader {
                    buf: bytes,
                    start: value_at,
                };
                let mut children = Vec::new();
                while !inner.buf.is_empty() {
                    children.push(self.item(&mut inner, depth + 1)?);
                }
                Value::Structure(children)
            }
            ItemType::Integer => Value::Integer(i32::from_be_bytes(array(bytes))),
            ItemType::LongInteger => Value::LongInteger(i64::from_be_bytes(array(bytes))),
            ItemType::BigInteger => {
                if len == 0 || !len.is_multiple_of(8) {
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        at + 4,
                        "Big Integer length is not a positive multiple of 8",
                    ));
                }
                Value::BigInteger(bytes.to_vec())
            }
            ItemType::Enumeration => Value::Enumeration(u32::from_be_bytes(array(bytes))),
            ItemType::Boolean => match u64::from_be_bytes(array(bytes)) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => {
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        value_at,
                        "Boolean is not 0 or 1",
                    ));
                }
            },
            ItemType::TextString => match std::str::from_utf8(bytes) {
                Ok(s) => Value::TextString(s.to_owned()),
                Err(e) => {
                    let bad = value_at + e.valid_up_to();
                    return Err(err(
                        DecodeErrorKind::Malformed,
                        bad,
                        "Text String is not UTF-8",
                    ));
                }
            },
            ItemType::ByteString => Value::ByteString(bytes.to_vec()),
            ItemType::DateTime => Value::DateTime(i64::from_be_bytes(array(bytes))),
            ItemType::Interval => Value::Interval(u32::from_be_bytes(array(bytes))),
            ItemType::DateTimeExtended => Value::DateTimeExtended(i64::from_be_bytes(array(bytes))),
        };
        Ok(Item { tag, value })
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
    let result = encode_item(item, out);
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

fn encode_item(item: &Item, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let tag = item.tag.0.to_be_bytes();
    out.extend_from_slice(&tag[1..]);
    out.push(item.value.item_type().code());
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    match &item.value {
        Value::Structure(children) => {
            for child in children {
                encode_item(child, out)?;
            }
        }
        Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::LongInteger(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::BigInteger(v) => {
            if v.is_empty() || v.len() % 8 != 0 {
                out.extend_from_slice(&super::canonical_big_integer(v.clone()));
            } else {
                out.extend_from_slice(v);
            }
        }
        Value::Enumeration(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
        Value::TextString(v) => out.extend_from_slice(v.as_bytes()),
        Value::ByteString(v) => out.extend_from_slice(v),
        Value::DateTime(v) | Value::DateTimeExtended(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Placeholder(_, name) => {
            return Err(EncodeError::Placeholder {
                name: name.clone(),
                tag: item.tag,
            });
        }
    }
    let len = u32::try_from(out.len() - body_at).map_err(|_| EncodeError::TooLong(item.tag))?;
    out[len_at..body_at].copy_from_slice(&len.to_be_bytes());
    // Padding counts from the value's start: `out` may hold anything before the item.
    let padded = body_at + (out.len() - body_at).div_ceil(8) * 8;
    out.resize(padded, 0);
    Ok(())
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

    #[test]
    fn depth_and_item_limits_are_enforced() {
        let mut item = Item::new(Tag(0x420020), Value::Integer(1));
        for _ in 0..10 {
            item = Item::structure(Tag(0x420021), vec![item]);
        }
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
    fn placeholder_refuses_ttlv() {
        let item = Item::new(
            Tag(0x4200C2),
            Value::Placeholder(ItemType::ByteString, "$DATA_0".into()),
        );
        let e = to_vec(&item).expect_err("placeholder must not encode");
        assert!(e.to_string().contains("$DATA_0"));
    }
}
