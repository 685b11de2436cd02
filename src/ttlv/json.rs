//! The KMIP JSON encoding: every item is an object `{"tag": …, "type": …, "value": …}`; a
//! structure's value is an array of items and its `type` may be left out. Tags by name or as
//! `"0x42xxxx"`; enumerations and masks by name; byte strings, big integers and out-of-range
//! numbers as hex strings; date-times as ISO-8601.
//!
//! A small, strict JSON reader of our own with depth and size limits.

use super::binary::Limits;
use super::names::{self, attribute_name_of, value_kind};
use super::tables::{self, TagKind};
use super::xml::primitive_value;
use super::{DecodeError, DecodeErrorKind, Document, Item, ItemType, Tag, Value};

/// Long Integers of this magnitude or more are written as hex strings (the encoding
/// specification's rule, since JSON numbers are doubles in many readers).
const HEX_THRESHOLD: i64 = 1 << 52;

/// Decodes one message (a JSON object) or several (a JSON array of objects).
pub fn decode_document(text: &str, now: i64, limits: &Limits) -> Result<Document, DecodeError> {
    let json = parse(text, limits)?;
    let mut items = 0usize;
    let mut conv = Converter {
        now,
        limits: *limits,
        items: &mut items,
    };
    match &json.value {
        Json::Array(elems) => {
            let messages = elems
                .iter()
                .map(|e| conv.item(e, 1, None))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Document {
                messages,
                container: Some("KMIP".to_string()),
            })
        }
        _ => Ok(Document {
            messages: vec![conv.item(&json, 1, None)?],
            container: None,
        }),
    }
}

/// Decodes exactly one message (a JSON object).
pub fn decode(text: &str, now: i64, limits: &Limits) -> Result<Item, DecodeError> {
    decode_document(text, now, limits)?.into_single()
}

/// Encodes one item as indented JSON.
pub fn encode(item: &Item) -> String {
    let mut out = String::with_capacity(512);
    write_item(item, 0, None, &mut out);
    out.push('\n');
    out
}

/// Encodes a document: an array when it had a container, else its one message.
pub fn encode_document(doc: &Document) -> String {
    if doc.container.is_none() && doc.messages.len() == 1 {
        return encode(&doc.messages[0]);
    }
    let mut out = String::from("[\n");
    for (i, m) in doc.messages.iter().enumerate() {
        out.push_str("  ");
        write_item(m, 1, None, &mut out);
        out.push_str(if i + 1 < doc.messages.len() {
            ",\n"
        } else {
            "\n"
        });
    }
    out.push_str("]\n");
    out
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_item(item: &Item, depth: usize, attribute_name: Option<&str>, out: &mut String) {
    out.push_str("{\"tag\": ");
    match item.tag.name() {
        Some(n) => write_string(n, out),
        None => write_string(&format!("0x{:06X}", item.tag.0), out),
    }
    if let Value::Structure(children) = &item.value {
        out.push_str(", \"value\": [");
        let mut sibling = None;
        for (i, c) in children.iter().enumerate() {
            out.push('\n');
            indent(depth + 1, out);
            write_item(c, depth + 1, sibling, out);
            if i + 1 < children.len() {
                out.push(',');
            }
            if let Some(n) = attribute_name_of(c.tag, &c.value) {
                sibling = Some(n);
            }
        }
        if !children.is_empty() {
            out.push('\n');
            indent(depth, out);
        }
        out.push_str("]}");
        return;
    }
    out.push_str(", \"type\": ");
    write_string(item.value.item_type().name(), out);
    out.push_str(", \"value\": ");
    let kind = value_kind(item.tag, attribute_name);
    match &item.value {
        Value::Structure(_) => {}
        Value::Integer(v) => match names::mask_text(kind, *v, "|") {
            Some(m) => write_string(&m, out),
            None => out.push_str(&v.to_string()),
        },
        Value::LongInteger(v) | Value::DateTimeExtended(v)
            if v.abs_diff(0) < HEX_THRESHOLD as u64 =>
        {
            out.push_str(&v.to_string());
        }
        Value::LongInteger(v) | Value::DateTimeExtended(v) => {
            write_string(&format!("0x{:016x}", *v as u64), out);
        }
        Value::BigInteger(b) => write_string(&names::big_integer_text(b, true), out),
        Value::Enumeration(v) => write_string(&names::enum_text(kind, *v), out),
        Value::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
        Value::TextString(s) => write_string(s, out),
        Value::ByteString(b) => write_string(&names::bytes_text(b), out),
        Value::DateTime(t) => write_string(&names::datetime_text(*t), out),
        Value::Interval(v) => out.push_str(&v.to_string()),
        Value::Placeholder(_, name) => write_string(name, out),
    }
    out.push('}');
}

pub(crate) fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A parsed JSON value with the byte offset where it starts (for error messages).
#[derive(Debug)]
struct Node {
    at: usize,
    value: Json,
}

#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    /// The number's text, parsed later as the item type requires.
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

struct Converter<'a> {
    now: i64,
    limits: Limits,
    items: &'a mut usize,
}

