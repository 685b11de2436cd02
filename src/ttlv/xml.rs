//! The KMIP XML encoding, as the OASIS test cases use it: one element per item named after its
//! tag, `type` and `value` attributes for primitives, enumerations and masks by name.
//!
//! A small, strict reader of our own: elements, attributes, character references, comments and
//! processing instructions; no DTDs (so no entity expansion). Character data between elements is
//! ignored, as in the OASIS files.

use std::borrow::Cow;

use super::binary::Limits;
use super::names::{self, attribute_name_of, value_kind};
use super::tables::{self, TagKind};
use super::{DecodeError, DecodeErrorKind, Document, Item, ItemType, Tag, Value};

/// The root element names that hold a sequence of messages (OASIS and the v1.0–1.2 extraction).
pub const CONTAINERS: [&str; 2] = ["KMIP", "KmipTestCase"];

/// Element name used for a tag the tables do not name.
const UNKNOWN_TAG_ELEMENT: &str = "TTLV";

/// Decodes a document holding one item or a container of items.
pub fn decode_document(text: &str, now: i64, limits: &Limits) -> Result<Document, DecodeError> {
    let mut p = Parser::new(text, now, limits)?;
    p.skip_prolog()?;
    let start = p.pos;
    let open = p.start_tag()?;
    let doc = if CONTAINERS.contains(&open.name) && open.tag_attr.is_none() {
        let mut messages = Vec::new();
        if !open.empty {
            while let Some(child) = p.next_child(open.name)? {
                messages.push(p.element(child, 2, None)?);
            }
        }
        Document {
            messages,
            container: Some(open.name.to_string()),
        }
    } else {
        p.pos = start;
        let open = p.start_tag()?;
        Document {
            messages: vec![p.element(open, 1, None)?],
            container: None,
        }
    };
    p.skip_misc()?;
    if p.pos != p.b.len() {
        return Err(p.error(DecodeErrorKind::Malformed, "content after the root element"));
    }
    Ok(doc)
}

/// Decodes a document holding exactly one item (not a container).
pub fn decode(text: &str, now: i64, limits: &Limits) -> Result<Item, DecodeError> {
    decode_document(text, now, limits)?.into_single()
}

/// Encodes one item as an indented XML element.
pub fn encode(item: &Item) -> String {
    let mut out = String::with_capacity(512);
    write_item(item, 0, None, &mut out);
    out
}

/// Encodes a document, wrapping the messages in its container element if it has one.
pub fn encode_document(doc: &Document) -> String {
    let mut out = String::new();
    match &doc.container {
        Some(root) => {
            out.push('<');
            out.push_str(root);
            out.push_str(">\n");
            for m in &doc.messages {
                write_item(m, 1, None, &mut out);
            }
            out.push_str("</");
            out.push_str(root);
            out.push_str(">\n");
        }
        None => {
            for m in &doc.messages {
                write_item(m, 0, None, &mut out);
            }
        }
    }
    out
}

fn write_item(item: &Item, depth: usize, attribute_name: Option<&str>, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push('<');
    let name = item.tag.name();
    match name {
        Some(n) => out.push_str(n),
        None => {
            out.push_str(UNKNOWN_TAG_ELEMENT);
            out.push_str(&format!(" tag=\"0x{:06X}\"", item.tag.0));
        }
    }
    let element = name.unwrap_or(UNKNOWN_TAG_ELEMENT);
    if let Value::Structure(children) = &item.value {
        if children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push_str(">\n");
        let mut sibling_name = None;
        for c in children {
            write_item(c, depth + 1, sibling_name, out);
            if let Some(n) = attribute_name_of(c.tag, &c.value) {
                sibling_name = Some(n);
            }
        }
        for _ in 0..depth {
            out.push_str("  ");
        }
        out.push_str("</");
        out.push_str(element);
        out.push_str(">\n");
        return;
    }
    let ty = item.value.item_type();
    out.push_str(" type=\"");
    out.push_str(ty.name());
    out.push_str("\" value=\"");
    escape_into(&primitive_text(item, attribute_name), out);
    out.push_str("\"/>\n");
}

fn primitive_text(item: &Item, attribute_name: Option<&str>) -> String {
    let kind = value_kind(item.tag, attribute_name);
    match &item.value {
        Value::Structure(_) => String::new(),
        Value::Integer(v) => names::mask_text(kind, *v, " ").unwrap_or_else(|| v.to_string()),
        Value::LongInteger(v) => v.to_string(),
        Value::BigInteger(b) => names::big_integer_text(b, false),
        Value::Enumeration(v) => names::enum_text(kind, *v),
        Value::Boolean(v) => v.to_string(),
        Value::TextString(s) => s.clone(),
        Value::ByteString(b) => names::bytes_text(b),
        Value::DateTime(t) => names::datetime_text(*t),
        Value::Interval(v) => v.to_string(),
        Value::DateTimeExtended(t) => t.to_string(),
        Value::Placeholder(_, name) => name.clone(),
    }
}

