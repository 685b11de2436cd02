//! Get Attributes: named attributes of an object (all when none are named), as the request's
//! protocol version defines them.

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::StoredObject;
use crate::ttlv::{Item, Tag, Value, Version};

/// Handles one Get Attributes request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let mut names = Vec::new();
    for n in payload_in.children_with(Tag::ATTRIBUTE_NAME) {
        match &n.value {
            Value::TextString(s) => names.push(s.as_str()),
            _ => return Err(Error::InvalidField("Attribute Name must be text".into())),
        }
    }
    let mut out = vec![uid_item(&obj.uid)];
    for (name, index, value) in all(&obj, ctx.version) {
        if names.is_empty() || names.contains(&name.as_str()) {
            out.push(attributes::to_item(&name, index, &value));
        }
    }
    Ok(payload(out))
}

/// Every attribute instance of `obj` that version `v` defines, starting with Unique
/// Identifier, Object Type and State.
pub fn all(obj: &StoredObject, v: Version) -> Vec<(String, u32, Item)> {
    let mut out = vec![
        (
            "Unique Identifier".to_string(),
            0,
            attributes::value(Value::TextString(obj.uid.clone())),
        ),
        (
            "Object Type".to_string(),
            0,
            attributes::value(Value::Enumeration(obj.object_type)),
        ),
    ];
    if object::is_key_like(obj.object_type) {
        out.push((
            "State".to_string(),
            0,
            attributes::value(Value::Enumeration(obj.state)),
        ));
    }
    for a in &obj.attributes {
        if attributes::defined_in(&a.name, v) {
            out.push((a.name.to_string(), a.index, a.value.clone()));
        }
    }
    out
}