impl Converter<'_> {
    fn item(
        &mut self,
        node: &Node,
        depth: usize,
        attribute_name: Option<&str>,
    ) -> Result<Item, DecodeError> {
        let at = node.at;
        let fail = |kind, detail: String| DecodeError::new(kind, format!("byte {at}"), detail);
        *self.items += 1;
        if *self.items > self.limits.max_items {
            return Err(fail(DecodeErrorKind::TooManyItems, "too many items".into()));
        }
        if depth > self.limits.max_depth {
            return Err(fail(
                DecodeErrorKind::TooDeep,
                "items nest too deeply".into(),
            ));
        }
        let Json::Object(fields) = &node.value else {
            return Err(fail(
                DecodeErrorKind::Malformed,
                "an item must be a JSON object".into(),
            ));
        };
        let (mut tag_text, mut type_text, mut value) = (None, None, None);
        for (key, v) in fields {
            let slot = match key.as_str() {
                "tag" => &mut tag_text,
                "type" => &mut type_text,
                "value" => &mut value,
                "name" => continue,
                other => {
                    return Err(fail(
                        DecodeErrorKind::Malformed,
                        format!("unexpected key {other:?}"),
                    ));
                }
            };
            if slot.replace(v).is_some() {
                return Err(fail(
                    DecodeErrorKind::Malformed,
                    format!("duplicate key {key:?}"),
                ));
            }
        }
        let tag = match tag_text.map(|n| &n.value) {
            Some(Json::String(t)) => json_tag(t)
                .ok_or_else(|| fail(DecodeErrorKind::UnknownName, format!("unknown tag {t:?}")))?,
            _ => {
                return Err(fail(
                    DecodeErrorKind::Malformed,
                    "missing or non-string \"tag\"".into(),
                ));
            }
        };
        let ty = match type_text.map(|n| &n.value) {
            None => ItemType::Structure,
            Some(Json::String(t)) => ItemType::from_name(t).ok_or_else(|| {
                fail(
                    DecodeErrorKind::UnknownName,
                    format!("unknown item type {t:?}"),
                )
            })?,
            Some(_) => {
                return Err(fail(
                    DecodeErrorKind::Malformed,
                    "non-string \"type\"".into(),
                ));
            }
        };
        let Some(value) = value else {
            return Err(fail(
                DecodeErrorKind::Malformed,
                format!("{tag}: missing \"value\""),
            ));
        };
        if ty == ItemType::Structure {
            let elems: &[Node] = match &value.value {
                Json::Array(elems) => elems,
                Json::Null => &[],
                _ => {
                    let msg = format!("{tag}: a structure's value must be an array");
                    return Err(fail(DecodeErrorKind::Malformed, msg));
                }
            };
            let mut children = Vec::with_capacity(elems.len());
            let mut sibling: Option<String> = None;
            for e in elems {
                let child = self.item(e, depth + 1, sibling.as_deref())?;
                if let Some(n) = attribute_name_of(child.tag, &child.value) {
                    sibling = Some(n.to_string());
                }
                children.push(child);
            }
            return Ok(Item::structure(tag, children));
        }
        let kind = value_kind(tag, attribute_name);
        let value = self
            .primitive(ty, kind, &value.value)
            .map_err(|e| fail(DecodeErrorKind::Malformed, format!("{tag}: {e}")))?;
        Ok(Item { tag, value })
    }

    fn primitive(&self, ty: ItemType, kind: TagKind, json: &Json) -> Result<Value, String> {
        match json {
            Json::String(s) if ty == ItemType::Boolean && s.starts_with("0x") => match s.as_str() {
                "0x0000000000000000" => Ok(Value::Boolean(false)),
                "0x0000000000000001" => Ok(Value::Boolean(true)),
                _ => Err(format!("{s:?} is not a Boolean")),
            },
            Json::String(s) => primitive_value(ty, s, kind, self.now),
            Json::Bool(b) if ty == ItemType::Boolean => Ok(Value::Boolean(*b)),
            Json::Number(n) => number_value(ty, n),
            _ => Err(format!(
                "a JSON {} cannot hold a {}",
                json_kind(json),
                ty.name()
            )),
        }
    }
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A primitive from a JSON number: exact integers only.
fn number_value(ty: ItemType, n: &str) -> Result<Value, String> {
    let int = || {
        n.parse::<i64>()
            .map_err(|_| format!("{n} is not an integer in range"))
    };
    Ok(match ty {
        ItemType::Integer => {
            Value::Integer(i32::try_from(int()?).map_err(|_| format!("{n} is out of range"))?)
        }
        ItemType::LongInteger => Value::LongInteger(int()?),
        ItemType::Enumeration => {
            Value::Enumeration(u32::try_from(int()?).map_err(|_| format!("{n} is out of range"))?)
        }
        ItemType::Interval => {
            Value::Interval(u32::try_from(int()?).map_err(|_| format!("{n} is out of range"))?)
        }
        ItemType::DateTime => Value::DateTime(int()?),
        ItemType::DateTimeExtended => Value::DateTimeExtended(int()?),
        ItemType::BigInteger => {
            let v = int()?;
            Value::BigInteger(v.to_be_bytes().to_vec())
        }
        ItemType::Boolean => match n {
            "0" => Value::Boolean(false),
            "1" => Value::Boolean(true),
            _ => return Err(format!("{n} is not a Boolean")),
        },
        ItemType::Structure | ItemType::TextString | ItemType::ByteString => {
            return Err(format!("a number cannot hold a {}", ty.name()));
        }
    })
}

