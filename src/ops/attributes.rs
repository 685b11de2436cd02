//! KMIP 1.x attributes: who may set, change and delete each one, in which version it exists, and
//! reading/writing the `Attribute` structures of requests and responses.

use crate::kmip::Error;
use crate::store::StoredObject;
use crate::ttlv::{Item, ItemType, Tag, Value, Version};

/// The rules of one standard attribute.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// The 1.x Attribute Name.
    pub name: &'static str,
    /// Item type of the value.
    pub item_type: ItemType,
    /// Several instances allowed.
    pub multi: bool,
    /// A client may give it when creating or registering an object.
    pub client_sets: bool,
    /// A client may add it later (Add Attribute).
    pub client_adds: bool,
    /// A client may change it (Modify Attribute).
    pub client_modifies: bool,
    /// A client may delete it (Delete Attribute).
    pub client_deletes: bool,
    /// The first protocol version that defines it (minor of 1.x).
    pub since_minor: u8,
}

const fn rule(
    name: &'static str,
    item_type: ItemType,
    multi: bool,
    flags: (bool, bool, bool, bool),
    since_minor: u8,
) -> Rule {
    Rule {
        name,
        item_type,
        multi,
        client_sets: flags.0,
        client_adds: flags.1,
        client_modifies: flags.2,
        client_deletes: flags.3,
        since_minor,
    }
}

use ItemType as T;
/// Read-only: only the server sets it.
const SERVER: (bool, bool, bool, bool) = (false, false, false, false);
/// Given at creation only.
const AT_CREATION: (bool, bool, bool, bool) = (true, false, false, false);
/// The client has full control.
const CLIENT: (bool, bool, bool, bool) = (true, true, true, true);

