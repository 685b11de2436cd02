//! Modify Attribute: a new value for one instance of an attribute the client may change.
//! Dates that drive the lifecycle may change only while the object is Pre-Active.

use super::attributes;
use super::object::{self, payload, uid_item};
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::store::Change;
use crate::ttlv::Item;
use crate::ttlv::tables::enums::State;

/// Handles one Modify Attribute request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let obj = object::load_target(ctx, &payload_in)?;
    let (a, rule) = attributes::parse_request(&payload_in)?;
    if !rule.client_modifies {
        return Err(Error::AttributeReadOnly(a.name.clone()));
    }
    let value = a
        .value
        .ok_or_else(|| Error::InvalidMessage("Attribute Value is missing".into()))?;
    let index = a.index.unwrap_or(0);
    if !obj.attribute(&a.name).any(|x| x.index == index) {
        return Err(Error::ItemNotFound(format!("{} instance {index}", a.name)));
    }
    let pre_active = obj.state == State::PreActive.to_u32();
    let lifecycle_date = matches!(
        a.name.as_str(),
        "Activation Date" | "Process Start Date" | "Protect Stop Date"
    );
    if lifecycle_date && !pre_active {
        return Err(Error::WrongKeyLifecycleState(format!(
            "{} may change only before activation",
            a.name
        )));
    }
    if matches!(a.name.as_str(), "Cryptographic Usage Mask") && !pre_active {
        return Err(Error::WrongKeyLifecycleState(
            "the usage mask may change only before activation".into(),
        ));
    }
    let mut changes = vec![Change::ModifyAttribute {
        uid: obj.uid.clone(),
        name: a.name.clone(),
        index,
        value: value.clone(),
    }];
    changes.push(object::touch(&obj, ctx.now));
    object::commit(ctx, changes)?;
    Ok(payload(vec![
        uid_item(&obj.uid),
        attributes::to_item(&a.name, index, &value),
    ]))
}
