//! Get Attribute List: the names of an object's attributes.

use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::ttlv::{Item, Tag, Value};

/// Handles one Get Attribute List request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let mut out = vec![uid_item(&obj.uid)];
    let mut seen: Vec<String> = Vec::new();
    for (name, _, _) in super::get_attributes::all(&obj, ctx.version) {
        if !seen.contains(&name) {
            out.push(Item::new(
                Tag::ATTRIBUTE_NAME,
                Value::TextString(name.clone()),
            ));
            seen.push(name);
        }
    }
    Ok(payload(out))
}