/// The standard attributes of KMIP 1.0–1.4 (section 3 of each specification).
pub const RULES: &[Rule] = &[
    rule("Unique Identifier", T::TextString, false, SERVER, 0),
    rule("Name", T::Structure, true, CLIENT, 0),
    rule("Object Type", T::Enumeration, false, SERVER, 0),
    rule(
        "Cryptographic Algorithm",
        T::Enumeration,
        false,
        AT_CREATION,
        0,
    ),
    rule("Cryptographic Length", T::Integer, false, AT_CREATION, 0),
    rule("Cryptographic Parameters", T::Structure, true, CLIENT, 0),
    rule(
        "Cryptographic Domain Parameters",
        T::Structure,
        false,
        AT_CREATION,
        0,
    ),
    rule("Certificate Type", T::Enumeration, false, SERVER, 0),
    rule("Certificate Length", T::Integer, false, SERVER, 1),
    rule(
        "X.509 Certificate Identifier",
        T::Structure,
        false,
        SERVER,
        1,
    ),
    rule("X.509 Certificate Subject", T::Structure, false, SERVER, 1),
    rule("X.509 Certificate Issuer", T::Structure, false, SERVER, 1),
    rule("Certificate Identifier", T::Structure, false, SERVER, 0),
    rule("Certificate Subject", T::Structure, false, SERVER, 0),
    rule("Certificate Issuer", T::Structure, false, SERVER, 0),
    rule(
        "Digital Signature Algorithm",
        T::Enumeration,
        true,
        SERVER,
        1,
    ),
    rule("Digest", T::Structure, true, SERVER, 0),
    rule("Operation Policy Name", T::TextString, false, CLIENT, 0),
    rule(
        "Cryptographic Usage Mask",
        T::Integer,
        false,
        (true, false, true, false),
        0,
    ),
    rule("Lease Time", T::Interval, false, SERVER, 0),
    rule(
        "Usage Limits",
        T::Structure,
        false,
        (true, true, true, true),
        0,
    ),
    rule("State", T::Enumeration, false, SERVER, 0),
    rule("Initial Date", T::DateTime, false, SERVER, 0),
    rule(
        "Activation Date",
        T::DateTime,
        false,
        (true, true, true, false),
        0,
    ),
    rule(
        "Process Start Date",
        T::DateTime,
        false,
        (true, true, true, false),
        0,
    ),
    rule(
        "Protect Stop Date",
        T::DateTime,
        false,
        (true, true, true, false),
        0,
    ),
    rule(
        "Deactivation Date",
        T::DateTime,
        false,
        (true, true, true, false),
        0,
    ),
    rule("Destroy Date", T::DateTime, false, SERVER, 0),
    rule("Compromise Occurrence Date", T::DateTime, false, SERVER, 0),
    rule("Compromise Date", T::DateTime, false, SERVER, 0),
    rule("Revocation Reason", T::Structure, false, SERVER, 0),
    rule("Archive Date", T::DateTime, false, SERVER, 0),
    rule("Object Group", T::TextString, true, CLIENT, 0),
    rule("Fresh", T::Boolean, false, AT_CREATION, 1),
    rule("Link", T::Structure, true, CLIENT, 0),
    rule(
        "Application Specific Information",
        T::Structure,
        true,
        CLIENT,
        0,
    ),
    rule("Contact Information", T::TextString, false, CLIENT, 0),
    rule("Last Change Date", T::DateTime, false, SERVER, 0),
    rule("Alternative Name", T::Structure, true, CLIENT, 2),
    rule("Key Value Present", T::Boolean, false, SERVER, 2),
    rule("Key Value Location", T::Structure, false, AT_CREATION, 2),
    // A client registering an older object may say when it was made.
    rule("Original Creation Date", T::DateTime, false, AT_CREATION, 2),
    rule(
        "Random Number Generator",
        T::Structure,
        false,
        AT_CREATION,
        3,
    ),
    rule("PKCS#12 Friendly Name", T::TextString, false, CLIENT, 4),
    rule("Description", T::TextString, false, CLIENT, 4),
    rule("Comment", T::TextString, false, CLIENT, 4),
    rule("Certificate Subject CN", T::TextString, true, SERVER, 4),
    rule("Certificate Subject O", T::TextString, true, SERVER, 4),
    rule("Certificate Subject OU", T::TextString, true, SERVER, 4),
    rule("Certificate Subject Email", T::TextString, true, SERVER, 4),
    rule("Certificate Subject C", T::TextString, true, SERVER, 4),
    rule("Certificate Subject ST", T::TextString, true, SERVER, 4),
    rule("Certificate Subject L", T::TextString, true, SERVER, 4),
    rule("Certificate Subject UID", T::TextString, true, SERVER, 4),
    rule(
        "Certificate Subject Serial Number",
        T::TextString,
        true,
        SERVER,
        4,
    ),
    rule("Certificate Subject Title", T::TextString, true, SERVER, 4),
    rule("Certificate Subject DC", T::TextString, true, SERVER, 4),
    rule(
        "Certificate Subject DN Qualifier",
        T::TextString,
        true,
        SERVER,
        4,
    ),
    rule("Certificate Issuer CN", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer O", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer OU", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer Email", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer C", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer ST", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer L", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer UID", T::TextString, true, SERVER, 4),
    rule(
        "Certificate Issuer Serial Number",
        T::TextString,
        true,
        SERVER,
        4,
    ),
    rule("Certificate Issuer Title", T::TextString, true, SERVER, 4),
    rule("Certificate Issuer DC", T::TextString, true, SERVER, 4),
    rule(
        "Certificate Issuer DN Qualifier",
        T::TextString,
        true,
        SERVER,
        4,
    ),
    rule(
        "Sensitive",
        T::Boolean,
        false,
        (true, false, true, false),
        4,
    ),
    rule("Always Sensitive", T::Boolean, false, SERVER, 4),
    rule(
        "Extractable",
        T::Boolean,
        false,
        (true, false, true, false),
        4,
    ),
    rule("Never Extractable", T::Boolean, false, SERVER, 4),
];

/// The rules of attribute `name`: a standard one, or a custom one (`x-` from clients, `y-`
/// from servers) of any type and any number of instances.
pub fn rule_of(name: &str) -> Option<Rule> {
    if let Some(r) = RULES.iter().find(|r| r.name == name) {
        return Some(*r);
    }
    let client = name.starts_with("x-") || name.starts_with("X-");
    let server = name.starts_with("y-") || name.starts_with("Y-");
    (client || server).then_some(Rule {
        name: "",
        item_type: ItemType::Structure,
        multi: true,
        client_sets: client,
        client_adds: client,
        client_modifies: client,
        client_deletes: client,
        since_minor: 0,
    })
}

/// The rules of attribute `name`, or Invalid Field for a name KMIP does not define.
pub fn known(name: &str) -> Result<Rule, Error> {
    rule_of(name).ok_or_else(|| Error::InvalidField(format!("unknown attribute {name:?}")))
}

/// The one `Attribute` an Add or Modify Attribute request carries, with its rules.
pub fn parse_request(payload: &Item) -> Result<(Attribute, Rule), Error> {
    let a = parse(
        payload
            .child(Tag::ATTRIBUTE)
            .ok_or_else(|| Error::InvalidMessage("Attribute is missing".into()))?,
    )?;
    let rule = known(&a.name)?;
    Ok((a, rule))
}

/// Whether attribute `name` exists in protocol version `v` (custom attributes always do).
pub fn defined_in(name: &str, v: Version) -> bool {
    match RULES.iter().find(|r| r.name == name) {
        Some(r) => v.major > 1 || i32::from(r.since_minor) <= i32::from(v.minor),
        None => rule_of(name).is_some(),
    }
}

/// One attribute of a request: name, optional index, value (tagged Attribute Value).
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Attribute Name.
    pub name: String,
    /// Attribute Index, if given.
    pub index: Option<u32>,
    /// The value (absent in some Delete/Get requests).
    pub value: Option<Item>,
}