/// Escapes text for a double-quoted attribute; control characters become character references
/// so that tabs and newlines survive attribute-value normalisation.
fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 || c == '\u{7F}' => out.push_str(&format!("&#x{:X};", c as u32)),
            c => out.push(c),
        }
    }
}

struct StartTag<'a> {
    name: &'a str,
    type_attr: Option<Cow<'a, str>>,
    value_attr: Option<Cow<'a, str>>,
    tag_attr: Option<Cow<'a, str>>,
    empty: bool,
    at: usize,
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    now: i64,
    limits: Limits,
    items: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, now: i64, limits: &Limits) -> Result<Self, DecodeError> {
        let p = Parser {
            src,
            b: src.as_bytes(),
            pos: 0,
            now,
            limits: *limits,
            items: 0,
        };
        if src.len() > limits.max_size {
            return Err(p.error(DecodeErrorKind::TooLarge, "message exceeds the size limit"));
        }
        Ok(p)
    }

    fn error(&self, kind: DecodeErrorKind, detail: impl Into<String>) -> DecodeError {
        self.error_at(self.pos, kind, detail)
    }

    fn error_at(
        &self,
        pos: usize,
        kind: DecodeErrorKind,
        detail: impl Into<String>,
    ) -> DecodeError {
        let before = &self.b[..pos.min(self.b.len())];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let col = before.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
        DecodeError::new(kind, format!("{line}:{col}"), detail)
    }

    fn malformed(&self, detail: &str) -> DecodeError {
        self.error(DecodeErrorKind::Malformed, detail)
    }

    fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    fn skip_ws(&mut self) {
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    /// Skips from `pos` past the next `end`, or fails with `what` unterminated.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), DecodeError> {
        match find(self.rest(), end.as_bytes()) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(self.malformed(&format!("unterminated {what}"))),
        }
    }

    /// Skips one comment, processing instruction or CDATA section if one starts here.
    fn skip_markup(&mut self) -> Result<bool, DecodeError> {
        let r = self.rest();
        if r.starts_with(b"<!--") {
            self.skip_past("-->", "comment")?;
        } else if r.starts_with(b"<?") {
            self.skip_past("?>", "processing instruction")?;
        } else if r.starts_with(b"<![CDATA[") {
            self.skip_past("]]>", "CDATA section")?;
        } else if r.starts_with(b"<!") {
            return Err(self.malformed("document type declarations are not accepted"));
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn skip_prolog(&mut self) -> Result<(), DecodeError> {
        if self.rest().starts_with("\u{FEFF}".as_bytes()) {
            self.pos += 3;
        }
        loop {
            self.skip_ws();
            if !self.skip_markup()? {
                break;
            }
        }
        if self.rest().first() != Some(&b'<') {
            return Err(self.malformed("expected an element"));
        }
        Ok(())
    }

    fn skip_misc(&mut self) -> Result<(), DecodeError> {
        loop {
            self.skip_ws();
            if !self.skip_markup()? {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        while self.pos < self.b.len()
            && !matches!(
                self.b[self.pos],
                b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>' | b'=' | b'<'
            )
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.malformed("expected a name"));
        }
        Ok(&self.src[start..self.pos])
    }

    fn start_tag(&mut self) -> Result<StartTag<'a>, DecodeError> {
        let at = self.pos;
        if self.rest().first() != Some(&b'<') {
            return Err(self.malformed("expected '<'"));
        }
        self.pos += 1;
        let name = self.name()?;
        let mut tag = StartTag {
            name,
            type_attr: None,
            value_attr: None,
            tag_attr: None,
            empty: false,
            at,
        };
        loop {
            self.skip_ws();
            match self.rest().first() {
                Some(b'>') => {
                    self.pos += 1;
                    return Ok(tag);
                }
                Some(b'/') if self.rest().get(1) == Some(&b'>') => {
                    self.pos += 2;
                    tag.empty = true;
                    return Ok(tag);
                }
                Some(_) => {
                    let attr = self.name()?;
                    self.skip_ws();
                    if self.rest().first() != Some(&b'=') {
                        return Err(self.malformed("expected '=' after an attribute name"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let value = self.attribute_value()?;
                    let slot = match attr {
                        "type" => &mut tag.type_attr,
                        "value" => &mut tag.value_attr,
                        "tag" => &mut tag.tag_attr,
                        _ => continue,
                    };
                    if slot.replace(value).is_some() {
                        return Err(self.malformed("duplicate attribute"));
                    }
                }
                None => return Err(self.malformed("unterminated start tag")),
            }
        }
    }

    fn attribute_value(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        let quote = match self.rest().first() {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(self.malformed("attribute value is not quoted")),
        };
        self.pos += 1;
        let start = self.pos;
        let len = self
            .rest()
            .iter()
            .position(|&c| c == quote)
            .ok_or_else(|| self.malformed("unterminated attribute value"))?;
        let raw = &self.src[start..start + len];
        self.pos = start + len + 1;
        if raw.contains('<') {
            return Err(self.error_at(
                start,
                DecodeErrorKind::Malformed,
                "'<' in an attribute value",
            ));
        }
        if !raw.contains(['&', '\t', '\n', '\r']) {
            return Ok(Cow::Borrowed(raw));
        }
        unescape(raw)
            .map(Cow::Owned)
            .map_err(|e| self.error_at(start, DecodeErrorKind::Malformed, e))
    }

    /// Moves to the next child element of the element `parent`, skipping character data,
    /// comments and processing instructions; `None` once `</parent>` has been consumed.
    fn next_child(&mut self, parent: &str) -> Result<Option<StartTag<'a>>, DecodeError> {
        loop {
            match find(self.rest(), b"<") {
                None => return Err(self.malformed(&format!("unterminated element {parent}"))),
                Some(i) => self.pos += i,
            }
            if self.skip_markup()? {
                continue;
            }
            if self.rest().starts_with(b"</") {
                self.pos += 2;
                let name = self.name()?;
                if name != parent {
                    return Err(self.malformed(&format!("</{name}> does not close <{parent}>")));
                }
                self.skip_ws();
                if self.rest().first() != Some(&b'>') {
                    return Err(self.malformed("unterminated end tag"));
                }
                self.pos += 1;
                return Ok(None);
            }
            return self.start_tag().map(Some);
        }
    }

    fn element(
        &mut self,
        open: StartTag<'a>,
        depth: usize,
        attribute_name: Option<&str>,
    ) -> Result<Item, DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(self.error_at(open.at, DecodeErrorKind::TooManyItems, "too many items"));
        }
        if depth > self.limits.max_depth {
            return Err(self.error_at(
                open.at,
                DecodeErrorKind::TooDeep,
                "elements nest too deeply",
            ));
        }
        let tag = match &open.tag_attr {
            Some(t) => names_tag(t).ok_or_else(|| {
                self.error_at(
                    open.at,
                    DecodeErrorKind::Malformed,
                    format!("bad tag attribute {t:?}"),
                )
            })?,
            None => tables::tag_by_name(open.name)
                .map(|t| t.tag)
                .ok_or_else(|| {
                    let msg = format!("unknown tag name {}", open.name);
                    self.error_at(open.at, DecodeErrorKind::UnknownName, msg)
                })?,
        };
        let ty = match open.type_attr.as_deref() {
            None | Some("Structure") => ItemType::Structure,
            Some(t) => ItemType::from_name(t).ok_or_else(|| {
                self.error_at(
                    open.at,
                    DecodeErrorKind::UnknownName,
                    format!("unknown item type {t}"),
                )
            })?,
        };
        if ty == ItemType::Structure {
            let mut children = Vec::new();
            if !open.empty {
                let mut sibling_name: Option<String> = None;
                while let Some(child) = self.next_child(open.name)? {
                    let item = self.element(child, depth + 1, sibling_name.as_deref())?;
                    if let Some(n) = attribute_name_of(item.tag, &item.value) {
                        sibling_name = Some(n.to_string());
                    }
                    children.push(item);
                }
            }
            return Ok(Item::structure(tag, children));
        }
        if !open.empty && self.next_child(open.name)?.is_some() {
            return Err(self.malformed("a primitive item cannot contain elements"));
        }
        let text = open.value_attr.as_deref().unwrap_or("");
        let value =
            primitive_value(ty, text, value_kind(tag, attribute_name), self.now).map_err(|e| {
                self.error_at(open.at, DecodeErrorKind::Malformed, format!("{tag}: {e}"))
            })?;
        Ok(Item { tag, value })
    }
}