fn json_tag(text: &str) -> Option<Tag> {
    if text.starts_with("0x") || text.starts_with("0X") {
        let digits = &text[2..];
        if digits.is_empty() || digits.len() > 6 {
            return None;
        }
        return u32::from_str_radix(digits, 16).ok().map(Tag);
    }
    tables::tag_by_name(text).map(|t| t.tag)
}

fn parse(text: &str, limits: &Limits) -> Result<Node, DecodeError> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        pos: 0,
        limits: *limits,
        nodes: 0,
    };
    if text.len() > limits.max_size {
        return Err(p.error(DecodeErrorKind::TooLarge, "message exceeds the size limit"));
    }
    p.skip_ws();
    let node = p.value(1)?;
    p.skip_ws();
    if p.pos != p.b.len() {
        return Err(p.error(DecodeErrorKind::Malformed, "content after the JSON value"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    limits: Limits,
    nodes: usize,
}

impl Parser<'_> {
    fn error(&self, kind: DecodeErrorKind, detail: &str) -> DecodeError {
        DecodeError::new(kind, format!("byte {}", self.pos), detail)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.b.len() && matches!(self.b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), DecodeError> {
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(
                DecodeErrorKind::Malformed,
                &format!("expected '{}'", char::from(c)),
            ))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, DecodeError> {
        // JSON nesting is twice the item nesting (object, then array), plus the document array.
        if depth > self.limits.max_depth.saturating_mul(2).saturating_add(2) {
            return Err(self.error(DecodeErrorKind::TooDeep, "JSON nests too deeply"));
        }
        self.nodes += 1;
        if self.nodes > self.limits.max_items.saturating_mul(4) {
            return Err(self.error(DecodeErrorKind::TooManyItems, "too many JSON values"));
        }
        let at = self.pos;
        let value =
            match self.b.get(self.pos) {
                Some(b'{') => {
                    self.pos += 1;
                    let mut fields = Vec::new();
                    self.skip_ws();
                    if self.b.get(self.pos) == Some(&b'}') {
                        self.pos += 1;
                    } else {
                        loop {
                            self.skip_ws();
                            let key = self.string()?;
                            self.skip_ws();
                            self.expect(b':')?;
                            self.skip_ws();
                            fields.push((key, self.value(depth + 1)?));
                            self.skip_ws();
                            match self.b.get(self.pos) {
                                Some(b',') => self.pos += 1,
                                Some(b'}') => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => {
                                    return Err(self
                                        .error(DecodeErrorKind::Malformed, "expected ',' or '}'"));
                                }
                            }
                        }
                    }
                    Json::Object(fields)
                }
                Some(b'[') => {
                    self.pos += 1;
                    let mut elems = Vec::new();
                    self.skip_ws();
                    if self.b.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                    } else {
                        loop {
                            self.skip_ws();
                            elems.push(self.value(depth + 1)?);
                            self.skip_ws();
                            match self.b.get(self.pos) {
                                Some(b',') => self.pos += 1,
                                Some(b']') => {
                                    self.pos += 1;
                                    break;
                                }
                                _ => {
                                    return Err(self
                                        .error(DecodeErrorKind::Malformed, "expected ',' or ']'"));
                                }
                            }
                        }
                    }
                    Json::Array(elems)
                }
                Some(b'"') => Json::String(self.string()?),
                Some(b't') => self.keyword("true", Json::Bool(true))?,
                Some(b'f') => self.keyword("false", Json::Bool(false))?,
                Some(b'n') => self.keyword("null", Json::Null)?,
                Some(b'-' | b'0'..=b'9') => Json::Number(self.number()?),
                _ => return Err(self.error(DecodeErrorKind::Malformed, "expected a JSON value")),
            };
        Ok(Node { at, value })
    }

    fn keyword(&mut self, word: &str, value: Json) -> Result<Json, DecodeError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error(DecodeErrorKind::Malformed, "expected a JSON value"))
        }
    }

    fn number(&mut self) -> Result<String, DecodeError> {
        let start = self.pos;
        if self.b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.pos < p.b.len() && p.b[p.pos].is_ascii_digit() {
                p.pos += 1;
            }
            p.pos - s
        };
        let int_start = self.pos;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return Err(self.error(DecodeErrorKind::Malformed, "bad number"));
        }
        if self.b.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error(DecodeErrorKind::Malformed, "bad number"));
            }
        }
        if matches!(self.b.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.b.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error(DecodeErrorKind::Malformed, "bad number"));
            }
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.pos < self.b.len() && !matches!(self.b[self.pos], b'"' | b'\\' | 0..=0x1F) {
                self.pos += 1;
            }
            out.push_str(&self.s[start..self.pos]);
            match self.b.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.b.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{C}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code =
                                if (0xD800..0xDC00).contains(&hi) {
                                    if !self.b[self.pos..].starts_with(b"\\u") {
                                        return Err(self
                                            .error(DecodeErrorKind::Malformed, "lone surrogate"));
                                    }
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return Err(self
                                            .error(DecodeErrorKind::Malformed, "lone surrogate"));
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    hi
                                };
                            out.push(char::from_u32(code).ok_or_else(|| {
                                self.error(DecodeErrorKind::Malformed, "lone surrogate")
                            })?);
                            continue;
                        }
                        _ => return Err(self.error(DecodeErrorKind::Malformed, "bad escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => {
                    return Err(
                        self.error(DecodeErrorKind::Malformed, "control character in a string")
                    );
                }
                None => return Err(self.error(DecodeErrorKind::Malformed, "unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(DecodeErrorKind::Malformed, "bad \\u escape"))?;
        self.pos += 4;
        u32::from_str_radix(digits, 16)
            .map_err(|_| self.error(DecodeErrorKind::Malformed, "bad \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_type_may_be_omitted_and_masks_use_bars() {
        let json = r#"{"tag":"TemplateAttribute","value":[{"tag":"Attribute","value":[
            {"tag":"AttributeName","type":"TextString","value":"Cryptographic Usage Mask"},
            {"tag":"AttributeValue","type":"Integer","value":"Encrypt|Decrypt"}]}]}"#;
        let item = decode(json, 0, &Limits::default()).expect("decodes");
        let mask = &item.children()[0].children()[1];
        assert_eq!(mask.value, Value::Integer(0x0C));
        assert_eq!(decode(&encode(&item), 0, &Limits::default()), Ok(item));
    }

    #[test]
    fn long_integers_beyond_2_53_are_hex_strings() {
        let item = Item::new(Tag::USAGE_LIMITS_TOTAL, Value::LongInteger(i64::MIN));
        let text = encode(&item);
        assert!(text.contains("\"0x8000000000000000\""), "{text}");
        let small = Item::new(Tag::USAGE_LIMITS_TOTAL, Value::LongInteger((1 << 52) - 1));
        assert!(encode(&small).contains("4503599627370495"));
        assert_eq!(decode(&text, 0, &Limits::default()), Ok(item));
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [
            r#"{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey""#,
            r#"{"tag":"ObjectType","type":"Enumeration","value":1.5}"#,
            r#"{"tag":"ObjectType","type":"Enumeration","value":"x","value":"y"}"#,
            r#"{"tag":"ObjectType","type":"Enumeration","value":"\ud800"}"#,
            r#"{"tag":"NoSuchTag","value":[]}"#,
            r#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
        ] {
            assert!(decode(bad, 0, &Limits::default()).is_err(), "{bad}");
        }
    }
}
