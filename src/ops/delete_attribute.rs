//! Delete Attribute: removes one instance of an attribute the client may delete.

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::Change;
use crate::ttlv::{Item, Tag, Value};

/// Handles one Delete Attribute request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let name = match payload_in.child(Tag::ATTRIBUTE_NAME).map(|v| &v.value) {
        Some(Value::TextString(s)) => s.clone(),
        _ => return Err(Error::InvalidMessage("Attribute Name is missing".into())),
    };
    let index = match payload_in.child(Tag::ATTRIBUTE_INDEX).map(|v| &v.value) {
        Some(Value::Integer(i)) if *i >= 0 => *i as u32,
        Some(_) => return Err(Error::InvalidField("Attribute Index".into())),
        None => 0,
    };
    let rule = attributes::known(&name)?;
    if !rule.client_deletes {
        return Err(Error::AttributeReadOnly(name));
    }
    let Some(old) = obj.attribute(&name).find(|a| a.index == index) else {
        return Err(Error::ItemNotFound(format!("{name} instance {index}")));
    };
    let old = attributes::to_item(&name, index, &old.value);
    let mut changes = vec![Change::DeleteAttribute {
        uid: obj.uid.clone(),
        name,
        index: Some(index),
    }];
    changes.push(object::touch(&obj, ctx.now));
    object::commit(ctx, changes)?;
    Ok(payload(vec![uid_item(&obj.uid), old]))
}