/// A tag from a `tag="0x42xxxx"` attribute (or a known tag name written there).
fn names_tag(text: &str) -> Option<Tag> {
    match super::hex::parse_prefixed_u64(text) {
        Some(v) if v <= 0xFF_FFFF => Some(Tag(v as u32)),
        Some(_) => None,
        None => tables::tag_by_name(text).map(|t| t.tag),
    }
}

/// A primitive value from its text form (shared with the JSON decoder for string values).
pub(crate) fn primitive_value(
    ty: ItemType,
    text: &str,
    kind: TagKind,
    now: i64,
) -> Result<Value, String> {
    if let Some(v) = names::placeholder(ty, text, now) {
        return Ok(v);
    }
    Ok(match ty {
        ItemType::Structure => return Err("a structure has no value".to_string()),
        ItemType::Integer => Value::Integer(names::integer_from_text(kind, text)?),
        ItemType::LongInteger => Value::LongInteger(names::long_from_text(text)?),
        ItemType::BigInteger => Value::BigInteger(names::big_integer_from_text(text)?),
        ItemType::Enumeration => Value::Enumeration(names::enum_from_text(kind, text)?),
        ItemType::Boolean => match text {
            "true" | "1" => Value::Boolean(true),
            "false" | "0" => Value::Boolean(false),
            _ => return Err(format!("{text:?} is not a Boolean")),
        },
        ItemType::TextString => Value::TextString(text.to_string()),
        ItemType::ByteString => Value::ByteString(names::bytes_from_text(text)?),
        ItemType::DateTime => Value::DateTime(names::datetime_from_text(text, false)?),
        ItemType::Interval => Value::Interval(names::interval_from_text(text)?),
        ItemType::DateTimeExtended => {
            Value::DateTimeExtended(names::datetime_from_text(text, true)?)
        }
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&c| c == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Resolves entity and character references, and normalises literal whitespace as XML requires
/// for attribute values.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        if c != b'&' {
            // A literal CR LF counts as one newline, which attribute normalisation makes a space.
            out.push(' ');
            rest = if rest[i..].starts_with("\r\n") {
                &rest[i + 2..]
            } else {
                &rest[i + 1..]
            };
            continue;
        }
        let end = rest[i..]
            .find(';')
            .ok_or("unterminated character reference")?
            + i;
        let entity = &rest[i + 1..end];
        let ch = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = entity.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("bad reference &{entity};"))?
            }
        };
        out.push(ch);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn attribute_value_enumeration_follows_attribute_name() {
        let xml = r#"<Attribute>
  <AttributeName type="TextString" value="Cryptographic Algorithm"/>
  <AttributeValue type="Enumeration" value="AES"/>
</Attribute>"#;
        let item = decode(xml, 0, &limits()).expect("decodes");
        assert_eq!(item.children()[1].value, Value::Enumeration(3));
        assert_eq!(decode(&encode(&item), 0, &limits()), Ok(item));
    }

    #[test]
    fn masks_by_name_in_any_order() {
        let a = r#"<CryptographicUsageMask type="Integer" value="Encrypt  Decrypt"/>"#;
        let b = r#"<CryptographicUsageMask type="Integer" value="Decrypt Encrypt"/>"#;
        let a = decode(a, 0, &limits()).expect("a");
        assert_eq!(a.value, Value::Integer(0x0C));
        assert_eq!(decode(b, 0, &limits()), Ok(a));
    }

    #[test]
    fn unknown_tags_and_values_round_trip() {
        let xml = r#"<TTLV tag="0x540001" type="Enumeration" value="0x80000001"/>"#;
        let item = decode(xml, 0, &limits()).expect("decodes");
        assert_eq!(
            item,
            Item::new(Tag(0x540001), Value::Enumeration(0x8000_0001))
        );
        assert_eq!(decode(&encode(&item), 0, &limits()), Ok(item));
    }

    #[test]
    fn placeholders_and_now() {
        let xml = r#"<RequestPayload>
  <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
  <ActivationDate type="DateTime" value="$NOW-3600"/>
  <Data type="ByteString" value="$DATA_0"/>
</RequestPayload>"#;
        let item = decode(xml, 10_000, &limits()).expect("decodes");
        let c = item.children();
        assert_eq!(c[0].value, Value::TextString("$UNIQUE_IDENTIFIER_0".into()));
        assert_eq!(c[1].value, Value::DateTime(6_400));
        assert_eq!(
            c[2].value,
            Value::Placeholder(ItemType::ByteString, "$DATA_0".into())
        );
        assert_eq!(decode(&encode(&item), 10_000, &limits()), Ok(item));
    }

    #[test]
    fn rejects_dtd_mismatched_tags_and_unknown_names() {
        for bad in [
            "<!DOCTYPE x [<!ENTITY a 'b'>]><Name/>",
            "<Name></Attribute>",
            "<NoSuchTag/>",
            r#"<ObjectType type="Enumeration" value="NoSuchType"/>"#,
            r#"<ObjectType type="Enumeration" value="SymmetricKey"/><Extra/>"#,
            r#"<Name type="TextString" value="a&bogus;"/>"#,
        ] {
            assert!(decode(bad, 0, &limits()).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_survive() {
        let item = Item::new(Tag::NAME_VALUE, Value::TextString("a\tb\nc\0\"&<".into()));
        assert_eq!(decode(&encode(&item), 0, &limits()), Ok(item));
    }
}
