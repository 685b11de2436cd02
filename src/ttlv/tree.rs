//! An annotated, indented dump of an item as it lies in TTLV: offset, tag, type and length of each
//! item, then its name and value with enumeration and mask names. For people reading traces;
//! it is an output format only.

use std::fmt::Write as _;

use super::names::{self, attribute_name_of, value_kind};
use super::{Item, Value};

/// The column heading that goes above one or more dumps.
pub const HEADING: &str = "offset    tag    ty length    item\n";

/// Dumps `item` as if it were encoded at `offset` in a TTLV stream.
pub fn dump(item: &Item, offset: usize) -> String {
    let mut out = String::new();
    write_item(item, 0, offset, None, &mut out);
    out
}

/// The encoded size of `item` in TTLV, or `None` when it holds a placeholder.
pub fn encoded_len(item: &Item) -> Option<usize> {
    Some(8 + value_len(&item.value)?.div_ceil(8) * 8)
}

fn value_len(v: &Value) -> Option<usize> {
    Some(match v {
        Value::Structure(c) => c.iter().map(encoded_len).sum::<Option<usize>>()?,
        Value::Integer(_) | Value::Enumeration(_) | Value::Interval(_) => 4,
        Value::LongInteger(_)
        | Value::Boolean(_)
        | Value::DateTime(_)
        | Value::DateTimeExtended(_) => 8,
        Value::BigInteger(b) => b.len().max(1).div_ceil(8) * 8,
        Value::TextString(s) => s.len(),
        Value::ByteString(b) => b.len(),
        Value::Placeholder(..) => return None,
    })
}

fn write_item(
    item: &Item,
    depth: usize,
    offset: usize,
    attr: Option<&str>,
    out: &mut String,
) -> usize {
    let len = value_len(&item.value);
    let len_text = len.map_or("--------".to_string(), |l| format!("{l:08X}"));
    let _ = write!(
        out,
        "{offset:08X}  {:06X} {:02X} {len_text}  {:indent$}{}",
        item.tag.0,
        item.value.item_type().code(),
        "",
        item.tag,
        indent = depth * 2
    );
    let kind = value_kind(item.tag, attr);
    match &item.value {
        Value::Structure(children) => {
            out.push('\n');
            let mut at = offset + 8;
            let mut sibling = None;
            for c in children {
                at = write_item(c, depth + 1, at, sibling, out);
                if let Some(n) = attribute_name_of(c.tag, &c.value) {
                    sibling = Some(n);
                }
            }
            return at;
        }
        Value::Integer(v) => match names::mask_text(kind, *v, " | ") {
            Some(m) => write!(out, " Integer {v} (0x{:08X}: {m})", *v as u32),
            None => write!(out, " Integer {v}"),
        },
        Value::LongInteger(v) => write!(out, " LongInteger {v}"),
        Value::BigInteger(b) => write!(out, " BigInteger {}", names::big_integer_text(b, true)),
        Value::Enumeration(v) => {
            write!(out, " Enumeration 0x{v:08X} {}", names::enum_text(kind, *v))
        }
        Value::Boolean(v) => write!(out, " Boolean {v}"),
        Value::TextString(s) => write!(out, " TextString {s:?}"),
        Value::ByteString(b) => write!(out, " ByteString [{}] {}", b.len(), names::bytes_text(b)),
        Value::DateTime(t) => write!(out, " DateTime {t} ({})", names::datetime_text(*t)),
        Value::Interval(v) => write!(out, " Interval {v} s"),
        Value::DateTimeExtended(t) => {
            let secs = names::datetime_text(t.div_euclid(1_000_000));
            write!(
                out,
                " DateTimeExtended {t} us ({secs} + {} us)",
                t.rem_euclid(1_000_000)
            )
        }
        Value::Placeholder(ty, name) => write!(out, " {} {name} (placeholder)", ty.name()),
    }
    .ok();
    out.push('\n');
    offset + 8 + len.unwrap_or(0).div_ceil(8) * 8
}
