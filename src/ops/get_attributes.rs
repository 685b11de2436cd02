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
    let wanted = |n: &str| names.is_empty() || names.contains(&n);
    for (name, index, value) in selected(&obj, ctx.version, wanted) {
        out.push(attributes::to_item(&name, index, &value));
    }
    Ok(payload(out))
}

/// Every attribute instance of `obj` that version `v` defines, starting with Unique
/// Identifier, Object Type and State.
pub fn all(obj: &StoredObject, v: Version) -> Vec<(String, u32, Item)> {
    selected(obj, v, |_| true)
}

/// The attribute instances of `obj` whose name `wanted` accepts (and version `v` defines), in
/// the order of [`all`]; only those are copied.
pub fn selected(
    obj: &StoredObject,
    v: Version,
    wanted: impl Fn(&str) -> bool,
) -> Vec<(String, u32, Item)> {
    let mut fields = vec![
        ("Unique Identifier", Value::TextString(obj.uid.clone())),
        ("Object Type", Value::Enumeration(obj.object_type)),
    ];
    if object::is_key_like(obj.object_type) {
        fields.push(("State", Value::Enumeration(obj.state)));
    }
    let mut out: Vec<(String, u32, Item)> = fields
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, value)| (name.to_string(), 0, attributes::value(value)))
        .collect();
    for a in obj.attributes.iter() {
        if wanted(&a.name) && attributes::defined_in(&a.name, v) {
            let mut value = a.value.clone();
            // A Digest's Key Format Type came with KMIP 1.1.
            if &*a.name == "Digest"
                && v < Version::new(1, 1)
                && let Value::Structure(fields) = &mut value.value
            {
                fields.retain(|f| f.tag != Tag::KEY_FORMAT_TYPE);
            }
            out.push((a.name.to_string(), a.index, value));
        }
    }
    out
}