/// Reads one 1.x `Attribute` structure.
pub fn parse(item: &Item) -> Result<Attribute, Error> {
    let name = match item.child(Tag::ATTRIBUTE_NAME).map(|n| &n.value) {
        Some(Value::TextString(s)) => s.clone(),
        Some(_) => return Err(Error::InvalidField("Attribute Name must be text".into())),
        None => return Err(Error::InvalidMessage("Attribute Name is missing".into())),
    };
    let index = match item.child(Tag::ATTRIBUTE_INDEX).map(|n| &n.value) {
        Some(Value::Integer(i)) if *i >= 0 => Some(*i as u32),
        Some(_) => return Err(Error::InvalidField("Attribute Index".into())),
        None => None,
    };
    let value = item.child(Tag::ATTRIBUTE_VALUE).cloned();
    if let (Some(v), Some(rule)) = (&value, rule_of(&name))
        && !rule.name.is_empty()
        && v.value.item_type() != rule.item_type
    {
        return Err(Error::InvalidField(format!(
            "{name} must be of type {}",
            rule.item_type.name()
        )));
    }
    Ok(Attribute { name, index, value })
}

/// Every `Attribute` of a Template-Attribute structure (or of any structure holding them).
pub fn parse_all(holder: Option<&Item>) -> Result<Vec<Attribute>, Error> {
    let Some(holder) = holder else {
        return Ok(Vec::new());
    };
    holder
        .children_with(Tag::ATTRIBUTE)
        .map(parse)
        .collect::<Result<Vec<_>, _>>()
}

/// An `Attribute` structure for a response (Attribute Index written when non-zero, or always
/// from 1.1 on... KMIP allows leaving index 0 out; ksg leaves it out).
pub fn to_item(name: &str, index: u32, value: &Item) -> Item {
    let mut children = vec![Item::new(
        Tag::ATTRIBUTE_NAME,
        Value::TextString(name.to_string()),
    )];
    if index > 0 {
        children.push(Item::new(
            Tag::ATTRIBUTE_INDEX,
            Value::Integer(index as i32),
        ));
    }
    let mut v = value.clone();
    v.tag = Tag::ATTRIBUTE_VALUE;
    children.push(v);
    Item::structure(Tag::ATTRIBUTE, children)
}

