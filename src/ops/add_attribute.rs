//! Add Attribute: a new instance of an attribute the client may add (multi-instance
//! attributes get the next Attribute Index).

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::Change;
use crate::ttlv::Item;

/// Handles one Add Attribute request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let (a, rule) = attributes::parse_request(&payload_in)?;
    if !attributes::defined_in(&a.name, ctx.version) {
        return Err(Error::InvalidField(format!(
            "{} is not defined in this version",
            a.name
        )));
    }
    if !rule.client_adds {
        return Err(Error::AttributeReadOnly(a.name.clone()));
    }
    if a.index.is_some_and(|i| i != 0) {
        return Err(Error::InvalidField(
            "Add Attribute takes no Attribute Index".into(),
        ));
    }
    let value = a
        .value
        .ok_or_else(|| Error::InvalidMessage("Attribute Value is missing".into()))?;
    if !rule.multi && obj.attributes.has(&a.name, None) {
        return Err(Error::PermissionDenied(format!(
            "{} is already set",
            a.name
        )));
    }
    let mut changes = vec![Change::AddAttribute {
        uid: obj.uid.clone(),
        name: a.name.clone(),
        index: None,
        value: value.clone(),
    }];
    changes.push(object::touch(&obj, ctx.now));
    let results = object::commit(ctx, changes)?;
    let index = results.first().and_then(|r| r.index).unwrap_or(0);
    Ok(payload(vec![
        uid_item(&obj.uid),
        attributes::to_item(&a.name, index, &value),
    ]))
}
