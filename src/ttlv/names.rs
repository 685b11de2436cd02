//! Naming rules shared by the XML and JSON encodings: enumeration and mask names chosen by the
//! tag (or, for a KMIP 1.x Attribute Value, by its sibling Attribute Name), placeholders, and the
//! text forms of primitive values.

use super::tables::{self, TagKind};
use super::{ItemType, Tag, Value, datetime, hex};

/// What names the values of one item: its tag, unless it is an Attribute Value, whose meaning
/// comes from the Attribute Name beside it.
pub(crate) fn value_kind(tag: Tag, attribute_name: Option<&str>) -> TagKind {
    if tag == Tag::ATTRIBUTE_VALUE {
        return attribute_name
            .and_then(tables::tag_by_spec_name)
            .map_or(TagKind::Plain, |t| t.kind);
    }
    tables::tag_info(tag).map_or(TagKind::Plain, |t| t.kind)
}

/// The Attribute Name a Structure's child sets for the siblings that follow it.
pub(crate) fn attribute_name_of(tag: Tag, value: &Value) -> Option<&str> {
    match value {
        Value::TextString(name) if tag == Tag::ATTRIBUTE_NAME => Some(name),
        _ => None,
    }
}

/// The name of an enumeration value, or `0x` and 8 hex digits when it has none.
pub(crate) fn enum_text(kind: TagKind, value: u32) -> String {
    let name = match kind {
        TagKind::Enumeration(id) => id.table().by_value(value).map(|v| v.name),
        TagKind::TagEnumeration => Tag(value).name(),
        TagKind::Plain | TagKind::Mask(_) => None,
    };
    name.map_or_else(|| format!("0x{value:08X}"), str::to_string)
}

/// An enumeration value from a name, `0x` hex or decimal digits.
pub(crate) fn enum_from_text(kind: TagKind, text: &str) -> Result<u32, String> {
    if let Some(v) = hex::parse_prefixed_u64(text) {
        return u32::try_from(v).map_err(|_| format!("enumeration value {text} is out of range"));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| format!("enumeration value {text} is out of range"));
    }
    let found = match kind {
        TagKind::Enumeration(id) => id.table().by_name(text).map(|v| v.value),
        TagKind::TagEnumeration => tables::tag_by_name(text).map(|t| t.tag.0),
        TagKind::Plain | TagKind::Mask(_) => None,
    };
    found.ok_or_else(|| format!("unknown enumeration value name {text:?}"))
}

/// Flag names joined by `sep` when every set bit has a name; `None` otherwise (write a number).
pub(crate) fn mask_text(kind: TagKind, value: i32, sep: &str) -> Option<String> {
    match kind {
        TagKind::Mask(id) if value != 0 => {
            tables::mask_names(id.table(), value as u32).map(|names| names.join(sep))
        }
        _ => None,
    }
}

/// An Integer from decimal, `0x` hex (a 32-bit pattern) or flag names separated by spaces or `|`.
pub(crate) fn integer_from_text(kind: TagKind, text: &str) -> Result<i32, String> {
    if let Some(v) = hex::parse_prefixed_u64(text) {
        return u32::try_from(v)
            .map(|v| v as i32)
            .map_err(|_| format!("{text} is out of range"));
    }
    if let Ok(v) = text.parse::<i32>() {
        return Ok(v);
    }
    let TagKind::Mask(id) = kind else {
        return Err(format!("{text:?} is not an Integer"));
    };
    let table = id.table();
    let mut bits = 0u32;
    let mut any = false;
    for word in text
        .split(|c: char| c.is_ascii_whitespace() || c == '|')
        .filter(|w| !w.is_empty())
    {
        bits |= match hex::parse_prefixed_u64(word) {
            Some(v) => u32::try_from(v).map_err(|_| format!("{word} is out of range"))?,
            None => {
                table
                    .by_name(word)
                    .ok_or_else(|| format!("unknown mask flag {word:?}"))?
                    .value
            }
        };
        any = true;
    }
    if any {
        Ok(bits as i32)
    } else {
        Err("empty Integer".to_string())
    }
}