/// An Attribute Value item.
pub fn value(v: Value) -> Item {
    Item::new(Tag::ATTRIBUTE_VALUE, v)
}

/// The first instance of `name` on `obj`.
pub fn first(obj: &StoredObject, name: &str) -> Option<Item> {
    obj.attributes.first(name)
}

/// An enumeration-valued attribute of `obj`.
pub fn enum_of(obj: &StoredObject, name: &str) -> Option<u32> {
    match first(obj, name).as_ref().map(|v| &v.value) {
        Some(Value::Enumeration(e)) => Some(*e),
        _ => None,
    }
}

/// An integer-valued attribute of `obj`.
pub fn int_of(obj: &StoredObject, name: &str) -> Option<i32> {
    match first(obj, name).as_ref().map(|v| &v.value) {
        Some(Value::Integer(e)) => Some(*e),
        _ => None,
    }
}

/// A date-valued attribute of `obj`.
pub fn date_of(obj: &StoredObject, name: &str) -> Option<i64> {
    match first(obj, name).as_ref().map(|v| &v.value) {
        Some(Value::DateTime(e)) => Some(*e),
        _ => None,
    }
}

/// A boolean attribute of `obj`.
pub fn bool_of(obj: &StoredObject, name: &str) -> Option<bool> {
    match first(obj, name).as_ref().map(|v| &v.value) {
        Some(Value::Boolean(e)) => Some(*e),
        _ => None,
    }
}

/// The first Name's text of `obj`.
pub fn name_of(obj: &StoredObject) -> Option<String> {
    first(obj, "Name").and_then(|n| match n.child(Tag::NAME_VALUE).map(|v| &v.value) {
        Some(Value::TextString(s)) => Some(s.clone()),
        _ => None,
    })
}

/// The first value of an attribute in a parsed list.
pub fn find<'a>(list: &'a [Attribute], name: &str) -> Option<&'a Item> {
    list.iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_ref())
}

/// An enumeration from a parsed list.
pub fn find_enum(list: &[Attribute], name: &str) -> Option<u32> {
    match find(list, name).map(|v| &v.value) {
        Some(Value::Enumeration(e)) => Some(*e),
        _ => None,
    }
}

/// An integer from a parsed list.
pub fn find_int(list: &[Attribute], name: &str) -> Option<i32> {
    match find(list, name).map(|v| &v.value) {
        Some(Value::Integer(e)) => Some(*e),
        _ => None,
    }
}

/// A boolean from a parsed list.
pub fn find_bool(list: &[Attribute], name: &str) -> Option<bool> {
    match find(list, name).map(|v| &v.value) {
        Some(Value::Boolean(e)) => Some(*e),
        _ => None,
    }
}

/// The object a Link of type `link_type` points to, among Link attribute values.
pub fn link_target<'a>(
    links: impl IntoIterator<Item = &'a Item>,
    link_type: crate::ttlv::tables::enums::LinkType,
) -> Option<String> {
    links.into_iter().find_map(|l| {
        if l.child(Tag::LINK_TYPE)?.value != Value::Enumeration(link_type.to_u32()) {
            return None;
        }
        match &l.child(Tag::LINKED_OBJECT_IDENTIFIER)?.value {
            Value::TextString(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// The target of `obj`'s Link of type `link_type`.
pub fn link_of(
    obj: &StoredObject,
    link_type: crate::ttlv::tables::enums::LinkType,
) -> Option<String> {
    let links: Vec<Item> = obj.attribute("Link").map(|a| a.value).collect();
    link_target(&links, link_type)
}