/// Resolves a test-case variable for an item of type `ty`: `$NOW±N` becomes a time against
/// `now`; in a Text String any `$…` stays text; anything else is carried as a placeholder.
pub(crate) fn placeholder(ty: ItemType, text: &str, now: i64) -> Option<Value> {
    if !text.starts_with('$') || ty == ItemType::TextString {
        return None;
    }
    if let Some(rest) = text.strip_prefix("$NOW") {
        let offset = match rest.as_bytes().first() {
            None => Some(0),
            Some(b'+') => rest[1..].parse::<i64>().ok(),
            Some(b'-') => rest[1..].parse::<i64>().ok().map(|v| -v),
            _ => None,
        };
        if let Some(offset) = offset {
            let t = now.saturating_add(offset);
            match ty {
                ItemType::DateTime => return Some(Value::DateTime(t)),
                ItemType::DateTimeExtended => {
                    return Some(Value::DateTimeExtended(t.saturating_mul(1_000_000)));
                }
                _ => {}
            }
        }
    }
    Some(Value::Placeholder(ty, text.to_string()))
}

/// The text form of a Date-Time: ISO-8601 when it is a four-digit year, else `0x` hex.
pub(crate) fn datetime_text(seconds: i64) -> String {
    if (-62_167_219_200..=253_402_300_799).contains(&seconds) {
        datetime::format_iso8601(seconds, None)
    } else {
        format!("0x{:016X}", seconds as u64)
    }
}

/// Parses a Date-Time (`extended`: microseconds) from ISO-8601 or `0x` hex; a Date-Time Extended
/// is written as a decimal count of microseconds, and ISO-8601 is accepted for it too.
pub(crate) fn datetime_from_text(text: &str, extended: bool) -> Result<i64, String> {
    if let Some(v) = hex::parse_prefixed_u64(text) {
        return Ok(v as i64);
    }
    if extended && let Ok(micros) = text.parse::<i64>() {
        return Ok(micros);
    }
    let (secs, micros) = datetime::parse_iso8601(text)
        .ok_or_else(|| format!("{text:?} is not an ISO-8601 date-time"))?;
    // A fraction of a second in a Date-Time is truncated, as the encoding specification says.
    if extended {
        Ok(secs * 1_000_000 + i64::from(micros))
    } else {
        Ok(secs)
    }
}

/// Parses a Big Integer from hex (with or without `0x`), canonical: a multiple of 8 bytes.
pub(crate) fn big_integer_from_text(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if digits.is_empty() {
        return Err("empty Big Integer".to_string());
    }
    let padded;
    let even = if digits.len() % 2 == 1 {
        padded = format!("0{digits}");
        padded.as_str()
    } else {
        digits
    };
    let bytes = hex::decode(even).ok_or_else(|| format!("{text:?} is not hexadecimal"))?;
    Ok(super::canonical_big_integer(bytes))
}

/// The text form of a Big Integer: `0x` hex in JSON, bare hex (xsd:hexBinary) in XML.
pub(crate) fn big_integer_text(bytes: &[u8], prefixed: bool) -> String {
    if prefixed {
        format!("0x{}", hex::encode(bytes))
    } else {
        hex::encode(bytes)
    }
}

/// Parses a Long Integer from decimal or `0x` hex (a 64-bit pattern).
pub(crate) fn long_from_text(text: &str) -> Result<i64, String> {
    if let Some(v) = hex::parse_prefixed_u64(text) {
        return Ok(v as i64);
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a Long Integer"))
}

/// Parses an Interval from decimal or `0x` hex.
pub(crate) fn interval_from_text(text: &str) -> Result<u32, String> {
    if let Some(v) = hex::parse_prefixed_u64(text) {
        return u32::try_from(v).map_err(|_| format!("{text} is out of range"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not an Interval"))
}

/// Parses a Byte String from hex.
pub(crate) fn bytes_from_text(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).ok_or_else(|| "Byte String is not hexadecimal".to_string())
}

/// The text form of a Byte String.
pub(crate) fn bytes_text(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
